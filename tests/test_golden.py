"""Golden streams: the committed corpus is what the code writes today, the gate
passes on it, and the gate fails -- naming the cell -- when the code changes
what an existing release reads, or when a release's files are missing or stale."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from _support import run_cli

from migcompat import devices
from migcompat.cli import EXIT_INCOMPATIBLE, EXIT_OK, EXIT_USAGE
from migcompat.compat import golden
from migcompat.errors import UsageError
from migcompat.model.vmstate import Scalar
from migcompat.outcomes import Outcome

COMMITTED = Path(__file__).parent.parent / "corpora" / "golden"
#: Keep the committed corpus small enough to review and clone.
MAX_CORPUS_BYTES = 5 * 1024 * 1024


def copy_of_committed(tmp_path: Path) -> Path:
    root = tmp_path / "golden"
    golden.write_corpus(root, golden.read_corpus(COMMITTED))
    return root


def retype_newest_slirp_ip_id(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """slirp whose newest release reads ip_id (a uint16) as ``kind``: a changed description."""
    slirp = devices.get("slirp")
    newest = slirp.newest
    fields = tuple(
        dataclasses.replace(field, type=Scalar(kind)) if field.name == "ip_id" else field
        for field in newest.description.fields
    )
    changed = dataclasses.replace(newest, description=dataclasses.replace(newest.description, fields=fields))
    patched = {**devices.registry(), "slirp": dataclasses.replace(slirp, releases=(*slirp.releases[:-1], changed))}
    monkeypatch.setattr(devices, "registry", lambda: patched)


# -- the committed corpus -----------------------------------------------------------------


def test_regenerating_gives_the_committed_corpus_byte_for_byte(tmp_path: Path) -> None:
    code, out, _ = run_cli("golden", "--out", str(tmp_path))
    assert code == EXIT_OK and out.startswith("wrote ")
    regenerated = golden.read_corpus(tmp_path)
    committed = golden.read_corpus(COMMITTED)
    assert sorted(regenerated) == sorted(committed), "stale golden corpus: run `migcompat golden`"
    changed = [name for name in regenerated if regenerated[name] != committed[name]]
    assert not changed, f"stale golden corpus: run `migcompat golden` and review the diff: {changed}"


def test_the_corpus_covers_every_release_in_every_format_and_stays_small() -> None:
    files = golden.read_corpus(COMMITTED)
    for device in devices.registry().values():
        for release in device.releases:
            for index, state in enumerate(device.fixed_states(release)):
                stem = f"{device.name}/{release.name}/{index}"
                assert {f"{stem}.qemufile", f"{stem}.ber", f"{stem}.json"} <= files.keys()
                document = json.loads(files[f"{stem}.json"])
                assert document["version_id"] == release.version_id
                assert document["state"].keys() == state.keys()
    assert sum(map(len, files.values())) < MAX_CORPUS_BYTES


def test_gate_passes_on_the_committed_corpus() -> None:
    result = golden.gate(golden.read_corpus(COMMITTED))
    assert result.passed, [golden.describe_failure(cell) for cell in result.failures] + result.problems
    # Every current release of a device loads every golden stream of it, a
    # stream saved under an older machine type with that machine type.
    expected_cells = sum(
        sum(len(device.forms(release)) for release in device.releases) * len(device.releases) * 2
        for device in devices.registry().values()
    )
    assert len(result.cells) == expected_cells
    machine_cells = {cell.key for cell in result.cells if cell.machine}
    assert "virtio/qemu-10.0->qemu-5.2@pc-i440fx-5.2/qemufile" in machine_cells
    by_key = {cell.key: cell for cell in result.cells}
    assert by_key["virtio/qemu-10.0->qemu-5.2@pc-i440fx-5.2/ber"].outcome is Outcome.OK
    assert by_key["virtio/qemu-10.0->qemu-5.2/ber"].outcome is Outcome.REFUSED  # pc-i440fx-10.0 is unknown there
    assert {cell.outcome for cell in result.cells} == {Outcome.OK, Outcome.REFUSED}
    code, out, _ = run_cli("gate", "--golden", str(COMMITTED))
    assert code == EXIT_OK and out.rstrip().endswith("passed")


# -- the gate fails when the code changes -------------------------------------------------


def test_gate_fails_when_a_release_changes_a_fields_width(monkeypatch: pytest.MonkeyPatch) -> None:
    retype_newest_slirp_ip_id(monkeypatch, "uint32")
    code, out, _ = run_cli("gate", "--golden", str(COMMITTED))
    assert code == EXIT_INCOMPATIBLE
    failing = [line for line in out.splitlines() if line.startswith("FAIL ")]
    # v4's own streams no longer load at v4, nor do v2/v3 streams that carry ip_id.
    assert any(line.startswith("FAIL slirp/v4->v4/ber: detected (expected ok)") for line in failing), out
    assert any(line.startswith("FAIL slirp/v4->v4/qemufile: ") for line in failing), out
    assert any(line.startswith("FAIL slirp/v3->v4/ber: detected") and "ip_id" in line for line in failing), out
    # Streams without ip_id, and the other releases, are untouched.
    assert not any("slirp/v1->" in line or "->v3/" in line or "virtio" in line for line in failing), out


def test_a_same_width_sign_change_is_caught_even_where_qemufile_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """uint16 -> int16 keeps every byte: the qemufile stream loads 0xBEEF as a
    negative number, which the stored state exposes."""
    retype_newest_slirp_ip_id(monkeypatch, "int16")
    failures = {cell.key: cell for cell in golden.gate(golden.read_corpus(COMMITTED)).failures}
    assert failures["slirp/v4->v4/qemufile"].outcome is Outcome.CORRUPT
    assert failures["slirp/v4->v4/qemufile"].shown.path == "ip_id"
    assert failures["slirp/v4->v4/ber"].outcome is Outcome.DETECTED


# -- layout problems ----------------------------------------------------------------------


def test_gate_fails_on_a_missing_golden_file(tmp_path: Path) -> None:
    root = copy_of_committed(tmp_path)
    (root / "virtio" / "qemu-2.4" / "1.ber").unlink()
    code, out, _ = run_cli("gate", "--golden", str(root))
    assert code == EXIT_INCOMPATIBLE
    assert "FAIL virtio/qemu-2.4/1.ber: missing" in out


def test_gate_fails_on_a_release_that_is_gone(tmp_path: Path) -> None:
    root = copy_of_committed(tmp_path)
    gone = root / "slirp" / "v0"
    gone.mkdir()
    (gone / "0.qemufile").write_bytes(b"\x00")
    code, out, _ = run_cli("gate", "--golden", str(root))
    assert code == EXIT_INCOMPATIBLE
    assert "FAIL slirp/v0/: slirp has no release 'v0' any more" in out


def test_gate_fails_on_an_unexpected_file(tmp_path: Path) -> None:
    root = copy_of_committed(tmp_path)
    (root / "slirp" / "v1" / "7.ber").write_bytes(b"")
    code, out, _ = run_cli("gate", "--golden", str(root))
    assert code == EXIT_INCOMPATIBLE and "FAIL slirp/v1/7.ber: unexpected file" in out


def test_gate_exits_2_without_a_readable_golden_directory(tmp_path: Path) -> None:
    code, out, err = run_cli("gate", "--golden", str(tmp_path / "nowhere"))
    assert code == EXIT_USAGE and out == "" and err.count("\n") == 1 and "no golden directory at" in err
    root = copy_of_committed(tmp_path)
    (root / "slirp" / "v2" / "0.json").write_text("{not json")
    code, _, err = run_cli("gate", "--golden", str(root))
    assert code == EXIT_USAGE and "slirp/v2/0.json is not valid JSON" in err


def test_regenerating_removes_golden_files_of_releases_that_are_gone(tmp_path: Path) -> None:
    root = copy_of_committed(tmp_path)
    (root / "slirp" / "v0").mkdir()
    (root / "slirp" / "v0" / "0.ber").write_bytes(b"")
    (root / "notes.txt").write_text("kept")
    code, out, _ = run_cli("golden", "--out", str(root))
    assert code == EXIT_OK and "removed slirp/v0/0.ber" in out
    assert not (root / "slirp" / "v0").exists() and (root / "notes.txt").exists()


def test_build_is_deterministic() -> None:
    assert golden.build() == golden.build()


def test_read_corpus_refuses_a_file_for_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="no golden directory at"):
        golden.read_corpus(tmp_path / "file")
