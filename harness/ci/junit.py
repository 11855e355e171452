"""JUnit XML of any command's checks, for the test tab of a CI system.

Why: ``diff`` and ``gate`` have no natural test cases of their own, but a
reviewer wants "3 of 140 sections break" the way a test run says it. Each
:class:`~migcompat.ci.findings.Check` is a test case in its suite; one that
failed carries a ``<failure>`` listing its error findings, and its warnings
and notes go to ``system-out``. The matrix's own ``junit.xml``
(:mod:`migcompat.report.junit`) groups its cells by grid; this is the format
for everything else, with the same escaping.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from migcompat.ci.findings import Check, Finding, Level, Results
from migcompat.report.junit import xml_text


def _line(finding: Finding) -> str:
    place = finding.location.file or ""
    if place and finding.location.line:
        place += f":{finding.location.line}"
    where = f" ({place})" if place else ""
    return f"{finding.level.value} {finding.rule} at {finding.location.logical}{where}: {finding.message}"


def _case(suite: ET.Element, check: Check) -> None:
    case = ET.SubElement(suite, "testcase", classname=xml_text(check.suite), name=xml_text(check.name))
    case.set("time", f"{check.seconds:.3f}")
    errors = [finding for finding in check.findings if finding.level is Level.ERROR]
    if errors:
        failure = ET.SubElement(case, "failure", message=xml_text(_line(errors[0])), type=xml_text(errors[0].rule))
        failure.text = xml_text("\n".join(_line(finding) for finding in errors))
    others = [_line(finding) for finding in check.findings if finding.level is not Level.ERROR]
    output = "\n".join(filter(None, [check.output, *others]))
    if output:
        ET.SubElement(case, "system-out").text = xml_text(output)


def render(results: Results) -> str:
    root = ET.Element("testsuites", name=f"migcompat {results.command}")
    suites: dict[str, list[Check]] = {}
    for check in results.checks:
        suites.setdefault(check.suite, []).append(check)
    for name, checks in suites.items():
        suite = ET.SubElement(
            root,
            "testsuite",
            name=xml_text(name),
            tests=str(len(checks)),
            failures=str(sum(check.failed for check in checks)),
            errors="0",
            skipped="0",
            time=f"{sum(check.seconds for check in checks):.3f}",
        )
        for check in checks:
            _case(suite, check)
    root.set("tests", str(len(results.checks)))
    root.set("failures", str(len(results.failed)))
    root.set("errors", "0")
    root.set("time", f"{results.seconds:.3f}")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


__all__ = ["render"]
