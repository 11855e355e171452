"""What describes a receiving QEMU without running it: a capture of its configuration, and its ``-dump-vmstate``.

Why: a stream alone cannot say whether a destination will load it. QEMU loads
each section with the destination's own device: the sections it has (idstr and
instance id), the versions it accepts, the subsections it knows, its own MSI-X
vector count, the values its ``equal`` fields must match, its PCI config
space's read-only bytes. All of that is in two files a user can make without a
running migration:

* a **capture**: a stream the destination release saved in the destination
  configuration (``migcompat qemu capture``). Its sections are the devices the
  destination has, with their versions; its vmdesc trailer describes each
  section's fields as the destination lays them out; its decoded state gives the
  destination's own values (config space, ``equal`` fields, the virtio device's
  vectors and backend flags); its RAM block list gives the blocks and lengths;
* the release's **``-dump-vmstate``** (optional): each device's minimum version,
  the version every field arrived in, and every subsection the release knows --
  a capture shows only the subsections its state needed;
* the release's **minimum-versions table** (optional, :mod:`.minimums`): the
  minimum version of each section the dump leaves out (``timer``, ``cpu``, ...).

Without the dump, a section at a version other than the destination's and a
subsection the capture does not show cannot be judged, and the report says so.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migcompat.errors import DecodeError, UsageError
from migcompat.model.layout import Layout, Section
from migcompat.qemu import dump, minimums, vmdesc
from migcompat.qemu.ram import ram_blocks
from migcompat.qemu.stream import SECTION_FULL, SECTION_START, MigrationStream, Record, Resolver, parse_qemu


@dataclass(frozen=True)
class DestinationSection:
    """One section the destination has: its header, its fields' layout and its own state."""

    idstr: str
    instance_id: int
    version_id: int
    #: The destination's vmdesc entry for the section (None: no entry, e.g. RAM).
    entry: dict[str, Any] | None
    #: The section as the destination's capture decoded it.
    record: Record
    #: From the dump: the device's description (None without a dump, or not in it).
    dumped: Section | None = None
    #: From the minimum-versions table (:mod:`.minimums`), for a section the dump leaves out.
    probed_minimum: int | None = None
    #: From the same table: the version each field arrived in (fields there
    #: since the minimum left out); None when the table does not have it for
    #: this section's version.
    probed_since: dict[str, int] | None = None

    @property
    def vmsd_name(self) -> str | None:
        name = self.entry.get("vmsd_name") if self.entry else None
        return name if isinstance(name, str) else None

    @property
    def minimum_version_id(self) -> int | None:
        return self.dumped.minimum_version_id if self.dumped is not None else self.probed_minimum

    def knows_subsection(self, name: str) -> bool | None:
        """Whether the destination's description of the section (or one nested
        in it) has subsection ``name``; None when there is no dump to say."""
        if self.dumped is None:
            return None
        return any(section.subsection(name) is not None for section in _descriptions(self.dumped))


def _descriptions(section: Section) -> Iterator[Section]:
    yield section
    for member in section.members:
        if isinstance(member.kind, Section):
            yield from _descriptions(member.kind)
    for sub in section.subsections:
        yield from _descriptions(sub.description)


@dataclass
class Destination:
    """A receiving QEMU: its machine type, sections and RAM blocks."""

    label: str
    machine: str
    sections: dict[tuple[str, int], DestinationSection] = field(default_factory=dict)
    #: RAM block name -> used length, from the capture's block list.
    ram: dict[str, int] = field(default_factory=dict)
    #: The dump's label, when one was read.
    dump_label: str | None = None
    #: The destination's QEMU release, when given (the virtio features it offers follow from it).
    release: str | None = None
    #: The minimum-versions table's label, when one was read.
    minimums_label: str | None = None

    def section(self, idstr: str, instance_id: int) -> DestinationSection | None:
        return self.sections.get((idstr, instance_id))


def read(
    capture: Path,
    resolve: Resolver,
    dump_path: Path | None = None,
    release: str | None = None,
    minimums_path: Path | None = None,
) -> Destination:
    """Read a destination from its capture (and dump, and minimum-versions table);
    :class:`UsageError` naming the file when one is unusable. ``release`` is a
    QEMU release (``7.2`` or ``qemu-7.2``)."""
    if release is not None and release[:1].isdigit():
        release = f"qemu-{release}"
    try:
        data = capture.read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read the destination capture {capture}: {error.strerror}") from None
    try:
        parsed = parse_qemu(data, resolve)
    except DecodeError as error:
        raise UsageError(f"the destination capture {capture} is not a stream migcompat can read: {error}") from None
    if parsed.vmdesc is None:
        raise UsageError(f"the destination capture {capture} has no vmdesc trailer: it cannot describe the sections")
    layout = _dump(dump_path) if dump_path is not None else None
    destination = of_stream(str(capture), data, parsed, layout, str(dump_path) if dump_path else None, release)
    if minimums_path is not None:
        table = minimums.read(minimums_path)
        for key, section in destination.sections.items():
            vmsd = section.vmsd_name
            if vmsd in table.minimums:
                version, since = table.fields_since.get(vmsd, (None, None))
                destination.sections[key] = dataclasses.replace(
                    section,
                    probed_minimum=table.minimums[vmsd],
                    probed_since=since if version == section.version_id else None,
                )
        destination.minimums_label = str(minimums_path)
    return destination


def of_stream(
    label: str,
    data: bytes,
    parsed: MigrationStream,
    layout: Layout | None,
    dump_label: str | None,
    release: str | None,
) -> Destination:
    """The destination a parsed capture (and a dump's layout) describes."""
    described = vmdesc.parse(parsed.vmdesc) if parsed.vmdesc is not None else None
    entries = vmdesc.section_entries(described) if described else {}
    destination = Destination(label, parsed.machine, dump_label=dump_label, release=release)
    # A dump is keyed by device type (piix3-ide); a stream's entries name the vmsd (ide).
    by_vmsd = {top.description.name: top.description for top in layout.sections.values()} if layout else {}
    for record in parsed.records:
        if record.kind not in (SECTION_START, SECTION_FULL):
            continue
        key = (record.idstr, record.instance_id)
        entry = entries.get(key)
        vmsd = entry.get("vmsd_name") if entry else None
        dumped = by_vmsd.get(vmsd) if isinstance(vmsd, str) else None
        destination.sections[key] = DestinationSection(
            record.idstr, record.instance_id, record.version_id, entry, record, dumped
        )
    ram = next((r for r in parsed.records if r.idstr == "ram" and r.kind == SECTION_START), None)
    destination.ram = ram_blocks(ram.raw) if ram is not None else {}
    return destination


def _dump(path: Path) -> Layout:
    try:
        document = json.loads(path.read_bytes())
    except OSError as error:
        raise UsageError(f"cannot read the destination dump {path}: {error.strerror}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise UsageError(f"the destination dump {path} is not JSON: {error}") from None
    if not dump.is_qemu_dump(document):
        raise UsageError(f"{path} is not a QEMU -dump-vmstate file")
    return dump.read(document, str(path))
