"""What the HTML page shows beside the matrix, found in the report directory.

Why: the real matrix (``matrix --real``) and the bench's scaling figure
(``bench --scaling``) are written by other runs into the same directory as
the matrix's reports; a page that shows them beside the model's grid answers
"does the model match QEMU" and "how does it scale" where people already look.
What cannot be read is said on the page, not fatal: the matrix still renders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from migcompat.compat.real import RealResults

#: What the HTML page takes from the report directory when it is there.
REAL_JSON = "real.json"
SCALING_SVG = "scaling.svg"


@dataclass
class Context:
    """What the HTML page shows beside the matrix: found in the report directory, or given."""

    real: RealResults | None = None
    scaling_svg: str | None = None
    #: Problems reading what was there (said on the page, not fatal).
    notes: list[str] = field(default_factory=list)


def context_of(out_dir: Path) -> Context:
    """The real matrix and the scaling figure of ``out_dir``, when they are there and readable."""
    context = Context()
    real = out_dir / REAL_JSON
    if real.is_file():
        try:
            context.real = RealResults.from_json(json.loads(real.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
            context.notes.append(f"{REAL_JSON} in the report directory is not readable: {error}")
    scaling = out_dir / SCALING_SVG
    if scaling.is_file():
        try:
            context.scaling_svg = scaling.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            context.notes.append(f"{SCALING_SVG} in the report directory is not readable: {error}")
    return context


__all__ = ["REAL_JSON", "SCALING_SVG", "Context", "context_of"]
