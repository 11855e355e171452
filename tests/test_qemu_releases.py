"""The registry of real QEMU releases: built-in and user-added releases, what each
binary says it is, installing a missing root, and the commands that show them.

Fake binaries (shell scripts answering like QEMU) and a scratch cache directory
cover the registry's logic everywhere; the installed real releases are asked
for their version and machine types where they are installed.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from _support import require_release, run_cli

from migcompat.cli import EXIT_OK, EXIT_USAGE
from migcompat.qemu import releases
from migcompat.qemu.releases import QemuRelease, ReleaseError

MACHINE_HELP = """Supported machines are:
microvm              microvm (i386)
pc                   Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-9.9)
pc-i440fx-9.9        Standard PC (i440FX + PIIX, 1996) (default)
pc-i440fx-9.8        Standard PC (i440FX + PIIX, 1996)
q35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-9.9)
pc-q35-9.9           Standard PC (Q35 + ICH9, 2009)
none                 empty machine
"""


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("MIGCOMPAT_CACHE", str(root))
    return root


def fake_binary(directory: Path, version: str = "9.9.1", body: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    binary = directory / f"qemu-{version}"
    help_text = MACHINE_HELP.replace("\n", "\\n")
    binary.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = --version ] && echo "QEMU emulator version {version} (fake)" && exit 0\n'
        f'[ "$1" = -machine ] && printf "{help_text}" && exit 0\n'
        f"{body}\n"
    )
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    return binary


def test_the_built_in_releases_are_5_2_7_2_and_10_0_with_their_origins(cache: Path) -> None:
    known = releases.registry()
    assert list(known)[:3] == ["5.2", "7.2", "10.0"] == list(releases.BUILTIN)
    assert known["5.2"].root == cache / "qemu" / "bullseye" and known["5.2"].suite == "bullseye"
    assert known["10.0"].root == cache / "qemu" / "trixie" and known["10.0"].suite == "trixie"
    assert known["5.2"].argv("-S") == ["chroot", str(cache / "qemu" / "bullseye"), "qemu-system-x86_64", "-S"]
    for release in known.values():
        assert release.install_hint() == f"migcompat qemu install --release {release.name}"


def test_a_user_build_is_added_asked_for_its_version_and_machines_and_removed(cache: Path, tmp_path: Path) -> None:
    binary = fake_binary(tmp_path / "bin")
    added = releases.add_release("mine-9.9", str(binary))
    assert added.version() == "9.9.1"
    found = releases.find("mine-9.9")
    assert found.binary == str(binary) and found.root is None
    assert found.machine_types() == ("microvm", "pc", "pc-i440fx-9.9", "pc-i440fx-9.8", "q35", "pc-q35-9.9")
    assert found.resolve_machine("pc") == "pc-i440fx-9.9" and found.resolve_machine("q35") == "pc-q35-9.9"
    assert found.resolve_machine("pc-i440fx-9.8") == "pc-i440fx-9.8"
    assert found in releases.installed()
    releases.remove_release("mine-9.9")
    with pytest.raises(ReleaseError, match=r"unknown QEMU release 'mine-9\.9'"):
        releases.find("mine-9.9")
    with pytest.raises(ReleaseError, match="not a release added with migcompat qemu add"):
        releases.remove_release("5.2")


def test_installed_releases_are_sorted_by_the_version_their_binary_reports(cache: Path, tmp_path: Path) -> None:
    releases.add_release("b", str(fake_binary(tmp_path / "b", "10.1.0")))
    releases.add_release("a", str(fake_binary(tmp_path / "a", "9.2.0")))
    names = [release.name for release in releases.installed() if release.name in ("a", "b")]
    assert names == ["a", "b"]


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("bad name!", "", "use letters, digits"),
        ("broken", "echo 'cannot open shared object' >&2; exit 3", "--version: exit 3: cannot open shared object"),
        ("not-qemu", "echo hello", "no version in 'hello'"),
    ],
)
def test_a_release_that_does_not_run_is_not_added(
    cache: Path, tmp_path: Path, name: str, body: str, message: str
) -> None:
    binary = tmp_path / "qemu"
    binary.write_text(f"#!/bin/sh\n{body}\n")
    binary.chmod(0o755)
    with pytest.raises(ReleaseError, match=message):
        releases.add_release(name, str(binary))
    assert not (cache / "qemu" / "releases.toml").exists()


def test_a_hand_broken_release_file_is_a_clear_error(cache: Path) -> None:
    path = cache / "qemu" / "releases.toml"
    path.parent.mkdir(parents=True)
    path.write_text('[release.x]\nroot = "/"\n')
    with pytest.raises(ReleaseError, match="release 'x' needs a binary"):
        releases.registry()
    path.write_text("[release.x\n")
    with pytest.raises(ReleaseError, match="not a release file"):
        releases.registry()
    code, _, err = run_cli("qemu", "releases")
    assert code == EXIT_USAGE and "not a release file" in err and "Traceback" not in err


def test_a_root_release_names_its_scratch_files_by_their_path_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    release = QemuRelease("r", root=root)
    with release.scratch() as scratch:
        assert scratch.parent == root / "tmp"
        inside = release.inside(scratch / "qmp.sock")
        assert inside.startswith(f"/tmp/{releases.scratch_prefix()}") and inside.endswith("/qmp.sock")
    assert list((root / "tmp").iterdir()) == []


def _fake_tool(directory: Path, name: str, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tool = directory / name
    tool.write_text(f"#!/bin/sh\n{body}\n")
    tool.chmod(0o755)
    return tool


def test_install_builds_the_root_in_a_scratch_directory_and_moves_it_into_place(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fake mmdebstrap that "bootstraps" a root holding a fake QEMU at the suite's path.
    binary = fake_binary(tmp_path / "src", "5.2.0")
    tools = tmp_path / "tools"
    _fake_tool(tools, "mmdebstrap", f'eval dir=\\${{$#}}; mkdir -p "$dir/usr/bin"; cp {binary} "$dir/usr/bin/qemu"')
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
    monkeypatch.setattr(releases.os, "geteuid", lambda: 0)
    # Run the "root" release's binary directly: the fake root has no shell for chroot.
    release = QemuRelease("5.2", binary="qemu", root=cache / "qemu" / "bullseye", suite="bullseye")
    monkeypatch.setattr(QemuRelease, "argv", lambda self, *args: [str(self.root / "usr/bin/qemu"), *args])
    assert not release.is_installed()
    assert releases.install(release) is True
    assert release.is_installed() and release.version() == "5.2.0"
    assert sorted(p.name for p in (cache / "qemu").iterdir()) == ["bullseye"]
    assert releases.install(release) is False  # already there: nothing done


def test_a_failed_install_leaves_nothing_behind(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tools = tmp_path / "tools"
    _fake_tool(tools, "mmdebstrap", 'eval dir=\\${$#}; mkdir -p "$dir/usr"; echo "E: no such suite" >&2; exit 1')
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
    monkeypatch.setattr(releases.os, "geteuid", lambda: 0)
    release = releases.registry()["10.0"]
    with pytest.raises(ReleaseError, match="mmdebstrap trixie failed \\(1\\): E: no such suite"):
        releases.install(release)
    assert list((cache / "qemu").iterdir()) == []


def test_install_without_mmdebstrap_or_root_says_what_is_missing(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    release = releases.registry()["5.2"]
    with pytest.raises(ReleaseError, match="mmdebstrap not found"):
        releases.install(release)
    _fake_tool(tmp_path, "mmdebstrap", "exit 0")
    monkeypatch.setattr(releases.os, "geteuid", lambda: 1000)
    with pytest.raises(ReleaseError, match="needs root"):
        releases.install(release)
    code, _, err = run_cli("qemu", "install", "--release", "no-such")
    assert code == EXIT_USAGE and "unknown QEMU release 'no-such'" in err


def test_the_releases_command_lists_installed_releases_and_how_to_install_the_rest(cache: Path, tmp_path: Path) -> None:
    code, out, _ = run_cli("qemu", "add", "mine", "--binary", str(fake_binary(tmp_path / "bin")))
    assert code == EXIT_OK and "added release mine: QEMU 9.9.1" in out
    code, out, _ = run_cli("qemu", "releases", "--json", "--all")
    assert code == EXIT_OK
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["mine"]["version"] == "9.9.1" and "pc-q35-9.9" in rows["mine"]["machines"]
    assert rows["5.2"] == rows["5.2"] | {"installed": False, "install": "migcompat qemu install --release 5.2"}
    code, out, _ = run_cli("qemu", "releases")
    assert code == EXIT_OK and "mine" in out and "5.2" not in out.split()


@pytest.mark.qemu
@pytest.mark.parametrize("name", releases.BUILTIN)
def test_each_installed_release_is_the_version_it_is_named_for(name: str) -> None:
    require_release(name)
    release = releases.find(name)
    assert release.version().startswith(f"{name}.")
    machines = release.machine_types()
    assert f"pc-i440fx-{name}" in machines and f"pc-q35-{name}" in machines and "microvm" in machines
    assert release.resolve_machine("pc") == f"pc-i440fx-{name}"
