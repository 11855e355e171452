"""QEMU's device post-load checks, for the sections ``check`` reads through a vmdesc.

Why: after a section's fields are read, QEMU runs the device's ``post_load``,
which may still refuse the stream (globalstate's run state, fw_cfg's ACPI
sizes) or go on from guest memory (the VAPIC option ROM, AHCI's command lists).
:func:`refusals` says what QEMU refuses from the fields and the stream's own
RAM pages; :func:`undecided` names what depends on more than a stream and a
dump show, so the report says "cannot tell" rather than guess. Each rule is
read from the device's source; the VAPIC rules are checked against real 5.2,
7.2 and 10.0 loads (tests/test_check.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from migcompat.qemu.ram import RESIZABLE_MAX, RamBlocks

#: fw_cfg's ``acpi_mr`` subsection: each size resizes a firmware-table RAM block on load
#: (``fw_cfg_acpi_mr_restore``), which QEMU refuses beyond the block's maximum.
_ACPI_MR = {
    "table_mr_size": "/rom@etc/acpi/tables",
    "linker_mr_size": "/rom@etc/table-loader",
    "rsdp_mr_size": "/rom@etc/acpi/rsdp",
}


#: QAPI's RunState names: globalstate's runstate must be one (``global_state_post_load``).
RUN_STATES = frozenset(
    (
        "debug",
        "inmigrate",
        "internal-error",
        "io-error",
        "paused",
        "postmigrate",
        "prelaunch",
        "finish-migrate",
        "restore-vm",
        "running",
        "save-vm",
        "shutdown",
        "suspended",
        "watchdog",
        "guest-panicked",
        "colo",
    )
)


def refusals(label: str, state: Mapping[str, Any], ram: RamBlocks, data: bytes) -> Iterator[tuple[str, str]]:
    """(field path, QEMU's reason) for each post-load refusal of a loaded section;
    ``ram`` holds the RAM pages read so far from ``data``, the stream."""
    if label == "kvm-tpr-opt":
        yield from _vapic(state, ram, data)
    runstate = state.get("runstate") if label == "globalstate" else None
    if isinstance(runstate, bytes):
        name = runstate.split(b"\0")[0].decode("utf-8", "replace")
        if b"\0" not in runstate:
            yield "runstate", "the runstate is not NUL-terminated"
        elif name not in RUN_STATES:
            yield "runstate", f"invalid parameter value: {name}"
    sizes = state.get("fw_cfg/acpi_mr")
    if isinstance(sizes, Mapping):
        for name, block in _ACPI_MR.items():
            size = sizes.get(name)
            if isinstance(size, int) and size > RESIZABLE_MAX[block]:
                yield f"fw_cfg/acpi_mr/{name}", f"Size too large: {block}: 0x{size:x} > 0x{RESIZABLE_MAX[block]:x}"


#: AHCI port command bits (hw/ide/ahci_internal.h).
PORT_CMD_START, PORT_CMD_FIS_RX, PORT_CMD_FIS_ON, PORT_CMD_LIST_ON = 1 << 0, 1 << 4, 1 << 14, 1 << 15


def undecided(label: str, state: Mapping[str, Any], ram: RamBlocks, data: bytes) -> tuple[str, str] | None:
    """(field, why) when what QEMU does next with a loaded section depends on what
    neither the stream's fields nor a dump show: guest memory, or a field QEMU
    sends when a test function of its own passes."""
    rom = _vapic_rom(state, ram, data) if label == "kvm-tpr-opt" else None
    if rom is not None and not rom.beyond and rom.size_byte is None:
        where = "no RAM block at guest address 0" if rom.block is None else "a RAM page the stream does not carry"
        return "rom_state_paddr", f"an active VAPIC whose option ROM size QEMU reads from {where}"
    for name, value in state.items():
        drives = value if isinstance(value, list) else [value]
        for index, drive in enumerate(drives):
            if isinstance(drive, Mapping) and drive.get("identify_set") and "identify_data" not in drive:
                return f"{name}[{index}]/identify_set", (
                    "a drive with identify_set: QEMU then sends its 512-byte identify_data (a test function of "
                    "vmstate_ide_drive), which the destination's capture, sent without it, does not lay out"
                )
    ahci = state.get("ahci")
    ports = ahci.get("dev") if isinstance(ahci, Mapping) else None
    for index, port in enumerate(ports if isinstance(ports, list) else ()):
        if not isinstance(port, Mapping):
            continue
        command = port.get("port_regs.cmd", 0)
        if command & (PORT_CMD_START | PORT_CMD_FIS_RX | PORT_CMD_FIS_ON | PORT_CMD_LIST_ON):
            return f"ahci/dev[{index}]/port_regs.cmd", (
                "an AHCI port with its DMA or FIS engine on: QEMU restarts it from guest memory on load "
                "(ahci_state_post_load), which a stream and a dump cannot show"
            )
        queued = port.get("ncq_tfs")
        for slot, transfer in enumerate(queued if isinstance(queued, list) else ()):
            if isinstance(transfer, Mapping) and transfer.get("used"):
                return f"ahci/dev[{index}]/ncq_tfs[{slot}]/used", (
                    "an AHCI port with a queued NCQ transfer: QEMU rebuilds it from the guest's command list "
                    "in guest memory on load (ahci_state_post_load), which a stream and a dump cannot show"
                )
    return None


#: kvmvapic.c: the VAPIC states, the option ROM's block size, and the RAM block
#: at guest address 0 the ROM is read from (``memory_region_find(system, 0, 1)``).
VAPIC_INACTIVE, VAPIC_STANDBY = 0, 1
ROM_BLOCK_SIZE = 512
_LOW_RAM = ("pc.ram", "microvm.ram")


@dataclass(frozen=True)
class _VapicRom:
    """Where ``vapic_map_rom_writable`` looks for the option ROM, and what it finds."""

    address: int
    block: str | None
    beyond: bool
    #: The ROM's size byte (in 512-byte blocks); None when not known.
    size_byte: int | None


def _vapic_rom(state: Mapping[str, Any], ram: RamBlocks, data: bytes) -> _VapicRom | None:
    """None for an inactive VAPIC (``vapic_post_load`` prepares nothing); a
    non-zero ROM address makes an old stream's inactive VAPIC standby."""
    vapic_state, paddr = state.get("state"), state.get("rom_state_paddr")
    if not isinstance(vapic_state, int) or not isinstance(paddr, int):
        return None
    if vapic_state == VAPIC_INACTIVE and paddr == 0:
        return None
    rom = paddr & ~(ROM_BLOCK_SIZE - 1)
    block = next((name for name in _LOW_RAM if name in ram.lengths), None)
    if block is None:
        return _VapicRom(rom, None, False, None)
    if rom + 2 >= ram.lengths[block]:
        return _VapicRom(rom, block, True, None)
    return _VapicRom(rom, block, False, ram.byte(data, block, rom + 2))


def _vapic(state: Mapping[str, Any], ram: RamBlocks, data: bytes) -> Iterator[tuple[str, str]]:
    """An active (or standby) VAPIC needs its option ROM in guest RAM: refused
    when the ROM's address lies beyond the RAM, or its size byte there is 0.
    With a ROM there, ``vapic_prepare`` goes on to ``patch_hypercalls``, whose
    own refusal never fires (its patch count is never incremented), so it loads."""
    rom = _vapic_rom(state, ram, data)
    if rom is None or rom.block is None:
        return
    if rom.beyond:
        yield (
            "rom_state_paddr",
            (
                f"vapic_post_load: the option ROM at 0x{rom.address:x} lies beyond {rom.block} "
                f"(0x{ram.lengths[rom.block]:x} bytes)"
            ),
        )
    elif rom.size_byte == 0:
        yield (
            "rom_state_paddr",
            (f"vapic_post_load: no option ROM at guest address 0x{rom.address:x} of {rom.block} (its size byte is 0)"),
        )
