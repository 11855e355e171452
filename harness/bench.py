"""Codec benchmark: what the self-describing BER wire costs next to the legacy one.

Why: the BER visitors are pitched as a replacement for QEMU's legacy stream, so
the question a reviewer asks is "how much slower is it, and is the pure-Python
encoder reasonable?". The answer needs reference points measured in the same
process on the same state: each wire through the product's fast path, the
description compiled by :mod:`harness.compiled` (``qemufile``, ``ber``), and
through the generic walker with the visitors that define it
(``qemufile-walker``, ``ber-walker``); the legacy bytes packed by hand with
precompiled :class:`struct.Struct` objects (``struct``, the floor for that wire
in pure Python), the in-memory form (``dict``), and a general-purpose ASN.1
library producing the very same BER bytes (``pyasn1``, optional). Numbers from
different runs or machines are not comparable; ratios within one run are.

Strategy:

* The workload is a virtio-shaped :class:`~harness.vmstate.Description` -- a
  header and a be32-count-prefixed list of N queues -- at N = 8, 64 and 1024,
  with states generated from a seeded :class:`random.Random`, so every run
  measures the same values.
* Each codec is a pair of pure functions (state -> encoded, encoded -> state)
  in one table. Before anything is timed, every codec must round-trip the state,
  the compiled codecs must write their walker's bytes, ``struct`` the qemufile
  bytes and ``pyasn1`` the BER bytes; otherwise :class:`BenchmarkCheckFailed` is
  raised -- a fast codec that writes something else proves nothing.
* Timing follows :mod:`timeit`'s habits: :func:`time.perf_counter`, the garbage
  collector paused, a warm-up that also calibrates the iteration count so each
  measurement takes about :data:`FULL_BUDGET_S` seconds, several rounds, and the
  median round.
* Results are plain data; :func:`to_json` is the source of truth and
  :func:`render_text` is rendered from it. Nothing here touches files.
"""

from __future__ import annotations

import gc
import json
import platform
import random
import statistics
import struct
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter
from typing import Any

from harness import vmstate
from harness.compiled import compile_codec
from harness.errors import UsageError
from harness.visitor import Framing, ListFraming
from harness.visitors.ber import CODES, BerInputVisitor, BerOutputVisitor
from harness.visitors.dict import DictInputVisitor, DictOutputVisitor
from harness.visitors.qemufile import QemuFileInputVisitor, QemuFileOutputVisitor
from harness.vmstate import Array, Buffer, Description, Field, FieldType, Scalar, State, Struct

#: Version of the JSON report's layout; bump when a key changes meaning.
FORMAT_VERSION = 1

# -- the workload -----------------------------------------------------------

#: Size of the header's opaque buffer: a PCI config space is 256 bytes.
CONFIG_SIZE = 256
#: Queue counts: a small device, QEMU's VIRTIO_QUEUE_MAX before 2.4 (64), and
#: VIRTIO_QUEUE_MAX since (1024).
WORKLOADS: dict[str, int] = {"virtio-8": 8, "virtio-64": 64, "virtio-1024": 1024}
#: Seed of the generated states (each workload adds its queue count).
SEED = 0x5EED

_U8, _U16, _U32, _U64, _BOOL = Scalar("uint8"), Scalar("uint16"), Scalar("uint32"), Scalar("uint64"), Scalar("bool")

HEADER_FIELDS: tuple[Field, ...] = (
    Field("host_features", _U64),
    Field("guest_features", _U64),
    Field("status", _U8),
    Field("isr", _U8),
    Field("queue_sel", _U16),
    Field("config", Buffer(CONFIG_SIZE)),
)
QUEUE = Struct(
    "queue",
    (
        Field("num", _U32),
        Field("desc", _U64),
        Field("avail", _U64),
        Field("used", _U64),
        Field("last_avail_idx", _U16),
        Field("used_idx", _U16),
        Field("vector", _U16),
        Field("notification", _BOOL),
    ),
)
#: The benchmark's device: the header, then the queues behind a be32 count.
VIRTIO = Description(
    "virtio",
    1,
    1,
    (*HEADER_FIELDS, Field("queues", Array(QUEUE, framing=Framing(ListFraming.COUNT, count_bits=32)))),
)
HEADER_NAMES = tuple(f.name for f in HEADER_FIELDS)
QUEUE_NAMES = tuple(f.name for f in QUEUE.fields)


def make_state(queues: int, seed: int = SEED) -> State:
    """A virtio state with ``queues`` queues, the same for the same arguments.

    Values are shaped like real ones (page-aligned guest addresses below 1 TiB,
    power-of-two ring sizes) so that variable-length encodings get realistic sizes.
    """
    rng = random.Random(seed + queues)
    state: State = {
        "host_features": rng.getrandbits(64),
        "guest_features": rng.getrandbits(64),
        "status": rng.getrandbits(8),
        "isr": rng.getrandbits(8),
        "queue_sel": rng.randrange(queues),
        "config": rng.randbytes(CONFIG_SIZE),
    }
    state["queues"] = [
        {
            "num": rng.choice((0, 128, 256, 1024)),
            "desc": rng.getrandbits(40) & ~0xFFF,
            "avail": rng.getrandbits(40) & ~0xFFF,
            "used": rng.getrandbits(40) & ~0xFFF,
            "last_avail_idx": rng.getrandbits(16),
            "used_idx": rng.getrandbits(16),
            "vector": rng.choice((rng.getrandbits(4), 0xFFFF)),
            "notification": rng.random() < 0.5,
        }
        for _ in range(queues)
    ]
    return state


# -- the codecs -------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    """One way to turn the workload's state into its encoded form and back."""

    name: str
    encode: Callable[[State], Any]
    decode: Callable[[Any], State]
    #: True when the encoded form is bytes on a wire (sizes and MB/s apply).
    is_bytes: bool = True


class BenchmarkCheckFailed(AssertionError):
    """A codec does not round-trip, or does not write the wire it stands for.

    Deliberately outside :class:`~harness.errors.MigcompatError`: this is a bug in
    a codec, not an input rejection, and must surface with its traceback.
    """


class CodecUnavailable(Exception):
    """An optional codec cannot be built (its library is missing)."""


def _dict_codec(description: Description) -> Codec:
    def encode(state: State) -> Any:
        return vmstate.encode(DictOutputVisitor(), description, state)

    def decode(encoded: Any) -> State:
        return vmstate.load(DictInputVisitor(encoded), description, description.version_id)

    return Codec("dict", encode, decode, is_bytes=False)


def _qemufile_codec(description: Description) -> Codec:
    """The legacy wire as the product writes it: the compiled description."""
    codec = compile_codec(description, "qemufile")
    return Codec("qemufile", codec.encode, codec.decode)


def _ber_codec(description: Description) -> Codec:
    """The BER wire as the product writes it: the compiled description."""
    codec = compile_codec(description, "ber")
    return Codec("ber", codec.encode, codec.decode)


def _qemufile_walker_codec(description: Description) -> Codec:
    """The legacy wire through the generic walker and the qemufile visitors."""

    def encode(state: State) -> bytes:
        visitor = QemuFileOutputVisitor()
        vmstate.save(visitor, description, state)
        return visitor.result()

    def decode(data: bytes) -> State:
        visitor = QemuFileInputVisitor(data)
        state = vmstate.load(visitor, description, description.version_id)
        visitor.finish()
        return state

    return Codec("qemufile-walker", encode, decode)


def _ber_walker_codec(description: Description) -> Codec:
    """The BER wire through the generic walker and the BER visitors."""

    def encode(state: State) -> bytes:
        visitor = BerOutputVisitor()
        vmstate.save(visitor, description, state)
        return visitor.result()

    def decode(data: bytes) -> State:
        visitor = BerInputVisitor(data)
        state = vmstate.load(visitor, description, description.version_id)
        visitor.finish()
        return state

    return Codec("ber-walker", encode, decode)


#: The header on the legacy wire, with the queue count that follows it.
_HEADER_STRUCT = struct.Struct(f">QQBBH{CONFIG_SIZE}sI")
#: One queue on the legacy wire (QEMU writes a bool as one byte, 0 or 1).
_QUEUE_STRUCT = struct.Struct(">IQQQHHH?")


def _struct_codec(description: Description) -> Codec:
    """Hand-packed legacy bytes: the fastest pure-Python form of the qemufile wire."""
    if description is not VIRTIO:
        raise CodecUnavailable("the struct codec is written for the virtio workload only")
    header_struct, queue_struct = _HEADER_STRUCT, _QUEUE_STRUCT
    pack_header, pack_queue = header_struct.pack, queue_struct.pack
    header_values = itemgetter(*HEADER_NAMES)
    queue_values = itemgetter(*QUEUE_NAMES)

    def encode(state: State) -> bytes:
        queues = state["queues"]
        return pack_header(*header_values(state), len(queues)) + b"".join(
            [pack_queue(*queue_values(queue)) for queue in queues]
        )

    def decode(data: bytes) -> State:
        *header, count = header_struct.unpack_from(data, 0)
        expected = header_struct.size + count * queue_struct.size
        if len(data) != expected:
            raise ValueError(f"{len(data)} bytes where a count of {count} needs {expected}")
        state: State = dict(zip(HEADER_NAMES, header, strict=True))
        unpack = queue_struct.unpack_from
        step = queue_struct.size
        state["queues"] = [
            dict(zip(QUEUE_NAMES, unpack(data, offset), strict=True))
            for offset in range(header_struct.size, expected, step)
        ]
        return state

    return Codec("struct", encode, decode)


def _signature(fields: Iterable[Field], *, description: bool) -> str:
    """The text of the BER visitor's struct signature for ``fields``."""
    parts = [f"{f.name}:{_code(f.type)}" for f in fields]
    if description:
        parts.append("subsections:list")
    return " ".join(parts)


def _code(kind: FieldType) -> str:
    if isinstance(kind, Scalar):
        return CODES[kind.kind]
    if isinstance(kind, Buffer):
        return CODES["buffer"]
    if isinstance(kind, Array):
        return CODES["list"]
    return CODES["struct"]


def _pyasn1_codec(description: Description) -> Codec:
    """The BER visitor's wire, written and read by pyasn1 from an ASN.1 spec.

    The spec mirrors our layout member for member -- each SEQUENCE opens with its
    UTF8String signature, a list is a SEQUENCE OF a CHOICE between its element
    code and an element -- so that both codecs produce the same bytes. The DER
    encoder is used because it writes BOOLEAN true as 0xff, as ours does. The
    INTEGERs carry no range constraints, so pyasn1 checks less than our decoder
    does (widths, signatures, minimal encodings): the comparison flatters pyasn1.
    """
    if description is not VIRTIO:
        raise CodecUnavailable("the pyasn1 codec is written for the virtio workload only")
    try:
        from pyasn1.codec.der import decoder, encoder  # type: ignore[import-untyped]
        from pyasn1.type import char, namedtype, univ  # type: ignore[import-untyped]
    except ImportError:
        raise CodecUnavailable("pyasn1 is not installed (pip install 'migcompat[bench]')") from None

    header_signature = _signature(description.fields, description=True)
    queue_signature = _signature(QUEUE.fields, description=False)
    element_code = CODES["struct"]

    class Queue(univ.Sequence):  # type: ignore[misc]
        componentType = namedtype.NamedTypes(
            namedtype.NamedType("signature", char.UTF8String()),
            *(namedtype.NamedType(name, univ.Integer()) for name in QUEUE_NAMES[:-1]),
            namedtype.NamedType(QUEUE_NAMES[-1], univ.Boolean()),
        )

    class QueueListItem(univ.Choice):  # type: ignore[misc]
        componentType = namedtype.NamedTypes(
            namedtype.NamedType("code", char.UTF8String()),
            namedtype.NamedType("queue", Queue()),
        )

    class QueueList(univ.SequenceOf):  # type: ignore[misc]
        componentType = QueueListItem()

    class Subsections(univ.Sequence):  # type: ignore[misc]
        componentType = namedtype.NamedTypes(namedtype.NamedType("code", char.UTF8String()))

    class Virtio(univ.Sequence):  # type: ignore[misc]
        componentType = namedtype.NamedTypes(
            namedtype.NamedType("signature", char.UTF8String()),
            *(namedtype.NamedType(name, univ.Integer()) for name in HEADER_NAMES[:-1]),
            namedtype.NamedType(HEADER_NAMES[-1], univ.OctetString()),
            namedtype.NamedType("queues", QueueList()),
            namedtype.NamedType("subsections", Subsections()),
        )

    spec = Virtio()
    header_integers = HEADER_NAMES[:-1]
    queue_integers = QUEUE_NAMES[:-1]
    bool_name = QUEUE_NAMES[-1]
    buffer_name = HEADER_NAMES[-1]

    def encode(state: State) -> bytes:
        top = Virtio()
        top["signature"] = header_signature
        for name in header_integers:
            top[name] = state[name]
        top[buffer_name] = state[buffer_name]
        queues = QueueList()
        first = QueueListItem()
        first["code"] = element_code if state["queues"] else ""
        queues.append(first)
        for values in state["queues"]:
            queue = Queue()
            queue["signature"] = queue_signature
            for name in queue_integers:
                queue[name] = values[name]
            queue[bool_name] = values[bool_name]
            item = QueueListItem()
            item["queue"] = queue
            queues.append(item)
        top["queues"] = queues
        subsections = Subsections()
        subsections["code"] = ""
        top["subsections"] = subsections
        data: bytes = encoder.encode(top)
        return data

    def decode(data: bytes) -> State:
        top, rest = decoder.decode(data, asn1Spec=spec)
        if rest:
            raise ValueError(f"{len(rest)} trailing bytes")
        if str(top["signature"]) != header_signature:
            raise ValueError("header signature differs")
        state: State = {name: int(top[name]) for name in header_integers}
        state[buffer_name] = top[buffer_name].asOctets()
        queues: list[State] = []
        for item in list(top["queues"])[1:]:
            queue = item["queue"]
            if str(queue["signature"]) != queue_signature:
                raise ValueError("queue signature differs")
            values: State = {name: int(queue[name]) for name in queue_integers}
            values[bool_name] = bool(queue[bool_name])
            queues.append(values)
        state["queues"] = queues
        return state

    return Codec("pyasn1", encode, decode)


#: Every codec, in report order: name -> builder for a description.
CODEC_BUILDERS: dict[str, Callable[[Description], Codec]] = {
    "dict": _dict_codec,
    "qemufile": _qemufile_codec,
    "qemufile-walker": _qemufile_walker_codec,
    "ber": _ber_codec,
    "ber-walker": _ber_walker_codec,
    "pyasn1": _pyasn1_codec,
    "struct": _struct_codec,
}
OPS = ("encode", "decode")
#: Pairs of codecs that must write identical bytes: (codec, the codec whose wire it reproduces).
SAME_WIRE = (("qemufile", "qemufile-walker"), ("ber", "ber-walker"), ("struct", "qemufile"), ("pyasn1", "ber"))


def build_codecs(description: Description = VIRTIO) -> tuple[dict[str, Codec], dict[str, str]]:
    """The codecs that can run here, and why each other one cannot."""
    codecs: dict[str, Codec] = {}
    skipped: dict[str, str] = {}
    for name, build in CODEC_BUILDERS.items():
        try:
            codecs[name] = build(description)
        except CodecUnavailable as reason:
            skipped[name] = str(reason)
    return codecs, skipped


def check_codecs(codecs: Mapping[str, Codec], state: State) -> dict[str, Any]:
    """Encode ``state`` with each codec, check it, and return the encoded forms.

    Raises :class:`BenchmarkCheckFailed` when a codec does not give the state back
    or does not write the same bytes as the codec whose wire it stands for.
    """
    encoded = {name: codec.encode(state) for name, codec in codecs.items()}
    for name, codec in codecs.items():
        back = codec.decode(encoded[name])
        if back != state:
            raise BenchmarkCheckFailed(f"{name}: decode(encode(state)) differs from the state")
    for copy, original in SAME_WIRE:
        if copy in encoded and original in encoded and encoded[copy] != encoded[original]:
            raise BenchmarkCheckFailed(
                f"{copy} writes {len(encoded[copy])} bytes that differ from {original}'s {len(encoded[original])}"
            )
    return encoded


# -- timing -----------------------------------------------------------------

#: Seconds spent on one measurement (all its rounds) in a full run; ~0.2 s keeps
#: timer noise far below 1% while the whole benchmark stays under a minute.
FULL_BUDGET_S = 0.2
#: Rounds per measurement in a full run; the median of 5 shrugs off one outlier.
FULL_ROUNDS = 5
#: Quick runs (tests, smoke checks) only show that everything runs.
QUICK_BUDGET_S = 0.02
QUICK_ROUNDS = 3


@dataclass(frozen=True)
class Timing:
    """Median seconds per call and how they were obtained."""

    seconds: float
    iterations: int
    rounds: int


def measure(call: Callable[[], object], *, budget_s: float, rounds: int) -> Timing:
    """Time ``call``: warm up while calibrating, then ``rounds`` rounds; median.

    The iteration count is chosen so that one round takes ``budget_s / rounds``
    seconds (at least one call per round, so a very slow call takes longer).
    """
    if budget_s <= 0 or rounds < 1:
        raise ValueError("budget_s must be positive and rounds at least 1")
    per_round = budget_s / rounds
    clock = time.perf_counter
    enabled = gc.isenabled()
    gc.disable()
    try:
        call()  # warm-up: caches, lazily built tables
        iterations = 1
        while True:
            start = clock()
            for _ in range(iterations):
                call()
            elapsed = clock() - start
            if elapsed >= per_round / 4:
                break
            iterations *= 2
        iterations = max(1, round(iterations * per_round / elapsed))
        samples = []
        for _ in range(rounds):
            start = clock()
            for _ in range(iterations):
                call()
            samples.append((clock() - start) / iterations)
    finally:
        if enabled:
            gc.enable()
    return Timing(statistics.median(samples), iterations, rounds)


# -- results ----------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """One codec doing one operation on one workload."""

    workload: str
    codec: str
    op: str
    ops_per_s: float
    #: Encoded size in bytes; None for a codec with no wire (``dict``).
    bytes: int | None
    iterations: int
    rounds: int

    @property
    def mb_per_s(self) -> float | None:
        """Encoded megabytes (10**6 bytes) produced or consumed per second."""
        return None if self.bytes is None else self.bytes * self.ops_per_s / 1e6


@dataclass(frozen=True)
class Ratio:
    """How many times as fast ``numerator`` is as ``denominator`` (ops/s ÷ ops/s)."""

    workload: str
    op: str
    numerator: str
    denominator: str
    value: float
    target_min: float | None = None
    target_max: float | None = None

    @property
    def name(self) -> str:
        return f"{self.numerator}/{self.denominator}"

    @property
    def meets_target(self) -> bool | None:
        if self.target_min is None and self.target_max is None:
            return None
        low_ok = self.target_min is None or self.value >= self.target_min
        high_ok = self.target_max is None or self.value <= self.target_max
        return low_ok and high_ok


#: The ratios reported per workload and op: (numerator, denominator, min, max).
#: The product's fast path has targets: BER at least 20x as fast as pyasn1,
#: qemufile at most 2x as fast as BER, hand-packed struct at most 2x as fast as
#: qemufile. The same ratios for the generic walker, and what compiling buys,
#: are reported without targets.
RATIOS: tuple[tuple[str, str, float | None, float | None], ...] = (
    ("ber", "pyasn1", 20.0, None),
    ("qemufile", "ber", None, 2.0),
    ("struct", "qemufile", None, 2.0),
    ("ber-walker", "pyasn1", None, None),
    ("qemufile-walker", "ber-walker", None, None),
    ("struct", "qemufile-walker", None, None),
    ("qemufile", "qemufile-walker", None, None),
    ("ber", "ber-walker", None, None),
)


@dataclass(frozen=True)
class BenchResults:
    measurements: tuple[Measurement, ...]
    ratios: tuple[Ratio, ...]
    #: Codecs that could not run, with the reason.
    skipped: dict[str, str] = field(default_factory=dict)
    quick: bool = False
    budget_s: float = FULL_BUDGET_S
    rounds: int = FULL_ROUNDS

    def get(self, workload: str, codec: str, op: str) -> Measurement | None:
        for m in self.measurements:
            if (m.workload, m.codec, m.op) == (workload, codec, op):
                return m
        return None


def _ratios(measurements: Iterable[Measurement]) -> list[Ratio]:
    speed = {(m.workload, m.codec, m.op): m.ops_per_s for m in measurements}
    workloads = list(dict.fromkeys(workload for workload, _codec, _op in speed))
    ratios = []
    for workload in workloads:
        for numerator, denominator, low, high in RATIOS:
            for op in OPS:
                top = speed.get((workload, numerator, op))
                bottom = speed.get((workload, denominator, op))
                if top is not None and bottom is not None:
                    ratios.append(Ratio(workload, op, numerator, denominator, top / bottom, low, high))
    return ratios


def run(quick: bool = False, workloads: list[str] | None = None) -> BenchResults:
    """Check, then time, every available codec on every requested workload."""
    names = list(WORKLOADS) if workloads is None else workloads
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown:
        raise UsageError(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(WORKLOADS)}")
    budget_s, rounds = (QUICK_BUDGET_S, QUICK_ROUNDS) if quick else (FULL_BUDGET_S, FULL_ROUNDS)
    codecs, skipped = build_codecs(VIRTIO)
    measurements: list[Measurement] = []
    for workload in names:
        state = make_state(WORKLOADS[workload])
        encoded = check_codecs(codecs, state)
        for name, codec in codecs.items():
            size = len(encoded[name]) if codec.is_bytes else None
            calls: dict[str, Callable[[], object]] = {
                "encode": partial(codec.encode, state),
                "decode": partial(codec.decode, encoded[name]),
            }
            for op in OPS:
                timing = measure(calls[op], budget_s=budget_s, rounds=rounds)
                measurements.append(
                    Measurement(workload, name, op, 1.0 / timing.seconds, size, timing.iterations, timing.rounds)
                )
    return BenchResults(tuple(measurements), tuple(_ratios(measurements)), skipped, quick, budget_s, rounds)


# -- reports ----------------------------------------------------------------


def to_json(results: BenchResults) -> dict[str, Any]:
    """The report as JSON-ready data; the text report is rendered from this."""
    return {
        "format_version": FORMAT_VERSION,
        "meta": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "quick": results.quick,
            "budget_s": results.budget_s,
            "rounds": results.rounds,
            "statistic": "median",
        },
        "results": [
            {
                "workload": m.workload,
                "codec": m.codec,
                "op": m.op,
                "ops_per_s": m.ops_per_s,
                "mb_per_s": m.mb_per_s,
                "bytes": m.bytes,
                "iterations": m.iterations,
            }
            for m in results.measurements
        ],
        "ratios": [
            {
                "name": r.name,
                "workload": r.workload,
                "op": r.op,
                "numerator": r.numerator,
                "denominator": r.denominator,
                "value": r.value,
                "target_min": r.target_min,
                "target_max": r.target_max,
                "meets_target": r.meets_target,
            }
            for r in results.ratios
        ],
        "skipped": [{"codec": codec, "reason": reason} for codec, reason in results.skipped.items()],
    }


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _target(ratio: Mapping[str, Any]) -> str:
    low, high, met = ratio["target_min"], ratio["target_max"], ratio["meets_target"]
    if met is None:
        return ""
    bound = f">= {low:g}" if high is None else f"<= {high:g}" if low is None else f"{low:g}..{high:g}"
    return f"  (target {bound}: {'met' if met else 'MISSED'})"


def render_text(results: BenchResults) -> str:
    """A human-readable table of every measurement, then the ratios."""
    report = to_json(results)
    meta = report["meta"]
    lines = [
        f"migcompat bench ({'quick' if meta['quick'] else 'full'}; median of {meta['rounds']} rounds, "
        f"~{meta['budget_s']:g} s per measurement; {meta['implementation']} {meta['python']}; MB = 10^6 bytes)",
        "",
        f"{'workload':<12} {'codec':<15} {'op':<7} {'ops/s':>14} {'MB/s':>9} {'bytes':>8}",
    ]
    for row in report["results"]:
        lines.append(
            f"{row['workload']:<12} {row['codec']:<15} {row['op']:<7} {_number(row['ops_per_s']):>14} "
            f"{_number(row['mb_per_s']):>9} {_number(row['bytes'], 0):>8}"
        )
    if report["ratios"]:
        lines += ["", "ratios (ops/s of the first codec ÷ ops/s of the second):"]
        for ratio in report["ratios"]:
            lines.append(
                f"  {ratio['workload']:<12} {ratio['op']:<7} {ratio['name']:<26} {ratio['value']:>8.2f}x"
                + _target(ratio)
            )
    for skipped in report["skipped"]:
        lines += ["", f"skipped codec {skipped['codec']}: {skipped['reason']}"]
    return "\n".join(lines) + "\n"


def main(json_output: bool, quick: bool) -> int:
    """Run the benchmark and print its report (``migcompat bench [--json] [--quick]``)."""
    results = run(quick=quick)
    if json_output:
        print(json.dumps(to_json(results), indent=2))
    else:
        print(render_text(results), end="")
    return 0


__all__ = [
    "BenchResults",
    "BenchmarkCheckFailed",
    "Codec",
    "FORMAT_VERSION",
    "Measurement",
    "Ratio",
    "VIRTIO",
    "WORKLOADS",
    "build_codecs",
    "check_codecs",
    "main",
    "make_state",
    "measure",
    "render_text",
    "run",
    "to_json",
]
