"""Decoders on hostile input: every rejection is a DecodeError with offset and path.

Why: a migration stream arrives from another host. Each byte decoder is tried on
a real encoding of a mid-size description whole, truncated at every offset, with
trailing garbage and with single bytes changed; the BER decoder additionally on
hand-built inputs that attack its lengths, tags, nesting and integer forms. The
invariant (DESIGN.md §9): loaded, or rejected with the project's DecodeError
family -- nothing else, no hang, no large allocation.

The legacy format is also shown for what it is: the same width, sign and order
changes that BER detects are silent misreads there, and the tests pin the exact
wrong values that come out.
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import pytest
from _support import (
    BYTE_PAIRING_NAMES,
    NO_SUBSECTIONS,
    PAIRING_NAMES,
    decode,
    encode,
    one_field,
    parse_tlv,
    scalars,
    sequence,
    tlv,
    to_indefinite,
    utf8,
)

from migcompat.errors import (
    DecodeError,
    LimitExceeded,
    MalformedInput,
    MismatchDetected,
    TrailingData,
    TruncatedInput,
)
from migcompat.limits import MAX_DEPTH, MAX_ELEMENTS, MAX_LENGTH, MAX_TAG_OCTETS
from migcompat.model.vmstate import Array, Buffer, Description, Field, FieldRef, Scalar, Struct, Subsection
from migcompat.wire import PAIRINGS
from migcompat.wire.visitor import Framing, ListFraming

VQ = Struct(
    "vq",
    (
        Field("num", Scalar("uint32")),
        Field("desc", Scalar("uint64")),
        Field("last_avail_idx", Scalar("uint16")),
        Field("enabled", Scalar("bool")),
    ),
)
SOCKET = Struct("so", (Field("fd", Scalar("int32")), Field("data", Buffer(4)), Field("peer", Scalar("str"))))
RING = Description("dev/ring", 1, 1, (Field("sizes", Array(Scalar("uint16"), length=2)),))
MID = Description(
    "dev",
    3,
    1,
    (
        Field("status", Scalar("uint8")),
        Field("features", Scalar("uint64")),
        Field("queue_sel", Scalar("int16"), since=2),
        Field("config_len", Scalar("uint16")),
        Field("config", Buffer(FieldRef("config_len"))),
        Field("name", Scalar("str")),
        Field("vq", Array(VQ, framing=Framing(ListFraming.COUNT, count_bits=16))),
        Field("sockets", Array(SOCKET, framing=Framing(ListFraming.SENTINEL, marker=42, terminator=0))),
        Field("isr", Array(Scalar("uint8"), length=3)),
    ),
    (Subsection(RING),),
)
MID_STATE: dict[str, Any] = {
    "status": 0x0F,
    "features": 0x1_0000_0030,
    "queue_sel": -2,
    "config_len": 6,
    "config": b"\x52\x54\x00\x12\x34\x56",
    "name": "virtio-net",
    "vq": [
        {"num": 256, "desc": 0x7FFF0000, "last_avail_idx": 17, "enabled": True},
        {"num": 256, "desc": 0x7FFE0000, "last_avail_idx": 0, "enabled": False},
        {"num": 64, "desc": 0, "last_avail_idx": 65535, "enabled": True},
    ],
    "sockets": [{"fd": 3, "data": b"abcd", "peer": "10.0.2.2"}, {"fd": -1, "data": bytes(4), "peer": ""}],
    "isr": [1, 0, 255],
    "dev/ring": {"sizes": [256, 1024]},
}
MID_STATE_WITHOUT_SUBSECTION = {key: value for key, value in MID_STATE.items() if key != "dev/ring"}


def _encodings() -> dict[str, bytes]:
    ber = encode("ber", MID, MID_STATE)
    return {"qemufile": encode("qemufile", MID, MID_STATE), "ber": ber, "ber-indefinite": to_indefinite(ber)}


ENCODINGS = _encodings()
ENCODING_PAIRING = {"qemufile": "qemufile", "ber": "ber", "ber-indefinite": "ber"}


def test_every_byte_pairing_has_a_hostile_encoding() -> None:
    assert {ENCODING_PAIRING[name] for name in ENCODINGS} == set(BYTE_PAIRING_NAMES)


@pytest.mark.parametrize("form", ENCODINGS)
def test_the_whole_encoding_loads(form: str) -> None:
    assert decode(ENCODING_PAIRING[form], MID, ENCODINGS[form]) == MID_STATE


def test_the_indefinite_form_really_is_indefinite() -> None:
    data = ENCODINGS["ber-indefinite"]
    assert data[:2] == b"\x30\x80" and data != ENCODINGS["ber"]
    # dev, vq + 3 queues, sockets + 2, isr, subsections, its entry, dev/ring, sizes, ring's subsections
    assert data.count(b"\x30\x80") == 14


def _valid_prefixes(form: str) -> dict[int, dict[str, Any]]:
    """Prefixes that are themselves complete encodings, with the state they hold.

    The legacy stream has no end marker for the subsection list (QEMU's section
    footer follows it), so cutting exactly before the optional subsection leaves
    a valid stream of the state without it. BER has no such prefix.
    """
    if form != "qemufile":
        return {}
    prefix = encode("qemufile", MID, MID_STATE_WITHOUT_SUBSECTION)
    assert ENCODINGS["qemufile"].startswith(prefix)
    return {len(prefix): MID_STATE_WITHOUT_SUBSECTION}


@pytest.mark.parametrize("form", ENCODINGS)
def test_truncation_at_every_offset_is_a_decode_error(form: str) -> None:
    data = ENCODINGS[form]
    valid = _valid_prefixes(form)
    for cut in range(len(data)):
        if cut in valid:
            assert decode(ENCODING_PAIRING[form], MID, data[:cut]) == valid[cut]
            continue
        with pytest.raises(DecodeError) as caught:
            decode(ENCODING_PAIRING[form], MID, data[:cut])
        error = caught.value
        assert isinstance(error.offset, int) and 0 <= error.offset <= cut, (cut, error)
        assert isinstance(error.path, str), (cut, error)
        # A cut inside a subsection header reads as "not this description's
        # subsection" on the legacy wire (QEMU's peek rule), so it is trailing data.
        assert type(error) in (TruncatedInput, MalformedInput, TrailingData), (cut, error)


def test_a_qemufile_truncation_names_the_field_and_its_offset() -> None:
    data = ENCODINGS["qemufile"]
    # status(1) features(8) queue_sel(2) config_len(2) config(6) name(1+10) vq count(2),
    # then vq[0]: num(4) desc(8) and two bytes into last_avail_idx.
    cut = 1 + 8 + 2 + 2 + 6 + 11 + 2 + 4 + 8 + 1
    with pytest.raises(TruncatedInput, match=r"input ends after 1 of 2 bytes") as caught:
        decode("qemufile", MID, data[:cut])
    assert caught.value.path == "dev/vq[0]/last_avail_idx"
    assert caught.value.offset == cut - 1


@pytest.mark.parametrize("form", ENCODINGS)
@pytest.mark.parametrize("garbage", [b"\x00", b"\xde\xad", b"\x30\x00"], ids=["nul", "dead", "empty-seq"])
def test_trailing_garbage_is_rejected_by_finish(form: str, garbage: bytes) -> None:
    data = ENCODINGS[form]
    with pytest.raises(TrailingData, match=rf"^{len(garbage)} unexpected trailing bytes") as caught:
        decode(ENCODING_PAIRING[form], MID, data + garbage)
    assert caught.value.offset == len(data)


@pytest.mark.parametrize("form", ENCODINGS)
def test_every_single_byte_change_loads_or_is_a_decode_error(form: str) -> None:
    data = ENCODINGS[form]
    outcomes = {"loaded": 0, "rejected": 0}
    for offset in range(len(data)):
        for replacement in {0x00, 0x05, 0x2A, 0x80, 0xFF, data[offset] ^ 0x01}:
            mutant = data[:offset] + bytes((replacement,)) + data[offset + 1 :]
            try:
                decode(ENCODING_PAIRING[form], MID, mutant)
            except DecodeError as error:
                assert isinstance(error.offset, int) and isinstance(error.path, str)
                outcomes["rejected"] += 1
            else:
                outcomes["loaded"] += 1
    assert outcomes["rejected"] > 0 and outcomes["loaded"] > 0


# -- BER: hand-built attacks --------------------------------------------------

BUFFER4 = one_field(Buffer(4))
UINT8 = one_field(Scalar("uint8"))
INT8 = one_field(Scalar("int8"))
UINT64 = one_field(Scalar("uint64"))
BOOL = one_field(Scalar("bool"))
STR = one_field(Scalar("str"))


def _case(signature_code: str, member: bytes) -> bytes:
    """The ``case`` struct of :func:`one_field` with ``member`` as its value."""
    return sequence(utf8(f"value:{signature_code} subsections:list"), member, NO_SUBSECTIONS)


def _nested_definite(depth: int, tag: int, leaf: bytes) -> bytes:
    for _ in range(depth):
        leaf = tlv(tag, leaf)
    return leaf


def _nested_indefinite(depth: int, tag: int, leaf: bytes) -> bytes:
    return bytes((tag, 0x80)) * depth + leaf + b"\0\0" * depth


HUGE_TAG = b"\x1f" + b"\x81" * 999 + b"\x01"

BER_ATTACKS = [
    # (id, description, stream, error, message)
    (
        "length-2^63",
        BUFFER4,
        _case("buf", bytes.fromhex("04 88 7f ff ff ff ff ff ff ff")),
        LimitExceeded,
        r"declared length 9223372036854775807 exceeds the 67108864-byte limit",
    ),
    (
        "length-2^64-1",
        BUFFER4,
        _case("buf", bytes.fromhex("04 88 ff ff ff ff ff ff ff ff")),
        LimitExceeded,
        r"declared length 18446744073709551615 exceeds",
    ),
    (
        "length-of-9-octets",
        BUFFER4,
        _case("buf", bytes.fromhex("04 89 00 00 00 00 00 00 00 00 04")),
        LimitExceeded,
        r"length of 9 octets exceeds 8",
    ),
    (
        "length-reserved-0xff",
        BUFFER4,
        _case("buf", bytes.fromhex("04 ff")),
        MalformedInput,
        r"reserved length octet 0xff",
    ),
    (
        "primitive-indefinite",
        BUFFER4,
        _case("buf", bytes.fromhex("04 80 61 62 63 64 00 00")),
        MalformedInput,
        r"indefinite length on a primitive value",
    ),
    (
        "length-past-container",
        BUFFER4,
        sequence(utf8("value:buf subsections:list"), bytes.fromhex("04 05 61 62 63 64")) + bytes(8),
        TruncatedInput,
        r"declared length 5 but the enclosing value has 4 bytes left",
    ),
    (
        "long-tag-1000",
        BUFFER4,
        _case("buf", HUGE_TAG + b"\x00"),
        LimitExceeded,
        rf"tag longer than {MAX_TAG_OCTETS} octets",
    ),
    (
        "tag-leading-zero",
        BUFFER4,
        _case("buf", bytes.fromhex("1f 80 01 00")),
        MalformedInput,
        r"multi-byte tag with leading zero bits",
    ),
    (
        "low-tag-in-long-form",
        BUFFER4,
        _case("buf", bytes.fromhex("1f 04 00")),
        MalformedInput,
        r"tag number 4 in multi-byte form",
    ),
    (
        "wrong-tag",
        BUFFER4,
        _case("buf", bytes.fromhex("02 01 05")),
        MismatchDetected,
        r"found INTEGER where OCTET STRING expected",
    ),
    (
        "buffer-size",
        BUFFER4,
        _case("buf", bytes.fromhex("04 03 61 62 63")),
        MismatchDetected,
        r"buffer has 3 bytes in the stream, expected 4",
    ),
    (
        "string-nested-definite",
        BUFFER4,
        _case("buf", _nested_definite(MAX_DEPTH + 10, 0x24, bytes.fromhex("04 04 61 62 63 64"))),
        LimitExceeded,
        rf"nesting deeper than {MAX_DEPTH}",
    ),
    (
        "string-nested-indefinite",
        BUFFER4,
        _case("buf", _nested_indefinite(MAX_DEPTH + 10, 0x24, bytes.fromhex("04 04 61 62 63 64"))),
        LimitExceeded,
        rf"nesting deeper than {MAX_DEPTH}",
    ),
    (
        "integer-not-minimal-zero",
        UINT8,
        _case("u8", bytes.fromhex("02 02 00 05")),
        MalformedInput,
        r"INTEGER not in minimal form",
    ),
    (
        "integer-not-minimal-ff",
        INT8,
        _case("i8", bytes.fromhex("02 02 ff ff")),
        MalformedInput,
        r"INTEGER not in minimal form",
    ),
    ("integer-empty", UINT8, _case("u8", bytes.fromhex("02 00")), MalformedInput, r"INTEGER with no content octets"),
    (
        "integer-10-octets",
        UINT64,
        _case("u64", bytes.fromhex("02 0a 01 00 00 00 00 00 00 00 00 00")),
        LimitExceeded,
        r"INTEGER of 10 octets",
    ),
    (
        "integer-out-of-range",
        UINT8,
        _case("u8", bytes.fromhex("02 02 01 00")),
        MalformedInput,
        r"256 out of range for uint8",
    ),
    (
        "integer-negative-unsigned",
        UINT8,
        _case("u8", bytes.fromhex("02 01 ff")),
        MalformedInput,
        r"-1 out of range for uint8",
    ),
    ("boolean-2-octets", BOOL, _case("bool", bytes.fromhex("01 02 00 ff")), MalformedInput, r"BOOLEAN of 2 octets"),
    ("boolean-empty", BOOL, _case("bool", bytes.fromhex("01 00")), MalformedInput, r"BOOLEAN of 0 octets"),
    ("utf8-invalid", STR, _case("str", bytes.fromhex("0c 02 c3 28")), MalformedInput, r"UTF8String is not UTF-8"),
    (
        "signature-bad-code",
        UINT8,
        sequence(utf8("value:u7 subsections:list"), bytes.fromhex("02 01 05"), NO_SUBSECTIONS),
        MalformedInput,
        r"bad signature entry 'value:u7'",
    ),
    (
        "signature-not-utf8",
        UINT8,
        sequence(tlv(0x0C, b"\xff\xfe"), bytes.fromhex("02 01 05"), NO_SUBSECTIONS),
        MalformedInput,
        r"signature is not UTF-8",
    ),
    (
        "signature-lies-about-count",
        UINT8,
        sequence(utf8("value:u8 subsections:list")) + b"\0\0",
        MalformedInput,
        r"container ends before this value",
    ),
    (
        "signature-lies-at-the-end",
        UINT8,
        sequence(utf8("value:u8 subsections:list")),
        TruncatedInput,
        r"input ends where a value should start",
    ),
    (
        "list-code-unknown",
        UINT8,
        sequence(utf8("value:u8 subsections:list"), bytes.fromhex("02 01 05"), sequence(utf8("u7"))),
        MalformedInput,
        r"unknown element code 'u7'",
    ),
    (
        "list-elements-without-code",
        UINT8,
        sequence(
            utf8("value:u8 subsections:list"), bytes.fromhex("02 01 05"), sequence(utf8(""), bytes.fromhex("02 01 05"))
        ),
        MalformedInput,
        r"list with elements but no element code",
    ),
    (
        "struct-not-a-sequence",
        UINT8,
        bytes.fromhex("31 03 02 01 05"),
        MismatchDetected,
        r"found tag 0x31 where a SEQUENCE \(struct\) expected",
    ),
    (
        "bytes-after-last-member",
        UINT8,
        sequence(utf8("value:u8 subsections:list"), bytes.fromhex("02 01 05"), NO_SUBSECTIONS, bytes.fromhex("05 00")),
        MalformedInput,
        r"2 unexpected bytes before the end of the value",
    ),
    (
        "indefinite-without-end",
        UINT8,
        b"\x30\x80" + utf8("value:u8 subsections:list") + bytes.fromhex("02 01 05") + NO_SUBSECTIONS + b"\x05\x00",
        MalformedInput,
        r"expected end-of-contents",
    ),
]


@pytest.mark.parametrize(
    ("description", "stream", "error", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in BER_ATTACKS],
)
def test_ber_attack_is_rejected(
    description: Description, stream: bytes, error: type[DecodeError], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        decode("ber", description, stream)
    assert isinstance(caught.value.offset, int)
    assert 0 <= caught.value.offset <= len(stream)
    assert caught.value.path.startswith("case")


@pytest.mark.parametrize("outer", ["definite", "indefinite"])
@pytest.mark.parametrize(
    ("declared", "error", "message"),
    [
        (1 << 30, LimitExceeded, r"declared length 1073741824 exceeds the 67108864-byte limit"),
        (MAX_LENGTH, TruncatedInput, rf"declared length {MAX_LENGTH} but the (input|enclosing value) has 1\d bytes"),
    ],
    ids=["1GiB", "MAX_LENGTH"],
)
def test_a_huge_declared_length_fails_fast_without_allocating(
    outer: str, declared: int, error: type[DecodeError], message: str
) -> None:
    member = b"\x04\x84" + declared.to_bytes(4, "big") + bytes(10)
    stream = _case("buf", member)
    if outer == "indefinite":
        stream = b"\x30\x80" + utf8("value:buf subsections:list") + member
    description = one_field(Buffer(4))
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(error, match=message):
            decode("ber", description, stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 1.0
    assert peak < 1 << 20, f"peak allocation {peak} bytes"


# -- skipping unknown data (forward compatibility) is bounded too -----------

LENIENT = Description("case", 2, 1, (Field("value", Scalar("uint8")),), accept_unknown=True)


def _with_unknown_trailing_member(member: bytes, code: str = "struct") -> bytes:
    return sequence(utf8(f"value:u8 extra:{code} subsections:list"), bytes.fromhex("02 01 05"), member, NO_SUBSECTIONS)


def _with_unknown_subsection(member: bytes) -> bytes:
    entry = sequence(
        utf8("name:str version_id:u32 critical:bool case/new:struct"),
        utf8("case/new"),
        bytes.fromhex("02 01 01"),
        bytes.fromhex("01 01 00"),  # not critical
        member,
    )
    return sequence(utf8("value:u8 subsections:list"), bytes.fromhex("02 01 05"), sequence(utf8("struct"), entry))


#: Where unknown data is skipped: a trailing member, or a non-critical subsection.
WRAPS = pytest.mark.parametrize(
    "wrap", [_with_unknown_trailing_member, _with_unknown_subsection], ids=["member", "subsection"]
)

SKIP_ATTACKS = [
    (
        "deep-indefinite",
        _nested_indefinite(MAX_DEPTH + 10, 0x30, b""),
        LimitExceeded,
        rf"nesting deeper than {MAX_DEPTH}",
    ),
    ("long-tag", HUGE_TAG + b"\x00", LimitExceeded, rf"tag longer than {MAX_TAG_OCTETS} octets"),
    ("indefinite-unterminated", b"\x30\x80\x02\x01\x05", TruncatedInput, r"input ends where a value should start"),
]


@WRAPS
@pytest.mark.parametrize(("member", "error", "message"), [pytest.param(*case[1:], id=case[0]) for case in SKIP_ATTACKS])
def test_skipping_unknown_data_is_bounded(wrap: Any, member: bytes, error: type[DecodeError], message: str) -> None:
    with pytest.raises(error, match=message) as caught:
        decode("ber", LENIENT, wrap(member), version=2)
    assert isinstance(caught.value.offset, int)


@WRAPS
def test_deep_definite_nesting_is_skipped_whole_without_descending(wrap: Any) -> None:
    member = _nested_definite(10 * MAX_DEPTH, 0x30, b"")
    assert decode("ber", LENIENT, wrap(member), version=2) == {"value": 5}


@WRAPS
def test_skipping_accepts_what_x690_allows(wrap: Any) -> None:
    # Multi-byte tags, long-form lengths and indefinite lengths inside skipped data.
    member = b"\x30\x80" + b"\x5f\x81\x00\x81\x03abc" + b"\x3f\x22\x80\x04\x00\x00\x00" + b"\x00\x00"
    assert decode("ber", LENIENT, wrap(member), version=2) == {"value": 5}


# -- limits on counts ---------------------------------------------------------


def test_a_qemufile_count_over_the_element_limit_is_refused_before_reading() -> None:
    description = one_field(Array(Scalar("uint8"), framing=Framing(ListFraming.COUNT, count_bits=32)))
    with pytest.raises(LimitExceeded, match=rf"count 4294967295 exceeds the {MAX_ELEMENTS}-element limit"):
        decode("qemufile", description, b"\xff\xff\xff\xff")


def test_a_length_field_over_the_element_limit_is_refused_even_for_empty_elements() -> None:
    # Zero-byte elements consume no input, so only the limit stops the loop.
    description = Description(
        "case", 1, 1, (Field("n", Scalar("uint32")), Field("items", Array(Buffer(0), length=FieldRef("n"))))
    )
    started = time.perf_counter()
    with pytest.raises(LimitExceeded, match=r"exceeds the 1000000-element limit"):
        decode("qemufile", description, b"\xff\xff\xff\xff")
    assert time.perf_counter() - started < 1.0


NEGATIVE_LENGTH = Description(
    "case",
    1,
    1,
    (Field("n", Scalar("int8")), Field("data", Buffer(FieldRef("n"))), Field("after", Scalar("uint8"))),
)
NEGATIVE_COUNT = Description(
    "case", 1, 1, (Field("n", Scalar("int8")), Field("items", Array(Scalar("uint8"), length=FieldRef("n"))))
)
NEGATIVE_INPUTS = {
    ("qemufile", "buffer"): bytes.fromhex("ff 07"),
    ("qemufile", "array"): bytes.fromhex("ff"),
    ("ber", "buffer"): sequence(
        utf8("n:i8 data:buf after:u8 subsections:list"), b"\x02\x01\xff", b"\x04\x00", b"\x02\x01\x07", NO_SUBSECTIONS
    ),
    ("ber", "array"): sequence(
        utf8("n:i8 items:list subsections:list"), b"\x02\x01\xff", sequence(utf8("u8"), b"\x02\x01\x07"), NO_SUBSECTIONS
    ),
    ("dict", "buffer"): {"n": -1, "data": b"", "after": 7, "subsections": []},
    ("dict", "array"): {"n": -1, "items": [7], "subsections": []},
}


@pytest.mark.parametrize(("pairing", "shape"), list(NEGATIVE_INPUTS), ids=[f"{p}/{s}" for p, s in NEGATIVE_INPUTS])
def test_a_negative_length_field_is_rejected(pairing: str, shape: str) -> None:
    description = NEGATIVE_LENGTH if shape == "buffer" else NEGATIVE_COUNT
    with pytest.raises(MalformedInput, match=r"length field 'n' holds -1") as caught:
        decode(pairing, description, NEGATIVE_INPUTS[pairing, shape])
    assert caught.value.path == ("case/data" if shape == "buffer" else "case/items")


def test_negative_inputs_cover_every_pairing() -> None:
    assert {pairing for pairing, _ in NEGATIVE_INPUTS} == set(PAIRING_NAMES)


# -- width, sign and shape changes: detected on BER, silent on qemufile ------

WIDTH_SOURCE = scalars("dev", ("a", "uint8"), ("count", "uint16"), ("c", "uint8"))
WIDTH_DESTINATION = scalars("dev", ("a", "uint8"), ("count", "uint32"), ("c", "uint8"))


def test_ber_detects_a_width_change_at_the_field() -> None:
    data = encode("ber", WIDTH_SOURCE, {"a": 1, "count": 0x1234, "c": 2})
    count_member = parse_tlv(data).children[2]  # [signature, a, count, c, subsections]
    assert data[count_member.offset : count_member.end] == b"\x02\x02\x12\x34"
    with pytest.raises(MismatchDetected, match=r"^'count' is uint16 in the stream, read as uint32") as caught:
        decode("ber", WIDTH_DESTINATION, data)
    assert caught.value.path == "dev/count"
    assert caught.value.offset == count_member.offset


def test_ber_detects_a_sign_change_even_when_the_value_fits() -> None:
    source = scalars("dev", ("a", "int16"))
    destination = scalars("dev", ("a", "uint16"))
    with pytest.raises(MismatchDetected, match=r"'a' is int16 in the stream, read as uint16") as caught:
        decode("ber", destination, encode("ber", source, {"a": 5}))
    assert caught.value.path == "dev/a"


def test_ber_detects_a_width_change_inside_a_list_element() -> None:
    element = Struct("vq", (Field("num", Scalar("uint16")),))
    wider = Struct("vq", (Field("num", Scalar("uint32")),))
    source = Description("dev", 1, 1, (Field("vq", Array(element, length=2)),))
    destination = Description("dev", 1, 1, (Field("vq", Array(wider, length=2)),))
    data = encode("ber", source, {"vq": [{"num": 1}, {"num": 2}]})
    first_num = parse_tlv(data).children[1].children[1].children[1]  # dev -> vq -> vq[0] -> num
    with pytest.raises(MismatchDetected, match=r"'num' is uint16 in the stream, read as uint32") as caught:
        decode("ber", destination, data)
    assert caught.value.path == "dev/vq[0]/num"
    assert caught.value.offset == first_num.offset


def test_ber_detects_a_struct_read_as_a_list() -> None:
    source = Description("dev", 1, 1, (Field("q", Struct("q", (Field("x", Scalar("uint8")),))),))
    destination = Description("dev", 1, 1, (Field("q", Array(Scalar("uint8"), length=1)),))
    with pytest.raises(MismatchDetected, match=r"'q' is struct in the stream, read as list"):
        decode("ber", destination, encode("ber", source, {"q": {"x": 1}}))


SHAPE_SOURCE = scalars("dev", ("a", "uint8"), ("b", "uint8"), ("c", "uint8"))
SHAPE_STATE = {"a": 1, "b": 2, "c": 3}
SHAPE_MUTANTS = [
    # (id, destination members, BER message, qemufile outcome: a state or an error class)
    ("renamed", ["a", "bb", "c"], r"the stream has member 'b' where 'bb' is read", {"a": 1, "bb": 2, "c": 3}),
    ("reordered", ["a", "c", "b"], r"the stream has member 'b' where 'c' is read", {"a": 1, "c": 2, "b": 3}),
    ("inserted", ["a", "x", "b", "c"], r"the stream has member 'b' where 'x' is read", TruncatedInput),
    ("dropped-middle", ["a", "c"], r"the stream has member 'b' where 'c' is read", TrailingData),
    ("dropped-last", ["a", "b"], r"the stream has member\(s\) the destination does not read: c", TrailingData),
]


@pytest.mark.parametrize(
    ("members", "message", "legacy"), [pytest.param(*case[1:], id=case[0]) for case in SHAPE_MUTANTS]
)
def test_member_changes_are_detected_on_ber(members: list[str], message: str, legacy: Any) -> None:
    destination = scalars("dev", *((member, "uint8") for member in members))
    with pytest.raises(MismatchDetected, match=message) as caught:
        decode("ber", destination, encode("ber", SHAPE_SOURCE, SHAPE_STATE))
    assert caught.value.path.startswith("dev")
    assert isinstance(caught.value.offset, int)


@pytest.mark.parametrize(
    ("members", "message", "legacy"), [pytest.param(*case[1:], id=case[0]) for case in SHAPE_MUTANTS]
)
def test_member_changes_are_silent_or_late_on_qemufile(members: list[str], message: str, legacy: Any) -> None:
    destination = scalars("dev", *((member, "uint8") for member in members))
    data = encode("qemufile", SHAPE_SOURCE, SHAPE_STATE)
    assert data == b"\x01\x02\x03"
    if isinstance(legacy, dict):
        assert decode("qemufile", destination, data) == legacy
    else:
        with pytest.raises(legacy):
            decode("qemufile", destination, data)


def test_qemufile_misreads_a_width_change_silently() -> None:
    source = scalars("dev", ("a", "uint16"), ("b", "uint16"), ("c", "uint32"))
    destination = scalars("dev", ("a", "uint32"), ("b", "uint16"), ("c", "uint16"))
    data = encode("qemufile", source, {"a": 0x1234, "b": 0x5678, "c": 0x9ABCDEF0})
    assert data == bytes.fromhex("1234 5678 9abcdef0")
    # a takes both uint16s, b and c split the uint32: loaded, and wrong.
    assert decode("qemufile", destination, data) == {"a": 0x12345678, "b": 0x9ABC, "c": 0xDEF0}
    with pytest.raises(MismatchDetected, match=r"'a' is uint16 in the stream, read as uint32"):
        decode("ber", destination, encode("ber", source, {"a": 0x1234, "b": 0x5678, "c": 0x9ABCDEF0}))


def test_qemufile_width_change_shows_up_only_as_a_later_truncation() -> None:
    data = encode("qemufile", WIDTH_SOURCE, {"a": 1, "count": 0x1234, "c": 2})
    assert data == bytes.fromhex("01 1234 02")
    with pytest.raises(TruncatedInput, match=r"input ends after 3 of 4 bytes") as caught:
        decode("qemufile", WIDTH_DESTINATION, data)
    assert caught.value.path == "dev/count"  # blamed on count, but only because the stream ran out


def test_qemufile_misreads_a_sign_change_silently() -> None:
    source = scalars("dev", ("a", "int16"))
    destination = scalars("dev", ("a", "uint16"))
    assert decode("qemufile", destination, encode("qemufile", source, {"a": -1})) == {"a": 0xFFFF}


def test_truncation_error_kinds_are_reportable() -> None:
    # Every error raised above is one of the project's, with a short kind for reports.
    kinds = {cls.kind for cls in (TruncatedInput, MalformedInput, LimitExceeded, MismatchDetected, TrailingData)}
    assert kinds == {"truncated", "malformed", "limit", "detected", "trailing"}
    assert PAIRINGS["ber"].self_describing and not PAIRINGS["qemufile"].self_describing


def test_the_signature_cache_keeps_an_empty_struct_and_an_empty_list_apart() -> None:
    # Both have the empty signature text; one means "no members", the other "no
    # element code". A decode of one must not change how the other is read.
    empty_struct = Description("dev", 1, 1, (Field("s", Struct("s", ())),))
    empty_list = one_field(Array(Scalar("uint8"), framing=Framing(ListFraming.COUNT, count_bits=8)))
    for _ in range(2):
        assert decode("ber", empty_struct, encode("ber", empty_struct, {"s": {}})) == {"s": {}}
        assert decode("ber", empty_list, encode("ber", empty_list, {"value": []})) == {"value": []}
    hostile = sequence(utf8("value:list subsections:list"), sequence(utf8(""), b"\x02\x01\x05"), NO_SUBSECTIONS)
    with pytest.raises(MalformedInput, match=r"list with elements but no element code"):
        decode("ber", empty_list, hostile)
