"""Each command's outcome as CI findings: the static checker's report, the golden gate, the matrix.

Why: the formats (:mod:`migcompat.ci.github`, :mod:`~migcompat.ci.sarif`,
:mod:`~migcompat.ci.junit`) only lay out; deciding what is a check, what is
an error and where it points is done here, once per command.

Where a finding points:

* ``diff``: the member's entry in the destination-side file (NEW, or OLD
  where the member exists only there), at the line of its JSON pointer. A
  release named on the command line points at its committed schema
  (``corpora/schemas``) when that file is what the name resolves to.
* ``gate``: the golden example's ``.json`` state, at the field the load broke on.
* ``matrix``: the destination release's description -- its committed schema,
  or the QEMU dump it was read from -- at the member the failing example's
  field path names (its section, when the path names no member).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from migcompat import devices
from migcompat.ci.findings import Check, Finding, Level, Location, Results, Rule
from migcompat.ci.locate import file_line
from migcompat.compat.golden import GateResult, GoldenCell
from migcompat.compat.results import Cell, MatrixResults
from migcompat.errors import UsageError
from migcompat.model.layout import Kind, Layout, List, Record, Section
from migcompat.outcomes import Outcome
from migcompat.qemu import dump as qemu_dump
from migcompat.schema import dump as schema_dump
from migcompat.schema import read as schema_read
from migcompat.schema.diff import Finding as DiffFinding
from migcompat.schema.diff import Report
from migcompat.schema.rules import Level as DiffLevel
from migcompat.schema.rules import rule as diff_rule

_STATIC_HELP = "README.md#schema-and-static-checking"
_MATRIX_HELP = "README.md#the-compatibility-matrix"
_INDEX = re.compile(r"\[(\d*)\]$")


# -- where a file is ----------------------------------------------------------------------


def relative(path: Path) -> str:
    """``path`` as an annotation names it: relative to the working directory where it is inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def committed_schema(name: str, machine: str = "", root: Path | None = None) -> Path | None:
    """The committed schema file a release name resolves to, when it holds exactly that document."""
    base = root or Path(schema_dump.DEFAULT_DIRECTORY)
    parts = name.split("@")
    if len(parts) > 2 or machine:
        return None
    try:
        document = schema_dump.resolve(name)
    except UsageError:
        return None
    candidate = base / schema_dump.RELEASES_DIRECTORY / f"{name}.json"
    if len(parts) == 2:
        candidate = base / parts[0] / f"{parts[1]}.json"
    elif name in devices.registry():
        candidate = base / name / f"{devices.registry()[name].releases[-1].name}.json"
    try:
        return candidate if json.loads(candidate.read_text(encoding="utf-8")) == document else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def side_file(argument: str, machine: str = "") -> Path | None:
    """The file a ``diff`` argument reads, or the committed schema a name stands for."""
    path = Path(argument)
    if path.is_file():
        return path
    return committed_schema(argument, machine)


def _place(logical: str, file: Path | None, pointer: str | None) -> Location:
    if file is None:
        return Location(logical)
    line = file_line(file, pointer) if pointer is not None else None
    return Location(logical, relative(file), line)


# -- diff ---------------------------------------------------------------------------------


def _diff_level(finding: DiffFinding, wires: Sequence[str]) -> Level:
    if finding.breaks & set(wires):
        return Level.ERROR
    return Level.NOTE if finding.level is DiffLevel.ADVISORY else Level.WARNING


def of_diff(
    report: Report,
    old: str,
    new: str,
    layouts: tuple[Layout, Layout],
    wires: Sequence[str],
    summary: str,
    machine: str = "",
) -> Results:
    """One check per (direction, section) of either side; a finding per static finding."""
    files = (side_file(old, machine), side_file(new, machine))
    results = Results("diff", (old, new), summary=summary)
    sections = list(dict.fromkeys([*layouts[0].sections, *layouts[1].sections]))
    for direction in report.directions:
        checks = {name: Check(f"diff.{direction}", name) for name in sections}
        for finding in (finding for finding in report.findings if finding.direction == direction):
            rule = diff_rule(finding.rule)
            results.add_rule(Rule(rule.id, rule.summary, _STATIC_HELP))
            # The line to change is on the new side; a member only the old side has is shown there.
            file, pointer = (files[1], finding.new) if finding.new is not None else (files[0], finding.old)
            check = checks.setdefault(finding.section, Check(f"diff.{direction}", finding.section or "(document)"))
            message = f"{direction}: {finding.message} [{finding.level.value}]"
            location = _place(finding.path or finding.section or "(document)", file, pointer)
            check.findings.append(Finding(finding.rule, _diff_level(finding, wires), message, location))
        for check in checks.values():
            check.output = "compatible" if not check.failed else ""
        results.checks.extend(checks.values())
    return results


# -- the golden gate ----------------------------------------------------------------------

_GOLDEN_FILE = Rule("GOLDEN_FILE", "a golden stream is missing, unexpected or stale", "corpora/golden/README.md")


def _outcome_rule(outcome: Outcome) -> Rule:
    return Rule(
        f"CELL_{outcome.value.upper()}", f"a cell's outcome is {outcome.value}, not the one expected", _MATRIX_HELP
    )


_STALE_WAIVER = Rule(
    "WAIVER_NOW_MATCHES", "a waived cell now has its expected outcome: remove the waiver", _MATRIX_HELP
)


def _state_pointer(path: str, device: str) -> str:
    """A golden state document's pointer for a field path (``slirp/sockets[2]/so_state`` or
    ``sockets[2]/so_state`` -> ``/state/sockets/2/so_state``)."""
    tokens = ["state"]
    parts = path.split("/") if path else []
    for part in parts[1:] if parts and parts[0] == device else parts:
        match = _INDEX.search(part)
        name = part[: match.start()] if match else part
        if name:
            tokens.append(name)
        if match and match.group(1):
            tokens.append(match.group(1))
    return "".join("/" + token.replace("~", "~0").replace("/", "~1") for token in tokens)


def _golden_check(cell: GoldenCell, root: Path) -> Check:
    check = Check(f"gate.{cell.device}", cell.key, output=f"{cell.outcome.value} (expected {cell.expected.value})")
    if not cell.failed:
        return check
    load = cell.shown
    state = root / Path(load.file).with_suffix(".json")
    where = f" at {load.path}" if load.path else ""
    where += f", byte offset {load.offset}" if load.offset is not None else ""
    message = f"{cell.outcome.value} (expected {cell.expected.value}) loading {load.file}{where}: {load.message}"
    location = _place(
        f"{cell.key}:{load.path}" if load.path else cell.key, state, _state_pointer(load.path, cell.device)
    )
    check.findings.append(Finding(_outcome_rule(cell.outcome).id, Level.ERROR, message, location))
    return check


def of_gate(result: GateResult, root: Path, summary: str) -> Results:
    results = Results("gate", ("--golden", str(root)), summary=summary)
    for cell in result.cells:
        check = _golden_check(cell, root)
        if check.failed:
            results.add_rule(_outcome_rule(cell.outcome))
        results.checks.append(check)
    for problem in result.problems:
        name = problem.split(":", 1)[0]
        check = Check("gate.files", name)
        file = root / name
        location = Location(name, relative(file) if file.is_file() else relative(root))
        check.findings.append(Finding(results.add_rule(_GOLDEN_FILE), Level.ERROR, problem, location))
        results.checks.append(check)
    return results


# -- the matrix ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Description:
    """A release's description as a file: where it is and the layout read from it."""

    file: Path
    layout: Layout


def _children(kind: Kind) -> Iterable[tuple[str, Kind, str]]:
    while isinstance(kind, List):
        kind = kind.element
    if isinstance(kind, (Record, Section)):
        for member in kind.members:
            yield member.name, member.kind, member.pointer
    if isinstance(kind, Section):
        for subsection in kind.subsections:
            yield subsection.name, subsection.description, subsection.pointer


def member_pointer(layout: Layout, section: str, path: str) -> str | None:
    """The pointer of the deepest member of ``section`` the field path names (the section's, at least)."""
    top = layout.sections.get(section)
    if top is None:
        return None
    kind: Kind = top.description
    found = top.pointer
    parts = path.split("/") if path else []
    # A visitor's path starts with the description's name; a state comparison's does not.
    if parts and parts[0] in (section, top.description.name):
        parts = parts[1:]
    for part in parts:
        name = _INDEX.sub("", part)
        child = next((child for child in _children(kind) if child[0] == name), None)
        if child is None:
            break
        _, kind, found = child
    return found


class Descriptions:
    """The description files of the matrix's releases: committed schemas, or the QEMU dumps given."""

    def __init__(self, dumps: Mapping[str, Path] | None = None, schemas: Path | None = None) -> None:
        self._dumps = dict(dumps or {})
        self._schemas = schemas or Path(schema_dump.DEFAULT_DIRECTORY)
        self._read: dict[Path, Layout | None] = {}

    def _layout(self, file: Path, qemu: bool) -> Layout | None:
        if file not in self._read:
            try:
                document = json.loads(file.read_text(encoding="utf-8"))
                layout = qemu_dump.read(document, str(file)) if qemu else schema_read.read(document, str(file))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, UsageError, RecursionError):
                layout = None
            self._read[file] = layout
        return self._read[file]

    def location(self, cell: Cell) -> Location:
        logical = f"{cell.key}:{cell.detail.path}" if cell.detail.path else cell.key
        qemu = cell.device.startswith("qemu:")
        if qemu:
            file = self._dumps.get(cell.destination)
            section = cell.device.removeprefix("qemu:")
        else:
            file = self._schemas / cell.device / f"{cell.destination}.json"
            section = cell.device
        if file is None or not file.is_file():
            return Location(logical)
        layout = self._layout(file, qemu)
        if layout is not None and section not in layout.sections and len(layout.sections) == 1:
            section = next(iter(layout.sections))
        pointer = member_pointer(layout, section, cell.detail.path) if layout is not None else None
        return _place(logical, file, pointer)


def _cell_finding(cell: Cell, descriptions: Descriptions) -> tuple[Rule, Finding]:
    if cell.waived:
        rule = _STALE_WAIVER
        message = f"{cell.outcome.value}: waived, but now matches its expectation (remove the waiver)"
    else:
        rule = _outcome_rule(cell.outcome)
        message = f"{cell.outcome.value} (expected {cell.expected.value})"
        message += f": {cell.detail.message}" if cell.detail.message else ""
    if cell.detail.replay:
        message += f"\nreplay: {cell.detail.replay}"
    return rule, Finding(rule.id, Level.ERROR, message, descriptions.location(cell))


def of_matrix(results: MatrixResults, descriptions: Descriptions, summary: str) -> Results:
    """A check per cell (suite: device and source release); a finding per failing cell."""
    out = Results("matrix", summary=summary, seconds=float(results.meta.get("seconds", 0.0)))
    for cell in results.cells:
        check = Check(f"matrix.{cell.device}.{cell.source}", cell.key, seconds=cell.seconds)
        check.output = f"{cell.outcome.value} (expected {cell.expected.value})"
        if cell.failed:
            rule, finding = _cell_finding(cell, descriptions)
            out.add_rule(rule)
            check.findings.append(finding)
        out.checks.append(check)
    return out


__all__ = ["Descriptions", "committed_schema", "member_pointer", "of_diff", "of_gate", "of_matrix", "side_file"]
