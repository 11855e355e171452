"""Hypothesis strategies: states that fit a description.

Why: the matrix, the device tests and the fuzzers all need valid states for a
given release. Deriving them from the description itself means a new field is
generated the day it is declared; devices only add what the layout cannot say
(valid ranges, cross-field rules) as overrides.

Strategy: :func:`states` draws field by field in declaration order, so a length
held in an earlier field (:class:`~harness.vmstate.FieldRef`) is known when the
buffer or array it sizes is drawn. ``overrides`` maps a field path (``queues/num``,
``virtio/virtio/64bit_features/guest_features``; list indexes are not part of
the path) to the strategy to use instead; a length field may be overridden too.
Large fixed arrays (QEMU's 1024-entry per-queue arrays) are drawn sparsely: a few
random elements over a default background, which keeps examples fast and small.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from harness.visitor import INTEGER_KINDS, ListFraming, integer_range
from harness.vmstate import Array, Buffer, Description, Field, FieldRef, FieldType, Scalar, State, Struct

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
        return draw(st.binary(min_size=size, max_size=size))
    if isinstance(kind, Struct):
        return _draw_fields(draw, kind.fields, path, version, overrides)
    if isinstance(kind, Description):
        return _draw_description(draw, kind, path, overrides)
    return _draw_array(draw, kind, path, siblings, version, overrides)


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
