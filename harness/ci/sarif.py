"""SARIF 2.1.0: the findings as a static-analysis log for GitHub code scanning and other viewers.

Why: uploaded with ``github/codeql-action/upload-sarif``, each finding becomes
an alert tracked across commits -- opened when a change breaks a wire,
closed when it is fixed -- in the repository's security tab, beside the
ClusterFuzzLite findings. The document is checked against the published
2.1.0 schema in the test suite.

Strategy: one run; the driver lists every rule that fired, results refer to
their rule by id and index; a physical location (file relative to
``%SRCROOT%``, start line) where the finding has one, and always a logical
location; a partial fingerprint of rule and logical location lets code
scanning match an alert across runs whose line numbers moved.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from migcompat.ci.findings import Finding, Results

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"


def _tool_version() -> str:
    try:
        return version("migcompat")
    except PackageNotFoundError:
        return "0"


def _location(finding: Finding) -> dict[str, Any]:
    where = finding.location
    location: dict[str, Any] = {"logicalLocations": [{"fullyQualifiedName": where.logical, "kind": "member"}]}
    if where.file:
        physical: dict[str, Any] = {"artifactLocation": {"uri": where.file, "uriBaseId": "%SRCROOT%"}}
        if where.line:
            physical["region"] = {"startLine": where.line}
        location["physicalLocation"] = physical
    return location


def _fingerprint(finding: Finding) -> str:
    return hashlib.sha256(f"{finding.rule}\0{finding.location.logical}".encode()).hexdigest()[:32]


def document(results: Results) -> dict[str, Any]:
    rule_index = {rule_id: index for index, rule_id in enumerate(results.rules)}
    rules = [
        {
            "id": rule.id,
            "name": rule.id.title().replace("_", ""),
            "shortDescription": {"text": rule.summary},
            "help": {"text": f"{rule.summary} (see {rule.help_file})"},
        }
        for rule in results.rules.values()
    ]
    return {
        "$schema": SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "migcompat",
                        "version": _tool_version(),
                        "rules": rules,
                    }
                },
                "automationDetails": {"id": f"migcompat/{results.command}/"},
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "commandLine": " ".join(["migcompat", results.command, *results.arguments]),
                    }
                ],
                "results": [
                    {
                        "ruleId": finding.rule,
                        "ruleIndex": rule_index[finding.rule],
                        "level": finding.level.value,
                        "message": {"text": finding.message},
                        "locations": [_location(finding)],
                        "partialFingerprints": {"migcompatFinding/v1": _fingerprint(finding)},
                    }
                    for finding in results.findings
                ],
            }
        ],
    }


def render(results: Results) -> str:
    return json.dumps(document(results), indent=2) + "\n"


__all__ = ["SCHEMA", "document", "render"]
