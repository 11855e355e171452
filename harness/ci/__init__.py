"""Outputs CI systems read: GitHub annotations, SARIF for code scanning, JUnit XML.

Why: a gate that fails as text in a log is read by nobody; the same finding as
an annotation on the changed line, an alert in the code-scanning view or a red
test in the test tab is. ``diff``, ``gate`` and ``matrix`` each turn their
outcome into one :class:`~migcompat.ci.findings.Results` (:mod:`migcompat.ci.collect`),
and one module per format renders it, so the three formats cannot disagree.
"""

from __future__ import annotations

from migcompat.ci import github, junit, sarif
from migcompat.ci.findings import Results

#: ``--format`` name -> renderer of a :class:`Results` to text.
RENDERERS = {"github": github.render, "sarif": sarif.render, "junit": junit.render}


def render(fmt: str, results: Results) -> str:
    """``results`` in the CI format ``fmt`` (a key of :data:`RENDERERS`)."""
    return RENDERERS[fmt](results)


__all__ = ["RENDERERS", "Results", "render"]
