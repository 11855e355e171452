"""``matrix.json``: the versioned, machine-readable source of truth."""

from __future__ import annotations

import json
from typing import TextIO

from migcompat.compat.results import MatrixResults


def report(results: MatrixResults, outfile: TextIO) -> None:
    json.dump(results.to_json(), outfile, indent=2)
    outfile.write("\n")
