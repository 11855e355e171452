"""GitHub Actions workflow commands: each finding an annotation on its file and line.

Why: a runner turns ``::error file=F,line=L,title=T::message`` on a step's
output into an annotation on that line of the pull request's diff, the way
``buf breaking`` reports a changed field; warnings and notices likewise. Only
10 errors and 10 warnings per step are drawn on the diff, so every finding is
also a plain line, and the last line is the verdict.

Strategy: values are escaped as the runner unescapes them (``%``, CR and LF
everywhere; ``:`` and ``,`` in properties too), so a message that quotes
hostile input cannot end the command early or start another.
"""

from __future__ import annotations

from migcompat.ci.findings import Finding, Level, Results

_COMMANDS = {Level.ERROR: "error", Level.WARNING: "warning", Level.NOTE: "notice"}


def escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def annotation(finding: Finding) -> str:
    """One workflow command for ``finding``."""
    where = finding.location
    properties = []
    if where.file:
        properties.append(f"file={escape_property(where.file)}")
        if where.line:
            properties.append(f"line={where.line}")
    properties.append(f"title={escape_property(f'{finding.rule} at {where.logical}')}")
    return f"::{_COMMANDS[finding.level]} {','.join(properties)}::{escape_data(finding.message)}"


def render(results: Results) -> str:
    lines = [annotation(finding) for finding in results.findings]
    lines.append(escape_data(results.summary) if results.summary else _verdict(results))
    return "\n".join(lines) + "\n"


def _verdict(results: Results) -> str:
    failed = len(results.failed)
    return f"migcompat {results.command}: {len(results.checks)} checks, {failed} failed"


def step_summary(results: Results) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``: the verdict and a table of the failing checks."""
    lines = [f"### migcompat {results.command}", "", results.summary or _verdict(results), ""]
    if results.failed:
        lines += ["| check | rule | where | message |", "| --- | --- | --- | --- |"]
        for check in results.failed:
            for finding in check.findings:
                place = finding.location.file or ""
                if place and finding.location.line:
                    place += f":{finding.location.line}"
                cells = [check.name, finding.rule, place or finding.location.logical, finding.message]
                lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


__all__ = ["annotation", "escape_data", "escape_property", "render", "step_summary"]
