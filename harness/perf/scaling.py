"""Scaling: how codec time grows with device size, and matrix time with examples.

Why: a migration codec that is fast at 8 queues and quadratic at 4096 fails in
production, and a matrix whose time grows faster than its example count cannot
be turned up for a nightly run. Both should be linear; this module measures
series side by side in one run, fits a least-squares line to each and reports
the slope (seconds per queue, per socket, per example) and how well a line
explains the points (R²), then draws them (:mod:`migcompat.report.svgplot`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from migcompat.codec.compiled import FORMATS, Format, compile_codec
from migcompat.perf.timing import QUICK_BUDGET_S, QUICK_ROUNDS, duration, measure
from migcompat.perf.workloads import sized

#: Queue counts: from a small device to four times QEMU's VIRTIO_QUEUE_MAX.
QUEUE_COUNTS = (8, 64, 256, 512, 1024, 2048, 4096)
#: Guest-forward socket counts (each with two 2 KiB buffers).
SOCKET_COUNTS = (10, 100, 250, 500, 1000)
#: Examples per matrix cell.
EXAMPLE_COUNTS = (2, 5, 10, 20)
QUICK_QUEUE_COUNTS = (8, 64, 256)
QUICK_SOCKET_COUNTS = (10, 50, 100)
QUICK_EXAMPLE_COUNTS = (1, 2)
#: Seconds per point in a full run.
POINT_BUDGET_S = 0.1


@dataclass(frozen=True)
class Series:
    """Seconds measured at each x, with the fitted line."""

    name: str
    unit: str
    xs: tuple[int, ...]
    seconds: tuple[float, ...]

    @property
    def fit(self) -> tuple[float, float, float]:
        """(slope in seconds per unit, intercept in seconds, R²)."""
        if len(self.xs) < 2:
            return 0.0, self.seconds[0] if self.seconds else 0.0, 1.0
        slope, intercept = statistics.linear_regression(self.xs, self.seconds)
        mean = statistics.fmean(self.seconds)
        total = sum((y - mean) ** 2 for y in self.seconds)
        residual = sum((y - (slope * x + intercept)) ** 2 for x, y in zip(self.xs, self.seconds, strict=True))
        return slope, intercept, 1.0 - residual / total if total else 1.0

    @property
    def label(self) -> str:
        """The legend of the series' line: its name, slope and R²."""
        slope, _, r2 = self.fit
        return f"{self.name}: {duration(slope)}/{self.unit}, R² {r2:.3f}"

    def to_json(self) -> dict[str, Any]:
        slope, intercept, r2 = self.fit
        return {
            "name": self.name,
            "unit": self.unit,
            "points": [{"x": x, "seconds": s} for x, s in zip(self.xs, self.seconds, strict=True)],
            "slope_s_per_unit": slope,
            "intercept_s": intercept,
            "r2": r2,
        }


def codec_series(kind: str, counts: Sequence[int], fmt: Format, op: str, budget_s: float, rounds: int) -> Series:
    """Median seconds per ``op`` of the compiled ``fmt`` codec on ``kind`` workloads of each size."""
    seconds = []
    for count in counts:
        workload = sized(kind, count)
        codec = compile_codec(workload.description, fmt)
        state = workload.state()
        encoded = codec.encode(state)
        call: Callable[[], object] = partial(codec.encode, state) if op == "encode" else partial(codec.decode, encoded)
        seconds.append(measure(call, budget_s=budget_s, rounds=rounds).seconds)
    unit = "queue" if kind == "virtio" else "socket"
    return Series(f"{kind} {fmt} {op}", unit, tuple(counts), tuple(seconds))


def matrix_series(counts: Sequence[int], jobs: int, device: str | None = None) -> Series:
    """Wall seconds of the default matrix (cells, mutants, negotiation) at each ``--examples``."""
    from migcompat.compat import cell, matrix

    def config(examples: int) -> cell.MatrixConfig:
        return cell.MatrixConfig(
            devices=(device,) if device else (),
            pairings=tuple(cell.PAIRING_PATHS),
            examples=examples,
            seed=cell.DEFAULT_SEED,
            jobs=jobs,
            shrink=True,
        )

    matrix.run_matrix(config(1))  # warm-up: imports, compiled codecs, hypothesis strategies
    seconds = []
    for examples in counts:
        started = time.perf_counter()
        matrix.run_matrix(config(examples))
        seconds.append(time.perf_counter() - started)
    return Series(f"matrix{' ' + device if device else ''} (jobs {jobs})", "example", tuple(counts), tuple(seconds))


def run(quick: bool = False, with_matrix: bool = True, jobs: int = 1) -> list[Series]:
    """Every series: both compiled codecs, both ops, both workload kinds; then the matrix."""
    budget_s, rounds = (QUICK_BUDGET_S, QUICK_ROUNDS) if quick else (POINT_BUDGET_S, 3)
    queues, sockets = (QUICK_QUEUE_COUNTS, QUICK_SOCKET_COUNTS) if quick else (QUEUE_COUNTS, SOCKET_COUNTS)
    series = [
        codec_series(kind, counts, fmt, op, budget_s, rounds)
        for kind, counts in (("virtio", queues), ("slirp", sockets))
        for fmt in FORMATS
        for op in ("encode", "decode")
    ]
    if with_matrix:
        if quick:
            series.append(matrix_series(QUICK_EXAMPLE_COUNTS, jobs, device="slirp"))
        else:
            series.append(matrix_series(EXAMPLE_COUNTS, jobs))
    return series


def render_text(series: Sequence[Series]) -> str:
    lines = ["scaling (least-squares line through the points; R² = 1 is a perfect line)"]
    for s in series:
        slope, intercept, r2 = s.fit
        points = ", ".join(f"{x}: {duration(seconds)}" for x, seconds in zip(s.xs, s.seconds, strict=True))
        lines.append(
            f"  {s.name:<26} slope {duration(slope) + '/' + s.unit:>18}  intercept {duration(intercept):>9}  "
            f"R² {r2:.4f}   [{points}]"
        )
    return "\n".join(lines) + "\n"


__all__ = ["Series", "codec_series", "matrix_series", "render_text", "run"]
