"""Timing one call the way :mod:`timeit` does, and printing a duration.

Why a module of its own: the side-by-side benchmark and the scaling series
time calls the same way (one warm-up, a calibrated iteration count, several
rounds, the median, the garbage collector off) and print durations the same
way; both reach this module from below instead of one importing the other.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

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


def duration(seconds: float) -> str:
    """A duration in the unit that reads best: ns, µs, ms or s."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


__all__ = ["FULL_BUDGET_S", "FULL_ROUNDS", "QUICK_BUDGET_S", "QUICK_ROUNDS", "Timing", "duration", "measure"]
