"""The outcome vocabulary: what happened when a destination loaded what a source saved.

Why at the root of the package: devices declare the outcome they expect per
cell, the matrix measures one, and the reports render them; devices sit below
the matrix, so the words they share live below both.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """What happened when a destination loaded what a source saved (DESIGN §7)."""

    #: Loaded; equals the source state projected onto the destination's fields.
    OK = "ok"
    #: A clean, expected refusal: version out of range, unknown needed subsection.
    REFUSED = "refused"
    #: The protocol noticed a type or shape mismatch and refused with path and offset.
    DETECTED = "detected"
    #: Loaded without error, but the state is wrong: silent corruption.
    CORRUPT = "corrupt"
    #: An exception outside the project's error hierarchy, a hang or a limit breach.
    CRASH = "crash"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Outcome.OK: 0, Outcome.REFUSED: 1, Outcome.DETECTED: 2, Outcome.CORRUPT: 3, Outcome.CRASH: 4}


def worst(outcomes: list[Outcome]) -> Outcome:
    return max(outcomes, key=lambda outcome: outcome.severity) if outcomes else Outcome.OK


class MutantOutcome(StrEnum):
    """What one mutant did on one wire format."""

    DETECTED = "detected"  # refused with a DecodeError (or refused as a version/subsection mismatch)
    CORRUPT = "corrupt"  # loaded silently wrong
    HARMLESS = "harmless"  # loaded, and the state is right
    CRASH = "crash"  # anything outside the project's error hierarchy


__all__ = ["MutantOutcome", "Outcome", "worst"]
