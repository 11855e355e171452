"""The static checker against the dynamic matrix: one verdict next to one outcome, everywhere.

Why: the static checker (:mod:`migcompat.schema.diff`) and the matrix
(:mod:`migcompat.compat.matrix`, :mod:`migcompat.compat.mutants`) answer the same question --
does what this release writes load right in that one? -- from two sides: the
schemas alone, or real streams. Every disagreement is a bug in one of them (a
rule that misses a change, a dynamic run that never exercises one), so the
matrix report puts the static verdict next to every cell and every mutant run
and counts where they differ.

Strategy: the static side goes through the whole pipeline a person uses --
each description becomes its JSON Schema (:mod:`migcompat.schema.visitor`),
is read back (:mod:`migcompat.schema.read`) and compared -- for every release
pair of a device (forward: the cell's source writes, its destination reads)
and for every mutant the matrix ran, in both of its directions. The verdict is
per wire format: incompatible when a finding breaks the wire the destination
reads (``qemufile`` for the qemufile pairings, ``ber`` for the BER ones and for
``dict``, which is self-describing like BER). A dynamic ``refused``,
``detected`` or ``corrupt`` is incompatible, ``ok``/``harmless`` compatible,
and a ``crash`` never agrees (it is a bug). For a mutant, an incompatible
verdict must also name the rule its change is about (a width mutant must be
``WIDTH_CHANGED``, not just any rule). A disagreement carries the reason,
computed where it can be: a sign change no state of the run can show (every
value below the top bit) is said to be one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from typing import Any

from migcompat import devices
from migcompat.compat import mutants
from migcompat.compat.cell import PAIRING_PATHS, MatrixConfig, states_for
from migcompat.compat.mutants import MUTANT_TO_REAL, REAL_TO_MUTANT, Mutant
from migcompat.compat.results import Agreement, Cell, MatrixResults, MutantResult
from migcompat.model.layout import Layout
from migcompat.model.vmstate import Array, Description, Field, FieldType, Scalar, State
from migcompat.outcomes import MutantOutcome, Outcome
from migcompat.schema.diff import Report, compare
from migcompat.schema.read import read
from migcompat.schema.visitor import SCHEMA_FORMAT, description_schema
from migcompat.wire.visitor import INTEGER_KINDS

#: The format name of the static checker's rows in the mutation table.
STATIC = "static"
COMPATIBLE = "compatible"
INCOMPATIBLE = "incompatible"

#: The rule a rename of an ``unused`` placeholder (QEMU's dumps) is reported under:
#: its bytes are dropped whatever its name, so only the names on BER differ.
PLACEHOLDER_RULE = "FIELD_UNUSED"

#: The rule a mutant class must be reported under, per direction.
EXPECTED_RULES: dict[tuple[str, str], str] = {
    **{
        (cls, direction): rule
        for cls, rule in (
            ("width", "WIDTH_CHANGED"),
            ("sign", "SIGN_CHANGED"),
            ("reorder", "FIELD_REORDERED"),
            ("rename", "FIELD_RENAMED"),
            ("list-struct", "SHAPE_CHANGED"),
            ("buffer-length", "BUFFER_SIZE_CHANGED"),
        )
        for direction in (MUTANT_TO_REAL, REAL_TO_MUTANT)
    },
    # The mutant has a member the real description lacks ...
    ("insert", MUTANT_TO_REAL): "FIELD_REMOVED",
    ("insert", REAL_TO_MUTANT): "FIELD_ADDED",
    ("no-version-bump", MUTANT_TO_REAL): "FIELD_REMOVED",
    ("no-version-bump", REAL_TO_MUTANT): "FIELD_ADDED",
    # ... or lacks one the real description has.
    ("delete", MUTANT_TO_REAL): "FIELD_ADDED",
    ("delete", REAL_TO_MUTANT): "FIELD_REMOVED",
}

_DYNAMIC_INCOMPATIBLE = {
    Outcome.REFUSED.value,
    Outcome.DETECTED.value,
    Outcome.CORRUPT.value,
    MutantOutcome.DETECTED.value,
    MutantOutcome.CORRUPT.value,
}
_DYNAMIC_COMPATIBLE = {Outcome.OK.value, MutantOutcome.HARMLESS.value}


def pairing_wire(pairing: str) -> str:
    """The wire format a pairing's destination reads (``dict`` counts as self-describing, like BER)."""
    last = PAIRING_PATHS[pairing][-1]
    return "ber" if last == "dict" else last


def layout(description: Description) -> Layout:
    """A description as the static checker sees it: through its JSON Schema."""
    document = description_schema(description)
    document["x-migcompat"] = {"format": SCHEMA_FORMAT, "kind": "device"}
    return read(document, description.name)


def static_report(source: Description, destination: Description) -> Report:
    """What the static checker finds when ``source`` writes and ``destination`` reads."""
    return compare(layout(source), layout(destination))


#: The verdict on a cell whose destination cannot run the machine type: the
#: static checker reads the destination's machine types as it reads its layouts.
MACHINE_RULE = "MACHINE_TYPE_UNKNOWN"


@cache
def release_report(device: str, source: str, destination: str, machine: str = "") -> Report:
    """The static checker on two releases of a device, both under ``machine`` (empty: the source's own)."""
    found = devices.get(device)
    there = found.release(destination)
    machine = found.machine_of(found.release(source), machine)
    return static_report(found.at(found.release(source), machine).description, found.at(there, machine).description)


def _cell_verdict(cell: Cell) -> tuple[str, list[str]]:
    found = devices.get(cell.device)
    machine = found.machine_of(found.release(cell.source), cell.machine)
    if not found.knows_machine(found.release(cell.destination), machine):
        return INCOMPATIBLE, [MACHINE_RULE]
    return _verdict(
        release_report(cell.device, cell.source, cell.destination, cell.machine), pairing_wire(cell.pairing)
    )


def _verdict(report: Report, wire: str) -> tuple[str, list[str]]:
    rules = report.rules((wire,))
    return (INCOMPATIBLE if rules else COMPATIBLE), rules


def _dynamic_verdict(outcome: str) -> str | None:
    if outcome in _DYNAMIC_INCOMPATIBLE:
        return INCOMPATIBLE
    if outcome in _DYNAMIC_COMPATIBLE:
        return COMPATIBLE
    return None  # a crash


# -- cells ------------------------------------------------------------------------------


def cell_rows(cells: Sequence[Cell]) -> list[Agreement]:
    """The static verdict of each cell's release pair next to the cell's outcome."""
    rows = []
    for cell in cells:
        wire = pairing_wire(cell.pairing)
        static, rules = _cell_verdict(cell)
        agrees, reason = _judge(static, rules, cell.outcome.value, cell.detail.message, wire)
        rows.append(
            Agreement(
                kind="cell",
                device=cell.device,
                source=cell.source,
                destination=cell.destination,
                format=cell.pairing,
                static=static,
                rules=rules,
                dynamic=cell.outcome.value,
                agrees=agrees,
                reason=reason,
                machine=cell.machine,
            )
        )
    return rows


def _judge(static: str, rules: list[str], outcome: str, detail: str, wire: str) -> tuple[bool, str]:
    dynamic = _dynamic_verdict(outcome)
    if dynamic is None:
        return False, f"the dynamic run crashed ({detail}): a bug on the dynamic side"
    if dynamic == static:
        return True, ""
    if static == COMPATIBLE:
        return False, (
            f"the static checker finds nothing that breaks {wire}, but the dynamic run is {outcome}"
            + (f": {detail}" if detail else "")
        )
    return False, (
        f"the static checker reports {', '.join(rules)}, but every state the dynamic run tried loaded right "
        "on this wire: no state exercises the change"
    )


# -- mutants ----------------------------------------------------------------------------


def mutant_rows(
    config: MatrixConfig, results: Sequence[MutantResult], *, all_releases: bool = False
) -> tuple[list[MutantResult], list[Agreement]]:
    """For every mutant the matrix ran: the static checker's row for the mutation table
    (format ``static``: ``detected`` when incompatible on any wire, else ``harmless``)
    and its verdict next to each dynamic result."""
    dynamic = {
        (result.device, result.release, result.mutant, result.direction, result.format): result for result in results
    }
    static_results: list[MutantResult] = []
    rows: list[Agreement] = []
    examples = mutants.run_examples(config)
    part, parts = config.shard
    for device, release in mutants.selected_releases(config, all_releases=all_releases):
        states = states_for(device.name, release.name, examples, config.seed)
        for index, mutant in enumerate(mutants.derive(release.description, states=states)):
            if index % parts != part:
                continue
            for direction in (MUTANT_TO_REAL, REAL_TO_MUTANT):
                writer, reader = (
                    (mutant.description, release.description)
                    if direction == MUTANT_TO_REAL
                    else (release.description, mutant.description)
                )
                report = static_report(writer, reader)
                static_results.append(_static_result(device.name, release.name, mutant, direction, report))
                for fmt in mutants.FORMATS:
                    result = dynamic.get((device.name, release.name, mutant.name, direction, fmt))
                    if result is None:
                        continue
                    rows.append(_mutant_row(mutant, direction, report, result, states))
    return static_results, rows


def _static_result(device: str, release: str, mutant: Mutant, direction: str, report: Report) -> MutantResult:
    breaking = report.breaking()
    first = breaking[0] if breaking else None
    return MutantResult(
        device=device,
        release=release,
        mutant=mutant.name,
        mutant_class=mutant.mutant_class,
        format=STATIC,
        direction=direction,
        outcome=MutantOutcome.DETECTED if first else MutantOutcome.HARMLESS,
        detail=f"{first.rule} at {first.path}: {first.message}" if first else "no finding breaks a wire",
    )


def _mutant_row(
    mutant: Mutant, direction: str, report: Report, result: MutantResult, states: Sequence[State]
) -> Agreement:
    static, rules = _verdict(report, result.format)
    agrees, reason = _judge(static, rules, result.outcome.value, result.detail, result.format)
    expected = EXPECTED_RULES.get((mutant.mutant_class, direction))
    all_rules = [finding.rule for finding in report.breaking()]
    if mutant.mutant_class == "rename" and PLACEHOLDER_RULE in all_rules:
        expected = PLACEHOLDER_RULE
    if agrees and expected is not None and expected not in all_rules:
        agrees = False
        reason = f"a {mutant.mutant_class} mutant should be reported as {expected}, the static checker says {rules}"
    if not agrees and static == INCOMPATIBLE and rules == ["SIGN_CHANGED"]:
        explained = _sign_unexercised(mutant, [*states, *mutants.edge_states(mutant, states)])
        if explained:
            reason = explained
    return Agreement(
        kind="mutant",
        device=result.device,
        source=result.release,
        destination=result.release,
        format=result.format,
        static=static,
        rules=rules,
        dynamic=result.outcome.value,
        agrees=agrees,
        reason=reason,
        mutant=mutant.name,
        mutant_class=mutant.mutant_class,
        direction=direction,
    )


def _reach(value: Any, steps: Sequence[tuple[str, str]]) -> Iterator[Mapping[str, Any]]:
    """Every container of a state the mutant's steps lead to."""
    if not steps:
        if isinstance(value, dict):
            yield value
        return
    (kind, name), rest = steps[0], steps[1:]
    if kind == "each":
        for item in value if isinstance(value, list) else ():
            yield from _reach(item, rest)
    elif isinstance(value, dict) and name in value:
        yield from _reach(value[name], rest)


def _integer_kind(kind: FieldType) -> str | None:
    """The integer kind of a scalar member, or of the scalars of a list member."""
    if isinstance(kind, Scalar):
        return kind.kind if kind.kind in INTEGER_KINDS else None
    if isinstance(kind, Array):
        return _integer_kind(kind.element)
    return None


def _integers(value: Any) -> Iterator[int]:
    if isinstance(value, list):
        for item in value:
            yield from _integers(item)
    elif type(value) is int:
        yield value


def _sign_unexercised(mutant: Mutant, states: Sequence[State]) -> str:
    """Why a sign mutant loaded right everywhere: no state had a value the change shows on."""
    member = mutant.members[0] if mutant.members else None
    fields: tuple[Field, ...] = next(
        (found.fields for found in mutants.containers(mutant.real) if found.steps == mutant.container), ()
    )
    real = next((candidate for candidate in fields if candidate.name == member), None)
    kind = None if real is None else _integer_kind(real.type)
    if member is None or kind is None:
        return ""
    bits, signed = INTEGER_KINDS[kind]
    values = [v for state in states for found in _reach(state, mutant.container) for v in _integers(found.get(member))]
    top = 0 if signed else 1 << (bits - 1)
    if any(value < 0 if signed else value >= top for value in values):
        return ""
    highest = max(values, default=0)
    return (
        f"value-dependent: {mutant.path} changes sign, which shows only on values with the top bit set; every "
        f"state the run tried ({len(states)} states, {len(values)} values, the largest {highest}) has it clear, "
        "and no edge state with it set is one the real release writes (its post-load checks refuse one, or the "
        "member sizes or gates another); the static checker cannot know a field's valid range"
    )


# -- the whole run ----------------------------------------------------------------------


def attach(results: MatrixResults, config: MatrixConfig) -> None:
    """Add the static checker to a matrix run: its mutant rows and every comparison."""
    results.agreement = cell_rows(results.cells)
    if config.mutants:
        static_results, rows = mutant_rows(config, results.mutants)
        results.mutants.extend(static_results)
        results.agreement.extend(rows)


__all__ = [
    "EXPECTED_RULES",
    "STATIC",
    "attach",
    "cell_rows",
    "layout",
    "mutant_rows",
    "pairing_wire",
    "static_report",
]
