"""The native BER path (:mod:`migcompat.codec.native`, C in ``harness/wire/_berc.c``).

Why: the native path must be the generic path, faster -- the same bytes and the
same states (types included), and on anything it does not handle exactly it
must give up (None) so that the Python paths decide and report. These tests
call it directly, so they hold whichever path the rest of the suite runs
(``MIGCOMPAT_PURE_PYTHON=1`` only stops :class:`CompiledCodec` from using it).
The differential with random descriptions runs through ``tests/test_compiled.py``
(every test there runs on both paths).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from typing import Any

import pytest
from _support import typed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migcompat import devices
from migcompat.codec import native
from migcompat.errors import MigcompatError
from migcompat.limits import MAX_ELEMENTS
from migcompat.model.strategies import descriptions, values_of
from migcompat.model.vmstate import Array, Description, Field, Scalar, Struct
from migcompat.perf import workloads
from migcompat.wire.ber import TAG_UTF8STRING, BerInputVisitor, BerOutputVisitor, encode_tlv
from migcompat.wire.visitor import Framing, ListFraming

WORKLOADS = [workloads.WORKLOADS[name] for name in ("virtio-8", "virtio-1024", "slirp-10", "slirp-1000")]


def generic_encode(description: Description, state: Any) -> bytes:
    from migcompat.model import vmstate

    visitor = BerOutputVisitor()
    vmstate.save(visitor, description, state)
    return visitor.result()


def generic_decode(description: Description, data: bytes, version: int) -> Any:
    from migcompat.model import vmstate

    visitor = BerInputVisitor(data)
    state = vmstate.load(visitor, description, version)
    visitor.finish()
    return state


def assert_given_up_or_generic(codec: native.NativeCodec, description: Description, state: Any, data: bytes) -> None:
    """The native path writes ``data`` (the generic bytes of ``state``) and reads
    it back as the generic path reads it, or gives up on either."""
    encoded = codec.encode(state)
    assert encoded is None or encoded == data
    decoded = codec.decode(data, 0, description.version_id)
    if decoded is not None:
        assert decoded[1] == len(data)
        assert typed(decoded[0]) == typed(generic_decode(description, data, description.version_id))


def test_the_extension_is_built_by_the_install() -> None:
    """``pip install .`` (tox's wheel, CI's install) compiles it: a missing compiler shows here."""
    assert native._berc is not None, native.status()


def test_the_pure_path_can_be_forced_and_says_so() -> None:
    script = (
        "from migcompat.codec import native; from migcompat.codec.compiled import CompiledCodec;"
        "from migcompat.perf import workloads as w;"
        "print(native.status()); print(CompiledCodec(w.VIRTIO, 'ber').native is None)"
    )
    env = {**os.environ, native.PURE_PYTHON_VARIABLE: "1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [f"pure Python ({native.PURE_PYTHON_VARIABLE}=1)", "True"]


@pytest.mark.parametrize("workload", WORKLOADS, ids=[w.name for w in WORKLOADS])
def test_the_bench_workloads_run_natively_both_ways(workload: workloads.Workload) -> None:
    description, state = workload.description, workload.state()
    codec = native.NativeCodec(description)
    assert codec.unplanned is None
    data = generic_encode(description, state)
    assert codec.encode(state) == data
    decoded = codec.decode(data, 0, description.version_id)
    assert decoded is not None and decoded[1] == len(data)
    assert typed(decoded[0]) == typed(generic_decode(description, data, description.version_id))


def _planned_releases() -> list[tuple[str, Description, Any]]:
    cases = []
    for device in devices.registry().values():
        for release in device.releases:
            for state in device.fixed_states(release):
                cases.append((f"{device.name}-{release.name}", release.description, state))
    return cases


@pytest.mark.parametrize(("label", "description", "state"), _planned_releases(), ids=lambda v: str(v)[:40])
def test_every_device_release_is_the_generic_path_or_gives_up(label: str, description: Description, state: Any) -> None:
    assert_given_up_or_generic(native.NativeCodec(description), description, state, generic_encode(description, state))


def _outcome(description: Description, data: bytes) -> tuple[str, Any]:
    try:
        return "ok", typed(generic_decode(description, data, description.version_id))
    except MigcompatError as error:
        return "error", type(error).__name__


def _mutants(data: bytes, rng: random.Random, count: int) -> list[bytes]:
    out = []
    for _ in range(count):
        at = rng.randrange(len(data))
        choice = rng.randrange(5)
        if choice == 0:
            out.append(data[:at])
        elif choice == 1:
            out.append(data[:at] + bytes((rng.randrange(256),)) + data[at + 1 :])
        elif choice == 2:
            out.append(data[:at] + bytes((rng.randrange(256),)) + data[at:])
        elif choice == 3:
            out.append(data[:at] + data[at + 1 :])
        else:
            out.append(data[:at] + bytes((data[at] ^ 0x80,)) + data[at + 1 :])
    return out


@pytest.mark.parametrize("workload", WORKLOADS[:3:2], ids=lambda w: w.name)
def test_hostile_bytes_are_given_up_or_read_as_the_generic_path_reads_them(workload: workloads.Workload) -> None:
    description = workload.description
    data = generic_encode(description, workload.state())
    codec = native.NativeCodec(description)
    rng = random.Random(1)
    accepted = 0
    for mutant in _mutants(data, rng, 400):
        decoded = codec.decode(mutant, 0, description.version_id)
        if decoded is None or decoded[1] != len(mutant):
            continue
        accepted += 1
        # Whatever the native path reads, the generic path reads the same -- it never accepts what it refuses.
        assert _outcome(description, mutant) == ("ok", typed(decoded[0]))
    assert accepted > 0, "some mutants (a changed value byte) are still valid and read natively"


def test_a_declared_length_beyond_the_input_is_given_up_before_anything_is_allocated() -> None:
    description = workloads.VIRTIO
    codec = native.NativeCodec(description)
    for head in (
        b"\x30\x84\xff\xff\xff\xff",
        b"\x30\x84\x7f\xff\xff\xff",
        b"\x30\x80",
        b"\x30\x85\x01\x00\x00\x00\x00",
    ):
        assert codec.decode(head + bytes(16), 0, description.version_id) is None


def test_a_list_beyond_the_element_limit_is_given_up() -> None:
    description = Description("many", 1, 1, (Field("xs", Array(Scalar("uint8"), framing=Framing(ListFraming.COUNT))),))
    codec = native.NativeCodec(description)
    body = b"\x0c\x02u8" + b"\x02\x01\x01" * (MAX_ELEMENTS + 1)
    elements = b"\x30\x84" + len(body).to_bytes(4, "big") + body
    signature = encode_tlv(TAG_UTF8STRING, b"xs:list subsections:list")
    content = signature + elements + b"\x30\x02\x0c\x00"
    data = b"\x30\x84" + len(content).to_bytes(4, "big") + content
    assert codec.decode(data, 0, 1) is None
    with pytest.raises(MigcompatError):
        generic_decode(description, data, 1)
    # A short list of the same form is read natively, as the generic path reads it.
    body = b"\x0c\x02u8" + b"\x02\x01\x01" * 3
    content = signature + b"\x30" + bytes((len(body),)) + body + b"\x30\x02\x0c\x00"
    small = b"\x30" + bytes((len(content),)) + content
    assert codec.decode(small, 0, 1) == ({"xs": [1, 1, 1]}, len(small))


def test_values_of_other_types_than_the_walker_writes_are_given_up() -> None:
    queue = Struct("q", (Field("n", Scalar("uint16")), Field("on", Scalar("bool"))))
    description = Description("d", 1, 1, (Field("qs", Array(queue, framing=Framing(ListFraming.COUNT))),))
    codec = native.NativeCodec(description)

    class Subclass(dict):  # type: ignore[type-arg]
        pass

    good = {"qs": [{"n": 1, "on": True}]}
    assert codec.encode(good) == generic_encode(description, good)
    for bad in (
        Subclass(good),
        {"qs": [{"n": True, "on": True}]},
        {"qs": [{"n": 1, "on": 1}]},
        {"qs": [{"n": 65536, "on": True}]},
        {"qs": [{"n": -1, "on": True}]},
        {"qs": [{"n": 1}]},
        {"qs": {"n": 1, "on": True}},
    ):
        assert codec.encode(bad) is None, bad


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(description=descriptions(), data=st.data())
def test_random_descriptions_and_states_are_the_generic_bytes_and_states(
    description: Description, data: st.DataObject
) -> None:
    state = data.draw(values_of(description))
    codec = native.NativeCodec(description)
    try:
        expected = generic_encode(description, state)
    except MigcompatError:
        assert codec.encode(state) is None
        return
    assert_given_up_or_generic(codec, description, state, expected)


def test_an_integer_of_nine_octets_is_read_only_as_a_uint64_of_2_63_or_more() -> None:
    description = Description("d", 1, 1, (Field("x", Scalar("uint64")),))
    codec = native.NativeCodec(description)
    signature = encode_tlv(TAG_UTF8STRING, b"x:u64 subsections:list")
    for octets, expected in (
        (b"\x00\x80" + bytes(7), 2**63),
        (b"\x0b\x80" + bytes(7), None),  # beyond uint64: the generic path refuses it
        (b"\x00\x7f" + bytes(7), None),  # not minimal
        (b"\xff\x80" + bytes(7), None),  # negative
    ):
        content = signature + b"\x02\x09" + octets + b"\x30\x02\x0c\x00"
        data = b"\x30" + bytes((len(content),)) + content
        decoded = codec.decode(data, 0, 1)
        assert (decoded[0]["x"] if decoded else None) == expected, octets.hex()
        if expected is None:
            with pytest.raises(MigcompatError):
                generic_decode(description, data, 1)


def test_subsections_at_their_own_version_are_read_and_written_natively() -> None:
    from migcompat.model.vmstate import Subsection

    sub = Description("d/s", 2, 1, (Field("y", Scalar("uint16")),))
    description = Description("d", 1, 1, (Field("x", Scalar("uint8")),), (Subsection(sub),))
    codec = native.NativeCodec(description)
    for state in ({"x": 1}, {"x": 1, "d/s": {"y": 300}}):
        data = generic_encode(description, state)
        assert codec.encode(state) == data
        assert codec.decode(data, 0, 1) == (state, len(data))
    # The subsection at another version than its own: the Python paths read it.
    older = Description("d/s", 1, 1, (Field("y", Scalar("uint16")),))
    stream = generic_encode(Description("d", 1, 1, description.fields, (Subsection(older),)), {"x": 1, "d/s": {"y": 3}})
    assert codec.decode(stream, 0, 1) is None
    assert generic_decode(description, stream, 1) == {"x": 1, "d/s": {"y": 3}}


def test_a_whole_capture_converts_through_the_native_path_to_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from migcompat.codec import compiled
    from migcompat.devices import resolve_section
    from migcompat.qemu import stream

    data = (Path(__file__).parent.parent / "corpora" / "qemu-7.2" / "pc-virtio-net.bin").read_bytes()
    with compiled.pure_python():
        pure = stream.encode_ber(stream.parse_qemu(data, resolve_section), resolve_section)
        pure_back = stream.parse_ber(pure, resolve_section)
    calls = {"encode": 0, "decode": 0}
    encode, decode = native.NativeCodec.encode, native.NativeCodec.decode

    def counted_encode(self: native.NativeCodec, state: Any) -> bytes | None:
        result = encode(self, state)
        calls["encode"] += result is not None
        return result

    def counted_decode(self: native.NativeCodec, *args: Any) -> Any:
        result = decode(self, *args)
        calls["decode"] += result is not None
        return result

    monkeypatch.setattr(native.NativeCodec, "encode", counted_encode)
    monkeypatch.setattr(native.NativeCodec, "decode", counted_decode)
    monkeypatch.setattr(native, "forced_pure", lambda: False)  # also under MIGCOMPAT_PURE_PYTHON=1
    compiled._CACHE.clear()
    ber = stream.encode_ber(stream.parse_qemu(data, resolve_section), resolve_section)
    back = stream.parse_ber(ber, resolve_section)
    assert ber == pure and back == pure_back
    assert stream.encode_qemu(back, resolve_section) == data
    assert calls["encode"] >= 20 and calls["decode"] >= 20, calls
    compiled._CACHE.clear()


def test_a_description_deeper_than_the_limit_is_not_planned() -> None:
    from migcompat.limits import MAX_DEPTH

    kind: Any = Scalar("uint8")
    for level in range(MAX_DEPTH + 1):
        kind = Struct(f"s{level}", (Field("x", kind),))
    codec = native.NativeCodec(Description("deep", 1, 1, (Field("x", kind),)))
    assert codec.unplanned is not None and str(MAX_DEPTH) in codec.unplanned
    assert codec.encode({"x": {}}) is None and codec.decode(b"\x30\x00", 0, 1) is None
