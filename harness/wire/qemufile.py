"""The QEMUFile visitor pair: today's legacy bytes, exactly.

Why: the legacy stream is what every released QEMU speaks, so the output visitor
must reproduce ``qemu_put_*`` byte for byte and the input visitor must read what
``qemu_get_*`` reads -- including its blindness: nothing on this wire says what a
field is, so a destination that reads a uint32 where a uint16 was written gets a
wrong value, not an error. That silent misread is what the rest of migcompat
measures.

Strategy: big-endian integers through precompiled :class:`struct.Struct` objects,
bools as one byte, strings as a length byte and the bytes (QEMU's idstr form),
buffers raw. Lists write what their :class:`~migcompat.wire.visitor.Framing` says: a
count, or a marker before each element and a terminator. The input side reads
from a ``bytes`` object with an explicit position; every read checks the
remaining length first, so a truncated stream is a
:class:`~migcompat.errors.TruncatedInput` with the offset and path.
"""

from __future__ import annotations

import struct

from migcompat.errors import LimitExceeded, MalformedInput, TrailingData, TruncatedInput
from migcompat.limits import MAX_ELEMENTS, MAX_INPUT
from migcompat.wire._path import PathTracker
from migcompat.wire.visitor import Framing, ListFraming, Visitor, integer_range

_PACKERS = {
    kind: struct.Struct(fmt)
    for kind, fmt in {
        "int8": ">b",
        "int16": ">h",
        "int32": ">i",
        "int64": ">q",
        "uint8": ">B",
        "uint16": ">H",
        "uint32": ">I",
        "uint64": ">Q",
    }.items()
}
_COUNT_KIND = {8: "uint8", 16: "uint16", 32: "uint32"}


class QemuFileOutputVisitor(PathTracker, Visitor):
    """Writes QEMU's legacy stream into a buffer; ``result()`` returns the bytes."""

    is_input = False
    self_describing = False

    def __init__(self) -> None:
        super().__init__()
        self._out = bytearray()

    def result(self) -> bytes:
        return bytes(self._out)

    def _offset(self) -> int | None:
        return len(self._out)

    def visit_integer(self, kind: str, name: str, value: int) -> int:
        try:
            if type(value) is not int:  # bool and IntEnum would pack as ints
                raise TypeError
            self._out += _PACKERS[kind].pack(value)
        except (struct.error, TypeError):
            lo, hi = integer_range(kind)
            raise self._bad_value(f"{value!r} does not fit {kind} [{lo}, {hi}]", name) from None
        return value

    def start_struct(self, name: str) -> None:
        self._push(name, -1)

    def end_struct(self, *, allow_trailing: bool = False) -> None:
        self._stack.pop()

    def start_list(self, name: str, framing: Framing, count: int) -> int:
        if framing.kind is ListFraming.COUNT:
            self.visit_integer(_COUNT_KIND[framing.count_bits], name, count)
        self._push(name, 0)
        self._stack[-1].extend((framing, 0))
        return count

    def next_list(self, more: bool) -> bool:
        entry = self._stack[-1]
        framing: Framing = entry[2]  # type: ignore[assignment]
        if framing.kind is ListFraming.SENTINEL:
            if more:
                self._out.append(framing.marker)
            elif framing.terminator is not None:
                self._out.append(framing.terminator)
        if more:
            written: int = entry[3]  # type: ignore[assignment]
            entry[1] = written
            entry[3] = written + 1
        return more

    def end_list(self) -> None:
        self._stack.pop()

    def visit_bool(self, name: str, value: bool) -> bool:
        if not isinstance(value, bool):
            raise self._bad_value(f"{value!r} is not a bool", name)
        self._out.append(1 if value else 0)
        return value

    def visit_str(self, name: str, value: str) -> str:
        if not isinstance(value, str):
            raise self._bad_value(f"{value!r} is not a str", name)
        try:
            data = value.encode()
        except UnicodeEncodeError:
            raise self._bad_value(f"{value!r:.40} is not encodable as UTF-8", name) from None
        if len(data) > 255:
            raise self._bad_value(f"string of {len(data)} bytes does not fit a length byte", name)
        self._out.append(len(data))
        self._out += data
        return value

    def visit_buffer(self, name: str, value: bytes, size: int) -> bytes:
        if not isinstance(value, (bytes, bytearray)) or len(value) != size:
            raise self._bad_value(f"buffer must be {size} bytes, got {value!r:.40}", name)
        self._out += value
        return value


class QemuFileInputVisitor(PathTracker, Visitor):
    """Reads QEMU's legacy stream from ``data`` starting at ``offset``.

    The caller decides what follows the value: :meth:`finish` rejects trailing
    bytes, :attr:`position` lets a stream parser continue after it.
    """

    is_input = True
    self_describing = False
    #: Most elements a counted list may announce.
    count_limit = MAX_ELEMENTS

    def __init__(self, data: bytes, offset: int = 0, *, end: int | None = None) -> None:
        super().__init__()
        if len(data) > MAX_INPUT:
            raise LimitExceeded(f"input of {len(data)} bytes exceeds the {MAX_INPUT}-byte limit", offset=0)
        self._data = bytes(data)
        self.position = offset
        self._end = len(self._data) if end is None else end

    @property
    def data(self) -> bytes:
        """The whole input (reading starts at the offset given and goes on at :attr:`position`)."""
        return self._data

    @property
    def end(self) -> int:
        """Where the input ends for this visitor (reading past it is a truncated input)."""
        return self._end

    def _offset(self) -> int | None:
        return self.position

    def finish(self) -> None:
        """Reject bytes left after the value."""
        if self.position != self._end:
            raise self._fail(TrailingData, f"{self._end - self.position} unexpected trailing bytes")

    def _take(self, size: int, name: str) -> int:
        """Reserve ``size`` bytes; return where they start."""
        start = self.position
        if start + size > self._end:
            raise self._fail(
                TruncatedInput, f"input ends after {self._end - start} of {size} bytes", name, offset=start
            )
        self.position = start + size
        return start

    def visit_integer(self, kind: str, name: str, value: int) -> int:
        packer = _PACKERS[kind]
        loaded: int = packer.unpack_from(self._data, self._take(packer.size, name))[0]
        return loaded

    def start_struct(self, name: str) -> None:
        self._push(name, -1)

    def end_struct(self, *, allow_trailing: bool = False) -> None:
        self._stack.pop()

    def start_list(self, name: str, framing: Framing, count: int) -> int:
        if framing.kind is ListFraming.COUNT:
            count = self.visit_integer(_COUNT_KIND[framing.count_bits], name, 0)
            if count > self.count_limit:
                raise self._fail(LimitExceeded, f"count {count} exceeds the {MAX_ELEMENTS}-element limit", name)
        elif framing.kind is ListFraming.SENTINEL:
            count = -1
        elif count > MAX_ELEMENTS:
            # A length held in another field: zero-byte elements would loop without reading.
            raise self._fail(LimitExceeded, f"length {count} exceeds the {MAX_ELEMENTS}-element limit", name)
        self._push(name, 0)
        self._stack[-1].extend((framing, count, 0))
        return count

    def next_list(self, more: bool) -> bool:
        entry = self._stack[-1]
        index: int = entry[4]  # type: ignore[assignment]
        framing: Framing = entry[2]  # type: ignore[assignment]
        if framing.kind is not ListFraming.SENTINEL:
            has_more = index < entry[3]  # type: ignore[operator]
        else:
            if index >= MAX_ELEMENTS:
                raise self._fail(LimitExceeded, f"more than {MAX_ELEMENTS} elements")
            if self.position >= self._end:
                if framing.terminator is None:
                    return False
                raise self._fail(TruncatedInput, "input ends inside a marker-framed list")
            byte = self._data[self.position]
            if (
                byte == framing.marker
                and framing.name_prefix is not None
                and not self._name_follows(framing.name_prefix)
            ):
                return False
            if byte == framing.marker:
                self.position += 1
                has_more = True
            elif framing.terminator is None:
                return False
            elif byte == framing.terminator:
                self.position += 1
                return False
            else:
                raise self._fail(
                    MalformedInput,
                    f"expected marker 0x{framing.marker:02x} or terminator 0x{framing.terminator:02x}, "
                    f"found 0x{byte:02x}",
                )
        if has_more:
            entry[1] = index
            entry[4] = index + 1
        return has_more

    def _name_follows(self, prefix: str) -> bool:
        """Whether the marker at the current position is followed by a
        length-prefixed name that starts with ``prefix`` (peeked, not consumed)."""
        wanted = prefix.encode()
        start = self.position + 1
        if start >= self._end:
            return False
        size = self._data[start]
        return size > len(wanted) and self._data[start + 1 : start + 1 + len(wanted)] == wanted

    def end_list(self) -> None:
        self._stack.pop()

    def visit_bool(self, name: str, value: bool) -> bool:
        start = self._take(1, name)
        byte = self._data[start]
        if byte > 1:
            # QEMU itself reads any non-zero byte as true; we refuse it so that a
            # decoded stream always re-encodes to the same bytes.
            raise self._fail(MalformedInput, f"bool byte is 0x{byte:02x}, not 0 or 1", name, offset=start)
        return byte == 1

    def visit_str(self, name: str, value: str) -> str:
        size = self._data[self._take(1, name)]
        start = self._take(size, name)
        try:
            return self._data[start : start + size].decode()
        except UnicodeDecodeError as error:
            raise self._fail(MalformedInput, f"string is not UTF-8 ({error.reason})", name, offset=start) from None

    def visit_buffer(self, name: str, value: bytes, size: int) -> bytes:
        start = self._take(size, name)
        return self._data[start : start + size]


class QemuLoadVisitor(QemuFileInputVisitor):
    """Reads legacy bytes as QEMU's loader does, for predicting what QEMU will do
    with a stream: any non-zero bool byte is true (``get_bool``), and a
    subsection's version keeps its low byte. Such a read need not re-encode to
    the same bytes, which is why the byte-exact reader refuses them."""

    qemu_load_rules = True
    #: QEMU reads a counted list's count and checks it against its own maximum
    #: (virtio's VIRTIO_QUEUE_MAX) before any element: the description's
    #: ``max_length`` refuses it in QEMU's words. Every element of a counted list
    #: reads bytes, so a long list ends at the end of the input.
    count_limit = 2**32

    def visit_bool(self, name: str, value: bool) -> bool:
        return self._data[self._take(1, name)] != 0
