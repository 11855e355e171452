"""Small self-contained SVG line charts for the scaling figures.

Why: the scaling figures are lines, and a line is easier to judge drawn than as
a column of numbers; an SVG needs no plotting library, no network and opens in
any browser next to the HTML report. One chart per unit (queues, sockets,
examples): measured points as dots, the fitted least-squares line dashed. The
matrix's trend over runs (:func:`trend`) is a plain line chart of counts.
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


def trend(labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[int]]], title: str) -> str:
    """A line chart of counts over runs: ``labels`` on the x axis (one per run, oldest first),
    one (name, color, counts) line per series, each point titled with its count."""
    width, plot_h = max(WIDTH, 80 * len(labels) + LEFT + RIGHT + 120), HEIGHT - TOP - BOTTOM
    plot_w = width - LEFT - RIGHT - 120
    top = max((count for _, _, counts in series for count in counts), default=0) or 1

    def px(index: int) -> float:
        return LEFT + (plot_w * index / (len(labels) - 1) if len(labels) > 1 else plot_w / 2)

    def py(count: float) -> float:
        return TOP + plot_h * (1 - count / (top * 1.1))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" viewBox="0 0 {width} {HEIGHT}" '
        f'font-family="sans-serif" font-size="10" role="img" aria-label="{escape(title)}">',
        f'<rect width="{width}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{LEFT + plot_w / 2}" y="18" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{LEFT}" y1="{py(0)}" x2="{LEFT + plot_w}" y2="{py(0)}" stroke="#333"/>',
        f'<line x1="{LEFT}" y1="{py(0)}" x2="{LEFT}" y2="{TOP}" stroke="#333"/>',
        f'<text x="{LEFT - 4}" y="{py(0) + 4}" text-anchor="end">0</text>',
        f'<text x="{LEFT - 4}" y="{py(top) + 4}" text-anchor="end">{top}</text>',
    ]
    for index, label in enumerate(labels):
        parts.append(f'<text x="{px(index)}" y="{py(0) + 16}" text-anchor="middle">{escape(label)}</text>')
    for row, (name, color, counts) in enumerate(series):
        points = " ".join(f"{px(index)},{py(count)}" for index, count in enumerate(counts))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        for index, count in enumerate(counts):
            parts.append(
                f'<circle cx="{px(index)}" cy="{py(count)}" r="3" fill="{color}">'
                f"<title>{escape(f'{labels[index]}: {count} {name}')}</title></circle>"
            )
        last = counts[-1] if counts else 0
        parts.append(
            f'<text x="{LEFT + plot_w + 10}" y="{TOP + 12 + 14 * row}" fill="{color}">{last} {escape(name)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


__all__ = ["Line", "render", "trend"]
