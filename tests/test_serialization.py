"""Every named value through every visitor pairing (QEMU's test-visitor-serialization shape).

One table of values, one table of pairings with capability flags; the tests are
their product, with ids like ``ber/uint16_max``. A new pairing in
``migcompat.wire.PAIRINGS`` gets every case for free (and must declare its
capabilities below, or ``test_every_pairing_declares_its_capabilities`` fails).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from _support import PAIRING_NAMES, decode, encode, one_field, roundtrip

from migcompat.errors import EncodeError
from migcompat.model.vmstate import Buffer, Scalar
from migcompat.wire import PAIRINGS

#: What each pairing can carry beyond the common ground.
LONG_STR = "str longer than 255 bytes"
CAPABILITIES: dict[str, frozenset[str]] = {
    "dict": frozenset({LONG_STR}),
    # QEMU's idstr form: one length byte, so at most 255 bytes.
    "qemufile": frozenset(),
    "ber": frozenset({LONG_STR}),
}


@dataclass(frozen=True)
class Case:
    name: str
    type: Any
    value: Any
    requires: frozenset[str] = frozenset()


def _integers(kind: str, **values: int) -> list[Case]:
    return [Case(f"{kind}_{label}", Scalar(kind), value) for label, value in values.items()]


BUFFER_64K = bytes(range(256)) * 256
NON_ASCII = "grüße ✓ 日本語 🚀"

CASES: list[Case] = [
    *_integers("int8", min=-128, max=127, zero=0, minus_one=-1, sanity=42),
    *_integers("int16", min=-32768, max=32767, zero=0, minus_one=-1, sanity=0x1234),
    *_integers("int32", min=-(2**31), max=2**31 - 1, zero=0, minus_one=-1, sanity=-123456789),
    *_integers("int64", min=-(2**63), max=2**63 - 1, zero=0, minus_one=-1, sanity=0x0123456789ABCDEF),
    *_integers("uint8", min=0, max=255, high_bit=0x80, sanity=42),
    *_integers("uint16", min=0, max=65535, high_bit=0x8000, sanity=0x1234),
    *_integers("uint32", min=0, max=2**32 - 1, high_bit=2**31, sanity=0xDEADBEEF),
    *_integers("uint64", min=0, max=2**64 - 1, high_bit=2**63, sanity=0x0123456789ABCDEF),
    Case("bool_true", Scalar("bool"), True),
    Case("bool_false", Scalar("bool"), False),
    Case("str_empty", Scalar("str"), ""),
    Case("str_ascii", Scalar("str"), "virtio-net"),
    Case("str_nul", Scalar("str"), "a\x00b"),
    Case("str_non_ascii", Scalar("str"), NON_ASCII),
    Case("str_255_bytes", Scalar("str"), "x" * 255),
    Case("str_255_bytes_non_ascii", Scalar("str"), "é" * 127 + "a"),
    Case("str_256_bytes", Scalar("str"), "y" * 256, requires=frozenset({LONG_STR})),
    Case("str_70000_bytes", Scalar("str"), "z" * 70000, requires=frozenset({LONG_STR})),
    Case("buffer_empty", Buffer(0), b""),
    Case("buffer_edges", Buffer(4), b"\x00\xff\x7f\x80"),
    Case("buffer_64KiB", Buffer(len(BUFFER_64K)), BUFFER_64K),
]


def _product(*, supported: bool) -> list[Any]:
    return [
        pytest.param(PAIRINGS[pairing], case, id=f"{pairing}/{case.name}")
        for pairing in PAIRING_NAMES
        for case in CASES
        if (case.requires <= CAPABILITIES[pairing]) == supported
    ]


def test_every_pairing_declares_its_capabilities() -> None:
    assert set(CAPABILITIES) == set(PAIRINGS)


def test_case_names_are_unique_and_values_fit_their_description() -> None:
    assert len({case.name for case in CASES}) == len(CASES)
    assert len(CASES[-1].value) == 64 * 1024
    assert len("é" * 127 + "a") == 128 and len(("é" * 127 + "a").encode()) == 255


@pytest.mark.parametrize(("pairing", "case"), _product(supported=True))
def test_value_round_trips_with_its_type(pairing: Any, case: Case) -> None:
    description = one_field(case.type)
    loaded = roundtrip(pairing, description, {"value": case.value})
    assert list(loaded) == ["value"]
    got = loaded["value"]
    assert type(got) is type(case.value)
    assert got == case.value


@pytest.mark.parametrize(("pairing", "case"), _product(supported=False))
def test_unsupported_value_is_refused_when_saving(pairing: Any, case: Case) -> None:
    with pytest.raises(EncodeError, match=r"case/value: string of \d+ bytes does not fit a length byte"):
        encode(pairing, one_field(case.type), {"value": case.value})


def test_every_case_runs_on_some_pairing_and_qemufile_misses_only_long_strings() -> None:
    supported = {case.name for pairing, case in (param.values for param in _product(supported=True))}
    assert supported == {case.name for case in CASES}
    refused = [param.id for param in _product(supported=False)]
    assert refused == ["qemufile/str_256_bytes", "qemufile/str_70000_bytes"]


@pytest.mark.parametrize(("value", "other"), [(True, False), (False, True)], ids=["true", "false"])
@pytest.mark.parametrize("pairing", PAIRING_NAMES)
def test_bool_loads_as_what_was_saved_not_its_opposite(pairing: str, value: bool, other: bool) -> None:
    description = one_field(Scalar("bool"))
    loaded = decode(pairing, description, encode(pairing, description, {"value": value}))["value"]
    assert loaded is value
    assert loaded is not other


QEMUFILE_CASES = [case for case in CASES if case.requires <= CAPABILITIES["qemufile"]]


@pytest.mark.parametrize("case", QEMUFILE_CASES, ids=[case.name for case in QEMUFILE_CASES])
def test_qemufile_to_ber_to_qemufile_reproduces_the_bytes(case: Case) -> None:
    description = one_field(case.type)
    original = encode("qemufile", description, {"value": case.value})
    state = decode("qemufile", description, original)
    through_ber = decode("ber", description, encode("ber", description, state))
    through_dict = decode("dict", description, encode("dict", description, through_ber))
    assert encode("qemufile", description, through_dict) == original
