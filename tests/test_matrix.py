"""The matrix inside pytest: one test per cell, plus the rules that decide outcomes.

Each cell test is named ``device/source->destination/pairing`` so a failing
``tox`` run names the cell; pytest-xdist spreads them over cores (``-n auto``),
or over hosts (``-d --tx ssh=host//python=python3``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from migcompat import devices
from migcompat.cli import cli
from migcompat.compat import cell, matrix
from migcompat.compat.cell import CellSpec, MatrixConfig, resolve, run_cell, run_example
from migcompat.devices.base import Release
from migcompat.errors import UsageError
from migcompat.model.projection import project
from migcompat.model.vmstate import Description, Field, Scalar
from migcompat.outcomes import Outcome

EXAMPLES = 3
SEED = cell.DEFAULT_SEED
ALL_CELLS = matrix.cells_of(MatrixConfig())


@pytest.mark.parametrize("spec", ALL_CELLS, ids=[spec.key for spec in ALL_CELLS])
def test_cell_matches_its_expectation(spec: CellSpec) -> None:
    cell = run_cell(spec, EXAMPLES, SEED, waived=False, shrink=False)
    assert cell.outcome is cell.expected, f"{cell.key}: {cell.outcome.value}: {cell.detail.message} {cell.detail.path}"
    if resolve(spec).refusal:
        # The destination cannot start with the machine type: nothing is loaded.
        assert cell.examples == 0 and "does not know machine type" in cell.detail.message
    else:
        assert cell.examples >= EXAMPLES


def _release_with(release: Release, description: Description) -> Release:
    return dataclasses.replace(release, description=description)


def _widen(description: Description, name: str, kind: str) -> Description:
    fields = tuple(
        dataclasses.replace(field, type=Scalar(kind)) if field.name == name else field for field in description.fields
    )
    return dataclasses.replace(description, fields=fields)


def test_a_width_change_corrupts_qemufile_and_is_detected_by_ber() -> None:
    """The motivating example, through the matrix's own classification."""
    slirp = devices.get("slirp")
    real = slirp.newest
    wider = _release_with(real, _widen(real.description, "ip_id", "uint32"))
    state = copy.deepcopy(slirp.fixed_states(real)[1])
    outcomes = {pairing: run_example(real, wider, pairing, state).outcome for pairing in ("qemufile", "ber", "dict")}
    # qemufile reads ip_id's two bytes plus two of the next field: loads wrong, or runs off the end.
    assert outcomes["qemufile"] in (Outcome.CORRUPT, Outcome.DETECTED)
    assert outcomes["ber"] is Outcome.DETECTED
    # Plain values carry no widths: 0xBEEF is a fine uint32, so the dict form loads it right.
    assert outcomes["dict"] is Outcome.OK


def test_same_width_reinterpretation_is_silent_corruption_on_qemufile() -> None:
    """uint16 read as int16: same bytes, different value -- only BER notices."""
    slirp = devices.get("slirp")
    real = slirp.newest
    signed = _release_with(real, _widen(real.description, "ip_id", "int16"))
    state = copy.deepcopy(slirp.fixed_states(real)[1])  # ip_id 0xBEEF: negative as int16
    result = run_example(real, signed, "qemufile", state)
    assert result.outcome is Outcome.CORRUPT and result.path == "ip_id"
    assert run_example(real, signed, "ber", state).outcome is Outcome.DETECTED


def test_projection_drops_and_defaults_without_visitors() -> None:
    old = Description("d", 1, 1, (Field("a", Scalar("uint8")), Field("gone", Scalar("uint8"))))
    new = Description("d", 2, 1, (Field("a", Scalar("uint8")), Field("b", Scalar("uint16"), since=2, default=7)))
    assert project({"a": 1, "gone": 2}, old, new) == {"a": 1, "b": 7}


def test_conversion_pairing_checks_the_round_trip() -> None:
    virtio = devices.get("virtio")
    release = virtio.newest
    state = virtio.fixed_states(release)[1]
    for pairing in ("qemufile>ber>qemufile", "ber>qemufile>ber"):
        assert run_example(release, release, pairing, state).outcome is Outcome.OK


def test_run_is_reproducible_for_a_seed() -> None:
    spec = CellSpec("slirp", "v2", "v4", "ber")
    first = run_cell(spec, 4, 7, waived=False, shrink=False)
    again = run_cell(spec, 4, 7, waived=False, shrink=False)
    assert first.counts == again.counts and first.outcome is again.outcome
    assert cell.states_for("slirp", "v2", 4, 7) == cell.states_for("slirp", "v2", 4, 7)
    assert cell.states_for("slirp", "v2", 4, 7) != cell.states_for("slirp", "v2", 4, 8)


def test_waivers_are_a_ratchet() -> None:
    spec = CellSpec("slirp", "v1", "v4", "qemufile")
    waived = run_cell(spec, 2, SEED, waived=True, shrink=False)
    assert waived.matches and waived.failed  # a waived cell that passes must lose its waiver
    plain = run_cell(spec, 2, SEED, waived=False, shrink=False)
    assert plain.matches and not plain.failed


def test_a_corrupt_cell_fails_and_is_shrunk_with_a_replay_command(monkeypatch: pytest.MonkeyPatch) -> None:
    slirp = devices.get("slirp")
    real = slirp.newest
    broken = dataclasses.replace(
        slirp,
        releases=(*slirp.releases[:-1], _release_with(real, _widen(real.description, "ip_id", "int16"))),
    )
    patched = {**devices.registry(), "slirp": broken}
    monkeypatch.setattr(devices, "registry", lambda: patched)
    cell.states_for.cache_clear()
    result = run_cell(CellSpec("slirp", "v3", "v4", "qemufile"), 6, SEED, waived=False, shrink=True)
    cell.states_for.cache_clear()
    assert result.outcome is Outcome.CORRUPT and result.failed
    assert result.detail.path == "ip_id"
    assert "--source v3 --destination v4 --pairing 'qemufile'" in result.detail.replay
    example = result.detail.example
    assert isinstance(example, dict) and example["ip_id"] >= 0x8000  # the shrunk state still shows it


def test_unknown_selection_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown device"):
        matrix.cells_of(MatrixConfig(devices=("nope",)))
    with pytest.raises(UsageError, match="unknown pairing"):
        matrix.cells_of(MatrixConfig(pairings=("xml",)))
    with pytest.raises(UsageError, match="no release"):
        matrix.cells_of(MatrixConfig(devices=("slirp",), sources=("v9",)))


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def test_cli_exit_codes_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    ok = _invoke("matrix", "--device", "slirp", "--examples", "2", "--jobs", "1", "--out", str(out))
    assert ok.exit_code == 0, ok.output
    assert (out / "matrix.json").exists()
    waivers = tmp_path / "waivers.toml"
    waivers.write_text('[[waiver]]\ncell = "slirp/v1->v4/ber"\nreason = "testing the ratchet"\n')
    ratchet = _invoke(
        "matrix", "--device", "slirp", "--examples", "2", "--jobs", "1", "--out", str(out), "--waivers", str(waivers)
    )
    assert ratchet.exit_code == 1
    assert "slirp/v1->v4/ber" in ratchet.output and "remove the waiver" in ratchet.output
    waivers.write_text("[[waiver]]\ncell = 3\n")
    assert _invoke("matrix", "--waivers", str(waivers)).exit_code == 2
    assert _invoke("matrix", "--examples", "0").exit_code == 2


def test_no_mutants_leaves_the_mutation_table_out(tmp_path: Path) -> None:
    def mutant_rows(*extra: str) -> list[object]:
        out = tmp_path / "-".join(extra or ("default",))
        result = _invoke("matrix", "--device", "slirp", "--examples", "1", "--jobs", "1", "--out", str(out), *extra)
        assert result.exit_code == 0, result.output
        return json.loads((out / "matrix.json").read_text())["mutants"]  # type: ignore[no-any-return]

    assert mutant_rows() != []
    assert mutant_rows("--no-mutants") == []
