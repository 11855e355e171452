"""Drive a real QEMU release as a migration peer, over QMP.

Why: our decoders and encoders model QEMU's migration format from its sources,
and a model is only as good as the real bytes it is checked against. This module
makes those bytes on demand and asks QEMU itself whether a stream is acceptable:

* :func:`capture` saves the state of a paused VM that never ran a guest, so the
  stream is small and, with a VM-clock RTC, byte-for-byte reproducible;
* :func:`load` feeds a stream to a fresh QEMU started with ``-incoming defer`` and
  reports whether QEMU accepted it, with QEMU's own error message when it did not
  (and, asked to, saves what it loaded again);
* :func:`dump_vmstate` writes QEMU's JSON description of every device class.

Every call names the release it runs (:mod:`migcompat.qemu.releases`; QEMU 7.2
by default) and the machine type, which is apart from the device configuration
so one configuration runs on every machine type a release knows. QMP is spoken
through the QEMU project's own client library (``qemu.qmp``): we listen on a
unix socket in the release's scratch directory and QEMU connects to it. Every
QEMU process started here is ended, and every temporary directory removed,
whatever happens — a QEMU that hangs is killed when its time is up.

Command line (:mod:`migcompat.cli`)::

    migcompat qemu configs
    migcompat qemu capture pc-virtio-net out.bin [--release 10.0] [--machine pc-i440fx-7.2]
    migcompat qemu load pc-virtio-net out.bin [--release 5.2]
    migcompat qemu dump-vmstate vmstate-pc.json [--release 10.0]
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from qemu.qmp import ExecuteError, QMPClient, QMPError

from migcompat.errors import MigcompatError
from migcompat.qemu import releases
from migcompat.qemu.releases import QemuRelease, ReleaseError

__all__ = [
    "BASE_ARGS",
    "CONFIGS",
    "DEFAULT_RELEASE",
    "IMAGE_SIZE",
    "IMAGE_TOKEN",
    "LoadResult",
    "MachineConfig",
    "QemuPeerError",
    "capture",
    "dump_vmstate",
    "installed",
    "load",
    "release_or_default",
]

#: The release a call runs when it names none: the one the committed captures come from.
DEFAULT_RELEASE = "7.2"

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

# qemu.qmp reports a dropped connection through logging as well as by raising;
# the raise is what we act on, so its log records go nowhere by default.
logging.getLogger("qemu.qmp").addHandler(logging.NullHandler())
logging.getLogger("qemu.qmp").propagate = False


class QemuPeerError(MigcompatError, RuntimeError):
    """QEMU could not be run, or did not do what was asked in time."""


class _QmpClosed(QemuPeerError):
    """The QMP connection broke: QEMU exited (why is in its stderr)."""


@dataclass(frozen=True)
class MachineConfig:
    """A named VM configuration: a machine type and the device arguments added to :data:`BASE_ARGS`.

    ``machine`` is the default machine type (``-M``); every call may run the
    configuration on another one of the same ``transport`` (``pci`` configurations
    run on ``pc``/``q35`` types, ``mmio`` ones on ``microvm``). An argument may
    contain :data:`IMAGE_TOKEN`, replaced by a scratch image path.
    """

    name: str
    machine: str
    args: tuple[str, ...]
    transport: str = "pci"

    def on(self, machine: str | None) -> MachineConfig:
        """This configuration on machine type ``machine`` (unchanged for None)."""
        return self if machine is None else replace(self, machine=machine)

    def fits(self, machine: str) -> bool:
        """True when ``machine`` is a machine type this configuration's devices plug into."""
        if self.transport == "mmio":
            return machine.startswith("microvm")
        return machine.startswith(("pc", "q35"))

    def command_line(self) -> list[str]:
        """The arguments after the binary (the QMP option apart)."""
        return [*BASE_ARGS, "-M", self.machine, *self.args]


def _config(name: str, machine: str, *args: str, transport: str = "pci") -> MachineConfig:
    return MachineConfig(name, machine, tuple(args), transport)


_NET = ("-netdev", "user,id=n0")
_DISK = ("-drive", f"if=none,id=d0,file={IMAGE_TOKEN},format=raw")

CONFIGS: dict[str, MachineConfig] = {
    config.name: config
    for config in (
        _config("pc-virtio-net", "pc", *_NET, "-device", "virtio-net-pci,netdev=n0"),
        _config("pc-virtio-net-novectors", "pc", *_NET, "-device", "virtio-net-pci,netdev=n0,vectors=0"),
        _config("pc-virtio-net-5vectors", "pc", *_NET, "-device", "virtio-net-pci,netdev=n0,vectors=5"),
        _config("microvm-virtio-net", "microvm", *_NET, "-device", "virtio-net-device,netdev=n0", transport="mmio"),
        _config("pc-virtio-blk", "pc", *_DISK, "-device", "virtio-blk-pci,drive=d0"),
        _config("q35-virtio-net", "q35", *_NET, "-device", "virtio-net-pci,netdev=n0"),
        _config(
            "pc-virtio-net-multiqueue",
            "pc",
            "-netdev",
            "user,id=n0",
            "-device",
            "virtio-net-pci,netdev=n0,mq=on,vectors=6",
        ),
        _config("pc-e1000", "pc", *_NET, "-device", "e1000,netdev=n0"),
        _config("pc-e1000e", "pc", *_NET, "-device", "e1000e,netdev=n0"),
        _config("pc-rtl8139", "pc", *_NET, "-device", "rtl8139,netdev=n0"),
        _config("pc-virtio-rng-balloon", "pc", "-device", "virtio-rng-pci", "-device", "virtio-balloon-pci"),
        _config("pc-virtio-scsi-serial", "pc", "-device", "virtio-scsi-pci", "-device", "virtio-serial-pci"),
        _config("pc-xhci-tablet", "pc", "-device", "qemu-xhci,id=xhci", "-device", "usb-tablet,bus=xhci.0"),
    )
}


@dataclass(frozen=True)
class LoadResult:
    """What QEMU said about an incoming stream.

    ``message`` is QEMU's stderr (stripped) when the stream was rejected, else empty.
    """

    accepted: bool
    message: str = ""


def installed(name: str) -> bool:
    """True when the registry's release ``name`` is installed here."""
    try:
        return releases.find(name).is_installed()
    except ReleaseError:
        return False


def release_or_default(release: QemuRelease | str | None) -> QemuRelease:
    """``release`` itself, the registry's release of that name, or :data:`DEFAULT_RELEASE`;
    :class:`QemuPeerError` with the command that installs it when it is not installed."""
    try:
        found = release if isinstance(release, QemuRelease) else releases.find(release or DEFAULT_RELEASE)
    except ReleaseError as error:
        raise QemuPeerError(str(error)) from None
    if not found.is_installed():
        raise QemuPeerError(f"QEMU release {found.name} is not installed ({found.install_hint()})")
    return found


# -- one running QEMU ------------------------------------------------------------------


class _Vm:
    """A running QEMU process with its QMP connection, stderr file and scratch directory."""

    def __init__(
        self,
        release: QemuRelease,
        process: asyncio.subprocess.Process,
        qmp: QMPClient,
        workdir: Path,
        deadline: float,
    ) -> None:
        self.release = release
        self.process = process
        self.qmp = qmp
        self.workdir = workdir
        self.deadline = deadline

    def stderr(self) -> str:
        return _read_text(self.workdir / "stderr.txt")

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    async def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """Run ``command``; its ``return`` value, or raise with QEMU's error."""
        try:
            return await asyncio.wait_for(self.qmp.execute(command, arguments), self.remaining())
        except ExecuteError as error:
            raise QemuPeerError(f"QMP {command} failed: {error}") from None
        except TimeoutError:
            raise QemuPeerError(f"timed out waiting for QMP {command}") from None
        except QMPError as error:
            raise _QmpClosed(f"QMP connection lost during {command}: {error}") from None

    async def migrate_status(self) -> tuple[str, str]:
        info = await self.execute("query-migrate")
        if not isinstance(info, dict):
            raise QemuPeerError(f"unexpected query-migrate reply: {info!r}")
        return str(info.get("status", "")), str(info.get("error-desc", ""))

    async def quit(self) -> None:
        # QEMU may close the socket before it answers; one that does not exit is killed by _stop.
        with suppress(_QmpClosed, QemuPeerError):
            await self.execute("quit")
        with suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), EXIT_GRACE)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _expand(config: MachineConfig, release: QemuRelease, workdir: Path) -> list[str]:
    args = config.command_line()
    if any(IMAGE_TOKEN in arg for arg in args):
        image = workdir / "disk.img"
        with image.open("wb") as handle:
            handle.truncate(IMAGE_SIZE)
        args = [arg.replace(IMAGE_TOKEN, release.inside(image)) for arg in args]
    return args


@asynccontextmanager
async def _running(
    release: QemuRelease, config: MachineConfig, extra: Sequence[str], timeout: float
) -> AsyncIterator[_Vm]:
    """Start ``release`` with ``config``; yield it once QMP is up; always end it and remove its files."""
    deadline = time.monotonic() + timeout
    with release.scratch() as workdir:
        qmp_path = workdir / "qmp.sock"
        qmp = QMPClient(f"qemu-{release.name}")
        process: asyncio.subprocess.Process | None = None
        try:
            try:
                await qmp.start_server(str(qmp_path))
            except QMPError as error:
                raise QemuPeerError(f"cannot listen on {qmp_path}: {error}") from None
            argv = release.argv(*_expand(config, release, workdir), "-qmp", f"unix:{release.inside(qmp_path)}", *extra)
            with (workdir / "stderr.txt").open("wb") as stderr:
                try:
                    process = await asyncio.create_subprocess_exec(
                        *argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
                    )
                except OSError as error:
                    raise QemuPeerError(f"cannot start {argv[0]}: {error.strerror}") from None
            vm = _Vm(release, process, qmp, workdir, deadline)
            await _accept(vm)
            try:
                yield vm
            except _QmpClosed as error:
                # QEMU died unasked: its stderr says why, once it has exited.
                with suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), EXIT_GRACE)
                detail = vm.stderr()
                raise QemuPeerError(f"QEMU exited: {detail}" if detail else str(error)) from None
        finally:
            # After QEMU quit or died, disconnecting re-raises how the connection
            # ended (EOFError, ConnectionResetError): nothing left to act on.
            with suppress(Exception):
                await qmp.disconnect()
            if process is not None:
                await _stop(process)


async def _accept(vm: _Vm) -> None:
    """Wait for QEMU to connect to our QMP socket, or to exit, or for the time to run out."""
    accepting = asyncio.ensure_future(vm.qmp.accept())
    exiting = asyncio.ensure_future(vm.process.wait())
    try:
        done, _ = await asyncio.wait({accepting, exiting}, timeout=vm.remaining(), return_when="FIRST_COMPLETED")
    finally:
        for task in (accepting, exiting):
            task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await task
    if accepting in done and accepting.exception() is None:
        return
    if exiting in done:
        detail = vm.stderr()
        reason = "QEMU exited before its QMP socket was ready"
        raise QemuPeerError(f"{reason}: {detail}" if detail else reason)
    if accepting in done:
        raise QemuPeerError(f"QMP handshake failed: {accepting.exception()}")
    raise QemuPeerError("timed out waiting for QEMU to connect to QMP")


async def _stop(process: asyncio.subprocess.Process) -> None:
    """End ``process`` (which this module started): wait, then terminate, then kill."""
    if process.returncode is not None:
        return
    with suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), 0.5)
        return
    with suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), EXIT_GRACE)
    except TimeoutError:
        with suppress(ProcessLookupError):
            process.kill()
        await process.wait()


# -- what is done with it --------------------------------------------------------------


async def _save(vm: _Vm, out_path: Path) -> None:
    """Migrate ``vm`` to a scratch file, quit it, and move the stream to ``out_path``."""
    scratch = vm.workdir / "stream.bin"
    await vm.execute("migrate", {"uri": f"exec:cat > {shlex.quote(vm.release.inside(scratch))}"})
    while True:
        status, error = await vm.migrate_status()
        if status == "completed":
            break
        if status in ("failed", "cancelled"):
            raise QemuPeerError(f"migration {status}: {error or vm.stderr() or 'no reason given'}")
        if vm.remaining() <= 0:
            raise QemuPeerError(f"timed out waiting for migration (status {status!r})")
        await asyncio.sleep(POLL_INTERVAL)
    await vm.quit()
    if not scratch.is_file():
        raise QemuPeerError("QEMU reported completion but wrote no stream")
    shutil.move(scratch, out_path)


async def _capture(release: QemuRelease, config: MachineConfig, out_path: Path, timeout: float) -> None:
    async with _running(release, config, (), timeout) as vm:
        await _save(vm, out_path)


async def _load(
    release: QemuRelease, config: MachineConfig, stream: Path, timeout: float, resave: Path | None
) -> LoadResult:
    async with _running(release, config, ("-incoming", "defer"), timeout) as vm:
        incoming = vm.workdir / "incoming.bin"
        shutil.copyfile(stream, incoming)
        try:
            await vm.execute("migrate-incoming", {"uri": f"exec:cat {shlex.quote(release.inside(incoming))}"})
            while True:
                status, error = await vm.migrate_status()
                if status == "completed":
                    if resave is not None:
                        await _save(vm, resave)
                    else:
                        await vm.quit()
                    return LoadResult(accepted=True)
                if status in ("failed", "cancelled"):
                    await vm.quit()
                    return LoadResult(False, vm.stderr() or error or f"migration {status}")
                if vm.process.returncode is not None:
                    break
                if vm.remaining() <= 0:
                    raise QemuPeerError(f"timed out waiting for incoming migration (status {status!r})")
                await asyncio.sleep(POLL_INTERVAL)
        except _QmpClosed:
            pass  # QEMU exited mid-conversation: a rejection, read below.
        try:
            await asyncio.wait_for(vm.process.wait(), vm.remaining())
        except TimeoutError:
            raise QemuPeerError("QEMU closed QMP but did not exit") from None
        return LoadResult(False, vm.stderr() or f"QEMU exited with status {vm.process.returncode}")


def capture(
    config: MachineConfig,
    out_path: Path,
    *,
    release: QemuRelease | str | None = None,
    machine: str | None = None,
    timeout: float = 30.0,
) -> None:
    """Save the migration stream of a paused, never-started ``config`` VM to ``out_path``.

    The stream is written to a scratch file and moved into place only once QEMU
    reported ``completed`` and exited, so ``out_path`` never holds a partial stream.
    """
    peer = release_or_default(release)
    asyncio.run(_capture(peer, config.on(machine), Path(out_path), timeout))


def load(
    config: MachineConfig,
    stream_path: Path,
    *,
    release: QemuRelease | str | None = None,
    machine: str | None = None,
    timeout: float = 30.0,
    resave: Path | None = None,
) -> LoadResult:
    """Feed ``stream_path`` to a fresh ``config`` VM started with ``-incoming defer``.

    Accepted when ``query-migrate`` reports ``completed``; rejected, with QEMU's
    stderr as the message, when QEMU exits or reports ``failed``. With
    ``resave``, an accepting VM then migrates its state out to that file, so a
    caller can see what QEMU made of what it loaded. Raises
    :class:`QemuPeerError` only when QEMU cannot be run or neither happens in time.
    """
    stream = Path(stream_path)
    if not stream.is_file():
        raise QemuPeerError(f"no such stream file: {stream_path}")
    peer = release_or_default(release)
    return asyncio.run(_load(peer, config.on(machine), stream, timeout, resave))


def dump_vmstate(
    out_path: Path, machine: str = "pc", *, release: QemuRelease | str | None = None, timeout: float = 60.0
) -> None:
    """Write QEMU's JSON description of every device class (``-dump-vmstate``)."""
    peer = release_or_default(release)
    with peer.scratch() as workdir:
        written = workdir / "vmstate.json"
        argv = peer.argv("-M", machine, "-nodefaults", "-display", "none", "-dump-vmstate", peer.inside(written))
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise QemuPeerError(f"timed out running -dump-vmstate ({timeout:.0f} s)") from None
        except OSError as error:
            raise QemuPeerError(f"cannot start {argv[0]}: {error.strerror}") from None
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip()
            raise QemuPeerError(f"-dump-vmstate failed ({done.returncode}): {detail}")
        shutil.move(written, out_path)
