"""The slirp reference device: both visit forms, its wire layout, real captures, its checks.

What is checked, and against what:

* phase 1 (``visit_slirp``, hand-written) and phase 2 (the description and the
  walker) make the *same visitor calls* -- recorded call by call -- so they write
  the same qemufile bytes, BER and dict values, and load the same states;
* the qemufile bytes equal a layout written here independently with
  :mod:`struct` from the libslirp layout notes (not from the code under test);
* the real QEMU 7.2 captures decode and re-encode byte for byte, and an edit of
  ``ip_id`` or a bootp client changes exactly those bytes;
* the post-load checks and refusals, with the field path in the error;
* older streams load at newer releases (absent fields at their defaults) and
  newer streams are refused by older ones;
* with a real ``qemu-system-x86_64`` (tests marked ``qemu``, skipped without it):
  QEMU 7.2 itself accepts the sockets we write and rejects bad ones with the same
  words we use.
"""

from __future__ import annotations

import copy
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from _support import PAIRING_NAMES, decode, encode, require_release
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from migcompat import devices
from migcompat.devices import slirp
from migcompat.devices.base import Release
from migcompat.errors import DecodeError, InvalidState, LoadRefused, MalformedInput
from migcompat.model import vmstate
from migcompat.qemu.stream import encode_ber, encode_qemu, parse_ber, parse_qemu
from migcompat.wire import PAIRINGS
from migcompat.wire.visitor import Framing, Visitor

RELEASES = slirp.DEVICE.releases
V4 = slirp.DEVICE.release("v4")
CORPORA = Path(__file__).resolve().parent.parent / "corpora" / "qemu-7.2"
CAPTURES = ("pc-virtio-net.bin", "microvm-virtio-net.bin")

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


# -- recording the visitor calls --------------------------------------------------


class Recorder(Visitor):
    """Forwards every call to ``inner`` and records (method, arguments, result)."""

    def __init__(self, inner: Visitor) -> None:
        self.inner = inner
        self.is_input = inner.is_input
        self.self_describing = inner.self_describing
        self.calls: list[tuple[str, tuple[Any, ...], Any]] = []

    def where(self) -> tuple[int | None, str]:
        return self.inner.where()

    def _call(self, method: str, *args: Any) -> Any:
        result = getattr(self.inner, method)(*args)
        self.calls.append((method, args, result))
        return result

    def start_struct(self, name: str) -> None:
        self._call("start_struct", name)

    def end_struct(self, *, allow_trailing: bool = False) -> None:
        result = self.inner.end_struct(allow_trailing=allow_trailing)
        self.calls.append(("end_struct", (allow_trailing,), result))

    def start_list(self, name: str, framing: Framing, count: int) -> int:
        result: int = self._call("start_list", name, framing, count)
        return result

    def next_list(self, more: bool) -> bool:
        result: bool = self._call("next_list", more)
        return result

    def end_list(self) -> None:
        self._call("end_list")

    def visit_integer(self, kind: str, name: str, value: int) -> int:
        # Recorded under the method the caller used (visit_uint8, ...).
        return int(self._call(f"visit_{kind}", name, value))

    def visit_bool(self, name: str, value: bool) -> bool:
        return bool(self._call("visit_bool", name, value))

    def visit_str(self, name: str, value: str) -> str:
        return str(self._call("visit_str", name, value))

    def visit_buffer(self, name: str, value: bytes, size: int) -> bytes:
        return bytes(self._call("visit_buffer", name, value, size))


def _phase2(release: Release) -> Callable[[Visitor, Mapping[str, Any], int], dict[str, Any]]:
    def visit(visitor: Visitor, state: Mapping[str, Any], version: int) -> dict[str, Any]:
        return vmstate.walk(visitor, release.description, state, version)

    return visit


def save_both(pairing: str, release: Release, state: dict[str, Any]) -> Any:
    """Save with both forms; they must make the same calls and produce the same output."""
    outputs = []
    recorded = []
    for visit in (_phase2(release), release.legacy):
        recorder = Recorder(PAIRINGS[pairing].make_output())
        visit(recorder, state, release.version_id)
        outputs.append(recorder.inner.result())  # type: ignore[attr-defined]
        recorded.append(recorder.calls)
    assert recorded[1] == recorded[0]
    assert outputs[1] == outputs[0]
    return outputs[0]


def load_both(pairing: str, release: Release, encoded: Any, version: int) -> dict[str, Any]:
    """Load with both forms; they must make the same calls and return (or raise) the same."""
    results: list[Any] = []
    recorded = []
    for visit in (_phase2(release), release.legacy):
        recorder = Recorder(PAIRINGS[pairing].make_input(encoded))
        try:
            state = visit(recorder, release.description.defaults(), version)
            if PAIRINGS[pairing].is_bytes:
                recorder.inner.finish()  # type: ignore[attr-defined]
            results.append(state)
        except DecodeError as error:
            results.append((type(error), error.message, error.path, error.offset))
        recorded.append(recorder.calls)
    assert recorded[1] == recorded[0]
    assert results[1] == results[0]
    if isinstance(results[0], tuple):
        cls, message, path, offset = results[0]
        raise cls(message, path=path, offset=offset)
    return dict(results[0])


# -- an independent writer of the legacy layout -------------------------------------

#: The 119-byte tcpcb as listed in the layout notes (A.7): names and struct codes.
TCPCB_WIRE = (
    ("t_state", "h"),
    ("t_timer", "4h"),
    ("t_rxtshift", "h"),
    ("t_rxtcur", "h"),
    ("t_dupacks", "h"),
    ("t_maxseg", "H"),
    ("t_force", "B"),
    ("t_flags", "H"),
    *((name, "I") for name in ["snd_una", "snd_nxt", "snd_up", "snd_wl1", "snd_wl2", "iss", "snd_wnd", "rcv_wnd"]),
    *((name, "I") for name in ["rcv_nxt", "rcv_up", "irs", "rcv_adv", "snd_max", "snd_cwnd", "snd_ssthresh"]),
    ("t_idle", "h"),
    ("t_rtt", "h"),
    ("t_rtseq", "I"),
    ("t_srtt", "h"),
    ("t_rttvar", "h"),
    ("t_rttmin", "H"),
    ("max_sndwnd", "I"),
    ("t_oobflags", "B"),
    ("t_iobc", "B"),
    ("t_softerror", "h"),
    ("snd_scale", "B"),
    ("rcv_scale", "B"),
    ("request_r_scale", "B"),
    ("requested_s_scale", "B"),
    ("ts_recent", "I"),
    ("ts_recent_age", "I"),
    ("last_ack_sent", "I"),
)
TCPCB_FORMAT = ">" + "".join(code for _name, code in TCPCB_WIRE)


def _tcpcb_bytes(tcpcb: dict[str, Any]) -> bytes:
    values: list[int] = []
    for name, _code in TCPCB_WIRE:
        value = tcpcb[name]
        values.extend(value if isinstance(value, list) else [value])
    return struct.pack(TCPCB_FORMAT, *values)


def _socket_bytes(sock: dict[str, Any], version: int) -> bytes:
    out = struct.pack(">I", sock["so_urgc"])
    if version < 4:
        out += struct.pack(">IIHH", sock["so_faddr"], sock["so_laddr"], sock["so_fport"], sock["so_lport"])
    else:
        for side in ("fhost", "lhost"):
            address = sock[side]
            out += struct.pack(">H", address["family"])
            if address["family"] == 2:
                out += struct.pack(">IH", address["addr"], address["port"])
    out += struct.pack(">BBBi", sock["so_iptos"], sock["so_emu"], sock["so_type"], sock["so_state"])
    for side in ("so_rcv", "so_snd"):
        sbuf = sock[side]
        out += struct.pack(">IIII", sbuf["sb_cc"], sbuf["sb_datalen"], sbuf["woff"], sbuf["roff"]) + sbuf["data"]
    return out + _tcpcb_bytes(sock["so_tcpcb"])


def expected_section(state: dict[str, Any], version: int) -> bytes:
    out = b"".join(b"\x2a" + _socket_bytes(sock, version) for sock in state["sockets"]) + b"\x00"
    if version >= 2:
        out += struct.pack(">H", state["ip_id"])
    if version >= 3:
        out += b"".join(struct.pack(">H", c["allocated"]) + c["macaddr"] for c in state["bootp_clients"])
    return out


# -- building states by hand ----------------------------------------------------------


def host_u32(dotted: str) -> int:
    """An IPv4 address as libslirp's writer sees it on a little-endian host."""
    return int.from_bytes(bytes(int(part) for part in dotted.split(".")), "little")


def host_u16(port: int) -> int:
    return int.from_bytes(port.to_bytes(2, "big"), "little")


def make_sbuf(size: int, *, woff: int = 0, roff: int = 0, cc: int = 0) -> dict[str, Any]:
    data = bytes(index & 0xFF for index in range(size))
    return {"sb_cc": cc, "sb_datalen": size, "woff": woff, "roff": roff, "data": data}


def make_socket(version: int = 4, *, rcv: int = 16, snd: int = 32) -> dict[str, Any]:
    """A guest-forward socket 10.0.2.15:40000 -> 10.0.2.100:4444 (QEMU accepts it, see below)."""
    sock: dict[str, Any] = {"so_urgc": 0, "so_faddr": 0, "so_laddr": 0, "so_fport": 0, "so_lport": 0}
    if version < 4:
        sock.update(
            so_faddr=host_u32("10.0.2.100"),
            so_laddr=host_u32("10.0.2.15"),
            so_fport=host_u16(4444),
            so_lport=host_u16(40000),
        )
    else:
        sock["fhost"] = {"family": 2, "addr": host_u32("10.0.2.100"), "port": host_u16(4444)}
        sock["lhost"] = {"family": 2, "addr": host_u32("10.0.2.15"), "port": host_u16(40000)}
    sock.update(so_iptos=0, so_emu=0, so_type=1, so_state=4)
    sock["so_rcv"] = make_sbuf(rcv, woff=3, roff=1, cc=2)
    sock["so_snd"] = make_sbuf(snd)
    tcpcb: dict[str, Any] = {name: 0 for name, _code in TCPCB_WIRE}
    tcpcb.update(t_timer=[0, 0, 0, 0], t_state=4, t_maxseg=1460)
    sock["so_tcpcb"] = tcpcb
    return sock


def make_state(version: int = 4, sockets: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"sockets": sockets or []}
    if version >= 2:
        state["ip_id"] = 0x1234
    if version >= 3:
        state["bootp_clients"] = [{"allocated": 0, "macaddr": bytes(6)} for _ in range(16)]
    return state


# -- 1. the two forms agree, and states round-trip ---------------------------------------


@pytest.mark.parametrize("release", RELEASES, ids=lambda r: r.name)
@SETTINGS
@given(data=st.data())
def test_phase1_and_phase2_agree_and_round_trip(release: Release, data: st.DataObject) -> None:
    state = data.draw(slirp.strategy(release), label="state")
    for pairing in PAIRING_NAMES:
        encoded = save_both(pairing, release, state)
        assert load_both(pairing, release, encoded, release.version_id) == state
    # The qemufile bytes are the layout written independently above.
    assert save_both("qemufile", release, state) == expected_section(state, release.version_id)


def test_each_release_knows_exactly_its_fields() -> None:
    names = {release.name: [f.name for f in release.description.fields] for release in RELEASES}
    assert names == {
        "v1": ["sockets"],
        "v2": ["sockets", "ip_id"],
        "v3": ["sockets", "ip_id", "bootp_clients"],
        "v4": ["sockets", "ip_id", "bootp_clients"],
    }
    for release in RELEASES:
        assert release.description.name == "slirp"
        assert (release.version_id, release.description.minimum_version_id) == (int(release.name[1:]), 1)
        socket_fields = [f.name for f in release.description.fields[0].type.element.fields]  # type: ignore[union-attr]
        assert ("fhost" in socket_fields) == (release.version_id == 4)
        assert socket_fields[1:5] == ["so_faddr", "so_laddr", "so_fport", "so_lport"]
    assert struct.calcsize(TCPCB_FORMAT) == 119
    tcpcb = [f.name for f in slirp.TCPCB.fields]
    assert tcpcb == [name for name, _code in TCPCB_WIRE]


EDGES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "no sockets": lambda s: s["sockets"] == [],
    "several sockets": lambda s: len(s["sockets"]) >= 3,
    "full sbuf": lambda s: any(x["so_rcv"]["sb_cc"] == x["so_rcv"]["sb_datalen"] for x in s["sockets"]),
    "4096-byte sbuf": lambda s: any(x["so_snd"]["sb_datalen"] == 4096 for x in s["sockets"]),
    "IPv6": lambda s: any(x["fhost"]["family"] == 10 for x in s["sockets"]),
    "IPv4": lambda s: any(x["lhost"]["family"] == 2 for x in s["sockets"]),
    "max ip_id": lambda s: s["ip_id"] == 0xFFFF,
    "max so_urgc": lambda s: any(x["so_urgc"] == 0xFFFFFFFF for x in s["sockets"]),
    "min so_state": lambda s: any(x["so_state"] == -(2**31) for x in s["sockets"]),
}


def test_strategy_reaches_the_edges() -> None:
    seen: set[str] = set()

    @settings(max_examples=60, phases=[Phase.generate], derandomize=True, database=None, deadline=None)
    @given(slirp.strategy(V4))
    def collect(state: dict[str, Any]) -> None:
        seen.update(label for label, predicate in EDGES.items() if predicate(state))

    collect()
    assert seen == set(EDGES)


# -- 2. sizes on the legacy wire ------------------------------------------------------------


def test_v4_sizes() -> None:
    description = V4.description
    empty = encode("qemufile", description, make_state())
    assert len(empty) == 1 + 130  # the terminator and the tail: ip_id + 16 bootp clients
    one = encode("qemufile", description, make_state(sockets=[make_socket(rcv=100, snd=7)]))
    assert len(one) - len(empty) == 1 + 178 + 100 + 7
    assert one[0] == 42 and one[1 + 178 + 107] == 0
    ipv6 = make_socket(rcv=1, snd=1)
    ipv6["fhost"] = ipv6["lhost"] = {"family": 10, "addr": 0, "port": 0}
    six = encode("qemufile", description, make_state(sockets=[ipv6]))
    assert len(six) - len(empty) == 1 + 178 - 2 * 6 + 2


@pytest.mark.parametrize(("version", "tail", "socket"), [(1, 0, 174), (2, 2, 174), (3, 130, 174), (4, 130, 178)])
def test_sizes_per_release(version: int, tail: int, socket: int) -> None:
    description = RELEASES[version - 1].description
    state = make_state(version, [make_socket(version, rcv=5, snd=9), make_socket(version, rcv=1, snd=1)])
    assert len(encode("qemufile", description, state)) == 2 * (1 + socket) + 16 + 1 + tail


# -- 3. real QEMU 7.2 captures -----------------------------------------------------------------


def _slirp_body_offset(data: bytes, section_id: int) -> int:
    header = b"\x04" + section_id.to_bytes(4, "big") + b"\x05slirp" + bytes(4) + (4).to_bytes(4, "big")
    assert data.count(header) == 1
    return data.index(header) + len(header)


@pytest.mark.parametrize("capture", CAPTURES)
def test_real_capture_decodes_and_reencodes(capture: str) -> None:
    data = (CORPORA / capture).read_bytes()
    stream = parse_qemu(data, devices.resolve_section)
    records = [r for r in stream.records if r.idstr == "slirp"]
    assert len(records) == 1
    record = records[0]
    assert record.device == "slirp" and record.version_id == 4 and record.state is not None
    assert record.state["sockets"] == []
    assert len(record.state["bootp_clients"]) == 16
    assert encode_qemu(stream, devices.resolve_section) == data
    # qemufile -> BER -> qemufile reproduces the capture.
    assert (
        encode_qemu(
            parse_ber(encode_ber(stream, devices.resolve_section), devices.resolve_section), devices.resolve_section
        )
        == data
    )

    # Change ip_id and one bootp client: exactly their bytes change.
    body = _slirp_body_offset(data, record.section_id)
    assert data[body] == 0  # no sockets: the list terminator
    record.state["ip_id"] = 0xA5C3
    record.state["bootp_clients"][5] = {"allocated": 1, "macaddr": b"\x52\x54\x00\x12\x34\x56"}
    expected = bytearray(data)
    expected[body + 1 : body + 3] = b"\xa5\xc3"
    expected[body + 3 + 5 * 8 : body + 3 + 6 * 8] = b"\x00\x01\x52\x54\x00\x12\x34\x56"
    changed = encode_qemu(stream, devices.resolve_section)
    assert changed == bytes(expected)
    assert changed != data
    reparsed = parse_qemu(changed, devices.resolve_section)
    assert [r.state for r in reparsed.records if r.idstr == "slirp"] == [record.state]


# -- 4. post-load checks and refusals ----------------------------------------------------------------


def _bad(mutate: Callable[[dict[str, Any]], None], sockets: int = 1) -> dict[str, Any]:
    state = make_state(sockets=[make_socket() for _ in range(sockets)])
    mutate(state)
    return state


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(state: dict[str, Any]) -> None:
        *parents, leaf = path.split("/")
        target: Any = state["sockets"]
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[leaf] = value

    return mutate


REJECTIONS = [
    ("woff==datalen", _set("0/so_rcv/woff", 16), "sockets[0]/so_rcv", "invalid sbuf offsets r/w=1/16 len=16"),
    ("roff>datalen", _set("0/so_snd/roff", 33), "sockets[0]/so_snd", "invalid sbuf offsets r/w=33/0 len=32"),
    ("second socket", _set("1/so_rcv/roff", 16), "sockets[1]/so_rcv", "invalid sbuf offsets r/w=16/3 len=16"),
    ("family 0", _set("0/fhost/family", 0), "sockets[0]/fhost/family", "invalid ss_family type 0"),
    ("family 0xffff", _set("0/lhost/family", 0xFFFF), "sockets[0]/lhost/family", "invalid ss_family type ffff"),
]


@pytest.mark.parametrize("pairing", PAIRING_NAMES)
@pytest.mark.parametrize(("mutate", "path", "message"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS])
def test_post_load_checks_reject(
    pairing: str, mutate: Callable[[dict[str, Any]], None], path: str, message: str
) -> None:
    state = _bad(mutate, sockets=2)
    encoded = encode(pairing, V4.description, state)  # the source does not check, like QEMU's
    with pytest.raises(InvalidState) as caught:
        load_both(pairing, V4, encoded, 4)
    assert caught.value.path == f"slirp/{path}"
    assert caught.value.message == message


@pytest.mark.parametrize("family", [2, 10, 23, 28])
def test_accepted_families(family: int) -> None:
    state = _bad(_set("0/fhost/family", family))
    if family != 2:
        state["sockets"][0]["fhost"].update(addr=0, port=0)
    for pairing in PAIRING_NAMES:
        assert load_both(pairing, V4, encode(pairing, V4.description, state), 4) == state


def test_rejection_in_a_stream_names_the_section_and_field() -> None:
    data = (CORPORA / CAPTURES[0]).read_bytes()
    stream = parse_qemu(data, devices.resolve_section)
    record = next(r for r in stream.records if r.idstr == "slirp")
    assert record.state is not None
    record.state["sockets"] = [_bad(_set("0/so_rcv/woff", 16))["sockets"][0]]
    with pytest.raises(InvalidState) as caught:
        parse_qemu(encode_qemu(stream, devices.resolve_section), devices.resolve_section)
    assert caught.value.path.endswith("slirp/sockets[0]/so_rcv")


@pytest.mark.parametrize("version", [0, 5, 0x100])
def test_stream_with_unsupported_slirp_version_is_refused(version: int) -> None:
    data = bytearray((CORPORA / CAPTURES[0]).read_bytes())
    stream = parse_qemu(bytes(data), devices.resolve_section)
    section_id = next(r.section_id for r in stream.records if r.idstr == "slirp")
    body = _slirp_body_offset(bytes(data), section_id)
    data[body - 4 : body] = version.to_bytes(4, "big")
    with pytest.raises(LoadRefused) as caught:
        parse_qemu(bytes(data), devices.resolve_section)
    assert caught.value.path.startswith("slirp")
    words = "incoming version_id 0 is too old" if version == 0 else f"unsupported version {version} for 'slirp'"
    assert words in caught.value.message


def test_socket_marker_other_than_42_is_malformed() -> None:
    data = (CORPORA / CAPTURES[0]).read_bytes()
    stream = parse_qemu(data, devices.resolve_section)
    record = next(r for r in stream.records if r.idstr == "slirp")
    assert record.state is not None
    record.state["sockets"] = [make_socket()]
    written = bytearray(encode_qemu(stream, devices.resolve_section))
    marker = _slirp_body_offset(bytes(written), record.section_id)
    assert written[marker] == 42
    assert parse_qemu(bytes(written), devices.resolve_section).records  # loads as written
    written[marker] = 0x2B
    with pytest.raises(MalformedInput) as caught:
        parse_qemu(bytes(written), devices.resolve_section)
    assert caught.value.offset == marker
    assert "0x2b" in caught.value.message
    assert "sockets" in caught.value.path


# -- 5. older releases ---------------------------------------------------------------------------


def _at_v4(state: dict[str, Any], version: int) -> dict[str, Any]:
    """What a v4 destination holds after loading ``state`` from a v``version`` source."""
    expected = copy.deepcopy(state)
    for sock in expected["sockets"]:
        # libslirp's pre_load: sockets from pre-v4 streams are IPv4.
        sock["fhost"] = {"family": 2, "addr": 0, "port": 0}
        sock["lhost"] = {"family": 2, "addr": 0, "port": 0}
    if version < 2:
        expected["ip_id"] = 0
    if version < 3:
        expected["bootp_clients"] = [{"allocated": 0, "macaddr": bytes(6)} for _ in range(16)]
    return expected


@pytest.mark.parametrize("source", RELEASES[:3], ids=lambda r: r.name)
@settings(SETTINGS, max_examples=8)
@given(data=st.data())
def test_v4_loads_older_streams(source: Release, data: st.DataObject) -> None:
    state = data.draw(slirp.strategy(source), label="state")
    for pairing in PAIRING_NAMES:
        encoded = encode(pairing, source.description, state)
        assert load_both(pairing, V4, encoded, source.version_id) == _at_v4(state, source.version_id)


@pytest.mark.parametrize("pairing", PAIRING_NAMES)
@pytest.mark.parametrize(
    ("source", "destination"),
    [(s, d) for s in RELEASES for d in RELEASES if d.version_id < s.version_id],
    ids=lambda r: r.name,
)
def test_older_release_refuses_newer_stream(pairing: str, source: Release, destination: Release) -> None:
    state = make_state(source.version_id, [make_socket(source.version_id)])
    encoded = encode(pairing, source.description, state)
    with pytest.raises(LoadRefused, match=f"unsupported version {source.version_id} for 'slirp'"):
        load_both(pairing, destination, encoded, source.version_id)
    assert decode(pairing, source.description, encoded) == state


# -- 6. the registry --------------------------------------------------------------------------------


def test_registry() -> None:
    assert devices.get("slirp") is slirp.DEVICE
    assert [r.name for r in slirp.DEVICE.releases] == ["v1", "v2", "v3", "v4"]
    codec = devices.resolve_section("slirp", 4)
    assert codec is not None and codec.device == "slirp"
    assert slirp.DEVICE.codec("slirp0", 4) is None
    # Out-of-range versions still reach the description, which refuses them.
    refusing = devices.resolve_section("slirp", 5)
    assert refusing is not None and refusing.device == "slirp"


# -- 7. real QEMU agrees -------------------------------------------------------------------------------

GUESTFWD_ARGS = (
    "-netdev",
    "user,id=n0,guestfwd=tcp:10.0.2.100:4444-null",
    "-device",
    "virtio-net-pci,netdev=n0",
)


def _qemu_load(tmp_path: Path, state: dict[str, Any], version: int = 4) -> Any:
    from migcompat.qemu import peer as qemu_peer

    require_release(qemu_peer.DEFAULT_RELEASE)
    stream = parse_qemu((CORPORA / "pc-virtio-net.bin").read_bytes(), devices.resolve_section)
    record = next(r for r in stream.records if r.idstr == "slirp")
    record.version_id = version
    record.state = state
    path = tmp_path / "stream.bin"
    path.write_bytes(encode_qemu(stream, devices.resolve_section))
    return qemu_peer.load(qemu_peer.MachineConfig("slirp-guestfwd", "pc", GUESTFWD_ARGS), path)


@pytest.mark.qemu
@pytest.mark.parametrize("version", [4, 1], ids=lambda v: f"v{v}")
def test_qemu_accepts_our_sockets(tmp_path: Path, version: int) -> None:
    sockets = [make_socket(version, rcv=4096, snd=1), make_socket(version, rcv=3000, snd=17)]
    if version == 4:
        sockets[1]["lhost"] = {"family": 10, "addr": 0, "port": 0}
    result = _qemu_load(tmp_path, make_state(version, sockets), version)
    assert result.accepted, result.message


@pytest.mark.qemu
def test_qemu_rejects_what_we_reject_with_the_same_words(tmp_path: Path) -> None:
    state = _bad(_set("0/so_rcv/woff", 16))
    with pytest.raises(InvalidState) as caught:
        decode("qemufile", V4.description, encode("qemufile", V4.description, state))
    result = _qemu_load(tmp_path, state)
    assert not result.accepted
    assert caught.value.message in result.message
