"""The visitor interface: one set of calls serves both save and load.

Why: QEMU's legacy save and load are two hand-written functions per device that
must mirror each other (``qemu_put_be32`` here, ``qemu_get_be32`` there). Routing
both through one *visitor* makes the wire format pluggable and keeps save and load
from drifting apart: a visit function passes the current value and receives the
value to keep. An output visitor writes the value and returns it unchanged; an
input visitor ignores it and returns what it read.

Strategy: the interface is deliberately tiny -- struct start/end, list
start/next/end, the eight fixed-width integers, bool, str and buffer. Arrays,
optional fields, subsections and version gating are built on these in
:mod:`migcompat.model.vmstate`. Only input visitors fail on data (with a
:class:`~migcompat.errors.DecodeError`); output visitors fail only on values that do
not fit their declared type (:class:`~migcompat.errors.EncodeError`).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from enum import Enum


class ListFraming(Enum):
    """How a list's extent is written on the legacy wire."""

    #: A count written before the elements (virtio's queue count).
    COUNT = "count"
    #: A marker byte before each element and a terminator after the last
    #: (slirp's 42 ... 0). With no terminator, any other byte ends the list and is
    #: left unread (QEMU's subsection markers).
    SENTINEL = "sentinel"
    #: The number of elements is known from the description (a fixed array) or
    #: from a field loaded earlier; nothing is written for it.
    KNOWN = "known"


@dataclass(frozen=True)
class Framing:
    """The legacy-wire framing of one list; self-describing formats ignore it."""

    kind: ListFraming = ListFraming.KNOWN
    #: Width in bits of the count for COUNT framing: 8, 16 or 32.
    count_bits: int = 32
    #: Marker before each element for SENTINEL framing.
    marker: int = 0
    #: Terminator after the last element for SENTINEL framing; None means the
    #: list ends at the first byte that is not the marker, which stays unread.
    terminator: int | None = None
    #: With no terminator: the marker must also be followed by a length-prefixed
    #: name starting with this prefix, or the list ends there, unread -- QEMU's
    #: rule that hands a subsection back to the enclosing description.
    name_prefix: str | None = None


KNOWN_LENGTH = Framing()


class Visitor(abc.ABC):
    """A wire format's reader or writer. Subclasses are one direction of one format."""

    #: True for input visitors (they read and return what they read).
    is_input: bool = False
    #: True when the format carries names and types, so mismatches are detected
    #: and unknown trailing data can be skipped.
    self_describing: bool = False
    #: True when reading as QEMU's loader reads, not byte-exactly: a subsection's
    #: version keeps its low byte (QEMU reads it into a uint8_t).
    qemu_load_rules: bool = False

    def where(self) -> tuple[int | None, str]:
        """Byte offset (None where the format has none) and field path, for errors."""
        return None, ""

    # -- structure ---------------------------------------------------------
    @abc.abstractmethod
    def start_struct(self, name: str) -> None:
        """Open a struct (a device state, a queue, a subsection)."""

    @abc.abstractmethod
    def end_struct(self, *, allow_trailing: bool = False) -> None:
        """Close the current struct.

        With ``allow_trailing``, an input visitor of a self-describing format skips
        members it was not asked for instead of rejecting them.
        """

    @abc.abstractmethod
    def start_list(self, name: str, framing: Framing, count: int) -> int:
        """Open a list. ``count`` is the element count to write, or for a list of
        known length the count expected. Returns the count written or read, or -1
        when the count is only learnt element by element (sentinel framing).
        """

    @abc.abstractmethod
    def next_list(self, more: bool) -> bool:
        """Called before each element and once after the last. ``more`` says
        whether the caller has another element to write; the return value says
        whether there is one (read, for input visitors)."""

    @abc.abstractmethod
    def end_list(self) -> None:
        """Close the current list."""

    # -- scalars -----------------------------------------------------------
    @abc.abstractmethod
    def visit_integer(self, kind: str, name: str, value: int) -> int:
        """An integer of ``kind`` (a key of :data:`INTEGER_KINDS`): what every
        ``visit_<kind>`` below does, for visitors that treat the kinds alike."""

    def visit_int8(self, name: str, value: int) -> int:
        return self.visit_integer("int8", name, value)

    def visit_int16(self, name: str, value: int) -> int:
        return self.visit_integer("int16", name, value)

    def visit_int32(self, name: str, value: int) -> int:
        return self.visit_integer("int32", name, value)

    def visit_int64(self, name: str, value: int) -> int:
        return self.visit_integer("int64", name, value)

    def visit_uint8(self, name: str, value: int) -> int:
        return self.visit_integer("uint8", name, value)

    def visit_uint16(self, name: str, value: int) -> int:
        return self.visit_integer("uint16", name, value)

    def visit_uint32(self, name: str, value: int) -> int:
        return self.visit_integer("uint32", name, value)

    def visit_uint64(self, name: str, value: int) -> int:
        return self.visit_integer("uint64", name, value)

    @abc.abstractmethod
    def visit_bool(self, name: str, value: bool) -> bool: ...

    @abc.abstractmethod
    def visit_str(self, name: str, value: str) -> str:
        """A short string; the legacy wire writes a length byte then the bytes."""

    @abc.abstractmethod
    def visit_buffer(self, name: str, value: bytes, size: int) -> bytes:
        """Raw bytes of a length both sides know (``size``)."""


#: Integer kinds: name -> (bits, signed). The single table every visitor and the
#: description layer derive their checks from.
INTEGER_KINDS: dict[str, tuple[int, bool]] = {
    "int8": (8, True),
    "int16": (16, True),
    "int32": (32, True),
    "int64": (64, True),
    "uint8": (8, False),
    "uint16": (16, False),
    "uint32": (32, False),
    "uint64": (64, False),
}

#: Every scalar kind a description may use.
SCALAR_KINDS: tuple[str, ...] = (*INTEGER_KINDS, "bool", "str", "buffer")


def integer_range(kind: str) -> tuple[int, int]:
    """Smallest and largest value of an integer kind."""
    bits, signed = INTEGER_KINDS[kind]
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1
