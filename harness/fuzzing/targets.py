"""The fuzz targets: what each one feeds to which decoder, and the invariant it holds.

Why: a migration stream arrives from another host, so every decoder is attack
surface. The fuzz logic lives here, importable without atheris, so that pytest
replays every seed and regression through exactly the code the fuzzer ran, and
so that ``fuzz/<name>_fuzzer.py`` (the OSS-Fuzz / ClusterFuzzLite convention) and
``migcompat fuzz`` are thin entry points over one table, :data:`TARGETS`.

The invariant of every target (DESIGN.md section 9): the input loads, or it is
rejected with the project's :class:`~migcompat.errors.DecodeError` family. Any other
exception (the target's own checks raise ``AssertionError`` subclasses), a hang
past the per-input timeout, or memory beyond the run's limit is a finding. A
target function returns a short verdict for inputs it accepts and raises the
DecodeError for inputs it rejects; :func:`judge` turns both into a verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from migcompat.errors import DecodeError

if TYPE_CHECKING:
    from migcompat.model.vmstate import Description

ACCEPTED = "accepted"
REJECTED = "rejected"


@dataclass(frozen=True)
class Target:
    """One fuzz target."""

    name: str
    #: The fuzz logic: takes the input bytes, returns a verdict or raises a DecodeError.
    run: Callable[[bytes], str]
    #: One line: what is fed to what.
    summary: str
    #: libFuzzer's ``max_len``: the seeds fit, and mutants stay this small.
    max_len: int
    #: The dictionary file (under ``fuzz/``) libFuzzer uses, if any.
    dictionary: str | None = None
    #: Python modules the target needs beyond the project's dependencies.
    needs: tuple[str, ...] = ()


def judge(target: Target, data: bytes) -> str:
    """The target's verdict on ``data``; anything but a DecodeError propagates (a finding)."""
    try:
        return target.run(data)
    except DecodeError:
        return REJECTED


# -- ber_input_fuzzer ---------------------------------------------------------------


@cache
def ber_input_description() -> Description:
    """A small description that reaches every part of the BER input visitor: every
    scalar kind, fixed and field-sized buffers, a nested struct, count- and
    sentinel-framed lists, a fixed array, a nested description with its own
    subsection, a critical and a non-critical subsection, and -- because it
    accepts unknown members -- the skipping of data it does not know.

    Member names are one or two letters: signatures are most of a BER stream's
    bytes, and short ones keep inputs small and the fuzzer fast.
    """
    from migcompat.model.vmstate import Array, Buffer, Description, Field, FieldRef, Scalar, Struct, Subsection
    from migcompat.wire.visitor import Framing, ListFraming

    queue = Struct(
        "q",
        (
            Field("n", Scalar("uint32")),
            Field("d", Scalar("uint64")),
            Field("i", Scalar("uint16")),
            Field("e", Scalar("bool")),
        ),
    )
    socket = Struct("s", (Field("f", Scalar("int32")), Field("p", Scalar("str")), Field("b", Buffer(4))))
    nested = Description(
        "n",
        2,
        1,
        (Field("a", Scalar("int8")), Field("b", Scalar("int64"), since=2)),
        (Subsection(Description("n/o", 1, 1, (Field("o", Scalar("bool")),))),),
    )
    return Description(
        "d",
        3,
        1,
        (
            Field("st", Scalar("uint8")),
            Field("ft", Scalar("uint64")),
            Field("qs", Scalar("int16"), since=2),
            Field("sm", Scalar("int32")),
            Field("cl", Scalar("uint16")),
            Field("cf", Buffer(FieldRef("cl"))),
            Field("nm", Scalar("str")),
            Field("vq", Array(queue, framing=Framing(ListFraming.COUNT, count_bits=16), max_length=8)),
            Field("so", Array(socket, framing=Framing(ListFraming.SENTINEL, marker=42, terminator=0))),
            Field("is", Array(Scalar("uint8"), length=3)),
            Field("ne", nested),
        ),
        (
            Subsection(Description("d/r", 1, 1, (Field("r", Array(Scalar("uint16"), length=2)),))),
            Subsection(Description("d/f", 1, 1, (Field("f", Scalar("bool")),)), critical=False),
        ),
        accept_unknown=True,
    )


def ber_input(data: bytes) -> str:
    """Raw bytes into the BER input visitor, loading :func:`ber_input_description`.

    Invariant: the input loads or is rejected with a DecodeError; nothing else,
    no hang, no memory beyond the limits of :mod:`migcompat.limits`.
    """
    from migcompat.model import vmstate
    from migcompat.wire.ber import BerInputVisitor

    description = ber_input_description()
    visitor = BerInputVisitor(data)
    # vmstate.load() is walk() from freshly built defaults; the walker never
    # changes them, so building them once keeps this target's work to the decoder.
    vmstate.walk(visitor, description, _ber_input_defaults(), description.version_id)
    visitor.finish()
    return ACCEPTED


@cache
def _ber_input_defaults() -> dict[str, Any]:
    return ber_input_description().defaults()


# -- device targets ----------------------------------------------------------------------


def ber_stream(data: bytes) -> str:
    """Whole BER streams into each reference device at each release.

    An input starting like a BER SEQUENCE (0x30) is a whole stream in the BER
    envelope, parsed as ``migcompat inspect`` parses it, every section through
    its device. Any other input is ``[destination][version]`` + the BER encoding
    of one device state: loaded at the chosen release and stream version by the
    generic walker, the phase-1 visit function and the compiled codec.

    Invariant: the input loads or is rejected with a DecodeError; the load paths
    agree (same state, or all reject); what loads saves and loads back to
    itself; a parsed stream written again parses to the same stream.
    """
    if data[:1] == b"\x30":
        return _whole_ber_stream(data)
    from migcompat.fuzzing.device_loads import load_everywhere, select

    destination, payload = select(data)
    load_everywhere("ber", destination, payload)
    return ACCEPTED


def _whole_ber_stream(data: bytes) -> str:
    from migcompat.devices import resolve_section
    from migcompat.fuzzing.device_loads import PathsDisagree
    from migcompat.qemu import stream

    parsed = stream.parse_ber(data, resolve_section)
    try:
        again = stream.parse_ber(stream.encode_ber(parsed, resolve_section), resolve_section)
    except Exception as error:
        raise PathsDisagree(
            f"a parsed BER stream does not write and parse again: {type(error).__name__}: {error}"
        ) from error
    if again != parsed:
        raise PathsDisagree("a parsed BER stream, written again, parses to a different stream")
    return ACCEPTED


def qemufile_device(data: bytes) -> str:
    """Legacy bytes into each device's load path.

    The input is ``[destination][version]`` + legacy bytes: loaded at the chosen
    device release and stream version by the generic walker, the phase-1 visit
    function and the compiled codec.

    Invariant: the input loads or is rejected with a DecodeError; the three paths
    agree (same state, or all reject); what loads saves to the same bytes on
    every path and loads back to itself.
    """
    from migcompat.fuzzing.device_loads import load_everywhere, select

    destination, payload = select(data)
    load_everywhere("qemufile", destination, payload)
    return ACCEPTED


def qemu_stream(data: bytes) -> str:
    """Raw bytes into the QEMU stream parser behind ``migcompat inspect``.

    Invariant: the input parses or is rejected with a DecodeError; a parsed
    stream written again in QEMU's format, and converted to BER and back (as
    ``migcompat convert`` does), parses to the same stream.
    """
    from migcompat.devices import resolve_section
    from migcompat.fuzzing.device_loads import PathsDisagree
    from migcompat.qemu import stream

    parsed = stream.parse_qemu(data, resolve_section)
    try:
        rewritten = stream.parse_qemu(stream.encode_qemu(parsed, resolve_section), resolve_section)
        converted = stream.parse_ber(stream.encode_ber(parsed, resolve_section), resolve_section)
    except Exception as error:
        raise PathsDisagree(f"a parsed QEMU stream does not convert: {type(error).__name__}: {error}") from error
    if rewritten != parsed:
        raise PathsDisagree("a parsed QEMU stream, written again, parses to a different stream")
    if converted != parsed:
        raise PathsDisagree("a parsed QEMU stream, converted to BER, parses to a different stream")
    return ACCEPTED


def ber_differential(data: bytes) -> str:
    """The same bytes into our BER reading and pyasn1's BER decoder.

    Invariant (see :mod:`migcompat.fuzzing.differential` for exactly what is
    compared): both accept with the same tag-length-value tree, or both reject;
    a disagreement is either one of pyasn1's known differences from X.690 or a
    finding. Our side never raises anything but a DecodeError.
    """
    from migcompat.fuzzing.differential import compare

    return compare(data)


def ber_native(data: bytes) -> str:
    """The same bytes into the native BER path and the generic path (first byte:
    which description, see :mod:`migcompat.fuzzing.native_differential`).

    Invariant: the native path gives up or reads what the generic path reads,
    never accepts what it refuses, and writes the generic bytes of every state
    read; the generic path rejects only with a DecodeError.
    """
    from migcompat.fuzzing.native_differential import compare

    compare(data, native_descriptions())
    return ACCEPTED


@cache
def native_descriptions() -> tuple[Description, Description]:
    """The native target's two descriptions: ber_input's, and the same without subsections."""
    import dataclasses

    full = ber_input_description()
    return full, dataclasses.replace(full, subsections=())


# -- the structured target ----------------------------------------------------------------


@cache
def _round_trip_test() -> Any:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from migcompat.fuzzing.round_trip import check_round_trip, release_and_state

    @settings(database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def round_trip(data: st.DataObject) -> None:
        device, release, state, fmt = release_and_state(data)
        check_round_trip(device, release, state, (fmt,))

    return round_trip


def device_round_trip(data: bytes) -> str:
    """Device round trips driven by hypothesis: the input bytes choose a device
    release (each device's ``fuzz_releases``: virtio's with VIRTIO_QUEUE_MAX
    scaled down), a valid state of it (the device's own strategy) and a wire
    format; the state is saved and loaded through every path in that format.

    Invariant: every valid state saves and loads back to itself on every path,
    the paths write the same bytes, and qemufile -> BER -> qemufile reproduces the
    bytes. Inputs hypothesis cannot use are ignored.
    """
    _round_trip_test().hypothesis.fuzz_one_input(data)
    return ACCEPTED


TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        Target(
            "ber_input_fuzzer",
            ber_input,
            "raw bytes into the BER input visitor (a small description reaching every visitor method)",
            max_len=1024,
            dictionary="ber.dict",
        ),
        Target(
            "ber_stream_fuzzer",
            ber_stream,
            "whole BER streams, and BER device states into every device release by every load path",
            max_len=8192,
            dictionary="ber.dict",
        ),
        Target(
            "qemufile_device_fuzzer",
            qemufile_device,
            "legacy bytes into every device release by every load path",
            max_len=8192,
            dictionary="qemu.dict",
        ),
        Target(
            "qemu_stream_fuzzer",
            qemu_stream,
            "raw bytes into the QEMU stream parser behind migcompat inspect, and convert",
            max_len=16384,
            dictionary="qemu.dict",
        ),
        Target(
            "ber_differential_fuzzer",
            ber_differential,
            "the same bytes into our BER reading and pyasn1's decoder: same verdict, same tree",
            max_len=1024,
            dictionary="ber.dict",
            needs=("pyasn1",),
        ),
        Target(
            "ber_native_fuzzer",
            ber_native,
            "the same bytes into the native BER path and the generic path: same state or a give-up, same bytes",
            max_len=1024,
            dictionary="ber.dict",
        ),
        Target(
            "device_round_trip_fuzzer",
            device_round_trip,
            "hypothesis-drawn valid device states saved and loaded through every format and path",
            max_len=8192,
        ),
    )
}


def get(name: str) -> Target:
    """The target called ``name`` (with or without the ``_fuzzer`` suffix)."""
    target = TARGETS.get(name) or TARGETS.get(f"{name}_fuzzer")
    if target is None:
        from migcompat.errors import UsageError

        raise UsageError(f"unknown fuzz target {name!r} (targets: {', '.join(TARGETS)})")
    return target


__all__ = ["ACCEPTED", "REJECTED", "TARGETS", "Target", "get", "judge"]
