"""Machine types: what they do to the reference device, checked against real QEMU
streams, and how the matrix, the golden gate and negotiation cross them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _support import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migcompat import devices
from migcompat.compat import matrix, real
from migcompat.compat.cell import CellSpec, MatrixConfig, resolve, run_cell, run_example
from migcompat.compat.negotiate import negotiate, shared_machines
from migcompat.devices import machines, releases
from migcompat.devices.virtio import (
    RING_RESET,
    VIRTIO_NO_VECTOR,
    machine_compat,
)
from migcompat.errors import UsageError
from migcompat.outcomes import Outcome
from migcompat.qemu import stream

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
VIRTIO = devices.get("virtio")


# -- naming ---------------------------------------------------------------------------


def test_machine_types_are_ordered_by_version_not_by_text() -> None:
    assert machines.parse("pc-i440fx-10.0") > machines.parse("pc-i440fx-7.2") > machines.parse("pc-q35-5.2")
    assert machines.own("qemu-10.0") == "pc-i440fx-10.0"
    assert machines.knows("qemu-10.0", "pc-i440fx-5.2") and machines.knows("qemu-7.2", "pc-q35-7.2")
    assert not machines.knows("qemu-7.2", "pc-i440fx-10.0") and not machines.knows("v4", "pc-i440fx-5.2")
    assert machines.shared(["qemu-10.0", "qemu-7.2"]) == ["pc-i440fx-5.2", "pc-i440fx-7.2"]
    assert machines.shared(["qemu-10.0"], besides=["pc-i440fx-10.0"]) == ["pc-i440fx-5.2", "pc-i440fx-7.2"]
    assert machines.shared(["qemu-10.0", "qemu-2.7"]) == []


@pytest.mark.parametrize("name", ["pc", "microvm", "pc-i440fx-7", "pc-i440fx-7.2.1", "virt-7.2", ""])
def test_an_unversioned_machine_type_is_a_usage_error(name: str) -> None:
    with pytest.raises(UsageError, match="not a versioned machine type"):
        machines.parse(name)


# -- what a machine type does, checked against real QEMU ---------------------------------

#: Committed captures of virtio-net-pci with the default vectors: (capture, release, machine type).
CAPTURES = [
    ("qemu-5.2/pc-virtio-net.bin", "qemu-5.2", "pc-i440fx-5.2"),
    ("qemu-5.2/q35-virtio-net.bin", "qemu-5.2", "pc-q35-5.2"),
    ("qemu-5.2/pc-virtio-net@pc-i440fx-4.2.bin", "qemu-5.2", "pc-i440fx-4.2"),
    ("qemu-7.2/pc-virtio-net.bin", "qemu-7.2", "pc-i440fx-7.2"),
    ("qemu-7.2/q35-virtio-net.bin", "qemu-7.2", "pc-q35-7.2"),
    ("qemu-7.2/pc-virtio-net@pc-i440fx-5.2.bin", "qemu-7.2", "pc-i440fx-5.2"),
    ("qemu-10.0/pc-virtio-net.bin", "qemu-10.0", "pc-i440fx-10.0"),
    ("qemu-10.0/q35-virtio-net.bin", "qemu-10.0", "pc-q35-10.0"),
    ("qemu-10.0/pc-virtio-net@pc-i440fx-5.2.bin", "qemu-10.0", "pc-i440fx-5.2"),
]


@pytest.mark.parametrize(("capture", "release", "machine"), CAPTURES, ids=[c[0] for c in CAPTURES])
def test_the_vectors_a_machine_type_gives_are_what_real_qemu_writes(capture: str, release: str, machine: str) -> None:
    parsed = stream.parse_qemu((CORPORA / capture).read_bytes(), devices.resolve_section)
    (record,) = [r for r in parsed.records if r.device == "virtio" and r.idstr.endswith("/virtio-net")]
    assert record.state is not None
    vectors = machine_compat(release, machine).vectors
    assert len(record.state["msix_table"]) == vectors * 16
    assert len(record.state["msix_pending"]) == (vectors + 7) // 8
    # The model release under that machine type writes the same transport layout.
    form = VIRTIO.at(VIRTIO.release(release), machine)
    sizes = {field.name: field.type for field in form.description.fields}
    assert getattr(sizes["msix_table"], "size", None) == vectors * 16


def test_ring_reset_is_offered_only_from_7_2_on_a_7_2_machine_type() -> None:
    """As ``x-query-virtio-status`` shows it on the three releases (bit 40)."""
    offered = {
        (release, machine): bool(machine_compat(release, machine).host_features & RING_RESET)
        for release in ("qemu-5.2", "qemu-7.2", "qemu-10.0")
        for machine in machines.AXIS
        if machines.knows(release, machine)
    }
    assert offered == {
        ("qemu-5.2", "pc-i440fx-5.2"): False,
        ("qemu-7.2", "pc-i440fx-5.2"): False,
        ("qemu-7.2", "pc-i440fx-7.2"): True,
        ("qemu-10.0", "pc-i440fx-5.2"): False,
        ("qemu-10.0", "pc-i440fx-7.2"): True,
        ("qemu-10.0", "pc-i440fx-10.0"): True,
    }


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_a_state_under_an_older_machine_type_only_uses_what_that_machine_type_offers(data: st.DataObject) -> None:
    form = VIRTIO.at(VIRTIO.release("qemu-10.0"), "pc-i440fx-5.2")
    state = data.draw(VIRTIO.strategy(form))
    wide = state["virtio"].get("virtio/64bit_features")
    assert wide is None or not wide["guest_features"] & RING_RESET
    vectors = machine_compat("qemu-10.0", "pc-i440fx-5.2").vectors
    assert all(queue["vector"] in (*range(vectors), VIRTIO_NO_VECTOR) for queue in state["queues"])


def test_a_destination_must_run_the_sources_machine_type() -> None:
    """QEMU 10.0 under pc-i440fx-5.2 loads at 7.2 under the same machine type, and
    at 7.2's own machine type it misreads: the machine type is part of the layout."""
    source = VIRTIO.at(VIRTIO.release("qemu-10.0"), "pc-i440fx-5.2")
    state = VIRTIO.fixed_states(source)[1]
    same = VIRTIO.at(VIRTIO.release("qemu-7.2"), "pc-i440fx-5.2")
    own = VIRTIO.release("qemu-7.2")
    for pairing in ("qemufile", "ber"):
        assert run_example(source, same, pairing, state).outcome is Outcome.OK
        assert run_example(source, own, pairing, state).outcome in (Outcome.DETECTED, Outcome.REFUSED)


def test_ring_reset_features_are_refused_where_the_machine_type_turns_it_off() -> None:
    """pc-i440fx-5.2 turns queue_reset off: a state that negotiated it does not load there."""
    form = VIRTIO.at(VIRTIO.release("qemu-10.0"), "pc-i440fx-5.2")
    state = VIRTIO.fixed_states(form)[1]
    assert run_example(form, form, "qemufile", state).outcome is Outcome.OK
    state["virtio"]["virtio/64bit_features"]["guest_features"] |= RING_RESET
    result = run_example(form, form, "qemufile", state)
    assert result.outcome is Outcome.REFUSED and "unsupported" in result.message, result
    newer = VIRTIO.at(VIRTIO.release("qemu-10.0"), "pc-i440fx-7.2")
    state = VIRTIO.fixed_states(newer)[1]
    state["virtio"]["virtio/64bit_features"]["guest_features"] |= RING_RESET
    assert run_example(newer, newer, "qemufile", state).outcome is Outcome.OK


# -- the matrix -------------------------------------------------------------------------


def test_the_matrix_crosses_every_machine_type_both_real_releases_know() -> None:
    specs = matrix.cells_of(MatrixConfig(devices=("virtio",), pairings=("ber",)))
    crossed = {(spec.source, spec.destination, spec.machine) for spec in specs if spec.machine}
    assert crossed == {
        ("qemu-7.2", "qemu-5.2", "pc-i440fx-5.2"),
        ("qemu-7.2", "qemu-7.2", "pc-i440fx-5.2"),
        ("qemu-7.2", "qemu-10.0", "pc-i440fx-5.2"),
        ("qemu-10.0", "qemu-5.2", "pc-i440fx-5.2"),
        ("qemu-10.0", "qemu-7.2", "pc-i440fx-5.2"),
        ("qemu-10.0", "qemu-10.0", "pc-i440fx-5.2"),
        ("qemu-10.0", "qemu-7.2", "pc-i440fx-7.2"),
        ("qemu-10.0", "qemu-10.0", "pc-i440fx-7.2"),
    }
    # Every release pair has its cell with the source's own machine type.
    names = [release.name for release in VIRTIO.releases]
    assert {(spec.source, spec.destination) for spec in specs if not spec.machine} == {
        (source, destination) for source in names for destination in names
    }
    # slirp's state does not depend on the machine type: its cells have none.
    assert not [spec for spec in matrix.cells_of(MatrixConfig(devices=("slirp",))) if spec.machine]


@pytest.mark.parametrize(
    ("source", "destination", "machine", "expected"),
    [
        ("qemu-10.0", "qemu-7.2", "", Outcome.REFUSED),  # pc-i440fx-10.0 is unknown to 7.2
        ("qemu-10.0", "qemu-7.2", "pc-i440fx-7.2", Outcome.OK),  # backward, older machine type
        ("qemu-10.0", "qemu-5.2", "pc-i440fx-5.2", Outcome.OK),
        ("qemu-7.2", "qemu-5.2", "pc-i440fx-5.2", Outcome.OK),
        ("qemu-5.2", "qemu-10.0", "", Outcome.OK),  # forward with the source's own
        ("qemu-2.7", "qemu-10.0", "", Outcome.OK),  # 10.0 under pc-i440fx-2.7 reads 2.7's 3 vectors
    ],
)
def test_machine_cells_have_the_outcome_qemu_gives(
    source: str, destination: str, machine: str, expected: Outcome
) -> None:
    for pairing in ("qemufile", "ber", "qemufile>ber>qemufile"):
        cell = run_cell(CellSpec("virtio", source, destination, pairing, machine), 2, 7, waived=False, shrink=False)
        assert (cell.outcome, cell.expected) == (expected, expected), cell.detail.message


def test_a_refused_machine_type_is_named_and_loads_nothing() -> None:
    spec = CellSpec("virtio", "qemu-10.0", "qemu-5.2", "qemufile")
    assert "does not know machine type pc-i440fx-10.0" in resolve(spec).refusal
    cell = run_cell(spec, 2, 7, waived=False, shrink=False)
    assert cell.examples == 0 and "qemu-5.2 does not know machine type pc-i440fx-10.0" in cell.detail.message
    assert cell.detail.replay.startswith("migcompat matrix --device virtio --source qemu-10.0")


def test_a_machine_cell_replays_with_its_machine_type(tmp_path: Path) -> None:
    code, out, err = run_cli(
        "matrix",
        "--device", "virtio",
        "--source", "qemu-10.0",
        "--destination", "qemu-7.2",
        "--machine", "pc-i440fx-7.2",
        "--pairing", "ber",
        "--examples", "1",
        "--no-mutants",
        "--jobs", "1",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 0, out + err
    document = json.loads((tmp_path / "matrix.json").read_text())
    assert [(cell["machine"], cell["outcome"]) for cell in document["cells"]] == [("pc-i440fx-7.2", "ok")]
    assert "## virtio under machine type pc-i440fx-7.2" in (tmp_path / "matrix.md").read_text()
    assert 'data-machine="pc-i440fx-7.2"' in (tmp_path / "matrix.html").read_text()


def test_a_machine_type_no_cell_runs_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = run_cli("matrix", "--device", "virtio", "--machine", "pc-i440fx-9.9", "--out", str(tmp_path))
    assert code == 2 and "no cell runs machine type 'pc-i440fx-9.9'" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


# -- negotiation ------------------------------------------------------------------------


def test_release_rows_cross_the_machine_types_both_releases_know() -> None:
    newest, older = releases.get("hv-2025"), releases.get("hv-2020")
    assert shared_machines(newest, older) == ["pc-i440fx-5.2"]
    assert shared_machines(older, newest) == []  # pc-i440fx-5.2 is hv-2020's own
    assert shared_machines(newest, older, only=("slirp",)) == []
    native = negotiate(newest, older)
    assert native.worst is Outcome.REFUSED and native.compatible
    backward = negotiate(newest, older, machine="pc-i440fx-5.2")
    assert backward.protocol == "ber" and backward.worst is Outcome.OK and backward.compatible
    assert {device.device: device.outcome for device in backward.devices} == {
        "slirp": Outcome.OK,
        "virtio": Outcome.OK,
    }


def test_negotiate_runs_both_releases_under_a_machine_type() -> None:
    code, out, _ = run_cli("negotiate", "hv-2025", "hv-2020", "--machine", "pc-i440fx-5.2", "--json")
    assert code == 0
    document = json.loads(out)
    assert document["machine"] == "pc-i440fx-5.2"
    assert {device["device"]: device["outcome"] for device in document["devices"]} == {"slirp": "ok", "virtio": "ok"}
    code, out, _ = run_cli("negotiate", "hv-2025", "hv-2020")
    assert code == 0 and "does not know machine type pc-i440fx-10.0" in out
    code, _, err = run_cli("negotiate", "hv-2020", "hv-2025", "--machine", "pc-i440fx-7.2")
    assert code == 2 and "qemu-5.2 does not know machine type pc-i440fx-7.2" in err and "Traceback" not in err


# -- the real matrix checks the model's layout ---------------------------------------------


def test_the_real_matrix_checks_the_models_layout_on_the_stream_qemu_wrote() -> None:
    data = (CORPORA / "qemu-10.0" / "pc-virtio-net@pc-i440fx-5.2.bin").read_bytes()
    agrees, detail = real.model_layout("pc-virtio-net", "pc-i440fx-5.2", "10.0.13", data)
    assert agrees is True and "wrote 3 MSI-X vectors, the model has 3" in detail
    # Claimed under the release's own machine type, the same bytes contradict the model.
    agrees, detail = real.model_layout("pc-virtio-net", "pc-i440fx-10.0", "10.0.13", data)
    assert agrees is False and "wrote 3 MSI-X vectors, the model has 4" in detail
    assert real.model_layout("pc-virtio-net", "microvm", "10.0.13", data) == (None, "")
    assert real.model_layout("pc-virtio-net-novectors", "pc-i440fx-5.2", "10.0.13", data) == (None, "")
    agrees, detail = real.model_layout("pc-virtio-net", "pc-i440fx-5.2", "10.0.13", data[: len(data) // 2])
    assert agrees is False and "does not decode" in detail


def test_a_wrong_model_layout_fails_the_real_matrix() -> None:
    cell = real.RealCell("pc-virtio-net", "pc-i440fx-5.2", "10.0", "5.2", real="ok", model="ok")
    assert not cell.fails
    cell.layout_agrees, cell.layout = False, "QEMU 10.0.13 wrote 3 MSI-X vectors, the model has 4"
    assert cell.fails and cell.failure.startswith("the model's layout is wrong")
    results = real.RealResults({"10.0": "10.0.13", "5.2": "5.2.0"}, [cell], 1.0)
    assert not results.passed and "model layout checked on 1 streams: 1 differ" in results.headline()
    assert results.to_json()["layouts"][0]["agrees"] is False
