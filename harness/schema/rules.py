"""The static checker's rules: IDs, levels, and what each means on each wire.

Why: a finding is only useful if a person can look its rule up -- what it
catches, why it breaks (or does not break) migration, and whether QEMU's own
``vmstate-static-checker.py`` would have said it -- and if CI can decide on
levels rather than on prose. As in buf's breaking-change rules, each rule has
an ID and belongs to a level; unlike buf's, the levels say *which wire formats*
a change breaks, because the two formats break differently: the legacy
qemufile stream carries no names (a rename is harmless there, a width change
is silent corruption) and BER carries names and types but no list framing.

Levels:

* ``WIRE`` -- breaks both wire formats (the destination refuses or misreads);
* ``WIRE_LEGACY`` -- breaks the legacy qemufile stream only;
* ``WIRE_BER`` -- breaks the self-describing BER stream only (the legacy bytes
  are unchanged);
* ``ADVISORY`` -- breaks neither; worth a look in review.

A finding normally has its rule's level; the few exceptions (a destination
that skips unknown members on BER) lower it and say so in the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Level(StrEnum):
    WIRE = "WIRE"
    WIRE_LEGACY = "WIRE_LEGACY"
    WIRE_BER = "WIRE_BER"
    ADVISORY = "ADVISORY"

    @property
    def breaks(self) -> frozenset[str]:
        """The wire formats a change of this level breaks."""
        return _BREAKS[self]


_BREAKS = {
    Level.WIRE: frozenset({"qemufile", "ber"}),
    Level.WIRE_LEGACY: frozenset({"qemufile"}),
    Level.WIRE_BER: frozenset({"ber"}),
    Level.ADVISORY: frozenset(),
}
#: The wire formats a verdict can be asked for.
WIRES: tuple[str, ...] = ("qemufile", "ber")


@dataclass(frozen=True)
class Rule:
    id: str
    level: Level
    #: What the rule catches, in one line.
    summary: str
    #: What QEMU's vmstate-static-checker.py says for it, or None when it misses the case.
    qemu: str | None


RULES: tuple[Rule, ...] = (
    Rule(
        "SECTION_REMOVED",
        Level.WIRE,
        "a section the source sends is unknown to the destination",
        "does not exist in dest",
    ),
    Rule(
        "SECTION_ADDED",
        Level.ADVISORY,
        "a section only the destination has (never sent: it keeps its reset state)",
        None,
    ),
    Rule(
        "VERSION_TOO_NEW",
        Level.WIRE,
        "the source writes a version above the destination's version_id (section, description or subsection)",
        "version error: A > B",
    ),
    Rule(
        "VERSION_BELOW_MINIMUM",
        Level.WIRE,
        "the source writes a version below the destination's minimum_version_id (sections too)",
        "minimum version error: A < B (descriptions only; never counted for a section)",
    ),
    Rule(
        "FIELD_REMOVED",
        Level.WIRE,
        "the source writes a field the destination does not read at that version",
        'expected field "X", got "Y" / while dest has no further fields',
    ),
    Rule(
        "FIELD_ADDED",
        Level.WIRE,
        "the destination reads a field the source does not write at that version: added without a version bump",
        'expected field "X", got "Y" (missed when the field is last)',
    ),
    Rule(
        "FIELD_RENAMED",
        Level.WIRE_BER,
        "same place, same type, another name: the legacy bytes are unchanged, BER carries the name",
        'expected field "X", got "Y"; skipping rest',
    ),
    Rule(
        "FIELD_REORDERED",
        Level.WIRE,
        "a field moved: every field between is read in the wrong place",
        'expected field "X", got "Y"; skipping rest',
    ),
    Rule(
        "FIELD_VERSION_CHANGED",
        Level.ADVISORY,
        "a field's since/until version differs but the compared stream version carries it on both sides",
        "version error: A > B (on the field)",
    ),
    Rule(
        "FIELDS_REGROUPED",
        Level.WIRE_BER,
        "members renamed, split, merged or regrouped into a struct with the same legacy bytes in the same places",
        'expected field "X", got "Y"; skipping rest',
    ),
    Rule(
        "FIELD_UNUSED",
        Level.WIRE_BER,
        "fields replaced by an 'unused' placeholder of the same byte size: the legacy bytes are read and dropped,"
        " BER carries the fields' names where the placeholder is read",
        "accepted; 'unused size mismatch' when the sizes differ",
    ),
    Rule("WIDTH_CHANGED", Level.WIRE, "an integer's width changed", "size mismatch"),
    Rule("SIGN_CHANGED", Level.WIRE, "an integer's signedness changed: values with the top bit set are misread", None),
    Rule("SIZE_CHANGED", Level.WIRE, "a field's byte size changed (all a QEMU dump says of a field)", "size mismatch"),
    Rule(
        "TYPE_CHANGED",
        Level.WIRE,
        "a field's type changed and its legacy bytes differ",
        'Field "X": missing description (struct <-> plain field)',
    ),
    Rule(
        "SHAPE_CHANGED",
        Level.WIRE_BER,
        "a field's shape changed but its legacy bytes did not (an array of N became a struct of N, or back)",
        None,
    ),
    Rule(
        "ARRAY_LENGTH_CHANGED",
        Level.WIRE,
        "an array's length (fixed, or the field holding it) changed",
        "size mismatch (QEMU 8.0+ dumps)",
    ),
    Rule(
        "BUFFER_SIZE_CHANGED", Level.WIRE, "a buffer's size (fixed, or the field holding it) changed", "size mismatch"
    ),
    Rule("MAX_LENGTH_LOWERED", Level.WIRE, "the destination accepts fewer list elements than the source writes", None),
    Rule(
        "FRAMING_CHANGED",
        Level.WIRE_LEGACY,
        "a list's legacy framing changed (count width, sentinel bytes, known length)",
        None,
    ),
    Rule("CONDITION_CHANGED", Level.WIRE, "the test that decides whether a field is on the wire changed", None),
    Rule(
        "SUBSECTION_REMOVED",
        Level.WIRE,
        "the source sends a subsection the destination does not know: refused when it is needed",
        'Subsection "X" not found',
    ),
    Rule(
        "SUBSECTION_SKIPPED",
        Level.WIRE_LEGACY,
        "a non-critical subsection the destination does not know, skipped on BER (accept_unknown), refused on qemufile",
        'Subsection "X" not found',
    ),
    Rule("SUBSECTION_ADDED", Level.ADVISORY, "a subsection only the destination knows (never sent)", None),
    Rule(
        "DESCRIPTION_RENAMED",
        Level.ADVISORY,
        "a nested description's or struct's name changed: not on any wire (its fields are compared)",
        'Description "X" missing, got "Y" instead; skipping',
    ),
    Rule(
        "MACHINE_TYPE_CHANGED",
        Level.WIRE,
        "the two QEMU dumps are of different machine types: the destination refuses the stream",
        "Warning: checking incompatible machine types (not counted)",
    ),
)
BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}


def rule(rule_id: str) -> Rule:
    return BY_ID[rule_id]


__all__ = ["BY_ID", "RULES", "WIRES", "Level", "Rule", "rule"]
