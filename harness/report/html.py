"""``matrix.html``: the colored matrix a person opens in a browser.

Why: a matrix of hundreds of cells is read by eye -- which release pairs are
green, where the red is -- and then one cell at a time. So each device gets a
grid (rows: source releases, columns: destination releases) whose cells hold
one colored mark per visitor pairing, and every mark explains itself: on hover
(its ``title``) and on click (a ``<details>`` popover that stays open to be read
and copied from). The file is self-contained -- inline CSS, a few lines of
inline JS, no fonts, images or CDN -- so it works as a CI artifact opened from
disk, offline.

Strategy: plain string building; every value taken from the results passes
through :func:`_e` (``html.escape``, quotes included) on its way in, and the
only unescaped text is the constant CSS, JS and tag skeleton below. Marks carry
their symbol as well as their color, so the grid reads without color too.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterator
from typing import TextIO

from migcompat.compat.real import RealCell, RealResults
from migcompat.compat.results import Cell, MatrixResults
from migcompat.outcomes import MutantOutcome, Outcome
from migcompat.report import history, svgplot
from migcompat.report._views import (
    MEANINGS,
    MUTANT_OUTCOMES,
    OUTCOMES,
    TEXT_MARKS,
    Grid,
    agreement_headline,
    agreement_text,
    detail_fields,
    detail_text,
    disagreement_text,
    grids,
    headline,
    mutant_agreement,
    mutant_rows,
    release_grids,
    release_text,
    static_cell_text,
    static_grids,
    verdict,
)
from migcompat.report.context import Context

#: Shrunk example characters in a hover tooltip; the click popover shows the longer EXAMPLE_CHARS.
TITLE_EXAMPLE_CHARS = 200

_CSS = """
:root { --ok: #2e7d32; --refused: #78909c; --detected: #1565c0; --corrupt: #c62828; --crash: #4a148c;
  --ink: #1c1e21; --muted: #5f6368; --line: #d0d4d9; --paper: #fff; --wash: #f5f6f8; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--ink); background: var(--wash); }
h1 { margin: 0 0 4px; font-size: 24px; }
h2 { margin: 0 0 8px; font-size: 18px; }
h3 { margin: 0 0 6px; font-size: 15px; }
code, pre { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.status { display: inline-block; padding: 2px 10px; border-radius: 12px; color: #fff; font-weight: 600; }
.status.pass { background: var(--ok); }
.status.fail { background: var(--corrupt); }
.meta { color: var(--muted); margin: 6px 0 14px; }
.meta span + span::before { content: " · "; }
.panel { background: var(--paper); border: 1px solid var(--line); border-radius: 8px; padding: 14px 18px;
  margin: 0 0 18px; }
.totals { display: flex; flex-wrap: wrap; gap: 10px; margin: 10px 0 0; }
.total { display: flex; align-items: center; gap: 8px; padding: 6px 12px; border: 1px solid var(--line);
  border-radius: 8px; background: var(--paper); }
.total b { font-size: 18px; }
.legend { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 6px 18px; }
.legend div { display: flex; align-items: center; gap: 8px; }
.notes { margin: 8px 0 0; color: var(--muted); }
.devices { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; margin: 0 0 18px; }
.devices .panel { margin: 0; }
.order { color: var(--muted); margin: 0 0 10px; }
table { border-collapse: collapse; }
.grid th, .grid td { border: 1px solid var(--line); padding: 6px 8px; text-align: center; vertical-align: middle; }
.grid thead th { background: var(--wash); font-weight: 600; white-space: nowrap; }
.grid tbody th { background: var(--wash); text-align: right; white-space: nowrap; }
.grid .corner { color: var(--muted); font-weight: 400; font-size: 12px; }
.grid td.cell { position: relative; background: var(--paper); }
.grid td.diagonal { background: #eef1f5; }
.marks { display: flex; gap: 4px; justify-content: center; flex-wrap: nowrap; }
.mark { position: relative; }
.mark > summary { list-style: none; cursor: pointer; position: relative; display: flex; align-items: center;
  justify-content: center; width: 24px; height: 24px; border-radius: 5px; color: #fff; font-size: 14px;
  line-height: 1; user-select: none; }
.mark > summary::-webkit-details-marker { display: none; }
.mark[open] > summary { outline: 3px solid #f9a825; outline-offset: 2px; }
.mark > summary:focus-visible { outline: 3px solid #f9a825; outline-offset: 1px; }
.swatch { display: inline-flex; align-items: center; justify-content: center; width: 24px; height: 24px;
  border-radius: 5px; color: #fff; font-size: 14px; flex: none; }
.ok { background: var(--ok); }
.refused { background: var(--refused); }
.detected { background: var(--detected); }
.corrupt { background: var(--corrupt); }
.crash { background: var(--crash); }
.mark.unexpected > summary, .swatch.unexpected { box-shadow: 0 0 0 2px var(--paper), 0 0 0 4px #111; }
.mark.failing > summary, .swatch.failing { box-shadow: 0 0 0 2px var(--paper), 0 0 0 4px #ff1744; }
.mark.waived > summary, .swatch.waived { box-shadow: none; outline: 2px dashed #111; outline-offset: 2px; }
.mark.waived.failing > summary { outline-color: #ff1744; }
.badge { position: absolute; top: -7px; right: -7px; min-width: 14px; height: 14px; padding: 0 3px;
  border-radius: 7px; background: #111; color: #fff; font-size: 10px; font-weight: 700; line-height: 14px; }
.badge.waived { background: #fff; color: #111; border: 1px solid #111; line-height: 12px; }
.popover { position: absolute; z-index: 10; top: 30px; left: -8px; width: 460px; max-width: 80vw; text-align: left;
  background: var(--paper); border: 1px solid #9aa0a6; border-radius: 8px; padding: 10px 12px;
  box-shadow: 0 6px 24px rgba(0, 0, 0, 0.18); }
.grid td.cell:nth-last-child(-n+2) .popover { left: auto; right: -8px; }
.popover dl, .failure dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 6px 0 0; }
.popover dt, .failure dt { color: var(--muted); }
.popover dd, .failure dd { margin: 0; overflow-wrap: anywhere; white-space: pre-wrap; }
.popover pre, .failure pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 220px;
  overflow: auto; background: var(--wash); padding: 4px 6px; border-radius: 4px; }
.failures { list-style: none; margin: 0; padding: 0; }
.failure { border-top: 1px solid var(--line); padding: 10px 0; }
.failure:first-child { border-top: 0; }
.failure h3 { display: flex; align-items: center; gap: 8px; }
.numbers td, .numbers th { border: 1px solid var(--line); padding: 4px 10px; }
.numbers thead th { background: var(--wash); }
.numbers td.count { text-align: right; font-variant-numeric: tabular-nums; }
.numbers td.bad { background: #fdecea; color: var(--corrupt); font-weight: 700; }
.releases td { color: #fff; font-weight: 600; }
.releases td.none { background: var(--paper); color: var(--muted); font-weight: 400; }
.empty { color: var(--muted); font-style: italic; }
.static td { text-align: left; vertical-align: top; }
.static td.agrees { background: #e8f5e9; }
.static td.differs { background: #fdecea; color: var(--corrupt); font-weight: 600; }
.disagreements li { margin: 4px 0; overflow-wrap: anywhere; }
[hidden] { display: none !important; }
.filters { display: flex; flex-wrap: wrap; gap: 10px 18px; align-items: center; }
.filters label { display: flex; gap: 6px; align-items: center; color: var(--muted); }
.filters select { font: inherit; padding: 2px 4px; }
.filters output { color: var(--muted); }
.real .marks .model { opacity: 0.75; }
.figure img, .figure svg { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
"""

#: Clicking one mark closes the others; Escape closes all. Works without it, too.
_JS = """
document.addEventListener("toggle", function (event) {
  var opened = event.target;
  if (!opened.open || !opened.classList || !opened.classList.contains("mark")) return;
  document.querySelectorAll("details.mark[open]").forEach(function (other) {
    if (other !== opened) other.open = false;
  });
}, true);
document.addEventListener("keydown", function (event) {
  if (event.key !== "Escape") return;
  document.querySelectorAll("details.mark[open]").forEach(function (open) { open.open = false; });
});
(function () {
  var form = document.getElementById("filters");
  if (!form) return;
  var selects = Array.prototype.slice.call(form.querySelectorAll("select"));
  var count = form.querySelector("output");
  function chosen() {
    var state = {};
    selects.forEach(function (select) { if (select.value) state[select.name] = select.value; });
    return state;
  }
  function matches(element, state) {
    var data = element.dataset;
    if (state.device && data.device !== state.device) return false;
    if (state.release && data.source !== state.release && data.destination !== state.release) return false;
    if (state.machine && data.machine !== state.machine) return false;
    if (state.outcome === "failing") return data.failing === "true";
    return !state.outcome || data.outcome === state.outcome;
  }
  function apply() {
    var state = chosen(), shown = 0, total = 0;
    document.querySelectorAll("[data-filterable]").forEach(function (element) {
      var keep = matches(element, state);
      element.hidden = !keep;
      if (!keep && element.open) element.open = false;
      total += 1;
      if (keep) shown += 1;
    });
    document.querySelectorAll("[data-filter-group]").forEach(function (group) {
      group.hidden = !group.querySelector("[data-filterable]:not([hidden])");
    });
    count.value = shown + " of " + total + " shown";
    var hash = Object.keys(state).map(function (key) {
      return key + "=" + encodeURIComponent(state[key]);
    }).join("&");
    try { history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search); } catch (e) {}
  }
  function fromAddress() {
    selects.forEach(function (select) { select.value = ""; });
    location.hash.replace(/^#/, "").split("&").forEach(function (pair) {
      var parts = pair.split("="), select = form.elements.namedItem(parts[0]);
      if (select && parts.length === 2) select.value = decodeURIComponent(parts[1]);
    });
  }
  fromAddress();
  window.addEventListener("hashchange", function () { fromAddress(); apply(); });
  selects.forEach(function (select) { select.addEventListener("change", apply); });
  form.querySelector("button").addEventListener("click", function () {
    selects.forEach(function (select) { select.value = ""; });
    apply();
  });
  apply();
})();
"""

#: Colors of the outcomes in drawn figures (the page's CSS variables).
COLORS = {"ok": "#2e7d32", "refused": "#78909c", "detected": "#1565c0", "corrupt": "#c62828", "crash": "#4a148c"}
#: How a cell run under the source's own machine type is named in the machine-type filter.
OWN_MACHINE = "the source's own"


def _e(value: object) -> str:
    """Text from the results, safe in element content and in quoted attributes."""
    return html.escape(str(value), quote=True)


def _classes(cell: Cell) -> str:
    names = ["mark", cell.outcome.value]
    if not cell.matches:
        names.append("unexpected")
    if cell.waived:
        names.append("waived")
    if cell.failed:
        names.append("failing")
    return " ".join(names)


def _badges(cell: Cell) -> str:
    badges = "" if cell.matches else '<span class="badge" aria-hidden="true">!</span>'
    if cell.waived:
        badges += '<span class="badge waived" aria-hidden="true">w</span>'
    return badges


def _fields(cell: Cell) -> str:
    rows = []
    for label, value in detail_fields(cell):
        shown = f"<pre>{_e(value)}</pre>" if label in ("example", "replay") else _e(value)
        rows.append(f"<dt>{_e(label)}</dt><dd>{shown}</dd>")
    return "<dl>" + "".join(rows) + "</dl>"


def _filterable(device: str, source: str, destination: str, machine: str, outcome: str, failing: bool) -> str:
    """The attributes the page's filters read."""
    return (
        f'data-filterable data-device="{_e(device)}" data-source="{_e(source)}" '
        f'data-destination="{_e(destination)}" data-machine="{_e(machine or OWN_MACHINE)}" '
        f'data-outcome="{_e(outcome)}" data-failing="{"true" if failing else "false"}"'
    )


def _cell_filterable(cell: Cell) -> str:
    return _filterable(cell.device, cell.source, cell.destination, cell.machine, cell.outcome.value, cell.failed)


def _mark(cell: Cell) -> str:
    title = f"{cell.pairing}: {cell.outcome.value}\n{detail_text(cell, TITLE_EXAMPLE_CHARS)}"
    label = f"{cell.pairing}: {cell.outcome.value}, {verdict(cell)}"
    return (
        f'<details class="{_classes(cell)}" data-pairing="{_e(cell.pairing)}" {_cell_filterable(cell)}>'
        f'<summary title="{_e(title)}" aria-label="{_e(label)}">{TEXT_MARKS[cell.outcome]}{_badges(cell)}</summary>'
        f'<div class="popover"><h3>{_e(cell.key)}</h3>{_fields(cell)}</div>'
        "</details>"
    )


def _head(results: MatrixResults) -> Iterator[str]:
    yield "<!DOCTYPE html>"
    yield '<html lang="en"><head><meta charset="utf-8">'
    yield '<meta name="viewport" content="width=device-width, initial-scale=1">'
    state = "compatible" if results.passed else f"{len(results.failures)} failing cells"
    yield f"<title>migcompat matrix: {_e(state)}</title>"
    yield f"<style>{_CSS}</style></head><body>"


def _headline(results: MatrixResults) -> Iterator[str]:
    status = (
        '<span class="status pass">compatible</span>'
        if results.passed
        else f'<span class="status fail">{len(results.failures)} failing cells</span>'
    )
    yield f'<header class="panel"><h1>migcompat matrix {status}</h1>'
    meta = results.meta
    facts = [headline(results)]
    templates = {"examples": "{} examples per cell", "seed": "seed {}", "seconds": "{} s", "jobs": "jobs {}"}
    for key, template in templates.items():
        if key in meta:
            facts.append(template.format(meta[key]))
    if "started" in meta:
        facts.append(f"started {meta['started']}")
    if results.agreement:
        facts.append(agreement_headline(results))
    yield '<div class="meta">' + "".join(f"<span>{_e(fact)}</span>" for fact in facts) + "</div>"
    totals = results.outcome_totals()
    yield '<div class="totals">'
    for outcome in OUTCOMES:
        yield (
            f'<div class="total" data-outcome="{outcome.value}"><span class="swatch {outcome.value}">'
            f"{TEXT_MARKS[outcome]}</span><b>{totals.get(outcome.value, 0)}</b> {outcome.value}</div>"
        )
    yield "</div>"
    for key in meta.get("unused_waivers", []):
        yield f'<p class="notes">note: the waiver for <code>{_e(key)}</code> matched no cell</p>'
    yield "</header>"


def _legend() -> Iterator[str]:
    yield '<section class="panel"><h2>Legend</h2><div class="legend">'
    for outcome in OUTCOMES:
        yield (
            f'<div><span class="swatch {outcome.value}">{TEXT_MARKS[outcome]}</span>'
            f"<span><b>{outcome.value}</b>: {_e(MEANINGS[outcome])}</span></div>"
        )
    yield (
        '<div><span class="swatch ok unexpected" style="position:relative">✓<span class="badge">!</span></span>'
        "<span>not the outcome the device expects</span></div>"
    )
    yield (
        '<div><span class="swatch corrupt waived" style="position:relative">✗<span class="badge waived">w</span>'
        "</span><span>waived: a known deviation (dashed; red when the waiver now fails)</span></div>"
    )
    yield '<div><span class="swatch corrupt failing">✗</span><span>fails the gate (red ring)</span></div>'
    yield "</div>"
    yield '<p class="notes">Hover a mark for its detail; click it to keep the detail open (Escape closes).</p>'
    yield "</section>"


def _table_head(attributes: str, destinations: list[str]) -> str:
    """A source x destination table's opening and header row."""
    columns = "".join(f'<th scope="col">{_e(name)}</th>' for name in destinations)
    return (
        f'<table {attributes}><thead><tr><th class="corner">source ↓ / destination →</th>{columns}</tr></thead><tbody>'
    )


def _grid(grid: Grid) -> Iterator[str]:
    yield f'<section class="panel device" id="device-{_e(grid.anchor)}" data-filter-group><h2>{_e(grid.title)}</h2>'
    yield (
        '<p class="order">Marks per cell, left to right: '
        + ", ".join(f"<code>{_e(pairing)}</code>" for pairing in grid.pairings)
        + "</p>"
    )
    machine = f' data-machine="{_e(grid.machine)}"' if grid.machine else ""
    yield _table_head(f'class="grid" data-device="{_e(grid.device)}"{machine}', grid.destinations)
    for source in grid.sources:
        yield f'<tr><th scope="row">{_e(source)}</th>'
        for destination in grid.destinations:
            diagonal = " diagonal" if source == destination else ""
            marks = "".join(_mark(cell) for cell in grid.at(source, destination))
            yield (
                f'<td class="cell{diagonal}" data-source="{_e(source)}" data-destination="{_e(destination)}">'
                f'<div class="marks">{marks}</div></td>'
            )
        yield "</tr>"
    yield "</tbody></table></section>"


def _failures(results: MatrixResults) -> Iterator[str]:
    failing = results.failures
    yield '<section class="panel"><h2>Failing cells</h2>'
    if not failing:
        yield '<p class="empty">None: every cell has its expected outcome.</p></section>'
        return
    yield '<ul class="failures">'
    for cell in failing:
        yield (
            f'<li class="failure" {_cell_filterable(cell)}><h3>'
            f'<span class="swatch {cell.outcome.value}">{TEXT_MARKS[cell.outcome]}</span>'
            f"<code>{_e(cell.key)}</code></h3>{_fields(cell)}</li>"
        )
    yield "</ul></section>"


def _mutants(results: MatrixResults) -> Iterator[str]:
    yield '<section class="panel"><h2>Mutants</h2>'
    rows = mutant_rows(results)
    if not rows:
        yield '<p class="empty">No mutants were run.</p></section>'
        return
    # The static checker's column, when it was compared with this run.
    agreement = mutant_agreement(results) if results.agreement else None
    yield '<table class="numbers mutants"><thead><tr><th>device</th><th>mutant class</th><th>format</th>'
    yield (
        "".join(f"<th>{outcome.value}</th>" for outcome in MUTANT_OUTCOMES)
        + ("<th>static vs dynamic</th>" if agreement is not None else "")
        + "</tr></thead><tbody>"
    )
    for row in rows:
        cells = []
        counts = row.counts
        for outcome in MUTANT_OUTCOMES:
            count = counts.get(outcome.value, 0)
            bad = " bad" if count and outcome in (MutantOutcome.CORRUPT, MutantOutcome.CRASH) else ""
            which = [
                f"{result.mutant} ({result.release}, {result.direction})"
                + (f": {result.detail}" if result.detail else "")
                for result in row.results
                if result.outcome is outcome
            ]
            cells.append(f'<td class="count{bad}" title="{_e(chr(10).join(which))}">{count}</td>')
        if agreement is not None:
            compared = agreement.get((row.device, row.mutant_class, row.format))
            differs = " bad" if compared is not None and compared[0] != compared[1] else ""
            cells.append(f'<td class="agreement{differs}">{_e(agreement_text(compared)) or "·"}</td>')
        yield (
            f"<tr><td>{_e(row.device)}</td><td>{_e(row.mutant_class)}</td><td>{_e(row.format)}</td>"
            + "".join(cells)
            + "</tr>"
        )
    yield "</tbody></table></section>"


def _releases(results: MatrixResults) -> Iterator[str]:
    if not results.releases:
        return
    for releases in release_grids(results):
        yield f'<section class="panel"><h2>{_e(releases.title)}</h2>'
        yield '<p class="order">Negotiated protocol; color is the worst device outcome.</p>'
        yield _table_head('class="grid releases"', releases.destinations)
        for source in releases.sources:
            yield f'<tr><th scope="row">{_e(source)}</th>'
            for destination in releases.destinations:
                row = releases.at(source, destination)
                if row is None:
                    yield '<td class="none">·</td>'
                    continue
                protocol = _e(row.protocol or "none")
                title = _e(release_text(row))
                yield f'<td class="{row.worst.value}" title="{title}">{protocol} {TEXT_MARKS[row.worst]}</td>'
            yield "</tr>"
        yield "</tbody></table></section>"


def _static(results: MatrixResults) -> Iterator[str]:
    if not results.agreement:
        return
    yield '<section class="panel" id="static"><h2>Static checker vs dynamic outcome</h2>'
    yield (
        f'<p class="order">{_e(agreement_headline(results))}. Each release pair: the static verdict of '
        "<code>migcompat diff</code> (compatible, or the rules that break the wire) and whether every "
        "pairing's outcome agrees.</p>"
    )
    for grid in static_grids(results):
        yield f"<h3>{_e(grid.title)}</h3>"
        yield _table_head(f'class="numbers static" data-static-device="{_e(grid.device)}"', grid.destinations)
        for source in grid.sources:
            yield f'<tr><th scope="row">{_e(source)}</th>'
            for destination in grid.destinations:
                rows = grid.at(source, destination)
                state = "differs" if any(not row.agrees for row in rows) else "agrees"
                title = "\n".join(
                    f"{row.format}: {row.dynamic}" + (f" ({row.reason})" if row.reason else "") for row in rows
                )
                yield f'<td class="{state}" title="{_e(title)}">{_e(static_cell_text(rows)) or "·"}</td>'
            yield "</tr>"
        yield "</tbody></table>"
    yield "<h3>Disagreements</h3>"
    disagreements = results.disagreements
    if not disagreements:
        yield '<p class="empty">None: the static checker agrees with every dynamic outcome.</p></section>'
        return
    yield '<ul class="disagreements">'
    yield "".join(f"<li><code>{_e(disagreement_text(row))}</code></li>" for row in disagreements)
    yield "</ul></section>"


def _options(name: str, label: str, values: list[str]) -> str:
    options = "".join(f'<option value="{_e(value)}">{_e(value)}</option>' for value in values)
    return f'<label>{_e(label)} <select name="{_e(name)}"><option value="">all</option>{options}</select></label>'


def _filters(results: MatrixResults, real: RealResults | None) -> Iterator[str]:
    """The filter bar: device, release, machine type, outcome; the choice is kept in the page's address."""
    cells = results.cells
    real_cells = real.cells if real is not None else []
    devices = list(dict.fromkeys([cell.device for cell in cells] + [_real_device(cell) for cell in real_cells]))
    releases = list(
        dict.fromkeys(
            [name for cell in cells for name in (cell.source, cell.destination)]
            + [_real_release(name) for cell in real_cells for name in (cell.source, cell.destination)]
        )
    )
    machines = list(
        dict.fromkeys([cell.machine or OWN_MACHINE for cell in cells] + [cell.machine for cell in real_cells])
    )
    outcomes = [outcome.value for outcome in OUTCOMES] + ["failing"]
    yield '<section class="panel"><form id="filters" class="filters" onsubmit="return false">'
    yield _options("device", "device", devices)
    yield _options("release", "release (source or destination)", releases)
    yield _options("machine", "machine type", machines)
    yield _options("outcome", "outcome", outcomes)
    yield '<button type="button">clear</button> <output aria-live="polite"></output>'
    yield "</form></section>"


def _real_release(name: str) -> str:
    """A real QEMU release as the model names it (``5.2`` -> ``qemu-5.2``), so one filter finds both."""
    return name if name.startswith("qemu-") else f"qemu-{name}"


def _real_device(cell: RealCell) -> str:
    return f"real QEMU: {cell.config}"


def _real_mark(cell: RealCell) -> str:
    """QEMU's outcome (a mark that opens its detail), with the model's prediction beside it."""
    names = ["mark", cell.real]
    if not cell.agrees and not cell.explanation:
        names.append("unexpected")
    if cell.fails:
        names.append("failing")
    rows = [
        ("migration", cell.key),
        ("QEMU", f"{cell.real}: {cell.message}"),
        ("model", f"{cell.model}: {cell.model_reason}" if cell.model_reason else cell.model),
        ("static checker", cell.static + (f": {cell.static_findings[0]}" if cell.static_findings else "")),
        ("explained", cell.explanation),
        ("changes", "\n".join(cell.changes[:8])),
        ("failure", cell.failure),
    ]
    fields = "".join(f"<dt>{_e(label)}</dt><dd>{_e(value)}</dd>" for label, value in rows if value)
    outcome = _outcome(cell.real)
    model = _outcome(cell.model)
    badge = '<span class="badge" aria-hidden="true">!</span>' if not cell.agrees else ""
    source, destination = _real_release(cell.source), _real_release(cell.destination)
    attributes = _filterable(_real_device(cell), source, destination, cell.machine, cell.real, cell.fails)
    return (
        f'<div class="marks"><details class="{" ".join(names)}" {attributes}>'
        f'<summary title="{_e(f"QEMU: {cell.real}: {cell.message}")}" aria-label="{_e(f"QEMU {cell.real}")}">'
        f"{TEXT_MARKS[outcome] if outcome else '?'}{badge}</summary>"
        f'<div class="popover"><h3>{_e(cell.key)}</h3><dl>{fields}</dl></div></details>'
        f'<span class="swatch model {_e(cell.model)}" title="{_e(f"model: {cell.model}")}">'
        f"{TEXT_MARKS[model] if model else '?'}</span></div>"
    )


def _outcome(value: str) -> Outcome | None:
    try:
        return Outcome(value)
    except ValueError:
        return None


def _real(real: RealResults | None) -> Iterator[str]:
    if real is None:
        return
    yield '<section class="panel real" id="real" data-filter-group><h2>Real QEMU beside the model</h2>'
    yield f'<p class="order">{_e(real.headline())}</p>'
    yield (
        '<p class="order">Each migration: what QEMU did (click for its detail), and beside it, lighter, what the '
        "model predicted; <b>!</b> where they differ.</p>"
    )
    pairs = list(dict.fromkeys((cell.source, cell.destination) for cell in real.cells))
    configs: dict[str, dict[str, dict[tuple[str, str], RealCell]]] = {}
    for cell in real.cells:
        configs.setdefault(cell.config, {}).setdefault(cell.machine, {})[cell.source, cell.destination] = cell
    for config, rows in configs.items():
        yield f'<div data-filter-group><h3>{_e(config)}</h3><table class="grid" data-real-config="{_e(config)}">'
        yield '<thead><tr><th class="corner">machine type ↓ / migration →</th>'
        yield "".join(f'<th scope="col">{_e(source)} → {_e(destination)}</th>' for source, destination in pairs)
        yield "</tr></thead><tbody>"
        for machine, cells in rows.items():
            yield f'<tr><th scope="row"><code>{_e(machine)}</code></th>'
            for pair in pairs:
                found = cells.get(pair)
                yield f'<td class="cell">{_real_mark(found) if found else ""}</td>'
            yield "</tr>"
        yield "</tbody></table></div>"
    yield "</section>"


def _trend(results: MatrixResults) -> Iterator[str]:
    points = history.series(results)
    yield '<section class="panel figure" id="trend"><h2>The matrix over time</h2>'
    if len(points) < 2:
        yield (
            '<p class="empty">One run so far: give earlier runs\' <code>matrix.json</code> with '
            "<code>--history</code> to draw the trend.</p></section>"
        )
        return
    labels = [point["started"].replace("T", " ").removesuffix("Z")[5:16] for point in points]
    series = [
        (outcome.value, COLORS[outcome.value], [point["outcomes"].get(outcome.value, 0) for point in points])
        for outcome in OUTCOMES
    ]
    series.append(("failing", "#ff1744", [point["failing"] for point in points]))
    yield svgplot.trend(labels, series, f"cells by outcome, {len(points)} runs")
    yield "</section>"


def _scaling(svg: str | None) -> Iterator[str]:
    if svg is None:
        return
    # As an image, so the file's content cannot run script in the page.
    data = base64.b64encode(svg.encode()).decode()
    yield '<section class="panel figure" id="scaling"><h2>Benchmark scaling</h2>'
    yield '<p class="order">From <code>migcompat bench --scaling</code>, written to this directory.</p>'
    yield f'<img alt="time per unit of state size and per example" src="data:image/svg+xml;base64,{data}">'
    yield "</section>"


def report(results: MatrixResults, outfile: TextIO, context: Context | None = None) -> None:
    context = context or Context()
    sections = [_head(results), _headline(results), _filters(results, context.real), _legend()]
    sections.extend(iter([f'<p class="notes">note: {_e(note)}</p>']) for note in context.notes)
    sections.append(iter(['<div class="devices">']))
    sections.extend(_grid(grid) for grid in grids(results))
    sections.append(iter(["</div>"]))
    sections.append(_real(context.real))
    sections.extend([_failures(results), _mutants(results), _static(results), _releases(results)])
    sections.extend([_trend(results), _scaling(context.scaling_svg)])
    sections.append(iter([f"<script>{_JS}</script></body></html>"]))
    for section in sections:
        for line in section:
            outfile.write(line + "\n")
