"""The ASN.1 BER visitor pair: a self-describing stream that detects mismatches.

Why: the legacy stream says nothing about its fields, so a changed width or a
reordered member is misread silently. This format says enough that the
destination notices -- while staying plain X.690 BER that ``openssl asn1parse``
and pyasn1 read without a schema.

Strategy (the wire):

* integers are universal INTEGERs (minimal two's complement), bools BOOLEANs,
  strings UTF8Strings, buffers OCTET STRINGs -- only universal tags, so generic
  decoders need no schema;
* a struct is a SEQUENCE whose first element is a UTF8String *signature* listing
  its members as ``name:code`` separated by spaces (``num:u32 desc:u64 ...``);
  a ``%``, space or ``:`` inside a name (QEMU names subsections ``ide bmdma_current``)
  is written ``%25``, ``%20``, ``%3A``. Codes are ``i8 i16 i32 i64 u8 u16 u32 u64 bool str buf struct list``. Widths
  and signedness are therefore recoverable from the stream, and a renamed,
  reordered, inserted or dropped member is detected by name. Because the
  destination learns how many members the source sent, it can skip unknown
  trailing members when its description allows;
* a list is a SEQUENCE whose first element is a UTF8String holding the element
  code (empty for an empty list), followed by the elements.

The output visitor always writes definite lengths. Signatures are cached per
member list, so a thousand queues cost one signature build. The input visitor
accepts what X.690 allows -- long-form lengths, indefinite lengths on
constructed values, constructed strings, multi-byte tags (when skipping) -- up to
the limits in :mod:`migcompat.limits`, and raises a
:class:`~migcompat.errors.DecodeError` with offset and path for everything else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import ClassVar

from migcompat.errors import (
    LimitExceeded,
    MalformedInput,
    MismatchDetected,
    TrailingData,
    TruncatedInput,
)
from migcompat.limits import (
    MAX_DEPTH,
    MAX_ELEMENTS,
    MAX_INPUT,
    MAX_INTEGER_OCTETS,
    MAX_LENGTH,
    MAX_LENGTH_OCTETS,
    MAX_TAG_OCTETS,
)
from migcompat.wire._path import PathTracker
from migcompat.wire.visitor import INTEGER_KINDS, Framing, Visitor, integer_range

TAG_BOOLEAN = 0x01
TAG_INTEGER = 0x02
TAG_OCTET_STRING = 0x04
TAG_UTF8STRING = 0x0C
TAG_SEQUENCE = 0x30  # universal 16, constructed
CONSTRUCTED = 0x20

#: Signature code of each integer kind, and the reverse.
CODES: dict[str, str] = {kind: ("i" if signed else "u") + str(bits) for kind, (bits, signed) in INTEGER_KINDS.items()}
CODES.update({"bool": "bool", "str": "str", "buffer": "buf", "struct": "struct", "list": "list"})
KIND_OF_CODE = {code: kind for kind, code in CODES.items()}
_TAG_NAMES = {
    TAG_BOOLEAN: "BOOLEAN",
    TAG_INTEGER: "INTEGER",
    TAG_OCTET_STRING: "OCTET STRING",
    TAG_UTF8STRING: "UTF8String",
    TAG_SEQUENCE: "SEQUENCE",
}
_RANGES = {kind: integer_range(kind) for kind in INTEGER_KINDS}
_SMALL_INTEGERS = [bytes((TAG_INTEGER, 1, value)) for value in range(128)]
_SIGNATURE_CACHE_SIZE = 4096
#: What a member name cannot hold as itself in a signature, and how it is written.
_QUOTED = {"%": "%25", " ": "%20", ":": "%3A"}
_UNQUOTED = {quoted: char for char, quoted in _QUOTED.items()}
_QUOTED_RE = re.compile("[% :]")
_UNQUOTED_RE = re.compile("%(?:25|20|3A)")


def quote_member(name: str) -> str:
    """A member name as a signature writes it."""
    return _QUOTED_RE.sub(lambda match: _QUOTED[match.group()], name) if _QUOTED_RE.search(name) else name


def unquote_member(text: str) -> str:
    """A member name as a signature wrote it, back to the name."""
    return _UNQUOTED_RE.sub(lambda match: _UNQUOTED[match.group()], text) if "%" in text else text


def signature_text(members: Iterable[tuple[str, str]]) -> str:
    """A struct's signature: ``name:code`` per member, separated by spaces."""
    return " ".join(f"{quote_member(name)}:{code}" for name, code in members)


def encode_length(length: int) -> bytes:
    """X.690 definite length: short form below 128, long form above."""
    if length < 0x80:
        return bytes((length,))
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def encode_integer(value: int) -> bytes:
    """A universal INTEGER TLV in minimal two's complement."""
    if 0 <= value < 128:
        return _SMALL_INTEGERS[value]
    size = (value.bit_length() if value >= 0 else (~value).bit_length()) // 8 + 1
    return bytes((TAG_INTEGER, size)) + value.to_bytes(size, "big", signed=True)


def encode_tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + encode_length(len(content)) + content


def _describe_tag(tag: int) -> str:
    return _TAG_NAMES.get(tag, f"tag 0x{tag:02x}" if tag < 256 else "a multi-byte tag")


class _OutputFrame:
    """An open struct or list: its encoded members and its signature parts."""

    __slots__ = ("chunks", "is_list", "signature")

    def __init__(self, is_list: bool) -> None:
        self.chunks: list[bytes] = []
        self.signature: list[str] = []
        self.is_list = is_list


class BerOutputVisitor(PathTracker, Visitor):
    """Writes the self-describing BER form; ``result()`` returns the bytes."""

    is_input = False
    self_describing = True
    _signatures: ClassVar[dict[tuple[str, ...], bytes]] = {}

    def __init__(self) -> None:
        super().__init__()
        self._root: list[bytes] = []
        self._frames: list[_OutputFrame] = []

    def result(self) -> bytes:
        return b"".join(self._root)

    def _emit(self, name: str, code: str, tlv: bytes) -> None:
        if not self._frames:
            self._root.append(tlv)
            return
        frame = self._frames[-1]
        frame.chunks.append(tlv)
        signature = frame.signature
        if frame.is_list:
            if not signature:
                signature.append(code)
            elif signature[0] != code:
                raise self._bad_value(f"list mixes {signature[0]!r} and {code!r} elements", name)
        else:
            signature.append(name)
            signature.append(code)

    def visit_integer(self, kind: str, name: str, value: int) -> int:
        lo, hi = _RANGES[kind]
        if type(value) is not int or not lo <= value <= hi:
            raise self._bad_value(f"{value!r} does not fit {kind} [{lo}, {hi}]", name)
        self._emit(name, CODES[kind], encode_integer(value))
        return value

    def _signature(self, parts: list[str], is_list: bool) -> bytes:
        key = tuple(parts)
        cached = self._signatures.get(key)
        if cached is None:
            if is_list:
                text = parts[0] if parts else ""
            else:
                names = parts[0::2]
                for member in names:
                    if not member:
                        raise self._bad_value("an empty member name cannot be written in a signature", member)
                text = signature_text(zip(names, parts[1::2], strict=True))
            cached = encode_tlv(TAG_UTF8STRING, text.encode())
            if len(self._signatures) >= _SIGNATURE_CACHE_SIZE:
                self._signatures.clear()
            self._signatures[key] = cached
        return cached

    def _close(self, code: str) -> None:
        frame = self._frames.pop()
        name = str(self._stack.pop()[0])
        content = self._signature(frame.signature, frame.is_list) + b"".join(frame.chunks)
        self._emit(name, code, b"\x30" + encode_length(len(content)) + content)

    def start_struct(self, name: str) -> None:
        self._push(name, -1)
        self._frames.append(_OutputFrame(False))

    def end_struct(self, *, allow_trailing: bool = False) -> None:
        self._close("struct")

    def start_list(self, name: str, framing: Framing, count: int) -> int:
        self._push(name, 0)
        self._frames.append(_OutputFrame(True))
        return count

    def next_list(self, more: bool) -> bool:
        if more:
            self._stack[-1][1] = len(self._frames[-1].chunks)
        return more

    def end_list(self) -> None:
        self._close("list")

    def visit_bool(self, name: str, value: bool) -> bool:
        if not isinstance(value, bool):
            raise self._bad_value(f"{value!r} is not a bool", name)
        self._emit(name, "bool", b"\x01\x01\xff" if value else b"\x01\x01\x00")
        return value

    def visit_encoded(self, name: str, code: str, tlv: bytes) -> None:
        """A member a compiled codec already wrote: exactly the TLV visiting it would write."""
        self._emit(name, code, tlv)

    def visit_str(self, name: str, value: str) -> str:
        if not isinstance(value, str):
            raise self._bad_value(f"{value!r} is not a str", name)
        try:
            data = value.encode()
        except UnicodeEncodeError:
            raise self._bad_value(f"{value!r:.40} is not encodable as UTF-8", name) from None
        self._emit(name, "str", encode_tlv(TAG_UTF8STRING, data))
        return value

    def visit_buffer(self, name: str, value: bytes, size: int) -> bytes:
        if not isinstance(value, (bytes, bytearray)) or len(value) != size:
            raise self._bad_value(f"buffer must be {size} bytes, got {value!r:.40}", name)
        self._emit(name, "buf", encode_tlv(TAG_OCTET_STRING, bytes(value)))
        return value


#: Per primitive tag, its identifier octet followed by every short-form length
#: octet: one set lookup recognises the common header.
_SHORT_HEADERS = {
    tag: frozenset(bytes((tag, length)) for length in range(0x80))
    for tag in (TAG_BOOLEAN, TAG_INTEGER, TAG_OCTET_STRING, TAG_UTF8STRING)
}

#: The first two content octets of an INTEGER whose first octet is redundant
#: (X.690 8.3.2: nine leading bits all zero or all one).
_NOT_MINIMAL = frozenset(bytes((0, second)) for second in range(0x80)) | frozenset(
    bytes((0xFF, second)) for second in range(0x80, 0x100)
)

# Indexes into an input frame (the PathTracker entry, extended).
_NAME, _INDEX, _END, _SIGNATURE, _MEMBER, _EXPECTED, _IS_LIST, _SKIPPED = range(8)
_INDEFINITE = -1


class BerInputVisitor(PathTracker, Visitor):
    """Reads the self-describing BER form and detects every disagreement.

    Each open struct or list is a frame ``[name, index, end, signature, member,
    expected, is_list]``: ``end`` is the offset after its content (or -1 while an
    end-of-contents marker is awaited), ``signature`` the member list the stream
    declared, ``member`` how many members were read, ``expected`` the element
    count the destination expects (or -1).
    """

    is_input = True
    self_describing = True
    _signatures: ClassVar[dict[tuple[bool, bytes], tuple[tuple[str, str], ...]]] = {}

    def __init__(self, data: bytes, offset: int = 0) -> None:
        super().__init__()
        if len(data) > MAX_INPUT:
            raise LimitExceeded(f"input of {len(data)} bytes exceeds the {MAX_INPUT}-byte limit", offset=0)
        self._data = bytes(data)
        self.position = offset
        self._size = len(self._data)
        #: Where the innermost definite-length container ends (the input's end
        #: outside every container), and the bound each open container replaced.
        self._bound = self._size
        self._outer_bounds: list[int] = []

    def _offset(self) -> int | None:
        return self.position

    def finish(self) -> None:
        """Reject bytes left after the outermost value."""
        if self.position != self._size:
            raise self._fail(TrailingData, f"{self._size - self.position} unexpected trailing bytes")

    # -- TLV reading -------------------------------------------------------
    def _bind(self, end: int) -> None:
        """The frame just opened has its content end at ``end`` (or _INDEFINITE)."""
        self._outer_bounds.append(self._bound)
        if end != _INDEFINITE:
            self._bound = end

    def _enter(self, frame: list[object], end: int) -> None:
        """Open an unnamed container frame (a string's segments, a skipped value)."""
        self._stack.append(frame)
        self._bind(end)

    def _leave(self) -> None:
        """Close the innermost container frame."""
        self._stack.pop()
        self._bound = self._outer_bounds.pop()

    def _end_of_contents(self) -> bool:
        """Whether an end-of-contents marker starts here, inside the enclosing
        definite-length value (X.690 8.1.5: an indefinite-length value ends within
        its container; octets past the container's end are not its marker)."""
        p = self.position
        return self._data[p : p + 2] == b"\0\0" and p + 2 <= self._bound

    def _header(self, leaf: str) -> tuple[int, int, int]:
        """Read one identifier and length; return (tag, length, content offset).

        ``tag`` is the identifier octet for low tag numbers and a value above 255
        for multi-byte tags; ``length`` is -1 for the indefinite form.
        """
        data = self._data
        start = p = self.position
        limit = self._bound
        # Fast paths: a low tag number with a short-form length inside the
        # container, or a constructed value of indefinite length.
        if p + 2 <= limit:
            tag = data[p]
            if tag & 0x1F != 0x1F:
                length = data[p + 1]
                if length < 0x80:
                    if p + 2 + length <= limit:
                        self.position = p + 2
                        return tag, length, p + 2
                elif length == 0x80 and tag & CONSTRUCTED:
                    self.position = p + 2
                    return tag, _INDEFINITE, p + 2
        if p >= limit:
            if limit < self._size:
                raise self._fail(MalformedInput, "container ends before this value", leaf)
            raise self._fail(TruncatedInput, "input ends where a value should start", leaf)
        tag = data[p]
        p += 1
        if tag & 0x1F == 0x1F:
            number = 0
            octets = 0
            while True:
                if p >= limit:
                    raise self._fail(TruncatedInput, "input ends inside a multi-byte tag", leaf, offset=start)
                byte = data[p]
                p += 1
                octets += 1
                if octets > MAX_TAG_OCTETS:
                    raise self._fail(LimitExceeded, f"tag longer than {MAX_TAG_OCTETS} octets", leaf, offset=start)
                if octets == 1 and byte == 0x80:
                    raise self._fail(MalformedInput, "multi-byte tag with leading zero bits", leaf, offset=start)
                number = (number << 7) | (byte & 0x7F)
                if not byte & 0x80:
                    break
            if number < 0x1F:
                raise self._fail(MalformedInput, f"tag number {number} in multi-byte form", leaf, offset=start)
            tag = ((tag & 0xE0) << 32) | number | (1 << 40)
        if p >= limit:
            raise self._fail(TruncatedInput, "input ends before the length", leaf, offset=start)
        first = data[p]
        p += 1
        if first < 0x80:
            length = first
        elif first == 0x80:
            constructed = (tag >> 32 if tag > 255 else tag) & CONSTRUCTED
            if not constructed:
                raise self._fail(MalformedInput, "indefinite length on a primitive value", leaf, offset=start)
            length = _INDEFINITE
        elif first == 0xFF:
            raise self._fail(MalformedInput, "reserved length octet 0xff", leaf, offset=start)
        else:
            count = first & 0x7F
            if count > MAX_LENGTH_OCTETS:
                raise self._fail(
                    LimitExceeded, f"length of {count} octets exceeds {MAX_LENGTH_OCTETS}", leaf, offset=start
                )
            if p + count > limit:
                raise self._fail(TruncatedInput, "input ends inside a long-form length", leaf, offset=start)
            length = int.from_bytes(data[p : p + count], "big")
            p += count
        if length > limit - p:
            if length > MAX_LENGTH:
                raise self._fail(
                    LimitExceeded, f"declared length {length} exceeds the {MAX_LENGTH}-byte limit", leaf, offset=start
                )
            where = "input" if limit == self._size else "enclosing value"
            raise self._fail(
                TruncatedInput,
                f"declared length {length} but the {where} has {limit - p} bytes left",
                leaf,
                offset=start,
            )
        self.position = p
        return tag, length, p

    def _primitive(self, leaf: str, want: int) -> tuple[int, int]:
        """Read a primitive TLV of tag ``want``; return (content offset, length)."""
        data = self._data
        p = self.position
        # Fast path: the tag we want with a short-form length, inside the container.
        if data[p : p + 2] in _SHORT_HEADERS[want]:
            length = data[p + 1]
            if p + 2 + length <= self._bound:
                self.position = p + 2 + length
                return p + 2, length
        start = p
        tag, length, content = self._header(leaf)
        if tag != want:
            self.position = start
            raise self._fail(MismatchDetected, f"found {_describe_tag(tag)} where {_TAG_NAMES[want]} expected", leaf)
        self.position = content + length
        return content, length

    def _string(self, leaf: str, want: int) -> bytes:
        """Read a string type in primitive or constructed (segmented) form."""
        p = self.position
        data = self._data
        if p < self._size and data[p] == want | CONSTRUCTED:
            start = p
            _tag, length, content = self._header(leaf)
            pieces: list[bytes] = []
            self._segments(leaf, length, content, pieces, 1, want)
            if sum(map(len, pieces)) > MAX_LENGTH:
                raise self._fail(LimitExceeded, f"string longer than {MAX_LENGTH} bytes", leaf, offset=start)
            return b"".join(pieces)
        content, length = self._primitive(leaf, want)
        return data[content : content + length]

    def _segments(
        self, leaf: str, length: int, content: int, pieces: list[bytes], depth: int, want: int = TAG_OCTET_STRING
    ) -> None:
        """Collect the segments of a constructed string of type ``want`` whose content
        starts at ``content``.

        X.690 8.7.3.2: the segments of an OCTET STRING are OCTET STRING encodings
        (primitive or constructed). A UTF8String is encoded as an IMPLICIT OCTET
        STRING (8.23), so its segments are OCTET STRINGs too; segments tagged
        UTF8String, which other encoders (pyasn1) write, are accepted as well.
        Any other tag is a mismatch.
        """
        if depth + len(self._stack) > MAX_DEPTH:
            raise self._fail(LimitExceeded, f"nesting deeper than {MAX_DEPTH}", leaf)
        end = content + length if length != _INDEFINITE else _INDEFINITE
        self._enter(["", -1, end], end)
        try:
            if end == _INDEFINITE:
                while not self._end_of_contents():
                    self._segment(leaf, pieces, depth, want)
                self.position += 2
            else:
                while self.position < end:
                    self._segment(leaf, pieces, depth, want)
        finally:
            self._leave()

    def _segment(self, leaf: str, pieces: list[bytes], depth: int, want: int) -> None:
        """Collect one segment (itself primitive or constructed) of a constructed string."""
        p = self.position
        tag = self._data[p] if p < self._size else -1
        if tag in (TAG_OCTET_STRING | CONSTRUCTED, want | CONSTRUCTED):
            _, inner_length, inner = self._header(leaf)
            self._segments(leaf, inner_length, inner, pieces, depth + 1, tag & ~CONSTRUCTED)
        else:
            start, size = self._primitive(leaf, TAG_OCTET_STRING if tag == TAG_OCTET_STRING else want)
            pieces.append(self._data[start : start + size])

    def _skip(self, leaf: str, depth: int) -> None:
        """Skip one whole TLV, whatever its tag."""
        if depth + len(self._stack) > MAX_DEPTH:
            raise self._fail(LimitExceeded, f"nesting deeper than {MAX_DEPTH}", leaf)
        _, length, content = self._header(leaf)
        if length != _INDEFINITE:
            self.position = content + length
            return
        self._enter(["", -1, _INDEFINITE], _INDEFINITE)
        try:
            while not self._end_of_contents():
                self._skip(leaf, depth + 1)
            self.position += 2
        finally:
            self._leave()

    # -- signatures --------------------------------------------------------
    def _member(self, name: str, code: str) -> None:
        """Check the next member against the stream's signature."""
        if not self._stack:
            return  # the outermost value: nothing declared it
        frame = self._stack[-1]
        index: int = frame[_MEMBER]  # type: ignore[assignment]
        # Fast path: a struct's next declared member is the one read.
        if frame[_SIGNATURE][index : index + 1] == ((name, code),) and not frame[_IS_LIST]:  # type: ignore[index]
            frame[_MEMBER] = index + 1
            return
        self._mismatched_member(frame, index, name, code)

    def _mismatched_member(self, frame: list[object], index: int, name: str, code: str) -> None:
        """A list element, a struct member the destination skips to, or a mismatch."""
        signature: tuple[tuple[str, str], ...] = frame[_SIGNATURE]  # type: ignore[assignment]
        if frame[_IS_LIST]:
            if signature[0][1] != code:
                raise self._fail(
                    MismatchDetected,
                    f"list elements are {KIND_OF_CODE[signature[0][1]]} in the stream, read as {KIND_OF_CODE[code]}",
                    name,
                )
            return
        if index >= len(signature):
            raise self._fail(
                MismatchDetected, f"the stream's struct has no member '{name}' (it has {len(signature)})", name
            )
        sent_name, sent_code = signature[index]
        if sent_name != name and index + 1 < len(signature) and signature[-1][0] == name:
            # Members the destination does not read sit before the struct's last
            # member (a description ends with its subsection list, after any
            # fields a newer source appended): skip them now; end_struct decides
            # whether skipping them was allowed.
            skipped = signature[index:-1]
            for skipped_name, _code in skipped:
                self._skip(skipped_name, 0)
            frame[_SKIPPED] = skipped
            index = len(signature) - 1
            sent_name, sent_code = signature[index]
        if sent_name != name:
            raise self._fail(
                MismatchDetected,
                f"the stream has member '{sent_name}' where '{name}' is read (renamed, reordered, inserted or dropped)",
                name,
            )
        if sent_code != code:
            raise self._fail(
                MismatchDetected,
                f"'{name}' is {KIND_OF_CODE[sent_code]} in the stream, read as {KIND_OF_CODE[code]}",
                name,
            )
        frame[_MEMBER] = index + 1

    def _read_signature(self, is_list: bool) -> tuple[tuple[str, str], ...]:
        start = self.position
        raw = self._string("(signature)", TAG_UTF8STRING)
        # Keyed by kind too: an empty text is no members for a struct but an
        # element code for a list.
        key = (is_list, raw)
        cached = self._signatures.get(key)
        if cached is not None:
            return cached
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            raise self._fail(MalformedInput, "signature is not UTF-8", offset=start) from None
        parsed: list[tuple[str, str]] = []
        if is_list:
            if text and text not in KIND_OF_CODE:
                raise self._fail(MalformedInput, f"unknown element code {text!r:.40}", offset=start)
            parsed.append(("", text))
        elif text:
            for item in text.split(" "):
                quoted, _, code = item.rpartition(":")
                member = unquote_member(quoted)
                if not member or code not in KIND_OF_CODE:
                    raise self._fail(MalformedInput, f"bad signature entry {item!r:.40}", offset=start)
                parsed.append((member, code))
        result = tuple(parsed)
        if len(self._signatures) >= _SIGNATURE_CACHE_SIZE:
            self._signatures.clear()
        self._signatures[key] = result
        return result

    def _open(self, name: str, code: str, index: int) -> int:
        self._member(name, code)
        start = self.position
        tag, length, content = self._header(name)
        if tag != TAG_SEQUENCE:
            self.position = start
            raise self._fail(MismatchDetected, f"found {_describe_tag(tag)} where a SEQUENCE ({code}) expected", name)
        self._push(name, index)
        end = content + length if length != _INDEFINITE else _INDEFINITE
        self._stack[-1].extend((end, (), 0, -1, code == "list", ()))
        self._bind(end)
        return start

    def _close(self, allow_trailing: bool) -> None:
        frame = self._stack[-1]
        end: int = frame[_END]  # type: ignore[assignment]
        signature: tuple[tuple[str, str], ...] = frame[_SIGNATURE]  # type: ignore[assignment]
        read: int = frame[_MEMBER]  # type: ignore[assignment]
        unread = frame[_SKIPPED] + signature[read:] if not frame[_IS_LIST] else ()  # type: ignore[operator]
        if unread and not allow_trailing:
            names = ", ".join(member for member, _ in unread)
            raise self._fail(MismatchDetected, f"the stream has member(s) the destination does not read: {names}")
        if end == _INDEFINITE:
            while not self._end_of_contents():
                if not allow_trailing:
                    raise self._fail(MalformedInput, "expected end-of-contents")
                self._skip("", 0)
            self.position += 2
        elif self.position != end:
            if not allow_trailing:
                raise self._fail(MalformedInput, f"{end - self.position} unexpected bytes before the end of the value")
            while self.position < end:
                self._skip("", 0)
        self._leave()

    # -- members read elsewhere (a compiled codec) --------------------------
    @property
    def data(self) -> bytes:
        """The whole input (reading goes on at :attr:`position`)."""
        return self._data

    def member_span(self, name: str, code: str) -> tuple[int, int] | None:
        """(start, end) of the next member when it is ``name`` of ``code`` where
        the stream's signature declares it, with a definite length inside its
        container; None otherwise (then read it through this visitor)."""
        if not self._stack:
            return None
        frame = self._stack[-1]
        index: int = frame[_MEMBER]  # type: ignore[assignment]
        if frame[_IS_LIST] or frame[_SIGNATURE][index : index + 1] != ((name, code),):  # type: ignore[index]
            return None
        data, start, limit = self._data, self.position, self._bound
        if start + 2 > limit or data[start] != TAG_SEQUENCE:
            return None
        length, content = data[start + 1], start + 2
        if length >= 0x80:
            octets = length & 0x7F
            if not 0 < octets <= MAX_LENGTH_OCTETS or content + octets > limit:
                return None
            length = int.from_bytes(data[content : content + octets], "big")
            content += octets
        end = content + length
        return (start, end) if end <= limit else None

    def skip_member(self, end: int) -> None:
        """Go past the member :meth:`member_span` found, read by someone else up to ``end``."""
        self._stack[-1][_MEMBER] += 1  # type: ignore[operator]
        self.position = end

    # -- visitor interface -------------------------------------------------
    def start_struct(self, name: str) -> None:
        self._open(name, "struct", -1)
        self._stack[-1][_SIGNATURE] = self._read_signature(False)

    def end_struct(self, *, allow_trailing: bool = False) -> None:
        self._close(allow_trailing)

    def start_list(self, name: str, framing: Framing, count: int) -> int:
        self._open(name, "list", -1)
        signature = self._read_signature(True)
        frame = self._stack[-1]
        frame[_SIGNATURE] = signature
        frame[_EXPECTED] = count
        frame[_INDEX] = -1
        return -1

    def _at_end(self, frame: list[object]) -> bool:
        end = frame[_END]
        if end == _INDEFINITE:
            if self.position + 2 > self._size:
                raise self._fail(TruncatedInput, "input ends before end-of-contents")
            return self._end_of_contents()
        return self.position >= end  # type: ignore[operator]

    def next_list(self, more: bool) -> bool:
        frame = self._stack[-1]
        index: int = frame[_INDEX] + 1  # type: ignore[operator]
        expected: int = frame[_EXPECTED]  # type: ignore[assignment]
        if self._at_end(frame):
            if expected >= 0 and index != expected:
                raise self._fail(MismatchDetected, f"list has {index} elements in the stream, expected {expected}")
            return False
        if index == expected:
            raise self._fail(MismatchDetected, f"list has more than the {expected} elements expected")
        if index >= MAX_ELEMENTS:
            raise self._fail(LimitExceeded, f"more than {MAX_ELEMENTS} elements")
        if not frame[_SIGNATURE][0][1]:  # type: ignore[index]
            raise self._fail(MalformedInput, "list with elements but no element code")
        frame[_INDEX] = index
        return True

    def end_list(self) -> None:
        self._close(False)

    def _integer(self, name: str) -> tuple[int, int]:
        """Read an INTEGER TLV (X.690 8.3: content present, minimal); return (value, content offset)."""
        content, length = self._primitive(name, TAG_INTEGER)
        data = self._data
        if length != 1:
            if length == 0:
                raise self._fail(MalformedInput, "INTEGER with no content octets", name, offset=content - 2)
            if length > MAX_INTEGER_OCTETS:
                raise self._fail(LimitExceeded, f"INTEGER of {length} octets", name, offset=content - 2)
            if data[content : content + 2] in _NOT_MINIMAL:
                raise self._fail(MalformedInput, "INTEGER not in minimal form", name, offset=content - 2)
        return int.from_bytes(data[content : content + length], "big", signed=True), content

    def visit_integer(self, kind: str, name: str, value: int) -> int:
        self._member(name, CODES[kind])
        value, content = self._integer(name)
        lo, hi = _RANGES[kind]
        if not lo <= value <= hi:
            raise self._fail(MalformedInput, f"{value} out of range for {kind}", name, offset=content)
        return value

    def visit_bool(self, name: str, value: bool) -> bool:
        self._member(name, "bool")
        content, length = self._primitive(name, TAG_BOOLEAN)
        if length != 1:
            raise self._fail(MalformedInput, f"BOOLEAN of {length} octets", name, offset=content - 2)
        return self._data[content] != 0

    def visit_str(self, name: str, value: str) -> str:
        self._member(name, "str")
        start = self.position
        raw = self._string(name, TAG_UTF8STRING)
        try:
            return raw.decode()
        except UnicodeDecodeError as error:
            raise self._fail(MalformedInput, f"UTF8String is not UTF-8 ({error.reason})", name, offset=start) from None

    def visit_buffer(self, name: str, value: bytes, size: int) -> bytes:
        self._member(name, "buf")
        start = self.position
        raw = self._string(name, TAG_OCTET_STRING)
        if len(raw) != size:
            raise self._fail(
                MismatchDetected, f"buffer has {len(raw)} bytes in the stream, expected {size}", name, offset=start
            )
        return raw
