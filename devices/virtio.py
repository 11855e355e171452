"""virtio: the generic virtio device state over the virtio-pci and virtio-mmio transports.

Why: every virtio device (net, blk, ...) migrates the same generic part --
status, isr, queue_sel, features, config space, and per queue its ring size,
descriptor address and last_avail_idx -- wrapped by its transport's state and
followed by the ``virtio`` subsections QEMU added release by release. It is the
state QEMU's 2013-2014 migration-load CVEs were about, so the reference model
rejects what those fixes reject.

Layout facts (QEMU 7.2 ``hw/virtio/virtio.c`` ``virtio_save``,
``hw/virtio/virtio-pci.c``, ``hw/virtio/virtio-mmio.c``), confirmed byte for byte
against the captures in ``corpora/qemu-7.2``:

1. transport: virtio-pci writes the PCIDevice record (be32 version 2, the
   256-byte config space, 4 x be32 irq state), the MSI-X table (16 bytes per
   vector), its pending bits ((vectors + 7) / 8 bytes) and the be16 config
   vector; virtio-mmio writes 3 x be32 (host features select, guest features
   select, guest page shift);
2. generic: u8 status, u8 isr, be16 queue_sel, be32 guest features (low half),
   be32 config length + config bytes, be32 queue count, then per queue be32 ring
   size, [mmio: be32 alignment], be64 descriptor address, be16 last_avail_idx,
   [pci: be16 MSI-X vector];
3. the device's own state (virtio-net's MAC table, virtio-blk's in-flight
   requests), which migcompat carries as exact opaque bytes;
4. the subsections of QEMU's ``vmstate_virtio`` (all per-queue arrays have
   VIRTIO_QUEUE_MAX = 1024 entries), ``virtio/extra_state`` holding the
   transport's ``virtio_pci/modern_state``.

The release history follows QEMU's: VIRTIO_QUEUE_MAX was 64 until 2.4, and the
subsections arrived over time (device_endian 2.2; 64bit_features and virtqueues
2.4; ringsize, broken and extra_state 2.7; started, packed_virtqueues and
disabled by 4.2, unchanged through 5.2, 7.2 and 10.0). The section version
(virtio-net's wrapper, 11) never changed: releases differ by subsections, which
is exactly why an older QEMU refuses a newer stream only when a new subsection
is needed.

What is written also depends on the machine type (:func:`machine_compat`): up
to ``pc-i440fx-5.2`` the device has 3 MSI-X vectors, after it 4, and from 7.2 a
7.2-or-newer machine type offers ``queue_reset``. A release is built for its own
machine type; :func:`under` builds it for another, which is how QEMU 10.0
started with ``pc-i440fx-5.2`` writes what 5.2 reads.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from hypothesis import strategies as st

from migcompat.codec import compiled
from migcompat.devices import machines, virtio_specific
from migcompat.devices.base import Device, LegacyVisit, Release
from migcompat.errors import DecodeError, DescriptionError, LoadRefused, TruncatedInput, UsageError
from migcompat.model.strategies import states
from migcompat.model.vmstate import (
    Array,
    Buffer,
    Description,
    Field,
    FieldRef,
    Scalar,
    State,
    Struct,
    Subsection,
    check_loaded,
    refuse_count,
    version_refusal,
    walk,
)
from migcompat.outcomes import Outcome
from migcompat.qemu import pci
from migcompat.qemu.stream import Record, SectionCodec
from migcompat.wire.qemufile import QemuFileInputVisitor
from migcompat.wire.visitor import KNOWN_LENGTH, Framing, ListFraming, Visitor

VIRTIO_QUEUE_MAX = 1024
VIRTIO_QUEUE_MAX_BEFORE_2_4 = 64
VIRTIO_NO_VECTOR = 0xFFFF
PCI_CONFIG_SIZE = 256
#: virtio-net's wrapper section version (VIRTIO_NET_VM_VERSION), unchanged since QEMU 1.x.
SECTION_VERSION = 11
#: The reference device: virtio-net over PCI with one queue pair (rx, tx, ctrl
#: queues and a config vector: 4 MSI-X vectors) and an 8-byte config space.
REFERENCE_VECTORS = 4
#: The vectors of the reference device on a machine type up to 5.2: the old
#: default that ``hw_compat_5_2`` keeps (``virtio-net-pci-base vectors=3``).
VECTORS_BEFORE_6_0 = 3
REFERENCE_CONFIG_SIZE = 8
#: The features virtio-net-pci with a user (slirp) netdev offers on QEMU 5.2,
#: 7.2 and 10.0 (``x-query-virtio-status``: VERSION_1 and the ring and net bits
#: a backend without a vnet header allows, no offloads), before RING_RESET.
REFERENCE_HOST_FEATURES = virtio_specific.HOST_FEATURES[virtio_specific.NET]
#: VIRTIO_F_RING_RESET: the ``queue_reset`` property, on from 7.2, off on the
#: machine types up to 7.1 (``hw_compat_7_1``).
RING_RESET = 1 << 40
#: VIRTIO_QUEUE_MAX of the releases the round-trip fuzzer drives (scaled_releases).
FUZZ_QUEUE_MAX = 4

U8, U16, U32, U64, BOOL = Scalar("uint8"), Scalar("uint16"), Scalar("uint32"), Scalar("uint64"), Scalar("bool")

#: Which subsections each release knows, by the QEMU release that added them.
ERAS: dict[str, tuple[str, ...]] = {
    "qemu-2.1": (),
    "qemu-2.2": ("device_endian",),
    "qemu-2.4": ("device_endian", "64bit_features", "virtqueues"),
    "qemu-2.7": ("device_endian", "64bit_features", "virtqueues", "ringsize", "broken", "extra_state"),
    "qemu-5.2": (
        "device_endian",
        "64bit_features",
        "virtqueues",
        "ringsize",
        "broken",
        "extra_state",
        "started",
        "packed_virtqueues",
        "disabled",
    ),
}
# Nothing changed in vmstate_virtio or virtio_save from 5.2 to 10.0 (docs/qemu-releases.md §1).
ERAS["qemu-7.2"] = ERAS["qemu-10.0"] = ERAS["qemu-5.2"]


def _per_queue(queue_max: int, *fields: Field) -> Array:
    return Array(Struct("queue", fields), length=queue_max)


def _u32_pair() -> Array:
    return Array(U32, length=2)


def _flag(name: str) -> Subsection:
    return Subsection(Description(f"virtio/{name}", 1, 1, (Field(name, BOOL),)))


@cache
def subsections(queue_max: int = VIRTIO_QUEUE_MAX) -> dict[str, Subsection]:
    """Every ``virtio`` subsection any release knows, its per-queue arrays
    ``queue_max`` (QEMU's VIRTIO_QUEUE_MAX) entries long."""
    modern_state = Description(
        "virtio_pci/modern_state",
        1,
        1,
        (
            Field("dfselect", U32),
            Field("gfselect", U32),
            Field("guest_features", _u32_pair()),
            Field(
                "vqs",
                _per_queue(
                    queue_max,
                    Field("num", U16),
                    Field("unused", Buffer(1)),  # was a be16 'enabled' once; written 0, ignored on load
                    Field("enabled", BOOL),
                    Field("desc", _u32_pair()),
                    Field("avail", _u32_pair()),
                    Field("used", _u32_pair()),
                ),
            ),
        ),
    )

    return {
        "device_endian": Subsection(Description("virtio/device_endian", 1, 1, (Field("device_endian", U8),))),
        "64bit_features": Subsection(Description("virtio/64bit_features", 1, 1, (Field("guest_features", U64),))),
        "virtqueues": Subsection(
            Description(
                "virtio/virtqueues",
                1,
                1,
                (Field("vqs", _per_queue(queue_max, Field("avail", U64), Field("used", U64))),),
            )
        ),
        "ringsize": Subsection(
            Description("virtio/ringsize", 1, 1, (Field("vqs", _per_queue(queue_max, Field("num_default", U32))),))
        ),
        "broken": _flag("broken"),
        "extra_state": Subsection(
            Description(
                "virtio/extra_state",
                1,
                1,
                (Field("extra_state", Description("virtio_pci", 1, 1, (), subsections=(Subsection(modern_state),))),),
            )
        ),
        "started": _flag("started"),
        "packed_virtqueues": Subsection(
            Description(
                "virtio/packed_virtqueues",
                1,
                1,
                (
                    Field(
                        "vqs",
                        _per_queue(
                            queue_max,
                            Field("last_avail_idx", U16),
                            Field("last_avail_wrap_counter", BOOL),
                            Field("used_idx", U16),
                            Field("used_wrap_counter", BOOL),
                            Field("inuse", U32),
                        ),
                    ),
                ),
            )
        ),
        "disabled": _flag("disabled"),
    }


@dataclass(frozen=True)
class Transport:
    """The transport-specific parts of the layout."""

    name: str
    #: MSI-X vectors (virtio-pci); 0 for virtio-mmio.
    vectors: int = 0

    @property
    def is_pci(self) -> bool:
        return self.name == "pci"

    @property
    def has_msix(self) -> bool:
        """A virtio-pci device started with ``vectors=0`` has no MSI-X capability."""
        return self.is_pci and self.vectors > 0


# -- machine types ----------------------------------------------------------


def _version(era: str) -> tuple[int, int]:
    version = machines.release_version(era)
    if version is None:
        raise DescriptionError(f"virtio release {era!r} is not named after a QEMU version (qemu-X.Y)")
    return version


@dataclass(frozen=True)
class MachineCompat:
    """What a machine type's compatibility properties make of the reference device at a release."""

    #: MSI-X vectors of virtio-net-pci: the size of its table and pending bits.
    vectors: int
    #: The features the device offers: a loaded state's features must be among them.
    host_features: int


def machine_compat(era: str, machine: str) -> MachineCompat:
    """The reference virtio-net-pci of release ``era`` started with ``machine``.

    Two properties reach its migration state (docs/qemu-releases.md §3-4):
    ``hw_compat_5_2`` keeps the old default of 3 vectors (from 6.0 a device
    gets 2 x queue pairs + 2, i.e. 4), which sizes the MSI-X table and pending
    bits in the transport's part of the stream; and ``hw_compat_7_1`` turns off
    ``queue_reset`` (VIRTIO_F_RING_RESET), offered from 7.2 on, which a
    destination checks the loaded features against.
    """
    machine_version = machines.parse(machine).version
    vectors = VECTORS_BEFORE_6_0 if machine_version <= (5, 2) else REFERENCE_VECTORS
    features = REFERENCE_HOST_FEATURES
    if _version(era) >= (7, 2) and machine_version >= (7, 2):
        features |= RING_RESET
    return MachineCompat(vectors, features)


def _compat_of(release: Release) -> MachineCompat:
    return machine_compat(release.name, release.machine or machines.own(release.name))


def _transport_fields(transport: Transport) -> tuple[Field, ...]:
    if transport.is_pci:
        vectors = transport.vectors
        pci = (
            Field("pci_version", Scalar("int32")),
            Field("pci_config", Buffer(PCI_CONFIG_SIZE)),
            Field("pci_irq_state", Array(U32, length=4)),
        )
        if not transport.has_msix:
            return pci  # virtio_pci_save_config: msix_save writes nothing, and no config vector follows
        return (
            *pci,
            Field("msix_table", Buffer(vectors * 16)),
            Field("msix_pending", Buffer((vectors + 7) // 8)),
            Field("config_vector", U16),
        )
    return (
        Field("host_features_sel", U32),
        Field("guest_features_sel", U32),
        Field("guest_page_shift", U32),
    )


def _queue(transport: Transport) -> Struct:
    fields = [Field("num", U32)]
    if not transport.is_pci:
        fields.append(Field("align", U32))
    fields += [Field("desc", U64), Field("last_avail_idx", U16)]
    if transport.has_msix:
        fields.append(Field("vector", U16))  # virtio_pci_save_queue: only with MSI-X
    return Struct("virtqueue", tuple(fields))


@cache
def build_description(
    era: str,
    transport: Transport = Transport("pci", REFERENCE_VECTORS),
    *,
    name: str = "virtio-net",
    version: int = SECTION_VERSION,
    minimum_version: int | None = None,
    device_state: Description | None = None,
    config_size: int | None = REFERENCE_CONFIG_SIZE,
    host_features: int | None = REFERENCE_HOST_FEATURES,
    queue_max: int | None = None,
    queue_counts: tuple[int, ...] | None = None,
) -> Description:
    """The section layout of one release.

    ``device_state`` describes the device's own state (:mod:`.virtio_specific`;
    None: the reference model, which has none). ``config_size`` and
    ``host_features`` are what the destination device offers, checked after
    load; None skips the check (a capture from an unknown configuration).
    ``queue_max`` replaces the release's VIRTIO_QUEUE_MAX (see :func:`scaled_releases`).
    ``queue_counts`` are the virtqueue counts the device can have (None: any up to the maximum).
    """
    if queue_max is None:
        queue_max = _queue_max(era)
    fields = [
        *_transport_fields(transport),
        Field("status", U8),
        Field("isr", U8),
        Field("queue_sel", U16),
        Field("guest_features", U32),
        Field("config_len", U32),
        Field("config", Buffer(FieldRef("config_len"))),
        Field(
            "queues",
            Array(
                _queue(transport),
                framing=Framing(ListFraming.COUNT, count_bits=32),
                max_length=queue_max,
                max_message="Invalid number of virtqueues: {count:#x}",
            ),
        ),
    ]
    if device_state is not None:
        fields.append(Field("device", device_state))
    known = subsections(queue_max)
    trailers = tuple(known[key] for key in ERAS[era] if transport.is_pci or key != "extra_state")
    fields.append(Field("virtio", Description("virtio", 1, 1, (), subsections=trailers)))
    vectors = transport.vectors if transport.has_msix else None
    limits = _Limits(queue_max, vectors, config_size, host_features, queue_counts)
    minimum = version if minimum_version is None else minimum_version
    return Description(name, version, minimum, tuple(fields), validate=limits.check)


@dataclass(frozen=True)
class _Limits:
    """Post-load checks mirroring QEMU's migration-load hardening."""

    queue_max: int
    vectors: int | None
    config_size: int | None
    host_features: int | None
    queue_counts: tuple[int, ...] | None = None

    def check(self, state: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        if self.queue_counts is not None and len(state["queues"]) not in self.queue_counts:
            counts = " or ".join(str(count) for count in self.queue_counts)
            yield (
                "queues",
                f"the device has {counts} virtqueues, the stream {len(state['queues'])} "
                "(QEMU does not check this, and aborts loading more queues than its device has)",
            )
        if state["queue_sel"] >= self.queue_max:  # CVE-2013-6399
            yield "queue_sel", f"queue_sel {state['queue_sel']} is not below the maximum of {self.queue_max} queues"
        if self.config_size is not None and state["config_len"] != self.config_size:  # CVE-2014-0182
            yield (
                "config_len",
                f"config length mismatch: stream has {state['config_len']}, device has {self.config_size}",
            )
        if self.host_features is not None:
            features = state["guest_features"]
            wide = state["virtio"].get("virtio/64bit_features")
            if wide is not None:
                features = wide["guest_features"]
            if features & ~self.host_features:
                yield (
                    "guest_features",
                    (f"Features {features:#x} unsupported. Allowed features: {self.host_features:#x}"),
                )
        if self.vectors is not None:
            vector = state.get("config_vector", VIRTIO_NO_VECTOR)
            if vector != VIRTIO_NO_VECTOR and vector >= self.vectors:
                yield "config_vector", f"config vector {vector} is not below the {self.vectors} MSI-X vectors"
        for index, queue in enumerate(state["queues"]):
            if queue["desc"] == 0 and queue["last_avail_idx"] != 0:
                yield (
                    f"queues[{index}]/last_avail_idx",
                    (f"VQ {index} address 0x0 inconsistent with Host index {queue['last_avail_idx']:#x}"),
                )
            vector = queue.get("vector", VIRTIO_NO_VECTOR)
            if self.vectors is not None and vector != VIRTIO_NO_VECTOR and vector >= self.vectors:
                yield f"queues[{index}]/vector", f"queue vector {vector} is not below the {self.vectors} MSI-X vectors"


# -- phase 1: the old-style visit function --------------------------------------


def legacy_visit(era: str, queue_max: int | None = None, machine: str = "") -> LegacyVisit:
    """The mechanical conversion of ``virtio_pci_save_config`` + ``virtio_save``
    (and their loaders) for one era under a machine type (empty: its own): one
    visit call per ``qemu_put_*``."""
    description = _description(era, queue_max, machine)
    vectors = machine_compat(era, machine or machines.own(era)).vectors
    queues_type = description.fields[-2].type
    nested = description.fields[-1].type
    assert isinstance(queues_type, Array) and isinstance(nested, Description)

    def visit(visitor: Visitor, state: Mapping[str, Any], version: int) -> State:
        if not description.minimum_version_id <= version <= description.version_id:
            # virtio_load refuses a section version it does not know, as the walker does.
            offset, path = visitor.where()
            raise LoadRefused(version_refusal(description.name, version, description), offset=offset, path=path)
        out: State = {}
        visitor.start_struct(description.name)
        # virtio_pci_save_config: pci_device_save, msix_save, the config vector
        out["pci_version"] = visitor.visit_int32("pci_version", state["pci_version"])
        out["pci_config"] = visitor.visit_buffer("pci_config", state["pci_config"], PCI_CONFIG_SIZE)
        irq_state: list[int] = []
        visitor.start_list("pci_irq_state", KNOWN_LENGTH, 4)
        while visitor.next_list(len(irq_state) < 4):
            irq_state.append(visitor.visit_uint32("", state["pci_irq_state"][len(irq_state)]))
        visitor.end_list()
        out["pci_irq_state"] = irq_state
        out["msix_table"] = visitor.visit_buffer("msix_table", state["msix_table"], vectors * 16)
        out["msix_pending"] = visitor.visit_buffer("msix_pending", state["msix_pending"], (vectors + 7) // 8)
        out["config_vector"] = visitor.visit_uint16("config_vector", state["config_vector"])
        # virtio_save: the generic part
        out["status"] = visitor.visit_uint8("status", state["status"])
        out["isr"] = visitor.visit_uint8("isr", state["isr"])
        out["queue_sel"] = visitor.visit_uint16("queue_sel", state["queue_sel"])
        out["guest_features"] = visitor.visit_uint32("guest_features", state["guest_features"])
        out["config_len"] = visitor.visit_uint32("config_len", state["config_len"])
        out["config"] = visitor.visit_buffer("config", state["config"], out["config_len"])
        queues = state["queues"]
        count = visitor.start_list("queues", queues_type.framing, -1 if visitor.is_input else len(queues))
        if visitor.is_input and count > (queues_type.max_length or 0):
            refuse_count(visitor, queues_type, "queues", count)
        loaded: list[State] = []
        while visitor.next_list(len(loaded) < len(queues)):
            if len(loaded) >= (queues_type.max_length or 0):
                refuse_count(visitor, queues_type, "queues", len(loaded) + 1)
            old = queues[len(loaded)] if len(loaded) < len(queues) else _QUEUE_DEFAULT
            visitor.start_struct("")
            queue = {
                "num": visitor.visit_uint32("num", old["num"]),
                "desc": visitor.visit_uint64("desc", old["desc"]),
                "last_avail_idx": visitor.visit_uint16("last_avail_idx", old["last_avail_idx"]),
                # virtio_pci_save_queue
                "vector": visitor.visit_uint16("vector", old["vector"]),
            }
            visitor.end_struct()
            loaded.append(queue)
        visitor.end_list()
        out["queues"] = loaded
        # vmstate_virtio: QEMU saves the subsections through vmstate even here.
        out["virtio"] = walk(visitor, nested, state["virtio"], nested.version_id)
        # The wrapper itself has no subsections.
        visitor.start_list("subsections", description.subsection_framing, -1 if visitor.is_input else 0)
        if visitor.next_list(False):
            offset, path = visitor.where()
            raise LoadRefused("unknown subsection in the virtio-net wrapper", offset=offset, path=path)
        visitor.end_list()
        visitor.end_struct()
        check_loaded(visitor, description, out)
        return out

    return visit


_QUEUE_DEFAULT = {"num": 0, "desc": 0, "last_avail_idx": 0, "vector": 0}


# -- real QEMU sections -------------------------------------------------------


PCI_CAP_EXPRESS = 0x10
PCI_CAP_MSIX = 0x11


def _capability(config: bytes, wanted: int) -> int | None:
    """Offset of a capability in the PCI capability chain (pointer at 0x34)."""
    seen = set()
    pointer = config[0x34] & 0xFC
    while pointer and pointer not in seen and pointer + 4 <= len(config):
        seen.add(pointer)
        if config[pointer] == wanted:
            return pointer
        pointer = config[pointer + 1] & 0xFC
    return None


def _msix_vectors(config: bytes) -> int:
    """MSI-X table size: the capability's message control, low 11 bits, plus one."""
    pointer = _capability(config, PCI_CAP_MSIX)
    if pointer is None:
        return 0
    return (int.from_bytes(config[pointer + 2 : pointer + 4], "little") & 0x7FF) + 1


@dataclass(frozen=True)
class CapturedSectionCodec:
    """Decodes the virtio section of a real QEMU stream (5.2, 7.2, 10.0), field by field.

    ``layout`` is (transport: 0 pci / 1 mmio, MSI-X vectors, the device part's
    code (:mod:`.virtio_specific`), 1 when the guest accepted
    CTRL_GUEST_OFFLOADS). The section's version must be one the device accepts
    (virtio-net: 11), as QEMU's loader requires.
    """

    idstr: str
    version: int
    layout: tuple[int, ...] = ()
    device: str = "virtio"
    #: The receiving device's own layout (from its capture): its transport,
    #: vectors and device part, whatever the stream's config space says.
    receiver: tuple[int, ...] | None = None

    @property
    def description(self) -> Description:
        kind, vectors, device_kind, offloads = self.layout
        transport = Transport("pci" if kind == 0 else "mmio", vectors)
        name = self.idstr.rsplit("/", 1)[-1]
        minimum, current = virtio_specific.versions(self.idstr) or (SECTION_VERSION, SECTION_VERSION)
        return build_description(
            "qemu-7.2",
            transport,
            name=name,
            version=current,
            minimum_version=minimum,
            device_state=virtio_specific.state_of(device_kind, bool(offloads)),
            queue_counts=virtio_specific.queue_counts(device_kind),
            config_size=None,
            host_features=None,
        )

    def for_layout(self, layout: tuple[int, ...]) -> SectionCodec | None:
        if len(layout) != 4 or layout[0] not in (0, 1) or layout[2] not in (virtio_specific.NET, virtio_specific.BLK):
            return None
        if layout[3] not in (0, 1) or (layout[3] and layout[2] != virtio_specific.NET):
            return None
        return CapturedSectionCodec(self.idstr, self.version, tuple(layout))

    def for_legacy_bytes(self, data: bytes, start: int, end: int, footer: bytes) -> SectionCodec | None:
        """The layout: the vector count from the PCI config space, whether the
        device part carries ``curr_guest_offloads`` from the low features word.
        None (the section is sized by the vmdesc trailer) for a device whose own
        state is not modelled, or a PCI Express function."""
        device_kind = virtio_specific.kind_of(self.idstr)
        if device_kind is None:
            return None
        is_pci = not self.idstr.startswith("virtio-mmio@")
        vectors = 0
        if self.receiver is not None:
            kind, vectors, device_kind = self.receiver[:3]
            is_pci = kind == 0
        elif is_pci:
            config = data[start + 4 : start + 4 + PCI_CONFIG_SIZE]
            if len(config) == PCI_CONFIG_SIZE:
                if _capability(config, PCI_CAP_EXPRESS) is not None:
                    return None  # a PCI Express function: 4096-byte config space, not modelled
                vectors = _msix_vectors(config)
            # A shorter config space is a truncated section: loading says where.
        kind = 0 if is_pci else 1
        codec = CapturedSectionCodec(self.idstr, self.version, (kind, vectors, device_kind, 0))
        if device_kind != virtio_specific.NET:
            return codec
        head, _subsections = _head_and_subsections(codec.description)
        visitor = QemuFileInputVisitor(data, start, end=end)
        try:
            features = compiled.load(visitor, head, self.version)["guest_features"]
        except DecodeError:
            return codec  # the whole load meets the same bytes, and says where
        offloads = int(bool(features & virtio_specific.CTRL_GUEST_OFFLOADS))
        return (
            codec if not offloads else CapturedSectionCodec(self.idstr, self.version, (kind, vectors, device_kind, 1))
        )

    def load(self, visitor: Visitor, version: int) -> State:
        return compiled.load(visitor, self.description, version)

    def save(self, visitor: Visitor, state: State, version: int) -> None:
        compiled.save(visitor, self.description, state, version)

    # -- as the destination's device reads it (migcompat.qemu.incoming) --

    def receiving(self, own: Record) -> SectionCodec:
        """The destination's device, whose own section is ``own``: QEMU reads the
        MSI-X table and the queues' vectors by its own vector count."""
        if own.device != "virtio" or len(own.layout) != 4:
            return self
        return CapturedSectionCodec(self.idstr, self.version, receiver=own.layout)

    def refusals_before(self, data: bytes, start: int, own: Record) -> Iterator[tuple[str, str, str]]:
        """What the destination refuses before reading further: QEMU checks the PCI
        config space as soon as it has read it (``get_pci_config_device``)."""
        mine = own.state or {}
        if "pci_config" in mine and len(data) >= start + 4 + PCI_CONFIG_SIZE:
            problem = pci.bad_config_byte(data[start + 4 : start + 4 + PCI_CONFIG_SIZE], mine["pci_config"])
            if problem:
                yield "pci_config", problem, ""

    def refusals(self, loaded: Mapping[str, Any], own: Record, destination: Any) -> Iterator[tuple[str, str, str]]:
        """(field path, QEMU's words, what QEMU itself does wrong or "") for what the
        destination's device refuses after reading ``loaded`` (virtio_load,
        virtio_pci_load_config, virtio-net's post-load functions)."""
        mine = own.state or {}
        for index, level in enumerate(loaded.get("pci_irq_state", ())):
            if level not in (0, 1):
                yield f"pci_irq_state[{index}]", f"irq state {level}: must be 0 or 1.", ""
        if len(loaded["queues"]) > len(mine.get("queues", loaded["queues"])):
            yield (
                "queues",
                f"{len(loaded['queues'])} virtqueues, the device has {len(mine['queues'])}",
                "QEMU does not check the queue count against its device and aborts (a crash)",
            )
        if virtio_specific.kind_of(self.idstr) == virtio_specific.NET:
            for index, (queue, its) in enumerate(zip(loaded["queues"], mine.get("queues", ()), strict=False)):
                if queue["num"] == 0 and its["num"] != 0:
                    yield (
                        f"queues[{index}]/num",
                        f"virtqueue {index} has ring size 0, the device's has {its['num']}",
                        "QEMU 7.2 aborts: virtio_net_change_num_queues: Assertion `old_num_queues >= 3' failed",
                    )
                    break
        device, own_device = loaded.get("device") or {}, mine.get("device") or {}
        for flag, words in (("has_vnet_hdr", "vnet_hdr=on"), ("has_ufo", "TUN_F_UFO support")):
            if device.get(flag) and not own_device.get(flag, 1):
                yield f"device/{flag}", f"virtio-net: saved image requires {words}", ""
        offered = _offered_features(self.idstr, own, destination)
        if offered is not None:
            wide = loaded["virtio"].get("virtio/64bit_features")
            features = wide["guest_features"] if wide is not None else loaded["guest_features"]
            if features & ~offered:
                yield "guest_features", f"Features {features:#x} unsupported. Allowed features: {offered:#x}", ""

    def finding(self, error: DecodeError) -> str:
        """What QEMU itself does on a section our load refuses, when it does worse than refuse."""
        if error.path.endswith("/config") and isinstance(error, TruncatedInput) and "of " in str(error):
            return "QEMU 7.2 spins skipping config bytes past the end of the stream (a hang)"
        return ""


def _offered_features(idstr: str, own: Record, destination: Any) -> int | None:
    """The features the destination's virtio-net-pci offers, from its release and
    machine type (docs/qemu-releases.md §3); None when they are not known."""
    release = getattr(destination, "release", None)
    machine = getattr(destination, "machine", "")
    offered = virtio_specific.HOST_FEATURES.get(virtio_specific.kind_of(idstr) or virtio_specific.NONE)
    if release is None or offered is None or own.layout[:1] != (0,):
        return None
    try:
        if machines.release_version(release) is None or not machines.knows(release, machine):
            return None
    except UsageError:
        return None  # not a versioned machine type
    return offered | (machine_compat(release, machine).host_features & RING_RESET)


#: A captured section's description -> the part before the device's own state, and the subsections.
_SPLITS: dict[int, tuple[Description, Description, Description]] = {}


def _head_and_subsections(full: Description) -> tuple[Description, Description]:
    """The part before the device's own state (transport, generic part) and the
    subsections, as the same two description objects for one (cached) full
    description, so their compiled codecs are built once."""
    split = _SPLITS.get(id(full))
    if split is None or split[0] is not full:
        subsections = full.fields[-1].type
        assert isinstance(subsections, Description)
        head = Description(full.name, full.version_id, full.minimum_version_id, full.fields[:-2])
        split = _SPLITS[id(full)] = (full, head, subsections)
    return split[1], split[2]


# -- generated states -------------------------------------------------------


def _queue_strategy(vectors: int) -> st.SearchStrategy[State]:
    ring_sizes = st.sampled_from([0, 64, 128, 256, 1024])
    vector = st.one_of(st.integers(0, vectors - 1), st.just(VIRTIO_NO_VECTOR))

    def queue(num: int, desc: int, last_avail_idx: int, vector: int) -> State:
        return {"num": num, "desc": desc, "last_avail_idx": last_avail_idx if desc else 0, "vector": vector}

    return st.builds(queue, ring_sizes, st.integers(0, 2**64 - 1), st.integers(0, 0xFFFF), vector)


def strategy(release: Release) -> st.SearchStrategy[State]:
    """Valid states of the reference virtio-net-over-PCI device at a release."""
    description = release.description
    queues_type = description.fields[-2].type
    assert isinstance(queues_type, Array)
    queue_max = queues_type.max_length or 0
    compat = _compat_of(release)
    queue = _queue_strategy(compat.vectors)
    low_features = compat.host_features & 0xFFFFFFFF
    queues = st.one_of(
        st.lists(queue, max_size=min(queue_max, 8)),
        queue.map(lambda one: [one] * queue_max),  # the maximum queue count
    )
    overrides: dict[str, st.SearchStrategy[Any]] = {
        "pci_version": st.just(2),
        "pci_irq_state": st.lists(st.integers(0, 1), min_size=4, max_size=4),
        "config_vector": st.one_of(st.integers(0, compat.vectors - 1), st.just(VIRTIO_NO_VECTOR)),
        "queue_sel": st.integers(0, queue_max - 1),
        "guest_features": st.integers(0, 0xFFFFFFFF).map(lambda value: value & low_features),
        "config_len": st.just(REFERENCE_CONFIG_SIZE),
        "queues": queues,
        "virtio/virtio/64bit_features/guest_features": st.integers(0, 2**64 - 1).map(
            lambda value: value & compat.host_features
        ),
        "virtio/virtio/device_endian/device_endian": st.integers(0, 2),
    }
    return states(description, overrides)


def _description(era: str, queue_max: int | None, machine: str) -> Description:
    compat = machine_compat(era, machine or machines.own(era))
    return build_description(
        era, Transport("pci", compat.vectors), host_features=compat.host_features, queue_max=queue_max
    )


def _release(era: str, notes: str, queue_max: int | None = None, machine: str = "") -> Release:
    return Release(era, _description(era, queue_max, machine), legacy_visit(era, queue_max, machine), notes, machine)


@cache
def _under(era: str, machine: str, queue_max: int | None) -> Release:
    notes = dict(_HISTORY)[era]
    return _release(era, f"{notes}; under machine type {machine}", queue_max, machine)


def under(release: Release, machine: str) -> Release:
    """``release`` started with ``machine`` (:func:`machine_compat`), at the release's own queue limit."""
    queues = release.description.fields[-2].type
    assert isinstance(queues, Array)
    queue_max = queues.max_length
    return _under(release.name, machine, None if queue_max == _queue_max(release.name) else queue_max)


def _queue_max(era: str) -> int:
    return VIRTIO_QUEUE_MAX if _version(era) >= (2, 4) else VIRTIO_QUEUE_MAX_BEFORE_2_4


def subsections_known(source: Release, destination: Release, pairing: str) -> Outcome:
    """The policy: a destination loads a stream when it knows every subsection
    the source's release can send (QEMU refuses an unknown subsection), whatever
    their order as releases; the machine type is checked before this."""
    return Outcome.OK if set(ERAS[source.name]) <= set(ERAS[destination.name]) else Outcome.REFUSED


def _is_virtio_section(idstr: str) -> bool:
    return "/virtio-" in idstr and not idstr.endswith("-pci")


#: A device name a description can carry (migcompat.model.vmstate's rule for names).
_DEVICE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def _section_codec(idstr: str, version: int) -> SectionCodec | None:
    # The description is named after the idstr's last part: a section whose name
    # no description can carry is not one we decode (it stays opaque).
    if not _DEVICE_NAME.fullmatch(idstr.rsplit("/", 1)[-1]):
        return None
    return CapturedSectionCodec(idstr, version)


def fixed_states(release: Release) -> list[State]:
    """No queues and no subsections; and three queues with every subsection the
    release knows (non-default values), which older releases must refuse."""
    description = release.description
    nested = description.fields[-1].type
    assert isinstance(nested, Description)
    minimal = copy.deepcopy(description.defaults())
    minimal.update(
        pci_version=2,
        config_vector=VIRTIO_NO_VECTOR,
        config_len=REFERENCE_CONFIG_SIZE,
        config=bytes(REFERENCE_CONFIG_SIZE),
        virtio={},
    )
    full = copy.deepcopy(minimal)
    full.update(
        status=0x0F,
        queue_sel=2,
        guest_features=0x30000000 & REFERENCE_HOST_FEATURES,
        config=bytes.fromhex("5254001234560100"),
        queues=[{"num": 256, "desc": 0x100000 * (i + 1), "last_avail_idx": 7 * i, "vector": i} for i in range(3)],
    )
    full["virtio"] = {sub.name: _non_default(sub.description) for sub in nested.subsections}
    if "virtio/64bit_features" in full["virtio"]:
        # VERSION_1 and the low half: features every form of the device offers.
        full["virtio"]["virtio/64bit_features"]["guest_features"] = (1 << 32) | full["guest_features"]
    return [minimal, full]


def _non_default(description: Description) -> State:
    """A description's state with every subsection present and its scalars (and
    the first element of each array of structs) changed from the defaults."""
    state = copy.deepcopy(description.defaults())
    for field in description.fields:
        value = state[field.name]
        if isinstance(field.type, Description):
            state[field.name] = _non_default(field.type)
        elif isinstance(value, bool):
            state[field.name] = True
        elif isinstance(value, int):
            state[field.name] = 1
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            first = {key: 2 if type(item) is int else item for key, item in value[0].items()}
            state[field.name] = [first, *value[1:]]
    for sub in description.subsections:
        state[sub.name] = _non_default(sub.description)
    return state


#: The releases, oldest first, and what each changed.
_HISTORY = (
    ("qemu-2.1", "VIRTIO_QUEUE_MAX 64, no subsections"),
    ("qemu-2.2", "adds virtio/device_endian"),
    ("qemu-2.4", "VIRTIO_QUEUE_MAX 1024; adds virtio/64bit_features and virtio/virtqueues"),
    ("qemu-2.7", "adds virtio/ringsize, virtio/broken, virtio/extra_state (virtio_pci/modern_state)"),
    ("qemu-5.2", "adds virtio/started, virtio/packed_virtqueues, virtio/disabled (by 4.2); QEMU 5.2's layout"),
    ("qemu-7.2", "QEMU 7.2's layout: 5.2's; offers queue_reset (RING_RESET) on its own machine types"),
    ("qemu-10.0", "QEMU 10.0's layout: 7.2's (no subsection added or removed)"),
)


@cache
def scaled_releases(queue_max: int) -> tuple[Release, ...]:
    """Every release as if QEMU were built with ``VIRTIO_QUEUE_MAX = queue_max``.

    The layout, the checks and the release history are unchanged; only the
    queue count limit and the length of the per-queue subsection arrays (1024
    entries from 2.4 on) shrink. A state of a scaled release costs a few
    hundred visits instead of thousands, which is what lets a fuzzer drive
    round trips through every path at hundreds of states a second; the
    full-size releases are what the matrix, the golden streams and real QEMU
    exercise.
    """
    return tuple(
        _release(era, f"{notes} (VIRTIO_QUEUE_MAX scaled to {queue_max})", queue_max) for era, notes in _HISTORY
    )


DEVICE = Device(
    name="virtio",
    fixed_states=fixed_states,
    summary="generic virtio state (virtio-net over virtio-pci), subsections added release by release",
    releases=tuple(_release(era, notes) for era, notes in _HISTORY),
    strategy=strategy,
    matches_section=_is_virtio_section,
    section_codec=_section_codec,
    fuzz_releases=lambda: scaled_releases(FUZZ_QUEUE_MAX),
    policy=subsections_known,
    machines=under,
)
