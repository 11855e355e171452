"""The one results model every CI format is rendered from.

Why: GitHub annotations, SARIF and JUnit say the same thing three ways -- which
checks ran, which failed, and for each failure a rule, a message and a place.
Collecting that once (:mod:`migcompat.ci.collect`) and rendering it per format
keeps the formats consistent. A place is a file and line where one is known
(the schema or dump entry that broke) and always a logical name (the member
path or the matrix cell), so a finding is useful even without a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Level(StrEnum):
    """SARIF's levels; GitHub calls ``note`` a notice."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True)
class Location:
    #: Where in the model: ``virtio-net/msix_table`` or a matrix cell key.
    logical: str
    #: A path relative to the working directory (forward slashes), when the place is a file.
    file: str | None = None
    #: 1-based line in ``file``.
    line: int | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    #: One line: what the rule catches.
    summary: str
    #: Where it is documented (a README anchor or a docs page), relative to the repository.
    help_file: str = "README.md"


@dataclass(frozen=True)
class Finding:
    rule: str
    level: Level
    message: str
    location: Location


@dataclass
class Check:
    """One test case: a section compared, a matrix cell, a golden cell."""

    suite: str
    name: str
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    #: What a passing check says (JUnit's system-out).
    output: str = ""

    @property
    def failed(self) -> bool:
        return any(finding.level is Level.ERROR for finding in self.findings)


@dataclass
class Results:
    #: The migcompat command: ``diff``, ``gate`` or ``matrix``.
    command: str
    #: The command line's arguments, for the SARIF invocation and the report titles.
    arguments: tuple[str, ...] = ()
    rules: dict[str, Rule] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    #: One line: the verdict as the text output gives it.
    summary: str = ""
    seconds: float = 0.0

    @property
    def findings(self) -> list[Finding]:
        return [finding for check in self.checks for finding in check.findings]

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if check.failed]

    @property
    def passed(self) -> bool:
        return not self.failed

    def add_rule(self, rule: Rule) -> str:
        self.rules.setdefault(rule.id, rule)
        return rule.id


__all__ = ["Check", "Finding", "Level", "Location", "Results", "Rule"]
