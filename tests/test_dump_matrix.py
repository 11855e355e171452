"""The matrix over real QEMU dumps: every device class of QEMU 5.2 and 10.0 as a
device, its cells judged by the static checker's verdict on the two dumps.

The dumps are the committed ``-dump-vmstate`` files of real QEMU releases; the
edited copies change one thing each, so the expected outcome follows from the
edit, not from the code under test.
"""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from _support import run_cli

from migcompat import devices
from migcompat.cli import EXIT_OK, EXIT_USAGE
from migcompat.compat import cell, dumps, mutants
from migcompat.errors import UsageError
from migcompat.model.vmstate import Array, Description
from migcompat.qemu import dump as qemu_dump
from migcompat.qemu import dumped

ROOT = Path(__file__).parent.parent
QEMU_5_2 = ROOT / "corpora" / "qemu-5.2" / "vmstate-pc.json"
QEMU_10_0 = ROOT / "corpora" / "qemu-10.0" / "vmstate-pc.json"
BOTH = [str(QEMU_5_2), str(QEMU_10_0)]


def matrix(tmp_path: Path, dump_paths: list[str], *extra: str) -> tuple[int, dict[str, Any], str]:
    out = tmp_path / "reports"
    args = [arg for path in dump_paths for arg in ("--qemu-dump", path)]
    code, stdout, stderr = run_cli("matrix", *args, "--examples", "2", "--jobs", "1", "--out", str(out), *extra)
    report = json.loads((out / "matrix.json").read_text()) if (out / "matrix.json").exists() else {}
    return code, report, stdout + stderr


def outcomes(report: dict[str, Any], device: str) -> dict[tuple[str, str, str], tuple[str, str]]:
    return {
        (c["source"], c["destination"], c["pairing"]): (c["outcome"], c["expected"])
        for c in report["cells"]
        if c["device"] == device
    }


def write(path: Path, document: dict[str, Any]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return str(path)


def fields_of(document: dict[str, Any], section: str) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = document[section]["Description"]["Fields"]
    return fields


def descriptions(name: str) -> dict[str, Description]:
    found, _ = dumps.devices_of(dumps.read(BOTH))
    device = next(d for d in found if d.name == f"qemu:{name}")
    return {release.name: release.description for release in device.releases}


# -- descriptions from dumps ----------------------------------------------------------------


def test_every_section_of_both_dumps_is_a_device_or_named_with_its_reason() -> None:
    found, skipped = dumps.devices_of(dumps.read(BOTH))
    sections = set(json.loads(QEMU_5_2.read_text())) | set(json.loads(QEMU_10_0.read_text()))
    sections -= {"vmschkmachine"}
    assert {d.name for d in found} | set(skipped) == {f"qemu:{key}" for key in sections}
    # vhost-user-fs 5.2 has no fields (unmigratable); 10.0 writes its virtio state with a
    # function of its own, which the dump gives no size for.
    assert "virtio" in skipped["qemu:vhost-user-fs-device"] and "qemu-10.0" in skipped["qemu:vhost-user-fs-device"]
    assert len(found) > 200


def test_pre_8_0_element_counts_come_from_the_newer_dump_by_field_position() -> None:
    """e1000's mac_reg is saved as several sub-arrays of one name; QEMU 5.2's dump gives no
    counts, so each takes the count 10.0 gives at its own place."""
    old, new = (descriptions("e1000")[release] for release in ("qemu-5.2", "qemu-10.0"))
    lengths = {
        release: [
            (f.name, f.type.length) for f in d.fields if f.name.startswith("mac_reg") and isinstance(f.type, Array)
        ]
        for release, d in (("5.2", old), ("10.0", new))
    }
    assert lengths["5.2"] == lengths["10.0"]
    assert len({length for _, length in lengths["10.0"]}) > 1  # the sub-arrays differ in length


def test_legacy_reading_keeps_bytes_where_a_field_was_renamed_in_place() -> None:
    old, new = (descriptions("i8042")[release] for release in ("qemu-5.2", "qemu-10.0"))
    state = dumped.fixed_states(old)[1]  # every byte 0xff, every subsection sent
    state["kbd"]["pending"] = b"\x2a"
    reading = dumped.legacy_reading(state, old, new)
    assert reading is not None
    assert reading["kbd"]["pending_tmp"] == b"\x2a" and "pending" not in reading["kbd"]
    assert reading["kbd"]["pckbd_outport"] == {"outport": b"\xff"}
    assert "pckbd/extended_state" not in reading["kbd"]  # 5.2 cannot send it


def test_legacy_reading_finds_each_subsection_where_it_stands() -> None:
    """piix3-ide's two buses each may send 'ide_bus/error': only the second does here."""
    (desc,) = descriptions("piix3-ide").values()
    state = dumped.fixed_states(desc)[1]
    first, second = state["bus"]
    del first["ide_bus/error"]
    second["ide_bus/error"]["error_status"] = b"\x01\x02\x03\x04"
    reading = dumped.legacy_reading(state, desc, desc)
    assert reading is not None
    assert "ide_bus/error" not in reading["bus"][0]
    assert reading["bus"][1]["ide_bus/error"]["error_status"] == b"\x01\x02\x03\x04"


def test_legacy_reading_is_none_when_the_bytes_do_not_line_up() -> None:
    old = descriptions("i8042")["qemu-5.2"]
    document = json.loads(QEMU_5_2.read_text())
    fields_of(document, "i8042")[0]["Description"]["Fields"][0]["size"] = 2  # write_cmd: 1 -> 2 bytes
    wider = dumped.descriptions(qemu_dump.read(document, "edited"), "edited", {})["i8042"]
    state = dumped.fixed_states(old)[1]
    assert dumped.legacy_reading(state, old, old) is not None
    assert dumped.legacy_reading(state, old, wider) is None


def _leaves(value: Any) -> list[bytes]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def test_the_edge_states_send_every_subsection_once_with_bytes_that_differ_from_their_neighbours() -> None:
    desc = descriptions("hpet")["qemu-10.0"]
    zeros, saturated, counting = dumped.fixed_states(desc)
    assert zeros == desc.defaults() and not any(sub.name in zeros for sub in desc.subsections)
    subsections = {sub.name for sub in desc.subsections}
    assert subsections and subsections <= set(saturated) and subsections <= set(counting)
    assert set(b"".join(_leaves(saturated))) == {0xFF}
    data = b"".join(_leaves(counting))
    assert 0 not in data and all(a != b for a, b in itertools.pairwise(data))


def test_no_mutant_moves_or_drops_a_field_the_dump_gives_no_size_for() -> None:
    """isa-serial's FIFO data (a buffer sized at run time) and ivshmem's msix have bytes
    on the real wire that the model cannot show: no mutant reorders or deletes them."""
    for name, unsized_leaf in (("isa-serial", "data"), ("ivshmem-doorbell", "msix")):
        description = descriptions(name)["qemu-10.0"]
        found = mutants.derive(description, per_class=None)
        touched = [m for m in found if m.mutant_class in ("reorder", "delete") and unsized_leaf in m.members]
        assert touched == [], [m.name for m in touched]
        assert any(m.mutant_class == "rename" and unsized_leaf in m.members for m in found)
        assert any(m.mutant_class == "reorder" for m in found)


def test_devices_are_registered_only_inside_the_block() -> None:
    before = set(devices.registry())
    with dumps.use(BOTH) as (names, _):
        assert set(names) <= set(devices.registry()) and "qemu:e1000e" in names
    assert set(devices.registry()) == before
    assert cell.states_for.cache_info().currsize == 0


# -- the matrix command ---------------------------------------------------------------------


def test_real_dumps_renamed_fields_load_on_the_legacy_wire_and_are_detected_on_ber(tmp_path: Path) -> None:
    """QEMU 10.0 renamed i8042's 'pending' to 'pending_tmp' and added a subsection; hpet's
    'num_timers' became 'num_timers_save'. Both migrate on the legacy stream."""
    code, report, output = matrix(tmp_path, BOTH, "--device", "i8042", "--device", "hpet")
    assert code == EXIT_OK, output
    kbd = outcomes(report, "qemu:i8042")
    assert kbd["qemu-5.2", "qemu-10.0", "qemufile"] == ("ok", "ok")
    assert kbd["qemu-5.2", "qemu-10.0", "ber"] == ("detected", "detected")
    # 10.0 sends pckbd/extended_state, which 5.2 does not know: refused (the edge states send it).
    assert kbd["qemu-10.0", "qemu-5.2", "qemufile"] == ("refused", "refused")
    assert outcomes(report, "qemu:hpet")["qemu-10.0", "qemu-5.2", "qemufile"] == ("ok", "ok")
    assert report["mutants"] and {m["device"] for m in report["mutants"]} == {"qemu:i8042", "qemu:hpet"}


def test_an_edited_dump_with_a_wider_field_is_detected_on_every_wire(tmp_path: Path) -> None:
    document = json.loads(QEMU_10_0.read_text())
    hpet = fields_of(document, "hpet")
    assert hpet[0]["field"] == "config" and hpet[0]["size"] == 8
    hpet[0]["size"] = 16
    edited = write(tmp_path / "wide" / "vmstate-pc.json", document)
    code, report, output = matrix(tmp_path, [str(QEMU_10_0), edited], "--device", "hpet", "--no-mutants")
    assert code == EXIT_OK, output
    cells = outcomes(report, "qemu:hpet")
    for pairing in ("qemufile", "ber", "dict"):
        assert cells["qemu-10.0", "wide", pairing] == ("detected", "detected"), pairing


def test_an_edited_dump_with_a_renamed_field_loads_on_qemufile_only(tmp_path: Path) -> None:
    document = json.loads(QEMU_10_0.read_text())
    fields_of(document, "hpet")[1]["field"] = "isr_renamed"
    edited = write(tmp_path / "renamed" / "vmstate-pc.json", document)
    code, report, output = matrix(tmp_path, [str(QEMU_10_0), edited], "--device", "hpet", "--no-mutants")
    assert code == EXIT_OK, output
    cells = outcomes(report, "qemu:hpet")
    assert cells["qemu-10.0", "renamed", "qemufile"] == ("ok", "ok")
    assert cells["renamed", "qemu-10.0", "qemufile"] == ("ok", "ok")
    assert cells["qemu-10.0", "renamed", "ber"] == ("detected", "detected")


@pytest.mark.parametrize(
    ("dump_args", "message"),
    [
        ([str(QEMU_10_0)], "two or more dumps"),
        ([str(QEMU_10_0), "/nonexistent/dump.json"], "cannot read /nonexistent/dump.json"),
        ([str(QEMU_10_0), str(QEMU_10_0)], "two dumps are named 'qemu-10.0'"),
        ([str(QEMU_5_2), str(ROOT / "pyproject.toml")], "not JSON"),
    ],
)
def test_bad_dump_arguments_exit_2_with_the_reason(tmp_path: Path, dump_args: list[str], message: str) -> None:
    code, _, output = matrix(tmp_path, dump_args)
    assert code == EXIT_USAGE and message in output and "Traceback" not in output
    assert not (tmp_path / "reports").exists()


def test_a_json_file_that_is_no_dump_and_a_device_that_cannot_run_exit_2(tmp_path: Path) -> None:
    other = write(tmp_path / "other" / "x.json", {"hello": 1})
    code, _, output = matrix(tmp_path, [str(QEMU_5_2), other])
    assert code == EXIT_USAGE and "not a QEMU -dump-vmstate file" in output
    code, _, output = matrix(tmp_path, BOTH, "--device", "vhost-user-fs-device")
    assert code == EXIT_USAGE and "qemu:vhost-user-fs-device cannot run" in output
    assert "qemu-10.0: virtio" in output


def test_a_broken_description_in_a_dump_exits_2_naming_the_field(tmp_path: Path) -> None:
    document = copy.deepcopy(json.loads(QEMU_10_0.read_text()))
    fields_of(document, "hpet")[1]["size"] = "eight"
    broken = write(tmp_path / "broken" / "vmstate-pc.json", document)
    code, _, output = matrix(tmp_path, [str(QEMU_5_2), broken])
    assert code == EXIT_USAGE and "/hpet/Description/Fields/1" in output and "Traceback" not in output


def test_read_rejects_one_dump_in_python_too() -> None:
    with pytest.raises(UsageError, match="two or more"):
        dumps.read([str(QEMU_5_2)])
