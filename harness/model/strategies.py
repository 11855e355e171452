"""Hypothesis strategies: states that fit a description, and random descriptions.

Why: the matrix, the device tests and the fuzzers all need valid states for a
given release. Deriving them from the description itself means a new field is
generated the day it is declared; devices only add what the layout cannot say
(valid ranges, cross-field rules) as overrides.

Strategy: :func:`states` draws field by field in declaration order, so a length
held in an earlier field (:class:`~migcompat.model.vmstate.FieldRef`) is known when the
buffer or array it sizes is drawn. ``overrides`` maps a field path (``queues/num``,
``virtio/virtio/64bit_features/guest_features``; list indexes are not part of
the path) to the strategy to use instead; a length field may be overridden too.
Large fixed arrays (QEMU's 1024-entry per-queue arrays) are drawn sparsely: a few
random elements over a default background, which keeps examples fast and small.

:func:`descriptions`, :func:`values_of` and :func:`states_of` are for the codec
tests: layouts no device has, and values (extremes, and with ``bad_lengths``
negative lengths) that need not be valid. They are kept apart from
:func:`states` and the visitor's tables so that the tests check those too.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

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
    Subsection,
)
from migcompat.wire.visitor import INTEGER_KINDS, Framing, ListFraming, integer_range

#: Fixed arrays longer than this are drawn sparsely.
SPARSE_ABOVE = 32
#: Longest list drawn for a list whose length the stream carries.
DEFAULT_MAX_ELEMENTS = 8
#: Longest buffer drawn when its size is held in a field we draw ourselves.
DEFAULT_MAX_BUFFER = 64

Overrides = Mapping[str, st.SearchStrategy[Any]]


def _join(path: str, name: str) -> str:
    return f"{path}/{name}" if path and name else path or name


def _draw_type(
    draw: st.DrawFn, kind: FieldType, path: str, siblings: Mapping[str, Any], version: int, overrides: Overrides
) -> Any:
    if path in overrides:
        return draw(overrides[path])
    if isinstance(kind, Scalar):
        if kind.kind in INTEGER_KINDS:
            lo, hi = integer_range(kind.kind)
            return draw(st.integers(lo, hi))
        if kind.kind == "bool":
            return draw(st.booleans())
        return draw(st.text(max_size=16).filter(lambda text: len(text.encode()) <= 255))
    if isinstance(kind, Buffer):
        size = kind.size if isinstance(kind.size, int) else int(siblings[kind.size.name]) * kind.size.scale
        return draw(buffers(size))
    if isinstance(kind, Struct):
        return _draw_fields(draw, kind.fields, path, version, overrides)
    if isinstance(kind, Description):
        return _draw_description(draw, kind, path, overrides)
    return _draw_array(draw, kind, path, siblings, version, overrides)


#: Buffers up to this size are drawn byte by byte; larger ones are drawn whole.
DRAWN_BYTES = 64


def buffers(size: int) -> st.SearchStrategy[bytes]:
    """Buffers of exactly ``size`` bytes.

    Up to :data:`DRAWN_BYTES` bytes every byte is drawn (and shrinks). A larger
    buffer (a PCI config space, a socket buffer of kilobytes) is all zeros, a
    drawn head over zeros, or pseudo-random bytes from a drawn seed: the layout
    treats every byte alike, and drawing thousands of bytes one by one would
    make each example slow.
    """
    if size <= DRAWN_BYTES:
        return st.binary(min_size=size, max_size=size)
    return st.one_of(
        st.just(bytes(size)),
        st.binary(min_size=DRAWN_BYTES, max_size=DRAWN_BYTES).map(lambda head: head + bytes(size - DRAWN_BYTES)),
        st.integers(0, 2**32 - 1).map(lambda seed: random.Random(seed).randbytes(size)),
    )


def _draw_array(
    draw: st.DrawFn, kind: Array, path: str, siblings: Mapping[str, Any], version: int, overrides: Overrides
) -> list[Any]:
    if isinstance(kind.length, int):
        count = kind.length
    elif isinstance(kind.length, FieldRef):
        count = int(siblings[kind.length.name]) * kind.length.scale
    else:
        ceiling = DEFAULT_MAX_ELEMENTS if kind.max_length is None else min(kind.max_length, DEFAULT_MAX_ELEMENTS)
        if kind.framing.kind is ListFraming.COUNT:
            ceiling = min(ceiling, (1 << kind.framing.count_bits) - 1)
        count = draw(st.integers(0, ceiling))
    if count > SPARSE_ABOVE:
        background = kind.element.default()
        values = [background] * count
        for index in draw(st.lists(st.integers(0, count - 1), max_size=4, unique=True)):
            values[index] = _draw_type(draw, kind.element, path, siblings, version, overrides)
        return values
    return [_draw_type(draw, kind.element, path, siblings, version, overrides) for _ in range(count)]


def _draw_fields(draw: st.DrawFn, fields: tuple[Field, ...], path: str, version: int, overrides: Overrides) -> State:
    out: State = {}
    for field in fields:
        if not field.present(version, out):
            out[field.name] = field.default_value()
            continue
        out[field.name] = _draw_type(draw, field.type, _join(path, field.name), out, version, overrides)
    return out


def _draw_description(draw: st.DrawFn, description: Description, path: str, overrides: Overrides) -> State:
    out = _draw_fields(draw, description.fields, path, description.version_id, overrides)
    for sub in description.subsections:
        sub_path = _join(path, sub.name)
        present_key = sub_path + "?"
        present = draw(overrides[present_key]) if present_key in overrides else draw(st.booleans())
        if present:
            out[sub.name] = _draw_description(draw, sub.description, sub_path, overrides)
    return out


def states(description: Description, overrides: Overrides | None = None) -> st.SearchStrategy[State]:
    """States of ``description`` at its own version.

    ``overrides`` keys are field paths; a key ending in ``?`` (a subsection's
    path plus ``?``) overrides whether that subsection is present.
    """
    chosen = dict(overrides or {})

    @st.composite
    def build(draw: st.DrawFn) -> State:
        return _draw_description(draw, description, "", chosen)

    return build()


# -- random descriptions ------------------------------------------------------------------
#
# The tests of the codecs need descriptions nobody wrote: every field type, nesting,
# gating and framing in combinations no device has. One generator serves them all;
# its options switch off what a test's oracle cannot model (an expected state at an
# older stream version needs explicit defaults, the ASN.1 codecs refuse subsections,
# an open-ended list is only safe last). Integer ranges come from the kind's name,
# not from the visitor's table, so the tests that use them also check that table.

#: Integer kinds, by name.
INTEGER_NAMES = tuple(f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64))
#: Every scalar kind a random description uses.
SCALAR_NAMES = (*INTEGER_NAMES, "bool", "str")
#: Structs, lists and nested descriptions nest this deep below the top description.
NESTING = 2
#: Stream framings of lists: an 8-bit count, a count of 8, 16 or 32 bits, a marker per
#: element and a terminator, a marker with no terminator (the list ends at the first
#: other byte), and the same with a name after the marker (QEMU's subsection rule).
FRAMINGS = ("count8", "count", "sentinel", "open", "named")
#: Field names drawn when names are random: odd characters included.
FIELD_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,5}", fullmatch=True)
#: Marker and terminator bytes: a few memorable ones, and any byte.
_MARKERS = st.one_of(st.sampled_from([0, 1, 5, 42, 255]), st.integers(0, 255))
#: Most elements drawn for a list whose length the stream carries, and most drawn into a length field.
_MAX_ITEMS = 3


def integer_bounds(kind: str) -> tuple[int, int]:
    """Smallest and largest value of the integer kind ``kind`` (``int8`` ... ``uint64``)."""
    bits = int(kind.removeprefix("u").removeprefix("int"))
    if kind.startswith("u"):
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


@dataclass(frozen=True)
class Layouts:
    """What :func:`descriptions` may put in a description; by default, every feature."""

    #: Fields per description or struct (the top description has at least one).
    max_fields: int = 4
    #: Field names drawn from :data:`FIELD_NAMES` (else ``f0``, ``f1`` ...).
    random_names: bool = False
    #: Which of ``since``, ``until`` and ``when`` fields are gated by.
    gates: frozenset[str] = frozenset({"since", "until", "when"})
    #: The fields of structs are gated too (at any version up to 3).
    nested_gates: bool = True
    #: A field gated by ``since`` is a scalar or buffer with an explicit default drawn
    #: from its values (else some integer fields default to 7): the state a destination
    #: loads at an older version is then known without the code under test.
    drawn_defaults: bool = False
    #: Descriptions as fields and list elements.
    nested_descriptions: bool = True
    #: The stream framings of lists whose length the stream carries (of :data:`FRAMINGS`).
    framings: tuple[str, ...] = ("count", "sentinel", "open", "named")
    #: The last field of a description without subsections is often a list with no terminator.
    open_last: bool = False
    #: 70-element arrays, and lists with a ``max_length``.
    long_lists: bool = True
    #: Descriptions with a validator refusing odd values of their first integer field.
    validators: bool = True
    #: Descriptions that skip unknown members.
    accept_unknown: bool = True
    #: Subsections with random fields at their own version (else one ``uint8``).
    subsection_fields: bool = True
    #: Fewest fields of a subsection, with ``subsection_fields``.
    min_subsection_fields: int = 0
    #: Some subsections are always sent (else sent when the state has them).
    needed_subsections: bool = True

    def __post_init__(self) -> None:
        unknown = set(self.framings) - set(FRAMINGS)
        if unknown or not self.framings:
            raise ValueError(f"framings must be some of {FRAMINGS}, not {sorted(unknown) or 'none'}")


def _reject_odd(name: str) -> Callable[[Mapping[str, Any]], Iterator[tuple[str, str]]]:
    def validate(state: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        value = state.get(name)
        if type(value) is int and value % 2:
            yield name, f"{name} is odd ({value})"

    return validate


def _framing(draw: st.DrawFn, kinds: Sequence[str], prefix: str) -> Framing:
    kind = draw(st.sampled_from(kinds))
    if kind == "count8":
        return Framing(ListFraming.COUNT, count_bits=8)
    if kind == "count":
        return Framing(ListFraming.COUNT, count_bits=draw(st.sampled_from([8, 16, 32])))
    marker, terminator = draw(st.lists(_MARKERS, min_size=2, max_size=2, unique=True))
    if kind == "sentinel":
        return Framing(ListFraming.SENTINEL, marker=marker, terminator=terminator)
    if kind == "open":
        return Framing(ListFraming.SENTINEL, marker=marker)
    return Framing(ListFraming.SENTINEL, marker=marker, name_prefix=prefix)


def _element_type(draw: st.DrawFn, options: Layouts, depth: int, owner: str) -> FieldType:
    shapes = ["scalar", "buffer"]
    if depth < NESTING:
        shapes += ["struct", "array", "description"] if options.nested_descriptions else ["struct", "array"]
    shape = draw(st.sampled_from(shapes))
    if shape == "scalar":
        return Scalar(draw(st.sampled_from(SCALAR_NAMES)))
    if shape == "buffer":
        return Buffer(draw(st.integers(0, 6)))
    if shape == "struct":
        return Struct(f"{owner}.s", _field_list(draw, options, depth + 1, None, f"{owner}.s"))
    if shape == "description":
        return _description(draw, options, depth + 1, f"{owner}.d")
    return Array(_element_type(draw, options, depth + 1, owner), length=draw(st.integers(0, _MAX_ITEMS)))


def _gate(draw: st.DrawFn, options: Layouts, version: int, targets: list[str]) -> dict[str, Any]:
    """A field's ``since``, ``until`` or ``when`` (at most one), as keyword arguments."""
    gates = [gate for gate in ("since", "until", "when", "when") if gate in options.gates]
    gate = draw(st.sampled_from(["none", "none", *gates]))
    if gate == "since":
        return {"since": draw(st.integers(1, version))}
    if gate == "until":
        return {"until": draw(st.integers(1, version + 1))}
    if gate == "when" and targets:
        return {"when": (draw(st.sampled_from(targets)), draw(st.integers(0, 2)))}
    return {}


def _array(
    draw: st.DrawFn, options: Layouts, depth: int, owner: str, name: str, gate: dict[str, Any], open_end: bool
) -> tuple[Field, ...]:
    """A list field, preceded by its length field when a field holds its length."""
    element = _element_type(draw, options, depth + 1, f"{owner}.{name}")
    framings = ["fixed", "fixed-long", "ref", "stream"] if options.long_lists else ["fixed", "ref", "stream"]
    framing = "open" if open_end and draw(st.booleans()) else draw(st.sampled_from(framings))
    maximum = draw(st.sampled_from([None, None, 1, 2])) if options.long_lists else None
    if framing == "fixed":
        return (Field(name, Array(element, length=draw(st.integers(0, _MAX_ITEMS)), max_length=maximum), **gate),)
    if framing == "fixed-long":
        return (Field(name, Array(Scalar(draw(st.sampled_from(INTEGER_NAMES))), length=70), **gate),)
    if framing == "ref":
        length = Field(f"{name}_len", Scalar(draw(st.sampled_from(INTEGER_NAMES))), since=gate.get("since", 0))
        return length, Field(name, Array(element, length=FieldRef(length.name), max_length=maximum), **gate)
    stream = _framing(draw, ["open"] if framing == "open" else options.framings, owner.split(".")[0])
    return (Field(name, Array(element, framing=stream, max_length=maximum), **gate),)


def _field_list(
    draw: st.DrawFn,
    options: Layouts,
    depth: int,
    version_id: int | None,
    owner: str,
    *,
    min_size: int = 0,
    open_end: bool = False,
) -> tuple[Field, ...]:
    """Fields of every kind; a length held in a field is in the field before, named ``<name>_len``.

    ``version_id`` is that of the description that holds the fields (``None`` in a
    struct: gated at any version up to 3). With ``open_end``, the last field is
    often a list with no terminator.
    """
    fields: list[Field] = []
    targets: list[str] = []  # earlier integer fields: what ``when`` may test
    count = draw(st.integers(max(min_size, 1 if depth == 0 else 0), options.max_fields))
    bases = draw(st.lists(FIELD_NAMES, min_size=count, max_size=count, unique=True)) if options.random_names else None
    gated = version_id is not None or options.nested_gates
    for index in range(count):
        name = f"{bases[index]}{index}" if bases is not None else f"f{index}"
        gate = _gate(draw, options, version_id or 3, targets) if gated else {}
        shapes = ["scalar", "scalar", "buffer", "ref-buffer"]
        if depth < NESTING:
            shapes += (
                ["struct", "array", "array", "description"] if options.nested_descriptions else ["struct", "array"]
            )
        last_open = open_end and index == count - 1
        shape = "array" if last_open and draw(st.booleans()) else draw(st.sampled_from(shapes))
        if options.drawn_defaults and "since" in gate and shape not in ("scalar", "buffer"):
            del gate["since"]  # only a scalar or buffer gets a drawn default
        if shape in ("scalar", "buffer"):
            kind: Scalar | Buffer
            if shape == "scalar":
                kind = Scalar(draw(st.sampled_from(SCALAR_NAMES)))
                if kind.kind in INTEGER_NAMES:
                    targets.append(name)
            else:
                kind = Buffer(draw(st.integers(0, 6)))
            if "since" in gate:
                if options.drawn_defaults:
                    gate["default"] = draw(values_of(kind))
                elif isinstance(kind, Scalar) and kind.kind in INTEGER_NAMES and draw(st.booleans()):
                    gate["default"] = 7
            fields.append(Field(name, kind, **gate))
        elif shape == "ref-buffer":
            length = f"{name}_len"
            fields.append(Field(length, Scalar(draw(st.sampled_from(INTEGER_NAMES))), since=gate.get("since", 0)))
            targets.append(length)
            fields.append(Field(name, Buffer(FieldRef(length, draw(st.integers(1, 3)))), **gate))
        elif shape == "struct":
            struct = Struct(f"{owner}.{name}", _field_list(draw, options, depth + 1, None, name))
            fields.append(Field(name, struct, **gate))
        elif shape == "description":
            fields.append(Field(name, _description(draw, options, depth + 1, f"{owner}.{name}"), **gate))
        else:
            array = _array(draw, options, depth, owner, name, gate, last_open)
            targets.extend(f.name for f in array[:-1])
            fields.extend(array)
    return tuple(fields)


def _subsection(draw: st.DrawFn, options: Layouts, depth: int, name: str) -> Subsection:
    if not options.subsection_fields:
        return Subsection(Description(name, 1, 1, (Field("z", Scalar("uint8")),)))
    version = draw(st.integers(1, 3))
    fields = _field_list(draw, options, depth + 1, version, name, min_size=options.min_subsection_fields)
    always = options.needed_subsections and draw(st.booleans())
    return Subsection(
        Description(name, version, 1, fields),
        needed=(lambda state: True) if always else None,
        critical=draw(st.booleans()),
    )


def _description(draw: st.DrawFn, options: Layouts, depth: int, name: str) -> Description:
    version_id = draw(st.integers(1, 3))
    subsections = tuple(
        _subsection(draw, options, depth, f"{name}/s{index}")
        for index in range(draw(st.integers(0, 2 if depth < NESTING else 1)))
    )
    # A list with no terminator ends at the first other byte: only safe last in the stream.
    open_end = options.open_last and not subsections and depth == 0
    fields = _field_list(draw, options, depth, version_id, name, open_end=open_end)
    integers = [f.name for f in fields if isinstance(f.type, Scalar) and f.type.kind in INTEGER_NAMES]
    validate = _reject_odd(integers[0]) if options.validators and integers and draw(st.booleans()) else None
    return Description(
        name,
        version_id,
        draw(st.integers(0, version_id)),
        fields,
        subsections,
        validate=validate,
        accept_unknown=options.accept_unknown and draw(st.booleans()),
    )


def descriptions(depth: int = 0, name: str = "dev", layouts: Layouts = Layouts()) -> st.SearchStrategy[Description]:
    """Random descriptions named ``name``, nested ``depth`` deep, with what ``layouts`` allows."""

    @st.composite
    def build(draw: st.DrawFn) -> Description:
        return _description(draw, layouts, depth, name)

    return build()


# -- states of random descriptions -----------------------------------------------------------


def _length_fields(fields: tuple[Field, ...]) -> set[str]:
    """Names of the fields that hold a length of a later field (or of its elements)."""
    names = set()
    for f in fields:
        kind: Any = f.type
        while kind is not None:
            for ref in (getattr(kind, "size", None), getattr(kind, "length", None)):
                if isinstance(ref, FieldRef):
                    names.add(ref.name)
            kind = getattr(kind, "element", None)
    return names


@st.composite
def values_of(
    draw: st.DrawFn,
    kind: FieldType,
    siblings: Mapping[str, Any] | None = None,
    *,
    length: bool = False,
    bad_lengths: bool = False,
) -> Any:
    """A value of ``kind``: small integers and extremes as often as any, a length small
    (``length``), lists as long as the fields before (``siblings``) say; a description's
    subsections present at random or when always sent. With ``bad_lengths``, a length
    field is now and then negative (states a codec must refuse)."""
    if isinstance(kind, Scalar):
        if kind.kind == "bool":
            return draw(st.booleans())
        if kind.kind == "str":
            return draw(st.text(max_size=12))
        lo, hi = integer_bounds(kind.kind)
        if length:
            return draw(st.integers(max(lo, 0), _MAX_ITEMS))
        return draw(st.one_of(st.integers(max(lo, -2), min(hi, 3)), st.sampled_from([lo, hi]), st.integers(lo, hi)))
    known = siblings or {}
    if isinstance(kind, Buffer):
        size = kind.size if isinstance(kind.size, int) else max(0, int(known[kind.size.name])) * kind.size.scale
        return draw(st.binary(min_size=size, max_size=size))
    if isinstance(kind, Struct):
        return draw(states_of(kind.fields, bad_lengths=bad_lengths))
    if isinstance(kind, Description):
        state = draw(states_of(kind.fields, bad_lengths=bad_lengths))
        for sub in kind.subsections:
            if sub.needed is not None or draw(st.booleans()):
                state[sub.name] = draw(states_of(sub.description.fields, bad_lengths=bad_lengths))
        return state
    if isinstance(kind.length, int):
        count = kind.length
    elif isinstance(kind.length, FieldRef):
        count = max(0, int(known[kind.length.name]))
    else:
        count = draw(st.integers(0, _MAX_ITEMS))
    return [draw(values_of(kind.element, known, bad_lengths=bad_lengths)) for _ in range(count)]


@st.composite
def states_of(draw: st.DrawFn, fields: tuple[Field, ...], *, bad_lengths: bool = False) -> State:
    """A state with a value for each of ``fields`` (see :func:`values_of`)."""
    lengths = _length_fields(fields)
    state: State = {}
    for f in fields:
        state[f.name] = draw(values_of(f.type, state, length=f.name in lengths, bad_lengths=bad_lengths))
        if bad_lengths and f.name in lengths and draw(st.integers(0, 9)) == 0 and type(state[f.name]) is int:
            state[f.name] = -1  # a negative length: refused
    return state
