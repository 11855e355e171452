"""The static compatibility checker: compare two schema dumps and say what breaks, where and why.

Why: the matrix (:mod:`migcompat.compat.matrix`) finds incompatibilities by running
migrations; this finds them from the two releases' schemas alone, in
milliseconds, before anything runs -- what QEMU's
``scripts/vmstate-static-checker.py`` does for ``-dump-vmstate`` files, with
the cases it misses (destination-only subsections and trailing fields, the
section-level minimum version, sign and framing changes, everything after the
first mismatch in a description). Every finding has a rule
(:mod:`migcompat.schema.rules`), a JSON pointer into each file, and a message
that says why it breaks.

Strategy: a direction is a (source, destination) pair: ``forward`` asks
whether a stream OLD writes loads in NEW, ``backward`` the reverse. Each
description is compared at the stream version the source writes: the members
each side puts on the wire at that version are aligned by name (a longest
common subsequence, so duplicates such as QEMU's ``unused`` stay positional);
a member present on both sides but out of that order is *reordered*; leftover
members between the same anchors with the same legacy bytes are *renamed*;
the rest are *removed* or *added*. Aligned members are compared type by type.
Once a destination refuses a description's version, its contents are not
compared: the stream never gets that far.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from migcompat.model.layout import (
    Buf,
    Condition,
    Int,
    Kind,
    Layout,
    List,
    Member,
    Opaque,
    Plain,
    Record,
    Ref,
    Section,
    TopSection,
    join,
    label,
)
from migcompat.schema.rules import WIRES, Level, rule

FORWARD = "forward"
BACKWARD = "backward"
DIRECTIONS: tuple[str, ...] = (FORWARD, BACKWARD)
#: Fixed arrays up to this length are laid out element by element when
#: comparing legacy bytes (so an int16[4] equals a struct of four int16).
_EXPAND = 64
_UNUSED = "unused"


@dataclass(frozen=True)
class Finding:
    rule: str
    level: Level
    direction: str
    section: str
    #: Human path of the member: ``slirp/sockets[]/so_rcv/data``.
    path: str
    #: JSON pointers into the OLD and NEW documents (None where that side has no such place).
    old: str | None
    new: str | None
    message: str

    @property
    def breaks(self) -> frozenset[str]:
        return self.level.breaks

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "level": self.level.value,
            "breaks": sorted(self.breaks),
            "direction": self.direction,
            "section": self.section,
            "path": self.path,
            "old": self.old,
            "new": self.new,
            "message": self.message,
        }


@dataclass
class Report:
    """Every finding of one comparison, in the order the streams meet them."""

    directions: tuple[str, ...]
    findings: list[Finding] = field(default_factory=list)

    def breaking(self, wires: Iterable[str] = WIRES) -> list[Finding]:
        """Findings that break any of ``wires``."""
        wanted = set(wires)
        return [finding for finding in self.findings if finding.breaks & wanted]

    def compatible(self, wires: Iterable[str] = WIRES) -> bool:
        return not self.breaking(wires)

    def rules(self, wires: Iterable[str] = WIRES) -> list[str]:
        """The IDs of the rules that break ``wires``, each once, in order of first finding."""
        return list(dict.fromkeys(finding.rule for finding in self.breaking(wires)))


def compare(old: Layout, new: Layout, directions: Sequence[str] = (FORWARD,)) -> Report:
    """Compare two layouts in each direction asked for."""
    report = Report(tuple(directions))
    for direction in directions:
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {direction!r}")
        source, destination = (old, new) if direction == FORWARD else (new, old)
        _Comparison(report.findings, direction).layouts(source, destination)
    return report


# -- legacy bytes -------------------------------------------------------------------


def legacy(kind: Kind, version: int) -> tuple[Any, ...]:
    """What a member puts on the legacy wire, as comparable tokens (names left out)."""
    if isinstance(kind, Int):
        return (f"{'i' if kind.signed else 'u'}{kind.bits}",)
    if isinstance(kind, Plain):
        return (kind.kind,)
    if isinstance(kind, Buf):
        return (f"buf:{kind.size}",)
    if isinstance(kind, Opaque):
        return (f"bytes:{kind.size * (kind.count or 1)}",)
    if isinstance(kind, Record):
        return tuple(
            token
            for member in kind.members
            if member.on_wire(version)
            for token in (*legacy(member.kind, version), *((str(member.when),) if member.when else ()))
        )
    if isinstance(kind, Section):
        members = tuple(
            legacy(member.kind, kind.version_id) for member in kind.members if member.on_wire(kind.version_id)
        )
        return (("description", members, tuple(sub.name for sub in kind.subsections)),)
    element = legacy(kind.element, version)
    if isinstance(kind.length, int) and kind.framing.kind == "known" and kind.length <= _EXPAND:
        return element * kind.length
    return (("list", str(kind.framing), str(kind.length), element),)


def _lcs(
    left: Sequence[Any], right: Sequence[Any], tie_left: Sequence[Any] = (), tie_right: Sequence[Any] = ()
) -> list[tuple[int, int]]:
    """Index pairs of a longest common subsequence of two sequences.

    Among the longest, the one pairing the most items whose ``tie_*`` keys are
    equal too (so of two members called ``unused`` the one of the same size).
    """
    rows, cols = len(left), len(right)
    ties = len(tie_left) == rows and len(tie_right) == cols and rows > 0

    def weight(i: int, j: int) -> int:
        if left[i] != right[j]:
            return 0
        return 2 * (rows + cols + 1) + (1 if ties and tie_left[i] == tie_right[j] else 0)

    table = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows - 1, -1, -1):
        for j in range(cols - 1, -1, -1):
            best = max(table[i + 1][j], table[i][j + 1])
            step = weight(i, j)
            table[i][j] = max(best, table[i + 1][j + 1] + step) if step else best
    pairs: list[tuple[int, int]] = []
    i = j = 0
    while i < rows and j < cols:
        step = weight(i, j)
        if step and table[i][j] == table[i + 1][j + 1] + step:
            pairs.append((i, j))
            i += 1
            j += 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


#: A leaf of the legacy wire: its byte size; whether it occurs exactly once
#: (False: a member of unknown element count, that size one or more times);
#: its type where the description gives one (None: QEMU's dumps give sizes only).
Leaf = tuple[int, bool, str | None]
#: Most leaves compared byte by byte in one gap.
_MOST_LEAVES = 4096


def _total_bytes(members: Sequence[Member]) -> int:
    """The bytes of a side's placeholders (``unused``: always one element)."""
    return sum(member.kind.size * (member.kind.count or 1) for member in members if isinstance(member.kind, Opaque))


def _leaves(members: Sequence[Member], version: int, counts_known: bool) -> list[Leaf] | None:
    """The fixed-size leaves ``members`` put on the legacy wire at ``version``, in
    order; None when any member's bytes are not fixed by the description alone
    (a value condition, a length held in a field, a nested subsection)."""
    out: list[Leaf] = []
    for member in members:
        if not member.on_wire(version):
            continue
        leaves = None if member.when is not None else _kind_leaves(member.kind, version, counts_known)
        if leaves is None or len(out) + len(leaves) > _MOST_LEAVES:
            return None
        out += leaves
    return out


def _kind_leaves(kind: Kind, version: int, counts_known: bool) -> list[Leaf] | None:
    if isinstance(kind, Opaque):
        return [(kind.size, counts_known, None)] if kind.count is None else [(kind.size, True, None)] * kind.count
    if isinstance(kind, Int):
        return [(kind.bits // 8, True, legacy(kind, version)[0])]
    if isinstance(kind, Plain):
        return [(1, True, "bool")] if kind.kind == "bool" else None
    if isinstance(kind, Buf):
        return [(kind.size, True, "buffer")] if isinstance(kind.size, int) else None
    if isinstance(kind, Record):
        return _leaves(kind.members, version, counts_known)
    if isinstance(kind, Section):
        return None if kind.subsections else _leaves(kind.members, kind.version_id, counts_known)
    if isinstance(kind.length, int) and kind.framing.kind == "known" and kind.length <= _MOST_LEAVES:
        element = _kind_leaves(kind.element, version, counts_known)
        return None if element is None else element * kind.length
    return None


def _same_leaves(left: list[Leaf], right: list[Leaf]) -> bool:
    """Whether both sides put leaves of the same sizes at the same offsets; a
    leaf of unknown count on one side stands for one or more of its size."""
    seen: set[tuple[int, int]] = set()
    work = [(0, 0)]
    while work:
        i, j = work.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(left) or j == len(right):
            if i == len(left) and j == len(right):
                return True
            continue
        (size, exact, kind), (other, other_exact, other_kind) = left[i], right[j]
        if size != other or not _same_leaf_type(kind, other_kind):
            continue
        work.append((i + 1, j + 1))
        if not exact and other_exact:
            work.append((i, j + 1))  # the unknown count takes one more
        elif exact and not other_exact:
            work.append((i + 1, j))
    return False


def _same_total(left: list[Leaf], right: list[Leaf]) -> bool | None:
    """Whether both sides put the same number of bytes on the wire: True when
    they do with every count of one, None when they do only with the count of
    the one member of unknown count inferred, False otherwise."""
    totals = [sum(size for size, _, _ in side) for side in (left, right)]
    if totals[0] == totals[1]:
        return True
    unknown = [(index, size) for index, side in enumerate((left, right)) for size, exact, _ in side if not exact]
    if len(unknown) != 1:
        return False
    index, size = unknown[0]
    rest = totals[1 - index] - totals[index]
    return None if rest > 0 and rest % size == 0 else False


def _same_sizes(left: list[Leaf], right: list[Leaf]) -> bool | None:
    """Whether both sides put leaves of the same sizes at the same offsets: True
    with every count of one, None only with counts inferred, False otherwise."""
    if len(left) == len(right) and all(
        a[0] == b[0] and _same_leaf_type(a[2], b[2]) for a, b in zip(left, right, strict=True)
    ):
        return True
    return None if _same_leaves(left, right) else False


def _same_leaf_type(kind: str | None, other: str | None) -> bool:
    """Two leaves of one size agree unless both have types and they differ (a sign change misreads)."""
    return kind is None or other is None or kind == other


#: Said of a member added behind a test function (``field_exists``).
_TEST_GATED = (
    "; a test function gates it at the destination: QEMU turns such a field off for older machine types with "
    "a compatibility property, and a dump of one machine type cannot show whether it does"
)


def _test_gated(member: Member) -> bool:
    return member.when is not None and member.when.field is None


#: Said of a finding that relies on an inferred element count.
_INFERRED = (
    " (taking the element count of a member the older dump gives no count for from the bytes on the other side: "
    "QEMU's dumps before 8.0 do not tell an array from one element)"
)


# -- the comparison -----------------------------------------------------------------


class _Comparison:
    """One direction: ``source`` writes, ``destination`` reads."""

    def __init__(self, findings: list[Finding], direction: str) -> None:
        self.findings = findings
        self.direction = direction
        self.section = ""
        #: Whether each side's dump gives element counts (source, destination).
        self.counts_known = (True, True)

    def add(
        self,
        rule_id: str,
        path: str,
        source: str | None,
        destination: str | None,
        message: str,
        level: Level | None = None,
    ) -> None:
        old, new = (source, destination) if self.direction == FORWARD else (destination, source)
        self.findings.append(
            Finding(
                rule=rule_id,
                level=level or rule(rule_id).level,
                direction=self.direction,
                section=self.section,
                path=path,
                old=old,
                new=new,
                message=message,
            )
        )

    # -- sections ------------------------------------------------------------
    def layouts(self, source: Layout, destination: Layout) -> None:
        self.counts_known = (source.counts_known, destination.counts_known)
        if source.machine is not None and destination.machine is not None and source.machine != destination.machine:
            self.add(
                "MACHINE_TYPE_CHANGED",
                "",
                source.machine_pointer,
                destination.machine_pointer,
                f"the source is machine type {source.machine!r}, the destination {destination.machine!r}: QEMU's "
                "configuration section carries the machine type and the destination refuses a stream of another "
                "one (QEMU's checker only warns)",
            )
        for key, top in source.sections.items():
            self.section = key
            other = destination.sections.get(key)
            if other is None:
                self.add(
                    "SECTION_REMOVED",
                    key,
                    top.pointer,
                    None,
                    f"the source sends section '{key}'; the destination has no such section and refuses the stream",
                )
                continue
            self.top(top, other)
        for key, top in destination.sections.items():
            if key not in source.sections:
                self.section = key
                self.add(
                    "SECTION_ADDED",
                    key,
                    None,
                    top.pointer,
                    f"only the destination has section '{key}': the source never sends it, so the destination "
                    "keeps that device's reset state",
                )

    def top(self, source: TopSection, destination: TopSection) -> None:
        if source.version_id is not None and destination.version_id is not None:
            accepted = self.versions(
                f"section '{source.key}'",
                source.key,
                source.version_id,
                destination.version_id,
                destination.minimum_version_id or 0,
                (join(source.pointer, "version_id"), join(destination.pointer, "version_id")),
                join(destination.pointer, "minimum_version_id"),
                accept_unknown=False,
            )
            if not accepted:
                return
        self.description(source.description, destination.description, source.key)

    def versions(
        self,
        what: str,
        path: str,
        version: int,
        maximum: int,
        minimum: int,
        pointers: tuple[str, str],
        minimum_pointer: str,
        *,
        accept_unknown: bool,
    ) -> bool:
        """Check a version the source writes against what the destination reads; False when refused."""
        if version > maximum:
            if accept_unknown:
                self.add(
                    "VERSION_TOO_NEW",
                    path,
                    *pointers,
                    f"the source writes {what} at version {version}, above the destination's {maximum}: the legacy "
                    "stream is refused; on BER the destination accepts newer versions (accept_unknown) and skips "
                    "what it does not know",
                    level=Level.WIRE_LEGACY,
                )
                return True
            self.add(
                "VERSION_TOO_NEW",
                path,
                *pointers,
                f"the source writes {what} at version {version}; the destination reads versions "
                f"{minimum}..{maximum} and refuses it",
            )
            return False
        if version < minimum:
            self.add(
                "VERSION_BELOW_MINIMUM",
                path,
                pointers[0],
                minimum_pointer,
                f"the source writes {what} at version {version}; the destination's minimum_version_id is {minimum}"
                + (f" (it reads {minimum}..{maximum})" if minimum <= maximum else "")
                + " and refuses it",
            )
            return False
        return True

    def description(self, source: Section, destination: Section, path: str) -> None:
        if source.name != destination.name:
            self.add(
                "DESCRIPTION_RENAMED",
                path,
                join(source.pointer, source.keys[0]),
                join(destination.pointer, destination.keys[0]),
                f"description '{source.name}' is called '{destination.name}' at the destination: a nested "
                "description's name is on no wire, so its fields are compared as usual",
            )
        version = source.version_id
        accepted = self.versions(
            f"description '{source.name}'",
            path,
            version,
            destination.version_id,
            destination.minimum_version_id,
            (join(source.pointer, source.keys[1]), join(destination.pointer, destination.keys[1])),
            join(destination.pointer, destination.keys[2]),
            accept_unknown=destination.accept_unknown,
        )
        if not accepted:
            return
        self.members(
            path,
            source.members,
            destination.members,
            version,
            min(version, destination.version_id),
            accept_unknown=destination.accept_unknown,
        )
        self.subsections(source, destination, path)

    def subsections(self, source: Section, destination: Section, path: str) -> None:
        for sub in source.subsections:
            other = destination.subsection(sub.name)
            where = f"{path}/{sub.name}"
            if other is None:
                if not sub.critical and destination.accept_unknown:
                    self.add(
                        "SUBSECTION_SKIPPED",
                        where,
                        sub.pointer,
                        destination.pointer,
                        f"the source sends subsection '{sub.name}' when its state needs it; the destination does "
                        "not know it: the legacy stream is refused, BER skips it (non-critical, accept_unknown) "
                        "and its state is lost",
                    )
                else:
                    self.add(
                        "SUBSECTION_REMOVED",
                        where,
                        sub.pointer,
                        destination.pointer,
                        f"the source sends subsection '{sub.name}' whenever its state needs it; the destination "
                        "does not know it and refuses the stream",
                    )
                continue
            self.description(sub.description, other.description, where)
        for sub in destination.subsections:
            if source.subsection(sub.name) is None:
                self.add(
                    "SUBSECTION_ADDED",
                    f"{path}/{sub.name}",
                    source.pointer,
                    sub.pointer,
                    f"only the destination knows subsection '{sub.name}': the source never sends it, so the "
                    "destination keeps its defaults for that state",
                )

    # -- members ---------------------------------------------------------------
    def members(
        self,
        path: str,
        source_members: Sequence[Member],
        destination_members: Sequence[Member],
        version: int,
        destination_version: int,
        *,
        accept_unknown: bool = False,
    ) -> None:
        sent = [member for member in source_members if member.on_wire(version)]
        read = [member for member in destination_members if member.on_wire(destination_version)]
        anchors = _lcs(
            [member.name for member in sent],
            [member.name for member in read],
            [legacy(member.kind, version) for member in sent],
            [legacy(member.kind, destination_version) for member in read],
        )
        matched: list[tuple[int, int]] = list(anchors)
        left = [i for i in range(len(sent)) if i not in {a for a, _ in anchors}]
        right = [j for j in range(len(read)) if j not in {b for _, b in anchors}]
        for i in list(left):
            j = next((j for j in right if read[j].name == sent[i].name), None)
            if j is not None:
                left.remove(i)
                right.remove(j)
                self.add(
                    "FIELD_REORDERED",
                    f"{path}/{sent[i].name}",
                    sent[i].pointer,
                    read[j].pointer,
                    f"'{sent[i].name}' is member {i + 1} of {len(sent)} in the source's stream but member {j + 1} "
                    f"of {len(read)} at the destination: the members between are read in the wrong places "
                    "(qemufile) or refused by name (BER)",
                )
                matched.append((i, j))
        renames: dict[str, str] = {}
        for gap_left, gap_right in self._gaps(anchors, left, right):
            renamed = self.gap(
                path,
                (sent, read),
                (gap_left, gap_right),
                (source_members, destination_members),
                version,
                accept_unknown=accept_unknown,
                last_anchor=anchors[-1][0] if anchors else -1,
            )
            for i, j in renamed:
                renames[sent[i].name] = read[j].name
                matched.append((i, j))
        for i, j in sorted(matched):
            self.member(path, sent[i], read[j], version, destination_version, renames)

    @staticmethod
    def _gaps(anchors: list[tuple[int, int]], left: list[int], right: list[int]) -> list[tuple[list[int], list[int]]]:
        """Unmatched members grouped by the anchors around them."""
        bounds = [(-1, -1), *anchors]
        gaps: list[tuple[list[int], list[int]]] = []
        for index, (low_left, low_right) in enumerate(bounds):
            high_left, high_right = anchors[index] if index < len(anchors) else (1 << 30, 1 << 30)
            gaps.append(
                (
                    [i for i in left if low_left < i < high_left],
                    [j for j in right if low_right < j < high_right],
                )
            )
        return gaps

    def gap(
        self,
        path: str,
        wire: tuple[Sequence[Member], Sequence[Member]],
        gap: tuple[list[int], list[int]],
        everything: tuple[Sequence[Member], Sequence[Member]],
        version: int,
        *,
        accept_unknown: bool,
        last_anchor: int,
    ) -> list[tuple[int, int]]:
        """Members between the same anchors: renamed, retired into ``unused``, removed or added.

        ``wire`` holds the members each side puts on the wire, ``gap`` the
        indexes (into ``wire``) of this gap's unmatched ones, ``everything``
        each side's members at any version (to say why one is missing).
        """
        sent, read = wire
        left, right = gap
        if not left and not right:
            return []
        sources = [sent[i] for i in left]
        readers = [read[j] for j in right]
        if self.retired(path, sources, readers, version):
            return []
        pairs = _lcs(
            [legacy(member.kind, version) for member in sources],
            [legacy(member.kind, version) for member in readers],
        )
        if len(pairs) < max(len(sources), len(readers)) and self.regrouped(path, sources, readers, version):
            return []
        renamed = [(left[a], right[b]) for a, b in pairs]
        for i, j in renamed:
            self.add(
                "FIELD_RENAMED",
                f"{path}/{sent[i].name}",
                sent[i].pointer,
                read[j].pointer,
                f"'{sent[i].name}' is called '{read[j].name}' at the destination, in the same place with the same "
                f"type ({label(sent[i].kind)}): the legacy bytes are unchanged (the legacy stream carries no "
                "names), but BER carries the name and refuses it",
            )
        taken_left = {i for i, _ in renamed}
        taken_right = {j for _, j in renamed}
        added = [j for j in right if j not in taken_right]
        for i in left:
            if i in taken_left:
                continue
            member = sent[i]
            if accept_unknown and i > last_anchor and not added:
                self.add(
                    "FIELD_REMOVED",
                    f"{path}/{member.name}",
                    member.pointer,
                    None,
                    f"the source writes '{member.name}' ({label(member.kind)}) at version {version}; the destination "
                    "does not read it: the legacy stream misreads what follows, BER skips it (the destination "
                    "accepts unknown trailing members) and its value is lost",
                    level=Level.WIRE_LEGACY,
                )
                continue
            gated = next((m for m in everything[1] if m.name == member.name), None)
            why = f" ({self._gating(gated, version, 'reads')})" if gated is not None else ""
            self.add(
                "FIELD_REMOVED",
                f"{path}/{member.name}",
                member.pointer,
                gated.pointer if gated is not None else None,
                f"the source writes '{member.name}' ({label(member.kind)}) at version {version}; the destination "
                f"does not read it{why}: what follows it is misread on the legacy stream, and BER refuses the "
                "unknown member",
            )
        for j in added:
            member = read[j]
            gated = next((m for m in everything[0] if m.name == member.name), None)
            why = f" ({self._gating(gated, version, 'writes')})" if gated is not None else ""
            self.add(
                "FIELD_ADDED",
                f"{path}/{member.name}",
                gated.pointer if gated is not None else None,
                member.pointer,
                f"the destination reads '{member.name}' ({label(member.kind)}) from a version-{version} stream, "
                f"but the source does not write it{why}: added without a version bump (give it since={version + 1} "
                "and raise version_id, so older streams go without it)" + _TEST_GATED * _test_gated(member),
            )
        return renamed

    def retired(self, path: str, sources: Sequence[Member], readers: Sequence[Member], version: int) -> bool:
        """QEMU's ``VMSTATE_UNUSED``: fields on one side, a placeholder of the same bytes on the other."""
        if not sources or not readers:
            return False
        if all(member.name == _UNUSED for member in sources):
            retired, placeholder, source_side = readers, sources[0], False
        elif all(member.name == _UNUSED for member in readers):
            retired, placeholder, source_side = sources, readers[0], True
        else:
            return False
        left, right = self.leaves(sources, readers, version)
        same = False if left is None or right is None else _same_total(left, right)
        if same is False:
            return False
        total = _total_bytes(readers if source_side else sources)
        for member in retired:
            self.add(
                "FIELD_UNUSED",
                f"{path}/{member.name}",
                member.pointer if source_side else placeholder.pointer,
                placeholder.pointer if source_side else member.pointer,
                f"'{member.name}' sits where the other side has an 'unused' placeholder of the same {total} bytes"
                f"{'' if same else _INFERRED}: the legacy bytes are read and dropped, so its value is not migrated;"
                " BER carries its name where the placeholder is read",
            )
        return True

    def regrouped(self, path: str, sources: Sequence[Member], readers: Sequence[Member], version: int) -> bool:
        """Members renamed, split, merged or regrouped into structs with the same
        legacy bytes: leaves of the same sizes at the same offsets."""
        left, right = self.leaves(sources, readers, version)
        if not left or not right:
            return False
        same = _same_sizes(left, right)
        if same is False:
            return False
        total = sum(size for size, _, _ in right)
        names = ", ".join(f"'{member.name}'" for member in sources)
        others = ", ".join(f"'{member.name}'" for member in readers)
        self.add(
            "FIELDS_REGROUPED",
            f"{path}/{sources[0].name}",
            sources[0].pointer,
            readers[0].pointer,
            f"the source's {names} are the destination's {others}: the same {total} legacy "
            f"bytes in the same places{'' if same else _INFERRED}, so the legacy stream loads unchanged; BER carries "
            "the names and refuses it",
        )
        return True

    def leaves(
        self, sources: Sequence[Member], readers: Sequence[Member], version: int
    ) -> tuple[list[Leaf] | None, list[Leaf] | None]:
        return (
            _leaves(sources, version, self.counts_known[0]),
            _leaves(readers, version, self.counts_known[1]),
        )

    @staticmethod
    def _gating(member: Member, version: int, verb: str) -> str:
        if member.since > version:
            return f"it {verb} it only from version {member.since}"
        return f"it {verb} it only before version {member.until}"

    def member(
        self,
        path: str,
        source: Member,
        destination: Member,
        version: int,
        destination_version: int,
        renames: dict[str, str],
    ) -> None:
        where = f"{path}/{source.name}"
        if not _same_condition(source.when, destination.when, renames):
            self.add(
                "CONDITION_CHANGED",
                where,
                source.pointer,
                destination.pointer,
                f"'{source.name}' is on the wire {self._condition(source.when)} at the source but "
                f"{self._condition(destination.when)} at the destination: where they disagree, one side writes "
                "it and the other does not read it",
            )
        if (source.since, source.until) != (destination.since, destination.until):
            self.add(
                "FIELD_VERSION_CHANGED",
                where,
                source.pointer,
                destination.pointer,
                f"'{source.name}' is carried from version {source.since}"
                + (f" until {source.until}" if source.until is not None else "")
                + f" at the source and from {destination.since}"
                + (f" until {destination.until}" if destination.until is not None else "")
                + f" at the destination; a version-{version} stream has it on both sides, so this stream is "
                "unaffected, but a stream of another version is not",
            )
        self.kind(where, source.kind, destination.kind, source.pointer, destination.pointer, version, renames)

    @staticmethod
    def _condition(condition: Condition | None) -> str:
        return "always" if condition is None else f"only when {condition}"

    def kind(
        self,
        path: str,
        source: Kind,
        destination: Kind,
        source_at: str,
        destination_at: str,
        version: int,
        renames: dict[str, str],
    ) -> None:
        if isinstance(source, Section) and isinstance(destination, Section):
            self.description(source, destination, path)
        elif isinstance(source, Int) and isinstance(destination, Int):
            if source.bits != destination.bits:
                self.add(
                    "WIDTH_CHANGED",
                    path,
                    source_at,
                    destination_at,
                    f"written as {source.label} ({source.bits // 8} bytes), read as {destination.label} "
                    f"({destination.bits // 8} bytes): the legacy stream misreads it and every later byte; BER "
                    "refuses the width",
                )
            elif source.signed != destination.signed:
                self.add(
                    "SIGN_CHANGED",
                    path,
                    source_at,
                    destination_at,
                    f"written as {source.label}, read as {destination.label}: same bytes on the legacy stream, so "
                    f"a value with the top bit set (>= 2^{source.bits - 1}, or negative) is silently misread; "
                    "BER refuses the sign",
                )
        elif isinstance(source, Plain) and isinstance(destination, Plain) and source.kind == destination.kind:
            return
        elif isinstance(source, Buf) and isinstance(destination, Buf):
            if not _same_size(source.size, destination.size, renames):
                self.add(
                    "BUFFER_SIZE_CHANGED",
                    path,
                    source_at,
                    destination_at,
                    f"the source writes {_size_text(source.size)} bytes, the destination reads "
                    f"{_size_text(destination.size)}: the legacy stream misreads it and what follows; BER refuses "
                    "the length",
                )
        elif isinstance(source, Opaque) and isinstance(destination, Opaque):
            self.opaque(path, source, destination, source_at, destination_at)
        elif isinstance(source, List) and isinstance(destination, List):
            self.lists(path, source, destination, source_at, destination_at, version, renames)
        elif isinstance(source, Record) and isinstance(destination, Record):
            if source.name != destination.name:
                self.add(
                    "DESCRIPTION_RENAMED",
                    path,
                    source_at,
                    destination_at,
                    f"struct '{source.name}' is called '{destination.name}' at the destination: a struct's name is "
                    "on no wire, so its members are compared as usual",
                )
            self.members(path, source.members, destination.members, version, version)
        elif legacy(source, version) == legacy(destination, version):
            self.add(
                "SHAPE_CHANGED",
                path,
                source_at,
                destination_at,
                f"written as {label(source)}, read as {label(destination)}: the same legacy bytes, so qemufile "
                "loads it, but BER carries the shape and refuses it",
            )
        else:
            self.add(
                "TYPE_CHANGED",
                path,
                source_at,
                destination_at,
                f"written as {label(source)}, read as {label(destination)}: different bytes on the legacy stream, "
                "and BER refuses the type",
            )

    def opaque(self, path: str, source: Opaque, destination: Opaque, source_at: str, destination_at: str) -> None:
        if source.count is not None and destination.count is not None and source.count != destination.count:
            self.add(
                "ARRAY_LENGTH_CHANGED",
                path,
                join(source_at, "num"),
                join(destination_at, "num"),
                f"the source writes {source.count} elements, the destination reads {destination.count}: every "
                "later byte is misread",
            )
        if source.size != destination.size:
            self.add(
                "SIZE_CHANGED",
                path,
                join(source_at, "size"),
                join(destination_at, "size"),
                f"the source writes {source.size} bytes, the destination reads {destination.size}: the field and "
                "every later byte are misread",
            )

    def lists(
        self,
        path: str,
        source: List,
        destination: List,
        source_at: str,
        destination_at: str,
        version: int,
        renames: dict[str, str],
    ) -> None:
        if source.framing != destination.framing:
            self.add(
                "FRAMING_CHANGED",
                path,
                join(source_at, "x-framing"),
                join(destination_at, "x-framing"),
                f"the source frames the list with {source.framing}, the destination reads {destination.framing}: "
                "the legacy stream misreads it; BER frames lists its own way and is unaffected",
            )
        if not _same_length(source.length, destination.length, renames):
            self.add(
                "ARRAY_LENGTH_CHANGED",
                path,
                source_at,
                destination_at,
                f"the source writes {_length_text(source.length)}, the destination reads "
                f"{_length_text(destination.length)}: the element count disagrees",
            )
        if destination.max_length is not None and (
            source.max_length is None or destination.max_length < source.max_length
        ):
            most = "any number of" if source.max_length is None else f"up to {source.max_length}"
            self.add(
                "MAX_LENGTH_LOWERED",
                path,
                source_at,
                join(destination_at, "x-max-length"),
                f"the source writes {most} elements, the destination accepts at most {destination.max_length}: "
                "a longer list is refused",
            )
        self.kind(f"{path}[]", source.element, destination.element, source.items, destination.items, version, {})


def _same_condition(source: Condition | None, destination: Condition | None, renames: dict[str, str]) -> bool:
    if source is None or destination is None:
        return source is destination
    if source.field is None or destination.field is None:
        return source.field is destination.field
    return renames.get(source.field, source.field) == destination.field and source.equals == destination.equals


def _same_size(source: int | Ref, destination: int | Ref, renames: dict[str, str]) -> bool:
    if isinstance(source, Ref) and isinstance(destination, Ref):
        return renames.get(source.field, source.field) == destination.field and source.scale == destination.scale
    return source == destination


def _same_length(source: int | Ref | None, destination: int | Ref | None, renames: dict[str, str]) -> bool:
    if source is None or destination is None:
        return source is destination
    return _same_size(source, destination, renames)


def _size_text(size: int | Ref) -> str:
    return str(size) if isinstance(size, int) else f"(held in {size})"


def _length_text(length: int | Ref | None) -> str:
    if length is None:
        return "a count carried by the stream"
    if isinstance(length, int):
        return f"exactly {length} elements"
    return f"as many elements as {length} says"


__all__ = ["BACKWARD", "DIRECTIONS", "FORWARD", "Finding", "Report", "compare", "legacy"]
