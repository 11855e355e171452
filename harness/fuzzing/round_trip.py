"""Valid device states saved and loaded through every format and every path.

Why: the byte targets attack the decoders with hostile input; this one attacks
the encoders and the round trip with *valid* input. Each device's hypothesis
strategy knows what a valid state of a release is; driven by a fuzzer's bytes
(hypothesis' ``fuzz_one_input``) it explores states far from the matrix's few
examples, and every one must come back as it went in.

Strategy: :func:`release_and_state` draws a device release, a state of it and
a wire format; :func:`check_round_trip` saves the state through the generic
walker, the phase-1 visit function and the compiled codec in that format,
demands identical bytes, loads them back through every load path
(:func:`migcompat.fuzzing.device_loads.load_paths`), and converts qemufile -> BER
-> qemufile, which must reproduce the bytes. A difference raises
:class:`~migcompat.fuzzing.device_loads.PathsDisagree`. One format per input, not
both, halves the cost of an input; the fuzzer's inputs choose each format about
half the time.

The releases are each device's ``fuzz_releases``: for virtio, the real release
history with VIRTIO_QUEUE_MAX scaled down to 4 (its per-queue subsection arrays
hold 1024 entries from QEMU 2.4 on, which would make every input cost tens of
milliseconds); the full-size layouts are covered by the matrix, the golden
streams, real QEMU and the byte-level fuzz targets.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from migcompat.codec.compiled import FORMATS, Format, compile_codec
from migcompat.devices import registry
from migcompat.devices.base import Device, Release
from migcompat.fuzzing.device_loads import PathsDisagree, load_paths
from migcompat.model import vmstate
from migcompat.model.vmstate import State
from migcompat.wire import PAIRINGS

if TYPE_CHECKING:
    from hypothesis.strategies import DataObject, SearchStrategy


@cache
def round_trip_releases() -> tuple[tuple[Device, Release], ...]:
    """Every device's releases as the round trips use them: each device's
    ``fuzz_releases`` where it has them (virtio's, with VIRTIO_QUEUE_MAX scaled
    down), its releases otherwise."""
    return tuple(
        (device, release)
        for device in registry().values()
        for release in (device.fuzz_releases() if device.fuzz_releases else device.releases)
    )


@cache
def _strategies() -> tuple[SearchStrategy[State], ...]:
    # Built once: building a device's strategy (and hypothesis validating it on
    # first draw) costs more than drawing a state from it.
    return tuple(device.strategy(release) for device, release in round_trip_releases())


def release_and_state(data: DataObject) -> tuple[Device, Release, State, Format]:
    """Draw a device release, a valid state of it and the wire format to check it in."""
    from hypothesis import strategies as st

    releases = round_trip_releases()
    index = data.draw(st.integers(0, len(releases) - 1), label="release")
    device, release = releases[index]
    state = data.draw(_strategies()[index], label="state")
    fmt = data.draw(st.sampled_from(FORMATS), label="format")
    return device, release, state, fmt


def check_round_trip(device: Device, release: Release, state: State, formats: tuple[Format, ...] = FORMATS) -> None:
    """Every path writes the same bytes for ``state`` in each of ``formats``, and
    they load back to it; and converting the state's legacy bytes to BER and
    back reproduces them."""
    description = release.description
    for fmt in formats:
        generic = bytes(vmstate.encode(PAIRINGS[fmt].make_output(), description, state))
        visitor = PAIRINGS[fmt].make_output()
        release.legacy(visitor, state, description.version_id)
        legacy = bytes(visitor.result())  # type: ignore[attr-defined]
        compiled = compile_codec(description, fmt).encode(state)
        label = f"{device.name}/{release.name} {fmt}"
        if legacy != generic:
            raise PathsDisagree(f"{label}: the phase-1 visit function writes other bytes than the walker")
        if compiled != generic:
            raise PathsDisagree(f"{label}: the compiled codec writes other bytes than the walker")
        for path, loaded in load_paths(fmt, release, generic, description.version_id).items():
            if loaded != state:
                raise PathsDisagree(f"{label}: the {path} loads a saved state back as a different state")
    # The conversion `migcompat convert` does, by the compiled codecs (each
    # checked against the walker above, in whichever format an input chose).
    legacy_codec, ber_codec = compile_codec(description, "qemufile"), compile_codec(description, "ber")
    legacy_bytes = legacy_codec.encode(state)
    if legacy_codec.encode(ber_codec.decode(ber_codec.encode(legacy_codec.decode(legacy_bytes)))) != legacy_bytes:
        raise PathsDisagree(f"{device.name}/{release.name}: qemufile -> BER -> qemufile changes the bytes")


__all__ = ["check_round_trip", "release_and_state", "round_trip_releases"]
