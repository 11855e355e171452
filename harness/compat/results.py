"""The one results model every matrix report is rendered from.

Why: as in coverage.py, results are collected once and rendered many times; the
JSON report is the source of truth and the Markdown, HTML and JUnit reports are
views of the same data. Plain dataclasses whose totals are computed, never
stored, keep every view consistent.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from migcompat.outcomes import MutantOutcome, Outcome

FORMAT_VERSION = 1


def cell_key(device: str, source: str, destination: str, pairing: str, machine: str = "") -> str:
    """``virtio/qemu-10.0->qemu-7.2/ber``, with ``@pc-i440fx-7.2`` after the
    destination when the cell runs a machine type other than the source's own."""
    at = f"@{machine}" if machine else ""
    return f"{device}/{source}->{destination}{at}/{pairing}"


@dataclass
class Detail:
    """Why a cell has its outcome: the first example that showed it."""

    message: str = ""
    path: str = ""
    offset: int | None = None
    #: The failing example after shrinking, in the dict form with bytes as hex.
    example: Any = None
    seed: int | None = None
    #: One command that replays the cell.
    replay: str = ""


@dataclass
class Cell:
    device: str
    source: str
    destination: str
    pairing: str
    outcome: Outcome
    expected: Outcome
    detail: Detail = field(default_factory=Detail)
    #: How many generated states were run, and the outcome of each kind.
    examples: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    waived: bool = False
    seconds: float = 0.0
    #: The machine type both sides ran, when not the source release's own.
    machine: str = ""

    @property
    def key(self) -> str:
        return cell_key(self.device, self.source, self.destination, self.pairing, self.machine)

    @property
    def matches(self) -> bool:
        return self.outcome is self.expected

    @property
    def failed(self) -> bool:
        """Whether this cell fails the gate: waivers are a ratchet, so a waived
        cell that now matches its expectation fails too (remove the waiver)."""
        if self.waived:
            return self.matches
        return not self.matches or self.outcome in (Outcome.CORRUPT, Outcome.CRASH)


@dataclass
class MutantResult:
    device: str
    release: str
    mutant: str
    #: Mutant class: width, sign, reorder, rename, insert, delete, list-struct, buffer-length, no-version-bump.
    mutant_class: str
    #: Wire format, or "static" for the static checker's verdict.
    format: str
    #: "mutant->real" or "real->mutant".
    direction: str
    outcome: MutantOutcome
    detail: str = ""


@dataclass
class Agreement:
    """The static checker's verdict next to the dynamic outcome of one cell or one mutant run."""

    #: "cell" (a release pair through a pairing) or "mutant" (a mutant on a wire format).
    kind: str
    device: str
    #: Cells: the source and destination releases; mutants: the real release, twice.
    source: str
    destination: str
    #: Cells: the pairing; mutants: the wire format.
    format: str
    #: "compatible" or "incompatible" for this format's wire.
    static: str
    #: The rules that make it incompatible (empty when compatible).
    rules: list[str]
    #: The dynamic outcome (a cell's Outcome or a mutant's MutantOutcome value).
    dynamic: str
    agrees: bool
    #: Why the two disagree (empty when they agree).
    reason: str = ""
    mutant: str = ""
    mutant_class: str = ""
    #: Mutants: "mutant->real" or "real->mutant".
    direction: str = ""
    #: Cells: the machine type both sides ran, when not the source's own.
    machine: str = ""

    @property
    def key(self) -> str:
        if self.kind == "cell":
            return cell_key(self.device, self.source, self.destination, self.format, self.machine)
        return f"{self.device}/{self.source}/{self.mutant}/{self.direction}/{self.format}"

    @property
    def verdict(self) -> str:
        """``compatible`` or ``incompatible (RULE, ...)``."""
        return self.static if not self.rules else f"{self.static} ({', '.join(self.rules)})"


@dataclass
class ReleaseRow:
    """Release-level negotiation: what two hypervisor releases agree on."""

    source: str
    destination: str
    protocol: str | None
    worst: Outcome
    devices: dict[str, str] = field(default_factory=dict)
    #: The machine type both ran; empty: each device release's own.
    machine: str = ""


@dataclass
class MatrixResults:
    meta: dict[str, Any] = field(default_factory=dict)
    cells: list[Cell] = field(default_factory=list)
    mutants: list[MutantResult] = field(default_factory=list)
    releases: list[ReleaseRow] = field(default_factory=list)
    #: The static checker against the dynamic outcomes (:mod:`migcompat.compat.agreement`).
    agreement: list[Agreement] = field(default_factory=list)

    @property
    def disagreements(self) -> list[Agreement]:
        return [row for row in self.agreement if not row.agrees]

    @property
    def failures(self) -> list[Cell]:
        return [cell for cell in self.cells if cell.failed]

    @property
    def passed(self) -> bool:
        return not self.failures

    def sort_mutants(self) -> None:
        """Put the mutant results and their agreement rows in their one order (device, release,
        mutant, direction, format), the same however the mutants were split between processes or shards."""
        self.mutants.sort(key=lambda r: (r.device, r.release, r.mutant, r.direction, r.format))
        cells = [row for row in self.agreement if row.kind == "cell"]
        self.agreement = cells + sorted((row for row in self.agreement if row.kind != "cell"), key=lambda r: r.key)

    def outcome_totals(self) -> Counter[str]:
        return Counter(cell.outcome.value for cell in self.cells)

    def mutant_totals(self) -> dict[tuple[str, str], Counter[str]]:
        """(device, format) -> outcome counts."""
        totals: dict[tuple[str, str], Counter[str]] = {}
        for result in self.mutants:
            totals.setdefault((result.device, result.format), Counter())[result.outcome.value] += 1
        return totals

    def devices(self) -> list[str]:
        return list(dict.fromkeys(cell.device for cell in self.cells))

    def to_json(self) -> dict[str, Any]:
        """The versioned document ``matrix.json`` holds."""
        static = {row.key: row for row in self.agreement}
        return {
            "format_version": FORMAT_VERSION,
            "meta": self.meta,
            "cells": [
                {
                    "device": cell.device,
                    "source": cell.source,
                    "destination": cell.destination,
                    "pairing": cell.pairing,
                    "machine": cell.machine,
                    "outcome": cell.outcome.value,
                    "expected": cell.expected.value,
                    "waived": cell.waived,
                    "failed": cell.failed,
                    "examples": cell.examples,
                    "counts": cell.counts,
                    "seconds": round(cell.seconds, 4),
                    "detail": asdict(cell.detail),
                    "static": _static_column(static.get(cell.key)),
                }
                for cell in self.cells
            ],
            "mutants": [
                {
                    "device": result.device,
                    "release": result.release,
                    "mutant": result.mutant,
                    "class": result.mutant_class,
                    "format": result.format,
                    "direction": result.direction,
                    "outcome": result.outcome.value,
                    "detail": result.detail,
                    "static": _static_column(
                        static.get(
                            f"{result.device}/{result.release}/{result.mutant}/{result.direction}/{result.format}"
                        )
                    ),
                }
                for result in self.mutants
            ],
            "releases": [
                {
                    "source": row.source,
                    "destination": row.destination,
                    "protocol": row.protocol,
                    "worst": row.worst.value,
                    "devices": row.devices,
                    "machine": row.machine,
                }
                for row in self.releases
            ],
            "agreement": {
                "comparisons": len(self.agreement),
                "disagreements": len(self.disagreements),
                "rows": [asdict(row) for row in self.agreement],
            },
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> MatrixResults:
        if document.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported matrix.json format_version {document.get('format_version')!r}")
        results = cls(meta=dict(document.get("meta", {})))
        for item in document["cells"]:
            results.cells.append(
                Cell(
                    device=item["device"],
                    source=item["source"],
                    destination=item["destination"],
                    pairing=item["pairing"],
                    machine=item.get("machine", ""),
                    outcome=Outcome(item["outcome"]),
                    expected=Outcome(item["expected"]),
                    detail=Detail(**item.get("detail", {})),
                    examples=item.get("examples", 0),
                    counts=dict(item.get("counts", {})),
                    waived=bool(item.get("waived", False)),
                    seconds=float(item.get("seconds", 0.0)),
                )
            )
        for item in document.get("mutants", []):
            results.mutants.append(
                MutantResult(
                    device=item["device"],
                    release=item["release"],
                    mutant=item["mutant"],
                    mutant_class=item["class"],
                    format=item["format"],
                    direction=item["direction"],
                    outcome=MutantOutcome(item["outcome"]),
                    detail=item.get("detail", ""),
                )
            )
        for item in document.get("releases", []):
            results.releases.append(
                ReleaseRow(
                    source=item["source"],
                    destination=item["destination"],
                    protocol=item["protocol"],
                    worst=Outcome(item["worst"]),
                    devices=dict(item.get("devices", {})),
                    machine=item.get("machine", ""),
                )
            )
        for item in document.get("agreement", {}).get("rows", []):
            results.agreement.append(Agreement(**item))
        return results


def _static_column(row: Agreement | None) -> dict[str, Any] | None:
    """A cell's or mutant run's static verdict next to its outcome, as ``matrix.json`` shows it."""
    if row is None:
        return None
    return {"verdict": row.static, "rules": row.rules, "agrees": row.agrees, "reason": row.reason}
