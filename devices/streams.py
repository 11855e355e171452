"""Whole migration streams decoded and converted with every device this package models.

Why here: the stream framing (:mod:`migcompat.qemu.stream`) knows sections, not
devices; it asks a resolver which codec decodes a section. The registry of this
package is that resolver, so reading a stream "with everything migcompat knows"
is the registry's job, shared by ``migcompat inspect``, ``migcompat convert``
and the public API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from migcompat.devices import resolve_section
from migcompat.qemu import destination, incoming, stream
from migcompat.qemu.stream import MigrationStream


def inspect_stream(
    data: bytes, fmt: Literal["auto", "qemu", "ber"] = "auto", *, decode_vmdesc: bool = True
) -> tuple[str, MigrationStream]:
    """Decode a whole stream (QEMU's format or BER; ``auto`` tells them apart by the first bytes).

    Returns the format read and the stream: every record, each section a device
    model here knows decoded as that device's state, and every other VMState
    section decoded with the description in the stream's vmdesc trailer (with
    ``decode_vmdesc=False``: only sized by it, kept as bytes). Raises a
    :class:`~migcompat.errors.DecodeError` naming the field path and byte offset
    of the first thing that is wrong.
    """
    return stream.parse(data, resolve_section, fmt, decode_vmdesc=decode_vmdesc)


def convert_stream(data: bytes, to: Literal["qemu", "ber"]) -> bytes:
    """Re-encode a whole stream in ``to``; qemu -> ber -> qemu gives back the original bytes."""
    _, decoded = inspect_stream(data)
    if to == "qemu":
        return stream.encode_qemu(decoded, resolve_section)
    return stream.encode_ber(decoded, resolve_section)


def read_destination(
    capture: Path, dump: Path | None = None, release: str | None = None, minimums: Path | None = None
) -> destination.Destination:
    """The receiving side a capture of its configuration (its ``-dump-vmstate``, its
    minimum-versions table) describes."""
    return destination.read(capture, resolve_section, dump, release, minimums)


def check_stream(data: bytes, against: destination.Destination) -> incoming.LoadVerdict:
    """What the destination will do with a stream (a BER stream is checked in its QEMU form)."""
    if stream.detect_format(data) == "ber":
        data = convert_stream(data, "qemu")
    return incoming.load(data, against, resolve_section)


__all__ = ["check_stream", "convert_stream", "inspect_stream", "read_destination"]
