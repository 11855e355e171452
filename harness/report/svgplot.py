"""Small self-contained SVG line charts for the scaling figures.

Why: the scaling figures are lines, and a line is easier to judge drawn than as
a column of numbers; an SVG needs no plotting library, no network and opens in
any browser next to the HTML report. One chart per unit (queues, sockets,
examples): measured points as dots, the fitted least-squares line dashed.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Protocol


class Line(Protocol):
    """What a chart draws of one series: points, a fitted line and a legend."""

    @property
    def unit(self) -> str: ...
    @property
    def xs(self) -> tuple[int, ...]: ...
    @property
    def seconds(self) -> tuple[float, ...]: ...
    @property
    def fit(self) -> tuple[float, float, float]:
        """(slope in seconds per unit, intercept in seconds, R²)."""
        ...

    @property
    def label(self) -> str: ...


WIDTH, HEIGHT = 460, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 30, 44
COLORS = ("#1b6ca8", "#c0392b", "#27ae60", "#8e44ad", "#d68910", "#2c3e50")


def _chart(title: str, unit: str, series: Sequence[Line], x0: int) -> str:
    xs = [x for s in series for x in s.xs]
    ys = [seconds * 1e3 for s in series for seconds in s.seconds]
    x_max, y_max = max(xs) or 1, (max(ys) or 1.0) * 1.1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return x0 + LEFT + plot_w * x / x_max

    def py(y: float) -> float:
        return TOP + plot_h * (1 - y / y_max)

    parts = [
        f'<text x="{x0 + WIDTH / 2}" y="18" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(x_max)}" y2="{py(0)}" stroke="#333"/>',
        f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(0)}" y2="{py(y_max)}" stroke="#333"/>',
        f'<text x="{x0 + LEFT + plot_w / 2}" y="{HEIGHT - 8}" text-anchor="middle">{escape(unit)}s</text>',
        f'<text x="{x0 + 14}" y="{TOP + plot_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 {x0 + 14} {TOP + plot_h / 2})">ms</text>',
    ]
    for fraction in (0.0, 0.5, 1.0):
        parts.append(
            f'<text x="{px(0) - 4}" y="{py(y_max * fraction / 1.1) + 4}" text-anchor="end">'
            f"{y_max * fraction / 1.1:.3g}</text>"
        )
        parts.append(
            f'<text x="{px(x_max * fraction)}" y="{py(0) + 16}" text-anchor="middle">{x_max * fraction:.4g}</text>'
        )
    for index, s in enumerate(series):
        color = COLORS[index % len(COLORS)]
        slope, intercept, _ = s.fit
        end = (slope * x_max + intercept) * 1e3
        parts.append(
            f'<line x1="{px(0)}" y1="{py(intercept * 1e3)}" x2="{px(x_max)}" y2="{py(end)}" '
            f'stroke="{color}" stroke-dasharray="4 3"/>'
        )
        for x, seconds in zip(s.xs, s.seconds, strict=True):
            parts.append(f'<circle cx="{px(x)}" cy="{py(seconds * 1e3)}" r="3" fill="{color}"/>')
        parts.append(f'<text x="{x0 + LEFT + 8}" y="{TOP + 14 + 14 * index}" fill="{color}">{escape(s.label)}</text>')
    return "\n".join(parts)


def render(series: Sequence[Line]) -> str:
    """An SVG with one chart per unit, side by side."""
    units = list(dict.fromkeys(s.unit for s in series))
    charts = [
        _chart(f"time per {unit}", unit, [s for s in series if s.unit == unit], index * WIDTH)
        for index, unit in enumerate(units)
    ]
    width = WIDTH * max(1, len(units))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" '
        f'viewBox="0 0 {width} {HEIGHT}" font-family="sans-serif" font-size="10">\n'
        f'<rect width="{width}" height="{HEIGHT}" fill="white"/>\n' + "\n".join(charts) + "\n</svg>\n"
    )


__all__ = ["Line", "render"]
