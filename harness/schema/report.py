"""``migcompat diff`` output: the static checker's report as text for a person or JSON for a script.

Why: the text says, per direction, whether the two releases are compatible
and then each finding with its level, rule, where it is in each file and why
it breaks; the JSON carries the same, one object per finding, for CI. Both are
rendered from one :class:`~migcompat.schema.diff.Report`, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from migcompat.schema.diff import FORWARD, Finding, Report
from migcompat.schema.rules import Level

_ROLES = {FORWARD: "OLD writes, NEW reads", "backward": "NEW writes, OLD reads"}


def document(report: Report, old: str, new: str, source: str, wires: Sequence[str]) -> dict[str, Any]:
    """The JSON form: verdict, per-direction verdicts and every finding."""
    breaking = report.breaking(wires)
    return {
        "old": old,
        "new": new,
        "input": source,
        "directions": list(report.directions),
        "wires": list(wires),
        "compatible": not breaking,
        "verdicts": {
            direction: "compatible" if not [f for f in breaking if f.direction == direction] else "incompatible"
            for direction in report.directions
        },
        "summary": {
            "findings": len(report.findings),
            "breaking": len(breaking),
            "advisory": len(report.findings) - len(breaking),
            "rules": report.rules(wires),
        },
        "findings": [finding.to_json() for finding in report.findings],
    }


def _where(finding: Finding) -> str:
    parts = []
    if finding.old is not None:
        parts.append(f"old {finding.old or '/'}")
    if finding.new is not None:
        parts.append(f"new {finding.new or '/'}")
    return ", ".join(parts)


def text(report: Report, old: str, new: str, wires: Sequence[str]) -> str:
    """The report for a terminal: a verdict per direction, then each finding and why."""
    lines = [f"OLD {old}", f"NEW {new}"]
    wanted = set(wires)
    for direction in report.directions:
        findings = [finding for finding in report.findings if finding.direction == direction]
        breaking = [finding for finding in findings if finding.breaks & wanted]
        verdict = "compatible" if not breaking else "INCOMPATIBLE"
        lines.append("")
        lines.append(f"{direction} ({_ROLES[direction]}): {verdict}")
        for finding in findings:
            counted = "" if finding.breaks & wanted or finding.level is Level.ADVISORY else " (not counted)"
            lines.append(f"  {finding.level.value:<11} {finding.rule} at {finding.path or '(document)'}{counted}")
            lines.append(f"              {_where(finding)}")
            lines.append(f"              {finding.message}")
    breaking = report.breaking(wires)
    advisory = len(report.findings) - len(breaking)
    on = "all wires" if wanted == {"qemufile", "ber"} else ", ".join(wires)
    verdict = "compatible" if not breaking else "incompatible"
    lines.append("")
    count = len(report.findings)
    lines.append(
        f"{count} finding{'' if count == 1 else 's'}: {len(breaking)} breaking ({on}), {advisory} not; {verdict}"
    )
    return "\n".join(lines)


__all__ = ["document", "text"]
