"""Mutant descriptions: measure, rather than assume, which wire format notices a layout change.

Why: the point of the self-describing BER format (DESIGN §4) is that a change to
a device's layout -- a wider integer, a signed one, two members swapped, a member
renamed, inserted or dropped, an array turned into a struct, a buffer resized, a
field added without a version bump -- is *detected* on load instead of being
misread silently as the legacy QEMUFile stream does. A claim like that is only
as good as the cases it was tried on, so this module derives those cases
mechanically from every real description (DESIGN §7): each :class:`Mutant` is the
real description with one such change, as a careless next release would ship it.
The mutant and the real release then exchange states in both directions on each
wire format, and each (mutant, format, direction) gets one
:class:`~migcompat.outcomes.MutantOutcome`: ``detected`` (the reader refused with a
:class:`~migcompat.errors.DecodeError`), ``harmless`` (it loaded the right state),
``corrupt`` (it loaded a wrong one) or ``crash`` (anything else).

Strategy:

* Mutations are applied to every *container* of a description -- the top-level
  fields, nested structs, the element structs of arrays, nested descriptions and
  subsections -- and are addressed by a path of steps from the root, so the
  mutated description is rebuilt along that path and real states are mapped into
  the mutant's shape (and back) along the same path, copying only what changes.
* "The right state" is decided by names, independently of every visitor: the
  writer's state is mapped into the reader's vocabulary (a renamed member keeps
  its value, an array of N scalars becomes the N members of a struct, a member the
  reader lacks is dropped, one the writer lacks takes its default) and projected
  onto the reader with :func:`migcompat.model.projection.project`.
* States are the release's fixed edge states plus a few drawn by the device's own
  strategy under the run's seed (:func:`migcompat.compat.cell.states_for`), mapped into
  the mutant's shape and then *fitted* to its types (integers wrapped to the
  width, fixed buffers padded or cut). They are not drawn from
  ``migcompat.model.strategies.states(mutant)`` directly: without a device's overrides
  that strategy draws length fields over their whole range (a ``config_len`` of
  three billion sizes a three-gigabyte buffer) and states that the device's
  post-load checks reject, which would turn every cell into noise.
* A mutant keeps the post-load checks of the real description, applied to its
  loaded state mapped back to the real shape -- the checks a careful author would
  have renamed along with the field.
* The count is capped per class (:data:`DEFAULT_PER_CLASS`), chosen
  deterministically: candidates touching values the states actually hold first,
  then round robin over containers so every level is represented.
* :func:`ber_misses` checks the invariant the BER format exists for: whatever
  corrupts silently on qemufile must be detected on BER.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from migcompat import devices
from migcompat.compat import cell
from migcompat.compat.cell import MatrixConfig
from migcompat.compat.results import MutantResult
from migcompat.devices.base import Device, Release
from migcompat.errors import DecodeError, DescriptionError, UsageError
from migcompat.model.projection import first_difference, project
from migcompat.model.vmstate import (
    Array,
    Buffer,
    Description,
    Field,
    FieldRef,
    FieldType,
    Scalar,
    State,
    Struct,
    Validator,
)
from migcompat.outcomes import MutantOutcome
from migcompat.wire.visitor import INTEGER_KINDS, ListFraming, integer_range

#: The mutant classes, in the order reports list them.
MUTANT_CLASSES: tuple[str, ...] = (
    "width",
    "sign",
    "reorder",
    "rename",
    "insert",
    "delete",
    "list-struct",
    "buffer-length",
    "no-version-bump",
)
#: Wire formats a mutant is run on.
FORMATS: tuple[str, ...] = ("qemufile", "ber")
MUTANT_TO_REAL = "mutant->real"
REAL_TO_MUTANT = "real->mutant"
DIRECTIONS: tuple[str, ...] = (MUTANT_TO_REAL, REAL_TO_MUTANT)
#: Most mutants of one class per device release.
DEFAULT_PER_CLASS = 8
#: Drawn states per release (on top of the device's fixed states).
DEFAULT_EXAMPLES = 2
#: Longest fixed array (or struct) that list-struct converts.
MAX_LIST_STRUCT = 16
#: Names of the members the insert and no-version-bump mutants add.
INSERTED_NAME = "mutant_inserted"
ADDED_NAME = "mutant_added"
RENAMED_SUFFIX = "_renamed"
ADDED_KIND = "uint32"

#: Worst first when a mutant's states disagree: crash > corrupt > detected > harmless.
_SEVERITY = {
    MutantOutcome.HARMLESS: 0,
    MutantOutcome.DETECTED: 1,
    MutantOutcome.CORRUPT: 2,
    MutantOutcome.CRASH: 3,
}

StateMap = Callable[[State], State]
ValueMap = Callable[[Any], Any]
#: One step from a description to a container: ("field", name), ("sub",
#: subsection name) or ("each", "") into every element of a list.
Step = tuple[str, str]
FIELD, SUB, EACH = "field", "sub", "each"


# -- the mutant ----------------------------------------------------------------


@dataclass(frozen=True)
class Mutant:
    """The real description with one change, and how states cross between the two.

    ``to_mutant`` maps a state of the real description into the mutant's shape
    (values unchanged: it is what a name-faithful mutant *should* load), ``fit``
    makes a mutant-shaped state fit the mutant's types (what the mutant can
    write), ``to_real`` maps a mutant-shaped state back to the real shape.
    """

    name: str
    mutant_class: str
    #: The mutated description.
    description: Description
    #: The description it was derived from.
    real: Description
    #: Where the change is, as a field path (``queues/desc``; empty for the top level).
    path: str
    #: The changed container, as steps from the root, and the real members the change is about.
    container: tuple[Step, ...]
    members: tuple[str, ...]
    to_mutant: StateMap
    to_real: StateMap
    fit: StateMap

    def mutant_state(self, real_state: State) -> State:
        """A state the mutant can write, made from one of the real description."""
        return self.fit(self.to_mutant(real_state))


# -- state transforms (all copy what they change, never mutate) ------------------


def _apply(value: Any, steps: tuple[Step, ...], transform: StateMap) -> Any:
    """``transform`` applied to every container ``steps`` reach inside ``value``."""
    if not steps:
        return transform(value) if isinstance(value, dict) else value
    kind, name = steps[0]
    if kind == EACH:
        return [_apply(item, steps[1:], transform) for item in value] if isinstance(value, list) else value
    if not isinstance(value, dict) or name not in value:
        return value  # an absent subsection: nothing to map
    out = dict(value)
    out[name] = _apply(value[name], steps[1:], transform)
    return out


def _reach(value: Any, steps: tuple[Step, ...]) -> Iterator[Mapping[str, Any]]:
    """Every container ``steps`` reach inside ``value``."""
    if not steps:
        if isinstance(value, dict):
            yield value
        return
    kind, name = steps[0]
    if kind == EACH:
        if isinstance(value, list):
            for item in value:
                yield from _reach(item, steps[1:])
    elif isinstance(value, dict) and name in value:
        yield from _reach(value[name], steps[1:])


@dataclass(frozen=True)
class _AtPath:
    """A container-level transform applied along a path from the root."""

    steps: tuple[Step, ...]
    transform: StateMap

    def __call__(self, state: State) -> State:
        result: State = _apply(state, self.steps, self.transform)
        return result


@dataclass(frozen=True)
class _Identity:
    def __call__(self, state: State) -> State:
        return state


@dataclass(frozen=True)
class _Rename:
    old: str
    new: str

    def __call__(self, state: State) -> State:
        return {self.new if key == self.old else key: value for key, value in state.items()}


@dataclass(frozen=True)
class _Drop:
    name: str

    def __call__(self, state: State) -> State:
        return {key: value for key, value in state.items() if key != self.name}


@dataclass(frozen=True)
class _Add:
    """Add a member at its default (a fresh default each time)."""

    field: Field

    def __call__(self, state: State) -> State:
        return {**state, self.field.name: self.field.default_value()}


@dataclass(frozen=True)
class _MapMember:
    """Map one member's value."""

    name: str
    convert: ValueMap

    def __call__(self, state: State) -> State:
        if self.name not in state:
            return state
        return {**state, self.name: self.convert(state[self.name])}


@dataclass(frozen=True)
class _ToStruct:
    """A list of N values -> a dict of N named members."""

    names: tuple[str, ...]

    def __call__(self, value: Any) -> Any:
        return dict(zip(self.names, value, strict=False)) if isinstance(value, list) else value


@dataclass(frozen=True)
class _ToList:
    """A dict of named members -> the list of their values."""

    names: tuple[str, ...]

    def __call__(self, value: Any) -> Any:
        return [value.get(name) for name in self.names] if isinstance(value, dict) else value


@dataclass(frozen=True)
class _Each:
    convert: ValueMap

    def __call__(self, value: Any) -> Any:
        return [self.convert(item) for item in value] if isinstance(value, list) else value


@dataclass(frozen=True)
class _FitMembers:
    """Make a container's members fit the mutant's field types."""

    fields: tuple[Field, ...]

    def __call__(self, state: State) -> State:
        return _fit_fields(self.fields, state)


def _wrap(kind: str, value: int) -> int:
    """``value`` as the integer of ``kind`` with the same low bits."""
    bits, signed = INTEGER_KINDS[kind]
    value &= (1 << bits) - 1
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


def _fit(kind: FieldType, value: Any) -> Any:
    if isinstance(kind, Scalar):
        if kind.kind in INTEGER_KINDS and type(value) is int:
            return _wrap(kind.kind, value)
        return value
    if isinstance(kind, Buffer):
        if isinstance(kind.size, int) and isinstance(value, (bytes, bytearray)):
            return bytes(value[: kind.size]) + bytes(max(0, kind.size - len(value)))
        return value
    if isinstance(kind, Struct):
        return _fit_fields(kind.fields, value) if isinstance(value, dict) else value
    if isinstance(kind, Description):
        return fit(kind, value) if isinstance(value, dict) else value
    return [_fit(kind.element, item) for item in value] if isinstance(value, list) else value


def _fit_fields(fields: tuple[Field, ...], state: State) -> State:
    out = dict(state)
    for member in fields:
        if member.name in out:
            out[member.name] = _fit(member.type, out[member.name])
    return out


def fit(description: Description, state: State) -> State:
    """``state`` with every integer wrapped to its width and every fixed buffer
    padded or cut to its size, so that ``description`` can write it."""
    out = _fit_fields(description.fields, state)
    for sub in description.subsections:
        if isinstance(out.get(sub.name), dict):
            out[sub.name] = fit(sub.description, out[sub.name])
    return out


# -- post-load checks and needed() of a mutant: the real ones, mapped back ---------


@dataclass(frozen=True)
class _MappedValidator:
    original: Validator
    to_real: StateMap

    def __call__(self, state: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
        return self.original(self.to_real(dict(state)))


@dataclass(frozen=True)
class _MappedNeeded:
    original: Callable[[Mapping[str, Any]], bool]
    to_real: StateMap

    def __call__(self, state: Mapping[str, Any]) -> bool:
        return self.original(self.to_real(dict(state)))


# -- containers and rebuilding ------------------------------------------------------


@dataclass(frozen=True)
class _Container:
    """A place holding members: a description, a struct, or the element struct of a list."""

    steps: tuple[Step, ...]
    label: str
    fields: tuple[Field, ...]
    #: The version the walker checks members against here (the enclosing description's).
    version: int
    is_description: bool

    def member(self, name: str) -> str:
        return f"{self.label}/{name}" if self.label else name


def _join(label: str, name: str) -> str:
    return f"{label}/{name}" if label and name else label or name


def containers(description: Description) -> list[_Container]:
    """Every container of ``description``, depth first in declaration order."""
    found: list[_Container] = []

    def visit_description(desc: Description, steps: tuple[Step, ...], label: str) -> None:
        found.append(_Container(steps, label, desc.fields, desc.version_id, True))
        for member in desc.fields:
            visit_type(member.type, (*steps, (FIELD, member.name)), _join(label, member.name), desc.version_id)
        for sub in desc.subsections:
            visit_description(sub.description, (*steps, (SUB, sub.name)), _join(label, sub.name))

    def visit_type(kind: FieldType, steps: tuple[Step, ...], label: str, version: int) -> None:
        if isinstance(kind, Struct):
            found.append(_Container(steps, label, kind.fields, version, False))
            for member in kind.fields:
                visit_type(member.type, (*steps, (FIELD, member.name)), _join(label, member.name), version)
        elif isinstance(kind, Description):
            visit_description(kind, steps, label)
        elif isinstance(kind, Array):
            visit_type(kind.element, (*steps, (EACH, "")), label, version)

    visit_description(description, (), "")
    return found


def _rebuild_description(
    desc: Description, steps: tuple[Step, ...], fields: tuple[Field, ...], to_real: StateMap
) -> Description:
    fields_out = desc.fields
    subsections = desc.subsections
    if not steps:
        fields_out = fields
    else:
        (kind, name), rest = steps[0], steps[1:]
        if kind == FIELD:
            fields_out = tuple(
                replace(member, type=_rebuild_type(member.type, rest, fields, to_real))
                if member.name == name
                else member
                for member in desc.fields
            )
        elif kind == SUB:
            subsections = tuple(
                replace(sub, description=_rebuild_description(sub.description, rest, fields, to_real))
                if sub.name == name
                else sub
                for sub in desc.subsections
            )
        else:
            raise DescriptionError(f"{desc.name}: a description has no list step")
    # Checks and needed() predicates see this description's state: map it back
    # to the real shape along the rest of the path first.
    back = _AtPath(steps, to_real)
    subsections = tuple(
        replace(sub, needed=_MappedNeeded(sub.needed, back)) if sub.needed is not None else sub for sub in subsections
    )
    validate = _MappedValidator(desc.validate, back) if desc.validate is not None else None
    return replace(desc, fields=fields_out, subsections=subsections, validate=validate)


def _rebuild_type(kind: FieldType, steps: tuple[Step, ...], fields: tuple[Field, ...], to_real: StateMap) -> FieldType:
    if isinstance(kind, Description):
        return _rebuild_description(kind, steps, fields, to_real)
    if not steps:
        if not isinstance(kind, Struct):
            raise DescriptionError(f"path ends at a {type(kind).__name__}, not a container")
        return Struct(kind.name, fields)
    (step, name), rest = steps[0], steps[1:]
    if step == EACH and isinstance(kind, Array):
        return replace(kind, element=_rebuild_type(kind.element, rest, fields, to_real))
    if step == FIELD and isinstance(kind, Struct):
        return Struct(
            kind.name,
            tuple(
                replace(member, type=_rebuild_type(member.type, rest, fields, to_real))
                if member.name == name
                else member
                for member in kind.fields
            ),
        )
    raise DescriptionError(f"step {step} {name!r} does not apply to a {type(kind).__name__}")


# -- candidate changes ------------------------------------------------------------------


@dataclass(frozen=True)
class _Change:
    """One change to one container: its new members and the container-level maps."""

    mutant_class: str
    name: str
    container: _Container
    fields: tuple[Field, ...]
    to_mutant: StateMap
    to_real: StateMap
    #: Real members whose values the change is about (for preferring present ones).
    touches: tuple[str, ...]
    #: Where, for the mutant's path.
    where: str


def _integer_kind(kind: FieldType) -> str | None:
    """The integer kind of a scalar, or of the scalars at the bottom of nested lists."""
    if isinstance(kind, Scalar):
        return kind.kind if kind.kind in INTEGER_KINDS else None
    if isinstance(kind, Array):
        return _integer_kind(kind.element)
    return None


def _with_integer_kind(kind: FieldType, new: str) -> FieldType:
    if isinstance(kind, Array):
        return replace(kind, element=_with_integer_kind(kind.element, new))
    return Scalar(new)


def _list_suffix(kind: FieldType) -> str:
    return "[]" + _list_suffix(kind.element) if isinstance(kind, Array) else ""


def _integer_name(bits: int, signed: bool) -> str:
    return f"{'int' if signed else 'uint'}{bits}"


def _wider_or_narrower(kind: str) -> str:
    bits, signed = INTEGER_KINDS[kind]
    return _integer_name(bits * 2 if bits < 64 else 32, signed)


def _other_sign(kind: str) -> str:
    bits, signed = INTEGER_KINDS[kind]
    return _integer_name(bits, not signed)


def _fresh(base: str, fields: tuple[Field, ...]) -> str:
    names = {member.name for member in fields}
    name, index = base, 1
    while name in names:
        index += 1
        name = f"{base}{index}"
    return name


def _swap(fields: tuple[Field, ...], index: int, member: Field) -> tuple[Field, ...]:
    return (*fields[:index], member, *fields[index + 1 :])


def _uniform_struct(kind: Struct) -> Scalar | None:
    """The one scalar type of a struct whose members are all that type, unconditionally."""
    if not 1 <= len(kind.fields) <= MAX_LIST_STRUCT:
        return None
    first = kind.fields[0].type
    if not isinstance(first, Scalar):
        return None
    for member in kind.fields:
        if member.type != first or member.since or member.until is not None or member.when is not None:
            return None
        if member.default is not None and member.default != first.default():
            return None
    return first


def _list_struct(kind: FieldType, name: str) -> tuple[FieldType, ValueMap, ValueMap, str] | None:
    """The list<->struct conversion of a member's type: (new type, real->mutant
    value map, mutant->real value map, what changed) -- through lists of them too."""
    if isinstance(kind, Array):
        element = kind.element
        if (
            isinstance(element, Scalar)
            and isinstance(kind.length, int)
            and kind.framing.kind is ListFraming.KNOWN
            and 1 <= kind.length <= MAX_LIST_STRUCT
        ):
            names = tuple(f"{name}_{index}" for index in range(kind.length))
            struct = Struct(name, tuple(Field(member, element) for member in names))
            return struct, _ToStruct(names), _ToList(names), f"array[{kind.length}]->struct"
        inner = _list_struct(element, name)
        if inner is None:
            return None
        new_element, forward, backward, what = inner
        return replace(kind, element=new_element), _Each(forward), _Each(backward), f"[]{what}"
    if isinstance(kind, Struct):
        scalar = _uniform_struct(kind)
        if scalar is None:
            return None
        names = tuple(member.name for member in kind.fields)
        array = Array(scalar, length=len(names))
        return array, _ToList(names), _ToStruct(names), f"struct->array[{len(names)}]"
    return None


def _changes(container: _Container) -> Iterator[_Change]:
    fields = container.fields
    label = container.label
    prefix = f"{label}/" if label else ""
    identity = _Identity()

    def change(
        cls: str, name: str, new_fields: tuple[Field, ...], touches: tuple[str, ...], **maps: StateMap
    ) -> _Change:
        return _Change(
            cls,
            f"{cls}:{name}",
            container,
            new_fields,
            maps.get("to_mutant", identity),
            maps.get("to_real", identity),
            touches,
            container.member(touches[0]) if touches else label,
        )

    for index, member in enumerate(fields):
        where = container.member(member.name) + _list_suffix(member.type)
        kind = _integer_kind(member.type)
        if kind is not None:
            for cls, new in (("width", _wider_or_narrower(kind)), ("sign", _other_sign(kind))):
                retyped = replace(member, type=_with_integer_kind(member.type, new))
                yield change(cls, f"{where}:{kind}->{new}", _swap(fields, index, retyped), (member.name,))
        converted = _list_struct(member.type, member.name)
        if converted is not None:
            new_type, forward, backward, what = converted
            yield change(
                "list-struct",
                f"{container.member(member.name)}:{what}",
                _swap(fields, index, replace(member, type=new_type)),
                (member.name,),
                to_mutant=_MapMember(member.name, forward),
                to_real=_MapMember(member.name, backward),
            )
        if isinstance(member.type, Buffer) and isinstance(member.type.size, int):
            size = member.type.size
            for new_size in (size + 1, size - 1):
                if new_size >= 0:
                    resized = replace(member, type=Buffer(new_size))
                    yield change(
                        "buffer-length", f"{where}:{size}->{new_size}", _swap(fields, index, resized), (member.name,)
                    )
        if index + 1 < len(fields):
            other = fields[index + 1]
            swapped = (*fields[:index], other, member, *fields[index + 2 :])
            yield change("reorder", f"{prefix}{member.name}<->{other.name}", swapped, (member.name, other.name))
        renamed = _fresh(member.name + RENAMED_SUFFIX, fields)
        yield change(
            "rename",
            f"{container.member(member.name)}->{renamed}",
            _swap(fields, index, replace(member, name=renamed)),
            (member.name,),
            to_mutant=_Rename(member.name, renamed),
            to_real=_Rename(renamed, member.name),
        )
        yield change(
            "delete",
            container.member(member.name),
            (*fields[:index], *fields[index + 1 :]),
            (member.name,),
            to_mutant=_Drop(member.name),
            to_real=_Add(member),
        )
    if len(fields) >= 2:
        at = len(fields) // 2
        inserted = Field(_fresh(INSERTED_NAME, fields), Scalar(ADDED_KIND))
        yield change(
            "insert",
            f"{prefix}{inserted.name}:{ADDED_KIND}@{fields[at].name}",
            (*fields[:at], inserted, *fields[at:]),
            (),
            to_mutant=_Add(inserted),
            to_real=_Drop(inserted.name),
        )
    added = Field(_fresh(ADDED_NAME, fields), Scalar(ADDED_KIND), since=container.version)
    yield change(
        "no-version-bump",
        f"{prefix}{added.name}:{ADDED_KIND}@v{container.version}",
        (*fields, added),
        (),
        to_mutant=_Add(added),
        to_real=_Drop(added.name),
    )


def _build(description: Description, change: _Change) -> Mutant | None:
    steps = change.container.steps
    try:
        mutated = _rebuild_description(description, steps, change.fields, change.to_real)
    except DescriptionError:
        return None  # the change makes no valid description (a length field moved after its user ...)
    return Mutant(
        name=change.name,
        mutant_class=change.mutant_class,
        description=mutated,
        real=description,
        path=change.where,
        container=steps,
        members=change.touches,
        to_mutant=_AtPath(steps, change.to_mutant),
        to_real=_AtPath(steps, change.to_real),
        fit=_AtPath(steps, _FitMembers(change.fields)),
    )


# -- choosing which mutants to run -------------------------------------------------------


def _score(change: _Change, states: Sequence[State], reached: dict[tuple[Step, ...], list[Mapping[str, Any]]]) -> int:
    """2: the states put a non-default value of a member the change is about on
    the wire; 1: they reach the container; 0: the change is vacuous for them (an
    absent subsection, an always-empty list, a member no stream of this version
    carries, such as slirp's pre-v4 addresses)."""
    steps = change.container.steps
    if steps not in reached:
        reached[steps] = [found for state in states for found in _reach(state, steps)]
    found = reached[steps]
    if not found:
        return 0
    if not change.touches:
        return 2
    version = change.container.version
    members = {member.name: member for member in change.container.fields}
    defaults = {name: members[name].default_value() for name in change.touches}
    carried: set[str] = set()
    changed = False
    for container in found:
        for name in change.touches:
            if members[name].present(version, container):
                carried.add(name)
                changed = changed or container.get(name) != defaults[name]
        if changed and len(carried) == len(change.touches):
            return 2
    return 1 if len(carried) == len(change.touches) else 0


def _select(candidates: list[tuple[_Change, Mutant]], states: Sequence[State], per_class: int | None) -> list[Mutant]:
    """Deterministic choice of at most ``per_class`` mutants: containers the
    states exercise first, then round robin over containers (so every level is
    represented), the best-scored changes of each container first."""
    if per_class is None:
        return [mutant for _, mutant in candidates]
    reached: dict[tuple[Step, ...], list[Mapping[str, Any]]] = {}
    groups: dict[tuple[Step, ...], list[tuple[int, int, Mutant]]] = {}
    for position, (change, mutant) in enumerate(candidates):
        score = _score(change, states, reached)
        groups.setdefault(change.container.steps, []).append((score, position, mutant))
    ordered = sorted(groups.values(), key=lambda group: (-max(item[0] for item in group), group[0][1]))
    queues = [sorted(group, key=lambda item: (-item[0], item[1])) for group in ordered]
    chosen: list[Mutant] = []
    depth = 0
    while len(chosen) < per_class and any(depth < len(queue) for queue in queues):
        for queue in queues:
            if depth < len(queue) and len(chosen) < per_class:
                chosen.append(queue[depth][2])
        depth += 1
    return chosen


def _moves_nothing(change: _Change) -> bool:
    """True for a reorder or delete of a member that carries no bytes in the model
    (a buffer of size 0: a QEMU dump's field of unknown size, ``virtio``,
    ``msix``): on the real wire that member has bytes the model cannot show, so
    no run can measure what the change does."""
    if change.mutant_class not in ("reorder", "delete"):
        return False
    members = {member.name: member for member in change.container.fields}
    return any(not _carries_bytes(members[name].type) for name in change.touches)


def _carries_bytes(kind: FieldType) -> bool:
    if isinstance(kind, Buffer):
        return not (isinstance(kind.size, int) and kind.size == 0)
    if isinstance(kind, Array):
        return not (isinstance(kind.length, int) and kind.length == 0) and _carries_bytes(kind.element)
    if isinstance(kind, Description):
        return bool(kind.subsections) or any(_carries_bytes(member.type) for member in kind.fields)
    if isinstance(kind, Struct):
        return any(_carries_bytes(member.type) for member in kind.fields)
    return True


def derive(
    description: Description, *, states: Sequence[State] = (), per_class: int | None = DEFAULT_PER_CLASS
) -> list[Mutant]:
    """The mutants of ``description``: for each class, at most ``per_class``
    (None: all), preferring changes to values ``states`` actually hold. Changes
    that make no valid description are skipped."""
    by_class: dict[str, list[tuple[_Change, Mutant]]] = {name: [] for name in MUTANT_CLASSES}
    for container in containers(description):
        for change in _changes(container):
            if _moves_nothing(change):
                continue
            mutant = _build(description, change)
            if mutant is not None:
                by_class[change.mutant_class].append((change, mutant))
    return [mutant for name in MUTANT_CLASSES for mutant in _select(by_class[name], states, per_class)]


# -- edge states ----------------------------------------------------------------------

#: Classes whose outcome on qemufile depends on the values: a sign change only
#: shows with the top bit set, a swap of two same-width members only when they
#: differ. (A width change moves every later byte whatever the value.)
EDGE_CLASSES: tuple[str, ...] = ("sign", "reorder")


def _fields_at(description: Description, steps: tuple[Step, ...]) -> tuple[Field, ...]:
    """The members of the container ``steps`` lead to."""
    kind: FieldType = description
    for step, name in steps:
        if step == EACH and isinstance(kind, Array):
            kind = kind.element
        elif step == SUB and isinstance(kind, Description):
            sub = kind.subsection(name)
            if sub is None:
                return ()
            kind = sub.description
        elif step == FIELD and isinstance(kind, (Struct, Description)):
            kind = next((member.type for member in kind.fields if member.name == name), Struct("", ()))
        else:
            return ()
    return kind.fields if isinstance(kind, (Struct, Description)) else ()


def _edge_values(kind: str) -> tuple[int, int]:
    """The values that show a sign or width change: all bits set (or the most
    negative), then the top bit alone (or -1)."""
    bits, signed = INTEGER_KINDS[kind]
    low, high = integer_range(kind)
    return (low, -1) if signed else (high, 1 << (bits - 1))


def _set_integer(to: int, value: Any) -> Any:
    """``value`` with every integer in it (every element, for a list) set to ``to``."""
    if isinstance(value, list):
        return [_set_integer(to, item) for item in value]
    return to if type(value) is int else value


def _length_names(kind: FieldType) -> set[str]:
    """Members whose value sizes a buffer or a list of this type."""
    if isinstance(kind, Buffer) and isinstance(kind.size, FieldRef):
        return {kind.size.name}
    if isinstance(kind, Array):
        own = {kind.length.name} if isinstance(kind.length, FieldRef) else set()
        return own | _length_names(kind.element)
    return set()


def _checks_on_path(
    description: Description, steps: tuple[Step, ...]
) -> Iterator[tuple[Description, tuple[Step, ...]]]:
    """Every description from the root down to the container, with the steps to its state."""
    kind: FieldType = description
    yield description, ()
    for position, (step, name) in enumerate(steps):
        if step == EACH and isinstance(kind, Array):
            kind = kind.element
        elif step == SUB and isinstance(kind, Description):
            sub = kind.subsection(name)
            if sub is None:
                return
            kind = sub.description
        elif step == FIELD and isinstance(kind, (Struct, Description)):
            kind = next((member.type for member in kind.fields if member.name == name), Struct("", ()))
        else:
            return
        if isinstance(kind, Description) and step != EACH:
            yield kind, steps[: position + 1]


def _valid_edge(description: Description, steps: tuple[Step, ...], member: Field, state: State) -> bool:
    """Whether a state with ``member`` changed is still one the real release could
    write: the member sizes or conditions nothing, and every post-load check on
    the way down to it accepts the state."""
    for other in _fields_at(description, steps):
        if member.name in _length_names(other.type) or (other.when is not None and other.when[0] == member.name):
            return False
    for desc, prefix in _checks_on_path(description, steps):
        if desc.validate is None:
            continue
        for sub_state in _reach(state, prefix):
            if any(True for _ in desc.validate(sub_state)):
                return False
    return True


def edge_states(mutant: Mutant, real_states: Sequence[State]) -> list[State]:
    """For the value-sensitive classes (:data:`EDGE_CLASSES`), one more real state:
    the one reaching the changed container most often, with the first changed
    member set to an edge value of its real type everywhere -- if the device
    still calls that state valid (a value its checks reject, such as a feature
    bit the device does not offer, is not a state any real release writes)."""
    if mutant.mutant_class not in EDGE_CLASSES or not mutant.members:
        return []
    member = next((f for f in _fields_at(mutant.real, mutant.container) if f.name == mutant.members[0]), None)
    kind = None if member is None else _integer_kind(member.type)
    if member is None or kind is None:
        return []
    counts = [sum(1 for _ in _reach(state, mutant.container)) for state in real_states]
    if not counts or max(counts) == 0:
        return []
    base = real_states[counts.index(max(counts))]
    for value in _edge_values(kind):
        candidate: State = _apply(base, mutant.container, _MapMember(member.name, partial(_set_integer, value)))
        if candidate != base and _valid_edge(mutant.real, mutant.container, member, candidate):
            return [candidate]
    return []


# -- running ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Case:
    outcome: MutantOutcome
    detail: str


def _worst(cases: Sequence[_Case]) -> _Case:
    if not cases:
        return _Case(MutantOutcome.HARMLESS, "no states")
    worst = max(cases, key=lambda case: _SEVERITY[case.outcome])
    return _Case(worst.outcome, f"state {cases.index(worst)}: {worst.detail}")


def _run_one(
    fmt: str, writer: Description, reader: Description, encoded: Callable[[], Any], expected: Callable[[], State]
) -> _Case:
    try:
        stream = encoded()
    except Exception as error:  # the writer could not write a state made for it: a harness bug, shown
        return _Case(MutantOutcome.CRASH, f"the writer could not encode: {type(error).__name__}: {error}")
    try:
        loaded = cell.decode(fmt, reader, stream, writer.version_id)
    except DecodeError as error:
        return _Case(MutantOutcome.DETECTED, f"{type(error).__name__}: {error}")
    except Exception as error:
        return _Case(MutantOutcome.CRASH, f"{type(error).__name__}: {error}")
    try:
        where = first_difference(expected(), loaded)
    except Exception as error:
        return _Case(MutantOutcome.CRASH, f"cannot compare: {type(error).__name__}: {error}")
    if where is None:
        return _Case(MutantOutcome.HARMLESS, "loaded the right state")
    return _Case(MutantOutcome.CORRUPT, f"loaded without error, but differs at {where}")


class _Encodings:
    """Encodings of the real states, shared by every mutant of a release."""

    def __init__(self, description: Description, states: Sequence[State]) -> None:
        self.description = description
        self.states = states
        self._cache: dict[tuple[str, int], Any] = {}

    def get(self, fmt: str, index: int) -> Any:
        key = (fmt, index)
        if key not in self._cache:
            self._cache[key] = cell.encode(fmt, self.description, self.states[index])
        return self._cache[key]


def run_mutant(
    mutant: Mutant,
    real_states: Sequence[State],
    *,
    device: str = "",
    release: str = "",
    formats: Sequence[str] = FORMATS,
    directions: Sequence[str] = DIRECTIONS,
    encodings: _Encodings | None = None,
) -> list[MutantResult]:
    """Run one mutant against the real description over ``real_states``: one
    result per (format, direction), the worst outcome over the states.

    ``mutant->real``: the mutant writes each state mapped into its shape (and
    fitted to its types), the real description loads it, and should get the
    mutant's state mapped back. ``real->mutant``: the real description writes
    each state, the mutant loads it, and should get the state mapped into its
    shape. ``encodings`` shares the real side's streams between the mutants of a
    release (it must hold the first states of ``real_states``).
    """
    unknown = [direction for direction in directions if direction not in DIRECTIONS]
    if unknown:
        raise UsageError(f"unknown direction {unknown[0]!r} (known: {', '.join(DIRECTIONS)})")
    real = mutant.real
    shared = encodings if encodings is not None else _Encodings(real, real_states)
    mutant_states = [mutant.mutant_state(state) for state in real_states] if MUTANT_TO_REAL in directions else []
    expected: dict[tuple[str, int], State] = {}

    def expect(direction: str, index: int) -> State:
        key = (direction, index)
        if key not in expected:
            if direction == REAL_TO_MUTANT:
                expected[key] = project(mutant.to_mutant(real_states[index]), mutant.description, mutant.description)
            else:
                expected[key] = project(mutant.to_real(mutant_states[index]), real, real)
        return expected[key]

    def writes(direction: str, fmt: str, index: int) -> Callable[[], Any]:
        if direction == MUTANT_TO_REAL:
            return partial(cell.encode, fmt, mutant.description, mutant_states[index])
        if index < len(shared.states):
            return partial(shared.get, fmt, index)
        return partial(cell.encode, fmt, real, real_states[index])

    results: list[MutantResult] = []
    for direction in directions:
        writer, reader = (mutant.description, real) if direction == MUTANT_TO_REAL else (real, mutant.description)
        for fmt in formats:
            cases = [
                _run_one(fmt, writer, reader, writes(direction, fmt, index), partial(expect, direction, index))
                for index in range(len(real_states))
            ]
            case = _worst(cases)
            results.append(
                MutantResult(
                    device=device,
                    release=release,
                    mutant=mutant.name,
                    mutant_class=mutant.mutant_class,
                    format=fmt,
                    direction=direction,
                    outcome=case.outcome,
                    detail=case.detail,
                )
            )
    return results


def run_release(
    device: Device,
    release: Release,
    *,
    seed: int,
    examples: int = DEFAULT_EXAMPLES,
    per_class: int | None = DEFAULT_PER_CLASS,
    formats: Sequence[str] = FORMATS,
    directions: Sequence[str] = DIRECTIONS,
) -> list[MutantResult]:
    """Every chosen mutant of one release, on each format, in both directions."""
    results: list[MutantResult] = []
    for _index, found in run_release_part(
        device, release, seed=seed, examples=examples, per_class=per_class, formats=formats, directions=directions
    ):
        results += found
    return results


def run_release_part(
    device: Device,
    release: Release,
    *,
    seed: int,
    examples: int = DEFAULT_EXAMPLES,
    per_class: int | None = DEFAULT_PER_CLASS,
    formats: Sequence[str] = FORMATS,
    directions: Sequence[str] = DIRECTIONS,
    part: int = 0,
    parts: int = 1,
) -> list[tuple[int, list[MutantResult]]]:
    """The mutants of one release whose index is ``part`` modulo ``parts``, with
    their index: worker processes each run one part, and the parts interleave
    back into :func:`run_release`'s order."""
    states = cell.states_for(device.name, release.name, examples, seed)
    encodings = _Encodings(release.description, states)
    found: list[tuple[int, list[MutantResult]]] = []
    for index, mutant in enumerate(derive(release.description, states=states, per_class=per_class)):
        if index % parts != part:
            continue
        results = run_mutant(
            mutant,
            [*states, *edge_states(mutant, states)],
            device=device.name,
            release=release.name,
            formats=formats,
            directions=directions,
            encodings=encodings,
        )
        found.append((index, results))
    return found


def _run_part(task: tuple[str, str, int, int, int | None, int, int]) -> list[tuple[int, list[MutantResult]]]:
    """One worker's share (picklable arguments: names, not objects)."""
    device_name, release_name, seed, examples, per_class, part, parts = task
    device = devices.get(device_name)
    return run_release_part(
        device, device.release(release_name), seed=seed, examples=examples, per_class=per_class, part=part, parts=parts
    )


def run_all(
    config: MatrixConfig, *, all_releases: bool = False, per_class: int | None = DEFAULT_PER_CLASS
) -> list[MutantResult]:
    """The mutation matrix for ``config.devices`` (every device when empty) under
    ``config.seed``: each device's newest release, or every release with
    ``all_releases``. At most :data:`DEFAULT_EXAMPLES` drawn states per release
    (fewer when ``config.examples`` is smaller), on top of the fixed ones."""
    examples = run_examples(config)
    pairs = selected_releases(config, all_releases=all_releases)
    # A shard runs every ``count``-th mutant from ``first``; each job every ``jobs``-th of those.
    first, count = config.shard
    jobs = config.jobs
    tasks = [
        (device.name, release.name, config.seed, examples, per_class, first + count * job, count * jobs)
        for device, release in pairs
        for job in range(jobs)
    ]
    if jobs <= 1:
        shares = [_run_part(task) for task in tasks]
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            shares = list(pool.map(_run_part, tasks))
    results: list[MutantResult] = []
    for start in range(0, len(shares), jobs):
        merged = sorted((pair for share in shares[start : start + jobs] for pair in share), key=lambda pair: pair[0])
        for _index, found in merged:
            results += found
    return results


def selected_releases(config: MatrixConfig, *, all_releases: bool = False) -> list[tuple[Device, Release]]:
    """The (device, release) pairs :func:`run_all` runs: each selected device's
    newest release, or every release with ``all_releases``."""
    registry = devices.registry()
    names = config.devices or tuple(registry)
    for name in names:
        if name not in registry:
            raise UsageError(f"unknown device {name!r} (known: {', '.join(registry)})")
    return [
        (registry[name], release)
        for name in names
        for release in (registry[name].releases if all_releases else (registry[name].newest,))
    ]


def run_examples(config: MatrixConfig) -> int:
    """Drawn states per release :func:`run_all` uses for ``config``."""
    return min(config.examples, DEFAULT_EXAMPLES)


# -- summaries and the BER invariant ---------------------------------------------------


def summary(results: Iterable[MutantResult]) -> dict[tuple[str, str, str], dict[str, int]]:
    """(device, mutant class, format) -> how many (mutant, direction) pairs had
    each outcome; every outcome is a key, zero included."""
    totals: dict[tuple[str, str, str], dict[str, int]] = {}
    for result in results:
        counts = totals.setdefault(
            (result.device, result.mutant_class, result.format), {outcome.value: 0 for outcome in MutantOutcome}
        )
        counts[result.outcome.value] += 1
    return totals


def render_summary(results: Iterable[MutantResult]) -> str:
    """:func:`summary` as a plain-text table."""
    totals = summary(results)
    outcomes = [outcome.value for outcome in MutantOutcome]
    header = f"{'device':<8} {'class':<16} {'format':<9} " + " ".join(f"{name:>8}" for name in outcomes)
    lines = [header, "-" * len(header)]
    order = {name: index for index, name in enumerate(MUTANT_CLASSES)}
    for device, cls, fmt in sorted(totals, key=lambda key: (key[0], order.get(key[1], 99), key[2])):
        counts = totals[(device, cls, fmt)]
        lines.append(f"{device:<8} {cls:<16} {fmt:<9} " + " ".join(f"{counts[name]:>8}" for name in outcomes))
    return "\n".join(lines)


@dataclass(frozen=True)
class BerMiss:
    """A mutant that corrupts silently on qemufile and that BER did not detect."""

    device: str
    release: str
    mutant: str
    mutant_class: str
    direction: str
    qemufile_detail: str
    #: BER's outcome, or None when BER was not run for this mutant and direction.
    ber_outcome: MutantOutcome | None
    ber_detail: str


def ber_misses(results: Iterable[MutantResult]) -> list[BerMiss]:
    """Every (mutant, direction) that is ``corrupt`` on qemufile but not
    ``detected`` on BER -- the invariant the BER format exists for. A missing BER
    result counts as a miss: the invariant is not shown."""
    listed = list(results)
    ber = {
        (result.device, result.release, result.mutant, result.direction): result
        for result in listed
        if result.format == "ber"
    }
    misses: list[BerMiss] = []
    for result in listed:
        if result.format != "qemufile" or result.outcome is not MutantOutcome.CORRUPT:
            continue
        other = ber.get((result.device, result.release, result.mutant, result.direction))
        if other is not None and other.outcome is MutantOutcome.DETECTED:
            continue
        misses.append(
            BerMiss(
                device=result.device,
                release=result.release,
                mutant=result.mutant,
                mutant_class=result.mutant_class,
                direction=result.direction,
                qemufile_detail=result.detail,
                ber_outcome=None if other is None else other.outcome,
                ber_detail="" if other is None else other.detail,
            )
        )
    return misses


__all__ = [
    "DEFAULT_EXAMPLES",
    "DEFAULT_PER_CLASS",
    "DIRECTIONS",
    "FORMATS",
    "MUTANT_CLASSES",
    "MUTANT_TO_REAL",
    "REAL_TO_MUTANT",
    "BerMiss",
    "Mutant",
    "ber_misses",
    "containers",
    "derive",
    "edge_states",
    "fit",
    "render_summary",
    "run_all",
    "run_mutant",
    "run_examples",
    "run_release",
    "selected_releases",
    "summary",
]
