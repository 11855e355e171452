"""What the Markdown, HTML and JUnit reports share: marks, grids and cell details.

Why: the format modules should only lay out. Grouping a device's cells into a
source x destination grid, the mark each outcome gets, the words that say why a
cell passes or fails and the text that explains it are decided once here, so
the views cannot drift apart. Everything is computed from
:class:`~migcompat.compat.results.MatrixResults` alone.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from migcompat.compat.results import Agreement, Cell, MatrixResults, MutantResult, ReleaseRow
from migcompat.outcomes import MutantOutcome, Outcome

#: Outcomes from best to worst: the order of every legend and totals row.
OUTCOMES: tuple[Outcome, ...] = tuple(sorted(Outcome, key=lambda outcome: outcome.severity))
MUTANT_OUTCOMES: tuple[MutantOutcome, ...] = (
    MutantOutcome.DETECTED,
    MutantOutcome.CORRUPT,
    MutantOutcome.HARMLESS,
    MutantOutcome.CRASH,
)

#: One mark per outcome; each is distinct without color, for terminals and screen readers.
MARKS: dict[Outcome, str] = {
    Outcome.OK: "✓",
    Outcome.REFUSED: "⊘",
    Outcome.DETECTED: "⚑",
    Outcome.CORRUPT: "✗",
    Outcome.CRASH: "💥",
}

#: The same marks for pages that cannot count on a color-emoji font (a browser on a bare
#: Linux desktop or in CI draws 💥 as an empty box); every glyph here is in DejaVu Sans.
TEXT_MARKS: dict[Outcome, str] = {**MARKS, Outcome.CRASH: "☠"}

#: What each outcome means, for legends (DESIGN §7).
MEANINGS: dict[Outcome, str] = {
    Outcome.OK: "loaded; equals the source state projected onto the destination",
    Outcome.REFUSED: "clean, expected refusal (version out of range, unknown needed subsection)",
    Outcome.DETECTED: "type or shape mismatch detected and refused with field path and offset",
    Outcome.CORRUPT: "loaded without error, but the state is wrong (silent corruption)",
    Outcome.CRASH: "exception outside the error hierarchy, a hang or a limit breach",
}

#: How much of a shrunk example a report shows; ``matrix.json`` keeps it whole.
EXAMPLE_CHARS = 600


@dataclass
class Grid:
    """One device's cells as rows of source releases and columns of destination releases."""

    device: str
    sources: list[str]
    destinations: list[str]
    #: Pairing names in the order the marks of a grid cell are drawn.
    pairings: list[str]
    cells: dict[tuple[str, str], list[Cell]] = field(default_factory=dict)
    #: The machine type every cell of the grid ran; empty: each source release's own.
    machine: str = ""

    def at(self, source: str, destination: str) -> list[Cell]:
        """The cells of one (source, destination), in pairing order."""
        return self.cells.get((source, destination), [])

    @property
    def title(self) -> str:
        return machine_title(self.device, self.machine)

    @property
    def anchor(self) -> str:
        """A name unique among the grids of a report: ``virtio`` or ``virtio@pc-i440fx-5.2``."""
        return f"{self.device}@{self.machine}" if self.machine else self.device

    @property
    def all_cells(self) -> list[Cell]:
        return [
            cell
            for source in self.sources
            for destination in self.destinations
            for cell in self.at(source, destination)
        ]


def machine_title(name: str, machine: str) -> str:
    """A grid's heading: the device (or table) name, and the machine type when its cells share one."""
    return f"{name} under machine type {machine}" if machine else name


def grids(results: MatrixResults) -> list[Grid]:
    """One grid per device and machine type (the sources' own first), releases
    and pairings in the order the matrix ran them."""
    made: list[Grid] = []
    groups = dict.fromkeys((cell.device, cell.machine) for cell in results.cells)
    for device, machine in sorted(groups, key=lambda group: (results.devices().index(group[0]), group[1] != "")):
        cells = [cell for cell in results.cells if cell.device == device and cell.machine == machine]
        grid = Grid(
            device=device,
            sources=list(dict.fromkeys(cell.source for cell in cells)),
            destinations=list(dict.fromkeys(cell.destination for cell in cells)),
            pairings=list(dict.fromkeys(cell.pairing for cell in cells)),
            machine=machine,
        )
        order = {pairing: index for index, pairing in enumerate(grid.pairings)}
        for cell in sorted(cells, key=lambda cell: order[cell.pairing]):
            grid.cells.setdefault((cell.source, cell.destination), []).append(cell)
        made.append(grid)
    return made


def verdict(cell: Cell) -> str:
    """Why the cell passes or fails the gate, in a few words."""
    if cell.waived and cell.matches:
        return "FAILS: waived, but now matches its expectation; remove the waiver"
    if cell.waived:
        return f"waived: {cell.outcome.value} instead of {cell.expected.value}"
    if not cell.matches:
        return f"FAILS: {cell.outcome.value}, expected {cell.expected.value}"
    if cell.failed:
        return f"FAILS: {cell.outcome.value} always fails unless waived"
    return "as expected"


def counts_text(cell: Cell) -> str:
    """``4 examples: 3 ok, 1 refused``, outcomes from best to worst."""
    parts = [f"{cell.counts[outcome.value]} {outcome.value}" for outcome in OUTCOMES if cell.counts.get(outcome.value)]
    known = {outcome.value for outcome in Outcome}
    extra = [f"{count} {name}" for name, count in sorted(cell.counts.items()) if name not in known]
    listed = ", ".join(parts + extra)
    return f"{cell.examples} examples" + (f": {listed}" if listed else "")


def example_text(example: Any, limit: int = EXAMPLE_CHARS) -> str:
    """A shrunk example as compact JSON, cut at ``limit`` characters."""
    if example is None:
        return ""
    text = json.dumps(example, sort_keys=True, separators=(",", ":"), default=str)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters in matrix.json)"


def detail_fields(cell: Cell, example_limit: int = EXAMPLE_CHARS) -> list[tuple[str, str]]:
    """(label, value) pairs that explain a cell; empty values are left out."""
    detail = cell.detail
    rows = [
        ("cell", cell.key),
        ("outcome", cell.outcome.value),
        ("expected", cell.expected.value),
        ("verdict", verdict(cell)),
        ("message", detail.message),
        ("path", detail.path),
        ("offset", "" if detail.offset is None else str(detail.offset)),
        ("examples", counts_text(cell)),
        ("seed", "" if detail.seed is None else str(detail.seed)),
        ("seconds", f"{cell.seconds:.3f}"),
        ("replay", detail.replay),
        ("example", example_text(detail.example, example_limit)),
    ]
    return [(label, value) for label, value in rows if value]


def detail_text(cell: Cell, example_limit: int = EXAMPLE_CHARS) -> str:
    """The cell's explanation as ``label: value`` lines."""
    return "\n".join(f"{label}: {value}" for label, value in detail_fields(cell, example_limit))


def headline(results: MatrixResults) -> str:
    """``205 cells: 203 pass, 2 fail`` -- the first thing every report says."""
    failing = len(results.failures)
    return f"{len(results.cells)} cells: {len(results.cells) - failing} pass, {failing} fail"


@dataclass
class MutantRow:
    """Mutant results of one device, mutant class and wire format."""

    device: str
    mutant_class: str
    format: str
    results: list[MutantResult] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        return Counter(result.outcome.value for result in self.results)


def mutant_rows(results: MatrixResults) -> list[MutantRow]:
    """Mutants grouped by (device, class, format), in the order they were run."""
    rows: dict[tuple[str, str, str], MutantRow] = {}
    for result in results.mutants:
        key = (result.device, result.mutant_class, result.format)
        rows.setdefault(key, MutantRow(*key)).results.append(result)
    return list(rows.values())


@dataclass
class ReleaseGrid:
    """Release-level negotiation as rows of source releases and columns of destinations."""

    sources: list[str]
    destinations: list[str]
    rows: dict[tuple[str, str], ReleaseRow]
    #: The machine type of every row; empty: each source's own.
    machine: str = ""

    def at(self, source: str, destination: str) -> ReleaseRow | None:
        return self.rows.get((source, destination))

    @property
    def title(self) -> str:
        return machine_title("Releases", self.machine)


def release_grids(results: MatrixResults) -> list[ReleaseGrid]:
    """One grid per machine type the release rows ran, the sources' own first;
    a machine type's grid lists the releases that run it."""
    made = []
    for machine in dict.fromkeys(row.machine for row in results.releases):
        rows = [row for row in results.releases if row.machine == machine]
        made.append(
            ReleaseGrid(
                sources=list(dict.fromkeys(row.source for row in rows)),
                destinations=list(dict.fromkeys(row.destination for row in rows)),
                rows={(row.source, row.destination): row for row in rows},
                machine=machine,
            )
        )
    return made


def release_text(row: ReleaseRow) -> str:
    """A release pair's negotiation, with each device's verdict, as lines."""
    lines = [
        f"{row.source} -> {row.destination}" + (f" under machine type {row.machine}" if row.machine else ""),
        f"protocol: {row.protocol or 'none in common'}",
        f"worst outcome: {row.worst.value}",
    ]
    lines.extend(f"{device}: {value}" for device, value in row.devices.items())
    return "\n".join(lines)


# -- the static checker next to the dynamic outcomes ------------------------------------


def agreement_headline(results: MatrixResults) -> str:
    """``717 static verdicts compared with the dynamic outcome: 6 disagree``."""
    return (
        f"{len(results.agreement)} static verdicts compared with the dynamic outcome: "
        f"{len(results.disagreements)} disagree"
    )


def mutant_agreement(results: MatrixResults) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(device, mutant class, format) -> (static verdicts that agree, verdicts compared)."""
    counts: dict[tuple[str, str, str], tuple[int, int]] = {}
    for row in results.agreement:
        if row.kind != "mutant":
            continue
        key = (row.device, row.mutant_class, row.format)
        agree, total = counts.get(key, (0, 0))
        counts[key] = (agree + row.agrees, total + 1)
    return counts


def agreement_text(counts: tuple[int, int] | None) -> str:
    """``16/16 agree`` or ``14/16 agree, 2 differ``; empty when nothing was compared."""
    if counts is None:
        return ""
    agree, total = counts
    return f"{agree}/{total} agree" + (f", {total - agree} differ" if agree != total else "")


@dataclass
class StaticGrid:
    """One device's release pairs: the static verdict and whether each pairing's outcome agrees."""

    device: str
    sources: list[str]
    destinations: list[str]
    rows: dict[tuple[str, str], list[Agreement]] = field(default_factory=dict)
    machine: str = ""

    def at(self, source: str, destination: str) -> list[Agreement]:
        return self.rows.get((source, destination), [])

    @property
    def title(self) -> str:
        return machine_title(self.device, self.machine)


def static_grids(results: MatrixResults) -> list[StaticGrid]:
    made: dict[str, StaticGrid] = {}
    for row in sorted(results.agreement, key=lambda row: row.machine != ""):
        if row.kind != "cell":
            continue
        grid = made.setdefault(f"{row.device}@{row.machine}", StaticGrid(row.device, [], [], machine=row.machine))
        if row.source not in grid.sources:
            grid.sources.append(row.source)
        if row.destination not in grid.destinations:
            grid.destinations.append(row.destination)
        grid.rows.setdefault((row.source, row.destination), []).append(row)
    return list(made.values())


def static_cell_text(rows: list[Agreement]) -> str:
    """A release pair's static verdict (the rules when incompatible) and how the pairings compare."""
    if not rows:
        return ""
    verdicts = list(dict.fromkeys(row.verdict for row in rows))
    differ = [row.format for row in rows if not row.agrees]
    shown = "; ".join(verdicts)
    return shown + (" — agrees" if not differ else f" — differs on {', '.join(differ)}")


def disagreement_text(row: Agreement) -> str:
    """One disagreement as a line: where, both verdicts, and why."""
    return f"{row.key}: static {row.verdict}, dynamic {row.dynamic} — {row.reason}"
