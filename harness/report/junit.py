"""``junit.xml``: the matrix as JUnit XML, the one test-result format every CI system reads.

Why: Jenkins, GitLab, Azure Pipelines and GitHub test-report actions all show
JUnit XML as a list of tests with the failing ones on top, trend them across
runs and link a failure to its text. Mapping each matrix cell to a test case
gives the matrix that for free: one ``<testsuite>`` per device, one
``<testcase classname="device.source->destination" name="pairing">`` per cell.

Strategy: built with :mod:`xml.etree.ElementTree`, which escapes markup. A cell
that fails the gate (:attr:`~migcompat.compat.results.Cell.failed`) gets a
``<failure>``, or an ``<error>`` when its outcome is ``crash`` -- JUnit's word
for "the code under test blew up" -- so ``failures + errors`` is the number of
failing cells. Characters XML 1.0 cannot hold at all (NUL and most C0
controls, which a message about hostile input may quote) are written as
``\\xNN`` so the file always parses.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TextIO

from migcompat.compat.results import Cell, MatrixResults
from migcompat.outcomes import Outcome
from migcompat.report._views import detail_text, grids, verdict

#: Characters outside XML 1.0's Char production.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: object) -> str:
    """``value`` as text XML 1.0 can hold: the characters it cannot are written as ``\\xNN``."""
    return _NOT_XML.sub(lambda match: f"\\x{ord(match.group()):02x}", str(value))


def _element(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {name: xml_text(value) for name, value in attributes.items()})
    if text is not None:
        element.text = xml_text(text)
    return element


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _testcase(suite: ET.Element, cell: Cell) -> None:
    case = _element(
        suite,
        "testcase",
        classname=f"{cell.device}.{cell.source}->{cell.destination}",
        name=cell.pairing,
        time=_seconds(cell.seconds),
    )
    if cell.failed:
        tag = "error" if cell.outcome is Outcome.CRASH else "failure"
        message = verdict(cell) + (f": {cell.detail.message}" if cell.detail.message else "")
        _element(case, tag, detail_text(cell), message=message, type=cell.outcome.value)
    elif cell.waived:
        _element(case, "system-out", detail_text(cell))


def _properties(suite: ET.Element, results: MatrixResults) -> None:
    properties = _element(suite, "properties")
    meta = results.meta
    for name in ("seed", "examples", "jobs", "started", "seconds"):
        if name in meta:
            _element(properties, "property", name=name, value=str(meta[name]))
    for name in ("pairings", "waivers", "unused_waivers"):
        if meta.get(name):
            _element(properties, "property", name=name, value=", ".join(str(item) for item in meta[name]))


def report(results: MatrixResults, outfile: TextIO) -> None:
    root = ET.Element("testsuites", name="migcompat matrix")
    total_tests = total_failures = total_errors = 0
    total_time = 0.0
    for grid in grids(results):
        cells = grid.all_cells
        failing = [cell for cell in cells if cell.failed]
        errors = sum(1 for cell in failing if cell.outcome is Outcome.CRASH)
        seconds = sum(cell.seconds for cell in cells)
        suite = _element(
            root,
            "testsuite",
            name=grid.anchor,
            tests=str(len(cells)),
            failures=str(len(failing) - errors),
            errors=str(errors),
            skipped="0",
            time=_seconds(seconds),
        )
        if "started" in results.meta:
            suite.set("timestamp", xml_text(results.meta["started"]).removesuffix("Z"))
        _properties(suite, results)
        for cell in cells:
            _testcase(suite, cell)
        total_tests += len(cells)
        total_failures += len(failing) - errors
        total_errors += errors
        total_time += seconds
    root.set("tests", str(total_tests))
    root.set("failures", str(total_failures))
    root.set("errors", str(total_errors))
    root.set("time", _seconds(float(results.meta.get("seconds", total_time))))
    ET.indent(root)
    ET.ElementTree(root).write(outfile, encoding="unicode", xml_declaration=True)
    outfile.write("\n")
