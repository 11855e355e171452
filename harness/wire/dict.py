"""The dict visitor pair: plain Python values, the in-memory reference.

Why: like QEMU's QObject visitors, this is the form a state takes between two
wire formats (qemufile -> dict -> ber), the form tests compare, and the form the
JSON schema describes. Structs become ``dict``s, lists ``list``s, scalars ``int``,
``bool``, ``str`` and ``bytes``.

Strategy: the output visitor builds the value on a stack of open containers. The
input visitor walks a given value the same way and checks every leaf against the
type it is read as -- a dict handed in by a user (from JSON, from a test) is input
like any other and gets the same :class:`~migcompat.errors.DecodeError` with a field
path (there is no byte offset).
"""

from __future__ import annotations

from typing import Any

from migcompat.errors import MalformedInput, MismatchDetected
from migcompat.limits import MAX_ELEMENTS
from migcompat.wire._path import PathTracker
from migcompat.wire.visitor import INTEGER_KINDS, Framing, Visitor, integer_range

_RANGES = {kind: integer_range(kind) for kind in INTEGER_KINDS}
_ROOT = object()


class DictOutputVisitor(PathTracker, Visitor):
    """Builds plain Python values; ``result()`` returns the outermost one."""

    is_input = False
    self_describing = True

    def __init__(self) -> None:
        super().__init__()
        self._containers: list[Any] = []
        self._result: Any = _ROOT

    def result(self) -> Any:
        return self._result

    def _store(self, name: str, value: Any) -> None:
        if not self._containers:
            self._result = value
            return
        container = self._containers[-1]
        if isinstance(container, list):
            container.append(value)
        else:
            container[name] = value

    def visit_integer(self, kind: str, name: str, value: int) -> int:
        lo, hi = _RANGES[kind]
        if type(value) is not int or not lo <= value <= hi:
            raise self._bad_value(f"{value!r} does not fit {kind} [{lo}, {hi}]", name)
        self._store(name, value)
        return value

    def start_struct(self, name: str) -> None:
        self._push(name, -1)
        new: dict[str, Any] = {}
        self._store(name, new)
        self._containers.append(new)

    def end_struct(self, *, allow_trailing: bool = False) -> None:
        self._stack.pop()
        self._containers.pop()

    def start_list(self, name: str, framing: Framing, count: int) -> int:
        self._push(name, 0)
        new: list[Any] = []
        self._store(name, new)
        self._containers.append(new)
        return count

    def next_list(self, more: bool) -> bool:
        if more:
            entry = self._stack[-1]
            entry[1] = len(self._containers[-1])
        return more

    def end_list(self) -> None:
        self._stack.pop()
        self._containers.pop()

    def visit_bool(self, name: str, value: bool) -> bool:
        if not isinstance(value, bool):
            raise self._bad_value(f"{value!r} is not a bool", name)
        self._store(name, value)
        return value

    def visit_str(self, name: str, value: str) -> str:
        if not isinstance(value, str):
            raise self._bad_value(f"{value!r} is not a str", name)
        self._store(name, value)
        return value

    def visit_buffer(self, name: str, value: bytes, size: int) -> bytes:
        if not isinstance(value, (bytes, bytearray)) or len(value) != size:
            raise self._bad_value(f"buffer must be {size} bytes, got {value!r:.40}", name)
        value = bytes(value)
        self._store(name, value)
        return value


class DictInputVisitor(PathTracker, Visitor):
    """Reads plain Python values, checking each against the type it is read as."""

    is_input = True
    self_describing = True

    def __init__(self, value: Any) -> None:
        super().__init__()
        self._root = value
        # Per open container: [container, cursor, names read]
        self._frames: list[list[Any]] = []

    def _fetch(self, name: str) -> Any:
        if not self._frames:
            return self._root
        frame = self._frames[-1]
        container = frame[0]
        if isinstance(container, list):
            index = frame[1]
            if index >= len(container):
                raise self._fail(MismatchDetected, f"list has only {len(container)} elements", name)
            return container[index]
        if name not in container:
            raise self._fail(MismatchDetected, f"member '{name}' is missing", name)
        frame[2] += 1
        return container[name]

    def visit_integer(self, kind: str, name: str, value: int) -> int:
        value = self._fetch(name)
        lo, hi = _RANGES[kind]
        if type(value) is not int:
            raise self._fail(MismatchDetected, f"{type(value).__name__} where {kind} expected", name)
        if not lo <= value <= hi:
            raise self._fail(MalformedInput, f"{value} out of range for {kind} [{lo}, {hi}]", name)
        return value

    def start_struct(self, name: str) -> None:
        value = self._fetch(name)
        self._push(name, -1)
        if not isinstance(value, dict):
            raise self._fail(MismatchDetected, f"{type(value).__name__} where a struct expected")
        self._frames.append([value, 0, 0])

    def end_struct(self, *, allow_trailing: bool = False) -> None:
        container, _, read = self._frames[-1]
        if read != len(container) and not allow_trailing:
            raise self._fail(MismatchDetected, f"{len(container) - read} unknown member(s) left unread")
        self._frames.pop()
        self._stack.pop()

    def start_list(self, name: str, framing: Framing, count: int) -> int:
        value = self._fetch(name)
        self._push(name, -1)  # the list itself; next_list sets the element index
        if not isinstance(value, list):
            raise self._fail(MismatchDetected, f"{type(value).__name__} where a list expected")
        if len(value) > MAX_ELEMENTS:
            raise self._fail(MalformedInput, f"{len(value)} elements exceed the {MAX_ELEMENTS}-element limit")
        if count >= 0 and len(value) != count:
            raise self._fail(MismatchDetected, f"list has {len(value)} elements, expected {count}")
        self._frames.append([value, -1, 0])
        return len(value)

    def next_list(self, more: bool) -> bool:
        frame = self._frames[-1]
        frame[1] += 1
        self._stack[-1][1] = frame[1]
        return bool(frame[1] < len(frame[0]))

    def end_list(self) -> None:
        self._frames.pop()
        self._stack.pop()

    def visit_bool(self, name: str, value: bool) -> bool:
        got = self._fetch(name)
        if not isinstance(got, bool):
            raise self._fail(MismatchDetected, f"{type(got).__name__} where bool expected", name)
        return got

    def visit_str(self, name: str, value: str) -> str:
        got = self._fetch(name)
        if not isinstance(got, str):
            raise self._fail(MismatchDetected, f"{type(got).__name__} where str expected", name)
        return got

    def visit_buffer(self, name: str, value: bytes, size: int) -> bytes:
        got = self._fetch(name)
        if not isinstance(got, (bytes, bytearray)):
            raise self._fail(MismatchDetected, f"{type(got).__name__} where buffer expected", name)
        if len(got) != size:
            raise self._fail(MismatchDetected, f"buffer has {len(got)} bytes, expected {size}", name)
        return bytes(got)
