"""Machine types: the versioned boards that keep an older release's stream readable.

Why: QEMU migrates between releases by running the destination with the
source's machine type. A versioned machine type (``pc-i440fx-5.2``) carries the
compatibility properties of every release after it (``hw_compat_*`` and
``pc_compat_*``: docs/qemu-releases.md §4), so a newer release started with an
older machine type writes the state an older release reads -- backward
migration works -- while a machine type the destination does not know stops the
destination before a byte is read. A device state is therefore saved for a
(release, machine type), not for a release.

This module is the naming and ordering of machine types; what a machine type's
properties do to a device's layout is the device's own (``Device.machines``).
A model release named ``qemu-X.Y`` knows the machine types of version X.Y and
older; its own (newest) one is ``pc-i440fx-X.Y``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from migcompat.errors import UsageError

#: The versioned machine types of the x86 boards, by board.
_VERSIONED = re.compile(r"(?P<board>pc-i440fx|pc-q35)-(?P<major>\d+)\.(?P<minor>\d+)")
_RELEASE = re.compile(r"qemu-(?P<major>\d+)\.(?P<minor>\d+)")
#: The board of a release's own machine type in the model.
BOARD = "pc-i440fx"

#: The machine types the model matrix crosses (``migcompat matrix``): those of
#: the three real peers, whose compatibility arrays were read at their tags
#: (docs/qemu-releases.md §4) and whose streams the real matrix checks. The
#: model's older releases are run with their own machine types only: their
#: compatibility arrays (migrate-extra, use-started, ...) are not modelled, so a
#: cell saving a newer release under one of them would predict from guesses.
AXIS: tuple[str, ...] = ("pc-i440fx-5.2", "pc-i440fx-7.2", "pc-i440fx-10.0")


@dataclass(frozen=True, order=True)
class MachineType:
    """A versioned machine type, ordered by version (then board)."""

    version: tuple[int, int]
    board: str
    name: str


def parse(name: str) -> MachineType:
    """The machine type called ``name``; a :class:`UsageError` for one that is not versioned."""
    match = _VERSIONED.fullmatch(name)
    if match is None:
        raise UsageError(f"{name!r} is not a versioned machine type (pc-i440fx-X.Y or pc-q35-X.Y)")
    return MachineType((int(match["major"]), int(match["minor"])), match["board"], name)


def release_version(release: str) -> tuple[int, int] | None:
    """The QEMU version a model release is named after (``qemu-7.2`` -> (7, 2)), or None."""
    match = _RELEASE.fullmatch(release)
    return None if match is None else (int(match["major"]), int(match["minor"]))


def own(release: str) -> str:
    """A release's own machine type: the newest it has (``qemu-7.2`` -> ``pc-i440fx-7.2``)."""
    version = release_version(release)
    if version is None:
        raise UsageError(f"release {release!r} is not named after a QEMU version: it has no machine type")
    return f"{BOARD}-{version[0]}.{version[1]}"


def knows(release: str, machine: str) -> bool:
    """Whether a release has ``machine``: every versioned machine type up to its own version."""
    version = release_version(release)
    return version is not None and parse(machine).version <= version


def shared(releases: Iterable[str], besides: Iterable[str] = ()) -> list[str]:
    """The machine types of :data:`AXIS` every one of ``releases`` knows, in
    order, other than those ``besides`` names (a source's own)."""
    names, skipped = list(releases), set(besides)
    return [machine for machine in AXIS if machine not in skipped and all(knows(name, machine) for name in names)]


__all__ = ["AXIS", "BOARD", "MachineType", "knows", "own", "parse", "release_version", "shared"]
