"""The virtio reference device: both forms agree, releases interoperate as QEMU's
do, post-load checks mirror QEMU's CVE fixes, and real captures round-trip."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migcompat import devices
from migcompat.devices import machines
from migcompat.devices.base import Release
from migcompat.devices.virtio import (
    DEVICE,
    REFERENCE_HOST_FEATURES,
    VIRTIO_QUEUE_MAX,
    VIRTIO_QUEUE_MAX_BEFORE_2_4,
    build_description,
    scaled_releases,
)
from migcompat.errors import DecodeError, InvalidState, LoadRefused, MalformedInput
from migcompat.model import vmstate
from migcompat.qemu import stream
from migcompat.wire import PAIRINGS
from migcompat.wire.dict import DictOutputVisitor
from migcompat.wire.qemufile import QemuFileInputVisitor, QemuFileOutputVisitor

CORPUS = Path(__file__).parent.parent / "corpora" / "qemu-7.2"
RELEASES = DEVICE.releases
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _phase1(release: Release, visitor: Any, state: dict[str, Any]) -> Any:
    release.legacy(visitor, state, release.version_id)
    return visitor.result()


def _phase2(release: Release, visitor: Any, state: dict[str, Any]) -> Any:
    return vmstate.encode(visitor, release.description, state)


@pytest.mark.parametrize("release", RELEASES, ids=lambda r: r.name)
@SETTINGS
@given(data=st.data())
def test_phase1_and_phase2_write_the_same_and_round_trip(release: Release, data: st.DataObject) -> None:
    state = data.draw(DEVICE.strategy(release))
    assert _phase1(release, QemuFileOutputVisitor(), state) == _phase2(release, QemuFileOutputVisitor(), state)
    assert _phase1(release, DictOutputVisitor(), state) == _phase2(release, DictOutputVisitor(), state)
    for name, pairing in PAIRINGS.items():
        encoded = _phase2(release, pairing.make_output(), state)
        by_walker = vmstate.load(pairing.make_input(encoded), release.description, release.version_id)
        by_legacy = release.legacy(pairing.make_input(encoded), release.description.defaults(), release.version_id)
        assert by_walker == state, name
        assert by_legacy == state, name


def _state(release: Release, **changes: Any) -> dict[str, Any]:
    """A fixed valid state: three queues, every subsection the release knows."""
    description = release.description
    state = copy.deepcopy(description.defaults())
    state.update(
        pci_version=2,
        pci_config=bytes(range(256)),
        config_vector=0xFFFF,
        config_len=8,
        config=bytes(8),
        queues=[{"num": 256, "desc": 0x1000 * (i + 1), "last_avail_idx": i, "vector": i} for i in range(3)],
    )
    nested = description.fields[-1].type
    assert isinstance(nested, vmstate.Description)
    state["virtio"] = {sub.name: copy.deepcopy(sub.description.defaults()) for sub in nested.subsections}
    if "virtio/extra_state" in state["virtio"]:
        state["virtio"]["virtio/extra_state"]["extra_state"]["virtio_pci/modern_state"] = copy.deepcopy(
            _modern(nested).defaults()
        )
    state.update(changes)
    return state


def _modern(nested: vmstate.Description) -> vmstate.Description:
    """The virtio_pci/modern_state description inside a release's virtio/extra_state."""
    extra = nested.subsection("virtio/extra_state")
    assert extra is not None
    wrapper = extra.description.fields[0].type
    assert isinstance(wrapper, vmstate.Description)
    return wrapper.subsections[0].description


def _qemufile(release: Release, state: dict[str, Any]) -> bytes:
    return _phase2(release, QemuFileOutputVisitor(), state)


def test_newest_release_layout_is_qemu_72_byte_for_byte() -> None:
    """The generic part as QEMU-FACTS lists it, written out by hand."""
    release = DEVICE.newest
    state = _state(release, status=0x0F, isr=1, queue_sel=2, guest_features=0x12345678)
    state["virtio"] = {}
    data = _qemufile(release, state)
    expected = b"".join(
        [
            (2).to_bytes(4, "big"),  # PCI state version
            bytes(range(256)),  # config space
            bytes(16),  # 4 x be32 irq state
            bytes(4 * 16),  # MSI-X table, 4 vectors
            bytes(1),  # pending bits
            b"\xff\xff",  # config vector
            b"\x0f\x01",  # status, isr
            b"\x00\x02",  # queue_sel
            (0x12345678).to_bytes(4, "big"),  # guest features, low half
            (8).to_bytes(4, "big") + bytes(8),  # config length + config
            (3).to_bytes(4, "big"),  # queue count
            *(
                (256).to_bytes(4, "big")
                + (0x1000 * (i + 1)).to_bytes(8, "big")
                + i.to_bytes(2, "big")
                + i.to_bytes(2, "big")
                for i in range(3)
            ),  # num, desc, last_avail_idx, vector
        ]
    )
    assert data == expected


def test_subsection_bytes_follow_qemu_framing() -> None:
    release = DEVICE.newest
    state = _state(release)
    state["virtio"] = {"virtio/64bit_features": {"guest_features": 1 << 32}}
    data = _qemufile(release, state)
    name = b"virtio/64bit_features"
    tail = b"\x05" + bytes((len(name),)) + name + (1).to_bytes(4, "big") + (1 << 32).to_bytes(8, "big")
    assert data.endswith(tail)
    assert data[: -len(tail)] == _qemufile(release, {**state, "virtio": {}})


@pytest.mark.parametrize(
    ("source", "destination", "refused"),
    [
        ("qemu-2.1", "qemu-7.2", False),  # older stream, newer QEMU: loads
        ("qemu-7.2", "qemu-2.1", True),  # a needed subsection the old one does not know
        ("qemu-2.4", "qemu-2.2", True),
        ("qemu-2.2", "qemu-2.4", False),
    ],
)
def test_cross_release_loads_follow_qemus_rules(source: str, destination: str, refused: bool) -> None:
    # Both sides run the older release's machine type, as a migration between them must.
    machine = machines.own(min(source, destination, key=lambda name: machines.release_version(name) or (0, 0)))
    sent = DEVICE.at(DEVICE.release(source), machine)
    received = DEVICE.at(DEVICE.release(destination), machine)
    data = _qemufile(sent, _state(sent))
    visitor = QemuFileInputVisitor(data)
    if refused:
        with pytest.raises(LoadRefused, match="unknown subsection 'virtio/"):
            vmstate.load(visitor, received.description, received.version_id)
    else:
        loaded = vmstate.load(visitor, received.description, received.version_id)
        visitor.finish()
        assert loaded["queues"] == _state(sent)["queues"]


def test_newer_release_without_new_subsections_loads_in_older() -> None:
    """QEMU's behaviour: a subsection that is not needed is not sent, so the
    older destination loads the newer stream."""
    older = DEVICE.release("qemu-2.1")
    newer = DEVICE.at(DEVICE.release("qemu-7.2"), machines.own(older.name))
    state = _state(newer)
    state["virtio"] = {}
    loaded = vmstate.load(QemuFileInputVisitor(_qemufile(newer, state)), older.description, older.version_id)
    assert loaded["queues"] == state["queues"] and loaded["virtio"] == {}


def _hostile(mutate: Any) -> bytes:
    """qemufile bytes of a state that the post-load checks must refuse."""
    release = DEVICE.newest
    state = _state(release)
    mutate(state)
    return _qemufile(release, state)


REJECTIONS = [
    (
        "queue_count",
        lambda s: s.update(queues=s["queues"][:1] * (VIRTIO_QUEUE_MAX + 1)),
        "queues",
        "Invalid number of virtqueues: 0x401",
    ),
    ("queue_sel", lambda s: s.update(queue_sel=VIRTIO_QUEUE_MAX), "queue_sel", "queue_sel 1024 is not below"),
    ("config_len", lambda s: s.update(config_len=12, config=bytes(12)), "config_len", "config length mismatch"),
    # Without the 64-bit subsection the low half is what is checked.
    (
        "features",
        lambda s: (s.update(guest_features=1 << 31), s["virtio"].pop("virtio/64bit_features")),
        "guest_features",
        "Features 0x80000000 unsupported",
    ),
    (
        "wide_features",
        lambda s: s["virtio"]["virtio/64bit_features"].update(guest_features=1 << 41),
        "guest_features",
        "Features 0x20000000000 unsupported",
    ),
    (
        "last_avail_idx",
        lambda s: s["queues"][0].update(desc=0, last_avail_idx=7),
        "queues[0]/last_avail_idx",
        "VQ 0 address 0x0 inconsistent with Host index 0x7",
    ),
    ("vector", lambda s: s["queues"][2].update(vector=4), "queues[2]/vector", "queue vector 4 is not below"),
    ("config_vector", lambda s: s.update(config_vector=9), "config_vector", "config vector 9"),
]


@pytest.mark.parametrize(("mutate", "field", "message"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS])
@pytest.mark.parametrize("form", ["walker", "legacy"])
def test_post_load_checks_reject_what_qemu_rejects(mutate: Any, field: str, message: str, form: str) -> None:
    release = DEVICE.newest
    data = _hostile(mutate)
    visitor = QemuFileInputVisitor(data)
    with pytest.raises(InvalidState, match=message) as caught:
        if form == "walker":
            vmstate.load(visitor, release.description, release.version_id)
        else:
            release.legacy(visitor, release.description.defaults(), release.version_id)
    assert field in caught.value.path
    assert isinstance(caught.value.offset, int)


def test_old_queue_maximum_was_64() -> None:
    old = DEVICE.release("qemu-2.1")
    state = _state(old, queues=[{"num": 1, "desc": 1, "last_avail_idx": 0, "vector": 0}] * 65)
    with pytest.raises(InvalidState, match="0x41"):
        vmstate.load(QemuFileInputVisitor(_qemufile(old, state)), old.description, old.version_id)
    assert VIRTIO_QUEUE_MAX_BEFORE_2_4 == 64


def test_strategy_reaches_the_maximum_queue_count() -> None:
    """The strategy's edge: 1024 queues, which must load."""
    release = DEVICE.newest
    seen: list[int] = []

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(DEVICE.strategy(release))
    def collect(state: dict[str, Any]) -> None:
        seen.append(len(state["queues"]))

    collect()
    assert VIRTIO_QUEUE_MAX in seen and 0 in seen


def _shape(kind: Any) -> Any:
    """A description's layout with every array length and count limit left out."""
    if isinstance(kind, vmstate.Description):
        return (
            kind.name,
            kind.version_id,
            [(f.name, _shape(f.type), f.since) for f in kind.fields],
            [_shape(s.description) for s in kind.subsections],
        )
    if isinstance(kind, vmstate.Struct):
        return (kind.name, [(f.name, _shape(f.type)) for f in kind.fields])
    if isinstance(kind, vmstate.Array):
        return ("array", _shape(kind.element), kind.framing, isinstance(kind.length, int))
    return kind


@pytest.mark.parametrize("index", range(len(RELEASES)), ids=[r.name for r in RELEASES])
def test_a_scaled_release_is_the_release_with_a_smaller_queue_maximum(index: int) -> None:
    real, scaled = RELEASES[index], scaled_releases(4)[index]
    assert scaled.name == real.name and "scaled to 4" in scaled.notes
    assert _shape(scaled.description) == _shape(real.description)
    assert scaled.description != real.description
    queues = scaled.description.fields[-2].type
    assert isinstance(queues, vmstate.Array) and queues.max_length == 4
    # The per-queue subsection arrays shrink with it; the count limit holds on
    # every path, at the scaled maximum.
    queue = {"num": 1, "desc": 1, "last_avail_idx": 0, "vector": 0}
    fits = _state(scaled, queues=[queue] * 4)
    assert vmstate.load(QemuFileInputVisitor(_qemufile(scaled, fits)), scaled.description, 11) == fits
    too_many = _qemufile(scaled, _state(scaled, queues=[queue] * 5))
    with pytest.raises(InvalidState, match="0x5"):
        vmstate.load(QemuFileInputVisitor(too_many), scaled.description, 11)
    with pytest.raises(InvalidState, match="0x5"):
        scaled.legacy(QemuFileInputVisitor(too_many), scaled.description.defaults(), 11)
    assert DEVICE.fuzz_releases is not None and DEVICE.fuzz_releases()[index].description == scaled.description


@pytest.mark.parametrize(
    ("capture", "idstr", "layout"),
    [
        ("pc-virtio-net", "0000:00:02.0/virtio-net", (0, 4, 1, 0)),
        ("microvm-virtio-net", "virtio-mmio@00000000feb02e00/virtio-net", (1, 0, 1, 0)),
        ("pc-virtio-blk", "0000:00:02.0/virtio-blk", (0, 2, 2, 0)),
        ("pc-virtio-net-novectors", "0000:00:02.0/virtio-net", (0, 0, 1, 0)),
        ("pc-virtio-net-5vectors", "0000:00:02.0/virtio-net", (0, 5, 1, 0)),
    ],
)
def test_real_capture_virtio_section_decodes_and_reencodes(capture: str, idstr: str, layout: tuple[int, ...]) -> None:
    data = (CORPUS / f"{capture}.bin").read_bytes()
    parsed = stream.parse_qemu(data, devices.resolve_section)
    record = next(r for r in parsed.records if r.idstr == idstr)
    assert record.device == "virtio" and record.layout == layout
    state = record.state
    assert state is not None
    assert state["status"] == 0 and state["queues"] and all(q["num"] > 0 for q in state["queues"])
    assert "virtio/64bit_features" in state["virtio"]
    assert stream.encode_qemu(parsed, devices.resolve_section) == data
    ber = stream.encode_ber(parsed, devices.resolve_section)
    assert stream.encode_qemu(stream.parse_ber(ber, devices.resolve_section), devices.resolve_section) == data


def test_corrupt_virtio_section_is_an_error_not_opaque() -> None:
    data = bytearray((CORPUS / "pc-virtio-blk.bin").read_bytes())
    parsed = stream.parse_qemu(bytes(data), devices.resolve_section)
    record = next(r for r in parsed.records if r.device == "virtio")
    assert record.state is not None
    record.state["queue_sel"] = 5000
    broken = stream.encode_qemu(parsed, devices.resolve_section)
    with pytest.raises(DecodeError, match="queue_sel 5000") as caught:
        stream.parse_qemu(broken, devices.resolve_section)
    assert caught.value.path.startswith("0000:00:02.0/virtio-blk")


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        # 10 bytes gone inside virtio/virtqueues: the subsections no longer end at the footer
        (lambda d, at: d[: at + 100] + d[at + 110 :], MalformedInput),
        # the first subsection renamed: an unknown virtio subsection is refused, as QEMU does
        (lambda d, at: d[: at + 9] + b"X" + d[at + 10 :], LoadRefused),
    ],
    ids=["bytes_missing", "unknown_subsection"],
)
def test_corrupt_subsections_are_errors_not_opaque(edit: Any, error: type[DecodeError]) -> None:
    assert build_description("qemu-7.2").name == "virtio-net"
    data = (CORPUS / "pc-virtio-blk.bin").read_bytes()
    at = data.index(b"\x05\x15virtio/64bit_features")
    with pytest.raises(error) as caught:
        stream.parse_qemu(edit(data, at), devices.resolve_section)
    assert caught.value.path.startswith("0000:00:02.0/virtio-blk")


def test_host_features_constant_offers_version_1() -> None:
    assert REFERENCE_HOST_FEATURES >> 32 == 1


@pytest.mark.parametrize(
    ("capture", "msix", "vectors"),
    [("pc-virtio-net", True, 4), ("pc-virtio-net-5vectors", True, 5), ("pc-virtio-net-novectors", False, 0)],
)
def test_the_pci_transport_carries_msix_state_exactly_when_the_device_has_msix(
    capture: str, msix: bool, vectors: int
) -> None:
    data = (CORPUS / f"{capture}.bin").read_bytes()
    record = next(r for r in stream.parse_qemu(data, devices.resolve_section).records if r.device == "virtio")
    state = record.state
    assert state is not None
    config = state["pci_config"]
    assert (config[0x06] & 0x10 != 0) and config[0x34] != 0  # a capability list (virtio-pci's vendor caps at least)
    assert ("msix_table" in state) is msix and ("config_vector" in state) is msix
    assert all(("vector" in queue) is msix for queue in state["queues"])
    if msix:
        assert len(state["msix_table"]) == 16 * vectors and len(state["msix_pending"]) == (vectors + 7) // 8
    # The whole section: the transport, the generic part, the device's own state and the subsections.
    ber = stream.encode_ber(stream.parse_qemu(data, devices.resolve_section), devices.resolve_section)
    assert stream.encode_qemu(stream.parse_ber(ber, devices.resolve_section), devices.resolve_section) == data
