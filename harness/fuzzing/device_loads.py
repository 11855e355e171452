"""Every load path of a reference device, run on one input and held to one answer.

Why: a device release is loaded three ways -- the declarative description through
the generic walker, the old-style (phase 1) visit function, and the compiled fast
path -- and the product relies on them being interchangeable. On valid streams
the tests show they are; a fuzzer shows it for every input: each path loads the
input or rejects it with a :class:`~migcompat.errors.DecodeError`, all paths agree
on which, and what loads saves and loads back to itself.

Strategy: the first two input bytes choose the destination (device, release
under a machine type) and
the stream version (every version any release of the device writes, plus one
below and one above, which must be refused); the rest is the wire bytes.
:func:`load_everywhere` runs the paths and raises :class:`PathsDisagree` -- a
finding -- when they differ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from migcompat.codec.compiled import Format, compile_codec
from migcompat.devices import registry
from migcompat.devices.base import Device, Release
from migcompat.errors import DecodeError
from migcompat.model import vmstate
from migcompat.model.vmstate import State
from migcompat.wire import PAIRINGS


class PathsDisagree(AssertionError):
    """Two load paths of one device release gave different answers for one input."""


@dataclass(frozen=True)
class Destination:
    """Where an input is loaded: a device release, at a stream version."""

    device: Device
    release: Release
    version: int

    @property
    def label(self) -> str:
        return f"{self.device.name}/{self.release.label} at stream version {self.version}"


@cache
def destinations() -> tuple[tuple[Device, Release], ...]:
    """Every (device, release) of the registry, in registry order, each release
    under its own machine type and the others it knows (``Device.forms``)."""
    return tuple(
        (device, form)
        for device in registry().values()
        for release in device.releases
        for form in device.forms(release)
    )


@cache
def versions(device: Device) -> tuple[int, ...]:
    """The stream versions worth trying on ``device``: every release's, one below, one above."""
    known = sorted({release.version_id for release in device.releases})
    return (known[0] - 1, *known, known[-1] + 1)


def select(data: bytes) -> tuple[Destination, bytes]:
    """The destination the first two bytes choose, and the payload after them."""
    device, release = destinations()[(data[0] if data else 0) % len(destinations())]
    choices = versions(device)
    version = choices[(data[1] if len(data) > 1 else 0) % len(choices)]
    return Destination(device, release, version), data[2:]


def selector(device_name: str, release_label: str, version: int) -> bytes:
    """The two bytes :func:`select` reads as this destination (a release's
    label: ``qemu-10.0@pc-i440fx-5.2`` under another machine type) (for seeds)."""
    index = [(d.name, r.label) for d, r in destinations()].index((device_name, release_label))
    device = destinations()[index][0]
    return bytes((index, versions(device).index(version)))


Outcome = tuple[State | None, DecodeError | None]


def _attempt(load: Callable[[], State]) -> Outcome:
    try:
        return load(), None
    except DecodeError as error:
        return None, error


def _generic(fmt: Format, release: Release, payload: bytes, version: int) -> State:
    visitor = PAIRINGS[fmt].make_input(payload)
    state = vmstate.load(visitor, release.description, version)
    visitor.finish()  # type: ignore[attr-defined]
    return state


def _legacy(fmt: Format, release: Release, payload: bytes, version: int) -> State:
    visitor = PAIRINGS[fmt].make_input(payload)
    state = release.legacy(visitor, release.description.defaults(), version)
    visitor.finish()  # type: ignore[attr-defined]
    return state


def load_paths(fmt: Format, release: Release, payload: bytes, version: int) -> dict[str, State | DecodeError]:
    """What each load path makes of ``payload``: a state or the DecodeError it raised."""
    outcomes = {
        "generic walker": _attempt(lambda: _generic(fmt, release, payload, version)),
        "compiled codec": _attempt(lambda: compile_codec(release.description, fmt).decode(payload, version)),
        "phase-1 visit function": _attempt(lambda: _legacy(fmt, release, payload, version)),
    }
    results: dict[str, State | DecodeError] = {}
    for path, (state, error) in outcomes.items():
        results[path] = error if error is not None else state or {}
    return results


def _describe(outcome: Outcome) -> str:
    state, error = outcome
    if error is not None:
        return f"rejected ({type(error).__name__}: {error})"
    return f"loaded {str(state)[:200]}"


def _save(fmt: Format, release: Release, state: State, version: int) -> tuple[bytes, bytes, bytes]:
    """The bytes the generic walker, the compiled codec and the phase-1 function
    write for ``state`` at stream ``version`` (the compiled codec writes only the
    release's own version; at another it repeats the walker's bytes)."""
    description = release.description
    output = PAIRINGS[fmt].make_output()
    vmstate.walk(output, description, state, version)
    generic = bytes(output.result())  # type: ignore[attr-defined]
    compiled = compile_codec(description, fmt).encode(state) if version == description.version_id else generic
    visitor = PAIRINGS[fmt].make_output()
    release.legacy(visitor, state, version)
    return generic, compiled, bytes(visitor.result())  # type: ignore[attr-defined]


def load_everywhere(fmt: Format, target: Destination, payload: bytes) -> State:
    """Load ``payload`` through every path; return the state or raise the generic
    path's DecodeError. Raises :class:`PathsDisagree` when the paths differ."""
    release, version = target.release, target.version
    generic = _attempt(lambda: _generic(fmt, release, payload, version))
    compiled = _attempt(lambda: compile_codec(release.description, fmt).decode(payload, version))
    legacy = _attempt(lambda: _legacy(fmt, release, payload, version))

    def disagree(what: str, other: Outcome) -> PathsDisagree:
        return PathsDisagree(
            f"{fmt} {target.label}: the generic walker {_describe(generic)}, {what} {_describe(other)}"
        )

    if generic[1] is not None:
        error = generic[1]
        if compiled[1] is None or (type(compiled[1]), str(compiled[1])) != (type(error), str(error)):
            raise disagree("the compiled codec", compiled)
        if legacy[1] is None:
            raise disagree("the phase-1 visit function", legacy)
        raise error
    state = generic[0]
    assert state is not None
    if compiled != generic:
        raise disagree("the compiled codec", compiled)
    if legacy != generic:
        raise disagree("the phase-1 visit function", legacy)
    _saves_and_loads_back(fmt, target, state)
    return state


def _saves_and_loads_back(fmt: Format, target: Destination, state: State) -> None:
    """A loaded state saves at its stream version (the same bytes on every path)
    and loads back to itself: nothing read is lost or changed by the model."""
    release, version = target.release, target.version
    try:
        generic, compiled, legacy = _save(fmt, release, state, version)
        again = _generic(fmt, release, generic, version)
    except Exception as error:
        raise PathsDisagree(
            f"{fmt} {target.label}: a loaded state does not save and load back: {type(error).__name__}: {error}"
        ) from error
    if compiled != generic:
        raise PathsDisagree(f"{fmt} {target.label}: the compiled codec writes other bytes for a loaded state")
    if legacy != generic:
        raise PathsDisagree(f"{fmt} {target.label}: the phase-1 visit function writes other bytes for a loaded state")
    if again != state:
        raise PathsDisagree(f"{fmt} {target.label}: a loaded state saves and loads back as a different state")


__all__ = [
    "Destination",
    "PathsDisagree",
    "destinations",
    "load_everywhere",
    "load_paths",
    "select",
    "selector",
    "versions",
]
