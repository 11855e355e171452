"""The mutation matrix: mutants derived from the real descriptions, and what each format makes of them.

The known cases pin what the wire formats must do: a width change or a swap of
two same-width members is misread (or runs off the end) on qemufile and refused
on BER; an array turned into a struct writes the same qemufile bytes (harmless)
but a different BER shape (detected); a field added without a version bump is
misread by the mutant on qemufile.
"""

from __future__ import annotations

from typing import Any

import pytest

from migcompat import devices
from migcompat.compat import cell, matrix, mutants
from migcompat.compat.cell import MatrixConfig
from migcompat.compat.mutants import MUTANT_TO_REAL, REAL_TO_MUTANT, Mutant
from migcompat.compat.results import MutantResult
from migcompat.errors import UsageError
from migcompat.model.projection import project
from migcompat.model.vmstate import Array, Buffer, Description, Field, FieldRef, FieldType, Scalar, State, Struct
from migcompat.outcomes import MutantOutcome

SEED = cell.DEFAULT_SEED
NEWEST = {name: device.newest for name, device in devices.registry().items()}


def _states(device: str) -> tuple[State, ...]:
    return cell.states_for(device, NEWEST[device].name, mutants.DEFAULT_EXAMPLES, SEED)


def _derived(device: str) -> list[Mutant]:
    return mutants.derive(NEWEST[device].description, states=_states(device))


def _all(device: str) -> dict[str, Mutant]:
    return {mutant.name: mutant for mutant in mutants.derive(NEWEST[device].description, per_class=None)}


def _shape(kind: FieldType | Description) -> Any:
    """A description's layout without its callables (checks, needed predicates)."""
    if isinstance(kind, Scalar):
        return kind.kind
    if isinstance(kind, Buffer):
        return ("buf", kind.size.name if isinstance(kind.size, FieldRef) else kind.size)
    if isinstance(kind, Array):
        length = kind.length.name if isinstance(kind.length, FieldRef) else kind.length
        return ("list", _shape(kind.element), length, kind.framing)
    fields = tuple((f.name, _shape(f.type), f.since, f.until, f.when) for f in kind.fields)
    if isinstance(kind, Struct):
        return ("struct", fields)
    subsections = tuple(_shape(sub.description) for sub in kind.subsections)
    return ("description", kind.name, kind.version_id, kind.minimum_version_id, fields, subsections)


def _outcomes(mutant: Mutant, device: str, states: tuple[State, ...] | None = None) -> dict[tuple[str, str], str]:
    results = mutants.run_mutant(mutant, _states(device) if states is None else states, device=device)
    return {(result.format, result.direction): result.outcome.value for result in results}


# -- derivation -------------------------------------------------------------------


@pytest.mark.parametrize("device", ["virtio", "slirp"])
def test_every_class_is_derived_within_the_cap(device: str) -> None:
    derived = _derived(device)
    assert {mutant.mutant_class for mutant in derived} == set(mutants.MUTANT_CLASSES)
    for cls in mutants.MUTANT_CLASSES:
        assert sum(mutant.mutant_class == cls for mutant in derived) <= mutants.DEFAULT_PER_CLASS
    names = [mutant.name for mutant in derived]
    assert len(names) == len(set(names))
    assert all(name.startswith(f"{mutant.mutant_class}:") for name, mutant in zip(names, derived, strict=True))
    # Deterministic: the same description and states give the same mutants.
    assert [mutant.name for mutant in _derived(device)] == names


@pytest.mark.parametrize("device", ["virtio", "slirp"])
def test_mutants_reach_every_level(device: str) -> None:
    """Top-level members, nested structs and list elements -- and for virtio the subsections."""
    paths = [mutant.path for mutant in _derived(device)]
    assert any("/" not in path for path in paths)
    assert any(mutant.container and mutant.container[-1][0] == "each" for mutant in _derived(device))
    if device == "virtio":
        assert any(path.startswith("virtio/virtio/") for path in paths)
        assert any("modern_state/vqs" in path for path in paths)  # a list inside a subsection of a subsection
    else:
        assert any(path.startswith("sockets/so_tcpcb/") for path in paths)


@pytest.mark.parametrize("device", ["virtio", "slirp"])
def test_each_mutant_is_a_valid_description_that_differs_and_reads_its_own_stream(device: str) -> None:
    real = NEWEST[device].description
    states = _states(device)
    richest = max(states, key=lambda state: len(cell.encode("qemufile", real, state)))
    for mutant in _derived(device):
        assert isinstance(mutant.description, Description)
        assert _shape(mutant.description) != _shape(real), mutant.name
        # A mutant loads what it writes itself: the maps and the fitting are consistent.
        own = mutant.mutant_state(richest)
        # (BER on virtio's richest state costs ten seconds over all mutants; the
        # run_all test covers it.)
        for fmt in ("qemufile", "ber") if device == "slirp" else ("qemufile",):
            encoded = cell.encode(fmt, mutant.description, own)
            loaded = cell.decode(fmt, mutant.description, encoded, mutant.description.version_id)
            assert loaded == project(own, mutant.description, mutant.description), (mutant.name, fmt)


@pytest.mark.parametrize("device", ["virtio", "slirp"])
def test_maps_go_there_and_back(device: str) -> None:
    for mutant in _derived(device):
        for state in _states(device):
            back = mutant.to_real(mutant.to_mutant(state))
            if mutant.mutant_class == "delete":
                # A dropped member comes back at its default.
                assert back.keys() == state.keys()
            else:
                assert back == state, mutant.name


def test_invalid_changes_are_skipped() -> None:
    """Deleting or renaming a length field, or moving it after what it sizes or
    conditions, makes no valid description: no such mutant is derived."""
    slirp, virtio = set(_all("slirp")), set(_all("virtio"))
    assert "delete:sockets/so_rcv/data" in slirp
    assert "delete:sockets/so_rcv/sb_datalen" not in slirp
    assert "rename:sockets/so_rcv/sb_datalen->sb_datalen_renamed" not in slirp
    assert "reorder:sockets/fhost/family<->addr" not in slirp  # addr is written only for family 2
    assert "reorder:sockets/fhost/addr<->port" in slirp
    assert "reorder:config_len<->config" not in virtio
    assert "reorder:isr<->queue_sel" in virtio


def test_fit_wraps_integers_and_sizes_buffers() -> None:
    description = Description(
        "d", 1, 1, (Field("a", Scalar("int8")), Field("b", Buffer(3)), Field("c", Scalar("uint16")))
    )
    fitted = mutants.fit(description, {"a": 0xFF, "b": b"\x01", "c": -1, "d": [1]})
    assert fitted == {"a": -1, "b": b"\x01\0\0", "c": 0xFFFF, "d": [1]}


# -- known outcomes -----------------------------------------------------------------


def test_a_width_change_is_misread_on_qemufile_and_detected_on_ber() -> None:
    mutant = _all("slirp")["width:ip_id:uint16->uint32"]
    outcomes = _outcomes(mutant, "slirp")
    for direction in (MUTANT_TO_REAL, REAL_TO_MUTANT):
        assert outcomes[("qemufile", direction)] in ("corrupt", "detected")
        assert outcomes[("ber", direction)] == "detected"


def test_a_width_change_in_list_elements_is_detected_on_ber() -> None:
    mutant = _all("virtio")["width:queues/last_avail_idx:uint16->uint32"]
    outcomes = _outcomes(mutant, "virtio")
    assert outcomes[("ber", MUTANT_TO_REAL)] == outcomes[("ber", REAL_TO_MUTANT)] == "detected"
    assert outcomes[("qemufile", REAL_TO_MUTANT)] in ("corrupt", "detected")


def test_swapping_two_same_width_members_corrupts_qemufile_silently_and_ber_detects_it() -> None:
    mutant = _all("slirp")["reorder:sockets/so_tcpcb/snd_una<->snd_nxt"]
    outcomes = _outcomes(mutant, "slirp")
    for direction in (MUTANT_TO_REAL, REAL_TO_MUTANT):
        assert outcomes[("qemufile", direction)] == "corrupt"
        assert outcomes[("ber", direction)] == "detected"


def test_a_sign_change_corrupts_qemufile_only_with_the_top_bit_set() -> None:
    mutant = _all("slirp")["sign:ip_id:uint16->int16"]
    small = {**_states("slirp")[0], "ip_id": 0x1234}
    big = {**_states("slirp")[0], "ip_id": 0xBEEF}
    assert _outcomes(mutant, "slirp", (small,))[("qemufile", REAL_TO_MUTANT)] == "harmless"
    assert _outcomes(mutant, "slirp", (big,))[("qemufile", REAL_TO_MUTANT)] == "corrupt"
    assert _outcomes(mutant, "slirp", (big,))[("qemufile", MUTANT_TO_REAL)] == "corrupt"  # -0x4111 read as 0xBEEF
    assert _outcomes(mutant, "slirp", (small,))[("ber", REAL_TO_MUTANT)] == "detected"


def test_edge_states_put_the_top_bit_where_valid_states_allow_it() -> None:
    derived = {mutant.name: mutant for mutant in _derived("virtio")}
    states = _states("virtio")
    (edge,) = mutants.edge_states(derived["sign:queues/num:uint32->int32"], states)
    assert {queue["num"] for queue in edge["queues"]} == {0xFFFFFFFF}
    # Feature bits the device does not offer make an invalid state: no edge.
    assert mutants.edge_states(derived["sign:virtio/virtio/64bit_features/guest_features:uint64->int64"], states) == []


@pytest.mark.parametrize(
    ("device", "name"),
    [
        ("slirp", "list-struct:sockets/so_tcpcb/t_timer:array[4]->struct"),
        ("virtio", "list-struct:pci_irq_state:array[4]->struct"),
        ("virtio", "list-struct:virtio/virtio/virtqueues/vqs:[]struct->array[2]"),
    ],
)
def test_list_struct_writes_the_same_qemufile_bytes_and_ber_detects_the_shape(device: str, name: str) -> None:
    mutant = _all(device)[name]
    for state in _states(device):
        real_bytes = cell.encode("qemufile", NEWEST[device].description, state)
        assert cell.encode("qemufile", mutant.description, mutant.mutant_state(state)) == real_bytes
    outcomes = _outcomes(mutant, device)
    for direction in (MUTANT_TO_REAL, REAL_TO_MUTANT):
        assert outcomes[("qemufile", direction)] == "harmless"
        assert outcomes[("ber", direction)] == "detected"


@pytest.mark.parametrize(
    "name",
    [
        "no-version-bump:mutant_added:uint32@v4",
        "no-version-bump:sockets/mutant_added:uint32@v4",
        "no-version-bump:bootp_clients/mutant_added:uint32@v4",
    ],
)
def test_a_field_added_without_a_version_bump_is_misread_by_the_mutant(name: str) -> None:
    outcomes = _outcomes(_all("slirp")[name], "slirp")
    assert outcomes[("qemufile", REAL_TO_MUTANT)] in ("detected", "corrupt")
    assert outcomes[("ber", REAL_TO_MUTANT)] == "detected"
    assert outcomes[("ber", MUTANT_TO_REAL)] == "detected"


def test_a_renamed_member_keeps_its_value_on_qemufile_and_is_refused_by_ber() -> None:
    """Names are not on the legacy wire: a rename is harmless there."""
    outcomes = _outcomes(_all("slirp")["rename:ip_id->ip_id_renamed"], "slirp")
    assert outcomes[("qemufile", MUTANT_TO_REAL)] == outcomes[("qemufile", REAL_TO_MUTANT)] == "harmless"
    assert outcomes[("ber", MUTANT_TO_REAL)] == outcomes[("ber", REAL_TO_MUTANT)] == "detected"


def test_a_rename_under_a_post_load_check_keeps_the_check() -> None:
    """virtio's checks read guest_features from the 64bit_features subsection: the
    renamed mutant still runs them (on its state mapped back), and does not crash."""
    outcomes = _outcomes(
        _all("virtio")["rename:virtio/virtio/64bit_features/guest_features->guest_features_renamed"], "virtio"
    )
    assert "crash" not in outcomes.values()
    assert outcomes[("qemufile", REAL_TO_MUTANT)] == "harmless"


# -- summaries and the BER invariant ------------------------------------------------------


def _result(mutant: str, fmt: str, direction: str, outcome: MutantOutcome, device: str = "d") -> MutantResult:
    return MutantResult(device, "r1", mutant, mutant.split(":")[0], fmt, direction, outcome, f"{fmt} said so")


def test_ber_misses_on_a_hand_built_list() -> None:
    corrupt, detected, harmless = MutantOutcome.CORRUPT, MutantOutcome.DETECTED, MutantOutcome.HARMLESS
    results = [
        # corrupt on qemufile, detected on BER: fine
        _result("width:a", "qemufile", MUTANT_TO_REAL, corrupt),
        _result("width:a", "ber", MUTANT_TO_REAL, detected),
        # corrupt on qemufile, harmless on BER: a miss (only this direction)
        _result("sign:b", "qemufile", REAL_TO_MUTANT, corrupt),
        _result("sign:b", "ber", REAL_TO_MUTANT, harmless),
        _result("sign:b", "qemufile", MUTANT_TO_REAL, corrupt),
        _result("sign:b", "ber", MUTANT_TO_REAL, detected),
        # corrupt on both: a miss
        _result("reorder:c", "qemufile", MUTANT_TO_REAL, corrupt),
        _result("reorder:c", "ber", MUTANT_TO_REAL, corrupt),
        # not corrupt on qemufile: whatever BER does is no miss
        _result("rename:d", "qemufile", MUTANT_TO_REAL, harmless),
        _result("rename:d", "ber", MUTANT_TO_REAL, harmless),
        _result("insert:e", "qemufile", MUTANT_TO_REAL, detected),
        _result("insert:e", "ber", MUTANT_TO_REAL, corrupt),
        # corrupt on qemufile, no BER result at all: a miss (the invariant is not shown)
        _result("delete:f", "qemufile", REAL_TO_MUTANT, corrupt),
        # same mutant name on another device, detected there: no miss
        _result("reorder:c", "qemufile", MUTANT_TO_REAL, corrupt, device="other"),
        _result("reorder:c", "ber", MUTANT_TO_REAL, detected, device="other"),
    ]
    misses = mutants.ber_misses(results)
    assert [(miss.device, miss.mutant, miss.direction, miss.ber_outcome) for miss in misses] == [
        ("d", "sign:b", REAL_TO_MUTANT, harmless),
        ("d", "reorder:c", MUTANT_TO_REAL, corrupt),
        ("d", "delete:f", REAL_TO_MUTANT, None),
    ]
    assert misses[0].mutant_class == "sign" and misses[0].qemufile_detail == "qemufile said so"
    assert mutants.ber_misses([]) == []


def test_summary_counts_every_outcome() -> None:
    results = [
        _result("width:a", "qemufile", MUTANT_TO_REAL, MutantOutcome.CORRUPT),
        _result("width:a", "qemufile", REAL_TO_MUTANT, MutantOutcome.DETECTED),
        _result("width:b", "qemufile", REAL_TO_MUTANT, MutantOutcome.DETECTED),
        _result("width:a", "ber", REAL_TO_MUTANT, MutantOutcome.DETECTED),
    ]
    totals = mutants.summary(results)
    assert totals[("d", "width", "qemufile")] == {"detected": 2, "corrupt": 1, "harmless": 0, "crash": 0}
    assert totals[("d", "width", "ber")] == {"detected": 1, "corrupt": 0, "harmless": 0, "crash": 0}
    assert "width" in mutants.render_summary(results)


# -- whole runs -----------------------------------------------------------------------------


def test_run_all_on_virtio_is_complete_and_keeps_the_ber_invariant() -> None:
    results = mutants.run_all(MatrixConfig(devices=("virtio",)))
    derived = _derived("virtio")
    assert len(results) == len(derived) * len(mutants.FORMATS) * len(mutants.DIRECTIONS)
    assert {result.device for result in results} == {"virtio"}
    assert {result.release for result in results} == {NEWEST["virtio"].name}
    assert not [result for result in results if result.outcome is MutantOutcome.CRASH]
    assert mutants.ber_misses(results) == []
    # BER detects every mutant whose change reaches the stream; qemufile misses some.
    ber = [result for result in results if result.format == "ber"]
    assert all(result.outcome is MutantOutcome.DETECTED for result in ber)
    assert any(result.outcome is MutantOutcome.CORRUPT for result in results if result.format == "qemufile")


def test_run_all_on_slirp_every_release_keeps_the_ber_invariant() -> None:
    results = mutants.run_all(MatrixConfig(devices=("slirp",)), all_releases=True)
    assert {result.release for result in results} == {release.name for release in devices.get("slirp").releases}
    assert not [result for result in results if result.outcome is MutantOutcome.CRASH]
    assert mutants.ber_misses(results) == []


def test_run_all_refuses_an_unknown_device() -> None:
    with pytest.raises(UsageError):
        mutants.run_all(MatrixConfig(devices=("nope",)))


def test_the_matrix_carries_the_mutants_unless_told_not_to() -> None:
    config = MatrixConfig(devices=("slirp",), pairings=("qemufile",), sources=("v4",), examples=1, shrink=False)
    results = matrix.run_matrix(config)
    assert results.mutants and {result.device for result in results.mutants} == {"slirp"}
    assert results.to_json()["mutants"][0]["class"] in mutants.MUTANT_CLASSES
    without = matrix.run_matrix(MatrixConfig(**{**config.__dict__, "mutants": False}))
    assert without.mutants == []


def test_ber_detects_a_swap_of_two_members_sharing_a_nested_description() -> None:
    inner = Description("inner", 1, 1, (Field("x", Scalar("uint8")),))
    real = Description("outer", 1, 1, (Field("a", inner), Field("b", inner)))
    mutant = {mutant.name: mutant for mutant in mutants.derive(real, per_class=None)}["reorder:a<->b"]
    results = mutants.run_mutant(mutant, [{"a": {"x": 1}, "b": {"x": 2}}])
    assert {result.outcome for result in results if result.format == "qemufile"} == {MutantOutcome.CORRUPT}
    assert mutants.ber_misses(results) == []


def test_worker_processes_give_the_same_mutation_table_in_the_same_order() -> None:
    serial = MatrixConfig(devices=("slirp",), examples=2, jobs=1)
    parallel = MatrixConfig(devices=("slirp",), examples=2, jobs=2)
    results = mutants.run_all(serial)
    assert results and mutants.run_all(parallel) == results
