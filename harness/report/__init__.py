"""Matrix reports: one module per output format, all rendered from one results model.

Why: collect once, render many (coverage.py's shape). ``matrix.json`` is the
source of truth; the other formats are views of the same
:class:`~migcompat.compat.results.MatrixResults`. The HTML page also shows what
sits beside it in the report directory -- the real matrix's ``real.json`` and
the bench's ``scaling.svg`` -- and the matrix's trend over earlier runs
(:mod:`migcompat.report.history`), so one page answers a release engineer's questions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TextIO

from migcompat.compat.results import MatrixResults
from migcompat.report import html, json_report, junit, markdown
from migcompat.report.context import Context, context_of

#: File name -> module with ``report(results, outfile)``.
FORMATS = {
    "matrix.json": json_report,
    "matrix.md": markdown,
    "junit.xml": junit,
}
HTML = "matrix.html"


def _write(path: Path, render: Callable[[TextIO], None]) -> None:
    """Through a scratch file beside ``path``: a failure leaves the old report whole."""
    scratch = path.with_name(f".{path.name}.tmp")
    try:
        with scratch.open("w", encoding="utf-8") as outfile:
            render(outfile)
        scratch.replace(path)
    finally:
        scratch.unlink(missing_ok=True)


def write_all(results: MatrixResults, out_dir: Path) -> list[Path]:
    """Write every report into ``out_dir``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, module in FORMATS.items():
        _write(out_dir / name, partial(module.report, results))
        written.append(out_dir / name)
    context = context_of(out_dir)
    _write(out_dir / HTML, partial(html.report, results, context=context))
    written.insert(2, out_dir / HTML)
    return written


def refresh_html(out_dir: Path) -> Path | None:
    """Render ``matrix.html`` again from the ``matrix.json`` there (after the real matrix or
    the bench added to the directory); None when there is no readable matrix.json."""
    try:
        results = MatrixResults.from_json(json.loads((out_dir / "matrix.json").read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None
    _write(out_dir / HTML, partial(html.report, results, context=context_of(out_dir)))
    return out_dir / HTML


def with_history(results: MatrixResults, earlier: Sequence[MatrixResults]) -> None:
    """Record in ``results`` the trend of the ``earlier`` runs (and of the runs they recorded)."""
    from migcompat.report import history

    results.meta["history"] = history.merged(earlier)


__all__ = ["FORMATS", "Context", "context_of", "refresh_html", "with_history", "write_all"]
