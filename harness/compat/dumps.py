"""The matrix over real QEMU releases: every device class of two or more ``-dump-vmstate`` files.

Why: the reference models cover two devices; a release engineer comparing
QEMU A with QEMU B cares about all two hundred. Each section of the dumps
becomes a device (``qemu:<section>``) whose releases are the dumps that have
it (:mod:`migcompat.qemu.dumped` reads the descriptions), and the matrix runs
it like any other: states generated at the source release, saved through
each pairing, loaded with the destination release's description.

The expected outcome of a cell is the static checker's verdict on the two
dumps' own layouts (:mod:`migcompat.schema.diff`, which knows what the dumps
cannot say and infers element counts where the bytes settle them): compatible
on the pairing's wire -> ``ok``; breaking only by version or a subsection the
destination does not know -> ``refused``; otherwise -> ``detected``. A cell
that differs -- a dynamic ``corrupt`` where the checker expected detection, a
load the checker said would break -- is a failure with its reason, as for the
reference models.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from migcompat import devices
from migcompat.compat import agreement, cell
from migcompat.compat.agreement import pairing_wire
from migcompat.devices.base import Device, LegacyVisit, Release
from migcompat.errors import UsageError
from migcompat.model import vmstate
from migcompat.model.layout import Layout
from migcompat.model.projection import project
from migcompat.model.strategies import states
from migcompat.model.vmstate import Description, State
from migcompat.outcomes import Outcome
from migcompat.qemu import dump, dumped
from migcompat.schema.diff import compare
from migcompat.wire.visitor import Visitor

#: Device names of dump sections start with it.
PREFIX = "qemu:"
#: Rules whose break is a clean refusal of the stream.
REFUSING = frozenset({"VERSION_TOO_NEW", "VERSION_BELOW_MINIMUM", "SUBSECTION_REMOVED", "SECTION_REMOVED"})


def qualified(name: str) -> str:
    """A device name as the dumps' devices are named: ``e1000e`` -> ``qemu:e1000e``."""
    return name if name.startswith(PREFIX) else PREFIX + name


def label(path: Path) -> str:
    """A release's name: the directory of a dump named like the corpora's
    (``qemu-10.0`` for ``corpora/qemu-10.0/vmstate-pc.json``), else the file's stem."""
    return path.parent.name if path.stem.startswith("vmstate") and path.parent.name else path.stem


def read(paths: Sequence[str]) -> list[tuple[str, Layout]]:
    """Each dump's release name and layout, in the order given (oldest first, by convention)."""
    if len(paths) < 2:
        raise UsageError("--qemu-dump needs two or more dumps (a source and a destination release)")
    out: list[tuple[str, Layout]] = []
    for name in paths:
        path = Path(name)
        try:
            document = json.loads(path.read_text())
        except OSError as error:
            raise UsageError(f"cannot read {name}: {error.strerror}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise UsageError(f"{name}: not JSON: {error}") from None
        if not dump.is_qemu_dump(document):
            raise UsageError(f"{name}: not a QEMU -dump-vmstate file")
        release = label(path)
        if release in (known for known, _ in out):
            raise UsageError(f"two dumps are named {release!r} ({name}); give them directories of other names")
        out.append((release, dump.read(document, name)))
    return out


def devices_of(dumps: list[tuple[str, Layout]]) -> tuple[list[Device], dict[str, str]]:
    """One device per section any dump has (its releases are the dumps that have
    it), and the sections that cannot run, with the reason."""
    hints = dumped.count_hints([layout for _, layout in dumps])
    described = {release: dumped.descriptions(layout, release, hints) for release, layout in dumps}
    layouts = dict(dumps)
    keys = list(dict.fromkeys(key for _, layout in dumps for key in layout.sections))
    found = []
    skipped: dict[str, str] = {}
    for key in keys:
        reason = _unsized_differ(key, dumps)
        if reason:
            skipped[f"{PREFIX}{key}"] = reason
            continue
        checker = _Checker(key, layouts)
        releases = tuple(
            Release(release, described[release][key], _walker(described[release][key]), notes=f"QEMU dump {release}")
            for release, _ in dumps
            if key in described[release]
        )
        found.append(
            Device(
                name=f"{PREFIX}{key}",
                summary=f"QEMU device class '{key}', described by the releases' -dump-vmstate",
                releases=releases,
                strategy=lambda release: states(release.description),
                fixed_states=lambda release: dumped.fixed_states(release.description),
                policy=checker.expectation,
                expected_state=checker.expected_state,
            )
        )
    return found, skipped


@contextmanager
def use(paths: Sequence[str]) -> Iterator[tuple[tuple[str, ...], dict[str, str]]]:
    """Read the dumps and register their devices while the block runs; gives the
    devices' names, and the sections that cannot run with the reason."""
    found, skipped = devices_of(read(paths))
    try:
        with devices.registered(found):
            yield tuple(device.name for device in found), skipped
    finally:
        # States and static reports are cached by device and release name: another
        # set of dumps may use the same names.
        cell.states_for.cache_clear()
        agreement.release_report.cache_clear()


def _unsized_differ(key: str, dumps: list[tuple[str, Layout]]) -> str:
    """Why a section cannot run: a field the dumps give no size for that is not
    the same in every release (its bytes are unknown, so what adding, dropping or
    renaming it does to the stream is too); '' when it can."""
    paths = {
        release: dumped.unsized(layout.sections[key].description) for release, layout in dumps if key in layout.sections
    }
    if len({tuple(found) for found in paths.values()}) <= 1:
        return ""
    shown = "; ".join(f"{release}: {', '.join(found) or 'none'}" for release, found in paths.items())
    return f"fields of a size the dump does not give differ between releases ({shown})"


def _walker(description: Description) -> LegacyVisit:
    """The phase-1 form of an imported description: the walker itself (QEMU's C code is not ours)."""

    def visit(visitor: Visitor, state: Mapping[str, Any], version: int) -> State:
        return vmstate.walk(visitor, description, state, version)

    return visit


class _Checker:
    """The static checker's verdicts on one section of the dumps, as a device's
    policy (the expected outcome) and its expected state."""

    def __init__(self, key: str, layouts: dict[str, Layout]) -> None:
        self.key = key
        self.layouts = layouts
        self._verdicts: dict[tuple[str, str, str], Outcome] = {}

    def verdict(self, source: str, destination: str, wire: str) -> Outcome:
        found = self._verdicts.get((source, destination, wire))
        if found is None:
            report = compare(
                one_section(self.layouts[source], self.key), one_section(self.layouts[destination], self.key)
            )
            breaking = report.breaking((wire,))
            if not breaking:
                found = Outcome.OK
            elif all(finding.rule in REFUSING for finding in breaking):
                found = Outcome.REFUSED
            else:
                found = Outcome.DETECTED
            self._verdicts[source, destination, wire] = found
        return found

    def expectation(self, source: Release, destination: Release, pairing: str) -> Outcome:
        return self.verdict(source.name, destination.name, pairing_wire(pairing))

    def expected_state(self, source: Release, destination: Release, pairing: str, state: State) -> State:
        """On the legacy wire, where the checker finds the bytes unchanged, what
        the bytes say (:func:`migcompat.qemu.dumped.legacy_reading`); else by
        names. A refusal (a version, a subsection the destination does not know)
        happens before the bytes are read, and only for states that send it."""
        wire = pairing_wire(pairing)
        if wire == "qemufile" and self.verdict(source.name, destination.name, wire) is not Outcome.DETECTED:
            reading = dumped.legacy_reading(state, source.description, destination.description)
            if reading is not None:
                return reading
        return project(state, source.description, destination.description)


def one_section(layout: Layout, key: str, named: str | None = None) -> Layout:
    """The layout of one section of a dump (the machine type is not a device's
    business), under the name ``named`` (default: its own key) so that two dumps
    that file one VMState under different device classes compare section to section."""
    return Layout(layout.source, {named or key: layout.sections[key]}, counts_known=layout.counts_known)
