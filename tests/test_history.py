"""The matrix over time: points carried from run to run, and what the page takes from its directory."""

from __future__ import annotations

import io
import json
from pathlib import Path

from migcompat import report
from migcompat.compat.results import Cell, MatrixResults
from migcompat.outcomes import Outcome
from migcompat.report import history, html


def _run(started: str, outcomes: list[Outcome], carried: list[object] | None = None) -> MatrixResults:
    cells = [Cell("slirp", "v1", f"v{i}", "ber", outcome, Outcome.OK) for i, outcome in enumerate(outcomes)]
    meta: dict[str, object] = {"started": started}
    if carried is not None:
        meta["history"] = carried
    return MatrixResults(meta=meta, cells=cells)


def test_a_point_counts_outcomes_and_failing_cells() -> None:
    point = history.point(_run("2026-01-01T00:00:00Z", [Outcome.OK, Outcome.CORRUPT, Outcome.CORRUPT]))
    assert point == {"started": "2026-01-01T00:00:00Z", "cells": 3, "outcomes": {"corrupt": 2, "ok": 1}, "failing": 2}


def test_the_last_run_carries_the_whole_chain_each_run_once_oldest_first() -> None:
    first = _run("2026-01-01T00:00:00Z", [Outcome.OK])
    second = _run("2026-01-02T00:00:00Z", [Outcome.OK, Outcome.REFUSED, Outcome.OK])
    second.meta["history"] = history.merged([first])
    third = _run("2026-01-03T00:00:00Z", [Outcome.CORRUPT])
    third.meta["history"] = history.merged([second, first])  # first given twice: kept once
    assert [point["started"][:10] for point in history.series(third)] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert [(point["cells"], point["failing"]) for point in history.series(third)] == [(1, 0), (3, 1), (1, 1)]


def test_a_broken_recorded_point_is_left_out() -> None:
    broken = [{"started": 5}, "text", {"started": "x", "cells": 1, "failing": 0, "outcomes": {"ok": "1"}}]
    run = _run("2026-01-02T00:00:00Z", [Outcome.OK], carried=broken)
    assert [point["started"] for point in history.series(run)] == ["2026-01-02T00:00:00Z"]


def test_the_page_draws_the_trend_from_two_runs_and_says_so_with_one() -> None:
    one = _run("2026-01-02T00:00:00Z", [Outcome.OK])
    page = io.StringIO()
    html.report(one, page)
    assert "One run so far" in page.getvalue() and "<polyline" not in page.getvalue()
    one.meta["history"] = history.merged([_run("2026-01-01T00:00:00Z", [Outcome.CORRUPT])])
    page = io.StringIO()
    html.report(one, page)
    assert "cells by outcome, 2 runs" in page.getvalue() and page.getvalue().count("<polyline") == 6


def test_an_unreadable_real_json_beside_the_report_is_said_on_the_page_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "real.json").write_text('{"format_version": 1, "kind": "real-matrix"}')
    (tmp_path / "scaling.svg").write_bytes(b"\xff\xfe not text")
    report.write_all(_run("2026-01-01T00:00:00Z", [Outcome.OK]), tmp_path)
    page = (tmp_path / "matrix.html").read_text()
    assert "real.json in the report directory is not readable" in page
    assert "scaling.svg in the report directory is not readable" in page
    assert json.loads((tmp_path / "matrix.json").read_text())["cells"]
    assert not list(tmp_path.glob(".*.tmp"))
