"""``migcompat qemu``: capture, load and dump-vmstate through the CLI, against the real
QEMU where it is installed, and against a QEMU that is missing or hangs everywhere.

The real-QEMU tests need QEMU 7.2 (``.ci/run`` installs it) and are skipped
without it; the others add a fake binary as a release of the user's own (in a
scratch cache directory), or take every QEMU off PATH.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

import pytest
from _support import REAL_CAPTURES, Capture, needs_release, require_release
from click.testing import CliRunner, Result

from migcompat.cli import EXIT_INCOMPATIBLE, EXIT_OK, EXIT_USAGE, cli
from migcompat.qemu import releases
from migcompat.qemu.peer import CONFIGS

CORPUS = Path(__file__).parent.parent / "corpora" / "qemu-7.2"
needs_qemu = needs_release("7.2")


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["qemu", *args], env=env)


@pytest.fixture
def scratch_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every temporary directory the peer makes goes here, so a test can see none is left."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def _fake_qemu(directory: Path, body: str) -> dict[str, str]:
    """Release ``fake``: a binary that answers ``--version`` like QEMU and runs ``body`` (sh)
    otherwise, added with ``migcompat qemu add`` to a scratch cache directory."""
    directory.mkdir()
    binary = directory / "fake-qemu"
    version = '[ "$1" = --version ] && echo "QEMU emulator version 9.9.1" && exit 0'
    binary.write_text(f"#!/bin/sh\n{version}\n{body}\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    env = {"MIGCOMPAT_CACHE": str(directory / "cache")}
    added = run("add", "fake", "--binary", str(binary), env=env)
    assert added.exit_code == EXIT_OK, added.output
    return env


def test_configs_lists_every_config_with_its_command_line() -> None:
    result = run("configs", "--json")
    assert result.exit_code == EXIT_OK
    listed = json.loads(result.output)
    assert list(listed) == list(CONFIGS)
    for name, config in CONFIGS.items():
        assert listed[name][-len(config.args) :] == list(config.args)
        assert "-S" in listed[name] and "-nodefaults" in listed[name]


def test_unknown_config_is_a_usage_error_naming_the_known_ones(tmp_path: Path) -> None:
    result = run("capture", "pc-nope", str(tmp_path / "out.bin"))
    assert result.exit_code == EXIT_USAGE
    assert "unknown machine config 'pc-nope'" in result.output and "pc-virtio-net" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out.bin").exists()


def test_missing_qemu_says_how_to_install_it(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "MIGCOMPAT_CACHE": str(tmp_path / "cache")}
    result = run("capture", "pc-virtio-net", str(tmp_path / "out.bin"), env=env)
    assert result.exit_code == EXIT_USAGE
    assert "QEMU release 7.2 is not installed" in result.output
    assert "migcompat qemu install --release 7.2" in result.output
    assert "Traceback" not in result.output


def test_a_qemu_that_hangs_is_killed_and_leaves_nothing_behind(tmp_path: Path, scratch_root: Path) -> None:
    pid_file = tmp_path / "pid"
    env = _fake_qemu(tmp_path / "bin", f"echo $$ > {pid_file}\nexec sleep 600")
    out = tmp_path / "out.bin"
    result = run("capture", "pc-virtio-net", str(out), "--release", "fake", "--timeout", "1", env=env)
    assert result.exit_code == EXIT_USAGE
    assert "timed out waiting for QEMU to connect to QMP" in result.output and "Traceback" not in result.output
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # ended and reaped
    assert not out.exists() and list(scratch_root.iterdir()) == []


def test_a_qemu_that_exits_at_once_is_reported_with_its_stderr(tmp_path: Path, scratch_root: Path) -> None:
    env = _fake_qemu(tmp_path / "bin", "echo 'qemu-system-x86_64: -device virtio-net-pci: no such bus' >&2\nexit 1")
    result = run("load", "pc-virtio-net", str(CORPUS / "pc-virtio-net.bin"), "--release", "fake", env=env)
    assert result.exit_code == EXIT_USAGE
    assert "exited before its QMP socket was ready" in result.output and "no such bus" in result.output
    assert list(scratch_root.iterdir()) == []


@pytest.mark.qemu
@pytest.mark.parametrize("capture", [Capture.of(path) for path in REAL_CAPTURES], ids=lambda capture: capture.label)
def test_capture_reproduces_the_committed_stream_and_qemu_loads_it_back(
    capture: Capture, tmp_path: Path, scratch_root: Path
) -> None:
    require_release(capture.release)
    out = tmp_path / capture.path.name
    machine = ("--machine", capture.machine) if capture.machine else ()
    captured = run("capture", capture.config, str(out), "--release", capture.release, *machine)
    assert captured.exit_code == EXIT_OK, captured.output
    assert out.read_bytes() == capture.path.read_bytes()
    loaded = run("load", capture.config, str(out), "--release", capture.release, *machine)
    assert loaded.exit_code == EXIT_OK and loaded.output.startswith("accepted:")
    assert list(scratch_root.iterdir()) == []
    root = releases.find(capture.release).root
    if root is not None:  # a chroot release's scratch directories are inside its root, named by process
        assert list((root / "tmp").glob(f"{releases.scratch_prefix()}*")) == []


@needs_qemu
@pytest.mark.qemu
def test_load_of_a_truncated_stream_exits_1_with_qemus_reason(tmp_path: Path) -> None:
    cut = tmp_path / "cut.bin"
    cut.write_bytes((CORPUS / "pc-virtio-net.bin").read_bytes()[:1000])
    result = run("load", "pc-virtio-net", str(cut))
    assert result.exit_code == EXIT_INCOMPATIBLE
    assert result.output.startswith("rejected:") and "load of migration failed" in result.output


@pytest.mark.qemu
@pytest.mark.parametrize("release", releases.BUILTIN)
def test_dump_vmstate_reproduces_the_committed_dump(release: str, tmp_path: Path, scratch_root: Path) -> None:
    require_release(release)
    out = tmp_path / "vmstate-pc.json"
    result = run("dump-vmstate", str(out), "--release", release)
    assert result.exit_code == EXIT_OK, result.output
    assert out.read_bytes() == (CORPUS.parent / f"qemu-{release}" / "vmstate-pc.json").read_bytes()
    assert list(scratch_root.iterdir()) == []


@needs_qemu
@pytest.mark.qemu
def test_dump_vmstate_of_an_unknown_machine_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "vmstate.json"
    result = run("dump-vmstate", str(out), "--machine", "no-such-machine")
    assert result.exit_code == EXIT_USAGE and "-dump-vmstate failed" in result.output
    assert not out.exists()
