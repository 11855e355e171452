"""Hypervisor (product) releases and the capabilities they declare.

Why: a migration happens between two *hypervisor* releases, not between two
device releases. Each hypervisor release ships one release of every device it
has and speaks some wire formats, in the order it prefers them -- the seed's
"capability negotiation": before sending, source and destination agree on a
protocol both speak (:mod:`migcompat.compat.negotiate`). The release-level matrix and
``migcompat negotiate`` are computed from this table.

Strategy: :class:`HypervisorRelease` checks its own shape when it is built
(known wire formats, each once); which devices and device releases it names is
checked against the device registry by :func:`device_releases`, when it is used,
so a table built before a registry change (or a hand-built release in a test) is
still checked against the devices that exist. :data:`RELEASES` is checked once
at import: a typo in the table fails loudly, not in the middle of a report.

The table is a model, modelled on the device histories in :mod:`devices`:
hv-2014 ships QEMU 2.1's virtio and slirp v3, hv-2015 QEMU 2.4's virtio,
hv-2017 slirp v4 and QEMU 2.7's virtio and is the first to speak BER (it still
prefers the legacy stream, which every older release reads), hv-2020 QEMU 5.2's
virtio, hv-2022 QEMU 7.2's and prefers BER, hv-2025 QEMU 10.0's. A release row
is run with the source's own machine type and with every machine type of
:data:`migcompat.devices.machines.AXIS` both know
(:func:`migcompat.compat.negotiate.shared_machines`). A hypervisor release may ship a subset of the devices,
so adding a device to the registry does not require touching this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from migcompat import devices
from migcompat.devices.base import Device, Release
from migcompat.errors import DescriptionError, UsageError
from migcompat.wire import PAIRINGS

#: The formats two processes can speak over a socket: the pairings whose
#: encoded form is bytes (``dict`` is the in-memory reference, not a wire format).
WIRE_FORMATS: tuple[str, ...] = tuple(name for name, pairing in PAIRINGS.items() if pairing.is_bytes)


@dataclass(frozen=True)
class HypervisorRelease:
    """A hypervisor release: the wire formats it speaks and the device releases it ships."""

    name: str
    #: Wire formats it speaks, the one it prefers first.
    formats: tuple[str, ...]
    #: Device name -> the name of the device release it ships.
    devices: Mapping[str, str] = field(hash=False)

    def __post_init__(self) -> None:
        if not self.name:
            raise DescriptionError("a hypervisor release needs a name")
        if not self.formats:
            raise DescriptionError(f"hypervisor release {self.name} speaks no wire format")
        for fmt in self.formats:
            if fmt not in WIRE_FORMATS:
                known = ", ".join(WIRE_FORMATS)
                raise DescriptionError(f"hypervisor release {self.name}: unknown wire format {fmt!r} (known: {known})")
        if len(set(self.formats)) != len(self.formats):
            raise DescriptionError(f"hypervisor release {self.name} lists a wire format twice: {self.formats}")
        # Frozen all the way down: the table is shared by every caller.
        object.__setattr__(self, "devices", MappingProxyType(dict(self.devices)))


def device_releases(release: HypervisorRelease) -> dict[str, tuple[Device, Release]]:
    """The devices ``release`` ships, resolved in the current registry, in registry order.

    Raises :class:`~migcompat.errors.DescriptionError` for a device or device
    release the registry does not know.
    """
    registry = devices.registry()
    for name in release.devices:
        if name not in registry:
            raise DescriptionError(
                f"hypervisor release {release.name} ships unknown device {name!r} (known: {', '.join(registry)})"
            )
    resolved: dict[str, tuple[Device, Release]] = {}
    for name, device in registry.items():
        if name not in release.devices:
            continue
        try:
            resolved[name] = (device, device.release(release.devices[name]))
        except KeyError as error:
            raise DescriptionError(f"hypervisor release {release.name}: {error.args[0]}") from None
    return resolved


RELEASES: tuple[HypervisorRelease, ...] = (
    HypervisorRelease("hv-2014", ("qemufile",), {"slirp": "v3", "virtio": "qemu-2.1"}),
    HypervisorRelease("hv-2015", ("qemufile",), {"slirp": "v3", "virtio": "qemu-2.4"}),
    HypervisorRelease("hv-2017", ("qemufile", "ber"), {"slirp": "v4", "virtio": "qemu-2.7"}),
    HypervisorRelease("hv-2020", ("qemufile", "ber"), {"slirp": "v4", "virtio": "qemu-5.2"}),
    HypervisorRelease("hv-2022", ("ber", "qemufile"), {"slirp": "v4", "virtio": "qemu-7.2"}),
    HypervisorRelease("hv-2025", ("ber", "qemufile"), {"slirp": "v4", "virtio": "qemu-10.0"}),
)


def get(name: str) -> HypervisorRelease:
    """The release of :data:`RELEASES` called ``name``; a :class:`UsageError` names the known ones."""
    for release in RELEASES:
        if release.name == name:
            return release
    raise UsageError(f"unknown hypervisor release {name!r} (known: {', '.join(r.name for r in RELEASES)})")


def _check_table() -> None:
    names = [release.name for release in RELEASES]
    if len(set(names)) != len(names):
        raise DescriptionError(f"hypervisor release names are not unique: {names}")
    for release in RELEASES:
        device_releases(release)


_check_table()

__all__ = ["RELEASES", "WIRE_FORMATS", "HypervisorRelease", "device_releases", "get"]
