"""What ``migcompat diff`` accepts: a schema file of either kind, or a release named on the command line.

Why: a person runs ``diff`` on committed dumps, on dumps from another branch,
on QEMU's ``-dump-vmstate`` files, or just on two release names; every one of
these is input, so anything unreadable -- a missing file, a directory, text
that is not JSON, JSON of another shape, nesting deep enough to exhaust the
stack -- becomes one :class:`~migcompat.errors.UsageError` line (exit 2), never a
traceback.

Strategy: an existing path is read and sniffed (``x-migcompat`` header:
:mod:`migcompat.schema.read`; QEMU's layout: :mod:`migcompat.qemu.dump`); anything
else is tried as ``DEVICE[@RELEASE]`` or a hypervisor release
(:func:`migcompat.schema.dump.resolve`). The two kinds cannot be mixed: a QEMU
dump knows byte sizes only, so comparing it with a typed schema would report
every field as changed.
"""

from __future__ import annotations

import json
from pathlib import Path

from migcompat.errors import UsageError
from migcompat.model.layout import Layout
from migcompat.qemu import dump as qemu_dump
from migcompat.schema import dump as schema_dump
from migcompat.schema import read as schema_read

#: Anything larger is not a schema dump (QEMU's whole-machine dump is under 1 MB).
MAX_INPUT_BYTES = 64 * 1024 * 1024


def load(argument: str, machine: str = "") -> Layout:
    """The layout ``argument`` names: a file, ``DEVICE[@RELEASE[@MACHINE]]`` or a
    hypervisor release; a name is resolved under ``machine`` when given."""
    path = Path(argument)
    if path.is_dir():
        raise UsageError(f"{argument}: is a directory, not a schema file")
    if path.exists():
        return read_file(path, argument)
    try:
        document = schema_dump.resolve(argument, machine)
    except UsageError as error:
        raise UsageError(f"{argument}: no such file, and {error}") from None
    return schema_read.read(document, argument)


def read_file(path: Path, label: str) -> Layout:
    try:
        if path.stat().st_size > MAX_INPUT_BYTES:
            raise UsageError(f"{label}: larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB, not a schema file")
        data = path.read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {label}: {error.strerror}") from None
    try:
        document = json.loads(data)
    except UnicodeDecodeError:
        raise UsageError(f"{label}: not JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as error:
        raise UsageError(f"{label}: not JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except RecursionError:
        raise UsageError(f"{label}: not a schema file: JSON nested too deeply") from None
    try:
        if schema_read.is_schema_dump(document):
            return schema_read.read(document, label)
        if qemu_dump.is_qemu_dump(document):
            return qemu_dump.read(document, label)
    except RecursionError:
        raise UsageError(f"{label}: not a schema file: nested too deeply") from None
    raise UsageError(
        f"{label}: neither a migcompat schema dump (no 'x-migcompat' header) nor a QEMU -dump-vmstate file"
    )


def load_pair(old: str, new: str, machine: str = "") -> tuple[Layout, Layout]:
    """Both sides of a diff, which must be of the same kind (names resolved under ``machine``)."""
    before, after = load(old, machine), load(new, machine)
    if before.source != after.source:
        kinds = {before.source: old, after.source: new}
        raise UsageError(
            f"cannot compare a migcompat schema dump ({kinds.get('migcompat')}) with a QEMU -dump-vmstate file "
            f"({kinds.get('qemu')}): QEMU's dump gives byte sizes only"
        )
    return before, after


__all__ = ["MAX_INPUT_BYTES", "load", "load_pair", "read_file"]
