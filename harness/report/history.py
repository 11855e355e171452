"""The matrix over time: one point per run, carried from run to run in ``matrix.json``.

Why: a release engineer asks "is it getting better" as often as "is it green".
Each run's ``matrix.json`` records, in ``meta.history``, the points of the
runs it was given (``migcompat matrix --history OLD/matrix.json``) and of the
runs those recorded, so giving only the previous run's file carries the
whole chain; the HTML page draws it (:func:`migcompat.report.svgplot.trend`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from migcompat.compat.results import MatrixResults

#: At most this many points are kept (the newest).
MAX_POINTS = 200


def point(results: MatrixResults) -> dict[str, Any]:
    """One run as a trend point: when it started, its cells, outcome counts and failing cells."""
    return {
        "started": str(results.meta.get("started", "")),
        "cells": len(results.cells),
        "outcomes": dict(sorted(results.outcome_totals().items())),
        "failing": len(results.failures),
    }


def _valid(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("started"), str)
        and isinstance(entry.get("cells"), int)
        and isinstance(entry.get("failing"), int)
        and isinstance(entry.get("outcomes"), dict)
        and all(isinstance(count, int) for count in entry["outcomes"].values())
    )


def merged(runs: Sequence[MatrixResults]) -> list[dict[str, Any]]:
    """The points of ``runs`` and of the histories they carry, oldest first, each run once."""
    points: dict[str, dict[str, Any]] = {}
    for run in runs:
        for entry in [*run.meta.get("history", []), point(run)]:
            if _valid(entry):
                points.setdefault(entry["started"], entry)
    return [points[started] for started in sorted(points)][-MAX_POINTS:]


def series(results: MatrixResults) -> list[dict[str, Any]]:
    """The recorded points of ``results`` and its own, oldest first."""
    recorded = [entry for entry in results.meta.get("history", []) if _valid(entry)]
    own = point(results)
    return [entry for entry in recorded if entry["started"] != own["started"]] + [own]


__all__ = ["MAX_POINTS", "merged", "point", "series"]
