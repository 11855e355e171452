"""The oldest section version a QEMU release loads, for every section it writes, in QEMU's own words.

Why: QEMU refuses a section whose version is below its description's
``minimum_version_id``. ``-dump-vmstate`` gives that minimum only for device
classes (``dc->vmsd``); sections registered otherwise -- ``timer``, ``cpu``,
``cpu_common``, ``apic``, ``PCIBUS``, ``acpi_build``, ``globalstate``, ... -- are
not in it, so ``migcompat check`` cannot tell whether a destination loads such
a section at an older version. The release itself says: given a section at
version 0, it answers "NAME: incoming version_id 0 is too old for local minimum
version_id N". This module asks it once per section of a capture and keeps
the answers as a small JSON table beside the release's captures
(``corpora/qemu-X/minimum-versions.json``), which ``check`` reads offline.

For each section whose minimum is below its version, the same table keeps the
version each of its fields arrived in (:mod:`.since`), so an older version of
``cpu`` or ``ide`` is read field by field without a dump.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from migcompat.errors import UsageError
from migcompat.qemu import since, vmdesc
from migcompat.qemu.stream import SECTION_FULL, parse_qemu

_TOO_OLD = re.compile(
    r"(?P<name>[^\s:]+): incoming version_id 0 is too old for local minimum version_id\s+(?P<minimum>\d+)"
)


@dataclass
class Table:
    """A release's minimum version per vmsd, and its fields' arrival versions."""

    minimums: dict[str, int] = field(default_factory=dict)
    #: vmsd -> (the section's own version, {field: version it arrived in}),
    #: fields there since the minimum left out.
    fields_since: dict[str, tuple[int, dict[str, int]]] = field(default_factory=dict)


def probe(
    release: str,
    configs: Sequence[str],
    *,
    timeout: float = 30.0,
    progress: Callable[[str], None] | None = None,
) -> Table:
    """The table for every VMState section the configurations' captures carry."""
    from migcompat.qemu import peer  # QMP: only where QEMU runs (the table itself is read without it)

    table = Table()
    found = table.minimums
    with tempfile.TemporaryDirectory(prefix="migcompat-minimums-") as scratch:
        for config_name in configs:
            config = peer.CONFIGS[config_name]
            capture = Path(scratch) / f"{config_name}.bin"
            peer.capture(config, capture, release=release, timeout=timeout)
            data = capture.read_bytes()
            parsed = parse_qemu(data, decode_vmdesc=False)
            entries = vmdesc.section_entries(vmdesc.parse(parsed.vmdesc) or {}) if parsed.vmdesc else {}
            older: list[since.ProbedSection] = []
            for record in parsed.records:
                entry = entries.get((record.idstr, record.instance_id))
                vmsd = entry.get("vmsd_name") if entry else None
                if record.kind != SECTION_FULL or not isinstance(vmsd, str) or vmsd in found or record.span is None:
                    continue
                _start, body, footer = record.span
                if record.version_id == 0:
                    found[vmsd] = 0
                    continue
                mutant = Path(scratch) / "version-0.bin"
                mutant.write_bytes(data[: body - 4] + bytes(4) + data[body:])
                result = peer.load(config, mutant, release=release, timeout=timeout)
                match = _TOO_OLD.search(result.message)
                found[vmsd] = int(match["minimum"]) if match and match["name"] == vmsd else 0
                if progress is not None:
                    progress(f"{config_name}: {vmsd} >= {found[vmsd]}")
                if found[vmsd] < record.version_id and entry is not None:
                    older.append(since.ProbedSection(vmsd, entry, record.version_id, found[vmsd], body, footer))
            measured = since.probe(release, config, data, older, timeout=timeout, progress=progress)
            for section in older:
                fields = measured.get(section.vmsd_name)
                if fields is not None:
                    later = {name: version for name, version in fields if version > section.minimum_version_id}
                    table.fields_since[section.vmsd_name] = (section.version_id, later)
    table.minimums = dict(sorted(found.items()))
    return table


def write(path: Path, release: str, table: Table) -> None:
    document = {
        "release": release,
        "minimum_version_id": table.minimums,
        "fields_since": {
            vmsd: {"version_id": version, "fields": fields}
            for vmsd, (version, fields) in sorted(table.fields_since.items())
        },
    }
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def read(path: Path) -> Table:
    """The table :func:`write` wrote; an unreadable one is an error naming the file."""
    try:
        document = json.loads(path.read_text())
        minimums = document["minimum_version_id"]
        if not all(isinstance(name, str) and _count(value) for name, value in minimums.items()):
            raise ValueError("minimum_version_id: entries must be names and versions")
        fields_since = {}
        for vmsd, entry in document.get("fields_since", {}).items():
            version, fields = entry["version_id"], entry["fields"]
            if not _count(version) or not all(
                isinstance(name, str) and _count(value) and value <= version for name, value in fields.items()
            ):
                raise ValueError(f"fields_since {vmsd}: entries must be fields and versions up to {version}")
            fields_since[vmsd] = (version, dict(fields))
    except OSError as error:
        raise UsageError(f"cannot read the minimum versions {path}: {error.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise UsageError(f"{path} is not a minimum-versions table: {error}") from None
    return Table(dict(minimums), fields_since)
