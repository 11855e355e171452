"""Capability negotiation: what two hypervisor releases agree on, and what it gives per device.

Why: the seed's last step. A source and a destination first agree on a wire
format both speak; then every device the source ships is saved by the source's
device release and loaded by the destination's over that format. A release
engineer asking "can hv-2017 migrate to hv-2022?" wants the protocol and, per
device, the outcome next to what the device promises -- the release-level view
of the compatibility matrix (DESIGN §7).

Strategy: the protocol is the first format in the *source's* preference order
that the destination also speaks (the sender picks; the receiver only has to
understand), or ``None`` when they share none -- then nothing can be sent and
no device is tried. A device's outcome is the worst over its fixed example
states, each run through :func:`migcompat.compat.cell.run_example`, so negotiation uses
exactly the matrix's classification. :func:`release_rows` reuses a matrix cell
when the run already has it (its examples include the fixed states) and runs
the fixed states otherwise.

A device the destination does not ship is ``refused`` (QEMU refuses a section it
has no handler for) and that is what is expected; a device only the destination
ships is not in the stream and is not listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from migcompat.compat.cell import CellSpec, MatrixConfig, resolve, run_example
from migcompat.compat.results import Cell, ReleaseRow
from migcompat.devices import machines, releases
from migcompat.devices.base import Device, Release
from migcompat.devices.releases import HypervisorRelease, device_releases
from migcompat.errors import DescriptionError
from migcompat.outcomes import Outcome, worst


@dataclass(frozen=True)
class DeviceOutcome:
    """One device in an agreement: its two releases, what happened and what it promises."""

    device: str
    source: str
    #: The destination's device release; None when the destination does not ship the device.
    destination: str | None
    outcome: Outcome
    expected: Outcome
    message: str = ""
    path: str = ""

    @property
    def matches(self) -> bool:
        return self.outcome is self.expected


@dataclass(frozen=True)
class Agreement:
    source: str
    destination: str
    #: The agreed wire format; None when the two releases speak no common one.
    protocol: str | None
    devices: tuple[DeviceOutcome, ...]
    #: The machine type both run; empty: each device release's own.
    machine: str = ""

    @property
    def worst(self) -> Outcome:
        if self.protocol is None:
            return Outcome.REFUSED
        return worst([device.outcome for device in self.devices])

    @property
    def compatible(self) -> bool:
        """A protocol was agreed and every device did what it promises."""
        return self.protocol is not None and all(device.matches for device in self.devices)


def common_protocol(source: HypervisorRelease, destination: HypervisorRelease) -> str | None:
    """The first format in the source's preference order that the destination speaks."""
    return next((fmt for fmt in source.formats if fmt in destination.formats), None)


def device_outcome(
    device: Device, source: Release, destination: Release, protocol: str, machine: str = ""
) -> DeviceOutcome:
    """The worst outcome of the device's fixed states saved at ``source`` and
    loaded at ``destination``, both under ``machine`` (empty: the source's own)."""
    spec = CellSpec(device.name, source.name, destination.name, protocol, cell_machine(device, source, machine))
    cell = resolve(spec)
    expected = cell.expected
    if cell.refusal:
        return DeviceOutcome(device.name, source.name, destination.name, Outcome.REFUSED, expected, cell.refusal)
    states = device.fixed_states(cell.source)
    if not states:
        raise DescriptionError(f"device {device.name} has no fixed states at {source.name}: negotiation needs some")
    results = [run_example(cell.source, cell.destination, protocol, state, device.expected_state) for state in states]
    outcome = worst([result.outcome for result in results])
    shown = next(result for result in results if result.outcome is outcome)
    return DeviceOutcome(
        device=device.name,
        source=source.name,
        destination=destination.name,
        outcome=outcome,
        expected=expected,
        message=shown.message,
        path=shown.path,
    )


def cell_machine(device: Device, source: Release, machine: str) -> str:
    """The machine field of the matrix cell a release row runs for a device:
    empty for the source's own machine type and for a device without machine types."""
    if device.machines is None or not machine or machine == machines.own(source.name):
        return ""
    return machine


def negotiate(
    source: HypervisorRelease,
    destination: HypervisorRelease,
    known: Iterable[Cell] = (),
    only: Iterable[str] = (),
    machine: str = "",
) -> Agreement:
    """Agree on a protocol and load every device the source ships at the destination.

    ``known`` are matrix cells to reuse instead of running the fixed states again;
    ``only`` restricts the devices (all the source ships when empty); ``machine``
    is the machine type both run (empty: each device release's own).
    """
    protocol = common_protocol(source, destination)
    if protocol is None:
        return Agreement(source.name, destination.name, None, (), machine)
    wanted = set(only)
    cells = {cell.key: cell for cell in known}
    there = device_releases(destination)
    outcomes: list[DeviceOutcome] = []
    for name, (device, sent) in device_releases(source).items():
        if wanted and name not in wanted:
            continue
        if name not in there:
            message = f"{destination.name} ships no {name}: a section without a handler is refused"
            outcomes.append(DeviceOutcome(name, sent.name, None, Outcome.REFUSED, Outcome.REFUSED, message))
            continue
        loaded = there[name][1]
        cell = cells.get(CellSpec(name, sent.name, loaded.name, protocol, cell_machine(device, sent, machine)).key)
        if cell is None:
            outcomes.append(device_outcome(device, sent, loaded, protocol, machine))
        else:
            outcomes.append(
                DeviceOutcome(
                    name, sent.name, loaded.name, cell.outcome, cell.expected, cell.detail.message, cell.detail.path
                )
            )
    return Agreement(source.name, destination.name, protocol, tuple(outcomes), machine)


def shared_machines(source: HypervisorRelease, destination: HypervisorRelease, only: Iterable[str] = ()) -> list[str]:
    """The machine types of :data:`~migcompat.devices.machines.AXIS` a release row
    runs besides the source's own: those every device release of both that
    depends on the machine type knows (of the devices in ``only``, when given),
    other than the source's own."""
    wanted = set(only)

    def typed(hv: HypervisorRelease) -> list[Release]:
        return [
            release
            for device, release in device_releases(hv).values()
            if device.machines is not None and (not wanted or device.name in wanted)
        ]

    sent, loaded = typed(source), typed(destination)
    if not sent:
        return []
    own = [machines.own(release.name) for release in sent]
    return machines.shared([release.name for release in sent + loaded], besides=own)


def release_rows(config: MatrixConfig, cells: Iterable[Cell]) -> list[ReleaseRow]:
    """One row per (source, destination) pair of :data:`~migcompat.devices.releases.RELEASES`,
    and one per machine type they share besides the source's own (:func:`shared_machines`).

    The run's device selection (``config.devices``) restricts the rows' devices;
    ``cells`` are the run's cells, reused where they cover a row's (device,
    releases, protocol, machine type).
    """
    known = list(cells)
    rows: list[ReleaseRow] = []
    for source in releases.RELEASES:
        for destination in releases.RELEASES:
            for machine in ("", *shared_machines(source, destination, config.devices)):
                if config.machines and machine and machine not in config.machines:
                    continue
                agreement = negotiate(source, destination, known, config.devices, machine)
                rows.append(
                    ReleaseRow(
                        source=agreement.source,
                        destination=agreement.destination,
                        protocol=agreement.protocol,
                        worst=agreement.worst,
                        devices={device.device: device.outcome.value for device in agreement.devices},
                        machine=machine,
                    )
                )
    return rows


__all__ = [
    "Agreement",
    "DeviceOutcome",
    "cell_machine",
    "common_protocol",
    "device_outcome",
    "negotiate",
    "release_rows",
    "shared_machines",
]
