"""The version each field of a section arrived in, asked of the QEMU release that writes it.

Why: a destination loads a section written at an older version than its own
(down to its minimum) by reading only the fields that existed then: a field of
``VMSTATE_UINT64_V(x, S, 12)`` is skipped at version 11. ``-dump-vmstate`` gives
each field's version only for device classes (``dc->vmsd``); ``cpu``, the PIIX
``ide`` of 5.2 and 7.2, ``timer``, ``ioapic`` ... are registered otherwise, so
``migcompat check`` cannot say which bytes such a section carries at an older
version -- and the stream's vmdesc lists only what the writer wrote.

The release itself tells, one field at a time. A stream that carries the
section at version V and ends right after the fields already known makes QEMU
stop on the next field it reads at V: "Failed to load cpu:env.xcr0". Walking
so from the first field, every field read at V is named in order, and each
step feeds it correctly aligned bytes (those of the capture), so no value is
misread on the way. A field never named at V arrived later. The answer is
kept only when a whole stream rebuilt at V -- just those fields, then the
section's subsections and the rest of the capture -- loads.

A field whose presence depends on the state rather than on the version
(``VMSTATE_*_TEST``) is measured as the capture's state has it.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from migcompat.errors import DecodeError, DescriptionError
from migcompat.model import vmstate
from migcompat.qemu import imported
from migcompat.wire.qemufile import QemuLoadVisitor

if TYPE_CHECKING:
    from migcompat.qemu.peer import MachineConfig

#: A section's fields in its vmdesc order, each with the first version that reads it.
FieldsSince = tuple[tuple[str, int], ...]

_FAILED = re.compile(r"Failed to load (?P<vmsd>[^:\n]+):(?P<field>\S+)")
_INDEX = re.compile(r"\[\d+\]$")


@dataclass(frozen=True)
class ProbedSection:
    """What :func:`probe_section` needs of one section of a capture."""

    vmsd_name: str
    entry: dict[str, object]
    version_id: int
    minimum_version_id: int
    #: Offsets in the capture: the section's body, and its footer.
    body: int
    footer: int


@dataclass(frozen=True)
class Span:
    """One top-level field of a captured section: where its bytes are."""

    name: str
    start: int
    end: int
    #: A struct (or array of them): QEMU peeks for its subsections after it,
    #: so a stream ending right after it is blamed on it, not on the next field.
    nested: bool


def _nested(kind: object) -> bool:
    while isinstance(kind, vmstate.Array):
        kind = kind.element
    return isinstance(kind, vmstate.Struct | vmstate.Description)


def field_spans(entry: dict[str, object], version: int, data: bytes, body: int) -> list[Span]:
    """Each top-level field of the section at ``body``, read with its vmdesc."""
    description = imported.from_vmdesc(entry, version)
    ends = vmstate.field_ends(QemuLoadVisitor(data, body), description, version)
    starts = [body, *ends[:-1]]
    return [
        Span(f.name, start, end, _nested(f.type))
        for f, start, end in zip(description.fields, starts, ends, strict=True)
    ]


def _names(field: str) -> set[str]:
    """The names QEMU may print for a field our import names ``field``."""
    return {field, _INDEX.sub("", field)}


def probe_section(
    section: ProbedSection,
    data: bytes,
    load: Callable[[bytes], tuple[bool, str]],
) -> FieldsSince | None:
    """Each field's arrival version, from loads of ``data`` cut and rebuilt by
    ``load`` (bytes -> accepted, QEMU's message); None when QEMU's answers do
    not add up to a stream it loads."""
    try:
        spans = field_spans(section.entry, section.version_id, data, section.body)
    except (DecodeError, DescriptionError):
        return None
    if not spans or spans[-1].end > section.footer:
        return None
    head = data[: section.body - 4]
    since = [section.version_id] * len(spans)
    readable = list(range(len(spans)))

    def next_named(stream: bytes) -> str | None:
        _accepted, message = load(stream)
        failed = [m for m in _FAILED.finditer(message) if m["vmsd"] == section.vmsd_name]
        return failed[-1]["field"] if failed else None

    for version in range(section.version_id - 1, section.minimum_version_id - 1, -1):
        header = head + version.to_bytes(4, "big")
        read: list[int] = []
        prefix = b""
        while True:
            name = next_named(header + prefix)
            hidden_allowed = False
            if name is not None and read and spans[read[-1]].nested and name in _names(spans[read[-1]].name):
                # Blamed on the struct just read: one more byte lets its peek
                # pass, and the field after it is the one that runs out.
                name = next_named(header + prefix + b"\x00")
                hidden_allowed = True
            if name is None:
                break
            after = read[-1] if read else -1
            nxt = next((i for i in readable if i > after and name in _names(spans[i].name)), None)
            if nxt is None:
                return None
            between = [i for i in readable if after < i < nxt]
            # A one-byte field between may have taken the extra byte: taken as read
            # (as at the version above); the rebuilt stream's load decides.
            hidden = [i for i in between if hidden_allowed and spans[i].end - spans[i].start == 1]
            for index in [*hidden, nxt]:
                read.append(index)
                prefix += data[spans[index].start : spans[index].end]
        # Fields of no bytes are never named: they are read wherever they stand.
        read_set = set(read) | {i for i in readable if spans[i].start == spans[i].end}
        rebuilt = header + b"".join(data[spans[i].start : spans[i].end] for i in sorted(read_set))
        accepted, _message = load(rebuilt + data[spans[-1].end :])
        if not accepted:
            return None
        readable = [i for i in readable if i in read_set]
        for index in readable:
            since[index] = version
    return tuple((spans[i].name, since[i]) for i in range(len(spans)))


def probe(
    release: str,
    config: MachineConfig,
    data: bytes,
    sections: Sequence[ProbedSection],
    *,
    timeout: float,
    progress: Callable[[str], None] | None = None,
) -> dict[str, FieldsSince]:
    """vmsd name -> fields since, for each section of one capture older versions of which load."""
    from migcompat.qemu import peer  # QMP: only where QEMU runs

    found: dict[str, FieldsSince] = {}
    with tempfile.TemporaryDirectory(prefix="migcompat-since-") as scratch:
        path = Path(scratch) / "probe.bin"

        def load(stream: bytes) -> tuple[bool, str]:
            path.write_bytes(stream)
            result = peer.load(config, path, release=release, timeout=timeout)
            return result.accepted, result.message

        for section in sections:
            if section.minimum_version_id >= section.version_id:
                continue
            answer = probe_section(section, data, load)
            if answer is not None:
                found[section.vmsd_name] = answer
            if progress is not None:
                progress(f"{section.vmsd_name}: {'measured' if answer else 'not measured'}")
    return found
