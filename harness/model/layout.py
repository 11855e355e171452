"""What the static checker compares: the wire layout of a release, read from a schema dump.

Why: two kinds of input describe a release -- migcompat's own schema dumps
(:mod:`migcompat.schema.read`, every width, framing and condition known) and
QEMU's ``-dump-vmstate`` JSON (:mod:`migcompat.qemu.dump`, field names, versions
and byte sizes only). Reading both into one small model lets a single
comparison (:mod:`migcompat.schema.diff`) serve both, and says exactly what each
input can and cannot tell.

Strategy: frozen dataclasses, one per kind of member type, each carrying the
JSON pointer of the place it was read from so a finding can point into the
file a person has open. A member knows the stream versions that carry it
(``since``/``until``) and the condition that gates it; what QEMU's dump only
says as "a test function exists" is a :class:`Condition` without a field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Where the input came from: migcompat's schema dumps or QEMU's -dump-vmstate.
MIGCOMPAT = "migcompat"
QEMU = "qemu"


@dataclass(frozen=True)
class Int:
    bits: int
    signed: bool

    @property
    def label(self) -> str:
        return f"{'int' if self.signed else 'uint'}{self.bits}"


@dataclass(frozen=True)
class Plain:
    """``bool`` or ``str``."""

    kind: str

    @property
    def label(self) -> str:
        return self.kind


@dataclass(frozen=True)
class Ref:
    """A length held in an earlier member of the same container, times ``scale``."""

    field: str
    scale: int = 1

    def __str__(self) -> str:
        return f"'{self.field}'" + (f" x {self.scale}" if self.scale != 1 else "")


@dataclass(frozen=True)
class Buf:
    size: int | Ref

    @property
    def label(self) -> str:
        return f"buffer[{self.size}]"


@dataclass(frozen=True)
class ListFraming:
    """How a list's extent is written on the legacy wire (``x-framing``)."""

    kind: str
    count_bits: int | None = None
    marker: int | None = None
    terminator: int | None = None

    def __str__(self) -> str:
        if self.kind == "count":
            return f"a {self.count_bits}-bit count before the elements"
        if self.kind == "sentinel":
            end = "no terminator" if self.terminator is None else f"{self.terminator} after the last"
            return f"sentinel framing ({self.marker} before each element, {end})"
        return "no framing (the length is known to both sides)"


@dataclass(frozen=True)
class List:
    element: Kind
    #: Elements: a fixed count, a count held in another member, or None when the stream carries it.
    length: int | Ref | None
    framing: ListFraming
    max_length: int | None
    #: Pointer to the element's schema.
    items: str

    @property
    def label(self) -> str:
        length = "" if self.length is None else str(self.length)
        return f"{_label(self.element)}[{length}]"


@dataclass(frozen=True)
class Record:
    """A struct: members in wire order."""

    name: str
    members: tuple[Member, ...]

    @property
    def label(self) -> str:
        return f"struct {self.name}"


@dataclass(frozen=True)
class Opaque:
    """A member QEMU's dump describes by its byte size only (and, in newer dumps, an element count)."""

    size: int
    count: int | None = None

    @property
    def label(self) -> str:
        return f"{self.size} bytes" + (f" x {self.count}" if self.count is not None else "")


@dataclass(frozen=True)
class Condition:
    """The test that gates a member: ``field == equals``, or (QEMU) an unknown test function."""

    field: str | None = None
    equals: int | None = None

    def __str__(self) -> str:
        return "a test function" if self.field is None else f"{self.field} == {self.equals}"


@dataclass(frozen=True)
class Member:
    name: str
    kind: Kind
    since: int
    until: int | None
    when: Condition | None
    pointer: str
    #: QEMU dumps: how many of a nested description the field holds (``num``, QEMU 8.0 on);
    #: the static checker does not compare it yet.
    count: int | None = None

    def on_wire(self, version: int) -> bool:
        return self.since <= version and (self.until is None or version < self.until)


@dataclass(frozen=True)
class Subsection:
    name: str
    critical: bool
    description: Section
    pointer: str


@dataclass(frozen=True)
class Section:
    """A description (QEMU's VMStateDescription): its versions, members and subsections."""

    name: str
    version_id: int
    minimum_version_id: int
    members: tuple[Member, ...]
    subsections: tuple[Subsection, ...]
    pointer: str
    #: On a self-describing stream, skip unknown trailing members and non-critical subsections.
    accept_unknown: bool = False
    #: The input's keys for the name, version_id and minimum_version_id (for pointers).
    keys: tuple[str, str, str] = ("x-description", "x-version-id", "x-minimum-version-id")

    @property
    def label(self) -> str:
        return f"description {self.name}"

    def subsection(self, name: str) -> Subsection | None:
        return next((sub for sub in self.subsections if sub.name == name), None)


Kind = Int | Plain | Buf | List | Record | Opaque | Section


def _label(kind: Kind) -> str:
    return kind.label


def label(kind: Kind) -> str:
    """A short human name of a member type (``uint16``, ``buffer[6]``, ``struct slirp-sbuf``)."""
    return _label(kind)


@dataclass(frozen=True)
class TopSection:
    """One section of a release: what a stream's section header names."""

    key: str
    description: Section
    #: The section's own versions when the input has them apart from the description's (QEMU).
    version_id: int | None
    minimum_version_id: int | None
    pointer: str


@dataclass(frozen=True)
class Layout:
    """A whole schema dump: its sections by the name a stream gives them."""

    source: str
    sections: dict[str, TopSection] = field(default_factory=dict)
    #: QEMU's machine type (``vmschkmachine``), when the dump has one.
    machine: str | None = None
    machine_pointer: str = ""
    #: Whether an :class:`Opaque` without a count is one element. QEMU's dumps
    #: before 8.0 give no element counts: there, such a member may be an array.
    counts_known: bool = True


def pointer(*tokens: str | int) -> str:
    """A JSON pointer (RFC 6901) from its unescaped tokens."""
    return "".join("/" + str(token).replace("~", "~0").replace("/", "~1") for token in tokens)


def join(base: str, *tokens: str | int) -> str:
    return base + pointer(*tokens)


__all__ = [
    "MIGCOMPAT",
    "QEMU",
    "Buf",
    "Condition",
    "Int",
    "Kind",
    "Layout",
    "List",
    "ListFraming",
    "Member",
    "Opaque",
    "Plain",
    "Record",
    "Ref",
    "Section",
    "Subsection",
    "TopSection",
    "join",
    "label",
    "pointer",
]
