"""The body of QEMU's ``ram`` section records, walked to find where they end.

Why: RAM travels as START/PART/END records of the iterative ``ram`` section and
has no vmdesc entry, so the only way to find its end is to read its own framing.
migcompat carries RAM as opaque bytes; it only needs the exact extent, and a
clean error when the framing is broken.

Strategy: every item starts with a be64 word whose low bits are flags
(``migration/ram.c``): MEM_SIZE (0x04) introduces the block list (name + be64
length per block, until the total is reached), PAGE (0x08) carries a page,
ZERO (0x02) one fill byte, CONTINUE (0x20) omits the block name, EOS (0x10) ends
the record. Other flags (compression, XBZRLE, hooks) are not produced by a
default migration and are refused by name.
"""

from __future__ import annotations

import contextlib

from migcompat.errors import DecodeError, LimitExceeded, LoadRefused, MalformedInput, TruncatedInput
from migcompat.limits import MAX_ELEMENTS

FLAG_ZERO = 0x02
FLAG_MEM_SIZE = 0x04
FLAG_PAGE = 0x08
FLAG_EOS = 0x10
FLAG_CONTINUE = 0x20
_KNOWN = FLAG_ZERO | FLAG_MEM_SIZE | FLAG_PAGE | FLAG_EOS | FLAG_CONTINUE
_FLAG_MASK = 0x1FF  # flags live below the smallest target page (512 bytes)
PAGE_SIZE = 4096  # x86 TARGET_PAGE_SIZE


def _need(data: bytes, position: int, size: int, what: str) -> None:
    if position + size > len(data):
        raise TruncatedInput(f"input ends inside {what}", offset=position, path="ram")


class RamBlocks:
    """The RAM blocks a destination has, checked as QEMU's ``ram_load`` checks an incoming record.

    QEMU refuses a block it does not have ("Unknown ramblock"), a block whose
    length differs from its own (unless the block is resizable, up to its
    maximum: :data:`RESIZABLE_MAX`),
    a page naming a block it does not have, or one outside its block.
    """

    def __init__(self, lengths: dict[str, int], release: str | None = None) -> None:
        self.lengths = lengths
        self.current: str | None = None
        #: Whether the destination refuses a zero page whose fill byte is not 0
        #: (None: its release is not one whose rule was measured).
        self.zero_fill_checked = ZERO_FILL_CHECKED.get(release.removeprefix("qemu-")) if release else None
        #: The first thing met that the destination's release decides and is not
        #: known: (stream offset, what), for the check to report as undecided.
        self.undecided: tuple[int, str] | None = None
        #: (block, page address) -> where the page's content is in the stream,
        #: and a zero page's fill byte (None: a whole page); the last one sent wins.
        self.pages: dict[tuple[str, int], tuple[int, int | None]] = {}

    def byte(self, data: bytes, block: str, address: int) -> int | None:
        """The byte at ``address`` of ``block`` after the pages read so far were
        loaded from ``data``; None when no page holding it was sent."""
        page = self.pages.get((block, address & ~(PAGE_SIZE - 1)))
        if page is None:
            return None
        content, fill = page
        return fill if fill is not None else data[content + (address & (PAGE_SIZE - 1))]

    def announce(self, name: str, length: int, offset: int) -> None:
        if name not in self.lengths:
            raise LoadRefused(f'Unknown ramblock "{name}", cannot accept migration', offset=offset, path="ram")
        local = self.lengths[name]
        if length == local:
            return
        maximum = RESIZABLE_MAX.get(name)
        if maximum is None:
            raise LoadRefused(f"Length mismatch: {name}: 0x{length:x} in != 0x{local:x}", offset=offset, path="ram")
        if length > maximum:
            raise LoadRefused(f"Size too large: {name}: 0x{length:x} > 0x{maximum:x}", offset=offset, path="ram")

    def page(self, name: str | None, address: int, offset: int, content: int = -1, fill: int | None = None) -> None:
        if fill:
            if self.zero_fill_checked:
                raise LoadRefused(f"Found a zero page with value {fill}", offset=offset, path="ram")
            if self.zero_fill_checked is None and self.undecided is None:
                self.undecided = (offset, f"a zero page with fill byte {fill}: refused from QEMU 10.0 on, not before")
        if name is not None:
            if name not in self.lengths:
                raise LoadRefused(f"Can't find block {name}", offset=offset, path="ram")
            self.current = name
        if self.current is None:
            raise LoadRefused("Ack, bad migration stream! (a page continues no block)", offset=offset, path="ram")
        if address >= self.lengths[self.current]:
            raise LoadRefused(f"Illegal RAM offset 0x{address:x} in block {self.current}", offset=offset, path="ram")
        self.pages[(self.current, address)] = (content, fill)


#: Whether a release refuses a zero page with a non-zero fill byte ("Found a
#: zero page with value N"), as measured on each release's own load (5.2 and
#: 7.2 fill the page with it; tests/test_check.py loads one into each).
ZERO_FILL_CHECKED = {"5.2": False, "7.2": False, "10.0": True}

#: Blocks QEMU resizes on load, and their largest size (fw_cfg's ACPI blobs on
#: pc and q35, hw/acpi/utils.c ``acpi_add_rom_blob``): a length up to it is taken.
RESIZABLE_MAX = {"/rom@etc/acpi/tables": 0x200000, "/rom@etc/table-loader": 0x10000, "/rom@etc/acpi/rsdp": 0x1000}


class _Announced(RamBlocks):
    """Collects the block list instead of checking it."""

    def announce(self, name: str, length: int, offset: int) -> None:
        self.lengths[name] = length

    def page(self, name: str | None, address: int, offset: int, content: int = -1, fill: int | None = None) -> None:
        return None


def ram_blocks(body: bytes) -> dict[str, int]:
    """Block name -> length from the block list of a ram START record's body."""
    announced = _Announced({})
    # A capture's own record is whole; a damaged one keeps the blocks read before the damage.
    with contextlib.suppress(DecodeError):
        ram_record_end(body, 0, check=announced)
    return announced.lengths


def ram_record_end(data: bytes, position: int, *, page_size: int = PAGE_SIZE, check: RamBlocks | None = None) -> int:
    """Offset just after the ram record body starting at ``position``; with
    ``check``, each block and page is also checked against a destination's blocks."""
    items = 0
    while True:
        items += 1
        if items > MAX_ELEMENTS * 16:
            raise LimitExceeded("too many ram items in one record", offset=position, path="ram")
        _need(data, position, 8, "a ram item header")
        word = int.from_bytes(data[position : position + 8], "big")
        flags = word & _FLAG_MASK
        start = position
        position += 8
        if flags & ~_KNOWN:
            raise MalformedInput(f"unsupported ram flags 0x{flags:x}", offset=start, path="ram")
        if flags & FLAG_EOS:
            return position
        if flags & FLAG_MEM_SIZE:
            remaining = word & ~_FLAG_MASK
            while remaining > 0:
                _need(data, position, 1, "a ram block name")
                size = data[position]
                _need(data, position, 1 + size + 8, "a ram block entry")
                name = data[position + 1 : position + 1 + size]
                position += 1 + size
                length = int.from_bytes(data[position : position + 8], "big")
                position += 8
                if check is not None:
                    check.announce(name.decode("utf-8", "replace"), length, start)
                if length > remaining:
                    raise MalformedInput("ram block lengths exceed the announced total", offset=start, path="ram")
                remaining -= length
            continue
        block: str | None = None
        if not flags & FLAG_CONTINUE:
            _need(data, position, 1, "a ram block name")
            _need(data, position, 1 + data[position], "a ram block name")
            block = data[position + 1 : position + 1 + data[position]].decode("utf-8", "replace")
            position += 1 + data[position]
        if check is not None and flags & (FLAG_ZERO | FLAG_PAGE):
            if flags & FLAG_ZERO:
                _need(data, position, 1, "a zero-page fill byte")
            fill = data[position] if flags & FLAG_ZERO else None
            check.page(block, word & ~(page_size - 1), start, position, fill)
        if flags & FLAG_ZERO:
            _need(data, position, 1, "a zero-page fill byte")
            position += 1
        elif flags & FLAG_PAGE:
            _need(data, position, page_size, "a ram page")
            position += page_size
        else:
            raise MalformedInput(f"ram item with no content flag (0x{flags:x})", offset=start, path="ram")
