"""What a reference device is: releases, a state model, strategies, and both visit forms.

Why: the matrix, the stream parser, the golden streams and the fuzzers all need
the same few things from a device. Keeping them in one small dataclass means a
third device is one new module that builds a :class:`Device`, plus one line in
:data:`migcompat.devices.DEVICE_MODULES`.

A device carries each of its releases in the two forms of the seed: the
declarative :class:`~migcompat.model.vmstate.Description` (phase 2) and the old-style
visit function, a mechanical ``qemu_put_*`` -> ``visit_*`` conversion (phase 1).
Tests hold them to identical bytes and values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migcompat.devices import machines
from migcompat.errors import UsageError
from migcompat.model.vmstate import Description, State
from migcompat.outcomes import Outcome
from migcompat.qemu.stream import DescriptionCodec, SectionCodec
from migcompat.wire.visitor import Visitor

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

#: The phase-1 form: ``visit(visitor, state, version) -> state``, value-returning
#: like the visitors, written field by field in wire order.
LegacyVisit = Callable[[Visitor, Mapping[str, Any], int], State]


@dataclass(frozen=True)
class Release:
    """A device as one release shipped it."""

    #: The release's name (``v1`` .. ``v4``, ``qemu-2.4`` ...), unique per device.
    name: str
    description: Description
    legacy: LegacyVisit
    #: Free text: what changed in this release and where the facts come from.
    notes: str = ""
    #: The machine type whose compatibility properties this form follows; empty
    #: for the release's own (newest) machine type, and for a device whose state
    #: does not depend on the machine type.
    machine: str = ""

    @property
    def version_id(self) -> int:
        return self.description.version_id

    @property
    def label(self) -> str:
        """``qemu-10.0``, or ``qemu-10.0@pc-i440fx-5.2`` under an older machine type."""
        return f"{self.name}@{self.machine}" if self.machine else self.name


#: ``expected(source, destination, pairing, state)``: the state a correct load gives.
ExpectedState = Callable[[Release, Release, str, State], State]


@dataclass(frozen=True)
class Device:
    name: str
    summary: str
    #: Oldest first; the last is the newest.
    releases: tuple[Release, ...]
    #: Hypothesis strategy of valid states for a release.
    strategy: Callable[[Release], SearchStrategy[State]]
    #: Fixed example states of a release (edge cases a run must always include,
    #: and the states of the golden streams): at least a minimal and a maximal one.
    fixed_states: Callable[[Release], list[State]] = lambda release: []
    #: Whether a stream section (by idstr) holds this device's state.
    matches_section: Callable[[str], bool] = lambda idstr: False
    #: Builds the codec for a matching section at a stream version; by default
    #: the newest release whose description accepts that version.
    section_codec: Callable[[str, int], SectionCodec | None] | None = None
    #: The compatibility policy: the outcome the device promises for a cell
    #: (source release, destination release, pairing); None means
    #: :meth:`newer_is_refused`, what QEMU's rules give a device that only ever
    #: adds things.
    policy: Callable[[Release, Release, str], Outcome] | None = None
    #: The releases a fuzzer drives round trips through: the releases
    #: themselves, or (for a device whose states hold thousands of elements)
    #: the same releases built with smaller fixed limits.
    fuzz_releases: Callable[[], tuple[Release, ...]] | None = None
    #: The state a correct load gives for a state saved at the source release
    #: through a pairing, when names alone do not say it (``None``: the source
    #: state projected onto the destination's fields by name). QEMU's dumps use
    #: it: the legacy wire carries no names, so a field renamed in place keeps
    #: its bytes.
    expected_state: ExpectedState | None = None
    #: ``machines(release, machine)``: the release as it saves and loads under
    #: a machine type's compatibility properties (:mod:`migcompat.devices.machines`).
    #: None: the device's state does not depend on the machine type (libslirp's
    #: has no compatibility properties), and its cells have no machine type.
    machines: Callable[[Release, str], Release] | None = None
    _by_name: dict[str, Release] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for release in self.releases:
            self._by_name[release.name] = release

    def expectation(self, source: Release, destination: Release, pairing: str) -> Outcome:
        """The outcome this device promises for a cell."""
        if self.policy is not None:
            return self.policy(source, destination, pairing)
        return self.newer_is_refused(source, destination, pairing)

    # -- machine types ---------------------------------------------------------

    def machine_of(self, source: Release, machine: str = "") -> str:
        """The machine type a cell runs: ``machine``, or the source release's own
        (empty for a device without machine types)."""
        if self.machines is None:
            return ""
        return machine or machines.own(source.name)

    def knows_machine(self, release: Release, machine: str) -> bool:
        """Whether ``release`` can be started with ``machine`` (always, for a device without machine types)."""
        return self.machines is None or not machine or machines.knows(release.name, machine)

    def at(self, release: Release, machine: str) -> Release:
        """``release`` under ``machine``'s compatibility properties (its own when empty)."""
        if self.machines is None or not machine or machine == machines.own(release.name):
            return release
        if not machines.knows(release.name, machine):
            raise UsageError(f"{self.name} release {release.name} does not know machine type {machine}")
        return self.machines(release, machine)

    def forms(self, release: Release) -> tuple[Release, ...]:
        """What ``release`` saves: under its own machine type, then under each
        machine type of :data:`~migcompat.devices.machines.AXIS` it knows."""
        if self.machines is None:
            return (release,)
        others = machines.shared([release.name], besides=[machines.own(release.name)])
        return (release, *(self.machines(release, machine) for machine in others))

    def index(self, release: Release) -> int:
        return [known.name for known in self.releases].index(release.name)

    def newer_is_refused(self, source: Release, destination: Release, pairing: str) -> Outcome:
        """Older or same release -> ok; newer -> refused, on every pairing."""
        return Outcome.OK if self.index(source) <= self.index(destination) else Outcome.REFUSED

    def release(self, name: str) -> Release:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(self._by_name)
            raise KeyError(f"device {self.name} has no release {name!r} (known: {known})") from None

    @property
    def newest(self) -> Release:
        return self.releases[-1]

    def codec(self, idstr: str, version: int) -> SectionCodec | None:
        if not self.matches_section(idstr):
            return None
        if self.section_codec is not None:
            return self.section_codec(idstr, version)
        # A version the newest release does not accept is still this device's
        # section: loading refuses it (as QEMU does) instead of carrying it opaque.
        return DescriptionCodec(self.name, self.newest.description)
