"""Our BER reading against pyasn1's: the same bytes, the same verdict, the same tree.

Why: the BER wire promises two things a fuzzer alone cannot check -- that a
generic decoder reads what we read, and that we accept exactly what X.690 allows.
pyasn1 is the reference BER implementation in Python; feeding both the same bytes
turns every disagreement into either a bug of ours or a documented difference of
pyasn1's.

What is compared, precisely: the input is read as one BER value by
:func:`migcompat.wire.ber_tree.read_tree` (our BER input visitor's own readers) and by
``pyasn1.codec.ber.decoder.decode`` without a schema.

* When ours raises :class:`~migcompat.errors.LimitExceeded` (a named limit pyasn1
  does not have) or :class:`~migcompat.wire.ber_tree.UnknownType` (a type the migcompat
  wire does not use, which pyasn1 may know), the input is outside what we claim
  and is not compared.
* Otherwise both must accept or both must reject (pyasn1 rejects with
  ``PyAsn1Error``, or by leaving bytes after the value); when both accept, the
  trees -- universal tag numbers and decoded values, whatever the length forms
  and string segmentation -- must be equal.
* A disagreement that is one of :data:`KNOWN_PYASN1` is recorded as pyasn1's:
  pyasn1 accepting what X.690 forbids, rejecting what it allows, or raising a
  bare exception. Any other bare exception of pyasn1's is recorded as pyasn1's
  too (:data:`BARE_EXCEPTION`): it is never a fault of ours. Any other
  disagreement is a finding (:class:`Divergence`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from migcompat.errors import DecodeError, LimitExceeded
from migcompat.wire.ber_tree import SEQUENCE, Node, UnknownType, has_nested_segments, read_tree

AGREE_ACCEPT = "agree-accept"
AGREE_REJECT = "agree-reject"
NOT_COMPARED = "not-compared"
#: pyasn1 raised an exception outside its error hierarchy that no known difference names.
BARE_EXCEPTION = "pyasn1-bare-exception"


class Divergence(AssertionError):
    """Our BER reading and pyasn1's disagree, and pyasn1 is not known to be wrong here."""


@dataclass(frozen=True)
class Pyasn1Result:
    """What pyasn1 made of the input: a tree, or the exception it raised."""

    tree: Node | None = None
    error: BaseException | None = None

    @property
    def rejected_cleanly(self) -> bool:
        from pyasn1.error import PyAsn1Error  # type: ignore[import-untyped]

        return isinstance(self.error, (PyAsn1Error, _Pyasn1Trailing))


@dataclass(frozen=True)
class KnownDivergence:
    """A documented way pyasn1 differs from X.690, and how to recognise it."""

    name: str
    why: str
    matches: Callable[[DecodeError | None, Pyasn1Result], bool]
    #: The pyasn1 release that no longer shows it, when known.
    fixed_in: tuple[int, ...] | None = None

    def shown_by_installed_pyasn1(self) -> bool:
        return self.fixed_in is None or pyasn1_version() < self.fixed_in


def pyasn1_version() -> tuple[int, ...]:
    """The installed pyasn1's version, as numbers."""
    import pyasn1  # type: ignore[import-untyped]

    return tuple(int(part) for part in pyasn1.__version__.split(".")[:3] if part.isdigit())


def _ours_says(pattern: str) -> Callable[[DecodeError | None, Pyasn1Result], bool]:
    """We rejected with a message matching ``pattern`` and pyasn1 accepted."""
    compiled = re.compile(pattern)

    def matches(ours: DecodeError | None, theirs: Pyasn1Result) -> bool:
        return ours is not None and theirs.tree is not None and compiled.match(ours.message) is not None

    return matches


def _pyasn1_raises(kind: type[BaseException]) -> Callable[[DecodeError | None, Pyasn1Result], bool]:
    def matches(ours: DecodeError | None, theirs: Pyasn1Result) -> bool:
        return type(theirs.error) is kind

    return matches


def _pyasn1_flattens_nested_segments(ours: DecodeError | None, theirs: Pyasn1Result) -> bool:
    # Recognised in compare(), which knows the input; never matched from the verdicts alone.
    return False


def _pyasn1_bitstring_errors(ours: DecodeError | None, theirs: Pyasn1Result) -> bool:
    if type(theirs.error) is IndexError:
        return True
    return type(theirs.error) is ValueError and "__len__() should return >= 0" in str(theirs.error)


def _pyasn1_trips_on_empty_component(ours: DecodeError | None, theirs: Pyasn1Result) -> bool:
    message = str(theirs.error)
    if type(theirs.error) is AttributeError:  # pyasn1 0.6.3
        return "'NoneType' object has no attribute 'tagSet'" in message
    return ours is None and "NamedTypes undefined component type" in message  # pyasn1 0.6.5


def _pyasn1_refuses_octet_segments(ours: DecodeError | None, theirs: Pyasn1Result) -> bool:
    return (
        ours is None
        and theirs.error is not None
        and re.search(r"tags 0:(0|32):4> not in asn1Spec: <UTF8String", str(theirs.error)) is not None
    )


#: pyasn1's known differences from X.690: recorded as pyasn1's, never as ours.
KNOWN_PYASN1: tuple[KnownDivergence, ...] = (
    KnownDivergence(
        "pyasn1-overflow",
        "a long-form length too large for an index raises a bare OverflowError, not a PyAsn1Error",
        _pyasn1_raises(OverflowError),
    ),
    KnownDivergence(
        "pyasn1-bitstring-errors",
        "its BIT STRING decoder raises bare exceptions on malformed segments: IndexError on a cut-short "
        "one, ValueError ('__len__() should return >= 0') on too many trailing bits (0.6.3)",
        _pyasn1_bitstring_errors,
    ),
    KnownDivergence(
        "pyasn1-empty-component",
        "a SEQUENCE holding an empty SEQUENCE raises a bare AttributeError (0.6.3: an empty constructed "
        "value decodes to None without a schema, then its tagSet is read) or is refused (0.6.5)",
        _pyasn1_trips_on_empty_component,
    ),
    KnownDivergence(
        "pyasn1-empty-integer",
        "accepts an INTEGER with no content octets as 0 (X.690 8.3.1: one or more octets)",
        _ours_says(r"INTEGER with no content octets"),
    ),
    KnownDivergence(
        "pyasn1-non-minimal-integer",
        "accepts an INTEGER whose first nine bits are all zeros or all ones (X.690 8.3.2)",
        _ours_says(r"INTEGER not in minimal form"),
    ),
    KnownDivergence(
        "pyasn1-boolean-length",
        "accepts a BOOLEAN of other than one content octet (X.690 8.2.1)",
        _ours_says(r"BOOLEAN of \d+ octets"),
    ),
    KnownDivergence(
        "pyasn1-low-tag-long-form",
        "accepts a tag number below 31 written in the high-tag-number form, 1f 04 (X.690 8.1.2.4 "
        "keeps that form for numbers of 31 and more)",
        _ours_says(r"tag number \d+ in multi-byte form"),
    ),
    KnownDivergence(
        "pyasn1-tag-leading-zeros",
        "accepts a high-tag-number form whose first subsequent octet has bits 7 to 1 all zero, "
        "1f 80 04 (X.690 8.1.2.4.2 c: the tag number is encoded in as few octets as possible)",
        _ours_says(r"multi-byte tag with leading zero bits"),
    ),
    KnownDivergence(
        "pyasn1-primitive-indefinite",
        "accepts an empty primitive string with the indefinite length form, 04 80 00 00 "
        "(X.690 8.1.3.2: the indefinite form is for constructed encodings only)",
        _ours_says(r"indefinite length on a primitive value"),
    ),
    KnownDivergence(
        "pyasn1-foreign-segments",
        "accepts a segment of a constructed string whose tag is no string type (e.g. [APPLICATION 5]), "
        "reading its content as octets (X.690 8.7.3.2: segments are OCTET STRING encodings)",
        _ours_says(r"found .* where (OCTET STRING|UTF8String) expected"),
        fixed_in=(0, 6, 5),
    ),
    KnownDivergence(
        "pyasn1-nested-segments",
        "reads a constructed segment inside a constructed string as raw content octets, headers "
        "and all, instead of decoding it (X.690 8.7.3.2 allows nested segments): where the input "
        "holds one, pyasn1 accepting what we reject or reading other octets is pyasn1's",
        _pyasn1_flattens_nested_segments,
        fixed_in=(0, 6, 5),
    ),
    KnownDivergence(
        "pyasn1-utf8string-segments",
        "refuses OCTET STRING segments in a constructed UTF8String (X.690 8.23: a character string is "
        "encoded as an IMPLICIT OCTET STRING, so its segments are OCTET STRINGs)",
        _pyasn1_refuses_octet_segments,
    ),
)


class _Pyasn1Trailing(Exception):
    """pyasn1 decoded a value and left bytes after it."""


def _from_pyasn1(value: Any) -> Node:
    """pyasn1's value as a tree; a type ours never reads becomes a node no tree of
    ours can equal (tag -1 for a non-universal tag), so comparing shows it."""
    from pyasn1.type import char, univ  # type: ignore[import-untyped]

    if value is None:
        # pyasn1 decodes an empty constructed value without a schema to None; the
        # only one ours reads is the empty SEQUENCE.
        return Node(SEQUENCE, ())
    tags = tuple(value.tagSet)
    if len(tags) != 1 or tags[0].tagClass != 0:
        return Node(-1, f"pyasn1 {type(value).__name__} with tags {value.tagSet!r}")
    tag = tags[0]
    if isinstance(value, univ.Boolean):
        return Node(tag.tagId, bool(value))
    if isinstance(value, univ.Integer):
        return Node(tag.tagId, int(value))
    if isinstance(value, char.UTF8String):
        return Node(tag.tagId, str(value))
    if isinstance(value, univ.OctetString):
        return Node(tag.tagId, value.asOctets())
    if isinstance(value, (univ.SequenceAndSetBase, univ.SequenceOfAndSetOfBase)):
        return Node(tag.tagId, tuple(_from_pyasn1(value[index]) for index in range(len(value))))
    return Node(tag.tagId, f"pyasn1 {type(value).__name__} {value.prettyPrint()[:80]}")


def pyasn1_read(data: bytes) -> Pyasn1Result:
    """pyasn1's reading of ``data`` as one value, without a schema."""
    from pyasn1.codec.ber import decoder  # type: ignore[import-untyped]

    try:
        value, rest = decoder.decode(data)
        if rest:
            raise _Pyasn1Trailing(f"{len(rest)} bytes after the value")
    except Exception as error:  # pyasn1's verdict, judged by the caller
        return Pyasn1Result(error=error)
    return Pyasn1Result(tree=_from_pyasn1(value))


def compare(data: bytes) -> str:
    """Judge ``data``: one of :data:`AGREE_ACCEPT`, :data:`AGREE_REJECT`,
    :data:`NOT_COMPARED`, or a known divergence's name; raises :class:`Divergence`."""
    ours: DecodeError | None = None
    tree: Node | None = None
    try:
        tree = read_tree(data)
    except (LimitExceeded, UnknownType):
        return NOT_COMPARED
    except DecodeError as error:
        ours = error
    theirs = pyasn1_read(data)
    for known in KNOWN_PYASN1:
        if known.matches(ours, theirs):
            return known.name
    if theirs.error is not None and not theirs.rejected_cleanly:
        # A bare exception out of pyasn1 is pyasn1's bug whatever ours did; the
        # known ones above are named, the rest are recorded under one name.
        return BARE_EXCEPTION
    if ours is not None and theirs.tree is not None:
        if has_nested_segments(data):
            return "pyasn1-nested-segments"
        raise Divergence(f"ours rejects ({type(ours).__name__}: {ours}) what pyasn1 accepts: {theirs.tree}")
    if ours is None and theirs.tree is None:
        raise Divergence(f"ours accepts what pyasn1 rejects ({type(theirs.error).__name__}: {theirs.error})")
    if tree != theirs.tree:
        if has_nested_segments(data):
            return "pyasn1-nested-segments"
        raise Divergence(f"ours reads {tree}, pyasn1 reads {theirs.tree}")
    return AGREE_REJECT if ours is not None else AGREE_ACCEPT


__all__ = [
    "AGREE_ACCEPT",
    "BARE_EXCEPTION",
    "AGREE_REJECT",
    "KNOWN_PYASN1",
    "NOT_COMPARED",
    "Divergence",
    "KnownDivergence",
    "Pyasn1Result",
    "compare",
    "pyasn1_read",
    "pyasn1_version",
]
