"""Codec benchmark: what the self-describing BER wire costs next to the legacy one.

Why: the BER visitors are pitched as a replacement for QEMU's legacy stream, so
the question a reviewer asks is "how much slower is it, and is the pure-Python
encoder reasonable?". The answer needs reference points measured in the same
process on the same state: each wire through the product's fast path, the
description compiled by :mod:`migcompat.codec.compiled` (``qemufile``, ``ber``), and
through the generic walker with the visitors that define it
(``qemufile-walker``, ``ber-walker``); the legacy bytes packed by hand with
precompiled :class:`struct.Struct` objects (``struct``, the floor for that wire
in pure Python), the in-memory form (``dict``), and a general-purpose ASN.1
library producing the very same BER bytes (``pyasn1``, optional). Numbers from
different runs or machines are not comparable; ratios within one run are.

Strategy:

* The workloads (:mod:`migcompat.perf.workloads`) are virtio with 8, 64 and 1024
  queues and the real slirp v4 description with 10 and 1000 guest-forward
  sockets with 2 KiB buffers, with states generated from a seeded
  :class:`random.Random`, so every run measures the same values. ``pyasn1`` and
  ``asn1tools`` use ASN.1 types generated from the same descriptions
  (:mod:`migcompat.perf.asn1spec`), so all three BER codecs write identical bytes.
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

import json
import platform
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from migcompat import report as matrix_reports
from migcompat.codec import native
from migcompat.codec.compiled import CompiledCodec, Format, compile_codec
from migcompat.errors import UsageError
from migcompat.model import vmstate
from migcompat.model.vmstate import Description, State
from migcompat.perf import memory as memory_module
from migcompat.perf import scaling as scaling_module
from migcompat.perf import streams as streams_module
from migcompat.perf.timing import FULL_BUDGET_S, FULL_ROUNDS, QUICK_BUDGET_S, QUICK_ROUNDS, measure
from migcompat.perf.workloads import CONFIG_SIZE, TARGET_WORKLOADS, VIRTIO, WORKLOADS, Workload, make_virtio_state
from migcompat.progress import Progress
from migcompat.report import svgplot
from migcompat.wire.dict import DictInputVisitor, DictOutputVisitor

#: Version of the JSON report's layout; bump when a key changes meaning.
FORMAT_VERSION = 1


def make_state(queues: int) -> State:
    """The virtio workload's state with ``queues`` queues."""
    return make_virtio_state(queues)


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

    Deliberately outside :class:`~migcompat.errors.MigcompatError`: this is a bug in
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


def _compiled_codec(fmt: Format, description: Description) -> Codec:
    """A byte wire as the product writes it: the compiled description."""
    codec = compile_codec(description, fmt)
    return Codec(fmt, codec.encode, codec.decode)


def _pure_ber_codec(description: Description) -> Codec:
    """The BER wire through the generated Python code alone (the native path off):
    what an install without a C compiler, or ``MIGCOMPAT_PURE_PYTHON=1``, runs."""
    codec = CompiledCodec(description, "ber", native=False)
    return Codec("ber-pure", codec.encode, codec.decode)


def _cbor2_codec(workload: Workload) -> Codec:
    """The same state as CBOR through cbor2 (C core): a self-describing binary
    format a user might pick for speed; other bytes, the same values."""
    try:
        import cbor2
    except ImportError:
        raise CodecUnavailable("cbor2 is not installed (pip install 'migcompat[bench]')") from None
    return Codec("cbor2", cbor2.dumps, cbor2.loads)


def _walker_codec(fmt: Format, description: Description) -> Codec:
    """A byte wire through the generic walker and that wire's visitors (the
    compiled codec's reference path)."""
    codec = compile_codec(description, fmt)
    return Codec(f"{fmt}-walker", codec.generic_encode, codec.generic_decode)


def _struct_codec(workload: Workload) -> Codec:
    """Hand-packed legacy bytes: the fastest pure-Python form of the qemufile wire."""
    codec = workload.hand_codec()
    return Codec("struct", codec.encode, codec.decode)


def _library_codec(name: str, workload: Workload) -> Codec:
    """The BER wire written and read by a general ASN.1 library (``pyasn1`` or
    ``asn1tools``) from types generated from the workload's description."""
    from migcompat.perf import asn1spec

    build = {
        "pyasn1": asn1spec.pyasn1_codec,
        "asn1tools": asn1spec.asn1tools_codec,
        "asn1crypto": asn1spec.asn1crypto_codec,
    }[name]
    try:
        encode, decode = build(workload.description)
    except asn1spec.Asn1LibraryMissing as missing:
        raise CodecUnavailable(str(missing)) from None
    return Codec(name, encode, decode)


#: Every codec, in report order: name -> builder for a description.
CODEC_BUILDERS: dict[str, Callable[[Workload], Codec]] = {
    "dict": lambda workload: _dict_codec(workload.description),
    "qemufile": lambda workload: _compiled_codec("qemufile", workload.description),
    "qemufile-walker": lambda workload: _walker_codec("qemufile", workload.description),
    "ber": lambda workload: _compiled_codec("ber", workload.description),
    "ber-pure": lambda workload: _pure_ber_codec(workload.description),
    "ber-walker": lambda workload: _walker_codec("ber", workload.description),
    "pyasn1": partial(_library_codec, "pyasn1"),
    "asn1tools": partial(_library_codec, "asn1tools"),
    "asn1crypto": partial(_library_codec, "asn1crypto"),
    "cbor2": _cbor2_codec,
    "struct": _struct_codec,
}
OPS = ("encode", "decode")
#: Pairs of codecs that must write identical bytes: (codec, the codec whose wire it reproduces).
SAME_WIRE = (
    ("qemufile", "qemufile-walker"),
    ("ber", "ber-walker"),
    ("ber-pure", "ber-walker"),
    ("struct", "qemufile"),
    ("pyasn1", "ber"),
    ("asn1tools", "ber"),
    ("asn1crypto", "ber"),
)


def build_codecs(workload: Workload, only: Iterable[str] | None = None) -> tuple[dict[str, Codec], dict[str, str]]:
    """The codecs that can run here (all, or ``only`` these), and why each other one cannot."""
    codecs: dict[str, Codec] = {}
    skipped: dict[str, str] = {}
    for name, build in CODEC_BUILDERS.items():
        if only is not None and name not in only:
            continue
        try:
            codecs[name] = build(workload)
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
#: The product's fast path has targets on :data:`~migcompat.perf.workloads.TARGET_WORKLOADS`:
#: BER at least 40x as fast as pyasn1 and 4x as fast as asn1tools, qemufile at
#: most 2x as fast as BER, hand-packed struct at most 2x as fast as qemufile.
#: The same ratios for the generic walker, and what compiling buys, are reported
#: without targets.
RATIOS: tuple[tuple[str, str, float | None, float | None], ...] = (
    ("ber", "pyasn1", 40.0, None),
    ("ber", "asn1tools", 4.0, None),
    ("ber", "asn1crypto", 2.0, None),
    ("cbor2", "ber", None, 2.0),
    ("qemufile", "ber", None, 2.0),
    ("ber", "ber-pure", None, None),
    ("ber-pure", "pyasn1", None, None),
    ("ber-pure", "asn1tools", None, None),
    ("struct", "qemufile", None, 2.0),
    ("ber-walker", "pyasn1", None, None),
    ("ber-walker", "asn1tools", None, None),
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
                    targeted = workload in TARGET_WORKLOADS
                    ratios.append(
                        Ratio(
                            workload,
                            op,
                            numerator,
                            denominator,
                            top / bottom,
                            low if targeted else None,
                            high if targeted else None,
                        )
                    )
    return ratios


def run(quick: bool = False, workloads: list[str] | None = None, codecs: list[str] | None = None) -> BenchResults:
    """Check, then time, every available codec (or ``codecs``) on every requested workload."""
    names = list(WORKLOADS) if workloads is None else workloads
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown:
        raise UsageError(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(WORKLOADS)}")
    unknown = [name for name in codecs or () if name not in CODEC_BUILDERS]
    if unknown:
        raise UsageError(f"unknown codec(s) {', '.join(unknown)}; known: {', '.join(CODEC_BUILDERS)}")
    budget_s, rounds = (QUICK_BUDGET_S, QUICK_ROUNDS) if quick else (FULL_BUDGET_S, FULL_ROUNDS)
    measurements: list[Measurement] = []
    skipped: dict[str, str] = {}
    with Progress("bench", total=len(names)) as progress:
        for workload_name in names:
            progress.note(workload_name)
            _run_workload(workload_name, codecs, budget_s, rounds, measurements, skipped, progress)
            progress.step()
    return BenchResults(tuple(measurements), tuple(_ratios(measurements)), skipped, quick, budget_s, rounds)


def _run_workload(
    workload_name: str,
    codecs: list[str] | None,
    budget_s: float,
    rounds: int,
    measurements: list[Measurement],
    skipped: dict[str, str],
    progress: Progress,
) -> None:
    """Check, then time, the codecs on one workload, adding to ``measurements`` and ``skipped``."""
    workload = WORKLOADS[workload_name]
    built, unavailable = build_codecs(workload, codecs)
    skipped.update(unavailable)
    state = workload.state()
    encoded = check_codecs(built, state)
    for name, codec in built.items():
        size = len(encoded[name]) if codec.is_bytes else None
        calls: dict[str, Callable[[], object]] = {
            "encode": partial(codec.encode, state),
            "decode": partial(codec.decode, encoded[name]),
        }
        for op in OPS:
            progress.note(f"{workload_name}: {name} {op}")
            timing = measure(calls[op], budget_s=budget_s, rounds=rounds)
            measurements.append(
                Measurement(workload_name, name, op, 1.0 / timing.seconds, size, timing.iterations, timing.rounds)
            )


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
            "ber_path": native.status(),
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
        f"ber runs {meta['ber_path']}; ber-pure is the generated Python code alone",
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


def main(
    json_output: bool,
    quick: bool,
    workloads: list[str] | None = None,
    codecs: list[str] | None = None,
    *,
    memory: bool = False,
    scaling: bool = False,
    streams: Path | None = None,
    out_dir: Path = Path("reports"),
) -> int:
    """Run the benchmark and print its report (``migcompat bench``).

    ``memory`` adds the hostile-input peak-memory figures, ``scaling`` the
    time-vs-size series (written to ``out_dir``/scaling.json and .svg),
    ``streams`` the whole-stream figures of the captures in that directory.
    """
    results = run(quick=quick, workloads=workloads, codecs=codecs)
    report = to_json(results)
    text = render_text(results)
    if memory:
        figures = memory_module.measure_all()
        report["memory"] = [figure.to_json() for figure in figures]
        text += "\n" + memory_module.render_text(figures)
    if streams is not None:
        figures_of_streams = streams_module.run(streams, quick=quick)
        report["streams"] = [figure.to_json() for figure in figures_of_streams]
        text += "\n" + streams_module.render_text(figures_of_streams)
    if scaling:
        series = scaling_module.run(quick=quick)
        report["scaling"] = [s.to_json() for s in series]
        text += "\n" + scaling_module.render_text(series)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "scaling.json").write_text(json.dumps(report["scaling"], indent=2) + "\n")
        (out_dir / "scaling.svg").write_text(svgplot.render(series))
        text += f"wrote {out_dir / 'scaling.json'} and {out_dir / 'scaling.svg'}\n"
        refreshed = matrix_reports.refresh_html(out_dir)
        if refreshed is not None:
            text += f"drew the scaling figure into {refreshed}\n"
    print(json.dumps(report, indent=2) if json_output else text, end="\n" if json_output else "")
    return 0


__all__ = [
    "CONFIG_SIZE",
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
