"""The real matrix: field-by-field comparison of a section before and after a
migration, the model's machine-type rule, the explanations, the reports, and
real migrations between installed QEMU releases (skipped with the install
command where a release is missing); a QEMU that hangs is a crash cell and
leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from _support import CORPORA, require_release, run_cli

from migcompat import devices
from migcompat.cli import EXIT_OK, EXIT_USAGE
from migcompat.compat import real
from migcompat.compat.real import RealCell, RealResults
from migcompat.errors import DecodeError, UsageError
from migcompat.qemu import compare, dump, stream
from migcompat.qemu.releases import QemuRelease
from migcompat.report.real import FILES, write_real

NET_5_2 = CORPORA / "qemu-5.2" / "pc-virtio-net.bin"
NET_10_0 = CORPORA / "qemu-10.0" / "pc-virtio-net.bin"


def _edited(path: Path, idstr: str, edit: Any) -> bytes:
    parsed = stream.parse_qemu(path.read_bytes(), devices.resolve_section)
    record = next(r for r in parsed.records if r.idstr == idstr)
    edit(record.state)
    return stream.encode_qemu(parsed, devices.resolve_section)


def _not_identical(before: bytes, after: bytes) -> dict[str, compare.SectionComparison]:
    found = compare.compare_streams(before, after, devices.resolve_section)
    return {s.idstr: s for s in found if not s.identical}


# -- comparing sections -------------------------------------------------------------------


def test_a_stream_compared_with_itself_is_identical_section_by_section() -> None:
    data = NET_10_0.read_bytes()
    found = compare.compare_streams(data, data, devices.resolve_section)
    assert len(found) == 32 and all(s.identical and not s.changes for s in found)


def test_a_changed_value_is_named_by_its_field_path_with_both_values() -> None:
    data = NET_10_0.read_bytes()

    def edit(state: dict[str, Any]) -> None:
        state["env.regs"][0] = 0x1122334455667788

    differ = _not_identical(data, _edited(NET_10_0, "cpu", edit))
    assert list(differ) == ["cpu"]
    (change,) = differ["cpu"].changes
    assert change.kind == "changed" and change.corrupting
    assert change.path == "cpu/env.regs[0]" and change.after == bytes.fromhex("1122334455667788")


def test_renamed_and_regrouped_fields_between_releases_are_added_resized_or_dropped_not_changed() -> None:
    """5.2's and 10.0's own captures differ where the releases' layouts differ
    (globalstate's runstate shrank to make room for two flags; hpet renamed a field):
    none of that is a changed value."""
    differ = _not_identical(NET_5_2.read_bytes(), NET_10_0.read_bytes())
    globalstate = {change.path: change.kind for change in differ["globalstate"].changes}
    assert globalstate == {
        "globalstate/runstate": "resized",
        "globalstate/has_vm_was_suspended": "added",
        "globalstate/vm_was_suspended": "added",
        "globalstate/unused": "added",
    }
    assert not differ["globalstate"].corrupting


def test_a_value_the_destination_does_not_keep_is_lost() -> None:
    changes = compare._changes({"a": (0, b"\x01"), "b": (1, b"\x00")}, {})
    assert [(c.kind, c.path, c.corrupting) for c in changes] == [("lost", "a", True), ("dropped", "b", False)]


def test_a_field_renamed_in_place_keeps_its_value_and_is_not_lost() -> None:
    """The legacy wire carries no names: same offset, same size is the same field."""
    before = {"s/a": (0, b"\x01\x02"), "s/old": (2, b"\x07"), "s/gone": (3, b"\x05")}
    kept = compare._changes(before, {"s/a": (0, b"\x01\x02"), "s/new": (2, b"\x07")})
    assert [(c.kind, c.path, c.corrupting) for c in kept] == [
        ("renamed", "s/old -> s/new", False),
        ("lost", "s/gone", True),
    ]
    changed = compare._changes(before, {"s/a": (0, b"\x01\x02"), "s/new": (2, b"\x08"), "s/gone": (3, b"\x05")})
    assert [(c.kind, c.path, c.corrupting) for c in changed] == [("changed", "s/old -> s/new", True)]
    # Another size at that offset is not the same field: dropped and added.
    moved = compare._changes({"s/old": (0, b"\x00")}, {"s/new": (0, b"\x00\x00")})
    assert [c.kind for c in moved] == ["dropped", "added"]


def test_a_section_only_one_side_has_is_named() -> None:
    data = NET_10_0.read_bytes()
    parsed = stream.parse_qemu(data, devices.resolve_section)
    parsed.records = [r for r in parsed.records if r.idstr != "hpet"]
    without = stream.encode_qemu(parsed, devices.resolve_section)
    assert _not_identical(data, without)["hpet"].note == "the destination did not save this section"
    assert _not_identical(without, data)["hpet"].note == "a section only the destination saved"


# -- the model's rule and the explanations ---------------------------------------------------


def _release(name: str, machines: tuple[str, ...]) -> QemuRelease:
    release = QemuRelease(name)
    object.__setattr__(release, "machine_types", lambda: machines)
    return release


def test_the_model_refuses_an_unknown_or_unversioned_machine_type_across_releases() -> None:
    older = _release("5.2", ("microvm", "pc-i440fx-5.2"))
    cells = {
        machine: RealCell("pc-virtio-net", machine, "10.0", "5.2")
        for machine in ("pc-i440fx-5.2", "pc-i440fx-10.0", "microvm")
    }
    for cell in cells.values():
        real._model(cell, older)
    assert cells["pc-i440fx-5.2"].model == "ok"
    assert cells["pc-i440fx-10.0"].model == "refused" and "does not know" in cells["pc-i440fx-10.0"].model_reason
    assert cells["microvm"].model == "refused" and "not a versioned" in cells["microvm"].model_reason
    same = RealCell("microvm-virtio-net", "microvm", "5.2", "5.2")
    real._model(same, older)
    assert same.model == "ok"


def _corrupt(source: str, destination: str, *paths: str) -> RealCell:
    cell = RealCell("pc-e1000e", "pc-i440fx-5.2", source, destination, real="corrupt", model="ok")
    cell.corrupting = [("0000:00:02.0/e1000e", path) for path in paths]
    return cell


def test_a_change_a_release_also_makes_to_its_own_stream_is_explained_and_no_other() -> None:
    cross = _corrupt("5.2", "10.0", "e1000e/core.rx_desc_len")
    other = _corrupt("5.2", "10.0", "e1000e/core.rx_desc_len", "e1000e/mac_reg[3]")
    baseline = _corrupt("10.0", "10.0", "e1000e/core.rx_desc_len")
    real._explain([cross, baseline])
    assert "also changes when a release loads its own stream (10.0 -> 10.0)" in cross.explanation
    real._explain([other, baseline])
    assert other.explanation == ""  # mac_reg[3] changes only across releases: a finding
    results = RealResults({"5.2": "5.2.0", "10.0": "10.0.13"}, [cross, other, baseline], 1.0)
    assert results.unexplained == [other] and not results.passed


def test_machines_run_are_the_shared_versioned_ones_and_the_sources_own_newest() -> None:
    old = _release("5.2", ("microvm", "pc", "pc-i440fx-5.2", "q35", "pc-q35-5.2"))
    new = _release("10.0", ("microvm", "pc", "pc-i440fx-10.0", "pc-i440fx-5.2", "q35", "pc-q35-10.0", "pc-q35-5.2"))
    for release, own in ((old, "5.2"), (new, "10.0")):
        object.__setattr__(
            release, "resolve_machine", lambda alias, own=own: f"pc-i440fx-{own}" if alias == "pc" else f"pc-q35-{own}"
        )
    assert real.machines_for(new, old, [old, new]) == [
        "pc-i440fx-5.2",
        "pc-q35-5.2",
        "pc-i440fx-10.0",
        "pc-q35-10.0",
        "microvm",
    ]
    assert real.machines_for(old, new, [old, new]) == ["pc-i440fx-5.2", "pc-q35-5.2", "microvm"]


def test_the_reports_show_every_cell_and_list_disagreements(tmp_path: Path) -> None:
    refused = RealCell("pc-e1000e", "pc-i440fx-10.0", "10.0", "5.2", real="refused", model="refused", message="m")
    wrong = _corrupt("5.2", "10.0", "e1000e/mac_reg[3]")
    wrong.message = "e1000e: changed e1000e/mac_reg[3]"
    results = RealResults({"5.2": "5.2.0", "10.0": "10.0.13"}, [refused, wrong], 2.5)
    written = write_real(results, tmp_path)
    assert [path.name for path in written] == list(FILES)
    document = json.loads((tmp_path / "real.json").read_text())
    assert document["unexplained"] == [wrong.key] and len(document["cells"]) == 2
    markdown = (tmp_path / "real.md").read_text()
    assert "corrupt ≠model ok" in markdown and wrong.key in markdown.split("## Disagreements")[1]
    assert "class='corrupt disagree'" in (tmp_path / "real.html").read_text()
    suite = ElementTree.parse(tmp_path / "real-junit.xml").getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    assert [case.get("name") for case in suite if case.find("failure") is not None] == [wrong.key]


def test_static_findings_about_members_the_stream_did_not_carry_are_set_aside() -> None:
    """10.0 -> 5.2: piix4_pm's acpi_index is a field 5.2 does not have. With pc-i440fx-5.2
    the compatibility property x-not-migrate-acpi-index turns it off, and the stream shows
    it is not sent; with 10.0's own machine type it is sent, and the finding stands."""
    layouts = {
        release: dump.read(json.loads((CORPORA / f"qemu-{release}" / "vmstate-pc.json").read_text()), release)
        for release in ("5.2", "10.0")
    }
    found = {}
    for name in ("pc-virtio-net@pc-i440fx-5.2", "pc-virtio-net"):
        cell = RealCell("pc-virtio-net", "m", "10.0", "5.2")
        real._static(cell, real._carried((CORPORA / "qemu-10.0" / f"{name}.bin").read_bytes()), layouts, {})
        found[name] = cell
    old_machine, own_machine = found["pc-virtio-net@pc-i440fx-5.2"], found["pc-virtio-net"]
    acpi_index = "FIELD_REMOVED PIIX4_PM/acpi_pci_hotplug.acpi_index"
    assert any(line.startswith(acpi_index) for line in old_machine.static_unsent)
    assert not any(line.startswith(acpi_index) for line in old_machine.static_findings)
    assert any(line.startswith(acpi_index) for line in own_machine.static_findings)
    assert own_machine.static == "incompatible"


# -- bad arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--real", "--device", "slirp"], "--device does not apply to --real"),
        (["--config", "pc-e1000e"], "--config applies to --real only"),
        (["--real", "--source", "9.9"], "unknown QEMU release '9.9'"),
        (["--real", "--config", "pc-nope", "--source", "7.2"], "unknown machine config 'pc-nope'"),
    ],
)
def test_bad_real_matrix_arguments_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    if "pc-nope" in args:
        require_release("7.2")
        require_release("10.0")
    code, _, err = run_cli("matrix", *args, "--out", str(tmp_path / "out"))
    assert code == EXIT_USAGE and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


# -- real migrations -----------------------------------------------------------------------


@pytest.mark.qemu
def test_real_migrations_between_5_2_and_10_0_agree_with_the_model(tmp_path: Path) -> None:
    require_release("5.2")
    require_release("10.0")
    code, out, _ = run_cli(
        "matrix", "--real", "--config", "pc-e1000e", "--source", "5.2", "--source", "10.0",
        "--destination", "5.2", "--destination", "10.0", "--out", str(tmp_path),
    )  # fmt: skip
    assert code == EXIT_OK, out
    document = json.loads((tmp_path / "real.json").read_text())
    cells = {cell["key"]: cell for cell in document["cells"]}
    backward = cells["pc-e1000e@pc-i440fx-5.2/10.0->5.2"]
    assert backward["real"] == "ok" and backward["model"] == "ok" and "byte-identical" in backward["message"]
    refused = cells["pc-e1000e@pc-i440fx-10.0/10.0->5.2"]
    assert refused["real"] == "refused" and "Machine type received is 'pc-i440fx-10.0'" in refused["message"]
    assert refused["model"] == "refused"
    forward = cells["pc-e1000e@pc-i440fx-5.2/5.2->10.0"]
    # QEMU 10.0 recomputes the receive descriptor size on loading, its own streams too.
    assert forward["real"] == "corrupt" and "core.rx_desc_len" in forward["message"]
    assert "10.0 -> 10.0" in forward["explanation"]
    assert document["unexplained"] == []
    assert {cell["source"] for cell in cells.values() if cell["baseline"]} == {"5.2", "10.0"}  # the evidence


@pytest.mark.qemu
def test_real_shards_merge_into_the_unsharded_run_with_its_explanations(tmp_path: Path) -> None:
    """The explanation of 5.2 -> 10.0 rests on the 10.0 -> 10.0 baseline: in three shards it
    is in another shard than the cell it explains, and the merge still makes it."""
    require_release("5.2")
    require_release("10.0")
    selection = ["--config", "pc-e1000e", "--source", "5.2", "--source", "10.0"]
    selection += ["--destination", "5.2", "--destination", "10.0"]
    code, out, _ = run_cli("matrix", "--real", *selection, "--out", str(tmp_path / "whole"))
    assert code == EXIT_OK, out
    shards = []
    for index in (1, 2, 3):
        code, out, _ = run_cli(
            "matrix", "--real", *selection, "--shard", f"{index}/3", "--out", str(tmp_path / f"{index}")
        )
        assert code == EXIT_OK and "the verdict is the merge's" in out, out
        shards.append(str(tmp_path / f"{index}" / "real.json"))
    parts = [json.loads(Path(path).read_text()) for path in shards]
    assert any(cell["explanation"] == "" and not cell["agrees"] for part in parts for cell in part["cells"])
    code, out, _ = run_cli("report", "merge", *shards, "--out", str(tmp_path / "merged"))
    assert code == EXIT_OK, out

    def cells(path: Path) -> list[dict[str, Any]]:
        found = json.loads(path.read_text())["cells"]
        return [{key: value for key, value in cell.items() if key != "seconds"} for cell in found]

    assert cells(tmp_path / "merged" / "real.json") == cells(tmp_path / "whole" / "real.json")
    code, _, err = run_cli("report", "merge", shards[0], str(tmp_path / "whole" / "real.json"), "--out", str(tmp_path))
    assert code == EXIT_USAGE and "another split" in err


@pytest.mark.qemu
def test_a_qemu_that_hangs_is_a_crash_cell_and_leaves_nothing_behind(tmp_path: Path) -> None:
    require_release("7.2")
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    binary = tmp_path / "hanging-qemu"
    help_text = "Supported machines are:\\npc-i440fx-7.2        Standard PC\\n"
    binary.write_text(
        "#!/bin/sh\n"
        '[ "$1" = --version ] && echo "QEMU emulator version 9.9.0" && exit 0\n'
        f'[ "$1" = -machine ] && printf "{help_text}" && exit 0\n'
        f"echo $$ > {pid_dir}/$$\nexec sleep 600\n"
    )
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    hanging = QemuRelease("hangs", str(binary))
    from migcompat.qemu import releases

    results = real.run_real(
        [releases.find("7.2"), hanging],
        configs=["pc-rtl8139"],
        machines=["pc-i440fx-7.2"],
        timeout=2.0,
    )
    cells = {cell.key: cell for cell in results.cells}
    into_hanging = cells["pc-rtl8139@pc-i440fx-7.2/7.2->hangs"]
    assert into_hanging.real == "crash" and "timed out" in into_hanging.message
    from_hanging = cells["pc-rtl8139@pc-i440fx-7.2/hangs->7.2"]
    assert from_hanging.real == "crash" and "capture at QEMU hangs failed" in from_hanging.message
    assert cells["pc-rtl8139@pc-i440fx-7.2/7.2->7.2"].real == "ok"  # the rest of the run went on
    for pid_file in pid_dir.iterdir():
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid_file.name), 0)


@pytest.mark.qemu
def test_a_broken_release_is_left_out_with_its_reason_and_the_rest_run(tmp_path: Path) -> None:
    require_release("7.2")
    require_release("10.0")
    broken_binary = tmp_path / "broken-qemu"
    broken_binary.write_text("#!/bin/sh\necho 'error while loading shared libraries: libslirp.so.0' >&2\nexit 127\n")
    broken_binary.chmod(0o755)
    from migcompat.qemu import releases

    chosen = [releases.find("7.2"), QemuRelease("broken", str(broken_binary)), releases.find("10.0")]
    results = real.run_real(chosen, configs=["pc-rtl8139"], machines=["pc-i440fx-7.2"], timeout=20.0)
    assert "libslirp.so.0" in results.skipped["broken"]
    assert {cell.source for cell in results.cells} == {"7.2", "10.0"}
    assert all(cell.real == "ok" for cell in results.cells), [c.key for c in results.cells if c.real != "ok"]
    with pytest.raises(UsageError, match=r"two or more working QEMU releases.*broken: .*libslirp"):
        real.run_real(chosen[:2], configs=["pc-rtl8139"])


def test_a_corrupt_stream_to_compare_is_a_decode_error_naming_where() -> None:
    data = NET_10_0.read_bytes()
    with pytest.raises(DecodeError) as caught:
        compare.compare_streams(data, data[:5000], devices.resolve_section)
    assert caught.value.offset is not None and caught.value.offset <= 5000
    cell = RealCell("pc-virtio-net", "pc-i440fx-10.0", "10.0", "10.0")
    real._check_intact(cell, data, data[:5000])
    assert cell.real == "crash" and cell.message.startswith("cannot read a stream to compare:")
