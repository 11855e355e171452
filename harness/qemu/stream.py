"""Whole migration streams: QEMU's framing, and a BER envelope with the same content.

Why: devices do not migrate alone. A real stream has a header, a configuration
section naming the machine, RAM as iterative records, one FULL section per
device, an EOF byte and a JSON trailer. To decode real QEMU 7.2 captures, convert
them to BER and back byte for byte, and write streams QEMU loads, migcompat needs
one model of a stream and a codec per wire format.

Strategy: :class:`MigrationStream` is plain data -- the machine name, the records
in stream order, the vmdesc trailer. A record's body is either a decoded device
state (when a :class:`SectionCodec` knows the section) or the exact legacy bytes
(opaque: RAM, devices we do not model). Opaque FULL sections are sized from the
vmdesc trailer; RAM records by their own framing (:mod:`migcompat.qemu.ram`); every
size is confirmed by the section footer that must follow. Parsing builds a new
model and returns it only when the whole input was consumed; nothing here does
file I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from migcompat.codec import compiled
from migcompat.errors import DecodeError, DescriptionError, MalformedInput, TrailingData, TruncatedInput
from migcompat.model import vmstate
from migcompat.qemu import imported, vmdesc
from migcompat.qemu.ram import ram_record_end
from migcompat.wire.ber import BerInputVisitor, BerOutputVisitor
from migcompat.wire.qemufile import QemuFileInputVisitor, QemuFileOutputVisitor
from migcompat.wire.visitor import Framing, ListFraming, Visitor

QEMU_MAGIC = 0x5145564D  # "QEVM"
QEMU_VERSION = 3
EOF_MARKER = 0x00
SECTION_START = 0x01
SECTION_PART = 0x02
SECTION_END = 0x03
SECTION_FULL = 0x04
SUBSECTION = 0x05
VMDESC = 0x06
CONFIGURATION = 0x07
FOOTER = 0x7E
COMMAND = 0x08
_WITH_HEADER = (SECTION_START, SECTION_FULL)
SECTION_NAMES = {SECTION_START: "START", SECTION_PART: "PART", SECTION_END: "END", SECTION_FULL: "FULL"}
#: Every record type between the configuration and EOF.
RECORD_NAMES = {**SECTION_NAMES, COMMAND: "COMMAND"}
#: QEMU's migration commands (``enum qemu_vm_cmd``, migration/savevm.h) a
#: precopy stream may carry: be16 command, be16 length, that many bytes. 8
#: (PACKAGED) is left out: its payload is followed by a whole packaged stream.
COMMANDS = {
    1: "open-return-path",
    2: "ping",
    3: "postcopy-advise",
    4: "postcopy-listen",
    5: "postcopy-run",
    6: "postcopy-ram-discard",
    7: "postcopy-resume",
    9: "recv-bitmap",
    10: "enable-colo",
    11: "switchover-start",
}

BER_MAGIC = "migcompat-stream"
#: The envelope is only ever written in BER, where list framing is not used;
#: a count is the honest description should it be written legacy-style.
_RECORD_LIST = Framing(ListFraming.COUNT)
BER_FORMAT_VERSION = 2
#: Envelope formats this reader accepts (1: the vmdesc after the records).
BER_FORMAT_VERSIONS = (1, 2)


class SectionCodec(Protocol):
    """Knows one section's body: reads and writes it through any visitor."""

    @property
    def device(self) -> str:
        """Registry name of the device the section belongs to."""

    @property
    def layout(self) -> tuple[int, ...]:
        """Numbers that fix the section's layout and are not carried in a form a
        reader can use before it needs them (virtio-pci's MSI-X vector count is
        inside the PCI config space). Carried in the BER envelope."""

    def for_legacy_bytes(self, data: bytes, start: int, end: int, footer: bytes) -> SectionCodec | None:
        """The codec specialised to the legacy section body starting at
        ``start``, which ends before ``end`` and is followed by ``footer``; None
        when the body does not fit this codec."""

    def for_layout(self, layout: tuple[int, ...]) -> SectionCodec | None:
        """The codec for a layout recorded earlier, or None when impossible."""

    def load(self, visitor: Visitor, version: int) -> dict[str, Any]: ...

    def save(self, visitor: Visitor, state: dict[str, Any], version: int) -> None: ...


#: Finds the codec for a section from its idstr and version; None means opaque.
Resolver = Callable[[str, int], SectionCodec | None]


@dataclass(frozen=True)
class DescriptionCodec:
    """A section codec that is just a vmstate description."""

    device: str
    description: vmstate.Description
    layout: tuple[int, ...] = ()

    def for_legacy_bytes(self, data: bytes, start: int, end: int, footer: bytes) -> SectionCodec | None:
        return self

    def for_layout(self, layout: tuple[int, ...]) -> SectionCodec | None:
        return self if not layout else None

    def load(self, visitor: Visitor, version: int) -> dict[str, Any]:
        return compiled.load(visitor, self.description, version)

    def save(self, visitor: Visitor, state: dict[str, Any], version: int) -> None:
        compiled.save(visitor, self.description, state, version)


def no_devices(idstr: str, version: int) -> SectionCodec | None:
    return None


class VmdescDescriptions:
    """The descriptions of a stream's sections, read from its vmdesc trailer on first use.

    Keyed by ``(idstr, instance_id)``: two instances of one device class are
    described separately (their subsections and variable arrays may differ).
    """

    def __init__(self, described: dict[str, Any] | None, offset: int | None) -> None:
        self._entries = vmdesc.section_entries(described) if described is not None else {}
        self._built: dict[tuple[str, int, int], vmstate.Description] = {}
        #: Where the trailer's JSON starts (errors in it are reported there).
        self.offset = offset
        #: Why a trailer that was found could not be read, for error messages.
        self.problem: str | None = None

    def __contains__(self, record: Record) -> bool:
        return (record.idstr, record.instance_id) in self._entries

    def description(self, record: Record) -> vmstate.Description:
        key = (record.idstr, record.instance_id, record.version_id)
        built = self._built.get(key)
        if built is None:
            entry = self._entries.get(key[:2])
            if entry is None:
                raise MalformedInput(
                    f"the vmdesc trailer does not describe section '{record.label}' instance {record.instance_id}",
                    offset=self.offset,
                    path=record.label,
                )
            try:
                built = imported.from_vmdesc(entry, record.version_id)
            except DescriptionError as error:
                raise MalformedInput(str(error), offset=self.offset, path=record.label) from None
            self._built[key] = built
        return built

    @classmethod
    def of_json(cls, json_bytes: bytes | None, offset: int | None = None) -> VmdescDescriptions:
        return cls(vmdesc.parse(json_bytes) if json_bytes is not None else None, offset)


@dataclass
class Record:
    """One section record: START/FULL carry the header, PART/END only the id."""

    kind: int
    section_id: int
    idstr: str = ""
    instance_id: int = 0
    version_id: int = 0
    #: The decoded state when a codec knew the section.
    state: dict[str, Any] | None = None
    device: str | None = None
    #: The legacy body bytes when the section is opaque.
    raw: bytes = b""
    #: The decoding codec's layout numbers (see :attr:`SectionCodec.layout`).
    layout: tuple[int, ...] = ()
    #: What decoded the state: ``model`` (a device model of ours, :attr:`device`)
    #: or ``vmdesc`` (the description QEMU wrote in the stream's trailer).
    decoded_by: str | None = None
    #: A COMMAND record's command number (:data:`COMMANDS`); its payload is :attr:`raw`.
    command: int = 0
    #: Where a parsed QEMU stream holds the record: its type byte, its body and
    #: its footer (None when not read from QEMU's bytes).
    span: tuple[int, int, int] | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        if self.kind == COMMAND:
            return f"command {COMMANDS.get(self.command, self.command)}"
        return self.idstr or f"section {self.section_id}"


@dataclass
class MigrationStream:
    machine: str
    records: list[Record] = field(default_factory=list)
    #: The vmdesc trailer's JSON bytes, kept exactly; None when absent.
    vmdesc: bytes | None = None


# -- QEMU's wire ------------------------------------------------------------


class QemuReader:
    """Cursor over a legacy stream with errors that name the section (:attr:`section`)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0
        self.section = "header"

    def need(self, size: int) -> int:
        start = self.position
        if start + size > len(self.data):
            raise TruncatedInput(
                f"input ends after {len(self.data) - start} of {size} bytes", offset=start, path=self.section
            )
        self.position += size
        return start

    def take(self, size: int) -> bytes:
        start = self.need(size)
        return self.data[start : start + size]

    def u8(self) -> int:
        return self.data[self.need(1)]

    def be32(self) -> int:
        start = self.need(4)
        return int.from_bytes(self.data[start : start + 4], "big")

    def idstr(self) -> str:
        size = self.u8()
        start = self.need(size)
        try:
            return self.data[start : start + size].decode()
        except UnicodeDecodeError:
            raise MalformedInput("section name is not UTF-8", offset=start, path=self.section) from None


def parse_qemu(data: bytes, resolve: Resolver = no_devices, decode_vmdesc: bool = True) -> MigrationStream:
    """Decode a whole QEMU stream; every byte is accounted for or it is an error.

    A section a device model of ours knows is decoded by it; any other FULL
    section the vmdesc trailer describes is decoded with that description
    (unless ``decode_vmdesc`` is false: then it is only sized by it, and kept
    as opaque bytes).
    """
    reader = QemuReader(data)
    if reader.be32() != QEMU_MAGIC:
        raise MalformedInput("not a QEMU migration stream (magic is not QEVM)", offset=0, path="header")
    version = reader.be32()
    if version != QEMU_VERSION:
        raise MalformedInput(f"unsupported stream version {version}", offset=4, path="header")
    trailer = vmdesc.find_trailer(data, not_before=8)
    described = vmdesc.parse(data[trailer + 5 :]) if trailer is not None else None
    sizes = vmdesc.section_sizes(described) if described is not None else {}
    descriptions = VmdescDescriptions(
        described if decode_vmdesc else None, trailer + 5 if trailer is not None else None
    )
    if trailer is not None and described is None:
        descriptions.problem = f"the vmdesc trailer at byte {trailer} is {vmdesc.problem(data[trailer + 5 :])}"
    end_of_sections = trailer if described is not None and trailer is not None else len(data)

    reader.section = "configuration"
    if reader.u8() != CONFIGURATION:
        raise MalformedInput("configuration section missing", offset=8, path="configuration")
    size = reader.be32()
    start = reader.need(size)
    machine = data[start : start + size].decode("utf-8", "replace")
    if reader.position < len(data) and data[reader.position] == SUBSECTION:
        raise MalformedInput(
            "configuration subsections are not supported", offset=reader.position, path="configuration"
        )

    stream = MigrationStream(machine=machine)
    names: dict[int, Record] = {}
    while True:
        reader.section = "stream"
        kind_offset = reader.position
        kind = reader.u8()
        if kind == EOF_MARKER:
            break
        if kind == COMMAND:
            stream.records.append(_read_command(reader, kind_offset))
            continue
        if kind not in SECTION_NAMES:
            raise MalformedInput(f"unknown section type 0x{kind:02x}", offset=kind_offset, path="stream")
        record = Record(kind=kind, section_id=reader.be32())
        if kind in _WITH_HEADER:
            record.idstr = reader.idstr()
            record.instance_id = reader.be32()
            record.version_id = reader.be32()
            names[record.section_id] = record
        else:
            opened = names.get(record.section_id)
            if opened is None:
                raise MalformedInput(
                    f"{SECTION_NAMES[kind]} record for unknown section id {record.section_id}",
                    offset=kind_offset,
                    path="stream",
                )
            record.idstr = opened.idstr
        reader.section = record.label
        body_start = reader.position
        _read_body(reader, record, names, sizes, resolve, descriptions, end_of_sections)
        footer_at = reader.position
        if reader.u8() != FOOTER:
            raise MalformedInput(
                f"missing section footer for {record.label} (byte 0x{data[footer_at]:02x} where the footer 0x7e "
                "must follow the section's fields)",
                offset=footer_at,
                path=record.label,
            )
        footer_id = reader.be32()
        if footer_id != record.section_id:
            raise MalformedInput(
                f"mismatched section id in footer for {record.label}: the footer names section {footer_id}, "
                f"the section is {record.section_id}",
                offset=footer_at + 1,
                path=record.label,
            )
        if record.state is None:
            record.raw = data[body_start:footer_at]
        record.span = (kind_offset, body_start, footer_at)
        stream.records.append(record)
    if trailer is not None and described is not None and reader.position == trailer:
        stream.vmdesc = data[trailer + 5 :]
        reader.position = len(data)
    if reader.position != len(data):
        raise TrailingData(
            f"{len(data) - reader.position} bytes after the end of the stream", offset=reader.position, path="stream"
        )
    return stream


def _read_command(reader: QemuReader, kind_offset: int) -> Record:
    reader.section = "command"
    start = reader.need(2)
    command = int.from_bytes(reader.data[start : start + 2], "big")
    if command not in COMMANDS:
        raise MalformedInput(f"unsupported migration command {command}", offset=start, path="command")
    start = reader.need(2)
    length = int.from_bytes(reader.data[start : start + 2], "big")
    start = reader.need(length)
    return Record(kind=COMMAND, section_id=0, command=command, raw=reader.data[start : start + length])


def _read_body(
    reader: QemuReader,
    record: Record,
    names: dict[int, Record],
    sizes: dict[tuple[str, int], int],
    resolve: Resolver,
    descriptions: VmdescDescriptions,
    limit: int,
) -> None:
    opened = names[record.section_id]
    if opened.idstr == "ram":
        reader.position = ram_record_end(reader.data, reader.position)
        return
    if record.kind == SECTION_FULL:
        codec = resolve(record.idstr, record.version_id)
        if codec is not None:
            size = sizes.get((record.idstr, record.instance_id))
            end = reader.position + size if size is not None else limit
            footer = bytes((FOOTER,)) + record.section_id.to_bytes(4, "big")
            try:
                codec = codec.for_legacy_bytes(reader.data, reader.position, min(end + len(footer), limit), footer)
                if codec is not None:
                    visitor = QemuFileInputVisitor(reader.data, reader.position, end=limit)
                    record.state = codec.load(visitor, record.version_id)
                    record.device = codec.device
                    record.layout = codec.layout
                    record.decoded_by = "model"
                    reader.position = visitor.position
                    return
            except DecodeError as error:
                raise vmstate.decode_error_path(error, record.label) from None
        size = sizes.get((record.idstr, record.instance_id))
        if size is not None and record in descriptions:
            description = descriptions.description(record)
            end = reader.position + size
            visitor = QemuFileInputVisitor(reader.data, reader.position, end=min(end, len(reader.data)))
            try:
                record.state = compiled.load(visitor, description, record.version_id)
                if visitor.position != end:
                    raise MalformedInput(
                        f"the vmdesc trailer gives the section {size} bytes, its fields take "
                        f"{visitor.position - (end - size)}",
                        offset=visitor.position,
                        path=record.label,
                    )
            except DecodeError as error:
                raise vmstate.decode_error_path(error, record.label) from None
            record.decoded_by = "vmdesc"
            reader.position = end
            return
        if size is not None:
            reader.need(size)
            return
    if descriptions.offset is None and not reader.data.endswith(bytes((EOF_MARKER,))):
        raise TruncatedInput(
            f"input ends at byte {len(reader.data)} with neither the end-of-stream marker nor the vmdesc trailer: "
            f"the stream is cut short, and section '{record.label}' cannot be sized without the trailer",
            offset=len(reader.data),
            path="stream",
        )
    raise MalformedInput(
        f"cannot find the end of {SECTION_NAMES[record.kind]} section '{record.label}': "
        f"no device model and no vmdesc entry for it{'; ' + descriptions.problem if descriptions.problem else ''}",
        offset=reader.position,
        path=record.label,
    )


def encode_qemu(stream: MigrationStream, resolve: Resolver = no_devices) -> bytes:
    """Write a stream in QEMU's framing; decoded sections are re-encoded from their state."""
    out = bytearray()
    out += QEMU_MAGIC.to_bytes(4, "big") + QEMU_VERSION.to_bytes(4, "big")
    machine = stream.machine.encode()
    out += bytes((CONFIGURATION,)) + len(machine).to_bytes(4, "big") + machine
    descriptions = VmdescDescriptions.of_json(stream.vmdesc)
    for record in stream.records:
        out.append(record.kind)
        if record.kind == COMMAND:
            out += record.command.to_bytes(2, "big") + len(record.raw).to_bytes(2, "big") + record.raw
            continue
        out += record.section_id.to_bytes(4, "big")
        if record.kind in _WITH_HEADER:
            name = record.idstr.encode()
            out += bytes((len(name),)) + name
            out += record.instance_id.to_bytes(4, "big") + record.version_id.to_bytes(4, "big")
        out += _body_bytes(record, resolve, descriptions)
        out += bytes((FOOTER,)) + record.section_id.to_bytes(4, "big")
    out.append(EOF_MARKER)
    if stream.vmdesc is not None:
        out += bytes((VMDESC,)) + len(stream.vmdesc).to_bytes(4, "big") + stream.vmdesc
    return bytes(out)


def _codec_for(record: Record, resolve: Resolver, offset: int | None = None) -> SectionCodec:
    codec = resolve(record.idstr, record.version_id)
    if codec is not None:
        codec = codec.for_layout(record.layout)
    if codec is None:
        raise MalformedInput(
            f"no device model for section '{record.label}' with layout {list(record.layout)}",
            offset=offset,
            path=record.label,
        )
    return codec


def _body_bytes(record: Record, resolve: Resolver, descriptions: VmdescDescriptions) -> bytes:
    if record.state is None:
        return record.raw
    visitor = QemuFileOutputVisitor()
    if record.decoded_by == "vmdesc":
        vmstate.walk(visitor, descriptions.description(record), record.state, record.version_id)
    else:
        _codec_for(record, resolve).save(visitor, record.state, record.version_id)
    return visitor.result()


# -- the BER envelope -------------------------------------------------------


def _visit_stream(visitor: Visitor, stream: MigrationStream, resolve: Resolver) -> MigrationStream:
    """The BER envelope, written once for both directions (value-returning).

    Format 2 (written) carries the vmdesc trailer before the records, so a
    reader has the descriptions of vmdesc-decoded sections before it meets
    them; format 1 (read) had it after the records and no such sections.
    """
    visitor.start_struct("stream")
    magic = visitor.visit_str("magic", BER_MAGIC)
    if magic != BER_MAGIC:
        raise MalformedInput(
            f"not a migcompat BER stream (magic {magic!r:.40})", offset=visitor.where()[0], path="stream/magic"
        )
    format_version = visitor.visit_uint32("format_version", BER_FORMAT_VERSION)
    if format_version not in BER_FORMAT_VERSIONS:
        raise MalformedInput(
            f"unsupported envelope format {format_version}", offset=visitor.where()[0], path="stream/format_version"
        )
    result = MigrationStream(machine=visitor.visit_str("machine", stream.machine))
    if format_version >= 2:
        result.vmdesc = _visit_vmdesc(visitor, stream.vmdesc)
    descriptions = VmdescDescriptions.of_json(result.vmdesc, visitor.where()[0])
    records = stream.records
    visitor.start_list("records", _RECORD_LIST, -1 if visitor.is_input else len(records))
    index = 0
    names: dict[int, str] = {}
    while visitor.next_list(index < len(records)):
        old = records[index] if index < len(records) else Record(kind=SECTION_FULL, section_id=0)
        index += 1
        result.records.append(_visit_record(visitor, old, resolve, names, descriptions, format_version))
    visitor.end_list()
    if format_version == 1:
        result.vmdesc = _visit_vmdesc(visitor, stream.vmdesc)
    visitor.end_struct()
    return result


def _visit_vmdesc(visitor: Visitor, vmdesc_json: bytes | None) -> bytes | None:
    has_vmdesc = visitor.visit_bool("has_vmdesc", vmdesc_json is not None)
    vmdesc_bytes = vmdesc_json or b""
    size = visitor.visit_uint32("vmdesc_length", len(vmdesc_bytes))
    raw = visitor.visit_buffer("vmdesc", vmdesc_bytes, size)
    return raw if has_vmdesc else None


#: How a record's body is carried in the envelope (format 2's ``decoded_by``).
_RAW, _BY_MODEL, _BY_VMDESC = 0, 1, 2


def _carried_as(record: Record) -> int:
    if record.state is None:
        return _RAW
    return _BY_VMDESC if record.decoded_by == "vmdesc" else _BY_MODEL


def _visit_record(
    visitor: Visitor,
    old: Record,
    resolve: Resolver,
    names: dict[int, str],
    descriptions: VmdescDescriptions,
    format_version: int,
) -> Record:
    visitor.start_struct("")
    kind = visitor.visit_uint8("type", old.kind)
    offset, path = visitor.where()
    if kind == COMMAND:
        record = Record(kind=kind, section_id=0, command=visitor.visit_uint16("command", old.command))
        if record.command not in COMMANDS:
            offset, path = visitor.where()
            raise MalformedInput(f"unsupported migration command {record.command}", offset=offset, path=path)
        size = visitor.visit_uint16("payload_length", len(old.raw))
        record.raw = visitor.visit_buffer("payload", old.raw, size)
        visitor.end_struct()
        return record
    if kind not in SECTION_NAMES:
        raise MalformedInput(f"unknown section type 0x{kind:02x}", offset=offset, path=path)
    record = Record(kind=kind, section_id=visitor.visit_uint32("section_id", old.section_id))
    if kind in _WITH_HEADER:
        record.idstr = visitor.visit_str("idstr", old.idstr)
        record.instance_id = visitor.visit_uint32("instance_id", old.instance_id)
        record.version_id = visitor.visit_uint32("version_id", old.version_id)
        names[record.section_id] = record.idstr
    else:
        record.idstr = names.get(record.section_id, "")
    if format_version >= 2:
        carried = visitor.visit_uint8("decoded_by", _carried_as(old))
        if carried not in (_RAW, _BY_MODEL, _BY_VMDESC):
            offset, path = visitor.where()
            raise MalformedInput(f"unknown body form {carried}", offset=offset, path=path)
    else:
        carried = _BY_MODEL if visitor.visit_bool("decoded", old.state is not None) else _RAW
    if carried == _BY_MODEL:
        layout = old.layout
        visitor.start_list("layout", _RECORD_LIST, -1 if visitor.is_input else len(layout))
        numbers: list[int] = []
        while visitor.next_list(len(numbers) < len(layout)):
            numbers.append(visitor.visit_uint32("", layout[len(numbers)] if len(numbers) < len(layout) else 0))
        visitor.end_list()
        record.layout = tuple(numbers)
        codec = _codec_for(record, resolve, visitor.where()[0])
        if visitor.is_input:
            record.state = codec.load(visitor, record.version_id)
        else:
            assert old.state is not None
            codec.save(visitor, old.state, record.version_id)
            record.state = old.state
        record.device = codec.device
        record.decoded_by = "model"
    elif carried == _BY_VMDESC:
        description = descriptions.description(record)
        if visitor.is_input:
            record.state = compiled.load(visitor, description, record.version_id)
        else:
            assert old.state is not None
            compiled.save(visitor, description, old.state, record.version_id)
            record.state = old.state
        record.decoded_by = "vmdesc"
    else:
        size = visitor.visit_uint32("raw_length", len(old.raw))
        record.raw = visitor.visit_buffer("raw", old.raw, size)
    visitor.end_struct()
    return record


def encode_ber(stream: MigrationStream, resolve: Resolver = no_devices) -> bytes:
    visitor = BerOutputVisitor()
    _visit_stream(visitor, stream, resolve)
    return visitor.result()


def parse_ber(data: bytes, resolve: Resolver = no_devices) -> MigrationStream:
    visitor = BerInputVisitor(data)
    empty = MigrationStream(machine="")
    stream = _visit_stream(visitor, empty, resolve)
    visitor.finish()
    return stream


def detect_format(data: bytes) -> str:
    """``qemu`` for a QEVM stream, ``ber`` for a BER SEQUENCE, else an error."""
    if data[:4] == QEMU_MAGIC.to_bytes(4, "big"):
        return "qemu"
    if data[:1] == b"\x30":
        return "ber"
    raise MalformedInput("unrecognised stream: neither QEVM magic nor a BER SEQUENCE", offset=0, path="header")


def parse(
    data: bytes, resolve: Resolver = no_devices, fmt: str = "auto", *, decode_vmdesc: bool = True
) -> tuple[str, MigrationStream]:
    """Decode either format; returns the format name and the stream."""
    if fmt == "auto":
        fmt = detect_format(data)
    if fmt == "qemu":
        return fmt, parse_qemu(data, resolve, decode_vmdesc)
    return fmt, parse_ber(data, resolve)
