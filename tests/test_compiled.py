"""Compiled codecs are the generic walker, faster: same bytes, same states, same errors.

Why: :mod:`migcompat.codec.compiled` generates code from a description; the walker with
the visitors stays the definition of both wires. Every test here is
differential -- the compiled codec and the generic path on the same input must
produce equal bytes or states (types included: ``True`` is not ``1``), or raise
the same exception type with the same text (message, offset and path). Inputs
are every release of every device through its own strategy, random descriptions
using every description feature, hostile values on encode, and truncated,
flipped, padded and re-framed encodings on decode, including the virtio and
slirp sections of the real QEMU 7.2 captures.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _support import REAL_CAPTURES, capture_label, parse_tlv, to_indefinite, typed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migcompat import devices
from migcompat.codec import compiled
from migcompat.codec import native as native_path
from migcompat.codec.compiled import FORMATS, CompiledCodec, compile_codec
from migcompat.devices.base import Device, Release
from migcompat.errors import EncodeError, MigcompatError
from migcompat.model import vmstate
from migcompat.model.strategies import descriptions, values_of
from migcompat.model.vmstate import Description, Field, Scalar, State, Struct
from migcompat.perf import bench
from migcompat.qemu import stream
from migcompat.wire.qemufile import QemuFileInputVisitor

CORPUS = Path(__file__).parent.parent / "corpora" / "qemu-7.2"


@pytest.fixture(autouse=True, params=["native", "pure"] if native_path.available() else ["pure"])
def ber_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every test here runs twice: with the native BER path in front of the
    generated code, and with the generated Python code alone."""
    if request.param == "pure":
        monkeypatch.setattr(native_path, "available", lambda: False)
    compiled._CACHE.clear()
    yield request.param
    compiled._CACHE.clear()


DEVICE_RELEASES = [(device, release) for device in devices.registry().values() for release in device.releases]
RELEASE_IDS = [f"{device.name}-{release.name}" for device, release in DEVICE_RELEASES]


# -- comparing outcomes ---------------------------------------------------------------


def outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    """What a call did: its (typed) result, or its exception's type and text."""
    try:
        return ("ok", typed(call()))
    except Exception as error:  # the compared codecs may raise anything; both must raise the same
        return ("error", type(error), str(error))


def assert_same_encode(codec: CompiledCodec, state: Any) -> tuple[Any, ...]:
    expected = outcome(lambda: codec.generic_encode(state))
    assert outcome(lambda: codec.encode(state)) == expected
    return expected


def assert_same_decode(codec: CompiledCodec, data: bytes, version: int | None = None) -> tuple[Any, ...]:
    expected = outcome(lambda: codec.generic_decode(data, version))
    assert outcome(lambda: codec.decode(data, version)) == expected
    return expected


@contextmanager
def fast_path_only(*codecs: CompiledCodec) -> Iterator[None]:
    """Make the generic path fail loudly: what runs inside must not need it."""

    def refuse(*args: Any) -> Any:
        raise AssertionError("the generic path was used")

    for codec in codecs:
        codec.generic_encode = refuse  # type: ignore[method-assign]
        codec.generic_decode = refuse  # type: ignore[method-assign]
    try:
        yield
    finally:
        for codec in codecs:
            del codec.generic_encode
            del codec.generic_decode


def mutations(data: bytes, rng: random.Random, count: int) -> Iterator[bytes]:
    """Truncations, byte flips, insertions, deletions and trailing bytes of ``data``."""
    if not data:
        yield b"\x00"
        return
    for _ in range(count):
        at = rng.randrange(len(data))
        choice = rng.randrange(6)
        if choice == 0:
            yield data[:at]
        elif choice == 1:
            yield data[:at] + bytes((data[at] ^ (1 << rng.randrange(8)),)) + data[at + 1 :]
        elif choice == 2:
            yield data[:at] + bytes((rng.randrange(256),)) + data[at + 1 :]
        elif choice == 3:
            yield data[:at] + bytes((rng.randrange(256),)) + data[at:]
        elif choice == 4:
            yield data[:at] + data[at + 1 :]
        else:
            yield data + bytes((rng.randrange(256),))


def long_form_lengths(data: bytes) -> bytes:
    """A BER value re-encoded with every length in the (valid, non-minimal) two-octet long form."""
    node = parse_tlv(data)

    def write(node: Any) -> bytes:
        if node.tag & 0x20:
            content = b"".join(write(child) for child in node.children)
        else:
            content = data[node.content_offset : node.end]
        return bytes((node.tag, 0x82)) + len(content).to_bytes(2, "big") + content

    return write(node)


# -- the device releases ---------------------------------------------------------------


def test_device_descriptions_and_the_bench_workload_are_compiled() -> None:
    """Nothing of theirs falls back to the generic path for being hard to compile."""
    cases = [(release.description, device.fixed_states(release)[-1]) for device, release in DEVICE_RELEASES]
    cases.append((bench.VIRTIO, bench.make_state(8)))
    for description, state in cases:
        for fmt in FORMATS:
            codec = compile_codec(description, fmt)
            codec.decode(codec.encode(state))
            assert codec.compiled, (codec.unsupported, codec.build_errors)
            if codec.native is not None:
                assert codec.native.unplanned is None, codec.native.unplanned
            else:
                assert "encode" in codec.source and "decode" in codec.source


def test_codecs_are_cached_per_description_and_format() -> None:
    description = bench.VIRTIO
    assert compile_codec(description, "ber") is compile_codec(description, "ber")
    assert compile_codec(description, "ber") is not compile_codec(description, "qemufile")
    with pytest.raises(ValueError, match="unknown format"):
        CompiledCodec(description, "dict")  # type: ignore[arg-type]


def test_generated_source_is_named_after_the_structs() -> None:
    codec = compile_codec(devices.get("slirp").newest.description, "qemufile")
    codec.decode(codec.encode(devices.get("slirp").fixed_states(devices.get("slirp").newest)[1]))
    for name in ("def encode_slirp(", "def encode_slirp_socket(", "def decode_slirp(", "def decode_slirp_sbuf("):
        assert name in codec.source


def _check_release(device: Device, release: Release, state: State) -> None:
    """Same bytes and states on every format; the valid case never needs the generic path;
    every other release reading this release's stream agrees with the generic path."""
    for fmt in FORMATS:
        codec = compile_codec(release.description, fmt)
        with fast_path_only(codec):
            data = codec.encode(state)
            loaded = codec.decode(data)
        assert data == codec.generic_encode(state)
        assert typed(loaded) == typed(codec.generic_decode(data))
        for other in device.releases:
            if other is not release:
                assert_same_decode(compile_codec(other.description, fmt), data, release.version_id)


@pytest.mark.parametrize(("device", "release"), DEVICE_RELEASES, ids=RELEASE_IDS)
def test_fixed_states_of_every_release(device: Device, release: Release) -> None:
    for state in device.fixed_states(release):
        _check_release(device, release, state)


@pytest.mark.parametrize(("device", "release"), DEVICE_RELEASES, ids=RELEASE_IDS)
def test_generated_states_of_every_release(device: Device, release: Release) -> None:
    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(state=device.strategy(release))
    def check(state: State) -> None:
        _check_release(device, release, state)

    check()


@pytest.mark.parametrize("queues", [0, 1, 64, 1024])
def test_the_bench_workload_is_fast_path_only(queues: int) -> None:
    state = bench.make_state(max(queues, 1))
    state["queues"] = state["queues"][:queues]
    for fmt in FORMATS:
        codec = compile_codec(bench.VIRTIO, fmt)
        with fast_path_only(codec):
            data = codec.encode(state)
            assert codec.decode(data) == state
        assert data == codec.generic_encode(state)


# -- random descriptions --------------------------------------------------------------

#: Descriptions using every description feature: validators, every framing, every gate.
DESCRIPTIONS = descriptions()


@st.composite
def cases(draw: st.DrawFn) -> tuple[Description, State]:
    description = draw(DESCRIPTIONS)
    return description, draw(values_of(description, bad_lengths=True))


@st.composite
def hostile(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with one leaf replaced by something that may not fit."""
    if isinstance(value, dict) and value and draw(st.integers(0, 3)):
        key = draw(st.sampled_from(sorted(value)))
        return {**value, key: draw(hostile(value[key]))}
    if isinstance(value, list) and value and draw(st.integers(0, 3)):
        index = draw(st.integers(0, len(value) - 1))
        return [*value[:index], draw(hostile(value[index])), *value[index + 1 :]]
    return draw(
        st.sampled_from(
            [None, True, 1, -1, 2**64, -(2**63) - 1, 1.0, "x", "\udcff", "é" * 200, b"", bytearray(1), [], {}, (0,)]
        )
    )


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def budget(codec: CompiledCodec, data: bytes, version: int | None = None, seconds: float = 0.25) -> int:
    """How many mutations of ``data`` to try: about ``seconds`` of generic decoding
    (the reference, and the compiled codec's fallback), between 8 and 40."""
    start = time.perf_counter()
    outcome(lambda: codec.generic_decode(data, version))
    return max(8, min(40, int(seconds / (2 * (time.perf_counter() - start) + 1e-9))))


@PROPERTY
@given(case=cases(), data=st.data())
def test_random_descriptions_compile_to_the_walker(case: tuple[Description, State], data: st.DataObject) -> None:
    description, state = case
    rng = random.Random(data.draw(st.integers(0, 2**32), label="seed"))
    for fmt in FORMATS:
        codec = compile_codec(description, fmt)
        assert codec.compiled, codec.unsupported
        encoded = assert_same_encode(codec, state)
        assert_same_encode(codec, data.draw(hostile(state), label="hostile"))
        if encoded[0] != "ok":
            continue
        raw = codec.generic_encode(state)
        for version in range(description.minimum_version_id - 1, description.version_id + 2):
            assert_same_decode(codec, raw, version)
        for mutated in mutations(raw, rng, 12):
            assert_same_decode(codec, mutated)
        if fmt == "ber":
            assert_same_decode(codec, to_indefinite(raw))
            assert_same_decode(codec, long_form_lengths(raw))
        for other in variants(description):
            assert_same_decode(compile_codec(other, fmt), raw)


NEW_BYTE = Scalar("uint8")


def variants(description: Description) -> list[Description]:
    """Destinations that disagree with ``description``: one that lacks its last
    field (and accepts unknown members), one with no subsections, one newer."""
    fields, subsections = description.fields, description.subsections
    name, version, minimum = description.name, description.version_id, description.minimum_version_id
    out = [
        Description(name, version, minimum, (), subsections, accept_unknown=True),
        Description(name, version, minimum, fields, (), accept_unknown=description.accept_unknown),
        Description(name, version + 1, minimum, (*fields, Field("new", NEW_BYTE, since=version + 1)), subsections),
    ]
    if len(fields) > 1:
        out.append(Description(name, version, minimum, fields[:-1], subsections, accept_unknown=True))
    return out


@PROPERTY
@given(case=cases())
def test_valid_random_states_use_the_fast_path(case: tuple[Description, State]) -> None:
    description, state = case
    for fmt in FORMATS:
        codec = compile_codec(description, fmt)
        try:
            data = codec.generic_encode(state)
            expected = codec.generic_decode(data)
        except MigcompatError:  # not a valid state here (the walker says why); the property above covers it
            continue
        with fast_path_only(codec):
            assert codec.encode(state) == data
            assert typed(codec.decode(data)) == typed(expected)


def test_a_value_that_does_not_fit_is_the_generic_encode_error() -> None:
    release = devices.get("slirp").newest
    state = devices.get("slirp").fixed_states(release)[1]
    state["sockets"][1]["so_tcpcb"]["t_timer"][2] = 40000
    for fmt in FORMATS:
        codec = compile_codec(release.description, fmt)
        with pytest.raises(EncodeError) as caught:
            codec.encode(state)
        with pytest.raises(EncodeError) as reference:
            codec.generic_encode(state)
        assert str(caught.value) == str(reference.value)
        assert "sockets[1]/so_tcpcb/t_timer[2]" in str(caught.value)


# -- hostile input ----------------------------------------------------------------------


def _captured_sections() -> list[tuple[str, Description, int, State]]:
    """(label, description, stream version, state) of every decoded section of the captures:
    those of our device models and those described by the stream's vmdesc."""
    sections = []
    for path in REAL_CAPTURES:
        parsed = stream.parse_qemu(path.read_bytes(), devices.resolve_section)
        described = stream.VmdescDescriptions.of_json(parsed.vmdesc)
        for record in parsed.records:
            if record.state is None:
                continue
            if record.decoded_by == "vmdesc":
                label = f"{capture_label(path)}:{record.idstr}:{record.instance_id}"
                sections.append((label, described.description(record), record.version_id, record.state))
                continue
            codec = devices.resolve_section(record.idstr, record.version_id)
            assert codec is not None
            codec = codec.for_layout(record.layout)
            description = getattr(codec, "description", None)
            assert isinstance(description, Description)
            sections.append((f"{capture_label(path)}:{record.idstr}", description, record.version_id, record.state))
    return sections


CAPTURED = _captured_sections()


def test_the_captures_have_virtio_and_slirp_sections() -> None:
    names = [label for label, *_ in CAPTURED]
    assert any(label.endswith("/virtio-net") for label in names)
    assert any(label.endswith("/virtio-blk") for label in names)
    assert any(label.endswith(":slirp") for label in names)


@pytest.mark.parametrize("section", range(len(CAPTURED)), ids=[label for label, *_ in CAPTURED])
@pytest.mark.parametrize("fmt", FORMATS)
def test_captured_sections_hostile(section: int, fmt: str) -> None:
    _label, description, version, state = CAPTURED[section]
    codec = compile_codec(description, fmt)  # type: ignore[arg-type]
    assert codec.compiled
    data = codec.generic_encode(state)
    with fast_path_only(codec):
        loaded = codec.decode(data, version)
    assert typed(loaded) == typed(codec.generic_decode(data, version))
    rng = random.Random(section)
    for mutated in mutations(data, rng, budget(codec, data, version)):
        assert_same_decode(codec, mutated, version)


def _fixed_encodings() -> list[tuple[str, CompiledCodec, bytes]]:
    encodings = []
    for device, release in DEVICE_RELEASES:
        state = device.fixed_states(release)[-1]
        for fmt in FORMATS:
            codec = compile_codec(release.description, fmt)
            data = codec.generic_encode(state)
            encodings.append((f"{device.name}-{release.name}-{fmt}", codec, data))
            if fmt == "ber":
                encodings.append((f"{device.name}-{release.name}-ber-indefinite", codec, to_indefinite(data)))
    return encodings


FIXED = _fixed_encodings()


@pytest.mark.parametrize("index", range(len(FIXED)), ids=[label for label, *_ in FIXED])
def test_fixed_encodings_truncated_and_flipped(index: int) -> None:
    _label, codec, data = FIXED[index]
    assert_same_decode(codec, data)
    rng = random.Random(index)
    count = budget(codec, data)
    for cut in sorted(rng.sample(range(len(data)), min(len(data), count))):
        assert_same_decode(codec, data[:cut])
    for mutated in mutations(data, rng, count):
        assert_same_decode(codec, mutated)


def _nested(depth: int) -> Description:
    kind: Any = Scalar("uint8")
    for index in range(depth):
        kind = Struct(f"level{index}", (Field("inner", kind),))
    return Description("deep", 1, 1, (Field("outer", kind),))


@pytest.mark.parametrize(
    ("description", "reason"),
    [
        (_nested(70), "nesting deeper than"),
        (
            Description("dev", 1, 1, (Field("s", Struct("s", (Field("x", Scalar("uint8")),)), default={"x": 1}),)),
            "explicit default",
        ),
    ],
    ids=["too-deep", "composite-default"],
)
def test_what_is_not_compiled_is_the_generic_path(description: Description, reason: str) -> None:
    state = {"outer": 1} if description.name == "deep" else {"s": {"x": 3}}
    for fmt in FORMATS:
        codec = compile_codec(description, fmt)
        assert not codec.compiled and reason in (codec.unsupported or "")
        encoded = assert_same_encode(codec, state)
        if encoded[0] == "ok":
            assert_same_decode(codec, codec.generic_encode(state))
    assert compile_codec(_nested(60), "ber").compiled


def test_many_value_gated_fields_are_not_compiled_for_ber() -> None:
    gated = [Field(f"x{index}", Scalar("uint8"), when=("kind", index)) for index in range(8)]
    fields = (Field("kind", Scalar("uint8")), *gated)
    description = Description("dev", 1, 1, fields)
    assert not compile_codec(description, "ber").compiled
    assert compile_codec(description, "qemufile").compiled
    for fmt in FORMATS:
        codec = compile_codec(description, fmt)
        for kind in range(9):
            state = {"kind": kind, **{f"x{index}": index for index in range(8)}}
            assert assert_same_encode(codec, state)[0] == "ok"
            assert_same_decode(codec, codec.generic_encode(state))


def test_non_bytes_input_is_the_generic_paths_business() -> None:
    release = devices.get("slirp").newest
    codec = compile_codec(release.description, "qemufile")
    data = codec.encode(devices.get("slirp").fixed_states(release)[0])
    assert typed(codec.decode(bytearray(data))) == typed(codec.generic_decode(bytearray(data)))
    assert_same_decode(codec, memoryview(data))  # type: ignore[arg-type]


def test_fields_sharing_a_condition_are_packed_with_the_run_that_decides_it() -> None:
    """slirp's IPv4 address shape: ``addr`` and ``port`` exist when ``family`` is 2;
    the legacy encoder writes family (and what precedes it) with them in one call,
    or alone -- and either way the walker's bytes, on the fast path."""
    address = Struct(
        "addr",
        (
            Field("tag", Scalar("uint8")),
            Field("family", Scalar("uint16")),
            Field("addr", Scalar("uint32"), when=("family", 2)),
            Field("port", Scalar("uint16"), when=("family", 2)),
            Field("after", Scalar("uint8")),
        ),
    )
    description = Description(
        "gated",
        1,
        1,
        (
            Field("kind", Scalar("uint8")),
            Field("a", address),
            Field("extra", Scalar("uint32"), when=("kind", 7)),
        ),
    )
    codec = compile_codec(description, "qemufile")
    ipv4 = {"tag": 1, "family": 2, "addr": 0x0A000202, "port": 22, "after": 9}
    ipv6 = {"tag": 1, "family": 10, "addr": 0, "port": 0, "after": 9}
    for kind, extra in ((7, 5), (1, 0)):
        for address_state in (ipv4, ipv6):
            state = {"kind": kind, "a": address_state, "extra": extra}
            expected = codec.generic_encode(state)
            with fast_path_only(codec):
                assert codec.encode(state) == expected
                assert codec.decode(expected) == state
    # A value the fast path does not take still goes to the walker, which decides.
    with pytest.raises(EncodeError):
        codec.encode({"kind": 1, "a": {**ipv4, "port": -1}, "extra": 0})


# -- at an offset in a stream ----------------------------------------------------------------


def _load_at(
    load: Callable[..., State], description: Description, data: bytes, start: int, end: int, version: int
) -> Any:
    """What loading ``data[start:end]`` in place gives: the state and end position, or the error."""
    visitor = QemuFileInputVisitor(data, start, end=end)
    try:
        return typed(load(visitor, description, version)), visitor.position
    except MigcompatError as error:
        return type(error).__name__, str(error), error.offset, error.path


@pytest.mark.parametrize("section", range(len(CAPTURED)), ids=[label for label, *_ in CAPTURED])
def test_sections_load_in_place_as_the_walker_loads_them(section: int) -> None:
    """A stream parser loads each section where it stands, bounded by the section's end; the
    compiled path must give the walker's state, position and errors, whatever follows the bound."""
    _label, description, version, state = CAPTURED[section]
    body = compile_codec(description, "qemufile").generic_encode(state)
    rng = random.Random(section)
    for after in (
        b"",
        b"\x7e\x00\x00\x00\x02",
        b"\x05" + bytes([len(description.name) + 1]) + description.name.encode(),
    ):
        before = rng.randbytes(rng.randrange(1, 64))
        data = before + body + after + rng.randbytes(16)
        start, end = len(before), len(before) + len(body)
        for bound in (end, end - 1, max(start, end - 3), len(data)):
            fast = _load_at(compiled.load, description, data, start, bound, version)
            assert fast == _load_at(vmstate.load, description, data, start, bound, version)
        assert _load_at(compiled.load, description, data, start, end, version) == (typed(state), end)
    for mutated in mutations(body, rng, 20):
        data = b"\x00" * 3 + mutated + b"\x7e\x05\x05"
        bound = 3 + len(mutated)
        fast = _load_at(compiled.load, description, data, 3, bound, version)
        assert fast == _load_at(vmstate.load, description, data, 3, bound, version)
