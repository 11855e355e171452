"""The static checker against the dynamic matrix: every release pair and every mutant, and the report column.

One real matrix run (small) is compared in full: every cell and every dynamic
mutant result gets the static verdict next to it, and the only disagreements
are the ones the README lists -- sign mutants whose change no valid state can
show, each with that reason computed from the states the run tried. Hand-built
rows check each way a comparison can disagree and how every report shows it.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from migcompat import devices
from migcompat.cli import cli
from migcompat.compat import agreement, cell, mutants
from migcompat.compat.cell import MatrixConfig
from migcompat.compat.matrix import run_matrix
from migcompat.compat.results import Agreement, Cell, Detail, MatrixResults, MutantResult
from migcompat.outcomes import MutantOutcome, Outcome
from migcompat.report import html, json_report, markdown

SEED = cell.DEFAULT_SEED


@pytest.fixture(scope="module")
def run() -> MatrixResults:
    return run_matrix(MatrixConfig(examples=2, jobs=1, shrink=False))


def test_every_cell_and_every_mutant_result_is_compared(run: MatrixResults) -> None:
    cells = {cell.key for cell in run.cells}
    dynamic = [result for result in run.mutants if result.format != agreement.STATIC]
    rows = Counter(row.kind for row in run.agreement)
    assert rows == {"cell": len(run.cells), "mutant": len(dynamic)}
    assert {row.key for row in run.agreement if row.kind == "cell"} == cells
    keys = {f"{r.device}/{r.release}/{r.mutant}/{r.direction}/{r.format}" for r in dynamic}
    assert {row.key for row in run.agreement if row.kind == "mutant"} == keys
    # Every release pair of every device, through every pairing.
    plain = [cell for cell in run.cells if not cell.machine]
    assert len(plain) == sum(len(device.releases) ** 2 for device in devices.registry().values()) * 5


def test_release_pairs_agree_everywhere(run: MatrixResults) -> None:
    cells = [row for row in run.agreement if row.kind == "cell"]
    assert all(row.agrees for row in cells), [row.key for row in cells if not row.agrees]
    by_key = {row.key: row for row in cells}
    assert by_key["slirp/v3->v4/qemufile"].static == "compatible"
    assert by_key["slirp/v4->v3/ber"].rules == ["VERSION_TOO_NEW"]
    # A destination older than the source's machine type: refused before a byte, and the checker says so.
    assert by_key["virtio/qemu-7.2->qemu-2.4/dict"].rules == [agreement.MACHINE_RULE]
    assert by_key["virtio/qemu-7.2->qemu-2.4/dict"].dynamic == "refused"
    # Backward under a machine type both know: the layouts decide, and nothing breaks.
    assert by_key["virtio/qemu-10.0->qemu-5.2@pc-i440fx-5.2/qemufile"].static == "compatible"
    # Under the older release's machine type the layouts show what the older release cannot read.
    older = agreement.release_report("virtio", "qemu-7.2", "qemu-2.4", "pc-i440fx-2.4")
    assert {finding.rule for finding in older.breaking()} == {"SUBSECTION_REMOVED"}
    oldest = agreement.release_report("virtio", "qemu-2.4", "qemu-2.1", "pc-i440fx-2.1")
    assert {finding.rule for finding in oldest.breaking()} == {"MAX_LENGTH_LOWERED", "SUBSECTION_REMOVED"}


def test_the_only_disagreements_are_sign_changes_no_valid_state_shows(run: MatrixResults) -> None:
    disagreements = run.disagreements
    assert disagreements, "the known value-dependent cases are expected here"
    for row in disagreements:
        assert (row.kind, row.mutant_class, row.format) == ("mutant", "sign", "qemufile")
        assert (row.rules, row.dynamic) == (["SIGN_CHANGED"], "harmless")
        assert row.reason.startswith("value-dependent: ") and "top bit" in row.reason
    assert {row.mutant for row in disagreements} == {
        "sign:sockets/fhost/family:uint16->int16",
        "sign:sockets/lhost/family:uint16->int16",
        "sign:virtio/virtio/64bit_features/guest_features:uint64->int64",
    }


def test_static_rows_join_the_mutation_table(run: MatrixResults) -> None:
    static = [result for result in run.mutants if result.format == agreement.STATIC]
    dynamic = [result for result in run.mutants if result.format == "qemufile"]
    assert len(static) == len(dynamic) > 100
    # Every mutant class changes at least one wire: the static checker calls each one incompatible.
    assert {result.outcome for result in static} == {MutantOutcome.DETECTED}
    width = next(result for result in static if result.mutant_class == "width")
    assert width.detail.startswith("WIDTH_CHANGED at ")


def test_mutant_verdicts_name_the_rule_of_their_class(run: MatrixResults) -> None:
    for row in run.agreement:
        if row.kind == "mutant" and row.static == "incompatible":
            expected = agreement.EXPECTED_RULES[(row.mutant_class, row.direction)]
            placeholder = row.mutant_class == "rename" and row.rules == [agreement.PLACEHOLDER_RULE]
            assert expected in row.rules or placeholder, (row.key, row.rules)
    qemufile_renames = [r for r in run.agreement if r.mutant_class == "rename" and r.format == "qemufile"]
    assert qemufile_renames and all(r.static == "compatible" and r.dynamic == "harmless" for r in qemufile_renames)


def test_reports_show_the_column_and_the_count(run: MatrixResults) -> None:
    document = run.to_json()
    assert document["agreement"]["comparisons"] == len(run.agreement)
    assert document["agreement"]["disagreements"] == len(run.disagreements)
    assert all(cell["static"]["verdict"] in ("compatible", "incompatible") for cell in document["cells"])
    again = MatrixResults.from_json(json.loads(json.dumps(document)))
    assert again.agreement == run.agreement and again == MatrixResults.from_json(document)
    text = _render(markdown, run)
    assert f"static verdicts compared with the dynamic outcome: {len(run.disagreements)} disagree" in text
    assert "## Static checker vs dynamic outcome" in text and "value-dependent" in text
    page = _render(html, run)
    assert "Static checker vs dynamic outcome" in page and 'data-static-device="slirp"' in page


# -- how a comparison can disagree ---------------------------------------------------------------


def _cell(source: str, destination: str, pairing: str, outcome: Outcome, message: str = "") -> Cell:
    return Cell("slirp", source, destination, pairing, outcome, Outcome.OK, Detail(message=message))


def test_cell_rows_agree_disagree_and_say_why() -> None:
    rows = agreement.cell_rows(
        [
            _cell("v3", "v4", "qemufile", Outcome.OK),
            _cell("v4", "v3", "ber", Outcome.REFUSED),
            _cell("v4", "v3", "qemufile", Outcome.OK),
            _cell("v3", "v4", "ber", Outcome.DETECTED, "MismatchDetected: made up"),
            _cell("v3", "v4", "dict", Outcome.CRASH, "ZeroDivisionError"),
        ]
    )
    assert [row.agrees for row in rows] == [True, True, False, False, False]
    assert "reports VERSION_TOO_NEW, but every state the dynamic run tried loaded right" in rows[2].reason
    assert "finds nothing that breaks ber, but the dynamic run is detected: MismatchDetected" in rows[3].reason
    assert "crashed (ZeroDivisionError)" in rows[4].reason


def test_pairings_read_the_wire_of_their_last_format() -> None:
    assert [agreement.pairing_wire(name) for name in cell.PAIRING_PATHS] == [
        "ber",  # dict: self-describing, like BER
        "qemufile",
        "ber",
        "qemufile",
        "ber",
    ]


def _derived(device: str, cls: str) -> mutants.Mutant:
    release = devices.get(device).newest
    states = cell.states_for(device, release.name, 2, SEED)
    return next(m for m in mutants.derive(release.description, states=states) if m.mutant_class == cls)


def test_a_verdict_under_the_wrong_rule_is_a_disagreement() -> None:
    width, rename = _derived("slirp", "width"), _derived("slirp", "rename")
    report = agreement.static_report(rename.description, rename.real)  # a FIELD_RENAMED report
    result = MutantResult("slirp", "v4", width.name, "width", "ber", mutants.MUTANT_TO_REAL, MutantOutcome.DETECTED)
    row = agreement._mutant_row(width, mutants.MUTANT_TO_REAL, report, result, [])
    assert not row.agrees and "should be reported as WIDTH_CHANGED" in row.reason


def test_a_sign_change_the_states_do_show_is_not_explained_away() -> None:
    device = devices.get("slirp")
    mutant = next(
        m
        for m in mutants.derive(device.newest.description, per_class=None)
        if m.name == "sign:sockets/fhost/family:uint16->int16"
    )
    states = list(cell.states_for("slirp", "v4", 2, SEED))
    assert agreement._sign_unexercised(mutant, states).startswith("value-dependent")
    top = [dict(state) for state in states if state["sockets"]]
    top[0]["sockets"] = [{**top[0]["sockets"][0], "fhost": {"family": 0x8002, "addr": 0, "port": 0}}]
    assert agreement._sign_unexercised(mutant, top) == ""


# -- the report column on hand-built rows --------------------------------------------------------


def _render(module: object, results: MatrixResults) -> str:
    out = io.StringIO()
    module.report(results, out)  # type: ignore[attr-defined]
    return out.getvalue()


def _hand_built() -> MatrixResults:
    results = MatrixResults(
        cells=[_cell("v3", "v4", "qemufile", Outcome.OK), _cell("v4", "v3", "qemufile", Outcome.OK)],
        mutants=[
            MutantResult("slirp", "v4", "sign:x", "sign", "qemufile", "mutant->real", MutantOutcome.HARMLESS),
            MutantResult("slirp", "v4", "sign:x", "sign", "ber", "mutant->real", MutantOutcome.DETECTED),
        ],
    )
    results.agreement = agreement.cell_rows(results.cells)
    results.agreement += [
        Agreement("mutant", "slirp", "v4", "v4", "qemufile", "incompatible", ["SIGN_CHANGED"], "harmless", False,
                  "value-dependent: <b>x</b>", "sign:x", "sign", "mutant->real"),
        Agreement("mutant", "slirp", "v4", "v4", "ber", "incompatible", ["SIGN_CHANGED"], "detected", True,
                  "", "sign:x", "sign", "mutant->real"),
    ]  # fmt: skip
    return results


def test_markdown_has_the_column_the_grid_and_the_disagreements() -> None:
    text = _render(markdown, _hand_built())
    assert "4 static verdicts compared with the dynamic outcome: 2 disagree" in text
    assert "| device | mutant class | format | detected | corrupt | harmless | crash | static vs dynamic |" in text
    assert "| slirp | sign | qemufile | 0 | 0 | 1 | 0 | 0/1 agree, 1 differ |" in text
    assert "| slirp | sign | ber | 1 | 0 | 0 | 0 | 1/1 agree |" in text
    grid = text[text.index("### slirp") :]
    assert "| **v3** | compatible — agrees |" in grid
    assert "incompatible \\(VERSION\\_TOO\\_NEW\\) — differs on qemufile" in grid
    disagreements = text[text.index("### Disagreements") :]
    assert disagreements.count("\n- ") == 2 and "\\<b\\>x\\</b\\>" in disagreements


def test_html_has_the_column_the_grid_and_escaped_reasons() -> None:
    page = _render(html, _hand_built())
    assert "<th>static vs dynamic</th>" in page
    assert '<td class="agreement bad">0/1 agree, 1 differ</td>' in page
    assert '<td class="differs"' in page and '<td class="agrees"' in page
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


def test_json_carries_rows_counts_and_the_per_cell_column() -> None:
    results = _hand_built()
    document = json.loads(_render(json_report, results))
    assert document["agreement"]["comparisons"] == 4 and document["agreement"]["disagreements"] == 2
    by_cell = {f"{c['source']}->{c['destination']}": c["static"] for c in document["cells"]}
    assert by_cell["v4->v3"] == {
        "verdict": "incompatible",
        "rules": ["VERSION_TOO_NEW"],
        "agrees": False,
        "reason": by_cell["v4->v3"]["reason"],
    }
    assert document["mutants"][0]["static"]["agrees"] is False
    assert MatrixResults.from_json(document) == results


def test_reports_without_a_comparison_leave_the_column_out() -> None:
    results = _hand_built()
    results.agreement.clear()
    assert "static vs dynamic" not in _render(markdown, results)
    assert "Static checker" not in _render(html, results)


def test_every_slirp_release_disagrees_only_where_no_valid_state_can_show_it() -> None:
    config = MatrixConfig(devices=("slirp",))
    results = mutants.run_all(config, all_releases=True)
    static, rows = agreement.mutant_rows(config, results, all_releases=True)
    assert len(static) * 2 == len(rows) == len(results)
    disagreements = [row for row in rows if not row.agrees]
    assert {row.source for row in rows} == {"v1", "v2", "v3", "v4"}
    assert disagreements and all(
        row.mutant_class == "sign" and row.reason.startswith("value-dependent") for row in disagreements
    )
    # The length fields of the socket buffers: 2 GiB and more is no buffer a state holds.
    assert any("sb_datalen" in row.mutant for row in disagreements)


def test_the_matrix_command_prints_the_agreement(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["matrix", "--device", "slirp", "--examples", "1", "--jobs", "1", "--no-shrink", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("static checker: "))
    document = json.loads((tmp_path / "matrix.json").read_text())
    compared, disagree = document["agreement"]["comparisons"], document["agreement"]["disagreements"]
    assert line.startswith(
        f"static checker: {compared} verdicts compared with the dynamic outcome, {disagree} disagree"
    )
    assert compared == len(document["cells"]) + sum(m["format"] != "static" for m in document["mutants"])
