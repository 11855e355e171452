"""Drive a real ``qemu-system-x86_64`` as a migration peer, over QMP.

Why: our decoders and encoders model QEMU's migration format from its sources,
and a model is only as good as the real bytes it is checked against. This module
makes those bytes on demand and asks QEMU itself whether a stream is acceptable:

* :func:`capture` saves the state of a paused VM that never ran a guest, so the
  stream is small and, with a VM-clock RTC, byte-for-byte reproducible;
* :func:`load` feeds a stream to a fresh QEMU started with ``-incoming defer`` and
  reports whether QEMU accepted it, with QEMU's own error message when it did not;
* :func:`dump_vmstate` writes QEMU's JSON description of every device class.

It needs nothing but the standard library and a ``qemu-system-x86_64`` binary
(Debian's ``qemu-system-x86``); callers use :func:`find_qemu` to skip when there is
none. QMP is spoken over a unix socket as JSON lines by a client a few dozen lines
long. Every QEMU process started here is ended, and every temporary directory
removed, whatever happens.

Command line (:mod:`migcompat.cli`)::

    migcompat qemu configs
    migcompat qemu capture pc-virtio-net out.bin
    migcompat qemu load pc-virtio-net out.bin
    migcompat qemu dump-vmstate vmstate-pc.json
"""

from __future__ import annotations

import json
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migcompat.errors import MigcompatError

__all__ = [
    "CONFIGS",
    "IMAGE_TOKEN",
    "LoadResult",
    "MachineConfig",
    "QemuPeerError",
    "capture",
    "dump_vmstate",
    "find_qemu",
    "load",
]

#: Name of the binary looked up on ``PATH``.
QEMU_BINARY = "qemu-system-x86_64"

#: Stands for a scratch raw disk image in :attr:`MachineConfig.args`; each run
#: replaces it with the path of a fresh image of :data:`IMAGE_SIZE` zero bytes.
IMAGE_TOKEN = "@IMAGE@"

#: Size of the scratch disk image: 1 MiB is enough for a block device to exist.
IMAGE_SIZE = 1024 * 1024

#: Arguments every run shares: paused, no default devices, no display, little RAM
#: (RAM pages dominate a stream), and an RTC driven by the VM clock from a fixed
#: date so that the ``mc146818rtc`` section is the same on every run.
BASE_ARGS: tuple[str, ...] = (
    "-S",
    "-nodefaults",
    "-display",
    "none",
    "-m",
    "16",
    "-rtc",
    "base=2020-01-01T00:00:00,clock=vm",
)

#: Seconds between two ``query-migrate`` polls.
POLL_INTERVAL = 0.02

#: Seconds QEMU gets to exit after ``quit`` before it is killed.
EXIT_GRACE = 5.0


class QemuPeerError(MigcompatError, RuntimeError):
    """QEMU could not be run, or did not do what was asked in time."""


class _QmpClosed(QemuPeerError):
    """The QMP connection broke: QEMU exited (why is in its stderr)."""


@dataclass(frozen=True)
class MachineConfig:
    """A named QEMU machine: the arguments added to :data:`BASE_ARGS`.

    An argument may contain :data:`IMAGE_TOKEN`, replaced by a scratch image path.
    """

    name: str
    args: tuple[str, ...]


CONFIGS: dict[str, MachineConfig] = {
    config.name: config
    for config in (
        MachineConfig(
            "pc-virtio-net",
            ("-M", "pc", "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"),
        ),
        MachineConfig(
            "pc-virtio-net-novectors",
            ("-M", "pc", "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,vectors=0"),
        ),
        MachineConfig(
            "pc-virtio-net-5vectors",
            ("-M", "pc", "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,vectors=5"),
        ),
        MachineConfig(
            "microvm-virtio-net",
            ("-M", "microvm", "-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0"),
        ),
        MachineConfig(
            "pc-virtio-blk",
            (
                "-M",
                "pc",
                "-drive",
                f"if=none,id=d0,file={IMAGE_TOKEN},format=raw",
                "-device",
                "virtio-blk-pci,drive=d0",
            ),
        ),
    )
}


@dataclass(frozen=True)
class LoadResult:
    """What QEMU said about an incoming stream.

    ``message`` is QEMU's stderr (stripped) when the stream was rejected, else empty.
    """

    accepted: bool
    message: str = ""


def find_qemu() -> str | None:
    """Return the path of ``qemu-system-x86_64``, or None when it is not installed."""
    return shutil.which(QEMU_BINARY)


def _require_qemu() -> str:
    path = find_qemu()
    if path is None:
        raise QemuPeerError(f"{QEMU_BINARY} not found on PATH (apt-get install qemu-system-x86)")
    return path


class _Qmp:
    """A minimal QMP client: one command at a time, asynchronous events skipped."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline
        self._buffer = b""

    def _read_message(self) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise QemuPeerError("timed out waiting for QMP")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                raise QemuPeerError("timed out waiting for QMP") from None
            except OSError as exc:
                raise _QmpClosed(f"QMP connection lost: {exc}") from None
            if not chunk:
                raise _QmpClosed("QMP connection closed")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message = json.loads(line)
        if not isinstance(message, dict):
            raise QemuPeerError(f"unexpected QMP message: {line!r}")
        return message

    def greeting(self) -> None:
        message = self._read_message()
        if "QMP" not in message:
            raise QemuPeerError(f"unexpected QMP greeting: {message!r}")

    def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """Run ``command``; return its ``return`` value or raise with QEMU's error."""
        request: dict[str, Any] = {"execute": command}
        if arguments is not None:
            request["arguments"] = arguments
        try:
            self._sock.sendall(json.dumps(request).encode() + b"\n")
        except OSError as exc:
            raise _QmpClosed(f"QMP connection lost: {exc}") from None
        while True:
            message = self._read_message()
            if "event" in message:
                continue
            if "error" in message:
                error = message["error"]
                raise QemuPeerError(f"QMP {command} failed: {error.get('desc', error)}")
            if "return" in message:
                return message["return"]
            raise QemuPeerError(f"unexpected QMP reply: {message!r}")


class _Vm:
    """A running QEMU process with its QMP connection and stderr file."""

    def __init__(self, process: subprocess.Popen[bytes], stderr_path: Path, qmp: _Qmp) -> None:
        self.process = process
        self.stderr_path = stderr_path
        self.qmp = qmp

    def stderr(self) -> str:
        return _read_text(self.stderr_path)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _expand(config: MachineConfig, workdir: Path) -> list[str]:
    args = list(config.args)
    if any(IMAGE_TOKEN in arg for arg in args):
        image = workdir / "disk.img"
        with image.open("wb") as handle:
            handle.truncate(IMAGE_SIZE)
        args = [arg.replace(IMAGE_TOKEN, str(image)) for arg in args]
    return args


def _connect(path: Path, process: subprocess.Popen[bytes], deadline: float) -> socket.socket:
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
        if process.poll() is not None:
            raise QemuPeerError("QEMU exited before its QMP socket was ready")
        if time.monotonic() > deadline:
            raise QemuPeerError("timed out waiting for the QMP socket")
        time.sleep(POLL_INTERVAL)


@contextmanager
def _run_vm(config: MachineConfig, extra: Sequence[str], timeout: float) -> Iterator[tuple[_Vm, Path]]:
    """Start QEMU for ``config``; yield it and its scratch directory; always clean up."""
    qemu = _require_qemu()
    deadline = time.monotonic() + timeout
    workdir = Path(tempfile.mkdtemp(prefix="qemu-peer-"))
    process: subprocess.Popen[bytes] | None = None
    sock: socket.socket | None = None
    try:
        qmp_path = workdir / "qmp.sock"
        stderr_path = workdir / "stderr.txt"
        argv = [
            qemu,
            *BASE_ARGS,
            "-qmp",
            f"unix:{qmp_path},server=on,wait=off",
            *_expand(config, workdir),
            *extra,
        ]
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            sock = _connect(qmp_path, process, deadline)
        except QemuPeerError as exc:
            detail = _read_text(stderr_path)
            raise QemuPeerError(f"{exc}: {detail}" if detail else str(exc)) from None
        qmp = _Qmp(sock, deadline)
        try:
            qmp.greeting()
            qmp.execute("qmp_capabilities")
            yield _Vm(process, stderr_path, qmp), workdir
        except _QmpClosed as exc:
            # QEMU died unasked: its stderr says why, once it has exited.
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=EXIT_GRACE)
            detail = _read_text(stderr_path)
            raise QemuPeerError(f"QEMU exited: {detail}" if detail else str(exc)) from None
    finally:
        if sock is not None:
            sock.close()
        if process is not None:
            _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End ``process`` (which this module started): wait, then terminate, then kill."""
    if process.poll() is not None:
        return
    try:
        process.wait(timeout=0.5)
        return
    except subprocess.TimeoutExpired:
        pass
    process.terminate()
    try:
        process.wait(timeout=EXIT_GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _migrate_status(qmp: _Qmp) -> tuple[str, str]:
    info = qmp.execute("query-migrate")
    if not isinstance(info, dict):
        raise QemuPeerError(f"unexpected query-migrate reply: {info!r}")
    return str(info.get("status", "")), str(info.get("error-desc", ""))


def _quit(vm: _Vm) -> None:
    # QEMU may close the socket before it answers; one that does not exit is killed by _stop.
    with suppress(_QmpClosed):
        vm.qmp.execute("quit")
    with suppress(subprocess.TimeoutExpired):
        vm.process.wait(timeout=EXIT_GRACE)


def _save(vm: _Vm, workdir: Path, out_path: Path, timeout: float) -> None:
    """Migrate ``vm`` to a scratch file, quit it, and move the stream to ``out_path``."""
    scratch = workdir / "stream.bin"
    vm.qmp.execute("migrate", {"uri": f"exec:cat > {shlex.quote(str(scratch))}"})
    deadline = time.monotonic() + timeout
    while True:
        status, error = _migrate_status(vm.qmp)
        if status == "completed":
            break
        if status in ("failed", "cancelled"):
            raise QemuPeerError(f"migration {status}: {error or vm.stderr() or 'no reason given'}")
        if time.monotonic() > deadline:
            raise QemuPeerError(f"timed out waiting for migration (status {status!r})")
        time.sleep(POLL_INTERVAL)
    _quit(vm)
    if not scratch.is_file():
        raise QemuPeerError("QEMU reported completion but wrote no stream")
    shutil.move(scratch, out_path)


def capture(config: MachineConfig, out_path: Path, *, timeout: float = 30.0) -> None:
    """Save the migration stream of a paused, never-started ``config`` VM to ``out_path``.

    The stream is written to a scratch file and moved into place only once QEMU
    reported ``completed`` and exited, so ``out_path`` never holds a partial stream.
    """
    with _run_vm(config, (), timeout) as (vm, workdir):
        _save(vm, workdir, out_path, timeout)


def load(config: MachineConfig, stream_path: Path, *, timeout: float = 30.0, resave: Path | None = None) -> LoadResult:
    """Feed ``stream_path`` to a fresh ``config`` VM started with ``-incoming defer``.

    Accepted when ``query-migrate`` reports ``completed``; rejected, with QEMU's
    stderr as the message, when QEMU exits or reports ``failed``. With
    ``resave``, an accepting VM then migrates its state out to that file, so a
    caller can see what QEMU made of what it loaded. Raises
    :class:`QemuPeerError` only when QEMU cannot be run or neither happens in time.
    """
    stream = Path(stream_path).resolve()
    if not stream.is_file():
        raise QemuPeerError(f"no such stream file: {stream_path}")
    with _run_vm(config, ("-incoming", "defer"), timeout) as (vm, _workdir):
        deadline = time.monotonic() + timeout
        try:
            vm.qmp.execute("migrate-incoming", {"uri": f"exec:cat {shlex.quote(str(stream))}"})
            while True:
                status, error = _migrate_status(vm.qmp)
                if status == "completed":
                    if resave is not None:
                        _save(vm, _workdir, resave, timeout)
                    else:
                        _quit(vm)
                    return LoadResult(accepted=True)
                if status in ("failed", "cancelled"):
                    _quit(vm)
                    return LoadResult(False, vm.stderr() or error or f"migration {status}")
                if vm.process.poll() is not None:
                    break
                if time.monotonic() > deadline:
                    raise QemuPeerError(f"timed out waiting for incoming migration (status {status!r})")
                time.sleep(POLL_INTERVAL)
        except _QmpClosed:
            pass  # QEMU exited mid-conversation: a rejection, read below.
        try:
            vm.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise QemuPeerError("QEMU closed QMP but did not exit") from None
        return LoadResult(False, vm.stderr() or f"QEMU exited with status {vm.process.returncode}")


def dump_vmstate(out_path: Path, machine: str = "pc") -> None:
    """Write QEMU's JSON description of every device class (``-dump-vmstate``)."""
    qemu = _require_qemu()
    try:
        done = subprocess.run(
            [qemu, "-M", machine, "-dump-vmstate", str(out_path)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise QemuPeerError("timed out running -dump-vmstate") from None
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip()
        raise QemuPeerError(f"-dump-vmstate failed ({done.returncode}): {detail}")
