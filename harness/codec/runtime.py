"""What generated code calls and compares against at run time.

Why a module of its own: every generated module starts from :data:`HELPERS`
(its globals), and the emitters spell the same tags and tables into the code
they write. Both sides read them from here, so a tag the encoder writes and the
decoder expects is one constant.
"""

from __future__ import annotations

import struct
from typing import Any

from migcompat.wire.ber import encode_integer, encode_length, encode_tlv


class Fallback(Exception):
    """Raised by generated code: this input is not for the fast path."""


#: What generated code raises when it gives up on an input: its own signal, or
#: what a short input, a missing member or a value that does not fit raises on
#: the way (an ``IndexError``, ``KeyError``, ``TypeError``, ``ValueError``,
#: ``OverflowError`` or ``struct.error``). Anything else -- a ``NameError``, an
#: ``AttributeError`` -- is a bug in the generator and propagates.
GIVES_UP = (Fallback, IndexError, KeyError, TypeError, ValueError, OverflowError, struct.error)

TAG_BOOLEAN, TAG_INTEGER, TAG_OCTET_STRING, TAG_UTF8STRING, TAG_SEQUENCE = 0x01, 0x02, 0x04, 0x0C, 0x30


def tlv_head(tag: int, length: int) -> bytes:
    """A BER tag and definite length (the form the output visitor writes)."""
    return bytes((tag,)) + encode_length(length)


#: SEQUENCE headers for short contents (the short and one-octet long forms).
SEQ_HEADS = tuple(tlv_head(TAG_SEQUENCE, length) for length in range(256))
BOOL_TLVS = {True: b"\x01\x01\xff", False: b"\x01\x01\x00"}
BOOL_VALUES = {b"\x01\x01\xff": True, b"\x01\x01\x00": False}
#: The element code of an empty list, and a whole empty list.
EMPTY_CODE = encode_tlv(TAG_UTF8STRING, b"")
EMPTY_LIST = tlv_head(TAG_SEQUENCE, len(EMPTY_CODE)) + EMPTY_CODE


def long_length(data: bytes, at: int) -> tuple[int, int]:
    """A long-form definite length whose first octet is at ``at``: (length, content offset)."""
    count = data[at] - 0x80
    if not 0 < count <= 8:
        raise Fallback
    content = at + 1 + count
    if content > len(data):
        raise Fallback
    return int.from_bytes(data[at + 1 : content], "big"), content


def ber_int(value: int) -> bytes:
    """An INTEGER TLV (the value already checked)."""
    return encode_integer(value)


#: Lowest canonical unsigned value per INTEGER content length (0 is never canonical).
UINT_LOW = (1, 0, *(1 << (8 * (n - 1) - 1) for n in range(2, 10)))

#: The globals every generated module starts with.
HELPERS: dict[str, Any] = {
    "_Fallback": Fallback,
    "_from_bytes": int.from_bytes,
    "_long_length": long_length,
    "_tlv_head": tlv_head,
    "_ber_int": ber_int,
    "_SEQ_HEADS": SEQ_HEADS,
    "_BOOL_TLVS": BOOL_TLVS,
    "_BOOL_VALUES": BOOL_VALUES,
    "_UINT_LOW": UINT_LOW,
    "_BYTES": (bytes, bytearray),
    "_SEQ": (list, tuple),
}
