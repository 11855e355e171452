"""The slirp reference device: libslirp's migration state, v1 to v4.

Why: QEMU's user-mode network stack (libslirp) migrates as an *old-style*
section -- a byte stream QEMU does not describe (its vmdesc calls it one opaque
``buffer``). It has the list framings and version tricks a compatibility harness
must handle: guest-forward sockets framed by a ``42`` before each and a ``0``
after the last, fields that exist only in *older* streams (the IPv4-only socket
addresses before v4), and fields that depend on an earlier value (an address and
port written only for the IPv4 family). Its post-load checks are migration-load
CVE fixes: buffer offsets outside the buffer, an unknown address family.

Strategy: :func:`build_description` builds the description of one release from
one table, parameterised by the release's state version, so the four releases
share their code and differ only in what each one knew:

* ``v1`` -- the socket list, each socket with the pre-v4 address form
  (``so_faddr``/``so_laddr``/``so_fport``/``so_lport``, gone from v4 streams),
  its two socket buffers and its TCP control block;
* ``v2`` -- adds ``ip_id``;
* ``v3`` -- adds the 16 bootp clients;
* ``v4`` -- the socket addresses become ``fhost``/``lhost``: a portable address
  family, then address and port only for IPv4 (QEMU 7.2 with libslirp 4.7).

:func:`visit_slirp` is the same state written the old way (phase 1): one visitor
call per ``qemu_put_*``/``qemu_get_*``, field by field in wire order, and it
makes exactly the calls the walker makes for the description.

Facts come from libslirp's ``src/state.c`` (layout read, not copied) and were
checked against QEMU 7.2 with libslirp 4.7: its captures (the 131-byte section
with no sockets) decode and re-encode byte for byte, and it accepts the sockets
written here at v1 and v4 and rejects bad ones with the words used here
(``tests/test_slirp.py``, tests marked ``qemu``).
Two wire quirks are modelled as values, not bytes: addresses and ports are kept
in memory in network order but written as host integers through big-endian
writers, so on the usual little-endian host 10.0.2.100 is written ``64 02 00 0a``
-- our state holds the *integer* the writer saw (0x6402000a). And a v1..v3
stream loaded by v4 code gets IPv4 families (libslirp's ``pre_load``), so the
``family`` default is 2, not 0.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from migcompat.devices.base import Device, LegacyVisit, Release
from migcompat.errors import EncodeError, InvalidState, LoadRefused
from migcompat.model.strategies import buffers
from migcompat.model.vmstate import Array, Buffer, Description, Field, FieldRef, Scalar, State, Struct
from migcompat.wire.visitor import KNOWN_LENGTH, Framing, ListFraming, Visitor, integer_range

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

#: The state version libslirp 4.7 writes (``slirp_state_version()``; QEMU 7.2
#: asserts it is 4).
SLIRP_VERSION = 4
#: Oldest stream version any release loads (slirp streams have been v1 since the
#: savevm handler was added).
MINIMUM_VERSION = 1
#: ``42`` before each guest-forward socket, ``0`` after the last.
SOCKET_MARKER = 42
SOCKET_TERMINATOR = 0
SOCKET_LIST = Framing(ListFraming.SENTINEL, marker=SOCKET_MARKER, terminator=SOCKET_TERMINATOR)
#: NB_BOOTP_CLIENTS in libslirp.
NB_BOOTP_CLIENTS = 16
#: TCPT_NTIMERS in libslirp's ``tcp_timer.h``.
TCPT_NTIMERS = 4
#: Portable address families on the v4 wire: 2 = IPv4, 10 = IPv6.
FAMILY_INET = 2
FAMILY_INET6 = 10
#: What v4 load accepts: also 23 (mingw's AF_INET6) and 28 (FreeBSD's), kept for
#: streams written by builds that sent the raw host value.
ACCEPTED_FAMILIES = (FAMILY_INET, FAMILY_INET6, 23, 28)

_U8 = Scalar("uint8")
_U16 = Scalar("uint16")
_U32 = Scalar("uint32")
_I16 = Scalar("int16")
_I32 = Scalar("int32")

#: The TCP control block (``slirp-tcp``, 119 bytes): nothing in it is
#: version-gated. (name, kind); ``t_timer`` is the one array.
TCPCB_LAYOUT: tuple[tuple[str, str], ...] = (
    ("t_state", "int16"),
    ("t_timer", "int16[4]"),
    ("t_rxtshift", "int16"),
    ("t_rxtcur", "int16"),
    ("t_dupacks", "int16"),
    ("t_maxseg", "uint16"),
    ("t_force", "uint8"),
    ("t_flags", "uint16"),
    ("snd_una", "uint32"),
    ("snd_nxt", "uint32"),
    ("snd_up", "uint32"),
    ("snd_wl1", "uint32"),
    ("snd_wl2", "uint32"),
    ("iss", "uint32"),
    ("snd_wnd", "uint32"),
    ("rcv_wnd", "uint32"),
    ("rcv_nxt", "uint32"),
    ("rcv_up", "uint32"),
    ("irs", "uint32"),
    ("rcv_adv", "uint32"),
    ("snd_max", "uint32"),
    ("snd_cwnd", "uint32"),
    ("snd_ssthresh", "uint32"),
    ("t_idle", "int16"),
    ("t_rtt", "int16"),
    ("t_rtseq", "uint32"),
    ("t_srtt", "int16"),
    ("t_rttvar", "int16"),
    ("t_rttmin", "uint16"),
    ("max_sndwnd", "uint32"),
    ("t_oobflags", "uint8"),
    ("t_iobc", "uint8"),
    ("t_softerror", "int16"),
    ("snd_scale", "uint8"),
    ("rcv_scale", "uint8"),
    ("request_r_scale", "uint8"),
    ("requested_s_scale", "uint8"),
    ("ts_recent", "uint32"),
    ("ts_recent_age", "uint32"),
    ("last_ack_sent", "uint32"),
)


# -- phase 2: the declarative descriptions -------------------------------------


def _tcpcb() -> Struct:
    fields = []
    for name, kind in TCPCB_LAYOUT:
        if kind == "int16[4]":
            fields.append(Field(name, Array(_I16, length=TCPT_NTIMERS)))
        else:
            fields.append(Field(name, Scalar(kind)))
    return Struct("slirp-tcp", tuple(fields))


#: A socket buffer (``slirp-sbuf``): the write offset comes before the read offset.
SBUF = Struct(
    "slirp-sbuf",
    (
        Field("sb_cc", _U32),
        Field("sb_datalen", _U32),
        Field("woff", _U32),
        Field("roff", _U32),
        Field("data", Buffer(FieldRef("sb_datalen"))),
    ),
)

#: A v4 socket address (``slirp-socket-addr``): IPv6 sockets carry only the family.
SOCKET_ADDRESS = Struct(
    "slirp-socket-addr",
    (
        Field("family", _U16, default=FAMILY_INET),
        Field("addr", _U32, when=("family", FAMILY_INET)),
        Field("port", _U16, when=("family", FAMILY_INET)),
    ),
)

#: One bootp client: whether the lease is taken, and the MAC it went to.
BOOTP_CLIENT = Struct("slirp_bootpclient", (Field("allocated", _U16), Field("macaddr", Buffer(6))))

TCPCB = _tcpcb()


def _socket(version: int) -> Struct:
    fields = [
        Field("so_urgc", _U32),
        Field("so_faddr", _U32, until=4),
        Field("so_laddr", _U32, until=4),
        Field("so_fport", _U16, until=4),
        Field("so_lport", _U16, until=4),
    ]
    if version >= 4:
        fields += [Field("fhost", SOCKET_ADDRESS, since=4), Field("lhost", SOCKET_ADDRESS, since=4)]
    fields += [
        Field("so_iptos", _U8),
        Field("so_emu", _U8),
        Field("so_type", _U8),
        Field("so_state", _I32),
        Field("so_rcv", SBUF),
        Field("so_snd", SBUF),
        Field("so_tcpcb", TCPCB),
    ]
    return Struct("slirp-socket", tuple(fields))


def validate_slirp(state: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """libslirp's load-time checks, in the order it makes them for each socket."""
    for index, socket in enumerate(state.get("sockets", ())):
        for side in ("fhost", "lhost"):
            if side in socket and socket[side]["family"] not in ACCEPTED_FAMILIES:
                yield f"sockets[{index}]/{side}/family", f"invalid ss_family type {socket[side]['family']:x}"
        for buffer in ("so_rcv", "so_snd"):
            sbuf = socket[buffer]
            size, woff, roff = sbuf["sb_datalen"], sbuf["woff"], sbuf["roff"]
            if woff >= size or roff >= size:
                yield f"sockets[{index}]/{buffer}", f"invalid sbuf offsets r/w={roff}/{woff} len={size}"


def build_description(version: int) -> Description:
    """The ``slirp`` description as the release with state version ``version`` knew it."""
    if not MINIMUM_VERSION <= version <= SLIRP_VERSION:
        raise ValueError(f"slirp has releases v{MINIMUM_VERSION}..v{SLIRP_VERSION}, not v{version}")
    fields = [Field("sockets", Array(_socket(version), framing=SOCKET_LIST))]
    if version >= 2:
        fields.append(Field("ip_id", _U16, since=2))
    if version >= 3:
        fields.append(Field("bootp_clients", Array(BOOTP_CLIENT, length=NB_BOOTP_CLIENTS), since=3))
    return Description("slirp", version, MINIMUM_VERSION, tuple(fields), validate=validate_slirp)


# -- phase 1: the old-style visit function --------------------------------------

#: QEMU's subsection framing after a description's fields; slirp has none, so
#: the list is always empty (nothing on the legacy wire).
_SUBSECTIONS = Framing(ListFraming.SENTINEL, marker=0x05, terminator=None, name_prefix="slirp")


def _member(visitor: Visitor, state: Mapping[str, Any], name: str) -> Any:
    try:
        return state[name]
    except KeyError:
        _offset, path = visitor.where()
        raise EncodeError(f"state has no field '{name}'", path) from None


def _default_address() -> State:
    return {"family": FAMILY_INET, "addr": 0, "port": 0}


def _default_sbuf() -> State:
    return {"sb_cc": 0, "sb_datalen": 0, "woff": 0, "roff": 0, "data": b""}


def _default_tcpcb() -> State:
    return {name: [0] * TCPT_NTIMERS if kind == "int16[4]" else 0 for name, kind in TCPCB_LAYOUT}


def _default_socket(local_version: int) -> State:
    socket: State = {"so_urgc": 0, "so_faddr": 0, "so_laddr": 0, "so_fport": 0, "so_lport": 0}
    if local_version >= 4:
        socket["fhost"] = _default_address()
        socket["lhost"] = _default_address()
    socket.update(so_iptos=0, so_emu=0, so_type=0, so_state=0)
    socket.update(so_rcv=_default_sbuf(), so_snd=_default_sbuf(), so_tcpcb=_default_tcpcb())
    return socket


def _default_bootp_client() -> State:
    return {"allocated": 0, "macaddr": bytes(6)}


def _visit_address(visitor: Visitor, name: str, address: Mapping[str, Any]) -> State:
    visitor.start_struct(name)
    family = visitor.visit_uint16("family", _member(visitor, address, "family"))
    out: State = {"family": family, "addr": 0, "port": 0}
    if family == FAMILY_INET:
        out["addr"] = visitor.visit_uint32("addr", _member(visitor, address, "addr"))
        out["port"] = visitor.visit_uint16("port", _member(visitor, address, "port"))
    visitor.end_struct()
    return out


def _visit_sbuf(visitor: Visitor, name: str, sbuf: Mapping[str, Any]) -> State:
    visitor.start_struct(name)
    out: State = {}
    out["sb_cc"] = visitor.visit_uint32("sb_cc", _member(visitor, sbuf, "sb_cc"))
    out["sb_datalen"] = visitor.visit_uint32("sb_datalen", _member(visitor, sbuf, "sb_datalen"))
    out["woff"] = visitor.visit_uint32("woff", _member(visitor, sbuf, "woff"))
    out["roff"] = visitor.visit_uint32("roff", _member(visitor, sbuf, "roff"))
    out["data"] = visitor.visit_buffer("data", _member(visitor, sbuf, "data"), int(out["sb_datalen"]))
    visitor.end_struct()
    return out


def _visit_timers(visitor: Visitor, timers: list[int]) -> list[int]:
    if visitor.is_input:
        count = TCPT_NTIMERS
    else:
        count = len(timers)
        if count != TCPT_NTIMERS:
            _offset, path = visitor.where()
            raise EncodeError(f"array has {count} elements, its length says {TCPT_NTIMERS}", f"{path}/t_timer")
    visitor.start_list("t_timer", KNOWN_LENGTH, count)
    out: list[int] = []
    while visitor.next_list(len(out) < len(timers)):
        old = timers[len(out)] if len(out) < len(timers) else 0
        out.append(visitor.visit_int16("", old))
    visitor.end_list()
    return out


def _visit_tcpcb(visitor: Visitor, tp: Mapping[str, Any]) -> State:
    v = visitor
    v.start_struct("so_tcpcb")
    out: State = {}
    out["t_state"] = v.visit_int16("t_state", _member(v, tp, "t_state"))
    out["t_timer"] = _visit_timers(v, _member(v, tp, "t_timer"))
    out["t_rxtshift"] = v.visit_int16("t_rxtshift", _member(v, tp, "t_rxtshift"))
    out["t_rxtcur"] = v.visit_int16("t_rxtcur", _member(v, tp, "t_rxtcur"))
    out["t_dupacks"] = v.visit_int16("t_dupacks", _member(v, tp, "t_dupacks"))
    out["t_maxseg"] = v.visit_uint16("t_maxseg", _member(v, tp, "t_maxseg"))
    out["t_force"] = v.visit_uint8("t_force", _member(v, tp, "t_force"))
    out["t_flags"] = v.visit_uint16("t_flags", _member(v, tp, "t_flags"))
    out["snd_una"] = v.visit_uint32("snd_una", _member(v, tp, "snd_una"))
    out["snd_nxt"] = v.visit_uint32("snd_nxt", _member(v, tp, "snd_nxt"))
    out["snd_up"] = v.visit_uint32("snd_up", _member(v, tp, "snd_up"))
    out["snd_wl1"] = v.visit_uint32("snd_wl1", _member(v, tp, "snd_wl1"))
    out["snd_wl2"] = v.visit_uint32("snd_wl2", _member(v, tp, "snd_wl2"))
    out["iss"] = v.visit_uint32("iss", _member(v, tp, "iss"))
    out["snd_wnd"] = v.visit_uint32("snd_wnd", _member(v, tp, "snd_wnd"))
    out["rcv_wnd"] = v.visit_uint32("rcv_wnd", _member(v, tp, "rcv_wnd"))
    out["rcv_nxt"] = v.visit_uint32("rcv_nxt", _member(v, tp, "rcv_nxt"))
    out["rcv_up"] = v.visit_uint32("rcv_up", _member(v, tp, "rcv_up"))
    out["irs"] = v.visit_uint32("irs", _member(v, tp, "irs"))
    out["rcv_adv"] = v.visit_uint32("rcv_adv", _member(v, tp, "rcv_adv"))
    out["snd_max"] = v.visit_uint32("snd_max", _member(v, tp, "snd_max"))
    out["snd_cwnd"] = v.visit_uint32("snd_cwnd", _member(v, tp, "snd_cwnd"))
    out["snd_ssthresh"] = v.visit_uint32("snd_ssthresh", _member(v, tp, "snd_ssthresh"))
    out["t_idle"] = v.visit_int16("t_idle", _member(v, tp, "t_idle"))
    out["t_rtt"] = v.visit_int16("t_rtt", _member(v, tp, "t_rtt"))
    out["t_rtseq"] = v.visit_uint32("t_rtseq", _member(v, tp, "t_rtseq"))
    out["t_srtt"] = v.visit_int16("t_srtt", _member(v, tp, "t_srtt"))
    out["t_rttvar"] = v.visit_int16("t_rttvar", _member(v, tp, "t_rttvar"))
    out["t_rttmin"] = v.visit_uint16("t_rttmin", _member(v, tp, "t_rttmin"))
    out["max_sndwnd"] = v.visit_uint32("max_sndwnd", _member(v, tp, "max_sndwnd"))
    out["t_oobflags"] = v.visit_uint8("t_oobflags", _member(v, tp, "t_oobflags"))
    out["t_iobc"] = v.visit_uint8("t_iobc", _member(v, tp, "t_iobc"))
    out["t_softerror"] = v.visit_int16("t_softerror", _member(v, tp, "t_softerror"))
    out["snd_scale"] = v.visit_uint8("snd_scale", _member(v, tp, "snd_scale"))
    out["rcv_scale"] = v.visit_uint8("rcv_scale", _member(v, tp, "rcv_scale"))
    out["request_r_scale"] = v.visit_uint8("request_r_scale", _member(v, tp, "request_r_scale"))
    out["requested_s_scale"] = v.visit_uint8("requested_s_scale", _member(v, tp, "requested_s_scale"))
    out["ts_recent"] = v.visit_uint32("ts_recent", _member(v, tp, "ts_recent"))
    out["ts_recent_age"] = v.visit_uint32("ts_recent_age", _member(v, tp, "ts_recent_age"))
    out["last_ack_sent"] = v.visit_uint32("last_ack_sent", _member(v, tp, "last_ack_sent"))
    v.end_struct()
    return out


def _visit_socket(visitor: Visitor, so: Mapping[str, Any], version: int, local_version: int) -> State:
    v = visitor
    v.start_struct("")
    out: State = {}
    out["so_urgc"] = v.visit_uint32("so_urgc", _member(v, so, "so_urgc"))
    if version < 4:
        out["so_faddr"] = v.visit_uint32("so_faddr", _member(v, so, "so_faddr"))
        out["so_laddr"] = v.visit_uint32("so_laddr", _member(v, so, "so_laddr"))
        out["so_fport"] = v.visit_uint16("so_fport", _member(v, so, "so_fport"))
        out["so_lport"] = v.visit_uint16("so_lport", _member(v, so, "so_lport"))
    else:
        out.update(so_faddr=0, so_laddr=0, so_fport=0, so_lport=0)
    if local_version >= 4:
        if version >= 4:
            out["fhost"] = _visit_address(v, "fhost", _member(v, so, "fhost"))
            out["lhost"] = _visit_address(v, "lhost", _member(v, so, "lhost"))
        else:
            out["fhost"] = _default_address()
            out["lhost"] = _default_address()
    out["so_iptos"] = v.visit_uint8("so_iptos", _member(v, so, "so_iptos"))
    out["so_emu"] = v.visit_uint8("so_emu", _member(v, so, "so_emu"))
    out["so_type"] = v.visit_uint8("so_type", _member(v, so, "so_type"))
    out["so_state"] = v.visit_int32("so_state", _member(v, so, "so_state"))
    out["so_rcv"] = _visit_sbuf(v, "so_rcv", _member(v, so, "so_rcv"))
    out["so_snd"] = _visit_sbuf(v, "so_snd", _member(v, so, "so_snd"))
    out["so_tcpcb"] = _visit_tcpcb(v, _member(v, so, "so_tcpcb"))
    v.end_struct()
    return out


def _visit_bootp_clients(visitor: Visitor, clients: list[Mapping[str, Any]]) -> list[State]:
    if visitor.is_input:
        count = NB_BOOTP_CLIENTS
    else:
        count = len(clients)
        if count != NB_BOOTP_CLIENTS:
            _offset, path = visitor.where()
            raise EncodeError(
                f"array has {count} elements, its length says {NB_BOOTP_CLIENTS}", f"{path}/bootp_clients"
            )
    visitor.start_list("bootp_clients", KNOWN_LENGTH, count)
    out: list[State] = []
    while visitor.next_list(len(out) < len(clients)):
        client = clients[len(out)] if len(out) < len(clients) else _default_bootp_client()
        visitor.start_struct("")
        allocated = visitor.visit_uint16("allocated", _member(visitor, client, "allocated"))
        macaddr = visitor.visit_buffer("macaddr", _member(visitor, client, "macaddr"), 6)
        visitor.end_struct()
        out.append({"allocated": allocated, "macaddr": macaddr})
    visitor.end_list()
    return out


def visit_slirp(
    visitor: Visitor, state: Mapping[str, Any], version: int, *, local_version: int = SLIRP_VERSION
) -> State:
    """``slirp_state_save``/``slirp_state_load`` written once for both directions.

    ``local_version`` is the release's own state version (what its code knows);
    ``version`` is the stream's. Save passes the state and the release's version;
    load passes the release's defaults and the version from the section header.
    """
    if version > local_version or version < MINIMUM_VERSION:
        offset, path = visitor.where()
        raise LoadRefused(
            f"unsupported version {version} for 'slirp' v{local_version} (accepts {MINIMUM_VERSION}..{local_version})",
            offset=offset,
            path=path,
        )
    visitor.start_struct("slirp")
    out: State = {}

    # The guest-forward sockets: 42, the socket, ..., then 0.
    sockets = _member(visitor, state, "sockets")
    visitor.start_list("sockets", SOCKET_LIST, -1 if visitor.is_input else len(sockets))
    loaded: list[State] = []
    while visitor.next_list(len(loaded) < len(sockets)):
        old = sockets[len(loaded)] if len(loaded) < len(sockets) else _default_socket(local_version)
        loaded.append(_visit_socket(visitor, old, version, local_version))
    visitor.end_list()
    out["sockets"] = loaded

    if local_version >= 2:
        out["ip_id"] = visitor.visit_uint16("ip_id", _member(visitor, state, "ip_id")) if version >= 2 else 0
    if local_version >= 3:
        if version >= 3:
            out["bootp_clients"] = _visit_bootp_clients(visitor, _member(visitor, state, "bootp_clients"))
        else:
            out["bootp_clients"] = [_default_bootp_client() for _ in range(NB_BOOTP_CLIENTS)]

    # slirp has no subsections: the list is empty, and a stream that carries one
    # is refused (nothing here knows it).
    visitor.start_list("subsections", _SUBSECTIONS, -1 if visitor.is_input else 0)
    while visitor.next_list(False):
        visitor.start_struct("")
        name = visitor.visit_str("name", "")
        visitor.visit_uint32("version_id", 0)
        if visitor.self_describing:
            visitor.visit_bool("critical", True)
        offset, path = visitor.where()
        raise LoadRefused(f"unknown subsection '{name}'", offset=offset, path=path)
    visitor.end_list()
    visitor.end_struct(allow_trailing=False)

    if visitor.is_input:
        for name, problem in validate_slirp(out):
            offset, path = visitor.where()
            path = f"{path}/slirp/{name}" if path else f"slirp/{name}"
            raise InvalidState(problem, offset=offset, path=path)
    return out


def legacy_visit(local_version: int) -> LegacyVisit:
    """The phase-1 visit function of the release with state version ``local_version``."""

    def visit(visitor: Visitor, state: Mapping[str, Any], version: int) -> State:
        return visit_slirp(visitor, state, version, local_version=local_version)

    visit.__name__ = visit.__qualname__ = f"visit_slirp_v{local_version}"
    return visit


# -- hypothesis strategies ----------------------------------------------------------

#: Socket buffer sizes the strategies use: real buffers are tens of KiB, but the
#: layout is the same at any size and small ones keep the tests fast.
MAX_STRATEGY_DATALEN = 4096


def strategy(release: Release) -> SearchStrategy[State]:
    """Valid states of ``release``, edge values included: no sockets, several,
    full buffers (``sb_cc == sb_datalen``), extreme integers, IPv4 and IPv6."""
    from hypothesis import strategies as st

    version = release.version_id

    def integers(kind: str) -> SearchStrategy[int]:
        # Half of the draws are the extremes: they are where widths are tested.
        low, high = integer_range(kind)
        return st.one_of(st.integers(low, high), st.sampled_from((low, high)))

    def sbuf(size: int) -> SearchStrategy[State]:
        return st.fixed_dictionaries(
            {
                "sb_cc": st.one_of(st.just(size), st.integers(0, size)),
                "sb_datalen": st.just(size),
                "woff": st.integers(0, size - 1),
                "roff": st.integers(0, size - 1),
                "data": buffers(size),
            }
        )

    sbufs = st.one_of(st.sampled_from([1, MAX_STRATEGY_DATALEN]), st.integers(1, MAX_STRATEGY_DATALEN)).flatmap(sbuf)
    tcpcb = st.fixed_dictionaries(
        {
            name: st.lists(integers("int16"), min_size=TCPT_NTIMERS, max_size=TCPT_NTIMERS)
            if kind == "int16[4]"
            else integers(kind)
            for name, kind in TCPCB_LAYOUT
        }
    )
    address = st.one_of(
        st.fixed_dictionaries({"family": st.just(FAMILY_INET), "addr": integers("uint32"), "port": integers("uint16")}),
        st.fixed_dictionaries({"family": st.just(FAMILY_INET6), "addr": st.just(0), "port": st.just(0)}),
    )
    old_address = version < 4
    socket_fields: dict[str, SearchStrategy[Any]] = {
        "so_urgc": integers("uint32"),
        # Gone from v4 streams: a v4 state holds their default.
        "so_faddr": integers("uint32") if old_address else st.just(0),
        "so_laddr": integers("uint32") if old_address else st.just(0),
        "so_fport": integers("uint16") if old_address else st.just(0),
        "so_lport": integers("uint16") if old_address else st.just(0),
    }
    if version >= 4:
        socket_fields.update(fhost=address, lhost=address)
    socket_fields.update(
        so_iptos=integers("uint8"),
        so_emu=integers("uint8"),
        so_type=integers("uint8"),
        so_state=integers("int32"),
        so_rcv=sbufs,
        so_snd=sbufs,
        so_tcpcb=tcpcb,
    )
    state: dict[str, SearchStrategy[Any]] = {"sockets": st.lists(st.fixed_dictionaries(socket_fields), max_size=4)}
    if version >= 2:
        state["ip_id"] = integers("uint16")
    if version >= 3:
        client = st.fixed_dictionaries({"allocated": integers("uint16"), "macaddr": st.binary(min_size=6, max_size=6)})
        state["bootp_clients"] = st.lists(client, min_size=NB_BOOTP_CLIENTS, max_size=NB_BOOTP_CLIENTS)
    return st.fixed_dictionaries(state)


# -- the device ---------------------------------------------------------------------

_NOTES = {
    1: "guest-forward sockets (42 ... 0) with the IPv4-only address form, socket buffers and tcpcb",
    2: "adds ip_id (uint16)",
    3: "adds the 16 bootp clients (uint16 allocated + 6-byte MAC)",
    4: "socket addresses become fhost/lhost: portable family, address and port only for IPv4 "
    "(libslirp 4.x; QEMU 7.2 with libslirp 4.7 writes this, verified on real captures)",
}

RELEASES: tuple[Release, ...] = tuple(
    Release(f"v{version}", build_description(version), legacy_visit(version), _NOTES[version])
    for version in range(MINIMUM_VERSION, SLIRP_VERSION + 1)
)


def fixed_states(release: Release) -> list[State]:
    """The empty state QEMU writes with no guest, and a full one: two
    guest-forward sockets (IPv4 and, from v4, IPv6) with full buffers, a
    non-zero ip_id and allocated bootp clients."""
    version = release.version_id
    empty: State = {"sockets": []}
    if version >= 2:
        empty["ip_id"] = 0
    if version >= 3:
        empty["bootp_clients"] = [_default_bootp_client() for _ in range(NB_BOOTP_CLIENTS)]
    full = copy.deepcopy(empty)
    for index in range(2):
        socket = _default_socket(version)
        socket.update(so_urgc=index, so_faddr=0x6402000A, so_laddr=0x0F02000A, so_fport=0x5C11, so_lport=0x3930)
        if version >= 4:
            socket["fhost"] = {"family": FAMILY_INET, "addr": 0x6402000A, "port": 0x5C11}
            socket["lhost"] = (
                {"family": FAMILY_INET, "addr": 0x0F02000A, "port": 0x3930}
                if index == 0
                else {"family": 10, "addr": 0, "port": 0}
            )
        socket.update(so_iptos=0x10, so_emu=0, so_type=1, so_state=0x4)
        for name, size in (("so_rcv", 8192), ("so_snd", 4096)):
            socket[name] = {
                "sb_cc": size,
                "sb_datalen": size,
                "woff": 7,
                "roff": size - 1,
                "data": bytes(range(256)) * (size // 256),
            }
        socket["so_tcpcb"]["t_state"] = 4
        socket["so_tcpcb"]["snd_una"] = 0xFFFFFFFF
        full["sockets"].append(socket)
    if version >= 2:
        full["ip_id"] = 0xBEEF
    if version >= 3:
        full["bootp_clients"][0] = {"allocated": 1, "macaddr": bytes.fromhex("525400123456")}
    return [empty, full]


DEVICE = Device(
    name="slirp",
    fixed_states=fixed_states,
    summary="libslirp user-mode networking: guest-forward sockets, ip_id, bootp clients",
    releases=RELEASES,
    strategy=strategy,
    # The default codec: the newest description for every version of a "slirp"
    # section, so an unsupported version is refused rather than carried opaque.
    matches_section=lambda idstr: idstr == "slirp",
)
