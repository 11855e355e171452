"""QEMU's vmdesc trailer: the JSON that says how many bytes each section holds.

Why: QEMU's legacy stream cannot be walked without knowing every device's
layout. The vmdesc trailer (``0x06`` + be32 length + JSON, after EOF) lists, per
FULL section, the fields QEMU wrote and their sizes. Summing them sizes the
sections of devices migcompat does not model, so they can be carried as exact
opaque bytes; a wrong sum is caught because the section footer must follow.

Strategy: :func:`find_trailer` locates the trailer from the end of the stream
(``06`` + a length that reaches exactly the last byte + ``{``), :func:`section_sizes`
maps ``(idstr, instance_id)`` to the byte size computed from the JSON. A field's
``size`` is the bytes written for one element; compressed arrays carry
``array_len``; each subsection adds its header (marker, name length, name,
be32 version).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

VMDESC_MARKER = 0x06
_SCAN_LIMIT = 64 * 1024 * 1024


def find_trailer(data: bytes, not_before: int = 0) -> int | None:
    """Offset of the vmdesc marker byte, or None when the stream has no trailer."""
    end = len(data)
    position = end
    floor = max(not_before, end - _SCAN_LIMIT)
    while True:
        position = data.rfind(b"\x06", floor, position)
        if position < 0:
            return None
        if position + 5 < end and data[position + 5] == 0x7B:  # "{"
            length = int.from_bytes(data[position + 1 : position + 5], "big")
            if position + 5 + length == end:
                return position


def parse(json_bytes: bytes) -> dict[str, Any] | None:
    """The decoded JSON, or None when it is not a vmdesc object."""
    try:
        value = json.loads(json_bytes)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(value, dict) or not isinstance(value.get("devices"), list):
        return None
    return value


def problem(json_bytes: bytes) -> str:
    """Why :func:`parse` refuses ``json_bytes``, for an error message."""
    try:
        value = json.loads(json_bytes)
    except json.JSONDecodeError as error:
        return f"not valid JSON ({error.msg} at byte {error.pos} of the JSON)"
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        return f"not valid JSON ({type(error).__name__})"
    if not isinstance(value, dict) or not isinstance(value.get("devices"), list):
        return "JSON without a 'devices' list"
    return "accepted"


def _fields_size(fields: Sequence[Mapping[str, Any]]) -> int:
    total = 0
    for item in fields:
        size = int(item.get("size", 0))
        total += size * int(item.get("array_len", 1))
    return total


def _subsections_size(subsections: Sequence[Mapping[str, Any]]) -> int:
    total = 0
    for sub in subsections:
        name = str(sub.get("vmsd_name", "")).encode()
        total += 1 + 1 + len(name) + 4
        total += _fields_size(sub.get("fields", ()))
        total += _subsections_size(sub.get("subsections", ()))
    return total


def entry_size(entry: Mapping[str, Any]) -> int:
    """Bytes of one section's body as described by its vmdesc entry."""
    return _fields_size(entry.get("fields", ())) + _subsections_size(entry.get("subsections", ()))


def section_entries(vmdesc: Mapping[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """``(idstr, instance_id)`` -> the entry that describes the section."""
    entries: dict[tuple[str, int], dict[str, Any]] = {}
    for entry in vmdesc.get("devices", ()):
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            instance = entry.get("instance_id", 0)
            if isinstance(instance, int) and not isinstance(instance, bool):
                entries[(entry["name"], instance)] = entry
    return entries


def section_sizes(vmdesc: Mapping[str, Any]) -> dict[tuple[str, int], int]:
    """``(idstr, instance_id)`` -> body size for every described section."""
    sizes: dict[tuple[str, int], int] = {}
    for entry in vmdesc.get("devices", ()):
        if isinstance(entry, Mapping) and "name" in entry:
            try:
                sizes[(str(entry["name"]), int(entry.get("instance_id", 0)))] = entry_size(entry)
            except (TypeError, ValueError, AttributeError):
                continue
    return sizes
