"""The BER wire against independent implementations: pyasn1 and OpenSSL.

Why: DESIGN.md promises that every stream we emit is plain X.690 that generic
decoders read without a schema, and that our decoder accepts what X.690 allows.
Here pyasn1 and ``openssl asn1parse`` read what we write, and our decoder reads
what pyasn1's CER encoder writes (indefinite lengths everywhere, strings over
1000 bytes split into constructed segments).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
from _support import decode, encode, one_field, parse_tlv
from pyasn1.codec.ber import decoder as ber_decoder
from pyasn1.codec.cer import encoder as cer_encoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.type import char, univ

from migcompat.model.vmstate import Array, Buffer, Description, Field, Scalar, Struct, Subsection
from migcompat.wire.visitor import Framing, ListFraming

QUEUE = Struct("queue", (Field("num", Scalar("uint16")), Field("vector", Scalar("int8"))))
EXTRA = Description("dev/x", 4, 1, (Field("z", Scalar("uint8")),))
DEVICE = Description(
    "dev",
    1,
    1,
    (
        Field("a", Scalar("int16")),
        Field("count", Scalar("uint32")),
        Field("big", Scalar("uint64")),
        Field("s", Scalar("str")),
        Field("b", Buffer(3)),
        Field("flags", Array(Scalar("uint8"), length=2)),
        Field("on", Scalar("bool")),
        Field("queues", Array(QUEUE, framing=Framing(ListFraming.COUNT, count_bits=16))),
    ),
    (Subsection(EXTRA),),
)
STATE = {
    "a": -5,
    "count": 0xDEADBEEF,
    "big": 2**64 - 1,
    "s": "hé",
    "b": b"xyz",
    "flags": [1, 200],
    "on": True,
    "queues": [{"num": 7, "vector": -1}],
    "dev/x": {"z": 9},
}
SIGNATURE = "a:i16 count:u32 big:u64 s:str b:buf flags:list on:bool queues:list subsections:list"
SUBSECTION_ENTRY_SIGNATURE = "name:str version_id:u32 critical:bool dev/x:struct"


# -- the same value as a pyasn1 tree, built independently ------------------


def asn1_struct(signature: str, *members: Any) -> univ.Sequence:
    sequence = univ.Sequence()
    sequence.setComponentByPosition(0, char.UTF8String(signature))
    for position, member in enumerate(members, 1):
        sequence.setComponentByPosition(position, member)
    return sequence


def asn1_list(code: str, *elements: Any) -> univ.Sequence:
    return asn1_struct(code, *elements)


def device_tree(s: str = "hé", b: bytes = b"xyz") -> univ.Sequence:
    return asn1_struct(
        SIGNATURE,
        univ.Integer(-5),
        univ.Integer(0xDEADBEEF),
        univ.Integer(2**64 - 1),
        char.UTF8String(s),
        univ.OctetString(b),
        asn1_list("u8", univ.Integer(1), univ.Integer(200)),
        univ.Boolean(True),
        asn1_list("struct", asn1_struct("num:u16 vector:i8", univ.Integer(7), univ.Integer(-1))),
        asn1_list(
            "struct",
            asn1_struct(
                SUBSECTION_ENTRY_SIGNATURE,
                char.UTF8String("dev/x"),
                univ.Integer(4),
                univ.Boolean(True),
                asn1_struct("z:u8 subsections:list", univ.Integer(9), asn1_list("")),
            ),
        ),
    )


# -- pyasn1 reads what we write --------------------------------------------


def test_pyasn1_decodes_our_stream_without_a_schema() -> None:
    data = encode("ber", DEVICE, STATE)
    tree, rest = ber_decoder.decode(data)
    assert rest == b""
    assert len(tree) == 10
    assert str(tree[0]) == SIGNATURE
    assert [int(tree[i]) for i in (1, 2, 3)] == [-5, 0xDEADBEEF, 2**64 - 1]
    assert str(tree[4]) == "hé"
    assert bytes(tree[5]) == b"xyz"
    assert [str(tree[6][0]), int(tree[6][1]), int(tree[6][2])] == ["u8", 1, 200]
    assert bool(tree[7]) is True
    queue = tree[8][1]
    assert [str(tree[8][0]), str(queue[0]), int(queue[1]), int(queue[2])] == ["struct", "num:u16 vector:i8", 7, -1]
    entry = tree[9][1]
    assert str(entry[0]) == SUBSECTION_ENTRY_SIGNATURE
    assert [str(entry[1]), int(entry[2]), bool(entry[3])] == ["dev/x", 4, True]
    assert [str(entry[4][0]), int(entry[4][1])] == ["z:u8 subsections:list", 9]


def test_our_output_is_what_pyasn1s_der_encoder_writes() -> None:
    # Definite lengths, minimal integers, 0xff for true: our output is DER.
    assert encode("ber", DEVICE, STATE) == der_encoder.encode(device_tree())


INTEGERS = [
    # (kind, value, the whole TLV by hand)
    ("uint8", 0, "02 01 00"),
    ("uint8", 127, "02 01 7f"),
    ("uint8", 128, "02 02 00 80"),
    ("uint8", 255, "02 02 00 ff"),
    ("int8", -1, "02 01 ff"),
    ("int8", -128, "02 01 80"),
    ("int16", -129, "02 02 ff 7f"),
    ("int16", 256, "02 02 01 00"),
    ("int32", -(2**31), "02 04 80 00 00 00"),
    ("uint32", 2**32 - 1, "02 05 00 ff ff ff ff"),
    ("int64", -(2**63), "02 08 80 00 00 00 00 00 00 00"),
    ("uint64", 2**64 - 1, "02 09 00 ff ff ff ff ff ff ff ff"),
]


@pytest.mark.parametrize(("kind", "value", "wire"), INTEGERS, ids=[f"{kind}={value}" for kind, value, _ in INTEGERS])
def test_integers_are_minimal_twos_complement_that_pyasn1_reads_back(kind: str, value: int, wire: str) -> None:
    data = encode("ber", one_field(Scalar(kind)), {"value": value})
    top = parse_tlv(data)
    member = top.children[1]
    assert data[member.offset : member.end] == bytes.fromhex(wire)
    assert int(ber_decoder.decode(data[member.offset : member.end])[0]) == value
    code = ("u" if kind.startswith("u") else "i") + kind.removeprefix("u").removeprefix("int")
    assert top.children[0].content(data) == f"value:{code} subsections:list".encode()


OPENSSL = shutil.which("openssl")


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
def test_openssl_asn1parse_reads_our_stream() -> None:
    data = encode("ber", DEVICE, STATE)
    result = subprocess.run(
        [OPENSSL or "openssl", "asn1parse", "-inform", "DER"], input=data, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    text = result.stdout.decode(errors="replace")
    for pattern in [
        r"d=0 .* cons: SEQUENCE",
        rf"prim: UTF8STRING\s+:{re.escape(SIGNATURE)}$",
        r"prim: INTEGER\s+:-05$",
        r"prim: INTEGER\s+:DEADBEEF$",
        r"prim: INTEGER\s+:FFFFFFFFFFFFFFFF$",
        r"prim: OCTET STRING\s+:xyz$",
        r"prim: BOOLEAN\s+:255$",
        r"prim: UTF8STRING\s+:u8$",
        r"prim: INTEGER\s+:C8$",
        rf"prim: UTF8STRING\s+:{re.escape(SUBSECTION_ENTRY_SIGNATURE)}$",
        r"prim: UTF8STRING\s+:dev/x$",
    ]:
        assert re.search(pattern, text, re.MULTILINE), f"{pattern!r} not in\n{text}"
    # dev, flags, queues, queues[0], subsections, its entry, dev/x, dev/x's subsections
    assert text.count("cons: SEQUENCE") == 8


# -- we read what pyasn1's CER encoder writes ------------------------------


def test_we_load_pyasn1s_cer_encoding() -> None:
    data = cer_encoder.encode(device_tree())
    assert data[:2] == b"\x30\x80" and data.endswith(b"\0\0"), "CER uses indefinite lengths"
    assert decode("ber", DEVICE, data) == STATE


def test_we_load_cer_segmented_long_strings_and_buffers() -> None:
    long_text = "0123456789" * 150  # ASCII: pyasn1 recurses forever splitting multi-byte text
    long_bytes = bytes(range(256)) * 10
    description = Description(
        "dev",
        1,
        1,
        tuple(Field(f.name, Buffer(len(long_bytes)) if f.name == "b" else f.type) for f in DEVICE.fields),
        DEVICE.subsections,
    )
    data = cer_encoder.encode(device_tree(s=long_text, b=long_bytes))
    assert b"\x2c\x80\x04\x82\x03\xe8" in data, "the UTF8String is split into 1000-byte segments"
    assert b"\x24\x80\x04\x82\x03\xe8" in data, "the OCTET STRING is split into 1000-byte segments"
    assert decode("ber", description, data) == {**STATE, "s": long_text, "b": long_bytes}


def test_cer_and_our_encoding_decode_to_the_same_state() -> None:
    ours = decode("ber", DEVICE, encode("ber", DEVICE, STATE))
    theirs = decode("ber", DEVICE, cer_encoder.encode(device_tree()))
    assert ours == theirs == STATE
