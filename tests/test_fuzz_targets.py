"""The fuzzing machinery itself: targets, the TLV tree, the pyasn1 differential, seeds, files, CLI.

Why: a fuzz target that swallows every exception, or a differential that agrees
with anything, runs clean forever. These tests show each check can fail: a
target lets non-DecodeErrors escape, the differential raises on a disagreement
and recognises each known pyasn1 difference by an input that shows it, the load
paths are compared, and the committed seeds, dictionaries, options files and
scripts are exactly what the code writes.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from _support import run_cli

from migcompat.cli import EXIT_USAGE
from migcompat.errors import LimitExceeded, MalformedInput, MismatchDetected, TrailingData, TruncatedInput
from migcompat.fuzzing import campaign, device_loads, dictionaries, differential, round_trip, seeds
from migcompat.fuzzing.targets import ACCEPTED, REJECTED, TARGETS, Target, judge
from migcompat.wire import ber_tree
from migcompat.wire.ber_tree import BOOLEAN, INTEGER, OCTET_STRING, SEQUENCE, UTF8STRING, Node, UnknownType, read_tree

ROOT = Path(__file__).parent.parent

# -- the TLV tree --------------------------------------------------------------------------

TREE = Node(
    SEQUENCE,
    (Node(INTEGER, -2), Node(BOOLEAN, True), Node(OCTET_STRING, b"abcd"), Node(UTF8STRING, "ü"), Node(SEQUENCE, ())),
)
TREE_FORMS = {
    "definite": "3012 0201fe 0101ff 040461626364 0c02c3bc 3000",
    "indefinite": "3080 0201fe 0101ff 2480 04026162 04026364 0000 0c02c3bc 30800000 0000",
    "long-lengths": "308115 0201fe 0101ff 04820004 61626364 0c8102c3bc 3000",
    "utf8-octet-segments": "3016 0201fe 0101ff 040461626364 2c06 0401c3 0401bc 3000",
}


@pytest.mark.parametrize("form", TREE_FORMS)
def test_every_length_form_reads_to_the_same_tree(form: str) -> None:
    assert read_tree(bytes.fromhex(TREE_FORMS[form].replace(" ", ""))) == TREE


@pytest.mark.parametrize(
    ("hex_input", "error", "message"),
    [
        ("0500", UnknownType, r"identifier 0x05 is not a type of the migcompat wire"),
        ("2203020105", MalformedInput, r"an INTEGER must be primitive"),
        ("1000", MalformedInput, r"a SEQUENCE must be constructed"),
        ("30020000", MalformedInput, r"end-of-contents outside an indefinite-length value"),
        ("3080020105", TruncatedInput, r"input ends where a value should start"),
        ("02010500", TrailingData, r"1 unexpected trailing bytes"),
        ("0489010000000000000000", LimitExceeded, r"length of 9 octets exceeds 8"),
        ("24060c0461626364", MismatchDetected, r"found UTF8String where OCTET STRING expected"),
        ("240224800000", MalformedInput, r"container ends before this value"),
        ("3002 3080 0000", MalformedInput, r"container ends before this value"),
        ("2c0a 2c080c0261620c026364", None, ""),
        ("2c0a 24080402c3bc04026364", None, ""),
    ],
)
def test_the_tree_reader_refuses_what_x690_or_the_wire_does_not_allow(
    hex_input: str, error: type[Exception] | None, message: str
) -> None:
    data = bytes.fromhex(hex_input.replace(" ", ""))
    if error is None:  # X.690's segmenting and pyasn1's, both read
        assert read_tree(data).tag == UTF8STRING
        return
    with pytest.raises(error, match=message):
        read_tree(data)


def test_an_indefinite_value_must_end_inside_its_container() -> None:
    # Found by the differential: the end-of-contents of 24 80 lay past the end of
    # the definite 24 02 around it, and the visitor read it anyway.
    from migcompat.model import vmstate
    from migcompat.model.vmstate import Buffer, Description, Field
    from migcompat.wire.ber import BerInputVisitor

    description = Description("case", 1, 1, (Field("value", Buffer(0)),))
    signature = b"\x0c\x1avalue:buf subsections:list"
    member = bytes.fromhex("2402 2480") + b"\0\0"
    body = signature + member + bytes.fromhex("3002 0c00")
    stream = b"\x30" + bytes((len(body),)) + body
    with pytest.raises(MalformedInput, match=r"container ends before this value") as caught:
        vmstate.load(BerInputVisitor(stream), description, 1)
    assert caught.value.offset == 2 + len(signature) + 4 and caught.value.path == "case/value"
    fixed_body = signature + bytes.fromhex("2404 2480 0000") + bytes.fromhex("3002 0c00")
    fixed = b"\x30" + bytes((len(fixed_body),)) + fixed_body
    assert vmstate.load(BerInputVisitor(fixed), description, 1) == {"value": b""}


def test_nested_segments_are_noticed() -> None:
    assert ber_tree.has_nested_segments(bytes.fromhex("2480 2403040161 0000"))
    assert not ber_tree.has_nested_segments(bytes.fromhex("2480 040161 0000"))


# -- the differential ----------------------------------------------------------------------

#: An input showing each known pyasn1 difference, and our verdict on it once pyasn1 no longer shows it.
KNOWN_EXAMPLES = {
    "pyasn1-overflow": ("3080 02020005 0488ffffffffffffffff 00", differential.AGREE_REJECT),
    "pyasn1-bitstring-errors": ("3023 23232300", differential.AGREE_REJECT),
    "pyasn1-empty-component": ("30023000", differential.AGREE_ACCEPT),
    "pyasn1-empty-integer": ("0200", differential.AGREE_REJECT),
    "pyasn1-non-minimal-integer": ("02020005", differential.AGREE_REJECT),
    "pyasn1-boolean-length": ("01020000", differential.AGREE_REJECT),
    "pyasn1-low-tag-long-form": ("2480 1f0400 0000", differential.AGREE_REJECT),
    "pyasn1-tag-leading-zeros": ("2480 1f800400 0000", differential.AGREE_REJECT),
    "pyasn1-primitive-indefinite": ("04800000", differential.AGREE_REJECT),
    "pyasn1-foreign-segments": ("248065000000", differential.AGREE_REJECT),
    "pyasn1-nested-segments": ("2480 2403040161 0000", differential.AGREE_ACCEPT),
    "pyasn1-utf8string-segments": ("2c06 0401c3 0401bc", differential.AGREE_ACCEPT),
}
KNOWN = {known.name: known for known in differential.KNOWN_PYASN1}


def test_every_known_pyasn1_difference_has_an_example() -> None:
    assert set(KNOWN_EXAMPLES) == set(KNOWN)


@pytest.mark.parametrize("name", KNOWN_EXAMPLES)
def test_a_known_pyasn1_difference_is_recorded_as_pyasn1s(name: str) -> None:
    text, once_fixed = KNOWN_EXAMPLES[name]
    expected = name if KNOWN[name].shown_by_installed_pyasn1() else once_fixed
    assert differential.compare(bytes.fromhex(text.replace(" ", ""))) == expected


@pytest.mark.parametrize(
    ("hex_input", "verdict"),
    [
        ("3080 0201fe 0101ff 2480 04026162 04026364 0000 0c02c3bc 0000", differential.AGREE_ACCEPT),
        ("3003020105ff", differential.AGREE_REJECT),
        ("0500", differential.NOT_COMPARED),
        ("0201", differential.AGREE_REJECT),
    ],
)
def test_the_differential_verdicts(hex_input: str, verdict: str) -> None:
    assert differential.compare(bytes.fromhex(hex_input.replace(" ", ""))) == verdict


def test_any_other_bare_exception_of_pyasn1s_is_recorded_as_pyasn1s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(differential, "pyasn1_read", lambda data: differential.Pyasn1Result(error=KeyError("x")))
    assert differential.compare(bytes.fromhex("020105")) == differential.BARE_EXCEPTION


def test_a_different_tree_is_a_divergence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(differential, "read_tree", lambda data: Node(INTEGER, 6))
    with pytest.raises(differential.Divergence, match=r"ours reads Node\(tag=2, value=6\), pyasn1 reads"):
        differential.compare(bytes.fromhex("020105"))


def test_accepting_what_pyasn1_rejects_is_a_divergence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(differential, "read_tree", lambda data: Node(INTEGER, 5))
    with pytest.raises(differential.Divergence, match=r"ours accepts what pyasn1 rejects"):
        differential.compare(bytes.fromhex("020105ff"))


# -- targets ---------------------------------------------------------------------------------


def test_judge_lets_anything_but_a_decode_error_escape() -> None:
    def broken(data: bytes) -> str:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        judge(Target("broken_fuzzer", broken, "", max_len=1), b"")
    assert judge(TARGETS["ber_input_fuzzer"], b"\x30\x00") == REJECTED


def test_the_ber_input_target_loads_its_seed() -> None:
    seed = (ROOT / "corpora/seeds/ber_input_fuzzer/full.ber").read_bytes()
    assert judge(TARGETS["ber_input_fuzzer"], seed) == ACCEPTED
    assert judge(TARGETS["ber_input_fuzzer"], seed[:-1]) == REJECTED


def test_the_selector_bytes_choose_device_release_and_version() -> None:
    prefix = device_loads.selector("slirp", "v4", 2)
    destination, payload = device_loads.select(prefix + b"rest")
    assert (destination.device.name, destination.release.name, destination.version) == ("slirp", "v4", 2)
    assert payload == b"rest"
    assert device_loads.versions(destination.device) == (0, 1, 2, 3, 4, 5)


def test_load_paths_that_disagree_are_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    seed = (ROOT / "corpora/seeds/qemufile_device_fuzzer/slirp-v3-fixed0-at-v3.qemufile").read_bytes()
    assert judge(TARGETS["qemufile_device_fuzzer"], seed) == ACCEPTED

    def wrong(fmt: str, release: Any, payload: bytes, version: int) -> dict[str, Any]:
        return {"sockets": [], "ip_id": 1}

    monkeypatch.setattr(device_loads, "_legacy", wrong)
    with pytest.raises(device_loads.PathsDisagree, match=r"the phase-1 visit function loaded"):
        judge(TARGETS["qemufile_device_fuzzer"], seed)


def test_the_round_trip_target_runs_hypothesis_on_the_bytes() -> None:
    for seed in sorted((ROOT / "corpora/seeds/device_round_trip_fuzzer").iterdir()):
        assert judge(TARGETS["device_round_trip_fuzzer"], seed.read_bytes()) == ACCEPTED


def test_the_round_trips_use_each_devices_fuzz_releases() -> None:
    from migcompat.devices import registry
    from migcompat.devices.virtio import FUZZ_QUEUE_MAX

    chosen = round_trip.round_trip_releases()
    virtio = [release for device, release in chosen if device.name == "virtio"]
    slirp = [release for device, release in chosen if device.name == "slirp"]
    assert [r.name for r in virtio] == [r.name for r in registry()["virtio"].releases]
    assert {_queues_limit(r) for r in virtio} == {FUZZ_QUEUE_MAX}
    assert slirp == list(registry()["slirp"].releases)


def _queues_limit(release: Any) -> int | None:
    return release.description.fields[-2].type.max_length  # type: ignore[no-any-return]


@pytest.mark.parametrize("fmt", ["qemufile", "ber"])
def test_a_round_trip_that_changes_the_bytes_is_a_finding(fmt: str) -> None:
    device, release = round_trip.round_trip_releases()[-1]
    state = device.fixed_states(release)[1]
    round_trip.check_round_trip(device, release, state, (fmt,))  # holds for the real paths

    def drops_the_status(visitor: Any, state: Any, version: int) -> Any:
        return release.legacy(visitor, state if visitor.is_input else {**state, "status": 0}, version)

    broken = dataclasses.replace(release, legacy=drops_the_status)
    with pytest.raises(device_loads.PathsDisagree, match=f"{fmt}: the phase-1 visit function writes other bytes"):
        round_trip.check_round_trip(device, broken, state, (fmt,))


# -- committed files ---------------------------------------------------------------------------


def test_the_committed_seeds_are_what_the_code_writes() -> None:
    built = seeds.build(ROOT / "corpora")
    committed = {
        target: {path.name: path.read_bytes() for path in (ROOT / "corpora/seeds" / target).iterdir()}
        for target in TARGETS
    }
    assert committed == built


def test_the_fuzz_directory_holds_a_script_and_options_per_target_and_the_dictionaries() -> None:
    for name, text in dictionaries.files().items():
        assert (ROOT / "fuzz" / name).read_text() == text, name
    for name in TARGETS:
        script = (ROOT / "fuzz" / f"{name}.py").read_text()
        assert f'main("{name}")' in script and "DecodeError" in script
        assert TARGETS[name].dictionary is None or (ROOT / "fuzz" / TARGETS[name].dictionary).is_file()


def test_every_target_documents_its_invariant() -> None:
    for target in TARGETS.values():
        assert "Invariant" in (target.run.__doc__ or ""), target.name


# -- the runner and the command line ---------------------------------------------------------------

DONE_LOG = """\
#10\tINITED cov: 262 ft: 501 corp: 9/5729b exec/s: 0 rss: 60Mb
#1200000\tDONE   cov: 341 ft: 1381 corp: 166/85Kb lim: 1024 exec/s: 7185 rss: 68Mb
stat::number_of_executed_units: 1200000
stat::average_exec_per_sec:     7185
stat::new_units_added:          685
"""
CRASH_LOG = """\
#4096\tpulse  cov: 100 ft: 200 corp: 20/1Kb lim: 1024 exec/s: 2048 rss: 60Mb
#5000\tNEW    cov: 101 ft: 205 corp: 21/1Kb lim: 1024 exec/s: 2500 rss: 60Mb
 === Uncaught Python exception: ===
"""


def test_the_final_statistics_are_parsed() -> None:
    stats = campaign.parse_log(DONE_LOG)
    assert (stats.execs, stats.exec_per_s, stats.coverage, stats.features, stats.corpus_size, stats.new_units) == (
        1200000,
        7185,
        341,
        1381,
        166,
        685,
    )


def test_a_run_stopped_by_a_finding_reports_its_last_progress() -> None:
    stats = campaign.parse_log(CRASH_LOG)
    assert (stats.execs, stats.coverage, stats.corpus_size) == (5000, 101, 21)


def test_the_summary_json_has_the_documented_keys() -> None:
    summary = campaign.Summary("ber_input_fuzzer", 2.0, [campaign.parse_log(DONE_LOG)], new_entries=3)
    document = summary.as_json()
    assert {"target", "execs", "exec_per_s", "findings", "corpus_size"} <= set(document)
    assert document["execs"] == 1200000 and document["exec_per_s"] == 7185 and document["findings"] == []
    crashed = campaign.Summary("ber_input_fuzzer", 2.0, [campaign.parse_log(CRASH_LOG)], new_entries=0)
    assert crashed.exec_per_s == 2500  # no final statistics: the wall-clock rate
    assert "1200000 executions" in summary.text() and "0 findings" in summary.text()


def test_an_unknown_target_is_a_usage_error_listing_the_targets() -> None:
    code, _, err = run_cli("fuzz", "nope")
    assert code == EXIT_USAGE
    assert "unknown fuzz target 'nope'" in err and "ber_input_fuzzer" in err and err.count("\n") == 1
    code, _, err = run_cli("fuzz")
    assert code == EXIT_USAGE and "name a fuzz target or 'all'" in err


def test_make_seeds_writes_every_targets_seeds(tmp_path: Path) -> None:
    code, out, _ = run_cli("fuzz", "--make-seeds", "--corpora", str(tmp_path))
    assert code == 0 and "seed files" in out
    assert {path.name for path in (tmp_path / "seeds").iterdir()} == set(TARGETS)
    assert json.dumps(sorted(path.name for path in (tmp_path / "seeds/ber_input_fuzzer").iterdir()))
