"""What a description decides once, before any code is written.

Why: everything the generated code may take as fixed -- which fields a stream
version carries, how deep the nesting goes, which versions decode alike, the
BER signatures a struct can have -- depends on the description alone. The
emitters ask these questions; none of them writes code.
"""

from __future__ import annotations

from dataclasses import dataclass

from migcompat.codec.runtime import TAG_UTF8STRING
from migcompat.limits import MAX_DEPTH
from migcompat.model.vmstate import Array, Buffer, Description, Field, FieldType, Scalar, Struct
from migcompat.wire import ber
from migcompat.wire.ber import CODES, encode_tlv
from migcompat.wire.visitor import INTEGER_KINDS, ListFraming

#: Most value-gated (``when``) fields in one struct for BER: its signature is
#: one of 2**n precomputed variants.
MAX_WHEN_FIELDS = 6

#: A BER signature member: (name, type code).
Member = tuple[str, str]
#: The members of a subsection entry before the subsection itself.
ENTRY_MEMBERS: list[Member] = [("name", CODES["str"]), ("version_id", CODES["uint32"]), ("critical", CODES["bool"])]
#: The member a description's signature ends with.
SUBSECTIONS_MEMBER: Member = ("subsections", CODES["list"])


class Unsupported(Exception):
    """A description (part) the code generator does not handle."""


def static_present(f: Field, version: int) -> bool:
    """Whether ``f`` is on the wire at ``version`` as far as versions decide."""
    return not (f.since > version or (f.until is not None and version >= f.until))


def depth(kind: FieldType) -> int:
    """Most path-stack entries the visitors hold while visiting ``kind``."""
    if isinstance(kind, (Scalar, Buffer)):
        return 0
    if isinstance(kind, Struct):
        return 1 + max((depth(f.type) for f in kind.fields), default=0)
    if isinstance(kind, Array):
        return 1 + depth(kind.element)
    fields = max((depth(f.type) for f in kind.fields), default=0)
    # The subsection list is always opened; each entry is a struct holding the walk.
    subsections = 1 + max((1 + depth(sub.description) for sub in kind.subsections), default=0)
    return 1 + max(fields, subsections)


def check_supported(description: Description, fmt: str) -> None:
    """Raise :class:`Unsupported` when the generated code could not follow the walker."""
    if depth(description) > MAX_DEPTH:
        raise Unsupported(f"nesting deeper than {MAX_DEPTH}")
    seen: set[int] = set()

    def fields(owner: str, members: tuple[Field, ...]) -> None:
        if fmt == "ber" and sum(f.when is not None for f in members) > MAX_WHEN_FIELDS:
            raise Unsupported(f"{owner}: more than {MAX_WHEN_FIELDS} value-gated fields")
        for f in members:
            if f.default is not None and isinstance(f.type, (Struct, Array, Description)):
                raise Unsupported(f"{owner}.{f.name}: explicit default on a {type(f.type).__name__}")
            kind(f.type)

    def kind(value: FieldType) -> None:
        if id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, Struct):
            fields(value.name, value.fields)
        elif isinstance(value, Array):
            kind(value.element)
        elif isinstance(value, Description):
            fields(value.name, value.fields)
            for sub in value.subsections:
                kind(sub.description)

    kind(description)


def thresholds(fields: tuple[Field, ...], out: set[int]) -> set[int]:
    """Every version at which a field of these fields (nested structs included,
    nested descriptions excluded: they use their own version) appears or goes."""
    for f in fields:
        out.add(f.since)
        if f.until is not None:
            out.add(f.until)
        kind = f.type
        while isinstance(kind, Array):
            kind = kind.element
        if isinstance(kind, Struct):
            thresholds(kind.fields, out)
    return out


def simple_struct(kind: FieldType, version: int) -> bool:
    """A struct of scalars and fixed buffers only: BER code inlines it in list loops."""
    if not isinstance(kind, Struct):
        return False
    return all(
        f.when is None and (isinstance(f.type, Scalar) or (isinstance(f.type, Buffer) and isinstance(f.type.size, int)))
        for f in kind.fields
        if static_present(f, version)
    )


# -- fixed-width values (the legacy wire packs them with one struct call) -------------------

#: Fixed arrays up to this many elements are flattened into a legacy run.
FLAT_ARRAY_MAX = 64
#: Most leaves (scalars, fixed buffers) in one legacy run or flat element.
FLAT_LEAVES_MAX = 512

STRUCT_CHARS = {
    "int8": "b",
    "int16": "h",
    "int32": "i",
    "int64": "q",
    "uint8": "B",
    "uint16": "H",
    "uint32": "I",
    "uint64": "Q",
}
#: A list's element count on the legacy wire, by width.
COUNT_KINDS = {8: "uint8", 16: "uint16", 32: "uint32"}


@dataclass(frozen=True)
class Leaf:
    """One fixed-width item of a legacy run: a struct format code and its check."""

    code: str
    #: "int", "bool" or "buffer"
    category: str
    size: int = 0


def flat(kind: FieldType, version: int) -> list[Leaf] | None:
    """The legacy leaves of a fixed-size value, or None when its size can vary."""
    if isinstance(kind, Scalar):
        if kind.kind in INTEGER_KINDS:
            return [Leaf(STRUCT_CHARS[kind.kind], "int")]
        if kind.kind == "bool":
            return [Leaf("?", "bool")]
        return None
    if isinstance(kind, Buffer):
        return [Leaf(f"{kind.size}s", "buffer", kind.size)] if isinstance(kind.size, int) else None
    if isinstance(kind, Struct):
        leaves: list[Leaf] = []
        for f in kind.fields:
            if not static_present(f, version):
                continue
            inner = flat(f.type, version) if f.when is None else None
            if inner is None:
                return None
            leaves += inner
        return leaves if len(leaves) <= FLAT_LEAVES_MAX else None
    if isinstance(kind, Array):
        if kind.framing.kind is not ListFraming.KNOWN or not isinstance(kind.length, int):
            return None
        if kind.length > FLAT_ARRAY_MAX or (kind.max_length is not None and kind.length > kind.max_length):
            return None
        element = flat(kind.element, version)
        if element is None or len(element) * kind.length > FLAT_LEAVES_MAX:
            return None
        return element * kind.length
    return None


def struct_format(leaves: list[Leaf]) -> str:
    """The big-endian :mod:`struct` format of a run of leaves."""
    return ">" + "".join(leaf.code for leaf in leaves)


def count_format(bits: int) -> str:
    """The :mod:`struct` format of a legacy list's element count."""
    return ">" + STRUCT_CHARS[COUNT_KINDS[bits]]


# -- BER signatures ------------------------------------------------------------------


def ber_code(kind: FieldType) -> str:
    """The type code a BER signature gives a member of ``kind``."""
    if isinstance(kind, Scalar):
        return CODES[kind.kind]
    if isinstance(kind, Buffer):
        return CODES["buffer"]
    if isinstance(kind, Array):
        return CODES["list"]
    return CODES["struct"]


def code_tlv(code: str) -> bytes:
    """A list's element code as the UTF8String TLV that opens the list."""
    return encode_tlv(TAG_UTF8STRING, code.encode())


def signature_text(members: list[Member]) -> bytes:
    return ber.signature_text(members).encode()


def signature(members: list[Member]) -> bytes:
    """The UTF8String TLV the BER output visitor writes as a struct's first element."""
    return encode_tlv(TAG_UTF8STRING, signature_text(members))


def members(fields: list[Field]) -> list[Member]:
    return [(f.name, ber_code(f.type)) for f in fields]


def ber_members(fields: tuple[Field, ...], version: int) -> tuple[list[Field], list[Field]]:
    """The fields a struct holds at ``version``, and those of them gated by a value."""
    present = [f for f in fields if static_present(f, version)]
    return present, [f for f in present if f.when is not None]


def signature_variants(present: list[Field], gated: list[Field], tail: list[Member]) -> tuple[bytes, ...]:
    """Every signature a struct with value-gated members can have, indexed by
    the mask of the gated members present (bit ``i``: ``gated[i]``)."""
    variants = []
    for bits in range(1 << len(gated)):
        chosen = [f for f in present if f.when is None or bits & (1 << gated.index(f))]
        variants.append(signature(members(chosen) + tail))
    return tuple(variants)
