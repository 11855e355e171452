"""Against the real peer: streams we re-encode load in QEMU 7.2, and our devices
reject exactly the mutations QEMU rejects.

Runs only where QEMU 7.2 is installed (``.ci/run`` installs it); elsewhere
every test here is skipped with the command that installs it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from _support import needs_release

from migcompat import devices
from migcompat.errors import DecodeError
from migcompat.qemu import stream
from migcompat.qemu.peer import CONFIGS, load

CORPUS = Path(__file__).parent.parent / "corpora" / "qemu-7.2"
pytestmark = [
    pytest.mark.qemu,
    needs_release(),
]
NET = CONFIGS["pc-virtio-net"]
#: A guest forward (to a chardev, so libslirp registers a write callback) that
#: the inserted socket belongs to: libslirp only accepts a migrated socket whose
#: foreign address and port match such a forward.
NET_WITH_GUESTFWD = replace(
    NET,
    args=tuple(a.replace("user,id=n0", "user,id=n0,guestfwd=tcp:10.0.2.100:4444-null") for a in NET.args),
)


def _parsed() -> stream.MigrationStream:
    return stream.parse_qemu((CORPUS / "pc-virtio-net.bin").read_bytes(), devices.resolve_section)


def _section(parsed: stream.MigrationStream, device: str) -> stream.Record:
    return next(record for record in parsed.records if record.device == device)


def _encode(parsed: stream.MigrationStream) -> bytes:
    return stream.encode_qemu(parsed, devices.resolve_section)


def _edit(change: Callable[[stream.MigrationStream], None]) -> bytes:
    parsed = _parsed()
    change(parsed)
    return _encode(parsed)


def _ipv4_socket(family: int = 2) -> dict[str, Any]:
    """A guest-forward socket to 10.0.2.100:4444, as libslirp writes it on a
    little-endian host: address and port bytes reversed."""
    description = devices.get("slirp").newest.description
    socket_type = description.fields[0].type.element  # type: ignore[union-attr]
    socket = copy.deepcopy(socket_type.default())
    address = {"family": family, "addr": 0x6402000A, "port": 0x5C11} if family == 2 else {"family": family}
    socket["fhost"] = {"addr": 0, "port": 0, **address}
    socket["lhost"] = {"family": 2, "addr": 0x0F02000A, "port": 0x3930}
    for buffer in ("so_rcv", "so_snd"):
        socket[buffer] = {"sb_cc": 0, "sb_datalen": 8192, "woff": 0, "roff": 0, "data": bytes(8192)}
    socket["so_state"] = 0x004  # SS_ISFCONNECTED
    return socket


def _slirp(parsed: stream.MigrationStream) -> dict[str, Any]:
    state = _section(parsed, "slirp").state
    assert state is not None
    return state


def _virtio(parsed: stream.MigrationStream) -> dict[str, Any]:
    state = _section(parsed, "virtio").state
    assert state is not None
    return state


def _patch(data: bytes, needle: bytes, at: int, replacement: bytes) -> bytes:
    position = data.index(needle) + at
    return data[:position] + replacement + data[position + len(replacement) :]


def _slirp_header() -> bytes:
    return b"\x05slirp" + (0).to_bytes(4, "big") + (4).to_bytes(4, "big")


def _change_ours(parsed: stream.MigrationStream) -> None:
    slirp = _slirp(parsed)
    slirp["ip_id"] = 0x1234
    slirp["bootp_clients"][3] = {"allocated": 1, "macaddr": bytes.fromhex("525400abcdef")}
    virtio = _virtio(parsed)
    for index, queue in enumerate(virtio["queues"]):
        queue["vector"] = index


def test_a_decoded_changed_and_reencoded_capture_loads_in_qemu(tmp_path: Path) -> None:
    original = (CORPUS / "pc-virtio-net.bin").read_bytes()
    changed = _edit(_change_ours)
    assert changed != original and len(changed) == len(original)
    # The change is where we put it, and only there.
    assert stream.parse_qemu(changed, devices.resolve_section).records == _edited_records()
    path = tmp_path / "changed.bin"
    path.write_bytes(changed)
    result = load(NET, path)
    assert result.accepted, result.message


def _record(parsed: stream.MigrationStream, idstr: str) -> dict[str, Any]:
    state = next(record for record in parsed.records if record.idstr == idstr).state
    assert state is not None
    return state


@pytest.mark.parametrize("capture", ["pc-virtio-net", "pc-virtio-net-novectors"])
def test_values_written_into_vmdesc_decoded_sections_are_what_qemu_loads(capture: str, tmp_path: Path) -> None:
    """RAX and the CMOS bytes changed through the imported descriptions of ``cpu`` and
    ``mc146818rtc``; QEMU loads the stream, and the state it saves again holds them."""
    config = CONFIGS[capture]
    parsed = stream.parse_qemu((CORPUS / f"{capture}.bin").read_bytes(), devices.resolve_section)
    _record(parsed, "cpu")["env.regs"][0] = 0x1122334455667788
    cmos = bytearray(_record(parsed, "mc146818rtc")["cmos_data"])
    cmos[0x40:0x44] = b"MIGC"  # user CMOS bytes the RTC keeps as they are
    _record(parsed, "mc146818rtc")["cmos_data"] = bytes(cmos)
    path, resaved = tmp_path / "changed.bin", tmp_path / "resaved.bin"
    path.write_bytes(stream.encode_qemu(parsed, devices.resolve_section))
    result = load(config, path, resave=resaved)
    assert result.accepted, result.message
    again = stream.parse_qemu(resaved.read_bytes(), devices.resolve_section)
    assert _record(again, "cpu")["env.regs"][0] == 0x1122334455667788
    assert _record(again, "mc146818rtc")["cmos_data"][0x40:0x44] == b"MIGC"


def _edited_records() -> list[stream.Record]:
    parsed = _parsed()
    _change_ours(parsed)
    return parsed.records


#: Mutations of the pc-virtio-net capture: name -> (stream bytes, QEMU config).
MUTATIONS: dict[str, Callable[[], bytes]] = {
    "unchanged": lambda: _encode(_parsed()),
    "queue_count_1025": lambda: _edit(lambda p: _virtio(p).update(queues=_virtio(p)["queues"][:1] * 1025)),
    "queue_count_1024": lambda: _edit(lambda p: _virtio(p).update(queues=_virtio(p)["queues"][:1] * 1024)),
    "queue_sel_1024": lambda: _edit(lambda p: _virtio(p).update(queue_sel=1024)),
    "queue_sel_1023": lambda: _edit(lambda p: _virtio(p).update(queue_sel=1023)),
    "queue_vector_beyond_msix": lambda: _edit(lambda p: _virtio(p)["queues"][0].update(vector=4)),
    "desc_0_with_last_avail_idx": lambda: _edit(lambda p: _virtio(p)["queues"][0].update(last_avail_idx=5)),
    "config_len_longer": lambda: _edit(lambda p: _virtio(p).update(config_len=12, config=bytes(12))),
    "config_len_shorter": lambda: _edit(lambda p: _virtio(p).update(config_len=4, config=bytes(4))),
    "slirp_version_42": lambda: _patch(_encode(_parsed()), _slirp_header(), 13, (42).to_bytes(4, "big")),
    "slirp_version_5": lambda: _patch(_encode(_parsed()), _slirp_header(), 13, (5).to_bytes(4, "big")),
    "slirp_marker_instead_of_end": lambda: _patch(_encode(_parsed()), _slirp_header(), 14, b"\x2a"),
    "slirp_socket_ipv4": lambda: _edit(lambda p: _slirp(p)["sockets"].append(_ipv4_socket())),
    "slirp_socket_family_7": lambda: _edit(lambda p: _slirp(p)["sockets"].append(_ipv4_socket(family=7))),
}


def _ours_accepts(data: bytes) -> tuple[bool, str]:
    try:
        stream.parse_qemu(data, devices.resolve_section)
    except DecodeError as error:
        return False, str(error)
    return True, ""


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_our_devices_reject_exactly_what_qemu_rejects(name: str, tmp_path: Path) -> None:
    data = MUTATIONS[name]()
    path = tmp_path / f"{name}.bin"
    path.write_bytes(data)
    qemu = load(NET_WITH_GUESTFWD, path)
    ours, why = _ours_accepts(data)
    assert ours == qemu.accepted, f"QEMU accepted={qemu.accepted} ({qemu.message!r}); we accepted={ours} ({why})"
