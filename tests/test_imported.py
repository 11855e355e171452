"""Every VMState section of a real QEMU stream, decoded with the description QEMU
wrote in the stream's own vmdesc trailer -- checked against the JSON itself, known
reset values of the x86 CPU, the BER round trip, and hostile trailers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _support import REAL_CAPTURES, Capture, capture_label
from click.testing import CliRunner

from migcompat import devices
from migcompat.cli import EXIT_USAGE, cli
from migcompat.errors import DecodeError, DescriptionError, MalformedInput
from migcompat.model import vmstate
from migcompat.qemu import imported, stream, vmdesc
from migcompat.wire.qemufile import QemuFileInputVisitor

CORPUS = Path(__file__).parent.parent / "corpora" / "qemu-7.2"
CAPTURES = REAL_CAPTURES
NET = CORPUS / "pc-virtio-net.bin"


def _parse(data: bytes, **options: Any) -> stream.MigrationStream:
    return stream.parse_qemu(data, devices.resolve_section, **options)


def _trailer(data: bytes) -> tuple[int, dict[str, Any]]:
    at = vmdesc.find_trailer(data)
    assert at is not None
    return at, json.loads(data[at + 5 :])


def _with_vmdesc(data: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    """The stream with its vmdesc JSON edited (and re-framed with its new length)."""
    at, document = _trailer(data)
    edit(document)
    text = json.dumps(document).encode()
    return data[:at] + b"\x06" + len(text).to_bytes(4, "big") + text


def _entry(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(entry for entry in document["devices"] if entry["name"] == name)


def _decoded_names(entry: dict[str, Any]) -> list[str]:
    """The member names a section's state should have, read from its vmdesc entry:
    fields in order (one name for the entries of one array: each element ``index``-ed
    up to QEMU 9.x; from 10.0 runs of equal elements are one ``array_len`` entry
    and only the first of the others is), then subsections."""
    names: list[str] = []
    array_open = False  # the previous entry was an element of an array
    for item in entry.get("fields", []):
        element = "index" in item or "array_len" in item
        if not (names and names[-1] == item["name"] and (element or array_open)):
            names.append(item["name"])
            array_open = element
        else:
            array_open = True
    return names + [sub["vmsd_name"] for sub in entry.get("subsections", [])]


# -- real captures ----------------------------------------------------------------------


@pytest.mark.parametrize("capture", CAPTURES, ids=capture_label)
def test_every_vmstate_section_of_a_capture_decodes_field_by_field(capture: Path) -> None:
    parsed = _parse(capture.read_bytes())
    full = [record for record in parsed.records if record.kind == stream.SECTION_FULL]
    assert full and all(record.state is not None for record in full)
    sections = [record for record in parsed.records if record.kind != stream.COMMAND]
    assert {record.idstr for record in sections if record.state is None} == {"ram"}
    by_model = {record.device for record in full if record.decoded_by == "model"}
    assert by_model <= {"slirp", "virtio"} and "virtio" in by_model
    assert sum(record.decoded_by == "vmdesc" for record in full) >= 12  # microvm has the fewest devices


@pytest.mark.parametrize("capture", CAPTURES, ids=capture_label)
def test_decoded_sections_carry_qemus_field_names_in_qemus_order(capture: Path) -> None:
    data = capture.read_bytes()
    _, document = _trailer(data)
    entries = {(entry["name"], entry.get("instance_id", 0)): entry for entry in document["devices"]}
    for record in _parse(data).records:
        if record.decoded_by == "vmdesc":
            assert record.state is not None
            assert list(record.state) == _decoded_names(entries[record.idstr, record.instance_id]), record.label


@pytest.mark.parametrize("capture", CAPTURES, ids=capture_label)
def test_only_qemu_10_0_with_its_own_machine_types_writes_the_switchover_command(capture: Path) -> None:
    """QEMU 10.0 writes command 11 (switchover-start, length 0) between RAM records;
    an older machine type (pc-i440fx-5.2) turns it off, and older releases never write it."""
    about = Capture.of(capture)
    data = capture.read_bytes()
    commands = [record for record in _parse(data).records if record.kind == stream.COMMAND]
    expected = [11] if about.release == "10.0" and about.machine is None else []
    assert [record.command for record in commands] == expected
    for record in commands:
        assert record.raw == b""


def test_the_cpu_section_holds_the_x86_reset_state() -> None:
    cpu = next(record for record in _parse(NET.read_bytes()).records if record.idstr == "cpu")
    assert cpu.state is not None and cpu.decoded_by == "vmdesc"
    assert cpu.state["env.eip"] == 0xFFF0  # the reset vector is CS:IP = F000:FFF0 ...
    code_segment = cpu.state["env.segs"][1]
    assert code_segment["selector"] == 0xF000 and code_segment["base"] == 0xFFFF0000  # CS based at 4 GiB - 64 KiB
    assert cpu.state["env.fpuc"] == 0x37F  # FINIT's control word
    assert len(cpu.state["env.regs"]) == 16


@pytest.mark.parametrize("capture", CAPTURES, ids=capture_label)
def test_qemu_to_ber_to_qemu_is_byte_identical_with_every_section_self_describing(capture: Path) -> None:
    data = capture.read_bytes()
    ber = stream.encode_ber(_parse(data), devices.resolve_section)
    back = stream.parse_ber(ber, devices.resolve_section)
    assert {record.idstr for record in back.records if record.state is None and record.kind != stream.COMMAND} == {
        "ram"
    }
    assert stream.encode_qemu(back, devices.resolve_section) == data
    for record in back.records:
        if record.decoded_by == "vmdesc":
            assert record.state is not None
            for name in record.state:
                assert name.encode() in ber, (record.label, name)  # members are named on the wire


def test_without_vmdesc_decoding_the_sections_stay_exact_opaque_bytes() -> None:
    data = NET.read_bytes()
    parsed = _parse(data, decode_vmdesc=False)
    assert all(record.decoded_by != "vmdesc" for record in parsed.records)
    assert sum(record.state is None for record in parsed.records) > 20
    assert stream.encode_qemu(parsed, devices.resolve_section) == data
    result = CliRunner().invoke(cli, ["inspect", "--no-vmdesc", str(NET)])
    assert result.exit_code == 0 and "--no-vmdesc: sections without a device model are opaque" in result.output
    assert "FULL  cpu instance 0 v12: opaque" in result.output


def test_an_imported_description_walks_a_section_exactly() -> None:
    data = NET.read_bytes()
    _, document = _trailer(data)
    parsed = _parse(data, decode_vmdesc=False)
    for record in parsed.records:
        if record.kind != stream.SECTION_FULL or record.state is not None:
            continue
        entry = _entry(document, record.idstr) if record.instance_id == 0 else None
        if entry is None:
            continue
        description = imported.from_vmdesc(entry, record.version_id)
        visitor = QemuFileInputVisitor(record.raw)
        state = vmstate.load(visitor, description, record.version_id)
        visitor.finish()  # every byte of the section, and no more
        assert state == next(r.state for r in _parse(data).records if r.label == record.label)


# -- hostile trailers ------------------------------------------------------------------------


def _refused(data: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        _parse(data)
    return caught.value


def test_an_integer_whose_size_is_not_its_width_is_refused_naming_the_field() -> None:
    def edit(document: dict[str, Any]) -> None:
        _entry(document, "hpet")["fields"][0]["size"] = 2

    error = _refused(_with_vmdesc(NET.read_bytes(), edit))
    assert isinstance(error, MalformedInput) and error.path == "hpet"
    assert "vmdesc hpet/hpet/config: type 'uint64' has size 2, not 8" in str(error)
    at, _ = _trailer(NET.read_bytes())
    assert error.offset == at + 5  # the trailer's JSON


def test_a_type_without_a_size_is_refused_and_an_unknown_one_with_a_size_stays_opaque() -> None:
    data = NET.read_bytes()

    def unsized(document: dict[str, Any]) -> None:
        _entry(document, "pcspk")["fields"][0] = {"name": "data_on", "type": "frobnicator"}

    assert "'size' is None, not a non-negative integer" in str(_refused(_with_vmdesc(data, unsized)))

    def unknown(document: dict[str, Any]) -> None:
        field = _entry(document, "mc146818rtc")["fields"][0]
        field["type"] = "frobnicator"

    changed = _with_vmdesc(data, unknown)
    rtc = next(record for record in _parse(changed).records if record.idstr == "mc146818rtc")
    assert rtc.state is not None and isinstance(rtc.state["cmos_data"], bytes) and len(rtc.state["cmos_data"]) == 128
    assert stream.encode_qemu(_parse(changed), devices.resolve_section) == changed


def test_sizes_that_do_not_add_up_are_refused() -> None:
    data = NET.read_bytes()

    def struct_too_big(document: dict[str, Any]) -> None:
        segs = next(f for f in _entry(document, "cpu")["fields"] if f["name"] == "env.segs")
        segs["size"] = 21

    assert "struct 'segment' holds 20 bytes, not its size 21" in str(_refused(_with_vmdesc(data, struct_too_big)))

    def field_narrowed(document: dict[str, Any]) -> None:
        fields = _entry(document, "i8259")["fields"]
        fields[0]["type"], fields[0]["size"] = "uint16", 2  # the section is now one byte longer than described

    error = _refused(_with_vmdesc(data, field_narrowed))
    assert error.path.startswith("i8259") and error.offset is not None


def test_a_version_the_section_header_does_not_carry_is_refused() -> None:
    def edit(document: dict[str, Any]) -> None:
        _entry(document, "hpet")["version"] = 99

    assert "describes version 99, the section is version 2" in str(_refused(_with_vmdesc(NET.read_bytes(), edit)))


def test_nesting_beyond_the_limit_is_refused_before_it_is_walked() -> None:
    entry: dict[str, Any] = {"name": "deep", "instance_id": 0, "vmsd_name": "deep", "version": 1, "fields": []}
    inner = entry
    for level in range(80):
        child = {"vmsd_name": f"deep{level}", "version": 0, "fields": []}
        inner["fields"] = [{"name": "x", "type": "struct", "size": 0, "struct": child}]
        inner = child
    with pytest.raises(DescriptionError, match="nests deeper than"):
        imported.from_vmdesc(entry, 1)


def test_a_trailer_that_is_not_json_is_named_in_the_error() -> None:
    data = NET.read_bytes()
    at, _ = _trailer(data)
    assert data[at + 5 : at + 7] == b'{"'
    broken = data[: at + 6] + b"?" + data[at + 7 :]  # same length, the first key's quote gone
    error = _refused(broken)
    assert f"the vmdesc trailer at byte {at} is not valid JSON" in str(error)


def test_the_cli_reports_a_broken_trailer_in_one_line(tmp_path: Path) -> None:
    def edit(document: dict[str, Any]) -> None:
        _entry(document, "hpet")["fields"][0]["size"] = 2

    path = tmp_path / "broken.bin"
    path.write_bytes(_with_vmdesc(NET.read_bytes(), edit))
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == EXIT_USAGE and "Traceback" not in result.output
    assert "type 'uint64' has size 2, not 8" in result.output and "byte offset" in result.output


# -- QEMU 10.0's forms ------------------------------------------------------------------------


def test_an_element_array_indexed_only_on_its_first_entry_is_one_array() -> None:
    element = {"vmsd_name": "bmdma", "version": 0, "fields": [{"name": "cmd", "type": "uint8", "size": 1}]}
    entry = {
        "name": "ide",
        "instance_id": 0,
        "vmsd_name": "ide",
        "version": 3,
        "fields": [
            {"name": "bmdma", "index": 0, "type": "struct", "size": 1, "struct": element},
            {"name": "bmdma", "type": "struct", "size": 1, "struct": element},
            {"name": "next", "type": "uint16", "size": 2},
        ],
    }
    description = imported.from_vmdesc(entry, 3)
    assert [field.name for field in description.fields] == ["bmdma", "next"]
    state = vmstate.load(QemuFileInputVisitor(bytes([7, 9, 0, 5])), description, 3)
    assert state == {"bmdma": [{"cmd": 7}, {"cmd": 9}], "next": 5}


def _with_command(data: bytes, command: bytes) -> bytes:
    """The capture with a command record inserted after the RAM START record, where
    QEMU 10.0 writes its switchover-start command."""
    parsed = stream.parse_qemu(data, devices.resolve_section)
    start = next(record for record in parsed.records if record.idstr == "ram")
    header = bytes([stream.SECTION_START]) + start.section_id.to_bytes(4, "big")
    at = data.index(header) + len(header) + 1 + 3 + 8 + len(start.raw) + 5  # idstr, ids, body, footer
    return data[:at] + command + data[at:]


def test_a_command_record_between_ram_records_is_read_kept_and_written_back(tmp_path: Path) -> None:
    data = _with_command(NET.read_bytes(), bytes.fromhex("08000b0000"))
    parsed = _parse(data)
    commands = [record for record in parsed.records if record.kind == stream.COMMAND]
    assert [(record.command, record.raw, record.label) for record in commands] == [
        (11, b"", "command switchover-start")
    ]
    assert stream.encode_qemu(parsed, devices.resolve_section) == data
    ber = stream.encode_ber(parsed, devices.resolve_section)
    assert stream.encode_qemu(stream.parse_ber(ber, devices.resolve_section), devices.resolve_section) == data
    path = tmp_path / "with-command.bin"
    path.write_bytes(data)
    shown = CliRunner().invoke(cli, ["inspect", str(path)])
    assert shown.exit_code == 0 and "COMMAND 11 (switchover-start): 0 bytes of payload" in shown.output


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("08000800000004", "unsupported migration command 8"),
        ("08006300000000", "unsupported migration command 99"),
        ("08000b0004ab", "input ends after 1 of 4 bytes"),
    ],
)
def test_a_command_record_qemu_would_not_take_is_refused_where_it_is(command: str, message: str) -> None:
    data = NET.read_bytes()
    changed = _with_command(data, bytes.fromhex(command))
    if "input ends" in message:
        changed = changed[: changed.index(bytes.fromhex(command)) + len(bytes.fromhex(command))]
    error = _refused(changed)
    assert message in str(error) and error.path == "command" and error.offset is not None
