"""Compare each device's state before and after a real migration, field by field.

Why: a migration QEMU reports ``completed`` can still have changed a device's
state -- the silent corruption this project exists to expose. After a real
migration the destination (paused; no guest ran) saves its state again, and
this module compares every section of that stream with the source's.

A section whose bytes are the same is intact. Otherwise both are read with
spans -- which bytes each field occupies -- and compared by field path:

* a field both have with other bytes is ``changed`` (corrupt), unless only its
  size changed and the shorter one is a prefix of the longer (QEMU resized a
  string buffer and put new fields in the freed bytes: ``resized``);
* a field or subsection only the destination has is ``added`` (the
  destination's own default, or a subsection it decided to send);
* a field only the source had and a field only the destination has at the same
  byte offset and of the same size are one field renamed in place (the legacy
  wire carries no names): ``renamed`` when the bytes are kept, ``changed``
  when not;
* a field only the source had is ``dropped``; dropped bytes that were not all
  zero are ``lost`` (corrupt): the destination did not keep a value it was sent;
* a section only one side has is named as such.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from migcompat.errors import DecodeError, MalformedInput
from migcompat.qemu import stream
from migcompat.qemu.stream import MigrationStream, Record, Resolver, SectionCodec, no_devices
from migcompat.wire.qemufile import QemuFileInputVisitor

__all__ = ["Change", "SectionComparison", "Span", "compare_streams", "spans"]

#: Kinds of change that mean the destination holds a value other than the one sent.
CORRUPTING = frozenset({"changed", "lost"})


@dataclass(frozen=True)
class Change:
    """One field that differs between the source's and the destination's section."""

    kind: str  # changed, resized, renamed, added, dropped, lost
    path: str
    before: bytes = b""
    after: bytes = b""

    @property
    def corrupting(self) -> bool:
        return self.kind in CORRUPTING

    def text(self) -> str:
        if self.kind in ("changed", "resized"):
            return f"{self.kind} {self.path}: {_hex(self.before)} -> {_hex(self.after)}"
        shown = self.after if self.kind in ("added", "renamed") else self.before
        return f"{self.kind} {self.path} ({_hex(shown)})"


def _hex(data: bytes, limit: int = 16) -> str:
    text = data[:limit].hex(" ")
    return f"{text} ... ({len(data)} bytes)" if len(data) > limit else text or "(empty)"


@dataclass
class SectionComparison:
    """The comparison of one section (``idstr`` instance ``instance_id``)."""

    idstr: str
    instance_id: int
    identical: bool
    changes: list[Change] = field(default_factory=list)
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.idstr} instance {self.instance_id}"

    @property
    def corrupting(self) -> list[Change]:
        return [change for change in self.changes if change.corrupting]


#: A subsection's framing (its name and version) and its place among the
#: subsections sent: a path names a subsection's fields by the subsection's name,
#: so one sent only by the destination does not shift the others.
_SUBSECTION_HEADER = re.compile(r"subsections\[\d+\]/(name|version_id)$")
_SUBSECTION_INDEX = re.compile(r"subsections\[\d+\]/")


class _SpanRecorder(QemuFileInputVisitor):
    """A legacy reader that notes which bytes each leaf field occupies."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.spans: dict[str, tuple[int, int]] = {}

    def _take(self, size: int, name: str) -> int:
        start = super()._take(size, name)
        _, path = self.where()
        full = "/".join(part for part in (path, name) if part)
        if not _SUBSECTION_HEADER.search(full):
            self.spans[_SUBSECTION_INDEX.sub("", full)] = (start, size)
        return start


#: A leaf field's place in a section body: its byte offset and its bytes.
Span = tuple[int, bytes]


def spans(codec: SectionCodec, version: int, body: bytes) -> dict[str, Span]:
    """Every leaf field of a legacy section body, by path, with its offset and
    bytes (wire order), as ``codec`` reads it."""
    reader = _SpanRecorder(body)
    codec.load(reader, version)
    reader.finish()
    if not reader.spans and body:
        raise MalformedInput("the section's reader names no field", offset=0)
    return {path: (start, body[start : start + size]) for path, (start, size) in reader.spans.items()}


def _full_sections(parsed: MigrationStream) -> dict[tuple[str, int], Record]:
    return {(r.idstr, r.instance_id): r for r in parsed.records if r.kind == stream.SECTION_FULL}


def _opaque(data: bytes) -> MigrationStream:
    """The stream with every section's bytes kept as they are (nothing decoded)."""
    return stream.parse_qemu(data, no_devices, decode_vmdesc=False)


def compare_streams(before: bytes, after: bytes, resolve: Resolver) -> list[SectionComparison]:
    """Compare every section the source stream ``before`` has with the destination's ``after``.

    ``resolve`` finds our device models (``migcompat.devices.resolve_section``);
    every other section is read with the description QEMU wrote in each stream's
    vmdesc trailer.
    """
    raw_before, raw_after = _full_sections(_opaque(before)), _full_sections(_opaque(after))
    out: list[SectionComparison] = []
    describe_before = _describer(before, resolve)
    describe_after = _describer(after, resolve)
    for key, record in raw_before.items():
        other = raw_after.get(key)
        if other is None:
            out.append(SectionComparison(*key, identical=False, note="the destination did not save this section"))
            continue
        if record.raw == other.raw:
            out.append(SectionComparison(*key, identical=True))
            continue
        try:
            fields_before = describe_before(record)
            fields_after = describe_after(other)
        except DecodeError as error:
            out.append(SectionComparison(*key, identical=False, note=f"cannot compare field by field: {error}"))
            continue
        out.append(SectionComparison(*key, identical=False, changes=_changes(fields_before, fields_after)))
    for key in raw_after.keys() - raw_before.keys():
        out.append(SectionComparison(*key, identical=False, note="a section only the destination saved"))
    return out


def _describer(data: bytes, resolve: Resolver) -> Callable[[Record], dict[str, Span]]:
    """Spans of a section of ``data``, read by the codec that decodes it (our model
    where there is one, else the stream's vmdesc). The stream is decoded only when
    a first section differs: most sections of a migration are byte-identical."""

    @functools.cache
    def decoded() -> tuple[dict[tuple[str, int], Record], stream.VmdescDescriptions]:
        parsed = stream.parse_qemu(data, resolve)
        return _full_sections(parsed), stream.VmdescDescriptions.of_json(parsed.vmdesc)

    def of(record: Record) -> dict[str, Span]:
        sections, described = decoded()
        full = sections[record.idstr, record.instance_id]
        codec: SectionCodec | None
        if full.decoded_by == "vmdesc":
            codec = stream.DescriptionCodec(full.idstr, described.description(full))
        else:
            codec = resolve(full.idstr, full.version_id)
            codec = codec.for_layout(full.layout) if codec is not None else None
        if codec is None:
            return {"(section)": (0, record.raw)}
        return spans(codec, record.version_id, record.raw)

    return of


def _changes(before: dict[str, Span], after: dict[str, Span]) -> list[Change]:
    changes: list[Change] = []
    # Fields only one side has, by place: a field renamed in place keeps its offset and size.
    only_after = {(start, len(data)): path for path, (start, data) in after.items() if path not in before}
    renamed: set[str] = set()
    for path, (start, old) in before.items():
        if path in after:
            new = after[path][1]
            if new != old:
                shorter, longer = sorted((old, new), key=len)
                resized = len(old) != len(new) and longer.startswith(shorter)
                changes.append(Change("resized" if resized else "changed", path, old, new))
            continue
        twin = only_after.pop((start, len(old)), None)
        if twin is None:
            changes.append(Change("lost" if any(old) else "dropped", path, before=old))
            continue
        renamed.add(twin)
        new = after[twin][1]
        kind = "renamed" if new == old else "changed"
        changes.append(Change(kind, f"{path} -> {twin}", old, new))
    changes.extend(
        Change("added", path, after=data)
        for path, (_, data) in after.items()
        if path not in before and path not in renamed
    )
    return changes
