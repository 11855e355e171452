"""A PCI function's read-only config bytes, as QEMU checks them when it loads a config space.

Why: QEMU does not take a PCI config space from the stream as it is. On load
(``get_pci_config_device``, hw/pci/pci.c) it refuses any byte that differs from
its own device's in a bit the device checks (``cmask``) and the guest cannot
write (``wmask``, ``w1cmask``): "Bad config data". Which bits those are is the
device's, not the stream's, so the check needs the destination's own config
space (a capture of it) and QEMU's masks, modelled here from QEMU's sources:

* ``pci_init_cmask``: vendor and device id, the status register's
  capability-list bit, revision, programming interface, class, header type and
  the capability pointer;
* ``pci_add_capability``: every byte of every capability is checked and
  read-only, except what the capability's own code makes writable: MSI-X's
  enable and function-mask bits (``msix_init``), and virtio-pci's PCI
  configuration access capability (bar, offset, length and data,
  ``virtio_pci_device_plugged``).

A capability's length is its own length byte for vendor-specific ones
(``cap_vndr``) and the architected size otherwise (MSI-X 12 bytes).
"""

from __future__ import annotations

PCI_STATUS = 0x06
PCI_STATUS_CAP_LIST = 0x10
PCI_CAPABILITY_LIST = 0x34
CAP_MSIX = 0x11
CAP_VENDOR = 0x09
MSIX_CAP_LENGTH = 12
#: The MSI-X message control's high byte: enable (bit 15) and function mask (bit 14).
MSIX_WRITABLE_HIGH_BYTE = 0xC0
#: virtio-pci's VIRTIO_PCI_CAP_PCI_CFG (cfg_type 5): its bar, offset, length and data are writable.
VIRTIO_PCI_CAP_PCI_CFG = 5
_HEADER_CHECKED = {0x00: 0xFF, 0x01: 0xFF, 0x02: 0xFF, 0x03: 0xFF, PCI_STATUS: PCI_STATUS_CAP_LIST}
_HEADER_CHECKED.update({0x08: 0xFF, 0x09: 0xFF, 0x0A: 0xFF, 0x0B: 0xFF, 0x0E: 0xFF, PCI_CAPABILITY_LIST: 0xFF})


def read_only_mask(config: bytes) -> bytes:
    """``cmask & ~wmask & ~w1cmask`` of a function whose config space (its own) is ``config``."""
    mask = bytearray(len(config))
    for offset, bits in _HEADER_CHECKED.items():
        if offset < len(mask):
            mask[offset] = bits
    for pointer in _capabilities(config):
        kind = config[pointer]
        length = config[pointer + 2] if kind == CAP_VENDOR else MSIX_CAP_LENGTH if kind == CAP_MSIX else 2
        end = min(pointer + max(length, 2), len(mask))
        for offset in range(pointer, end):
            mask[offset] = 0xFF
        if kind == CAP_MSIX and pointer + 3 < len(mask):
            mask[pointer + 3] &= ~MSIX_WRITABLE_HIGH_BYTE & 0xFF
        if kind == CAP_VENDOR and pointer + 3 < len(mask) and config[pointer + 3] == VIRTIO_PCI_CAP_PCI_CFG:
            for offset in (pointer + 4, *range(pointer + 8, pointer + 20)):
                if offset < len(mask):
                    mask[offset] = 0
    return bytes(mask)


def _capabilities(config: bytes) -> list[int]:
    found: list[int] = []
    if len(config) <= PCI_CAPABILITY_LIST or not config[PCI_STATUS] & PCI_STATUS_CAP_LIST:
        return found
    pointer = config[PCI_CAPABILITY_LIST] & 0xFC
    while pointer and pointer not in found and pointer + 4 <= len(config):
        found.append(pointer)
        pointer = config[pointer + 1] & 0xFC
    return found


def bad_config_byte(incoming: bytes, local: bytes) -> str | None:
    """QEMU's refusal of an incoming config space against the destination's own, or None."""
    mask = read_only_mask(local)
    for index in range(min(len(incoming), len(local))):
        if (incoming[index] ^ local[index]) & mask[index]:
            return (
                f"Bad config data: i=0x{index:x} read: {incoming[index]:x} device: {local[index]:x} "
                f"(a read-only bit differs)"
            )
    return None
