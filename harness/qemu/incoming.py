"""What a destination QEMU will do with a stream: its load, predicted section by section.

Why: "will this stream load there, and if not, why?" is answered today by
starting the destination. QEMU's loader (``qemu_loadvm_state``,
migration/savevm.c) reads the stream with the destination's own devices and
stops at the first refusal; everything it checks on the way is knowable from
the stream and a description of the destination (:mod:`.destination`). This
module reads a stream the way QEMU does, with the destination's layouts -- not
the stream's own vmdesc trailer, which QEMU never reads -- and reports per
section: loaded, refused (with QEMU's words), or not read because an earlier
section failed.

QEMU's rules followed here, each on purpose:

* the header's magic and version; the configuration's machine type, compared
  as QEMU's ``strncmp`` over the received length;
* each section must be one the destination has (idstr and instance id), at a
  version it accepts (at most its own, at least its minimum from the dump);
* each section is read with the destination's layout (its MSI-X vector count,
  its fields), then its footer must follow, naming the same section id;
* a subsection the destination's description does not know is refused; one
  whose name does not start with the description's ends its subsections;
* any non-zero bool byte is true, a subsection's version keeps its low byte;
* the end-of-stream byte ends the load: what follows it (the vmdesc trailer,
  or anything else) is read and ignored, and loading succeeds;
* a section's fields are then checked as QEMU checks them: ``equal`` and ``le``
  integers against the destination's own values, PCI config read-only bits,
  the device models' checks (virtio, slirp).

Sections the destination has but the stream does not carry keep the
destination's reset state: QEMU does not require them, and neither does this.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from migcompat.errors import DecodeError, DescriptionError, LoadRefused, TruncatedInput
from migcompat.model import vmstate
from migcompat.qemu import imported, pci, post_load, vmdesc
from migcompat.qemu.destination import Destination, DestinationSection
from migcompat.qemu.ram import RamBlocks, ram_record_end
from migcompat.qemu.stream import (
    COMMAND,
    COMMANDS,
    CONFIGURATION,
    EOF_MARKER,
    FOOTER,
    QEMU_MAGIC,
    QEMU_VERSION,
    SECTION_FULL,
    SECTION_NAMES,
    SECTION_START,
    SUBSECTION,
    QemuReader,
    Record,
    Resolver,
    SectionCodec,
)
from migcompat.wire.qemufile import QemuLoadVisitor

#: Verdicts of one section.
LOADED, REFUSED, NOT_READ, UNJUDGED = "loads", "refused", "not read", "cannot tell"


class ReceivingCodec(Protocol):
    """A device model that knows how the destination's own device reads a section."""

    def receiving(self, own: Record) -> SectionCodec:
        """The codec of the destination's device, whose own section (in its capture) is ``own``."""

    def refusals(
        self, loaded: Mapping[str, Any], own: Record, destination: Destination
    ) -> Iterator[tuple[str, str, str]]:
        """(field path, QEMU's words, what QEMU does wrong or "") for each check the
        destination's device makes after reading ``loaded``."""

    def refusals_before(self, data: bytes, start: int, own: Record) -> Iterator[tuple[str, str, str]]:
        """The same, for checks QEMU makes before it reads the rest of the section."""

    def finding(self, error: DecodeError) -> str:
        """What QEMU itself does on input this load refuses, when worse than a refusal ("" if not)."""


@dataclass
class SectionVerdict:
    """What the destination does with one section record."""

    label: str
    instance_id: int | None
    verdict: str
    reason: str = ""
    path: str = ""
    offset: int | None = None
    #: How the body was read: ``model``, ``vmdesc`` (the destination's layout), ``ram`` or empty.
    read_by: str = ""
    #: What QEMU itself does wrong on this input (a crash, a hang), when known.
    finding: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "section": self.label,
            "instance_id": self.instance_id,
            "verdict": self.verdict,
            "reason": self.reason,
            "path": self.path,
            "offset": self.offset,
            "read_by": self.read_by,
            "finding": self.finding,
        }


@dataclass
class LoadVerdict:
    """The destination's load of a whole stream."""

    sections: list[SectionVerdict] = field(default_factory=list)
    #: What QEMU reads after the end-of-stream byte and ignores.
    ignored: str = ""

    @property
    def verdict(self) -> str:
        verdicts = {section.verdict for section in self.sections}
        if REFUSED in verdicts:
            return REFUSED
        return UNJUDGED if UNJUDGED in verdicts else LOADED

    @property
    def loads(self) -> bool:
        return self.verdict == LOADED

    @property
    def refusal(self) -> SectionVerdict | None:
        return next((s for s in self.sections if s.verdict in (REFUSED, UNJUDGED)), None)

    def as_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "ignored_after_end": self.ignored,
            "sections": [section.as_json() for section in self.sections],
        }


class _Refusal(Exception):
    def __init__(self, verdict: SectionVerdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


def _at(cursor: QemuReader, section: str) -> QemuReader:
    """The cursor, its errors naming ``section``."""
    cursor.section = section
    return cursor


def load(data: bytes, destination: Destination, resolve: Resolver) -> LoadVerdict:
    """Predict the destination's load of the QEMU stream ``data``."""
    result = LoadVerdict()
    cursor = QemuReader(data)
    try:
        _header(cursor, destination, result)
        _sections(cursor, destination, resolve, result)
    except _Refusal as refusal:
        result.sections.append(refusal.verdict)
    except TruncatedInput as error:
        where = error.path or cursor.section
        result.sections.append(SectionVerdict(where, None, REFUSED, _words(error), where, error.offset))
    return result


def _refuse(label: str, reason: str, offset: int | None, *, instance: int | None = None, path: str = "") -> _Refusal:
    return _Refusal(SectionVerdict(label, instance, REFUSED, reason, path or label, offset))


def _header(cursor: QemuReader, destination: Destination, result: LoadVerdict) -> None:
    if _at(cursor, "header").be32() != QEMU_MAGIC:
        raise _refuse("header", "Not a migration stream (the magic is not QEVM)", 0)
    if _at(cursor, "header").be32() != QEMU_VERSION:
        raise _refuse("header", "Unsupported migration stream version", 4)
    offset = cursor.position
    if _at(cursor, "configuration").u8() != CONFIGURATION:
        raise _refuse("configuration", "Configuration section missing", offset)
    size = _at(cursor, "configuration").be32()
    received = _at(cursor, "configuration").take(size)
    if not _strncmp_equal(received, destination.machine.encode(), size):
        name = received.split(b"\0")[0].decode("utf-8", "replace")
        raise _refuse(
            "configuration",
            f"Machine type received is '{name}' and local is '{destination.machine}'",
            offset + 5,
        )
    if cursor.position < len(cursor.data) and cursor.data[cursor.position] == SUBSECTION:
        raise _Refusal(
            SectionVerdict(
                "configuration",
                None,
                UNJUDGED,
                "the configuration carries a subsection; which ones the destination knows is not modelled",
                "configuration",
                cursor.position,
            )
        )
    result.sections.append(SectionVerdict("configuration", None, LOADED, read_by="model"))


def _strncmp_equal(received: bytes, local: bytes, size: int) -> bool:
    """``strncmp(received, local, size) == 0`` on C strings (a NUL ends each)."""
    for index in range(size):
        a = received[index] if index < len(received) else 0
        b = local[index] if index < len(local) else 0
        if a != b:
            return False
        if a == 0:
            return True
    return True


@dataclass
class _Opened:
    record: Record
    own: DestinationSection


def _sections(cursor: QemuReader, destination: Destination, resolve: Resolver, result: LoadVerdict) -> None:
    opened: dict[int, _Opened] = {}
    ram = RamBlocks(destination.ram, destination.release)
    while True:
        offset = cursor.position
        kind = _at(cursor, "stream").u8()
        if kind == EOF_MARKER:
            rest = len(cursor.data) - cursor.position
            if rest:
                result.ignored = _ignored(cursor.data, cursor.position)
            return
        if kind == COMMAND:
            command = int.from_bytes(_at(cursor, "command").take(2), "big")
            if command not in COMMANDS:
                raise _refuse("command", f"MIG_CMD {command} unknown", offset + 1)
            cursor.take(int.from_bytes(cursor.take(2), "big"))
            continue
        if kind not in SECTION_NAMES:
            raise _refuse("stream", f"Unknown savevm section type {kind}", offset)
        section_id = _at(cursor, "stream").be32()
        if kind in (SECTION_START, SECTION_FULL):
            header_at = cursor.position
            size = _at(cursor, "stream").u8()
            idstr = _at(cursor, "stream").take(size).split(b"\0")[0].decode("utf-8", "replace")
            instance = _at(cursor, idstr).be32()
            version = _at(cursor, idstr).be32()
            own = destination.section(idstr, instance)
            if own is None:
                raise _refuse(
                    idstr,
                    f"Unknown savevm section or instance '{idstr}' {instance}. Make sure that your current VM "
                    "setup matches your saved VM setup, including any hotplugged devices",
                    header_at,
                    instance=instance,
                )
            if version > own.version_id:
                raise _refuse(
                    idstr, f"savevm: unsupported version {version} for '{idstr}' v{own.version_id}", header_at
                )
            record = Record(kind=kind, section_id=section_id, idstr=idstr, instance_id=instance, version_id=version)
            opened[section_id] = _Opened(record, own)
            current = opened[section_id]
        else:
            found = opened.get(section_id)
            if found is None:
                raise _refuse("stream", f"Unknown savevm section {section_id}", offset)
            current = found
        label = current.record.idstr
        verdict = _body(cursor, current, kind, destination, resolve, ram)
        footer_at = cursor.position
        if _at(cursor, label).u8() != FOOTER:
            raise _refuse(label, f"Missing section footer for {label}", footer_at)
        footer_id = _at(cursor, label).be32()
        if footer_id != section_id:
            raise _refuse(label, f"Mismatched section id for {label} ({footer_id} vs {section_id})", footer_at + 1)
        if kind in (SECTION_START, SECTION_FULL) or not result.sections or result.sections[-1].label != label:
            result.sections.append(verdict)


def _ignored(data: bytes, position: int) -> str:
    rest = len(data) - position
    if data[position : position + 1] == b"\x06" and vmdesc.parse(data[position + 5 :]) is not None:
        return f"the vmdesc trailer ({rest} bytes)"
    return f"{rest} bytes after the end-of-stream byte"


def _body(
    cursor: QemuReader,
    current: _Opened,
    kind: int,
    destination: Destination,
    resolve: Resolver,
    ram: RamBlocks,
) -> SectionVerdict:
    record, own = current.record, current.own
    label = record.idstr
    start = cursor.position
    if label == "ram":
        try:
            cursor.position = ram_record_end(cursor.data, start, check=ram)
        except DecodeError as error:
            raise _refuse(label, _words(error), error.offset, path=error.path or label) from None
        if ram.undecided is not None:
            at, what = ram.undecided
            why = f"{what}; which of the two needs the destination's release (--release)"
            raise _Refusal(SectionVerdict(label, record.instance_id, UNJUDGED, why, label, at))
        return SectionVerdict(label, record.instance_id, LOADED, read_by="ram")
    # QEMU loads a START, PART or END record of a device section as it loads a FULL one.
    codec = resolve(label, record.version_id)
    if codec is not None and own.record.device is not None:
        return _by_model(cursor, record, own, codec, destination)
    if own.entry is not None and "vmsd_name" in own.entry:
        return _by_description(cursor, record, own, ram)
    raise _Refusal(
        SectionVerdict(
            label,
            record.instance_id,
            UNJUDGED,
            "no device model and no layout of the destination's for this section",
            label,
            start,
        )
    )


def _words(error: DecodeError) -> str:
    """An error's message without migcompat's location suffix (reported separately)."""
    return re.sub(r" \(at [^)]*byte offset \d+\)$", "", str(error))


def _by_model(
    cursor: QemuReader, record: Record, own: DestinationSection, codec: SectionCodec, destination: Destination
) -> SectionVerdict:
    label = record.idstr
    receiving = codec.receiving(own.record) if hasattr(codec, "receiving") else codec
    if hasattr(codec, "refusals_before"):
        for path, reason, finding in codec.refusals_before(cursor.data, cursor.position, own.record):
            refusal = _refuse(label, reason, cursor.position, instance=record.instance_id, path=f"{label}/{path}")
            refusal.verdict.finding = finding
            raise refusal
    visitor = QemuLoadVisitor(cursor.data, cursor.position)
    try:
        specialised = receiving.for_legacy_bytes(cursor.data, cursor.position, len(cursor.data), b"")
        state = (specialised or receiving).load(visitor, record.version_id)
    except DecodeError as error:
        refusal = _refuse(label, _words(error), error.offset, instance=record.instance_id, path=_path(label, error))
        refusal.verdict.finding = codec.finding(error) if hasattr(codec, "finding") else ""
        raise refusal from None
    if hasattr(codec, "refusals"):
        for path, reason, finding in codec.refusals(state, own.record, destination):
            refusal = _refuse(label, reason, visitor.position, instance=record.instance_id, path=f"{label}/{path}")
            refusal.verdict.finding = finding
            raise refusal
    cursor.position = visitor.position
    return SectionVerdict(label, record.instance_id, LOADED, read_by="model")


def _path(label: str, error: DecodeError) -> str:
    return f"{label}/{error.path}" if error.path and not error.path.startswith(label) else error.path or label


def _by_description(cursor: QemuReader, record: Record, own: DestinationSection, ram: RamBlocks) -> SectionVerdict:
    label = record.idstr
    assert own.entry is not None
    minimum = own.minimum_version_id
    if minimum is not None and record.version_id < minimum:
        raise _refuse(
            label,
            f"{own.vmsd_name}: incoming version_id {record.version_id} is too old for local minimum "
            f"version_id {minimum}",
            cursor.position,
            instance=record.instance_id,
        )
    if record.version_id != own.version_id and own.dumped is None and own.probed_since is None:
        raise _Refusal(
            SectionVerdict(
                label,
                record.instance_id,
                UNJUDGED,
                f"the stream's version {record.version_id} is not the destination's {own.version_id}: "
                "which fields it carries needs the destination's -dump-vmstate, or a minimum-versions "
                "table that measured them",
                label,
                cursor.position,
            )
        )
    try:
        description = _at_version(imported.from_vmdesc(own.entry, own.version_id), own, record.version_id)
    except DescriptionError as error:
        raise _Refusal(
            SectionVerdict(label, record.instance_id, UNJUDGED, str(error), label, cursor.position)
        ) from None
    visitor = QemuLoadVisitor(cursor.data, cursor.position)
    try:
        state = vmstate.load(visitor, description, record.version_id)
    except LoadRefused as error:
        unknown = _unknown_subsection(error, own)
        if unknown is not None:
            raise _Refusal(unknown) from None
        raise _refuse(
            label, _words(error), error.offset, instance=record.instance_id, path=_path(label, error)
        ) from None
    except DecodeError as error:
        raise _refuse(
            label, _words(error), error.offset, instance=record.instance_id, path=_path(label, error)
        ) from None
    guessed = post_load.undecided(label, state, ram, cursor.data)
    if guessed is not None:
        raise _Refusal(SectionVerdict(label, record.instance_id, UNJUDGED, guessed[1], f"{label}/{guessed[0]}"))
    own_state = own.record.state or {}
    for path, reason in [
        *_field_checks(own.entry.get("fields", ()), state, own_state, ""),
        *post_load.refusals(label, state, ram, cursor.data),
    ]:
        raise _refuse(label, reason, visitor.position, instance=record.instance_id, path=f"{label}/{path}")
    cursor.position = visitor.position
    return SectionVerdict(label, record.instance_id, LOADED, read_by="vmdesc")


def _at_version(description: vmstate.Description, own: DestinationSection, version: int) -> vmstate.Description:
    """The destination's description read at an older stream version: each field
    carried from the version the dump (or the minimum-versions table, which
    measured it) says it arrived in, down to the destination's minimum."""
    minimum = own.minimum_version_id
    if version == own.version_id or minimum is None:
        return description
    if own.dumped is not None:
        since = {member.name: member.since for member in own.dumped.members}
    elif own.probed_since is not None:
        since = own.probed_since
    else:
        return description
    fields = tuple(dataclasses.replace(f, since=since.get(f.name, f.since)) for f in description.fields)
    return dataclasses.replace(description, fields=fields, minimum_version_id=minimum)


_UNKNOWN_SUBSECTION = re.compile(r"^unknown subsection '(?P<name>[^']*)'")


def _unknown_subsection(error: LoadRefused, own: DestinationSection) -> SectionVerdict | None:
    """A subsection the destination's capture does not show: refused when the
    dump says the destination does not know it, else not judged."""
    match = _UNKNOWN_SUBSECTION.match(str(error))
    if match is None:
        return None
    name = match["name"]
    known = own.knows_subsection(name)
    if known is False:
        return None  # QEMU refuses it too: the error stands
    why = (
        "the destination knows it (its -dump-vmstate lists it) but its capture does not show its layout"
        if known
        else "the destination's capture does not carry it; whether it knows it needs its -dump-vmstate"
    )
    return SectionVerdict(own.idstr, own.instance_id, UNJUDGED, f"subsection '{name}': {why}", own.idstr, error.offset)


_CHECKED = re.compile(r"^(u?int(?:8|16|32|64)) (equal|le)$")


def _field_checks(
    entries: Sequence[Any], loaded: Mapping[str, Any], local: Mapping[str, Any], prefix: str
) -> Iterator[tuple[str, str]]:
    """QEMU's per-field checks against the destination's own values: ``equal``
    and ``le`` integers (``get_uint32_equal``, ``get_int32_le``) and PCI config
    spaces (``get_pci_config_device``)."""
    for entry in entries:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            continue
        name = entry["name"]
        if name not in loaded or name not in local:
            continue
        value, own = loaded[name], local[name]
        kind = entry.get("type")
        checked = _CHECKED.match(kind) if isinstance(kind, str) else None
        if checked and isinstance(value, int) and isinstance(own, int):
            if checked[2] == "equal" and value != own:
                yield f"{prefix}{name}", f"{value:x} != {own:x}"
            if checked[2] == "le" and not 0 <= value <= own:
                yield f"{prefix}{name}", f"Invalid value {value} expecting positive value <= {own}"
        elif kind == "pci irq state" and isinstance(value, list):
            for level in value:
                if level not in (0, 1):
                    yield f"{prefix}{name}", f"irq state {level}: must be 0 or 1."
                    break
        elif kind == "pci config" and isinstance(value, bytes) and isinstance(own, bytes):
            problem = pci.bad_config_byte(value, own)
            if problem:
                yield f"{prefix}{name}", problem
        elif kind == "struct" and isinstance(value, Mapping) and isinstance(own, Mapping):
            nested = entry.get("struct")
            if isinstance(nested, Mapping):
                yield from _field_checks(nested.get("fields", ()), value, own, f"{prefix}{name}/")
