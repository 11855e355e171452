"""Descriptions: broken ones fail when defined; states that do not fit fail cleanly.

Why: a description is code reviewed once and used on every migration; an error
in it must surface when it is declared (``DescriptionError``), not on the first
stream that exercises the broken field. Values that do not fit are programmer
errors (``EncodeError``); input that does not fit is a ``DecodeError`` with a
path; impossible loaded states are ``InvalidState``; and a self-describing format
lets an opted-in destination skip what a newer source added.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytest
from _support import BYTE_PAIRING_NAMES, PAIRING_NAMES, decode, encode, one_field, roundtrip

from migcompat.errors import DescriptionError, EncodeError, InvalidState, LoadRefused, MalformedInput, MismatchDetected
from migcompat.model.vmstate import Array, Buffer, Description, Field, FieldRef, Scalar, Struct, Subsection
from migcompat.wire import PAIRINGS
from migcompat.wire.visitor import Framing, ListFraming

U8 = Scalar("uint8")
U16 = Scalar("uint16")
#: Pairings by capability: a self-describing format can skip what it does not know.
SELF_DESCRIBING = [name for name in PAIRING_NAMES if PAIRINGS[name].self_describing]
LEGACY = [name for name in PAIRING_NAMES if not PAIRINGS[name].self_describing]


def _sub(name: str, **options: Any) -> Subsection:
    return Subsection(Description(name, 1, 1, (Field("z", U8),)), **options)


BROKEN: list[tuple[str, Callable[[], object], str]] = [
    (
        "length-field-missing",
        lambda: Description("d", 1, 1, (Field("a", Array(U8, length=FieldRef("nope"))),)),
        r"d\.a: length field 'nope' is not an earlier field",
    ),
    (
        "length-field-later",
        lambda: Description("d", 1, 1, (Field("a", Array(U8, length=FieldRef("n"))), Field("n", U8))),
        r"d\.a: length field 'n' is not an earlier field",
    ),
    (
        "length-field-str",
        lambda: Description("d", 1, 1, (Field("n", Scalar("str")), Field("a", Buffer(FieldRef("n"))))),
        r"d\.a: length field 'n' is not an integer",
    ),
    (
        "length-field-bool",
        lambda: Description("d", 1, 1, (Field("n", Scalar("bool")), Field("a", Array(U8, length=FieldRef("n"))))),
        r"d\.a: length field 'n' is not an integer",
    ),
    (
        "length-field-buffer",
        lambda: Description("d", 1, 1, (Field("n", Buffer(1)), Field("a", Buffer(FieldRef("n"))))),
        r"d\.a: length field 'n' is not an integer",
    ),
    (
        "length-field-newer",
        lambda: Description("d", 2, 1, (Field("n", U8, since=2), Field("a", Buffer(FieldRef("n")), since=1))),
        r"d\.a: length field 'n' is newer than the field",
    ),
    (
        "length-scale-zero",
        lambda: Description("d", 1, 1, (Field("n", U8), Field("a", Buffer(FieldRef("n", scale=0))))),
        r"d\.a: length scale must be positive",
    ),
    (
        "element-length-missing",
        lambda: Description("d", 1, 1, (Field("a", Array(Buffer(FieldRef("nope")), length=2)),)),
        r"d\.a: length field 'nope' is not an earlier field",
    ),
    (
        "struct-length-missing",
        lambda: Struct("s", (Field("a", Buffer(FieldRef("nope"))),)),
        r"s\.a: length field 'nope' is not an earlier field",
    ),
    (
        "subsection-twice",
        lambda: Description("d", 1, 1, (Field("a", U8),), (_sub("d/s"), _sub("d/s"))),
        r"d: subsection 'd/s' is declared twice",
    ),
    (
        "subsection-clashes-with-field",
        lambda: Description("d", 1, 1, (Field("ds", U8),), (_sub("ds"),)),
        r"d: subsection 'ds' clashes with a field name",
    ),
    (
        "subsection-without-prefix",
        lambda: Description("dev", 1, 1, (Field("a", U8),), (_sub("other/s"),)),
        r"dev: subsection 'other/s' does not start with 'dev'",
    ),
    (
        "subsection-named-like-parent",
        lambda: Description("dev", 1, 1, (Field("a", U8),), (_sub("dev"),)),
        r"dev: subsection 'dev' does not start with 'dev'",
    ),
    (
        "field-twice",
        lambda: Description("d", 1, 1, (Field("a", U8), Field("a", U16))),
        r"d: field 'a' is declared twice",
    ),
    (
        "struct-field-twice",
        lambda: Struct("s", (Field("a", U8), Field("a", U8))),
        r"s: field 'a' is declared twice",
    ),
    (
        "field-named-subsections",
        lambda: Description("d", 1, 1, (Field("subsections", U8),)),
        r"d: field name 'subsections' is reserved",
    ),
    (
        "since-above-version",
        lambda: Description("d", 2, 1, (Field("a", U8, since=3),)),
        r"d\.a: since=3 is outside \[0, 2\]",
    ),
    (
        "since-negative",
        lambda: Description("d", 2, 1, (Field("a", U8, since=-1),)),
        r"d\.a: since=-1 is outside \[0, 2\]",
    ),
    (
        "minimum-above-version",
        lambda: Description("d", 2, 3, (Field("a", U8),)),
        r"d: minimum_version_id 3 not in \[0, 2\]",
    ),
    (
        "minimum-negative",
        lambda: Description("d", 2, -1, (Field("a", U8),)),
        r"d: minimum_version_id -1 not in \[0, 2\]",
    ),
    ("name-space-first", lambda: Description("d", 1, 1, (Field(" a", U8),)), r"field name ' a' is not a valid name"),
    ("name-with-tab", lambda: Description("d", 1, 1, (Field("a\tb", U8),)), r"field name 'a\\tb' is not a valid"),
    ("name-with-slash", lambda: Description("d", 1, 1, (Field("a/b", U8),)), r"field name 'a/b' is not a valid name"),
    ("name-not-ascii", lambda: Description("d", 1, 1, (Field("é", U8),)), r"field name 'é' is not a valid name"),
    ("name-empty", lambda: Description("d", 1, 1, (Field("", U8),)), r"field name '' is not a valid name"),
    ("description-space-first", lambda: Description(" dev", 1, 1, ()), r"description name ' dev' is not a valid"),
    ("description-name-empty", lambda: Description("", 1, 1, ()), r"description name '' is not a valid name"),
    ("scalar-kind-unknown", lambda: Scalar("uint128"), r"unknown scalar kind 'uint128'"),
    ("array-known-without-length", lambda: Array(U8), r"known length exactly when its framing is KNOWN"),
    (
        "array-count-with-length",
        lambda: Array(U8, length=2, framing=Framing(ListFraming.COUNT)),
        r"known length exactly when its framing is KNOWN",
    ),
    (
        "array-count-width",
        lambda: Array(U8, framing=Framing(ListFraming.COUNT, count_bits=12)),
        r"count width 12 is not 8, 16 or 32",
    ),
    (
        "array-sentinel-ambiguous",
        lambda: Array(U8, framing=Framing(ListFraming.SENTINEL, marker=7, terminator=7)),
        r"sentinel marker and terminator must differ",
    ),
    ("buffer-negative", lambda: Description("d", 1, 1, (Field("a", Buffer(-1)),)), r"d\.a: negative buffer size"),
]


@pytest.mark.parametrize(("make", "message"), [pytest.param(*case[1:], id=case[0]) for case in BROKEN])
def test_a_broken_description_fails_when_defined(make: Callable[[], object], message: str) -> None:
    with pytest.raises(DescriptionError, match=message):
        make()


def test_the_nearest_valid_descriptions_are_accepted() -> None:
    # Each line is one step away from a BROKEN case; all must be accepted.
    Description("d", 1, 1, (Field("n", Scalar("int64")), Field("a", Array(U8, length=FieldRef("n")))))
    Description("d", 1, 1, (Field("n", U8), Field("a", Array(Buffer(FieldRef("n", scale=4)), length=2))))
    Description("d", 2, 2, (Field("n", U8, since=1), Field("a", Buffer(FieldRef("n")), since=2)))
    Description("d", 1, 0, (Field("a.b-c_9", U8),), (_sub("d/s"), _sub("d/t"), _sub("d.x")))
    Struct("s", (Field("subsections", U8),))
    Array(U8, framing=Framing(ListFraming.SENTINEL, marker=0, terminator=None))


# -- output visitors refuse values that do not fit --------------------------

UNFIT: list[tuple[str, Any, Any, str]] = [
    ("uint8-256", U8, 256, r"256 does not fit uint8 \[0, 255\]"),
    ("uint8-minus-1", U8, -1, r"-1 does not fit uint8 \[0, 255\]"),
    ("int8-minus-129", Scalar("int8"), -129, r"-129 does not fit int8 \[-128, 127\]"),
    ("int8-128", Scalar("int8"), 128, r"128 does not fit int8 \[-128, 127\]"),
    ("uint64-2^64", Scalar("uint64"), 2**64, r"does not fit uint64"),
    ("int64-below-min", Scalar("int64"), -(2**63) - 1, r"does not fit int64"),
    ("uint16-bool", U16, True, r"True does not fit uint16"),
    ("uint16-float", U16, 1.0, r"1\.0 does not fit uint16"),
    ("uint32-str", Scalar("uint32"), "1", r"'1' does not fit uint32"),
    ("bool-int", Scalar("bool"), 1, r"1 is not a bool"),
    ("str-bytes", Scalar("str"), b"x", r"b'x' is not a str"),
    ("buffer-short", Buffer(4), b"abc", r"buffer must be 4 bytes, got b'abc'"),
    ("buffer-long", Buffer(2), b"abc", r"buffer must be 2 bytes, got b'abc'"),
    ("buffer-str", Buffer(3), "abc", r"buffer must be 3 bytes, got 'abc'"),
]


@pytest.mark.parametrize("pairing", PAIRING_NAMES)
@pytest.mark.parametrize(("field_type", "value", "message"), [pytest.param(*case[1:], id=case[0]) for case in UNFIT])
def test_an_output_visitor_refuses_a_value_that_does_not_fit(
    pairing: str, field_type: Any, value: Any, message: str
) -> None:
    with pytest.raises(EncodeError, match=message) as caught:
        encode(pairing, one_field(field_type), {"value": value})
    assert caught.value.path == "case/value"


@pytest.mark.parametrize("pairing", BYTE_PAIRING_NAMES)
def test_a_byte_format_refuses_text_that_is_not_utf8_encodable(pairing: str) -> None:
    with pytest.raises(EncodeError, match=r"not encodable as UTF-8") as caught:
        encode(pairing, one_field(Scalar("str")), {"value": "lone \ud800 surrogate"})
    assert caught.value.path == "case/value"


STRUCTURE_UNFIT: list[tuple[str, Description, dict[str, Any], str, str]] = [
    (
        "array-too-long",
        one_field(Array(U8, length=2)),
        {"value": [1, 2, 3]},
        r"array has 3 elements, its length says 2",
        "case/value",
    ),
    (
        "array-shorter-than-its-length-field",
        Description("case", 1, 1, (Field("n", U8), Field("items", Array(U8, length=FieldRef("n"))))),
        {"n": 3, "items": [1]},
        r"array has 1 elements, its length says 3",
        "case/items",
    ),
    (
        "buffer-longer-than-its-length-field",
        Description("case", 1, 1, (Field("n", U8), Field("data", Buffer(FieldRef("n", scale=2))))),
        {"n": 1, "data": b"abc"},
        r"buffer must be 2 bytes",
        "case/data",
    ),
    (
        "negative-length-field",
        Description("case", 1, 1, (Field("n", Scalar("int8")), Field("data", Buffer(FieldRef("n"))))),
        {"n": -2, "data": b""},
        r"length field 'n' holds -2",
        "case/data",
    ),
    ("field-missing", one_field(U8), {}, r"state has no field 'value'", "case"),
    (
        "element-out-of-range",
        one_field(Array(Struct("q", (Field("x", U8),)), length=2)),
        {"value": [{"x": 1}, {"x": 300}]},
        r"300 does not fit uint8",
        "case/value[1]/x",
    ),
]


@pytest.mark.parametrize("pairing", PAIRING_NAMES)
@pytest.mark.parametrize(
    ("description", "state", "message", "path"), [pytest.param(*case[1:], id=case[0]) for case in STRUCTURE_UNFIT]
)
def test_a_state_that_does_not_fit_its_description_is_refused(
    pairing: str, description: Description, state: dict[str, Any], message: str, path: str
) -> None:
    with pytest.raises(EncodeError, match=message) as caught:
        encode(pairing, description, state)
    assert caught.value.path == path


COUNT8 = one_field(Array(U8, framing=Framing(ListFraming.COUNT, count_bits=8)))


def test_a_count_that_does_not_fit_its_width_is_refused_by_qemufile() -> None:
    with pytest.raises(EncodeError, match=r"256 does not fit uint8") as caught:
        encode("qemufile", COUNT8, {"value": [0] * 256})
    assert caught.value.path == "case/value"
    assert len(encode("qemufile", COUNT8, {"value": [0] * 255})) == 1 + 255


@pytest.mark.parametrize("pairing", SELF_DESCRIBING)
def test_self_describing_formats_do_not_carry_the_legacy_count_width(pairing: str) -> None:
    assert roundtrip(pairing, COUNT8, {"value": [0] * 256}) == {"value": [0] * 256}


# -- the dict input visitor checks types like any decoder -------------------

NESTED = Description(
    "dev",
    1,
    1,
    (
        Field("n", U16),
        Field("flag", Scalar("bool")),
        Field("tag", Scalar("str")),
        Field("data", Buffer(2)),
        Field("q", Array(Struct("q", (Field("x", U8),)), length=2)),
    ),
)
GOOD_DICT: dict[str, Any] = {
    "n": 1,
    "flag": True,
    "tag": "t",
    "data": b"ab",
    "q": [{"x": 1}, {"x": 2}],
    "subsections": [],
}


def _changed(**changes: Any) -> dict[str, Any]:
    return {**GOOD_DICT, **changes}


DICT_INPUTS: list[tuple[str, Any, type[Exception], str, str]] = [
    ("str-for-uint16", _changed(n="1"), MismatchDetected, r"str where uint16 expected", "dev/n"),
    ("bool-for-uint16", _changed(n=True), MismatchDetected, r"bool where uint16 expected", "dev/n"),
    ("float-for-uint16", _changed(n=1.0), MismatchDetected, r"float where uint16 expected", "dev/n"),
    ("int-for-bool", _changed(flag=1), MismatchDetected, r"int where bool expected", "dev/flag"),
    ("bytes-for-str", _changed(tag=b"t"), MismatchDetected, r"bytes where str expected", "dev/tag"),
    ("str-for-buffer", _changed(data="ab"), MismatchDetected, r"str where buffer expected", "dev/data"),
    ("buffer-size", _changed(data=b"abc"), MismatchDetected, r"buffer has 3 bytes, expected 2", "dev/data"),
    ("dict-for-list", _changed(q={"x": 1}), MismatchDetected, r"dict where a list expected", "dev/q"),
    ("list-too-short", _changed(q=[{"x": 1}]), MismatchDetected, r"list has 1 elements, expected 2", "dev/q"),
    ("list-for-struct", _changed(q=[[1], [2]]), MismatchDetected, r"list where a struct expected", "dev/q[0]"),
    ("nested-wrong-type", _changed(q=[{"x": 1}, {"x": None}]), MismatchDetected, r"NoneType where uint8", "dev/q[1]/x"),
    (
        "member-missing",
        {k: v for k, v in GOOD_DICT.items() if k != "tag"},
        MismatchDetected,
        r"member 'tag' is missing",
        "dev/tag",
    ),
    ("member-unknown", _changed(extra=1), MismatchDetected, r"1 unknown member\(s\) left unread", "dev"),
    ("out-of-range", _changed(n=70000), MalformedInput, r"70000 out of range for uint16", "dev/n"),
    ("not-a-dict", [1, 2], MismatchDetected, r"list where a struct expected", "dev"),
]


@pytest.mark.parametrize(
    ("value", "error", "message", "path"), [pytest.param(*case[1:], id=case[0]) for case in DICT_INPUTS]
)
def test_the_dict_input_visitor_rejects_wrong_types_with_a_path(
    value: Any, error: type[Exception], message: str, path: str
) -> None:
    assert decode("dict", NESTED, GOOD_DICT) == {k: v for k, v in GOOD_DICT.items() if k != "subsections"}
    with pytest.raises(error, match=message) as caught:
        decode("dict", NESTED, value)
    assert caught.value.path == path  # type: ignore[attr-defined]
    assert caught.value.offset is None  # type: ignore[attr-defined]


# -- post-load validation ------------------------------------------------------

CHECKED_SEEN: list[Mapping[str, Any]] = []


def _queue_sel_in_range(state: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    CHECKED_SEEN.append(dict(state))
    if state["queue_sel"] >= len(state["queues"]):
        yield "queue_sel", f"queue_sel {state['queue_sel']} is not below the queue count {len(state['queues'])}"


VALIDATED = Description(
    "dev",
    1,
    1,
    (
        Field("queue_sel", U16),
        Field("queues", Array(Struct("q", (Field("num", U16),)), framing=Framing(ListFraming.COUNT, count_bits=8))),
    ),
    validate=_queue_sel_in_range,
)


@pytest.mark.parametrize("pairing", PAIRING_NAMES)
def test_post_load_validation_refuses_an_impossible_state(pairing: str) -> None:
    bad = {"queue_sel": 2, "queues": [{"num": 1}, {"num": 2}]}
    encoded = encode(pairing, VALIDATED, bad)  # saving does not validate: the source is trusted
    CHECKED_SEEN.clear()
    with pytest.raises(InvalidState, match=r"^queue_sel 2 is not below the queue count 2") as caught:
        decode(pairing, VALIDATED, encoded)
    assert caught.value.path == "dev/queue_sel"
    assert [bad] == CHECKED_SEEN, "the validator sees the whole loaded state, once"


@pytest.mark.parametrize("pairing", PAIRING_NAMES)
def test_post_load_validation_passes_a_possible_state(pairing: str) -> None:
    good = {"queue_sel": 1, "queues": [{"num": 1}, {"num": 2}]}
    assert roundtrip(pairing, VALIDATED, good) == good


def test_validation_of_a_subsection_names_the_subsection() -> None:
    inner = Description(
        "dev/sub", 1, 1, (Field("level", U8),), validate=lambda s: [("level", "too high")] * (s["level"] > 3)
    )
    outer = Description("dev", 1, 1, (Field("a", U8),), (Subsection(inner),))
    for pairing in PAIRING_NAMES:
        with pytest.raises(InvalidState, match="too high") as caught:
            decode(pairing, outer, encode(pairing, outer, {"a": 0, "dev/sub": {"level": 4}}))
        assert caught.value.path.endswith("dev/sub/level"), (pairing, caught.value.path)


# -- forward compatibility: only a self-describing format can skip -----------

OLD_FIELDS = (Field("a", U8),)
NEWER_SOURCE = Description(
    "dev",
    2,
    1,
    (*OLD_FIELDS, Field("added", U16, since=2)),
    (Subsection(Description("dev/new", 1, 1, (Field("z", U8),)), critical=False),),
)
NEWER_STATE = {"a": 7, "added": 0x1234, "dev/new": {"z": 9}}
LENIENT_DESTINATION = Description("dev", 1, 1, OLD_FIELDS, accept_unknown=True)
STRICT_DESTINATION = Description("dev", 1, 1, OLD_FIELDS)


def test_the_forward_compatibility_tables_cover_ber_and_qemufile() -> None:
    assert "ber" in SELF_DESCRIBING and LEGACY == ["qemufile"]


@pytest.mark.parametrize("pairing", SELF_DESCRIBING)
def test_an_opted_in_destination_skips_a_newer_fields_and_subsection(pairing: str) -> None:
    encoded = encode(pairing, NEWER_SOURCE, NEWER_STATE)
    assert decode(pairing, LENIENT_DESTINATION, encoded, version=2) == {"a": 7}


@pytest.mark.parametrize("pairing", LEGACY)
def test_the_legacy_format_refuses_a_newer_stream_even_when_opted_in(pairing: str) -> None:
    encoded = encode(pairing, NEWER_SOURCE, NEWER_STATE)
    with pytest.raises(LoadRefused, match=r"unsupported version 2 for 'dev' v1"):
        decode(pairing, LENIENT_DESTINATION, encoded, version=2)


@pytest.mark.parametrize("pairing", PAIRING_NAMES)
def test_a_destination_that_did_not_opt_in_refuses_a_newer_stream(pairing: str) -> None:
    encoded = encode(pairing, NEWER_SOURCE, NEWER_STATE)
    with pytest.raises(LoadRefused, match=r"unsupported version 2 for 'dev' v1"):
        decode(pairing, STRICT_DESTINATION, encoded, version=2)


SAME_VERSION_SOURCE = Description("dev", 1, 1, OLD_FIELDS, NEWER_SOURCE.subsections)


@pytest.mark.parametrize("pairing", SELF_DESCRIBING)
def test_an_opted_in_destination_skips_an_unknown_non_critical_subsection(pairing: str) -> None:
    encoded = encode(pairing, SAME_VERSION_SOURCE, {"a": 7, "dev/new": {"z": 9}})
    assert decode(pairing, LENIENT_DESTINATION, encoded) == {"a": 7}
    with pytest.raises(LoadRefused, match=r"unknown subsection 'dev/new'"):
        decode(pairing, STRICT_DESTINATION, encoded)


@pytest.mark.parametrize("destination", [LENIENT_DESTINATION, STRICT_DESTINATION], ids=["lenient", "strict"])
@pytest.mark.parametrize("pairing", LEGACY)
def test_the_legacy_format_refuses_an_unknown_subsection(pairing: str, destination: Description) -> None:
    encoded = encode(pairing, SAME_VERSION_SOURCE, {"a": 7, "dev/new": {"z": 9}})
    with pytest.raises(LoadRefused, match=r"unknown subsection 'dev/new'"):
        decode(pairing, destination, encoded)


@pytest.mark.parametrize("pairing", PAIRING_NAMES)
def test_an_unknown_critical_subsection_is_refused_even_when_opted_in(pairing: str) -> None:
    source = Description("dev", 1, 1, OLD_FIELDS, (_sub("dev/vital"),))
    with pytest.raises(LoadRefused, match=r"unknown subsection 'dev/vital'"):
        decode(pairing, LENIENT_DESTINATION, encode(pairing, source, {"a": 7, "dev/vital": {"z": 1}}))


def test_an_opted_in_destination_still_detects_a_changed_known_field() -> None:
    source = Description("dev", 2, 1, (Field("a", U16), Field("added", U16, since=2)))
    with pytest.raises(MismatchDetected, match=r"'a' is uint16 in the stream, read as uint8"):
        decode("ber", LENIENT_DESTINATION, encode("ber", source, {"a": 7, "added": 1}), version=2)


def test_a_dropped_member_is_still_detected_without_opting_in() -> None:
    source = Description("dev", 1, 1, (*OLD_FIELDS, Field("extra", U8)))
    with pytest.raises(MismatchDetected, match=r"the stream has member\(s\) the destination does not read: extra"):
        decode("ber", STRICT_DESTINATION, encode("ber", source, {"a": 7, "extra": 1}))


@pytest.mark.parametrize("size", [0, 1, 64, 65, 256, 4096])
def test_generated_buffers_have_their_size_and_large_ones_vary(size: int) -> None:
    from hypothesis import HealthCheck, given, settings

    from migcompat.model.strategies import DRAWN_BYTES, buffers

    seen: set[bytes] = set()

    @settings(max_examples=40, database=None, suppress_health_check=list(HealthCheck))
    @given(buffers(size))
    def collect(value: bytes) -> None:
        assert len(value) == size
        seen.add(value)

    collect()
    if size > DRAWN_BYTES:
        # zeros, a drawn head over zeros, and seeded pseudo-random bytes all occur
        assert bytes(size) in seen
        assert any(value[DRAWN_BYTES:] == bytes(size - DRAWN_BYTES) and any(value) for value in seen)
        assert any(any(value[DRAWN_BYTES:]) for value in seen)
    elif size:
        assert len(seen) > 1
