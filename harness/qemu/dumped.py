"""Descriptions read from QEMU's ``-dump-vmstate``: every device class of a release, for the matrix.

Why: a dump lists every device class a QEMU binary knows, with field names,
the stream version each field arrived in, byte sizes and (from QEMU 8.0)
element counts, nested descriptions and subsections. Read into our
descriptions, two releases' dumps run through the same matrix as the
hand-modelled devices: states generated for release A, saved through each
pairing, loaded with release B's description.

What a dump cannot say, and how it is read:

* types: a dump gives sizes only, so every field is bytes of its size (an
  array: that many elements of its element size). A width change shows as a
  size change; a sign change cannot be seen at all;
* element counts before QEMU 8.0 (no ``num``): taken from a dump that gives
  them for the same section and field path when one is read alongside, else
  one element (:func:`count_hints`);
* ``field_exists`` (a test function decides whether the field is sent): read
  as always sent -- the test is C code the dump does not carry;
* subsections are sent when a state has them (QEMU's ``needed`` functions are
  C code too);
* two fields of one name (QEMU's ``unused`` placeholders): the second and later
  are named ``name#2``, ``name#3`` (names are how our states address fields);
  a ``/`` in a field name (a path separator here) is written ``%2F``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from migcompat.errors import DescriptionError, UsageError
from migcompat.model.layout import Layout, Member, Opaque, Section
from migcompat.model.vmstate import Array, Buffer, Description, Field, FieldType, State, Subsection

#: (section key, field path inside it) -> element count, from dumps that give counts.
CountHints = Mapping[tuple[str, str], int]


def count_hints(layouts: list[Layout]) -> dict[tuple[str, str], int]:
    """Element counts by (section, field path) from every dump that gives them."""
    hints: dict[tuple[str, str], int] = {}
    for layout in layouts:
        if not layout.counts_known:
            continue
        for key, top in layout.sections.items():
            _collect(key, top.description, "", hints)
    return hints


def _collect(key: str, section: Section, prefix: str, hints: dict[tuple[str, str], int]) -> None:
    for member, name in zip(section.members, field_names(section), strict=True):
        path = f"{prefix}{name}"
        if isinstance(member.kind, Opaque) and member.kind.count is not None:
            hints.setdefault((key, path), member.kind.count)
        elif isinstance(member.kind, Section):
            if member.count is not None:
                hints.setdefault((key, path), member.count)
            _collect(key, member.kind, f"{path}/", hints)
    for sub in section.subsections:
        _collect(key, sub.description, f"{prefix}{sub.name}/", hints)


def field_names(section: Section) -> list[str]:
    """The names our descriptions give a dump section's fields, in order (see the module text)."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for member in section.members:
        seen[member.name] = seen.get(member.name, 0) + 1
        name = member.name.replace("/", "%2F")
        names.append(name if seen[member.name] == 1 else f"{name}#{seen[member.name]}")
    return names


def unsized(section: Section, prefix: str = "") -> list[str]:
    """The paths of the fields a dump gives no size for (size 0): a buffer sized by
    another field at run time, or a field QEMU writes with its own function
    (``virtio``, ``msix``, ``shpc``) -- their bytes are not in the dump."""
    found: list[str] = []
    for member, name in zip(section.members, field_names(section), strict=True):
        if isinstance(member.kind, Section):
            found.extend(unsized(member.kind, f"{prefix}{name}/"))
        elif isinstance(member.kind, Opaque) and member.kind.size == 0:
            found.append(f"{prefix}{name}")
    for sub in section.subsections:
        found.extend(unsized(sub.description, f"{prefix}{sub.name}/"))
    return found


def descriptions(layout: Layout, label: str, hints: CountHints) -> dict[str, Description]:
    """The description of every section of a dump's layout, by section key."""
    out: dict[str, Description] = {}
    for key, top in layout.sections.items():
        try:
            out[key] = _Reader(key, layout.counts_known, hints).description(top.description, "")
        except DescriptionError as error:
            raise UsageError(f"{label}: section '{key}' cannot be read as a description: {error}") from None
    return out


class _Reader:
    def __init__(self, key: str, counts_known: bool, hints: CountHints) -> None:
        self.key = key
        self.counts_known = counts_known
        self.hints = hints

    def description(self, section: Section, prefix: str) -> Description:
        fields: list[Field] = []
        for member, name in zip(section.members, field_names(section), strict=True):
            kind = self.kind(member, f"{prefix}{name}")
            fields.append(Field(name, kind, since=member.since, until=member.until))
        subsections = tuple(
            Subsection(self.description(sub.description, f"{prefix}{sub.name}/")) for sub in section.subsections
        )
        return Description(section.name, section.version_id, section.minimum_version_id, tuple(fields), subsections)

    def kind(self, member: Member, path: str) -> FieldType:
        kind = member.kind
        element: FieldType
        if isinstance(kind, Section):
            element, count = self.description(kind, f"{path}/"), member.count
        else:
            assert isinstance(kind, Opaque)
            element, count = Buffer(kind.size), kind.count
        if count is None and not self.counts_known:
            count = self.hints.get((self.key, path))
        return element if count is None or count == 1 else Array(element, count)


def fixed_states(description: Description) -> list[State]:
    """A dump device's edge states: every field at its default (all bytes 0) and
    no subsection sent; every byte 0xff and every subsection sent; and every
    subsection sent with bytes that count up from 1, so that no two neighbouring
    bytes are equal and a field that moves, even within a subsection only this
    state sends, lands on other values (the dump cannot say when QEMU sends a
    subsection, so a run must see each at least once)."""
    counter = itertools.count()
    return [
        description.defaults(),
        _with_subsections(description, lambda size: b"\xff" * size),
        _with_subsections(description, lambda size: bytes(1 + next(counter) % 255 for _ in range(size))),
    ]


def _with_subsections(description: Description, fill: Callable[[int], bytes]) -> State:
    out: State = {field.name: _filled_value(field.type, fill) for field in description.fields}
    for sub in description.subsections:
        out[sub.name] = _with_subsections(sub.description, fill)
    return out


def _filled_value(kind: FieldType, fill: Callable[[int], bytes]) -> Any:
    if isinstance(kind, Description):
        return _with_subsections(kind, fill)
    if isinstance(kind, Array):
        assert isinstance(kind.length, int)
        return [_filled_value(kind.element, fill) for _ in range(kind.length)]
    assert isinstance(kind, Buffer) and isinstance(kind.size, int)
    return fill(kind.size)


def legacy_reading(state: Mapping[str, Any], source: Description, destination: Description) -> State | None:
    """What ``destination`` reads from the legacy bytes of ``state`` saved by ``source``.

    The legacy wire carries no names: a field renamed in place, fields regrouped
    into a struct or replaced by an ``unused`` placeholder of the same size keep
    their bytes. Every leaf of a dump description is bytes, so this is computed
    from the two descriptions alone: the source's field bytes in wire order are
    cut at the destination's sizes, and a subsection is found by its name where
    it stands in the stream (after the fields of its description, at a byte
    offset of the body). None when the bytes do not line up (the bodies differ
    in size): the legacy wire then has no reading to compare with, and names
    decide.
    """
    data = bytearray()
    sent: _Sent = {}
    _flatten(state, source, source.version_id, data, sent)
    try:
        out, end = _cut(destination, data, 0, min(source.version_id, destination.version_id), sent)
    except _Misaligned:
        return None
    return out if end == len(data) else None


#: The subsections a body sends, by (byte offset in the body where they stand, name).
_Sent = dict[tuple[int, str], tuple[Mapping[str, Any], Description]]


class _Misaligned(Exception):
    pass


def _flatten(state: Mapping[str, Any], description: Description, version: int, data: bytearray, sent: _Sent) -> None:
    for field in description.fields:
        if field.present(version, state):
            _flatten_value(state[field.name], field.type, data, sent)
    at = len(data)
    for sub in description.subsections:
        if sub.name in state:
            sent[at, sub.name] = (state[sub.name], sub.description)


def _flatten_value(value: Any, kind: FieldType, data: bytearray, sent: _Sent) -> None:
    if isinstance(kind, Description):
        _flatten(value, kind, kind.version_id, data, sent)
    elif isinstance(kind, Array):
        for element in value:
            _flatten_value(element, kind.element, data, sent)
    else:
        data.extend(value)


def _cut(description: Description, data: bytearray, at: int, version: int, sent: _Sent) -> tuple[State, int]:
    out: State = {}
    for field in description.fields:
        if field.present(version, out):
            out[field.name], at = _cut_value(field.type, data, at, sent)
        else:
            out[field.name] = field.default_value()
    for sub in description.subsections:
        found = sent.pop((at, sub.name), None)
        if found is not None:
            reading = legacy_reading(found[0], found[1], sub.description)
            if reading is None:
                raise _Misaligned
            out[sub.name] = reading
    return out, at


def _cut_value(kind: FieldType, data: bytearray, at: int, sent: _Sent) -> tuple[Any, int]:
    if isinstance(kind, Description):
        return _cut(kind, data, at, kind.version_id, sent)
    if isinstance(kind, Array):
        assert isinstance(kind.length, int)
        elements = []
        for _ in range(kind.length):
            element, at = _cut_value(kind.element, data, at, sent)
            elements.append(element)
        return elements, at
    assert isinstance(kind, Buffer) and isinstance(kind.size, int)
    if at + kind.size > len(data):
        raise _Misaligned
    return bytes(data[at : at + kind.size]), at + kind.size
