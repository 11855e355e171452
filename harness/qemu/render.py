"""Plain-text and JSON views of decoded streams and of a destination's load, for ``inspect`` and ``check``.

Why: a person debugging a migration wants to see each section and each field
by name (from a device model of ours, or from the description QEMU wrote in
the stream's vmdesc trailer); a script wants the same as JSON. Both views
are built from the one :class:`~migcompat.qemu.stream.MigrationStream` model.
"""

from __future__ import annotations

from typing import Any

from migcompat.qemu.destination import Destination
from migcompat.qemu.incoming import UNJUDGED, LoadVerdict
from migcompat.qemu.stream import COMMAND, RECORD_NAMES, MigrationStream

_MAX_BYTES_SHOWN = 32


def jsonable(value: Any) -> Any:
    """The state with bytes shown as hex strings, so it can be dumped as JSON."""
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [jsonable(item) for item in value]
    return value


def stream_json(fmt: str, stream: MigrationStream, size: int) -> dict[str, Any]:
    return {
        "format": fmt,
        "bytes": size,
        "machine": stream.machine,
        "sections": [
            {
                "type": RECORD_NAMES[record.kind],
                "section_id": record.section_id,
                "idstr": record.idstr,
                "instance_id": record.instance_id,
                "version_id": record.version_id,
                "device": record.device,
                "decoded_by": record.decoded_by,
                "opaque_bytes": len(record.raw) if record.state is None else None,
                "state": jsonable(record.state) if record.state is not None else None,
            }
            for record in stream.records
        ],
        "vmdesc_bytes": len(stream.vmdesc) if stream.vmdesc is not None else None,
    }


def _scalar(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        shown = value[:_MAX_BYTES_SHOWN].hex(" ")
        more = f" ... ({len(value)} bytes)" if len(value) > _MAX_BYTES_SHOWN else f" ({len(value)} bytes)"
        return shown + more if value else "(empty)"
    if isinstance(value, int) and not isinstance(value, bool) and value > 9:
        return f"{value} (0x{value:x})"
    return repr(value) if isinstance(value, str) else str(value)


def state_lines(value: Any, indent: str = "    ") -> list[str]:
    """One line per field, nested structs and lists indented."""
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{indent}{key}:")
                lines.extend(state_lines(item, indent + "  "))
            else:
                lines.append(f"{indent}{key}: {_scalar(item) if not isinstance(item, (dict, list)) else item}")
    elif isinstance(value, list):
        index = 0
        while index < len(value):
            item = value[index]
            run = index + 1
            while run < len(value) and value[run] == item:
                run += 1
            label = f"[{index}]" if run == index + 1 else f"[{index}..{run - 1}] ({run - index} identical)"
            if isinstance(item, (dict, list)):
                lines.append(f"{indent}{label}:")
                lines.extend(state_lines(item, indent + "  "))
            else:
                lines.append(f"{indent}{label}: {_scalar(item)}")
            index = run
    return lines


def stream_text(fmt: str, stream: MigrationStream, size: int) -> str:
    lines = [f"{fmt} stream, {size} bytes, machine {stream.machine!r}, {len(stream.records)} section records"]
    for record in stream.records:
        if record.kind == COMMAND:
            lines.append(f"  COMMAND {record.command} ({record.label[8:]}): {len(record.raw)} bytes of payload")
            continue
        head = f"  #{record.section_id:<3} {RECORD_NAMES[record.kind]:<5} {record.idstr}"
        if record.kind in (0x01, 0x04):
            head += f" instance {record.instance_id} v{record.version_id}"
        if record.state is None:
            lines.append(f"{head}: opaque, {len(record.raw)} bytes")
        else:
            source = record.device if record.decoded_by != "vmdesc" else "described by the stream's vmdesc"
            lines.append(f"{head}: {source}")
            lines.extend(state_lines(record.state))
    if stream.vmdesc is not None:
        lines.append(f"  vmdesc trailer: {len(stream.vmdesc)} bytes of JSON")
    return "\n".join(lines)


def check_text(stream_name: str, verdict: LoadVerdict, destination: Destination) -> str:
    """``migcompat check``: the destination's load, section by section, and the verdict."""
    given = [f"machine type {destination.machine}"]
    given.append(f"dump {destination.dump_label}" if destination.dump_label else "no -dump-vmstate")
    given.append(f"release {destination.release}" if destination.release else "release not given")
    lines = [f"{stream_name} into the destination of {destination.label} ({', '.join(given)})"]
    labels = [_instance_label(section.label, section.instance_id) for section in verdict.sections]
    width = max((len(label) for label in labels), default=0)
    for section, label in zip(verdict.sections, labels, strict=True):
        line = f"  {label.ljust(width)}  {section.verdict}"
        if section.reason:
            where = f" (at {section.path}, byte offset {section.offset})" if section.offset is not None else ""
            line += f": {section.reason}{where}"
        lines.append(line)
        if section.finding:
            lines.append(f"  {' ' * width}  QEMU itself: {section.finding}")
    if verdict.ignored:
        lines.append(f"  after the end-of-stream byte: {verdict.ignored}, read and ignored by QEMU")
    refusal = verdict.refusal
    if refusal is None:
        lines.append("verdict: loads")
    elif refusal.verdict == UNJUDGED:
        lines.append(f"verdict: cannot tell offline, at {refusal.label}: {refusal.reason}")
    else:
        lines.append(f"verdict: refused at {refusal.label}; nothing after it is read")
    return "\n".join(lines)


def _instance_label(label: str, instance_id: int | None) -> str:
    return f"{label} #{instance_id}" if instance_id else label
