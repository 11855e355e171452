"""Valid device states saved and loaded through every format and every path.

Why: the byte targets attack the decoders with hostile input; this one attacks
the encoders and the round trip with *valid* input. Each device's hypothesis
strategy knows what a valid state of a release is; driven by a fuzzer's bytes
(hypothesis' ``fuzz_one_input``) it explores states far from the matrix's few
examples, and every one must come back as it went in.

Strategy: :func:`release_and_state` draws a device release and a state of it;
:func:`check_round_trip` saves it through the generic walker, the phase-1 visit
function and the compiled codec in each byte format, demands identical bytes,
loads them back through every load path
(:func:`harness.fuzzing.device_loads.load_paths`), and converts qemufile -> BER -> qemufile,
which must reproduce the bytes. A difference raises
:class:`~harness.fuzzing.device_loads.PathsDisagree`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devices.base import Device, Release
from harness import vmstate
from harness.compiled import FORMATS, compile_codec
from harness.fuzzing.device_loads import PathsDisagree, destinations, load_paths
from harness.visitors import PAIRINGS
from harness.vmstate import State

if TYPE_CHECKING:
    from hypothesis.strategies import DataObject


def release_and_state(data: DataObject) -> tuple[Device, Release, State]:
    """Draw a device release and a valid state of it."""
    from hypothesis import strategies as st

    device, release = data.draw(st.sampled_from(destinations()), label="release")
    state = data.draw(device.strategy(release), label="state")
    return device, release, state


def check_round_trip(device: Device, release: Release, state: State) -> None:
    """Every path writes the same bytes for ``state``, and they load back to it."""
    description = release.description
    encoded: dict[str, bytes] = {}
    for fmt in FORMATS:
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
        encoded[fmt] = generic
    reloaded = compile_codec(description, "ber").decode(encoded["ber"])
    if bytes(vmstate.encode(PAIRINGS["qemufile"].make_output(), description, reloaded)) != encoded["qemufile"]:
        raise PathsDisagree(f"{device.name}/{release.name}: qemufile -> BER -> qemufile changes the bytes")


__all__ = ["check_round_trip", "release_and_state"]
