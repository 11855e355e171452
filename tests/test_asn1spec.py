"""asn1tools and pyasn1, driven by types generated from our descriptions, write
and read exactly our BER wire.

Why: the benchmark times these libraries against our BER codecs on the same
states; the numbers compare like with like only if the libraries produce our
bytes and give our states back. Every test is differential against
``vmstate.encode(BerOutputVisitor(), ...)`` -- the definition of the wire -- or
feeds the libraries a stream that differs from what the description says and
expects a refusal. Inputs: the benchmark's virtio workload, the real slirp v4
description with IPv4 and IPv6 sockets (the conditional members), small
descriptions for each ASN.1 form (plain SEQUENCE, OPTIONAL members, a flattened
SEQUENCE OF CHOICE, a union of constructed types), and random descriptions with
every description feature (:func:`migcompat.model.strategies.descriptions`, less what
these codecs leave out) with states from :func:`migcompat.model.strategies.states`.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from typing import Any

import asn1tools  # type: ignore[import-untyped]
import pytest
from _support import typed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.codec.der import decoder as der_decoder  # type: ignore[import-untyped]
from pyasn1.error import PyAsn1Error  # type: ignore[import-untyped]

from migcompat.devices import slirp
from migcompat.model import vmstate
from migcompat.model.strategies import Layouts, descriptions, states
from migcompat.model.vmstate import (
    Array,
    Buffer,
    Description,
    Field,
    FieldRef,
    FieldType,
    Scalar,
    State,
    Struct,
    Subsection,
)
from migcompat.perf import asn1spec
from migcompat.perf.asn1spec import Asn1Codec, Asn1LibraryMissing, Asn1Mismatch, Asn1Unsupported
from migcompat.perf.bench import VIRTIO, make_state
from migcompat.wire.ber import BerOutputVisitor
from migcompat.wire.visitor import Framing, ListFraming

BUILDERS: dict[str, Callable[[Description], Asn1Codec]] = {
    "asn1tools": asn1spec.asn1tools_codec,
    "pyasn1": asn1spec.pyasn1_codec,
}
LIBRARIES = tuple(BUILDERS)
U8, U16, U32 = Scalar("uint8"), Scalar("uint16"), Scalar("uint32")
SLIRP = slirp.build_description(4)
IPV4, IPV6 = slirp.FAMILY_INET, 10


def ours(description: Description, state: State) -> bytes:
    """Our BER bytes: the wire the libraries must reproduce."""
    data: bytes = vmstate.encode(BerOutputVisitor(), description, state)
    return data


def assert_our_wire(codec: Asn1Codec, description: Description, state: State) -> None:
    data = codec.encode(state)
    assert data == ours(description, state)
    assert typed(codec.decode(data)) == typed(state)


def replace_once(data: bytes, old: bytes, new: bytes) -> bytes:
    assert len(old) == len(new) and data.count(old) == 1
    return data.replace(old, new)


_CODECS: dict[tuple[str, int], Asn1Codec] = {}


def _cached(build: Callable[[Description], Asn1Codec], description: Description) -> Asn1Codec:
    """One codec per library and module-level description (building compiles a module)."""
    key = (build.__name__, id(description))
    if key not in _CODECS:
        _CODECS[key] = build(description)
    return _CODECS[key]


# -- the benchmark's workloads ----------------------------------------------------------


@pytest.fixture(scope="module", params=LIBRARIES)
def virtio(request: pytest.FixtureRequest) -> Asn1Codec:
    return BUILDERS[request.param](VIRTIO)


@pytest.mark.parametrize("queues", [0, 1, 8, 64])
def test_virtio_workload_is_our_wire(virtio: Asn1Codec, queues: int) -> None:
    state = make_state(max(queues, 1))
    if queues == 0:
        state["queues"] = []
    assert_our_wire(virtio, VIRTIO, state)


def test_virtio_module_is_plain_sequences() -> None:
    module = asn1spec.asn1_module(VIRTIO)
    assert "Section ::= SEQUENCE {\n    signature UTF8String," in module
    assert "    m5 OCTET STRING," in module  # config
    assert "    m7 BOOLEAN\n}" in module  # a queue's notification
    assert "    subsections Subsections\n}" in module
    assert "OPTIONAL" not in module


def test_pyasn1_classes_read_our_bytes_without_converters() -> None:
    section = asn1spec.pyasn1_classes(VIRTIO)[asn1spec.TOP_TYPE]
    value, rest = der_decoder.decode(ours(VIRTIO, make_state(2)), asn1Spec=section())
    assert rest == b""
    assert str(value["signature"]).startswith("host_features:u64 guest_features:u64 ")
    assert len(value["m6"]) == 3  # the element code and two queues


def _address(rng: random.Random, family: int) -> State:
    if family == IPV4:
        return {"family": IPV4, "addr": rng.getrandbits(32), "port": rng.getrandbits(16)}
    return {"family": family, "addr": 0, "port": 0}


def slirp_state(families: list[tuple[int, int]], seed: int = 7) -> State:
    """A slirp v4 state with one socket per (foreign, local) address family."""
    rng = random.Random(seed)
    socket_type = SLIRP.fields[0].type
    assert isinstance(socket_type, Array) and isinstance(socket_type.element, Struct)
    state = SLIRP.defaults()
    state["ip_id"] = rng.getrandbits(16)
    state["bootp_clients"] = [{"allocated": rng.getrandbits(16), "macaddr": rng.randbytes(6)} for _ in range(16)]
    for foreign, local in families:
        socket = socket_type.element.default()
        socket.update(so_urgc=rng.getrandbits(32), so_state=rng.randrange(-(2**31), 2**31), so_type=1)
        socket["fhost"], socket["lhost"] = _address(rng, foreign), _address(rng, local)
        for side in ("so_rcv", "so_snd"):
            size = rng.randrange(1, 48)
            socket[side] = {
                "sb_cc": rng.randrange(size + 1),
                "sb_datalen": size,
                "woff": rng.randrange(size),
                "roff": rng.randrange(size),
                "data": rng.randbytes(size),
            }
        socket["so_tcpcb"].update(
            t_timer=[rng.randrange(-(2**15), 2**15) for _ in range(4)], snd_una=rng.getrandbits(32)
        )
        state["sockets"].append(socket)
    return state


SLIRP_CASES = {
    "no-sockets": [],
    "ipv4": [(IPV4, IPV4)] * 3,
    "ipv6": [(IPV6, IPV6)],
    "mixed": [(IPV4, IPV6), (IPV6, IPV4), (IPV4, IPV4), (IPV6, IPV6)],
}


@pytest.fixture(scope="module", params=LIBRARIES)
def slirp_codec(request: pytest.FixtureRequest) -> Asn1Codec:
    return BUILDERS[request.param](SLIRP)


@pytest.mark.parametrize("case", list(SLIRP_CASES))
def test_slirp_v4_is_our_wire(slirp_codec: Asn1Codec, case: str) -> None:
    assert_our_wire(slirp_codec, SLIRP, slirp_state(SLIRP_CASES[case]))


def test_slirp_addresses_are_flattened_and_the_rest_plain() -> None:
    module = asn1spec.asn1_module(SLIRP)
    # addr and port are INTEGERs that are there only for IPv4: two OPTIONAL
    # INTEGERs in a row are ambiguous, so the address is a SEQUENCE OF CHOICE.
    address = module.split("-- slirp-socket-addr: family:u16 addr:u32 port:u16\n")[1]
    assert address.startswith("T1 ::= SEQUENCE OF T0\n")
    assert "T0 ::= CHOICE {\n    text UTF8String,\n    number INTEGER\n}" in module
    assert "OPTIONAL" not in module
    # Fields gone from v4 streams (so_faddr ... so_lport, m1..m4) are not in the type.
    socket = module.split("-- slirp-socket: ")[1]
    assert "    m0 INTEGER,\n    m5 T1,\n    m6 T1," in socket


SMALL_BUFFERS = st.integers(1, 24)


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    states(
        SLIRP,
        {
            "sockets/fhost/family": st.sampled_from([IPV4, IPV6]),
            "sockets/lhost/family": st.sampled_from([IPV4, IPV6]),
            "sockets/so_rcv/sb_datalen": SMALL_BUFFERS,
            "sockets/so_snd/sb_datalen": SMALL_BUFFERS,
        },
    )
)
def test_generated_slirp_states_are_our_wire(state: State) -> None:
    for build in BUILDERS.values():
        assert_our_wire(_cached(build, SLIRP), SLIRP, state)


# -- each ASN.1 form --------------------------------------------------------------------

#: A conditional member with a tag of its own: an OPTIONAL component.
OPTIONAL_NAME = Description(
    "optional", 1, 1, (Field("kind", U8), Field("name", Scalar("str"), when=("kind", 1)), Field("count", U32))
)
#: The same layout with ``name`` always written.
ALWAYS_NAME = Description("optional", 1, 1, (Field("kind", U8), Field("name", Scalar("str")), Field("count", U32)))
#: Conditional INTEGERs in a row: written as a SEQUENCE OF CHOICE.
ADDRESS = Description(
    "address",
    1,
    1,
    (Field("family", U16), Field("addr", U32, when=("family", 2)), Field("port", U16, when=("family", 2))),
)
ADDRESS_ALWAYS = Description("address", 1, 1, (Field("family", U16), Field("addr", U32), Field("port", U16)))
ADDRESS_NEVER = Description("address", 1, 1, (Field("family", U16),))
INNER = Struct("inner", (Field("x", U8), Field("s", Scalar("str")), Field("names", Array(Scalar("str"), length=2))))
#: A conditional struct next to a list and the subsection list: a union of three constructed types.
UNION = Description(
    "dev",
    2,
    1,
    (
        Field("a", U8),
        Field("old", U8, until=2),
        Field("b", INNER, when=("a", 1)),
        Field("c", Array(INNER, framing=Framing(ListFraming.COUNT, count_bits=8))),
        Field("flag", Scalar("bool"), when=("a", 1)),
        Field("raw", Buffer(FieldRef("a", 2))),
    ),
    subsections=(Subsection(Description("dev/sub", 1, 1, (Field("z", U8),))),),
)


def _inner(rng: random.Random) -> State:
    return {"x": rng.getrandbits(8), "s": rng.choice(["", "é", "name"]), "names": [rng.choice("ab"), ""]}


def union_state(a: int, seed: int = 3) -> State:
    rng = random.Random(seed)
    return {
        "a": a,
        "old": 0,
        "b": _inner(rng) if a == 1 else INNER.default(),
        "c": [_inner(rng) for _ in range(rng.randrange(4))],
        "flag": a == 1 and rng.random() < 0.5,
        "raw": rng.randbytes(2 * a),
    }


FORM_CASES: dict[str, tuple[Description, State]] = {
    "optional-present": (OPTIONAL_NAME, {"kind": 1, "name": "eth0", "count": 70000}),
    "optional-absent": (OPTIONAL_NAME, {"kind": 0, "name": "", "count": 5}),
    "flattened-present": (ADDRESS, {"family": 2, "addr": 0x6402000A, "port": 8080}),
    "flattened-absent": (ADDRESS, {"family": 10, "addr": 0, "port": 0}),
    "union-present": (UNION, union_state(1)),
    "union-absent": (UNION, union_state(0)),
    "union-other": (UNION, union_state(2)),
}


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("case", list(FORM_CASES))
def test_each_form_is_our_wire(library: str, case: str) -> None:
    description, state = FORM_CASES[case]
    assert_our_wire(_cached(BUILDERS[library], description), description, state)


def test_the_forms_are_the_ones_intended() -> None:
    assert "    m1 UTF8String OPTIONAL,\n    m2 INTEGER," in asn1spec.asn1_module(OPTIONAL_NAME)
    assert "Section ::= SEQUENCE OF T0" in asn1spec.asn1_module(ADDRESS)
    union = asn1spec.asn1_module(UNION)
    assert "-- any of Subsections, T1, T3\n" in union
    assert "Section ::= SEQUENCE OF" in union


INTEGER_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint8": (0, 2**8 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}
WIDTHS = Description("widths", 1, 1, tuple(Field(kind, Scalar(kind)) for kind in INTEGER_RANGES))


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("end", ["minimum", "maximum", "minimum+1", "maximum-1"])
def test_integer_extremes_of_every_width_are_our_wire(library: str, end: str) -> None:
    # -2**(8k-1) has a one-octet-shorter minimal form than its neighbours (02 01 80 for -128).
    pick = {"minimum": lambda lo, hi: lo, "maximum": lambda lo, hi: hi}.get(end)
    nudge = {"minimum+1": lambda lo, hi: lo + 1, "maximum-1": lambda lo, hi: hi - 1}
    choose = pick or nudge[end]
    state = {kind: choose(lo, hi) for kind, (lo, hi) in INTEGER_RANGES.items()}
    assert_our_wire(_cached(BUILDERS[library], WIDTHS), WIDTHS, state)


# -- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_corrupted_signature_is_refused(library: str) -> None:
    codec = _cached(BUILDERS[library], VIRTIO)
    data = ours(VIRTIO, make_state(2))
    with pytest.raises(Asn1Mismatch, match="signature"):
        codec.decode(replace_once(data, b"host_features:u64", b"host_featurez:u64"))
    with pytest.raises(Asn1Mismatch, match="signature"):
        codec.decode(data.replace(b"num:u32 desc", b"num:u16 desc"))  # both queues
    with pytest.raises(Asn1Mismatch, match="list of 'struct'"):
        codec.decode(replace_once(data, b"\x0c\x06struct", b"\x0c\x06strucX"))


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_stream_of_another_layout_is_refused(library: str) -> None:
    queue = VIRTIO.fields[-1].type
    assert isinstance(queue, Array) and isinstance(queue.element, Struct)
    renamed = Struct("queue", (Field("count", U32), *queue.element.fields[1:]))
    other = Description("virtio", 1, 1, (*VIRTIO.fields[:-1], Field("queues", Array(renamed, framing=queue.framing))))
    state = make_state(3)
    state["queues"] = [{"count" if key == "num" else key: value for key, value in q.items()} for q in state["queues"]]
    with pytest.raises(Asn1Mismatch, match="signature"):
        _cached(BUILDERS[library], VIRTIO).decode(ours(other, state))


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_corrupted_flattened_signature_is_refused(library: str) -> None:
    codec = _cached(BUILDERS[library], SLIRP)
    data = ours(SLIRP, slirp_state([(IPV4, IPV6)]))
    with pytest.raises(Asn1Mismatch, match="signature"):
        codec.decode(data.replace(b"family:u16 addr:u32 port:u16", b"family:u16 addr:u32 pork:u16"))
    with pytest.raises(Asn1Mismatch, match="signature"):
        codec.decode(replace_once(data, b"\x0c\x0afamily:u16", b"\x0c\x0afamily:u32"))


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize(
    ("written_as", "state", "description", "message"),
    [
        (ALWAYS_NAME, {"kind": 0, "name": "x", "count": 1}, OPTIONAL_NAME, "has member 'name' although kind is 0"),
        (ADDRESS_ALWAYS, {"family": 10, "addr": 1, "port": 2}, ADDRESS, "no subsection list"),
        (ADDRESS_NEVER, {"family": 2}, ADDRESS, "member 'addr' is nested in the stream, expected number"),
    ],
)
def test_members_that_contradict_their_condition_are_refused(
    library: str, written_as: Description, state: State, description: Description, message: str
) -> None:
    with pytest.raises(Asn1Mismatch, match=message):
        _cached(BUILDERS[library], description).decode(ours(written_as, state))


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_missing_conditional_member_is_refused(library: str) -> None:
    without = Description("optional", 1, 1, (Field("kind", U8), Field("count", U32)))
    with pytest.raises(Asn1Mismatch, match="no member 'name'"):
        _cached(BUILDERS[library], OPTIONAL_NAME).decode(ours(without, {"kind": 1, "count": 2}))


@pytest.mark.parametrize("library", LIBRARIES)
def test_sizes_and_lengths_are_checked(library: str) -> None:
    short_config = Description("virtio", 1, 1, (*VIRTIO.fields[:5], Field("config", Buffer(255)), VIRTIO.fields[-1]))
    state = make_state(1)
    state["config"] = state["config"][:255]
    with pytest.raises(Asn1Mismatch, match="255 bytes in the stream, expected 256"):
        _cached(BUILDERS[library], VIRTIO).decode(ours(short_config, state))
    three = Description("fixed", 1, 1, (Field("values", Array(U8, length=3)),))
    two = Description("fixed", 1, 1, (Field("values", Array(U8, length=2)),))
    with pytest.raises(Asn1Mismatch, match="2 elements in the stream, expected 3"):
        _cached(BUILDERS[library], three).decode(ours(two, {"values": [1, 2]}))
    fixed_raw = Description("dev", 2, 1, (*UNION.fields[:-1], Field("raw", Buffer(2))), UNION.subsections)
    state = {**union_state(2), "raw": b"ab"}  # a = 2 asks for 4 raw bytes
    with pytest.raises(Asn1Mismatch, match="2 bytes in the stream, length field 'a' says 4"):
        _cached(BUILDERS[library], UNION).decode(ours(fixed_raw, state))


@pytest.mark.parametrize("library", LIBRARIES)
def test_trailing_bytes_are_refused(library: str) -> None:
    with pytest.raises(Asn1Mismatch, match="1 trailing bytes"):
        _cached(BUILDERS[library], VIRTIO).decode(ours(VIRTIO, make_state(1)) + b"\0")


#: What each library raises for BER that does not fit the ASN.1 types.
LIBRARY_ERRORS: dict[str, type[Exception]] = {"asn1tools": asn1tools.DecodeError, "pyasn1": PyAsn1Error}


@pytest.mark.parametrize("library", LIBRARIES)
def test_subsections_are_refused_both_ways(library: str) -> None:
    codec = _cached(BUILDERS[library], UNION)
    state = {**union_state(1), "dev/sub": {"z": 1}}
    with pytest.raises(Asn1Unsupported, match="needs subsection 'dev/sub'"):
        codec.encode(state)
    # In a union, the entry's critical flag has no BOOLEAN alternative: both libraries refuse.
    with pytest.raises(LIBRARY_ERRORS[library]):
        codec.decode(ours(UNION, state))
    # A typed Subsections: pyasn1 refuses the extra elements in its own words;
    # asn1tools reads its first element and the converter refuses the list.
    with_sub = Description(
        "virtio", 1, 1, VIRTIO.fields, (Subsection(Description("virtio/x", 1, 1, (Field("z", U8),))),)
    )
    data = ours(with_sub, {**make_state(1), "virtio/x": {"z": 1}})
    if library == "asn1tools":
        with pytest.raises(Asn1Mismatch, match="the stream carries subsections"):
            _cached(BUILDERS[library], VIRTIO).decode(data)
    else:
        with pytest.raises(PyAsn1Error, match="Excessive components"):
            _cached(BUILDERS[library], VIRTIO).decode(data)


@pytest.mark.parametrize(("library", "module"), [("asn1tools", "asn1tools"), ("pyasn1", "pyasn1.codec.der")])
def test_a_missing_library_is_reported_with_an_install_hint(
    monkeypatch: pytest.MonkeyPatch, library: str, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(Asn1LibraryMissing, match=rf"{library} is not installed \(pip install 'migcompat\[bench\]'\)"):
        BUILDERS[library](VIRTIO)


# -- random descriptions ----------------------------------------------------------------

#: Descriptions with every field type, gate and nesting; what these codecs do not cover
#: is left out: lists framed other than by a count (the same BER), length limits,
#: validators, and subsections other than a one-byte one that states never carry.
DESCRIPTIONS = descriptions(
    layouts=Layouts(
        max_fields=5,
        framings=("count8",),
        long_lists=False,
        validators=False,
        accept_unknown=False,
        subsection_fields=False,
    )
)


def _join(path: str, name: str) -> str:
    return f"{path}/{name}" if path else name


def overrides(kind: FieldType, path: str = "") -> dict[str, st.SearchStrategy[Any]]:
    """Small values for length fields and condition targets (so conditional members
    are often present); no subsections."""
    chosen: dict[str, st.SearchStrategy[Any]] = {}
    if isinstance(kind, Array):
        return overrides(kind.element, path)
    if not isinstance(kind, (Struct, Description)):
        return chosen
    targets = {f.when[0] for f in kind.fields if f.when is not None}
    for f in kind.fields:
        here = _join(path, f.name)
        if f.name.endswith("_len") or f.name in targets:
            chosen[here] = st.integers(0, 2)
        chosen.update(overrides(f.type, here))
    if isinstance(kind, Description):
        for sub in kind.subsections:
            chosen[_join(path, sub.name) + "?"] = st.just(False)
    return chosen


@st.composite
def cases(draw: st.DrawFn) -> tuple[Description, State]:
    description = draw(DESCRIPTIONS)
    return description, draw(states(description, overrides(description)))


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_random_descriptions_are_our_wire(case: tuple[Description, State]) -> None:
    description, state = case
    for build in BUILDERS.values():
        assert_our_wire(build(description), description, state)
