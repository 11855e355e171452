"""CI-native outputs of diff, gate and matrix: GitHub annotations, SARIF 2.1.0 and JUnit XML.

``tests/data/sarif-schema-2.1.0.json`` is the published SARIF 2.1.0 JSON schema (its final
2.1.0-rtm.5 text, as schemastore.org serves it to code scanning); every SARIF document the
commands write is validated against it.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from _support import run_cli

from migcompat.ci import github, locate
from migcompat.ci.findings import Finding, Level, Location

ROOT = Path(__file__).resolve().parents[1]
SARIF_SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())
DUMPS = [str(ROOT / f"corpora/qemu-{release}/vmstate-pc.json") for release in ("7.2", "10.0")]


@pytest.fixture(autouse=True)
def _at_the_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths in annotations are relative to the working directory: run from the checkout."""
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def _annotations(stdout: str) -> list[dict[str, str]]:
    """Parse workflow commands the way the runner does: ``::cmd k=v,k=v::message``."""
    found = []
    for line in stdout.splitlines():
        if not line.startswith("::"):
            continue
        command, _, rest = line[2:].partition(" ")
        properties, _, message = rest.partition("::")
        entry = {"command": command, "message": message}
        for pair in properties.split(","):
            key, _, value = pair.partition("=")
            entry[key] = value.replace("%2C", ",").replace("%3A", ":").replace("%0A", "\n").replace("%25", "%")
        found.append(entry)
    return found


def _validate_sarif(text: str) -> dict[str, object]:
    document = json.loads(text)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(document)
    return document


# -- the locator ----------------------------------------------------------------------------


def test_a_pointer_lands_on_the_line_of_its_key() -> None:
    text = '{\n  "a": {"x": 1,\n    "b/c": [10,\n      {"d": 2}]},\n  "z": 3\n}\n'
    assert locate.line_of(text, "/a/b~1c/1/d") == 4
    assert locate.line_of(text, "/a/b~1c/0") == 3
    assert locate.line_of(text, "/z") == 5
    # What does not resolve lands on the deepest place that did.
    assert locate.line_of(text, "/a/missing") == 2
    assert locate.line_of(text, "") == 1


def test_a_pointer_into_broken_json_gives_a_line_not_an_error() -> None:
    assert locate.line_of('{"a": [1, 2', "/a/5") >= 1
    assert locate.line_of("", "/a") == 1


# -- GitHub workflow commands ---------------------------------------------------------------


def test_an_annotation_cannot_be_ended_or_forged_by_its_message() -> None:
    finding = Finding("RULE", Level.ERROR, "50% done\n::error::forged", Location("a,b:c", "dir/f,1.json", 7))
    line = github.annotation(finding)
    # One line: the forged command is inside the message, not at the start of a line.
    assert "\n" not in line and line.startswith("::error ")
    (parsed,) = _annotations(line)
    assert parsed["file"] == "dir/f,1.json" and parsed["line"] == "7"
    assert parsed["title"] == "RULE at a,b:c"
    assert parsed["message"].replace("%0A", "\n").replace("%25", "%") == "50% done\n::error::forged"


def test_diff_annotates_the_member_line_of_the_committed_schema() -> None:
    code, out, _ = run_cli("diff", "virtio@qemu-2.1", "virtio@qemu-10.0", "--format", "github")
    assert code == 1
    notes = _annotations(out)
    errors = [note for note in notes if note["command"] == "error"]
    assert [note["title"] for note in errors] == ["BUFFER_SIZE_CHANGED at virtio-net/msix_table"]
    (error,) = errors
    assert error["file"] == "corpora/schemas/virtio/qemu-10.0.json"
    lines = (ROOT / error["file"]).read_text().splitlines()
    assert lines[int(error["line"]) - 1].strip().startswith('"msix_table"')
    # Advisory findings are notices, and the last line is the verdict.
    assert any(note["command"] == "notice" for note in notes)
    assert "1 breaking" in out.splitlines()[-1]


def test_diff_of_qemu_dumps_points_into_the_dump_that_has_the_member() -> None:
    code, out, _ = run_cli("diff", *DUMPS, "--format", "github")
    assert code == 1
    errors = [note for note in _annotations(out) if note["command"] == "error"]
    code, report, _ = run_cli("diff", *DUMPS, "--format", "json")
    breaking = [finding for finding in json.loads(report)["findings"] if finding["breaks"]]
    assert len(errors) == len(breaking) > 0
    texts = {path: Path(path).read_text() for path in DUMPS}
    by_title = {
        f"{finding['rule']} at {finding['path'] or finding['section'] or '(document)'}": finding for finding in breaking
    }
    for note in errors:
        finding = by_title[note["title"]]
        # The newer dump where the member is there; the older one for a member only it has.
        path, pointer = (DUMPS[1], finding["new"]) if finding["new"] is not None else (DUMPS[0], finding["old"])
        assert note["file"] == Path(path).relative_to(ROOT).as_posix()
        assert int(note["line"]) == locate.line_of(texts[path], pointer)
    timadj = next(note for note in errors if note["title"].startswith("FIELD_ADDED at e1000e/core.timadj"))
    lines = texts[DUMPS[1]].splitlines()
    entry = "\n".join(lines[int(timadj["line"]) - 1 : int(timadj["line"]) + 3])
    assert '"core.timadj"' in entry


def test_a_compatible_diff_has_no_errors() -> None:
    code, out, _ = run_cli("diff", "slirp@v4", "slirp@v4", "--format", "github")
    assert code == 0
    assert not [note for note in _annotations(out) if note["command"] == "error"]


def test_step_summary_is_appended_under_github_actions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, _, _ = run_cli("diff", "virtio@qemu-2.1", "virtio@qemu-10.0", "--format", "github")
    assert code == 1
    text = summary.read_text()
    assert text.startswith("earlier step\n")
    assert "### migcompat diff" in text and "BUFFER_SIZE_CHANGED" in text


# -- SARIF ----------------------------------------------------------------------------------


def test_diff_sarif_is_valid_and_locates_each_result() -> None:
    code, out, _ = run_cli("diff", "virtio@qemu-2.1", "virtio@qemu-10.0", "--format", "sarif", "--direction", "both")
    assert code == 1
    document = _validate_sarif(out)
    (run,) = document["runs"]  # type: ignore[index]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert len(rules) == len(set(rules))
    levels = {result["level"] for result in run["results"]}
    assert "error" in levels and "note" in levels
    for result in run["results"]:
        assert rules[result["ruleIndex"]] == result["ruleId"]
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"].startswith("corpora/schemas/virtio/")
        assert physical["region"]["startLine"] >= 1
        assert location["logicalLocations"][0]["fullyQualifiedName"]


def test_gate_sarif_and_github_point_at_the_broken_golden_field(tmp_path: Path) -> None:
    golden = tmp_path / "golden"
    shutil.copytree(ROOT / "corpora/golden", golden)
    state = golden / "slirp/v4/1.json"
    document = json.loads(state.read_text())
    document["state"]["ip_id"] ^= 1
    state.write_text(json.dumps(document, indent=2))

    code, out, _ = run_cli("gate", "--golden", str(golden), "--format", "github")
    assert code == 1
    errors = [note for note in _annotations(out) if note["command"] == "error"]
    assert errors
    at_state = [note for note in errors if note.get("file", "").endswith("slirp/v4/1.json")]
    assert at_state, errors
    for note in at_state:
        assert '"ip_id"' in state.read_text().splitlines()[int(note["line"]) - 1]

    code, out, _ = run_cli("gate", "--golden", str(golden), "--format", "sarif")
    assert code == 1
    run = _validate_sarif(out)["runs"][0]  # type: ignore[index]
    assert {result["ruleId"] for result in run["results"]} == {"CELL_CORRUPT"}


def test_a_passing_gate_in_every_format() -> None:
    for fmt in ("github", "sarif", "junit"):
        code, out, _ = run_cli("gate", "--format", fmt)
        assert code == 0, out
    assert _validate_sarif(run_cli("gate", "--format", "sarif")[1])["runs"][0]["results"] == []  # type: ignore[index]


# -- JUnit ----------------------------------------------------------------------------------


def test_diff_junit_has_a_test_per_section_and_direction() -> None:
    code, out, _ = run_cli("diff", *DUMPS, "--format", "junit", "--direction", "both")
    assert code == 1
    root = ET.fromstring(out)
    suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
    assert set(suites) == {"diff.forward", "diff.backward"}
    sections = {case.get("name") for case in suites["diff.forward"].iter("testcase")}
    assert {"e1000e", "acpi-ged"} <= sections
    failing = [case for case in root.iter("testcase") if case.find("failure") is not None]
    assert int(root.get("failures", "0")) == len(failing) > 0
    assert "e1000e" in {case.get("name") for case in failing}
    for case in failing:
        assert case.find("failure").get("type")  # type: ignore[union-attr]


# -- the matrix ----------------------------------------------------------------------------


def test_matrix_annotates_a_stale_waiver_and_writes_valid_sarif(tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.toml"
    waivers.write_text('[[waiver]]\ncell = "slirp/v1->v4/ber"\nreason = "testing"\n')
    arguments = ["matrix", "--device", "slirp", "--examples", "2", "--jobs", "1", "--no-mutants"]
    arguments += ["--waivers", str(waivers), "--out", str(tmp_path / "out")]
    code, out, _ = run_cli(*arguments, "--format", "github")
    assert code == 1
    (error,) = [note for note in _annotations(out) if note["command"] == "error"]
    assert error["title"] == "WAIVER_NOW_MATCHES at slirp/v1->v4/ber"
    assert error["file"] == "corpora/schemas/slirp/v4.json"
    assert (tmp_path / "out" / "matrix.json").exists()  # the reports are written as with text output

    code, out, _ = run_cli(*arguments, "--format", "sarif")
    assert code == 1
    run = _validate_sarif(out)["runs"][0]  # type: ignore[index]
    assert [result["ruleId"] for result in run["results"]] == ["WAIVER_NOW_MATCHES"]

    code, out, _ = run_cli(*arguments, "--format", "junit")
    root = ET.fromstring(out)
    cases = list(root.iter("testcase"))
    assert len(cases) == len(json.loads((tmp_path / "out" / "matrix.json").read_text())["cells"])
    assert root.get("failures") == "1"


def test_a_failing_dump_cell_points_at_its_member_in_the_destination_dump() -> None:
    from migcompat.ci import collect
    from migcompat.compat.results import Cell, Detail, MatrixResults
    from migcompat.outcomes import Outcome

    cell = Cell(
        "qemu:e1000e", "qemu-7.2", "qemu-10.0", "qemufile", Outcome.CORRUPT, Outcome.OK,
        detail=Detail(message="differs", path="e1000e/core.timadj"),
    )  # fmt: skip
    results = MatrixResults(meta={"seconds": 1.0}, cells=[cell])
    descriptions = collect.Descriptions({"qemu-10.0": Path(DUMPS[1])})
    (check,) = collect.of_matrix(results, descriptions, "1 failing").checks
    (finding,) = check.findings
    assert finding.rule == "CELL_CORRUPT" and finding.location.file == "corpora/qemu-10.0/vmstate-pc.json"
    assert finding.location.line is not None
    lines = Path(DUMPS[1]).read_text().splitlines()
    assert '"core.timadj"' in "\n".join(lines[finding.location.line - 1 : finding.location.line + 3])
    # A path that names no member lands on the section; a release without a file has no place.
    other = Cell("qemu:e1000e", "qemu-7.2", "qemu-9.9", "ber", Outcome.CORRUPT, Outcome.OK)
    (check,) = collect.of_matrix(MatrixResults(cells=[other]), descriptions, "").checks
    assert check.findings[0].location.file is None
