"""Hostile declared sizes are refused at a cost proportional to the input."""

from __future__ import annotations

import pytest

from migcompat.perf import memory

#: Room for the error object, tracebacks and the decoder's frames: far below any
#: declared size (the smallest is 60 MiB) and independent of it.
OVERHEAD = 256 * 1024


@pytest.mark.parametrize("case", memory.CASES, ids=lambda case: case.name)
def test_hostile_size_is_refused_without_allocating_it(case: memory.HostileCase) -> None:
    figure = memory.measure_case(case)
    assert not figure.outcome.startswith("BUG"), figure.outcome
    assert "byte offset" in figure.outcome
    assert figure.peak_bytes < 4 * figure.input_bytes + OVERHEAD, figure


def test_measurement_sees_a_real_allocation() -> None:
    """The probe is not blind: a decoder that trusted the declared size would show."""
    import tracemalloc

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        blob = bytearray(8 * 1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
        del blob
    finally:
        tracemalloc.stop()
    assert peak - before >= 8 * 1024 * 1024


def test_report_lists_every_case() -> None:
    figures = memory.measure_all()
    text = memory.render_text(figures)
    for case in memory.CASES:
        assert case.name in text
    assert [f.to_json()["case"] for f in figures] == [c.name for c in memory.CASES]
