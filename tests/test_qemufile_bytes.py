"""The legacy wire, byte for byte: expected streams written out by hand.

Why literal hex: the qemufile visitor must produce what ``qemu_put_*`` writes. The
expected bytes below come from QEMU's layout (big-endian integers, one-byte bools,
a length byte before a string, 0x05 + idstr + be32 version before a subsection),
not from running the code under test.
"""

from __future__ import annotations

from typing import Any

import pytest
from _support import PAIRING_NAMES, decode, encode

from migcompat.errors import DecodeError, LoadRefused, MalformedInput, TrailingData, TruncatedInput
from migcompat.model.vmstate import Array, Buffer, Description, Field, FieldRef, Scalar, Struct, Subsection
from migcompat.wire.visitor import Framing, ListFraming

QUEUE = Struct("queue", (Field("num", Scalar("uint16")), Field("addr", Scalar("uint64"))))
SOCKET = Struct("socket", (Field("fd", Scalar("int32")),))
COUNT32 = Framing(ListFraming.COUNT, count_bits=32)
SLIRP_STYLE = Framing(ListFraming.SENTINEL, marker=42, terminator=0)
EXTRA = Description("dev/extra", 1, 1, (Field("extra", Scalar("uint32")),))

#: Fields of the device at release 1; release 2 adds ``flags`` after ``mode``.
FIELDS_V1 = (
    Field("mode", Scalar("uint8")),
    Field("queues", Array(QUEUE, framing=COUNT32)),
    Field("sockets", Array(SOCKET, framing=SLIRP_STYLE)),
    Field("enabled", Scalar("bool")),
    Field("tag", Scalar("str")),
)
FLAGS_DEFAULT = 0xFFFF
SUBSECTIONS = (Subsection(EXTRA, needed=lambda state: bool(state["enabled"])),)
DEVICE_V1 = Description("dev", 1, 1, FIELDS_V1, SUBSECTIONS)
DEVICE_V2 = Description(
    "dev",
    2,
    1,
    (FIELDS_V1[0], Field("flags", Scalar("uint16"), since=2, default=FLAGS_DEFAULT), *FIELDS_V1[1:]),
    SUBSECTIONS,
)

STATE_V2 = {
    "mode": 3,
    "flags": 0xBEEF,
    "queues": [{"num": 256, "addr": 0x1122334455667788}, {"num": 1, "addr": 0}],
    "sockets": [{"fd": -1}, {"fd": 5}],
    "enabled": True,
    "tag": "net0",
    "dev/extra": {"extra": 0xCAFEF00D},
}


def _hex(text: str) -> bytes:
    """Hex with comments: everything after '#' on a line is ignored."""
    return bytes.fromhex("".join(line.split("#")[0] for line in text.splitlines()))


V2_WITH_SUBSECTION = _hex("""
    03                                  # mode (uint8)
    be ef                               # flags (be16, since v2)
    00 00 00 02                         # queues: be32 count
    01 00  11 22 33 44 55 66 77 88      # queues[0]: num, addr
    00 01  00 00 00 00 00 00 00 00      # queues[1]: num, addr
    2a  ff ff ff ff                     # sockets: marker 42, fd -1
    2a  00 00 00 05                     # sockets: marker 42, fd 5
    00                                  # sockets: terminator
    01                                  # enabled
    04 6e 65 74 30                      # tag: length byte, "net0"
    05                                  # QEMU_VM_SUBSECTION
    09 64 65 76 2f 65 78 74 72 61       # idstr "dev/extra"
    00 00 00 01                         # subsection version_id
    ca fe f0 0d                         # extra (be32)
""")

V2_WITHOUT_SUBSECTION = _hex("""
    03  be ef  00 00 00 02
    01 00  11 22 33 44 55 66 77 88
    00 01  00 00 00 00 00 00 00 00
    2a ff ff ff ff  2a 00 00 00 05  00
    00                                  # enabled = false, so dev/extra is not needed
    04 6e 65 74 30
""")

V1_WITH_SUBSECTION = _hex("""
    03                                  # mode; no flags before v2
    00 00 00 02
    01 00  11 22 33 44 55 66 77 88
    00 01  00 00 00 00 00 00 00 00
    2a ff ff ff ff  2a 00 00 00 05  00
    01
    04 6e 65 74 30
    05  09 64 65 76 2f 65 78 74 72 61  00 00 00 01  ca fe f0 0d
""")


def _without(state: dict[str, Any], *names: str) -> dict[str, Any]:
    return {key: value for key, value in state.items() if key not in names}


STATE_V2_DISABLED = {**_without(STATE_V2, "dev/extra"), "enabled": False}


@pytest.mark.parametrize(
    ("description", "state", "expected"),
    [
        pytest.param(DEVICE_V2, STATE_V2, V2_WITH_SUBSECTION, id="v2-subsection-present"),
        pytest.param(DEVICE_V2, STATE_V2_DISABLED, V2_WITHOUT_SUBSECTION, id="v2-subsection-absent"),
        pytest.param(DEVICE_V1, _without(STATE_V2, "flags"), V1_WITH_SUBSECTION, id="v1-subsection-present"),
    ],
)
def test_saved_bytes_are_exactly_qemus(description: Description, state: dict[str, Any], expected: bytes) -> None:
    assert encode("qemufile", description, state) == expected
    assert decode("qemufile", description, expected) == state


def test_a_v1_stream_loads_into_v2_with_the_new_fields_default() -> None:
    loaded = decode("qemufile", DEVICE_V2, V1_WITH_SUBSECTION, version=1)
    assert loaded["flags"] == FLAGS_DEFAULT
    assert loaded == {**STATE_V2, "flags": FLAGS_DEFAULT}


def test_v2_written_at_stream_version_1_is_the_v1_stream() -> None:
    from migcompat.model import vmstate
    from migcompat.wire import QemuFileOutputVisitor

    visitor = QemuFileOutputVisitor()
    vmstate.walk(visitor, DEVICE_V2, STATE_V2, 1)
    assert visitor.result() == V1_WITH_SUBSECTION


@pytest.mark.parametrize("pairing", PAIRING_NAMES)
@pytest.mark.parametrize("version", [0, 3, 2**32 - 1], ids=["below-minimum", "above-current", "uint32-max"])
def test_a_stream_version_outside_the_accepted_range_is_refused(pairing: str, version: int) -> None:
    encoded = encode(pairing, DEVICE_V2, STATE_V2)
    words = (
        "incoming version_id 0 is too old for local minimum version_id 1 of 'dev'"
        if version < 1
        else (f"unsupported version {version} for 'dev' v2")
    )
    with pytest.raises(LoadRefused, match=rf"{words} \(accepts 1\.\.2\)"):
        decode(pairing, DEVICE_V2, encoded, version=version)


def test_a_v1_only_destination_refuses_a_v2_stream() -> None:
    with pytest.raises(LoadRefused, match="unsupported version 2"):
        decode("qemufile", DEVICE_V1, V2_WITH_SUBSECTION, version=2)


def test_an_unknown_subsection_is_refused() -> None:
    destination = Description("dev", 2, 1, DEVICE_V2.fields)  # knows no subsection
    with pytest.raises(LoadRefused, match="unknown subsection 'dev/extra'") as caught:
        decode("qemufile", destination, V2_WITH_SUBSECTION)
    assert caught.value.offset == len(V2_WITHOUT_SUBSECTION) + len(b"\x05\x09dev/extra\x00\x00\x00\x01")


def test_an_unknown_subsection_with_a_foreign_prefix_is_left_unread() -> None:
    # QEMU's rule: a subsection whose idstr does not start with the description's
    # name belongs to an enclosing description, so the bytes stay unread.
    stream = V2_WITHOUT_SUBSECTION + b"\x05\x05other\x00\x00\x00\x01"
    with pytest.raises(TrailingData, match="11 unexpected trailing bytes"):
        decode("qemufile", DEVICE_V2, stream)


TWO_SUBSECTIONS = Description(
    "dev",
    1,
    1,
    (Field("a", Scalar("uint8")),),
    (
        Subsection(Description("dev/s1", 1, 1, (Field("z", Scalar("uint32")),))),
        Subsection(Description("dev/s2", 3, 1, (Field("y", Scalar("uint8")),))),
    ),
)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        pytest.param(
            {"a": 1, "dev/s1": {"z": 2}, "dev/s2": {"y": 3}},
            _hex("""
                01                                          # a
                05 06 64 65 76 2f 73 31 00 00 00 01         # subsection "dev/s1" v1
                00 00 00 02                                 # z
                05 06 64 65 76 2f 73 32 00 00 00 03         # subsection "dev/s2" v3
                03                                          # y
            """),
            id="both",
        ),
        pytest.param(
            {"a": 1, "dev/s2": {"y": 3}},
            _hex("01  05 06 64 65 76 2f 73 32 00 00 00 03  03"),
            id="second-only",
        ),
        pytest.param({"a": 1}, _hex("01"), id="none"),
    ],
)
def test_sibling_subsections_round_trip(state: dict[str, Any], expected: bytes) -> None:
    assert encode("qemufile", TWO_SUBSECTIONS, state) == expected
    assert decode("qemufile", TWO_SUBSECTIONS, expected) == state


def test_a_subsection_appearing_twice_is_malformed() -> None:
    once = _hex("05 06 64 65 76 2f 73 32 00 00 00 03  03")
    with pytest.raises(MalformedInput, match="subsection 'dev/s2' appears twice"):
        decode("qemufile", TWO_SUBSECTIONS, b"\x01" + once + once)


# -- scalar and list framings, each checked against hand-written bytes ------

WIRE_CASES = [
    ("int8", -2, "fe"),
    ("int16", -2, "ff fe"),
    ("int32", -(2**31), "80 00 00 00"),
    ("int64", 2**63 - 1, "7f ff ff ff ff ff ff ff"),
    ("uint8", 0xAB, "ab"),
    ("uint16", 0xABCD, "ab cd"),
    ("uint32", 0x01020304, "01 02 03 04"),
    ("uint64", 0x0102030405060708, "01 02 03 04 05 06 07 08"),
    ("bool", True, "01"),
    ("bool", False, "00"),
    ("str", "", "00"),
    ("str", "é", "02 c3 a9"),
]


@pytest.mark.parametrize(
    ("kind", "value", "wire"), WIRE_CASES, ids=[f"{kind}={value!r}" for kind, value, _ in WIRE_CASES]
)
def test_scalar_wire_bytes(kind: str, value: Any, wire: str) -> None:
    description = Description("s", 1, 1, (Field("v", Scalar(kind)),))
    assert encode("qemufile", description, {"v": value}) == bytes.fromhex(wire)
    loaded = decode("qemufile", description, bytes.fromhex(wire))["v"]
    assert loaded == value and type(loaded) is type(value)


LIST_CASES = [
    ("count8", Array(Scalar("uint8"), framing=Framing(ListFraming.COUNT, count_bits=8)), [7, 8], "02 07 08 ee"),
    ("count16", Array(Scalar("uint8"), framing=Framing(ListFraming.COUNT, count_bits=16)), [7], "00 01 07 ee"),
    ("count32-empty", Array(Scalar("uint8"), framing=COUNT32), [], "00 00 00 00 ee"),
    ("fixed", Array(Scalar("uint16"), length=2), [1, 2], "00 01 00 02 ee"),
    ("sentinel", Array(Scalar("uint8"), framing=SLIRP_STYLE), [0, 42], "2a 00 2a 2a 00 ee"),
    ("sentinel-empty", Array(Scalar("uint8"), framing=SLIRP_STYLE), [], "00 ee"),
    (
        "marker-only",
        Array(Scalar("uint8"), framing=Framing(ListFraming.SENTINEL, marker=1, terminator=None)),
        [9, 1],
        "01 09 01 01 ee",
    ),
]


@pytest.mark.parametrize(
    ("array", "values", "wire"), [case[1:] for case in LIST_CASES], ids=[case[0] for case in LIST_CASES]
)
def test_list_framing_wire_bytes(array: Array, values: list[int], wire: str) -> None:
    # A trailing uint8 0xee shows where the list ends.
    description = Description("l", 1, 1, (Field("items", array), Field("after", Scalar("uint8"))))
    state = {"items": values, "after": 0xEE}
    assert encode("qemufile", description, state) == bytes.fromhex(wire)
    assert decode("qemufile", description, bytes.fromhex(wire)) == state


def test_length_from_an_earlier_field_reads_that_many_bytes() -> None:
    description = Description(
        "l", 1, 1, (Field("size", Scalar("uint16")), Field("data", Buffer(FieldRef("size", scale=2))))
    )
    wire = bytes.fromhex("00 03 61 62 63 64 65 66")
    assert decode("qemufile", description, wire) == {"size": 3, "data": b"abcdef"}
    assert encode("qemufile", description, {"size": 3, "data": b"abcdef"}) == wire


SOCKETS = (Field("sockets", Array(SOCKET, framing=SLIRP_STYLE)),)
QUEUES = (Field("queues", Array(QUEUE, framing=Framing(ListFraming.COUNT, count_bits=16))),)
FLAG = (Field("flag", Scalar("bool")),)
NAME = (Field("name", Scalar("str")),)


@pytest.mark.parametrize(
    ("fields", "wire", "error", "message", "path"),
    [
        pytest.param(
            SOCKETS,
            "2a 00 00 00 05 07",
            MalformedInput,
            r"expected marker 0x2a or terminator 0x00, found 0x07",
            "m/sockets[0]",
            id="bad-marker",
        ),
        pytest.param(
            SOCKETS,
            "2a 00 00 00 05",
            TruncatedInput,
            r"input ends inside a marker-framed list",
            "m/sockets[0]",
            id="no-terminator",
        ),
        pytest.param(
            SOCKETS, "2a 00 00", TruncatedInput, r"input ends after 2 of 4 bytes", "m/sockets[0]/fd", id="short-element"
        ),
        pytest.param(QUEUES, "00", TruncatedInput, r"input ends after 1 of 2 bytes", "m/queues", id="short-count"),
        pytest.param(
            QUEUES,
            "00 02 00 01 00 00 00 00 00 00 00 00 00 02",
            TruncatedInput,
            r"input ends after 0 of 8 bytes",
            "m/queues[1]/addr",
            id="short-second-queue",
        ),
        pytest.param(FLAG, "02", MalformedInput, r"bool byte is 0x02, not 0 or 1", "m/flag", id="bool-2"),
        pytest.param(NAME, "02 c3", TruncatedInput, r"input ends after 1 of 2 bytes", "m/name", id="short-str"),
        pytest.param(NAME, "02 c3 28", MalformedInput, r"string is not UTF-8", "m/name", id="bad-utf8"),
    ],
)
def test_malformed_legacy_bytes_are_rejected(
    fields: tuple[Field, ...], wire: str, error: type[DecodeError], message: str, path: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        decode("qemufile", Description("m", 1, 1, fields), bytes.fromhex(wire))
    assert caught.value.path == path
    assert isinstance(caught.value.offset, int) and caught.value.offset <= len(bytes.fromhex(wire))
