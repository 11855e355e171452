"""The real QEMU releases migcompat runs as migration peers, and how each is started.

Why: the model is checked against real releases, and a check is only
repeatable when every run starts the same binary the same way. Each release is
one entry here: its name, how its ``qemu-system-x86_64`` is started (the host's
binary, or one inside a root directory run through ``chroot``), and where it
comes from. The machine types a release knows are asked from the binary itself
(``-machine help``), never written down by hand.

The built-in releases are the three the project is checked against: QEMU 7.2
(the host's Debian bookworm package when the host has it, else a bookworm root),
and 5.2 and 10.0 from Debian bullseye and trixie roots that ``mmdebstrap``
builds under the cache directory (``$MIGCOMPAT_CACHE`` or
``~/.cache/migcompat``, in ``qemu/<suite>``). A user adds a build of their own
with ``migcompat qemu add NAME --binary PATH [--root DIR]``, kept in
``qemu/releases.toml`` of the same cache directory.

A root-run release sees only its root: every path handed to it (QMP socket,
stream file, disk image) lives under ``ROOT/tmp`` and is named to QEMU by its
path inside the root (:meth:`QemuRelease.inside`).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from migcompat.errors import MigcompatError

__all__ = [
    "BUILTIN",
    "QemuRelease",
    "ReleaseError",
    "add_release",
    "cache_dir",
    "find",
    "install",
    "installed",
    "registry",
    "remove_release",
    "scratch_prefix",
]

#: The binary every release is started as (on the host, or inside its root).
BINARY = "qemu-system-x86_64"

#: Seconds a ``--version`` or ``-machine help`` query may take before the release is called broken.
QUERY_TIMEOUT = 30.0

#: Seconds ``mmdebstrap`` may take to build a root (it takes about 20 s with a near mirror).
INSTALL_TIMEOUT = 1800.0

_VERSION = re.compile(r"QEMU emulator version (\d+)\.(\d+)(?:\.(\d+))?")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,39}$")


class ReleaseError(MigcompatError, RuntimeError):
    """A release is unknown, not installed, broken, or could not be installed."""


@dataclass(frozen=True)
class QemuRelease:
    """One QEMU release: how to start it and where it comes from.

    ``root`` is None for a binary on the host; otherwise QEMU runs as ``chroot
    ROOT BINARY`` and ``binary`` is its path inside the root. ``suite`` names the
    Debian suite a built-in root is bootstrapped from (None: not installable here).
    ``expected`` is the ``major.minor`` the binary must report: a host binary of
    another version is not this release. ``package`` is the host package that
    provides a host binary (installed with apt-get).
    """

    name: str
    binary: str = BINARY
    root: Path | None = None
    suite: str | None = None
    expected: str | None = None
    origin: str = ""
    package: str | None = None

    # -- starting it ---------------------------------------------------------------

    def argv(self, *args: str) -> list[str]:
        """The command line that runs this release's QEMU with ``args``."""
        if self.root is None:
            return [self.binary, *args]
        return ["chroot", str(self.root), self.binary, *args]

    @contextmanager
    def scratch(self) -> Iterator[Path]:
        """A fresh scratch directory this release's QEMU can see (named by our process
        id, so a leftover says whose it is); removed afterwards."""
        parent = None if self.root is None else self.root / "tmp"
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=scratch_prefix(), dir=parent))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def inside(self, path: Path) -> str:
        """``path`` (a host path under the scratch directory) as this release's QEMU names it."""
        if self.root is None:
            return str(path)
        return "/" + str(Path(path).resolve().relative_to(self.root.resolve()))

    # -- what it is ----------------------------------------------------------------

    def is_installed(self) -> bool:
        """True when the binary is there to run (it may still be broken: see :meth:`version`)."""
        if self.root is None:
            return shutil.which(self.binary) is not None and (self.expected is None or self._host_matches())
        return (self.root / self.binary.lstrip("/")).exists() or _found_in_root(self.root, self.binary)

    def _host_matches(self) -> bool:
        try:
            return self.version().startswith(f"{self.expected}.")
        except ReleaseError:
            return False

    def version(self) -> str:
        """The version the binary reports (``7.2.22``); :class:`ReleaseError` when it does not run."""
        return _version(tuple(self.argv("--version")))

    def machine_types(self) -> tuple[str, ...]:
        """Every machine type the binary knows, aliases (``pc``, ``q35``) included."""
        return _machine_types(tuple(self.argv("-machine", "help")))

    def resolve_machine(self, machine: str) -> str:
        """The versioned machine type ``machine`` stands for (``pc`` -> ``pc-i440fx-7.2``)."""
        return _aliases(tuple(self.argv("-machine", "help"))).get(machine, machine)

    def install_hint(self) -> str:
        """The command that installs this release."""
        if self.suite is not None or self.package is not None:
            return f"migcompat qemu install --release {self.name}"
        if self.root is None:
            return f"install {self.binary} (Debian: apt-get install qemu-system-x86)"
        return f"build {self.binary} inside {self.root}"


def scratch_prefix() -> str:
    """How this process's scratch directories start: short (a unix socket path has
    at most 107 bytes) and with our process id, so a leftover says whose it is."""
    return f"mc{os.getpid()}-"


def _run_query(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, timeout=QUERY_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ReleaseError(f"{' '.join(argv)}: no answer in {QUERY_TIMEOUT:.0f} s") from None
    except OSError as error:
        raise ReleaseError(f"{' '.join(argv)}: {error.strerror}") from None
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        raise ReleaseError(f"{' '.join(argv)}: exit {done.returncode}: {detail[-1] if detail else 'no message'}")
    return done.stdout.decode(errors="replace")


@functools.cache
def _version(argv: tuple[str, ...]) -> str:
    text = _run_query(list(argv))
    found = _VERSION.search(text)
    if found is None:
        raise ReleaseError(f"{' '.join(argv)}: no version in {text.strip()[:80]!r}")
    return ".".join(part for part in found.groups() if part is not None)


@functools.cache
def _machine_listing(argv: tuple[str, ...]) -> tuple[tuple[str, str | None], ...]:
    """(machine type, the versioned type it is an alias of) for every line of ``-machine help``."""
    rows = []
    for line in _run_query(list(argv)).splitlines()[1:]:
        name, _, rest = line.strip().partition(" ")
        if not name or name == "none":
            continue
        alias = re.search(r"\(alias of ([^)]+)\)", rest)
        rows.append((name, alias.group(1) if alias else None))
    if not rows:
        raise ReleaseError(f"{' '.join(argv)}: lists no machine types")
    return tuple(rows)


def _machine_types(argv: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name for name, _ in _machine_listing(argv))


def _aliases(argv: tuple[str, ...]) -> dict[str, str]:
    return {name: target for name, target in _machine_listing(argv) if target is not None}


def _found_in_root(root: Path, binary: str) -> bool:
    if "/" in binary:
        return False
    return any((root / folder.lstrip("/") / binary).exists() for folder in ("/usr/bin", "/usr/local/bin", "/bin"))


# -- the registry ----------------------------------------------------------------------


def cache_dir() -> Path:
    """Where release roots and the user's release file live (outside any checkout)."""
    configured = os.environ.get("MIGCOMPAT_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "migcompat"


def _roots() -> Path:
    return cache_dir() / "qemu"


def _user_file() -> Path:
    return _roots() / "releases.toml"


def _builtin() -> tuple[QemuRelease, ...]:
    roots = _roots()
    host = QemuRelease(
        "7.2", expected="7.2", origin="host package qemu-system-x86 (Debian bookworm)", package="qemu-system-x86"
    )
    bookworm = QemuRelease("7.2", root=roots / "bookworm", suite="bookworm", origin="Debian bookworm root (mmdebstrap)")
    return (
        QemuRelease("5.2", root=roots / "bullseye", suite="bullseye", origin="Debian bullseye root (mmdebstrap)"),
        host if host.is_installed() or (not bookworm.is_installed() and _host_can_install()) else bookworm,
        QemuRelease("10.0", root=roots / "trixie", suite="trixie", origin="Debian trixie root (mmdebstrap)"),
    )


def _host_can_install() -> bool:
    """A Debian bookworm host installs 7.2 from its own package; any other host bootstraps a root."""
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return False
    return "VERSION_CODENAME=bookworm" in text


#: Names of the built-in releases, oldest first.
BUILTIN = ("5.2", "7.2", "10.0")


def _user_releases() -> tuple[QemuRelease, ...]:
    path = _user_file()
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return ()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ReleaseError(f"{path}: not a release file: {error}") from None
    out = []
    for name, entry in document.get("release", {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("binary"), str):
            raise ReleaseError(f"{path}: release {name!r} needs a binary")
        root = entry.get("root")
        if root is not None and not isinstance(root, str):
            raise ReleaseError(f"{path}: release {name!r}: root must be a path")
        out.append(
            QemuRelease(name, entry["binary"], Path(root) if root else None, origin=f"added by the user ({path})")
        )
    return tuple(out)


def registry() -> dict[str, QemuRelease]:
    """Every release by name: the built-in ones, then the user's (which may replace one)."""
    out = {release.name: release for release in _builtin()}
    out.update({release.name: release for release in _user_releases()})
    return out


def find(name: str) -> QemuRelease:
    """The release called ``name``; :class:`ReleaseError` naming the known ones when there is none."""
    known = registry()
    if name not in known:
        raise ReleaseError(f"unknown QEMU release {name!r} (known: {', '.join(known)})")
    return known[name]


def installed() -> list[QemuRelease]:
    """The releases that are installed, oldest version first (a broken one sorts last)."""
    present = [release for release in registry().values() if release.is_installed()]
    return sorted(present, key=_version_key)


def _version_key(release: QemuRelease) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in release.version().split("."))
    except ReleaseError:
        return (1 << 30,)


def add_release(name: str, binary: str, root: Path | None = None) -> QemuRelease:
    """Record a user's own QEMU build as release ``name`` and check that it runs."""
    if not _NAME.match(name):
        raise ReleaseError(f"release name {name!r}: use letters, digits and . _ + - (at most 40)")
    release = QemuRelease(name, binary, root.resolve() if root else None, origin="added by the user")
    if root is not None and not root.is_dir():
        raise ReleaseError(f"root {root} is not a directory")
    release.version()  # raises with the reason when it does not run
    entries = {r.name: r for r in _user_releases()}
    entries[name] = release
    _write_user_file(entries.values())
    return release


def remove_release(name: str) -> None:
    """Forget a release the user added."""
    entries = {r.name: r for r in _user_releases()}
    if name not in entries:
        raise ReleaseError(f"{name!r} is not a release added with migcompat qemu add")
    del entries[name]
    _write_user_file(entries.values())


def _write_user_file(releases: Iterable[QemuRelease]) -> None:
    lines = ["# QEMU releases added with `migcompat qemu add`; one table per release.", ""]
    for release in releases:
        lines.append(f"[release.{json.dumps(release.name)}]")
        lines.append(f"binary = {json.dumps(release.binary)}")
        if release.root is not None:
            lines.append(f"root = {json.dumps(str(release.root))}")
        lines.append("")
    path = _user_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".toml.tmp")
    scratch.write_text("\n".join(lines))
    scratch.replace(path)


# -- installing ------------------------------------------------------------------------


def install(release: QemuRelease) -> bool:
    """Build ``release``'s root with mmdebstrap; False when it was already installed.

    The root is built in a scratch directory beside its final place and renamed
    into place only when mmdebstrap succeeded, so a failed or interrupted install
    leaves nothing half-built behind.
    """
    if release.is_installed():
        return False
    if release.package is not None:
        _apt_install(release.package)
    else:
        _bootstrap(release)
    _version.cache_clear()
    _machine_listing.cache_clear()
    release.version()
    return True


def _apt_install(package: str) -> None:
    """``apt-get install`` ``package`` (as root), refreshing the package lists once when it is not found."""
    tool = shutil.which("apt-get")
    if tool is None or os.geteuid() != 0:
        raise ReleaseError(f"installing {package} needs root and apt-get (apt-get install -y {package})")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [tool, "install", "-y", "-qq", "--no-install-recommends", package]
    if _apt(install, environment) == "":
        return
    _apt([tool, "update", "-qq"], environment)
    detail = _apt(install, environment)
    if detail:
        raise ReleaseError(f"apt-get install {package} failed: {detail}")


def _apt(argv: list[str], environment: dict[str, str]) -> str:
    """Run one apt-get command; "" when it succeeded, else its last line of stderr."""
    try:
        done = subprocess.run(argv, capture_output=True, timeout=INSTALL_TIMEOUT, check=False, env=environment)
    except subprocess.TimeoutExpired:
        return f"no result in {INSTALL_TIMEOUT:.0f} s"
    if done.returncode == 0:
        return ""
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"exit {done.returncode}"


def _bootstrap(release: QemuRelease) -> None:
    if release.suite is None or release.root is None:
        raise ReleaseError(f"release {release.name} cannot be installed here: {release.install_hint()}")
    if shutil.which("mmdebstrap") is None and shutil.which("apt-get") is not None and os.geteuid() == 0:
        _apt_install("mmdebstrap")
    tool = shutil.which("mmdebstrap")
    if tool is None:
        raise ReleaseError("mmdebstrap not found (apt-get install -y mmdebstrap)")
    if os.geteuid() != 0:
        raise ReleaseError(f"installing release {release.name} needs root (mmdebstrap builds a chroot)")
    release.root.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{release.suite}-", dir=release.root.parent))
    argv = [
        tool,
        "--quiet",
        "--variant=apt",
        "--include=qemu-system-x86",
        '--aptopt=APT::Install-Recommends "false"',
        release.suite,
        str(scratch),
    ]
    try:
        try:
            done = subprocess.run(argv, capture_output=True, timeout=INSTALL_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise ReleaseError(f"mmdebstrap {release.suite}: no result in {INSTALL_TIMEOUT:.0f} s") from None
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip().splitlines()
            raise ReleaseError(f"mmdebstrap {release.suite} failed ({done.returncode}): {detail[-1] if detail else ''}")
        if release.root.exists():
            shutil.rmtree(release.root)
        scratch.rename(release.root)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
