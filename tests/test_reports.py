"""Every matrix report, rendered from one hand-built MatrixResults and checked for real content.

The results cover every outcome across two devices, an expected refusal, a
waived deviation, a waiver that now matches (fails: the ratchet), a failing
cell whose message carries markup, mutants and release rows -- so each format
has to lay out every case. One last test runs the real matrix, small, through
``write_all``.
"""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import pytest

from migcompat import report
from migcompat.compat.cell import MatrixConfig
from migcompat.compat.matrix import run_matrix
from migcompat.compat.results import Cell, Detail, MatrixResults, MutantResult, ReleaseRow
from migcompat.outcomes import MutantOutcome, Outcome
from migcompat.report import html, json_report, junit, markdown

HOSTILE = '<script>alert("x")</script> & more'
REPLAY = "migcompat matrix --device slirp --source v2 --destination v3 --pairing 'qemufile' --examples 3 --seed 7"

#: (device, source, destination, pairing, outcome, expected, waived)
CELLS = [
    ("slirp", "v1", "v1", "qemufile", Outcome.OK, Outcome.OK, False),
    ("slirp", "v1", "v1", "ber", Outcome.OK, Outcome.OK, False),
    ("slirp", "v1", "v2", "qemufile", Outcome.OK, Outcome.OK, False),
    ("slirp", "v1", "v2", "ber", Outcome.OK, Outcome.OK, False),
    ("slirp", "v2", "v1", "qemufile", Outcome.REFUSED, Outcome.REFUSED, False),
    ("slirp", "v2", "v1", "ber", Outcome.REFUSED, Outcome.REFUSED, False),
    ("slirp", "v2", "v2", "qemufile", Outcome.OK, Outcome.OK, False),
    ("slirp", "v2", "v2", "ber", Outcome.OK, Outcome.OK, False),
    ("slirp", "v2", "v3", "qemufile", Outcome.CORRUPT, Outcome.OK, False),  # fails, with the hostile detail
    ("slirp", "v2", "v3", "ber", Outcome.DETECTED, Outcome.DETECTED, False),
    ("slirp", "v3", "v3", "qemufile", Outcome.OK, Outcome.OK, False),
    ("slirp", "v3", "v3", "ber", Outcome.OK, Outcome.OK, False),
    ("virtio", "qemu-2.1", "qemu-2.1", "qemufile", Outcome.OK, Outcome.OK, False),
    ("virtio", "qemu-2.1", "qemu-7.2", "qemufile", Outcome.CORRUPT, Outcome.OK, True),  # waived: passes
    ("virtio", "qemu-7.2", "qemu-2.1", "qemufile", Outcome.CRASH, Outcome.REFUSED, False),  # fails: a crash
    ("virtio", "qemu-7.2", "qemu-7.2", "qemufile", Outcome.OK, Outcome.OK, True),  # waived but matches: fails
]
FAILING_KEYS = {
    "slirp/v2->v3/qemufile",
    "virtio/qemu-7.2->qemu-2.1/qemufile",
    "virtio/qemu-7.2->qemu-7.2/qemufile",
}
GRID_SHAPES = {"slirp": (["v1", "v2", "v3"], ["v1", "v2", "v3"]), "virtio": (["qemu-2.1", "qemu-7.2"],) * 2}


def _cell(
    device: str, source: str, destination: str, pairing: str, outcome: Outcome, expected: Outcome, waived: bool
) -> Cell:
    detail = Detail(seed=7, replay=f"migcompat matrix --device {device} --source {source} --pairing '{pairing}'")
    if outcome is Outcome.CORRUPT and not waived:
        detail = Detail(
            message=HOSTILE,
            path="so[0].sbuf.off",
            offset=41,
            example={"so": [{"sbuf": {"off": 70000, "data": "00ff"}}], "blob": "ab" * 600},
            seed=7,
            replay=REPLAY,
        )
    elif outcome is Outcome.CRASH:
        detail = Detail(
            message="ZeroDivisionError: division by zero", seed=7, replay="migcompat matrix --device virtio"
        )
    return Cell(
        device=device,
        source=source,
        destination=destination,
        pairing=pairing,
        outcome=outcome,
        expected=expected,
        detail=detail,
        examples=3,
        counts={outcome.value: 2, "ok": 1} if outcome is not Outcome.OK else {"ok": 3},
        waived=waived,
        seconds=0.0125,
    )


def _mutant(device: str, mutant_class: str, fmt: str, outcome: MutantOutcome) -> MutantResult:
    return MutantResult(device, "v3", f"{mutant_class}:ip_id", mutant_class, fmt, "mutant->real", outcome, "why")


@pytest.fixture
def results() -> MatrixResults:
    return MatrixResults(
        meta={
            "tool": "migcompat",
            "examples": 3,
            "seed": 7,
            "jobs": 1,
            "pairings": ["qemufile", "ber"],
            "waivers": ["virtio/qemu-2.1->qemu-7.2/qemufile", "virtio/qemu-7.2->qemu-7.2/qemufile"],
            "unused_waivers": [],
            "started": "2026-01-02T03:04:05Z",
            "seconds": 1.5,
        },
        cells=[_cell(*row) for row in CELLS],
        mutants=[
            _mutant("slirp", "width", "qemufile", MutantOutcome.CORRUPT),
            _mutant("slirp", "width", "qemufile", MutantOutcome.DETECTED),
            _mutant("slirp", "width", "ber", MutantOutcome.DETECTED),
            _mutant("slirp", "width", "ber", MutantOutcome.DETECTED),
            _mutant("virtio", "reorder", "static", MutantOutcome.HARMLESS),
        ],
        releases=[
            ReleaseRow("2.1", "2.1", "ber", Outcome.OK, {"virtio": "ok"}),
            ReleaseRow("2.1", "7.2", "ber", Outcome.CORRUPT, {"virtio": "corrupt"}),
            ReleaseRow("7.2", "2.1", None, Outcome.REFUSED, {"virtio": "refused"}),
            ReleaseRow("7.2", "7.2", "qemufile", Outcome.OK, {"virtio": "ok"}),
        ],
    )


def render(module: ModuleType, results: MatrixResults) -> str:
    outfile = io.StringIO()
    module.report(results, outfile)
    return outfile.getvalue()


def test_the_hand_built_results_cover_every_case(results: MatrixResults) -> None:
    assert set(results.outcome_totals()) == {outcome.value for outcome in Outcome}
    assert {cell.key for cell in results.failures} == FAILING_KEYS


def test_write_all_writes_every_format(results: MatrixResults, tmp_path: Path) -> None:
    written = report.write_all(results, tmp_path / "out")
    assert [path.name for path in written] == ["matrix.json", "matrix.md", "matrix.html", "junit.xml"]
    assert all(path.stat().st_size > 0 for path in written)


# -- JSON -----------------------------------------------------------------------


def test_json_round_trips(results: MatrixResults) -> None:
    document = json.loads(render(json_report, results))
    assert document["format_version"] == 1
    assert MatrixResults.from_json(document) == results


# -- Markdown ---------------------------------------------------------------------


def _section(text: str, heading: str) -> list[str]:
    """The lines under ``heading`` up to the next heading of the same level."""
    lines = text.splitlines()
    start = lines.index(heading) + 1
    level = heading.split(" ")[0] + " "
    end = next((i for i in range(start, len(lines)) if lines[i].startswith(level)), len(lines))
    return lines[start:end]


def test_markdown_headline_says_fail_and_totals(results: MatrixResults) -> None:
    text = render(markdown, results)
    first = text.splitlines()[0]
    assert first == "# migcompat matrix: ❌ 3 failing cells"
    assert "16 cells: 13 pass, 3 fail" in text
    header = "| ✓ ok | ⊘ refused | ⚑ detected | ✗ corrupt | 💥 crash |"
    assert header in text
    lines = text.splitlines()
    assert lines[lines.index(header) + 2] == "| 10 | 2 | 1 | 2 | 1 |"
    assert "seed 7" in text


@pytest.mark.parametrize("device", ["slirp", "virtio"])
def test_markdown_has_a_row_per_source_release(results: MatrixResults, device: str) -> None:
    section = _section(render(markdown, results), f"## {device}")
    sources, destinations = GRID_SHAPES[device]
    header = next(line for line in section if line.startswith("| source"))
    assert header.endswith(" | ".join(destinations) + " |")
    rows = [line for line in section if line.startswith("| **")]
    assert [row.split("**")[1] for row in rows] == sources
    assert all(row.count("|") == len(destinations) + 2 for row in rows)


def test_markdown_marks_unexpected_waived_and_failing(results: MatrixResults) -> None:
    text = render(markdown, results)
    slirp = _section(text, "## slirp")
    v2 = next(line for line in slirp if line.startswith("| **v2** |"))
    assert v2 == "| **v2** | ⊘ ⊘ | ✓ ✓ | **✗!** ⚑ |"
    virtio = _section(text, "## virtio")
    assert "| **qemu-2.1** | ✓ | ✗!ʷ |" in virtio
    assert "| **qemu-7.2** | **💥!** | **✓ʷ** |" in virtio


def test_markdown_lists_failing_cells_with_their_detail(results: MatrixResults) -> None:
    text = render(markdown, results)
    failing = "\n".join(_section(text, "## Failing cells"))
    assert f"replay: `{REPLAY}`" in failing
    assert "path `so[0].sbuf.off`, byte offset 41" in failing
    assert "FAILS: corrupt, expected ok" in failing
    assert "waived, but now matches its expectation" in failing
    assert failing.count("### ") == len(FAILING_KEYS)
    assert "<script>" not in text
    assert "\\<script\\>" in failing


def test_markdown_mutants_and_releases(results: MatrixResults) -> None:
    text = render(markdown, results)
    mutants = _section(text, "## Mutants")
    assert "| slirp | width | qemufile | 1 | 1 | 0 | 0 |" in mutants
    assert "| slirp | width | ber | 2 | 0 | 0 | 0 |" in mutants
    assert "| virtio | reorder | static | 0 | 0 | 1 | 0 |" in mutants
    releases = _section(text, "## Releases")
    assert "| **2.1** | `ber` ✓ ok | `ber` ✗ corrupt |" in releases
    assert "| **7.2** | none ⊘ refused | `qemufile` ✓ ok |" in releases


def test_markdown_without_mutants_or_releases_says_so(results: MatrixResults) -> None:
    results.mutants.clear()
    results.releases.clear()
    text = render(markdown, results)
    assert _section(text, "## Mutants") == ["", "_No mutants were run._", ""]
    assert "## Releases" not in text


# -- HTML -------------------------------------------------------------------------


class _Page(HTMLParser):
    """Just enough of the page's structure: grids, their cells and marks, titles, scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.grids: dict[str, dict[str, list[dict[str, str]]]] = {}
        self.current: str | None = None
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self.tags.append((tag, attributes))
        classes = attributes.get("class", "").split()
        if tag == "table" and "grid" in classes and "data-device" in attributes:
            machine = attributes.get("data-machine")
            self.current = attributes["data-device"] + (f"@{machine}" if machine else "")
            self.grids[self.current] = {"cells": [], "marks": [], "summaries": []}
        elif self.current and tag == "td" and "cell" in classes:
            self.grids[self.current]["cells"].append(attributes)
        elif self.current and tag == "details" and "mark" in classes:
            self.grids[self.current]["marks"].append(attributes)
        elif self.current and tag == "summary":
            self.grids[self.current]["summaries"].append(attributes)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.current = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _page(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


def test_html_has_one_grid_per_device_with_every_cell_and_mark(results: MatrixResults) -> None:
    page = _page(render(html, results))
    assert list(page.grids) == ["slirp", "virtio"]
    for device, grid in page.grids.items():
        sources, destinations = GRID_SHAPES[device]
        assert len(grid["cells"]) == len(sources) * len(destinations)
        cells = [cell for cell in results.cells if cell.device == device]
        assert len(grid["marks"]) == len(cells)
        assert sorted(mark["class"].split()[1] for mark in grid["marks"]) == sorted(
            cell.outcome.value for cell in cells
        )
    slirp_cells = [(cell["data-source"], cell["data-destination"]) for cell in page.grids["slirp"]["cells"]]
    assert slirp_cells[:3] == [("v1", "v1"), ("v1", "v2"), ("v1", "v3")]


def test_html_flags_unexpected_waived_and_failing_marks(results: MatrixResults) -> None:
    marks = _page(render(html, results)).grids["virtio"]["marks"]
    classes = [set(mark["class"].split()) for mark in marks]
    # Row qemu-2.1: ok, corrupt (waived); row qemu-7.2: crash (failing), ok (waived and now matching).
    assert classes == [
        {"mark", "ok"},
        {"mark", "corrupt", "unexpected", "waived"},
        {"mark", "crash", "unexpected", "failing"},
        {"mark", "ok", "waived", "failing"},
    ]


def test_html_detail_is_on_hover_and_on_click_and_escaped(results: MatrixResults) -> None:
    text = render(html, results)
    page = _page(text)
    titles = [summary["title"] for summary in page.grids["slirp"]["summaries"]]
    hostile = next(title for title in titles if HOSTILE in title)
    for expected in ("path: so[0].sbuf.off", "offset: 41", f"replay: {REPLAY}", "expected: ok", "example: {"):
        assert expected in hostile
    assert "more characters in matrix.json" in hostile  # the long example is cut
    assert HOSTILE in "".join(page.text)  # the popover and the failing list show it as text...
    assert "<script>alert" not in text  # ...escaped in the file
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in text
    assert [tag for tag, _ in page.tags].count("script") == 1  # only the page's own


def test_html_is_self_contained(results: MatrixResults) -> None:
    text = render(html, results)
    page = _page(text)
    assert "http://" not in text and "https://" not in text
    assert not [attributes for tag, attributes in page.tags if "src" in attributes or "href" in attributes]
    assert "<style>" in text
    for heading in ("Legend", "Failing cells", "Mutants", "Releases"):
        assert f"<h2>{heading}</h2>" in text
    joined = " ".join("".join(page.text).split())
    assert "seed 7" in joined and "3 examples per cell" in joined and "1.5 s" in joined


def test_html_without_mutants_says_so(results: MatrixResults) -> None:
    results.mutants.clear()
    results.releases.clear()
    text = render(html, results)
    assert "No mutants were run." in text
    assert "<h2>Releases</h2>" not in text


# -- JUnit ------------------------------------------------------------------------


def test_junit_counts_and_cases(results: MatrixResults) -> None:
    root = ET.fromstring(render(junit, results))
    assert root.tag == "testsuites"
    assert root.get("tests") == str(len(results.cells))
    assert int(root.get("failures", "")) + int(root.get("errors", "")) == len(FAILING_KEYS)
    assert root.get("errors") == "1"  # the crash
    suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
    assert list(suites) == ["slirp", "virtio"]
    assert (suites["slirp"].get("tests"), suites["slirp"].get("failures"), suites["slirp"].get("errors")) == (
        "12",
        "1",
        "0",
    )
    assert (suites["virtio"].get("tests"), suites["virtio"].get("failures"), suites["virtio"].get("errors")) == (
        "4",
        "1",
        "1",
    )
    properties = {prop.get("name"): prop.get("value") for prop in suites["slirp"].iter("property")}
    assert properties["seed"] == "7" and properties["examples"] == "3"
    failed = {
        f"{case.get('classname')}/{case.get('name')}": case
        for case in root.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    }
    assert set(failed) == {
        "slirp.v2->v3/qemufile",
        "virtio.qemu-7.2->qemu-2.1/qemufile",
        "virtio.qemu-7.2->qemu-7.2/qemufile",
    }
    failure = failed["slirp.v2->v3/qemufile"].find("failure")
    assert failure is not None
    assert failure.get("type") == "corrupt"
    assert HOSTILE in (failure.get("message") or "")
    assert REPLAY in (failure.text or "") and "offset: 41" in (failure.text or "")
    crash = failed["virtio.qemu-7.2->qemu-2.1/qemufile"].find("error")
    assert crash is not None and "ZeroDivisionError" in (crash.get("message") or "")


def test_junit_survives_characters_xml_cannot_hold(results: MatrixResults) -> None:
    results.cells[8].detail.message = "bad byte \x00\x1b here"
    root = ET.fromstring(render(junit, results))
    messages = [failure.get("message") or "" for failure in root.iter("failure")]
    assert any("bad byte \\x00\\x1b here" in message for message in messages)


# -- the real matrix -------------------------------------------------------------------


def test_the_real_matrix_writes_every_report(tmp_path: Path) -> None:
    results = run_matrix(MatrixConfig(examples=2, jobs=1, pairings=("ber", "qemufile")))
    written = report.write_all(results, tmp_path)
    assert sorted(path.name for path in written) == ["junit.xml", "matrix.html", "matrix.json", "matrix.md"]
    for path in written:
        assert path.exists() and path.stat().st_size > 0
    assert MatrixResults.from_json(json.loads((tmp_path / "matrix.json").read_text())) == MatrixResults.from_json(
        results.to_json()
    )
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert root.get("tests") == str(len(results.cells))
    page = _page((tmp_path / "matrix.html").read_text())
    assert sum(len(grid["marks"]) for grid in page.grids.values()) == len(results.cells)
