"""The schema-less tag-length-value tree of one BER value, read by our own BER reader.

Why: the BER wire promises that generic decoders (pyasn1, ``openssl asn1parse``)
read every stream without a schema, and that our decoder accepts what X.690
allows and nothing else. The differential fuzzer holds us to both by comparing
our reading of arbitrary bytes with pyasn1's. That comparison is only worth
something if our side is the code that reads migration streams, so the tree is
read by :class:`~migcompat.wire.ber.BerInputVisitor`'s own header, length,
INTEGER, BOOLEAN and (segmented) string readers -- driven by the tags found in
the input instead of by a description.

Strategy: the wire uses five universal types; each becomes a :class:`Node` with
its decoded value (a SEQUENCE its children, an INTEGER an ``int``, a BOOLEAN a
``bool``, an OCTET STRING ``bytes``, a UTF8String ``str``), so definite and
indefinite lengths, long-form lengths and segmented strings all read to the same
tree, as they do in pyasn1. A type the wire does not use is refused with
:class:`UnknownType`, which tells a comparison that the input is outside what we
claim to read; identifiers that X.690 forbids for these types (a constructed
INTEGER, a primitive SEQUENCE, a misplaced end-of-contents) are malformed.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from migcompat.errors import DecodeError, MalformedInput, MismatchDetected
from migcompat.wire.ber import (
    CONSTRUCTED,
    TAG_BOOLEAN,
    TAG_INTEGER,
    TAG_OCTET_STRING,
    TAG_SEQUENCE,
    TAG_UTF8STRING,
    BerInputVisitor,
)

#: Universal tag numbers of the types on the migcompat wire.
BOOLEAN, INTEGER, OCTET_STRING, UTF8STRING, SEQUENCE = 1, 2, 4, 12, 16

Value = bool | int | bytes | str | tuple["Node", ...]


@dataclass(frozen=True)
class Node:
    """One decoded TLV: its universal tag number and its value."""

    tag: int
    value: Value


class UnknownType(MismatchDetected):
    """A well-formed identifier of a type the migcompat wire does not use."""


#: Identifier octets X.690 forbids for the wire's types (8.2.1, 8.3.1, 8.9.1):
#: a constructed BOOLEAN or INTEGER, a primitive SEQUENCE.
_WRONG_FORM = {
    TAG_BOOLEAN | CONSTRUCTED: "a BOOLEAN must be primitive",
    TAG_INTEGER | CONSTRUCTED: "an INTEGER must be primitive",
    TAG_SEQUENCE & ~CONSTRUCTED: "a SEQUENCE must be constructed",
}
_INDEFINITE = -1


class _TreeReader(BerInputVisitor):
    """The BER input visitor walking whatever the input holds."""

    #: Whether a constructed string held a constructed segment (X.690 allows it).
    nested_segments = False
    _segment_depth = 0

    def _segments(
        self, leaf: str, length: int, content: int, pieces: list[bytes], depth: int, want: int = TAG_OCTET_STRING
    ) -> None:
        self._segment_depth += 1
        try:
            super()._segments(leaf, length, content, pieces, depth, want)
        finally:
            self._segment_depth -= 1

    def _member(self, name: str, code: str) -> None:
        """Nothing to check: the tree is read by the tags the input holds, not by a signature."""

    def _header(self, leaf: str) -> tuple[int, int, int]:
        if self._segment_depth and self.position < self._size and self._data[self.position] & CONSTRUCTED:
            self.nested_segments = True
        return super()._header(leaf)

    def read(self) -> Node:
        node = self._node(-1)
        self.finish()
        return node

    def _node(self, index: int) -> Node:
        position = self.position
        identifier = self._data[position] if position < self._bound else -1
        if identifier == TAG_SEQUENCE:
            return Node(SEQUENCE, self._children(index))
        if identifier == TAG_INTEGER:
            return Node(INTEGER, self._integer("")[0])
        if identifier == TAG_BOOLEAN:
            return Node(BOOLEAN, self.visit_bool("", False))
        if identifier in (TAG_OCTET_STRING, TAG_OCTET_STRING | CONSTRUCTED):
            return Node(OCTET_STRING, self._string("", TAG_OCTET_STRING))
        if identifier in (TAG_UTF8STRING, TAG_UTF8STRING | CONSTRUCTED):
            return Node(UTF8STRING, self.visit_str("", ""))
        if identifier == -1:
            self._header("")  # raises: the input or the enclosing value ends here
        if identifier == 0:
            raise self._fail(MalformedInput, "end-of-contents outside an indefinite-length value")
        if identifier in _WRONG_FORM:
            raise self._fail(MalformedInput, _WRONG_FORM[identifier])
        raise self._fail(UnknownType, f"identifier 0x{identifier:02x} is not a type of the migcompat wire")

    def _children(self, index: int) -> tuple[Node, ...]:
        _tag, length, content = self._header("")
        self._push("", index)
        end = content + length if length != _INDEFINITE else _INDEFINITE
        self._stack[-1].append(end)
        self._bind(end)
        children: list[Node] = []
        while True:
            if end == _INDEFINITE:
                if self._end_of_contents():
                    self.position += 2
                    break
            elif self.position >= end:
                break
            children.append(self._node(len(children)))
        self._leave()
        return tuple(children)


def read_tree(data: bytes) -> Node:
    """The tree of the one BER value ``data`` holds; a :class:`~migcompat.errors.DecodeError` otherwise."""
    return _TreeReader(data).read()


def has_nested_segments(data: bytes) -> bool:
    """Whether reading ``data`` met a constructed string segment inside a constructed string."""
    reader = _TreeReader(data)
    with contextlib.suppress(DecodeError):
        reader.read()
    return reader.nested_segments


__all__ = [
    "BOOLEAN",
    "INTEGER",
    "OCTET_STRING",
    "SEQUENCE",
    "UTF8STRING",
    "Node",
    "UnknownType",
    "has_nested_segments",
    "read_tree",
]
