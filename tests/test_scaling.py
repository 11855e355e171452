"""Scaling series: the fit is right, the quick run has every series, the plot draws them."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest

from migcompat.perf import scaling, timing
from migcompat.report import svgplot


def test_fit_recovers_a_known_line() -> None:
    series = scaling.Series("line", "queue", (1, 2, 4, 8), (3e-6 + 1e-3, 6e-6 + 1e-3, 12e-6 + 1e-3, 24e-6 + 1e-3))
    slope, intercept, r2 = series.fit
    assert slope == pytest.approx(3e-6)
    assert intercept == pytest.approx(1e-3)
    assert r2 == pytest.approx(1.0)


def test_fit_shows_a_curve_is_not_a_line() -> None:
    xs = tuple(range(1, 9))
    quadratic = scaling.Series("curve", "queue", xs, tuple(float(x**4) for x in xs))
    assert quadratic.fit[2] < 0.95


def test_duration_picks_a_readable_unit() -> None:
    assert timing.duration(2.5) == "2.5 s"
    assert timing.duration(0.0123) == "12.3 ms"
    assert timing.duration(4.2e-6) == "4.2 µs"
    assert timing.duration(3e-9) == "3 ns"


def test_quick_run_measures_every_series_and_the_plot_draws_each_point() -> None:
    series = scaling.run(quick=True, with_matrix=False)
    names = [s.name for s in series]
    assert names == [
        f"{kind} {fmt} {op}"
        for kind in ("virtio", "slirp")
        for fmt in ("qemufile", "ber")
        for op in ("encode", "decode")
    ]
    for s in series:
        assert len(s.xs) == len(s.seconds) >= 3
        assert all(seconds > 0 for seconds in s.seconds)
        assert s.to_json()["points"][0]["x"] == s.xs[0]
    svg = ElementTree.fromstring(svgplot.render(series))
    circles = svg.findall(".//{http://www.w3.org/2000/svg}circle")
    assert len(circles) == sum(len(s.xs) for s in series)
    text = scaling.render_text(series)
    assert all(name in text for name in names)
