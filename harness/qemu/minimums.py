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
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from migcompat.errors import UsageError
from migcompat.qemu import vmdesc
from migcompat.qemu.stream import SECTION_FULL, parse_qemu

_TOO_OLD = re.compile(
    r"(?P<name>[^\s:]+): incoming version_id 0 is too old for local minimum version_id\s+(?P<minimum>\d+)"
)


def probe(
    release: str,
    configs: Sequence[str],
    *,
    timeout: float = 30.0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """vmsd name -> minimum version, for every VMState section the configurations' captures carry."""
    from migcompat.qemu import peer  # QMP: only where QEMU runs (the table itself is read without it)

    found: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="migcompat-minimums-") as scratch:
        for config_name in configs:
            config = peer.CONFIGS[config_name]
            capture = Path(scratch) / f"{config_name}.bin"
            peer.capture(config, capture, release=release, timeout=timeout)
            data = capture.read_bytes()
            parsed = parse_qemu(data, decode_vmdesc=False)
            entries = vmdesc.section_entries(vmdesc.parse(parsed.vmdesc) or {}) if parsed.vmdesc else {}
            for record in parsed.records:
                entry = entries.get((record.idstr, record.instance_id))
                vmsd = entry.get("vmsd_name") if entry else None
                if record.kind != SECTION_FULL or not isinstance(vmsd, str) or vmsd in found or record.span is None:
                    continue
                if record.version_id == 0:
                    found[vmsd] = 0
                    continue
                _start, body, _footer = record.span
                mutant = Path(scratch) / "version-0.bin"
                mutant.write_bytes(data[: body - 4] + bytes(4) + data[body:])
                result = peer.load(config, mutant, release=release, timeout=timeout)
                match = _TOO_OLD.search(result.message)
                found[vmsd] = int(match["minimum"]) if match and match["name"] == vmsd else 0
                if progress is not None:
                    progress(f"{config_name}: {vmsd} >= {found[vmsd]}")
    return dict(sorted(found.items()))


def write(path: Path, release: str, minimums: dict[str, int]) -> None:
    document = {"release": release, "minimum_version_id": minimums}
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")


def read(path: Path) -> dict[str, int]:
    """The table :func:`write` wrote; an unreadable one is an error naming the file."""
    try:
        document = json.loads(path.read_text())
        table = document["minimum_version_id"]
        if not all(isinstance(name, str) and type(value) is int and value >= 0 for name, value in table.items()):
            raise ValueError("entries must be names and versions")
    except OSError as error:
        raise UsageError(f"cannot read the minimum versions {path}: {error.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise UsageError(f"{path} is not a minimum-versions table: {error}") from None
    return dict(table)
