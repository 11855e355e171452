"""Real virtio sections read with certain bounds: the version checked, the device's own state decoded.

Each stream here is a committed QEMU capture with one change; what QEMU says
about such a change is in the comment (checked against real QEMU by
``migcompat qemu agree``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from migcompat import devices
from migcompat.devices import virtio_specific
from migcompat.devices.virtio import CapturedSectionCodec
from migcompat.errors import DecodeError, LoadRefused, MalformedInput, TruncatedInput
from migcompat.qemu import stream

ROOT = Path(__file__).resolve().parent.parent / "corpora"
NET = "0000:00:02.0/virtio-net"


def _capture(release: str = "qemu-7.2", name: str = "pc-virtio-net") -> bytes:
    return (ROOT / release / f"{name}.bin").read_bytes()


def _header_end(data: bytes, idstr: str) -> int:
    """Offset just after a section header's idstr (instance id and version follow)."""
    name = idstr.encode()
    return data.index(bytes((len(name),)) + name) + 1 + len(name)


def _parse(data: bytes) -> stream.MigrationStream:
    return stream.parse_qemu(data, devices.resolve_section)


def _body(data: bytes, idstr: str) -> tuple[int, int]:
    """(start, footer offset) of a section's body."""
    record = next(r for r in _parse(data).records if r.idstr == idstr)
    start = _header_end(data, idstr) + 8
    return start, data.index(b"\x7e" + record.section_id.to_bytes(4, "big"), start)


@pytest.mark.parametrize("release", ["qemu-5.2", "qemu-7.2", "qemu-10.0"])
def test_the_device_part_of_virtio_net_is_decoded_field_by_field(release: str) -> None:
    record = next(r for r in _parse(_capture(release)).records if r.idstr == NET)
    assert record.state is not None
    device = record.state["device"]
    assert device["mac"] == bytes.fromhex("525400123456")  # QEMU's default MAC for the first NIC
    assert device["mac_table.in_use"] == 0 and device["has_vnet_hdr"] == 0 and len(device["vlans"]) == 512
    assert record.layout == (0, 3 if release == "qemu-5.2" else 4, virtio_specific.NET, 0)


def test_the_device_part_of_virtio_blk_is_its_empty_request_list() -> None:
    record = next(r for r in _parse(_capture(name="pc-virtio-blk")).records if r.device == "virtio")
    assert record.state is not None and record.state["device"] == {"requests": 0}


@pytest.mark.parametrize(
    ("version", "words"),
    [
        (255, "unsupported version 255 for 'virtio-net' v11"),
        (12, "unsupported version 12 for 'virtio-net' v11"),
        (0, "incoming version_id 0 is too old for local minimum version_id 11"),
        (10, "incoming version_id 10 is too old for local minimum version_id 11"),
    ],
)
def test_a_virtio_section_version_the_device_does_not_accept_is_refused(version: int, words: str) -> None:
    data = _capture()
    at = _header_end(data, NET) + 4
    with pytest.raises(LoadRefused, match=words) as caught:
        _parse(data[:at] + version.to_bytes(4, "big") + data[at + 4 :])
    assert caught.value.path.startswith(NET)


def _queue_count_at(data: bytes) -> int:
    """Offset of the be32 virtqueue count of the pc-virtio-net capture."""
    start, _footer = _body(data, NET)
    # pci version, config space, irq state, 4 MSI-X vectors, pending bits, config vector; status .. features; config
    return start + 4 + 256 + 16 + 4 * 16 + 1 + 2 + 1 + 1 + 2 + 4 + 4 + 8


@pytest.mark.parametrize("count", [0, 1, 4, 1024])
def test_a_changed_queue_count_is_an_error_not_a_longer_opaque_part(count: int) -> None:
    data = _capture()
    at = _queue_count_at(data)
    assert int.from_bytes(data[at : at + 4], "big") == 3
    with pytest.raises(DecodeError) as caught:
        _parse(data[:at] + count.to_bytes(4, "big") + data[at + 4 :])
    assert caught.value.path.startswith(NET)


def test_a_config_len_of_zero_shifts_the_fields_and_is_an_error() -> None:
    data = _capture()
    at = _queue_count_at(data) - 8 - 4
    assert int.from_bytes(data[at : at + 4], "big") == 8
    with pytest.raises(DecodeError) as caught:
        _parse(data[:at] + bytes(4) + data[at + 4 :])
    assert caught.value.path.startswith(NET)


def test_a_damaged_subsection_header_is_an_error_not_a_lost_subsection() -> None:
    data = _capture()
    start, footer = _body(data, NET)
    at = data.index(b"\x05\x15virtio/64bit_features", start, footer)
    with pytest.raises(MalformedInput, match="missing section footer") as caught:
        _parse(data[:at] + b"\x06" + data[at + 1 :])
    assert caught.value.offset == at


def test_a_mismatched_footer_names_both_section_ids() -> None:
    data = _capture()
    _start, footer = _body(data, NET)
    section = int.from_bytes(data[footer + 1 : footer + 5], "big")
    with pytest.raises(MalformedInput, match=f"footer names section {section + 1}, the section is {section}"):
        _parse(data[: footer + 1] + (section + 1).to_bytes(4, "big") + data[footer + 5 :])


@pytest.mark.parametrize("keep", [0.6, 0.9, 0.99])
def test_a_stream_cut_short_names_where_the_input_ends(keep: float) -> None:
    data = _capture()
    cut = int(len(data) * keep)
    while data[cut - 1] == 0:  # a cut right after a zero byte may look like the end-of-stream marker
        cut -= 1
    with pytest.raises(DecodeError) as caught:
        _parse(data[:cut])
    error = caught.value
    assert isinstance(error, TruncatedInput) and error.offset is not None
    assert error.offset == cut or "ram" in error.path


def test_a_virtio_device_whose_own_state_is_not_modelled_is_not_guessed() -> None:
    codec = CapturedSectionCodec("0000:00:04.0/virtio-balloon", 1)
    data = _capture()
    start, footer = _body(data, NET)
    assert codec.for_legacy_bytes(data, start, footer, data[footer : footer + 5]) is None
