"""The device's own part of a virtio section: virtio-net's and virtio-blk's state.

Why: between virtio's generic part and its ``virtio/`` subsections, a virtio
section carries the state of the device itself, written by the device's own
code (QEMU's ``vmstate_virtio_net_device``, ``virtio_blk_save_device``). Nothing
in the stream gives its size, and QEMU's vmdesc trailer and ``-dump-vmstate``
do not describe it. Decoding it field by field is the only certain way to find
where the subsections start -- and the fields carry checks QEMU makes on load
(a vnet header the destination's network backend cannot give, a queue-pair
count that must equal the destination's).

Layout facts (QEMU 5.2, 7.2 and 10.0 ``hw/net/virtio-net.c``,
``hw/block/virtio-blk.c``; all three write the same 545 bytes for a
``-netdev user`` virtio-net, checked on every committed capture):

* virtio-net (``virtio-net-device``, version 11, minimum 11): the MAC, queue
  0's ``tx_waiting``, ``mergeable_rx_bufs``, ``status``, ``promisc``,
  ``allmulti``, the MAC table (a be32 entry count and 6 bytes per entry; QEMU
  skips the entries of a table too long for it), the 512-byte VLAN bitmap,
  ``has_vnet_hdr`` (be32), the five receive-filter flags, ``has_ufo``; with
  more than one queue pair the pair counts and the other queues'
  ``tx_waiting`` (not modelled: a ``-netdev user`` backend has one queue);
  ``curr_guest_offloads`` (be64) when the guest accepted
  VIRTIO_NET_F_CTRL_GUEST_OFFLOADS (QEMU tests the low features word loaded
  just before); then the ``virtio-net-device/rss`` subsection;
* virtio-blk: the in-flight request list, a byte 1 before each request and a
  byte 0 at its end. A request is QEMU's host-dependent ``VirtQueueElement``
  image, not modelled: a list that is not empty is refused.

Any other virtio device's own state is not decoded: its section is read by the
size QEMU's vmdesc trailer gives, or refused when there is none.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from migcompat.model.vmstate import Array, Buffer, Description, Field, FieldRef, Scalar, Struct, Subsection

U8, U16, U32, U64, BOOL = Scalar("uint8"), Scalar("uint16"), Scalar("uint32"), Scalar("uint64"), Scalar("bool")

#: virtio-net's section and device-state version (VIRTIO_NET_VM_VERSION).
NET_VERSION = 11
#: virtio-blk's section version (vmstate_virtio_blk), minimum 2.
BLK_VERSION = 2
#: The section versions each device accepts: (minimum, current).
VERSIONS = {"virtio-net": (NET_VERSION, NET_VERSION), "virtio-blk": (BLK_VERSION, BLK_VERSION)}
#: MAC_TABLE_ENTRIES: a longer table is skipped on load and marked overflowed.
MAC_TABLE_ENTRIES = 64
#: MAX_VLAN >> 3: the VLAN bitmap's bytes.
VLAN_BITMAP = 512
#: VIRTIO_NET_F_CTRL_GUEST_OFFLOADS: with it accepted, curr_guest_offloads is sent.
CTRL_GUEST_OFFLOADS = 1 << 2
#: VIRTIO_NET_RSS_MAX_KEY_SIZE.
RSS_KEY = 40

#: Layout codes of the device part (the third layout number of a captured section).
NONE, NET, BLK = 0, 1, 2

#: The features each device offers over virtio-pci on QEMU 5.2, 7.2 and 10.0 before
#: VIRTIO_F_RING_RESET (offered from 7.2 on a 7.2-or-newer machine type), as the
#: releases state them ("Allowed features", and ``x-query-virtio-status``):
#: virtio-net with a ``-netdev user`` backend, virtio-blk with a raw image.
HOST_FEATURES = {NET: 0x1_79BF_8064, BLK: 0x1_7900_6E54}

_KINDS = {"virtio-net": NET, "virtio-blk": BLK}


def kind_of(idstr: str) -> int | None:
    """The device-part layout code for a section's idstr, None when its device's own state is not modelled."""
    return _KINDS.get(idstr.rsplit("/", 1)[-1])


def versions(idstr: str) -> tuple[int, int] | None:
    """(minimum, current) section version of a modelled device, None for another."""
    return VERSIONS.get(idstr.rsplit("/", 1)[-1])


def _rss() -> Subsection:
    return Subsection(
        Description(
            "virtio-net-device/rss",
            1,
            1,
            (
                Field("rss_data.enabled", BOOL),
                Field("rss_data.redirect", BOOL),
                Field("rss_data.populate_hash", BOOL),
                Field("rss_data.hash_types", U32),
                Field("rss_data.indirections_len", U16),
                Field("rss_data.default_queue", U16),
                Field("rss_data.key", Buffer(RSS_KEY)),
                Field("rss_data.indirections_table", Array(U16, length=FieldRef("rss_data.indirections_len"))),
            ),
        )
    )


@cache
def net_state(offloads: bool) -> Description:
    """virtio-net's own state; ``offloads``: the guest accepted CTRL_GUEST_OFFLOADS."""
    filters = ("mac_table.multi_overflow", "mac_table.uni_overflow", "alluni", "nomulti", "nouni", "nobcast")
    fields = [
        Field("mac", Buffer(6)),
        Field("vqs", Struct("virtio-net-queue-tx_waiting", (Field("tx_waiting", U32),))),
        Field("mergeable_rx_bufs", U32),
        Field("status", U16),
        Field("promisc", U8),
        Field("allmulti", U8),
        Field("mac_table.in_use", U32),
        Field("mac_table.macs", Buffer(FieldRef("mac_table.in_use", 6))),
        Field("vlans", Buffer(VLAN_BITMAP)),
        Field("has_vnet_hdr", U32),
        *(Field(name, U8) for name in filters),
        Field("has_ufo", U8),
    ]
    if offloads:
        fields.append(Field("curr_guest_offloads", U64))
    return Description("virtio-net-device", NET_VERSION, NET_VERSION, tuple(fields), subsections=(_rss(),))


def _no_requests(state: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    if state["requests"] != 0:
        yield "requests", "an in-flight virtio-blk request list is not modelled (only an empty one, byte 0)"


@cache
def blk_state() -> Description:
    """virtio-blk's own state: an empty in-flight request list."""
    return Description("virtio-blk-device", BLK_VERSION, BLK_VERSION, (Field("requests", U8),), validate=_no_requests)


def queue_counts(kind: int) -> tuple[int, ...] | None:
    """The virtqueue counts a device of this kind can have: virtio-net with one
    queue pair has rx and tx, and the control queue unless ``ctrl_vq=off``
    (a device part without queue-pair counts has one pair); None: not known."""
    return (2, 3) if kind == NET else None


def state_of(kind: int, offloads: bool) -> Description | None:
    """The device part for a layout code (None: no device part)."""
    if kind == NET:
        return net_state(offloads)
    if kind == BLK:
        return blk_state()
    return None
