"""Matrix reports: one module per output format, all rendered from one results model.

Why: collect once, render many (coverage.py's shape). ``matrix.json`` is the
source of truth; the other formats are views of the same
:class:`~migcompat.compat.results.MatrixResults`.
"""

from __future__ import annotations

from pathlib import Path

from migcompat.compat.results import MatrixResults
from migcompat.report import html, json_report, junit, markdown

#: File name -> module with ``report(results, outfile)``.
FORMATS = {
    "matrix.json": json_report,
    "matrix.md": markdown,
    "matrix.html": html,
    "junit.xml": junit,
}


def write_all(results: MatrixResults, out_dir: Path) -> list[Path]:
    """Write every report into ``out_dir``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, module in FORMATS.items():
        path = out_dir / name
        with path.open("w", encoding="utf-8") as outfile:
            module.report(results, outfile)
        written.append(path)
    return written
