"""The command line as a user meets it: real captures, bad input, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _support import run_cli

from migcompat.cli import EXIT_USAGE

CORPUS = Path(__file__).parent.parent / "corpora" / "qemu-7.2"
CAPTURES = ["pc-virtio-net", "microvm-virtio-net", "pc-virtio-blk", "pc-virtio-net-novectors", "pc-virtio-net-5vectors"]


@pytest.mark.parametrize("capture", CAPTURES)
def test_inspect_shows_device_fields_of_real_captures(capture: str) -> None:
    code, out, _ = run_cli("inspect", str(CORPUS / f"{capture}.bin"))
    assert code == 0
    assert "qemu stream" in out
    assert ": virtio" in out and "last_avail_idx:" in out and "queue_sel:" in out
    if "net" in capture:
        assert "slirp instance 0 v4: slirp" in out and "bootp_clients:" in out and "ip_id: 0" in out
    assert "opaque" in out  # devices we do not model are listed with their size


def test_inspect_json_is_machine_readable() -> None:
    code, out, _ = run_cli("inspect", "--json", str(CORPUS / "pc-virtio-net.bin"))
    assert code == 0
    document = json.loads(out)
    slirp = next(s for s in document["sections"] if s["idstr"] == "slirp")
    assert slirp["device"] == "slirp" and len(slirp["state"]["bootp_clients"]) == 16
    ram = [s for s in document["sections"] if s["idstr"] == "ram"]
    assert [s["type"] for s in ram] == ["START", "PART", "END"]
    assert sum(s["opaque_bytes"] or 0 for s in document["sections"]) > 400_000


@pytest.mark.parametrize("capture", CAPTURES)
def test_convert_round_trip_reproduces_the_capture(capture: str, tmp_path: Path) -> None:
    ber, back = tmp_path / "s.ber", tmp_path / "s.bin"
    assert run_cli("convert", str(CORPUS / f"{capture}.bin"), str(ber), "--to", "ber")[0] == 0
    assert ber.read_bytes()[:1] == b"\x30"
    code, out, _ = run_cli("inspect", str(ber))
    assert code == 0 and out.startswith("ber stream")
    assert run_cli("convert", str(ber), str(back), "--to", "qemu")[0] == 0
    assert back.read_bytes() == (CORPUS / f"{capture}.bin").read_bytes()


def _corrupt(tmp_path: Path, name: str, edit: object) -> Path:
    data = (CORPUS / "pc-virtio-net.bin").read_bytes()
    path = tmp_path / f"{name}.bin"
    path.write_bytes(edit(data))  # type: ignore[operator]
    return path


SLIRP = b"\x05slirp" + bytes(4) + (4).to_bytes(4, "big")
BAD_STREAMS = {
    "truncated": (lambda d: d[: len(d) // 2], "input ends"),
    "wrong_marker": (lambda d: d.replace(SLIRP + b"\x00", SLIRP + b"\x07", 1), "slirp"),
    "impossible_count": (
        lambda d: d.replace(
            b"\x00\x00\x00\x08" + bytes(8) + b"\x00\x00\x00\x03",
            b"\x00\x00\x00\x08" + bytes(8) + b"\x00\x00\xff\xff",
            1,
        ),
        "Invalid number of virtqueues",
    ),
    "unknown_section_type": (lambda d: d[:8] + b"\x09" + d[9:], "configuration section missing"),
    "not_a_stream": (lambda d: b"hello world", "unrecognised stream"),
}


@pytest.mark.parametrize("name", list(BAD_STREAMS))
def test_bad_streams_exit_2_with_one_line_naming_where(name: str, tmp_path: Path) -> None:
    edit, message = BAD_STREAMS[name]
    path = _corrupt(tmp_path, name, edit)
    target = tmp_path / "out.ber"
    for args in (("inspect", str(path)), ("convert", str(path), str(target), "--to", "ber")):
        code, _out, err = run_cli(*args)
        assert code == EXIT_USAGE
        assert message in err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        if name != "not_a_stream":
            assert "byte offset" in err
        assert not target.exists()  # nothing written on failure
        assert not list(tmp_path.glob(".out.ber.*"))


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run_cli("inspect", str(tmp_path / "missing.bin"))[0] == EXIT_USAGE
    assert run_cli("inspect", "--format", "xml", str(CORPUS / "pc-virtio-net.bin"))[0] == EXIT_USAGE
    assert run_cli("convert", str(CORPUS / "pc-virtio-net.bin"), str(tmp_path / "x"))[0] == EXIT_USAGE  # no --to
    assert run_cli("no-such-command")[0] == EXIT_USAGE


def test_devices_lists_every_release() -> None:
    code, out, _ = run_cli("devices", "--json")
    assert code == 0
    listing = {entry["device"]: [r["name"] for r in entry["releases"]] for entry in json.loads(out)}
    assert listing["slirp"] == ["v1", "v2", "v3", "v4"]
    assert listing["virtio"][-3:] == ["qemu-5.2", "qemu-7.2", "qemu-10.0"] and len(listing["virtio"]) >= 6
    machine_types = {
        entry["device"]: {r["name"]: r["machines"] for r in entry["releases"]} for entry in json.loads(out)
    }
    assert machine_types["virtio"]["qemu-10.0"] == ["pc-i440fx-10.0", "pc-i440fx-5.2", "pc-i440fx-7.2"]
    assert machine_types["virtio"]["qemu-2.7"] == ["pc-i440fx-2.7"]
    assert machine_types["slirp"]["v4"] == []


def test_console_script_runs_without_traceback(tmp_path: Path) -> None:
    """The installed entry point, as a user runs it, on a corrupt file."""
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"QEVM\x00\x00\x00\x03\x07")
    result = subprocess.run(
        [sys.executable, "-m", "migcompat.cli", "inspect", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode == EXIT_USAGE
    assert result.stderr.startswith("migcompat: error:") and "Traceback" not in result.stderr


def test_convert_output_gets_the_umask_mode_not_a_private_one(tmp_path: Path) -> None:
    target = tmp_path / "s.ber"
    assert run_cli("convert", str(CORPUS / "pc-virtio-blk.bin"), str(target), "--to", "ber")[0] == 0
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
