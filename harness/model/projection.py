"""What a destination *should* load: the source state projected onto its description.

Why: a cell of the matrix is ``ok`` only when the loaded state equals the
source's state as the destination release understands it -- fields the
destination lacks dropped, fields the source did not send at their defaults,
subsections the destination does not know dropped. This is computed from the two
descriptions alone, independently of every visitor under test, so a visitor bug
cannot make its own output look right.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from migcompat.model.vmstate import Array, Description, Field, FieldType, State, Struct


def project(state: Mapping[str, Any], source: Description, destination: Description) -> State:
    """``state`` (saved by ``source`` at its version) as ``destination`` should load it."""
    return _description(state, source, destination, source.version_id)


def _description(state: Mapping[str, Any], source: Description, destination: Description, version: int) -> State:
    version = min(version, destination.version_id)
    out = _fields(state, source.fields, destination.fields, version)
    for sub in destination.subsections:
        sent = source.subsection(sub.name)
        if sent is not None and sub.name in state:
            out[sub.name] = _description(
                state[sub.name], sent.description, sub.description, sent.description.version_id
            )
    return out


def _fields(state: Mapping[str, Any], source: tuple[Field, ...], destination: tuple[Field, ...], version: int) -> State:
    sent = {field.name: field for field in source}
    out: State = {}
    for field in destination:
        origin = sent.get(field.name)
        if not field.present(version, out) or origin is None or not origin.present(version, state):
            out[field.name] = field.default_value()
            continue
        out[field.name] = _value(state[field.name], origin.type, field.type, version)
    return out


def _value(value: Any, source: FieldType, destination: FieldType, version: int) -> Any:
    if isinstance(source, Struct) and isinstance(destination, Struct):
        return _fields(value, source.fields, destination.fields, version)
    if isinstance(source, Description) and isinstance(destination, Description):
        return _description(value, source, destination, source.version_id)
    if isinstance(source, Array) and isinstance(destination, Array):
        return [_value(item, source.element, destination.element, version) for item in value]
    return value


def first_difference(expected: Any, actual: Any, path: str = "") -> str | None:
    """The path of the first place two states differ, or None when equal."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        # In the expected state's field order, then what only the loaded one has: the same
        # "first" place in every process (a set's order follows the process's string hashes).
        for key in [*expected, *(key for key in actual if key not in expected)]:
            if key not in expected or key not in actual:
                return f"{path}/{key}".lstrip("/")
            found = first_difference(expected[key], actual[key], f"{path}/{key}")
            if found is not None:
                return found
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"{path} (length {len(expected)} != {len(actual)})".lstrip("/")
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            found = first_difference(left, right, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    if expected != actual or type(expected) is not type(actual):
        return path.lstrip("/") or "(root)"
    return None
