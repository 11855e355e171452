"""Random descriptions with fitting random states round-trip through every pairing.

Why: the hand-written tables cover the cases someone thought of; this covers the
combinations nobody listed -- nested structs inside sentinel lists inside
subsections, lengths held in fields of every integer width, fields absent at the
stream version. The strategy below is written independently of
``harness.strategies`` so the test does not share the code's assumptions.
"""

from __future__ import annotations

from typing import Any

import pytest
from _support import PAIRING_NAMES, decode, encode, to_indefinite
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import DecodeError
from harness.visitor import Framing, ListFraming
from harness.visitors import PAIRINGS
from harness.vmstate import Array, Buffer, Description, Field, FieldRef, Scalar, Struct, Subsection, walk

#: Integer ranges written out by hand (not taken from the code under test).
INTEGER_RANGES = {
    "int8": (-128, 127),
    "int16": (-32768, 32767),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint8": (0, 255),
    "uint16": (0, 65535),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}
SCALAR_KINDS = (*INTEGER_RANGES, "bool", "str")
NESTING = 2  # structs and arrays nest this deep below the description
MAX_ITEMS = 3  # elements in a list whose length the stream carries

BASE_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,5}", fullmatch=True)
BYTES_VALUES = st.integers(0, 255)


def _scalar_values(kind: str, *, length: bool = False) -> st.SearchStrategy[Any]:
    if kind == "bool":
        return st.booleans()
    if kind == "str":
        return st.text(max_size=12)
    lo, hi = INTEGER_RANGES[kind]
    return st.integers(max(lo, 0), min(hi, MAX_ITEMS)) if length else st.integers(lo, hi)


# -- descriptions ----------------------------------------------------------------


def _framing(draw: st.DrawFn, *, open_end: bool) -> Framing | str:
    choices = ["fixed", "ref", "count", "sentinel"]
    choice = "open" if open_end and draw(st.booleans()) else draw(st.sampled_from(choices))
    if choice == "count":
        return Framing(ListFraming.COUNT, count_bits=draw(st.sampled_from([8, 16, 32])))
    if choice == "sentinel":
        marker, terminator = draw(st.lists(BYTES_VALUES, min_size=2, max_size=2, unique=True))
        return Framing(ListFraming.SENTINEL, marker=marker, terminator=terminator)
    if choice == "open":
        return Framing(ListFraming.SENTINEL, marker=draw(BYTES_VALUES), terminator=None)
    return choice


def _element_type(draw: st.DrawFn, depth: int) -> Any:
    shapes = ["scalar", "buffer"] + (["struct", "array"] if depth < NESTING else [])
    shape = draw(st.sampled_from(shapes))
    if shape == "scalar":
        return Scalar(draw(st.sampled_from(SCALAR_KINDS)))
    if shape == "buffer":
        return Buffer(draw(st.integers(0, 6)))
    if shape == "struct":
        return Struct(f"s{depth}", draw(field_lists(depth + 1)))
    return Array(_element_type(draw, depth + 1), length=draw(st.integers(0, MAX_ITEMS)))


@st.composite
def field_lists(
    draw: st.DrawFn, depth: int, *, version_id: int = 0, open_end: bool = False, min_size: int = 0
) -> tuple[Field, ...]:
    bases = draw(st.lists(BASE_NAMES, min_size=min_size, max_size=4, unique=True))
    fields: list[Field] = []
    for index, base in enumerate(bases):
        name = f"{base}{index}"  # unique: distinct bases, and the last digit differs
        last = index == len(bases) - 1
        shapes = ["scalar", "buffer", "buffer-ref"] + (["struct", "array"] if depth < NESTING else [])
        shape = draw(st.sampled_from(shapes))
        if open_end and last and draw(st.booleans()):
            shape = "array"  # make the rare open-ended list common enough to matter
        if shape == "scalar" or shape == "buffer":
            kind = Scalar(draw(st.sampled_from(SCALAR_KINDS))) if shape == "scalar" else Buffer(draw(st.integers(0, 6)))
            since = draw(st.integers(0, version_id))
            # A field absent at the stream version takes its default: give it an
            # explicit one, so the expected state is known without the code.
            default = draw(_values_of(kind, {}, length=False)) if since else None
            fields.append(Field(name, kind, since=since, default=default))
        elif shape == "buffer-ref":
            length_name = f"{name}_len"
            fields.append(Field(length_name, Scalar(draw(st.sampled_from(list(INTEGER_RANGES))))))
            fields.append(Field(name, Buffer(FieldRef(length_name, scale=draw(st.integers(1, 3))))))
        elif shape == "struct":
            fields.append(Field(name, Struct(name, draw(field_lists(depth + 1)))))
        else:
            element = _element_type(draw, depth + 1)
            framing = _framing(draw, open_end=open_end and last)
            if framing == "fixed":
                fields.append(Field(name, Array(element, length=draw(st.integers(0, MAX_ITEMS)))))
            elif framing == "ref":
                length_name = f"{name}_len"
                fields.append(Field(length_name, Scalar(draw(st.sampled_from(list(INTEGER_RANGES))))))
                fields.append(Field(name, Array(element, length=FieldRef(length_name))))
            else:
                assert isinstance(framing, Framing)
                fields.append(Field(name, Array(element, framing=framing)))
    return tuple(fields)


@st.composite
def descriptions(draw: st.DrawFn) -> Description:
    version_id = draw(st.integers(1, 3))
    subsection_count = draw(st.integers(0, 2))
    subsections = tuple(
        Subsection(
            Description(f"dev/s{index}", draw(st.integers(1, 3)), 1, draw(field_lists(1, min_size=1))),
            critical=draw(st.booleans()),
        )
        for index in range(subsection_count)
    )
    # A list framed by a marker with no terminator ends at the first other byte:
    # only safe as the very last thing in the stream.
    fields = draw(field_lists(0, version_id=version_id, open_end=not subsections, min_size=1))
    return Description("dev", version_id, draw(st.integers(0, version_id)), fields, subsections)


# -- states that fit ----------------------------------------------------------------


def _lengths(fields: tuple[Field, ...]) -> set[str]:
    names = set()
    for f in fields:
        for kind in (f.type, getattr(f.type, "element", None)):
            for ref in (getattr(kind, "size", None), getattr(kind, "length", None)):
                if isinstance(ref, FieldRef):
                    names.add(ref.name)
    return names


@st.composite
def _values_of(draw: st.DrawFn, kind: Any, siblings: dict[str, Any], *, length: bool) -> Any:
    if isinstance(kind, Scalar):
        return draw(_scalar_values(kind.kind, length=length))
    if isinstance(kind, Buffer):
        size = kind.size if isinstance(kind.size, int) else siblings[kind.size.name] * kind.size.scale
        return draw(st.binary(min_size=size, max_size=size))
    if isinstance(kind, Struct):
        return draw(states_of(kind.fields))
    assert isinstance(kind, Array)
    if isinstance(kind.length, int):
        count = kind.length
    elif isinstance(kind.length, FieldRef):
        count = siblings[kind.length.name]
    else:
        count = draw(st.integers(0, MAX_ITEMS))
    return [draw(_values_of(kind.element, siblings, length=False)) for _ in range(count)]


@st.composite
def states_of(draw: st.DrawFn, fields: tuple[Field, ...]) -> dict[str, Any]:
    lengths = _lengths(fields)
    state: dict[str, Any] = {}
    for f in fields:
        state[f.name] = draw(_values_of(f.type, state, length=f.name in lengths))
    return state


@st.composite
def cases(draw: st.DrawFn) -> tuple[Description, dict[str, Any], int]:
    """A description, a state that fits it, and the stream version to write it at."""
    description = draw(descriptions())
    state = draw(states_of(description.fields))
    for sub in description.subsections:
        if draw(st.booleans()):
            state[sub.name] = draw(states_of(sub.description.fields))
    version = draw(st.integers(max(description.minimum_version_id, 1), description.version_id))
    return description, state, version


def _at_version(description: Description, state: dict[str, Any], version: int) -> dict[str, Any]:
    """What a destination loads from ``state`` written at stream ``version``."""
    projected = {f.name: (state[f.name] if f.since <= version else f.default) for f in description.fields}
    projected.update({sub.name: state[sub.name] for sub in description.subsections if sub.name in state})
    return projected


def typed(value: Any) -> Any:
    """``value`` with every leaf's type made part of equality (True != 1)."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("pairing", PAIRING_NAMES)
@PROPERTY
@given(case=cases())
def test_a_random_state_round_trips(pairing: str, case: tuple[Description, dict[str, Any], int]) -> None:
    description, state, version = case
    visitor = PAIRINGS[pairing].make_output()
    walk(visitor, description, state, version)
    loaded = decode(pairing, description, visitor.result(), version=version)  # type: ignore[attr-defined]
    assert typed(loaded) == typed(_at_version(description, state, version))


@PROPERTY
@given(case=cases())
def test_qemufile_through_ber_and_dict_reproduces_the_bytes(case: tuple[Description, dict[str, Any], int]) -> None:
    description, state, _version = case
    original = encode("qemufile", description, state)
    through_ber = decode("ber", description, encode("ber", description, decode("qemufile", description, original)))
    through_dict = decode("dict", description, encode("dict", description, through_ber))
    assert encode("qemufile", description, through_dict) == original


@settings(max_examples=100, deadline=None)
@given(case=cases(), data=st.data())
def test_every_strict_prefix_of_an_indefinite_ber_stream_is_rejected(
    case: tuple[Description, dict[str, Any], int], data: st.DataObject
) -> None:
    description, state, _version = case
    stream = to_indefinite(encode("ber", description, state))
    cut = data.draw(st.integers(0, len(stream) - 1), label="cut")
    with pytest.raises(DecodeError) as caught:
        decode("ber", description, stream[:cut])
    assert isinstance(caught.value.offset, int) and caught.value.offset <= cut
