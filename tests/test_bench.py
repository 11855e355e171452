"""The benchmark's shape, not its speed: every codec and op is measured, the
codecs check each other, and the reports carry what the CLI prints.

Timing is never asserted -- CI machines are noisy; the figures are for people.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from migcompat.codec.compiled import compile_codec
from migcompat.errors import UsageError
from migcompat.model.vmstate import State
from migcompat.perf import bench, timing, workloads

WORKLOAD = "virtio-8"


@pytest.fixture(scope="module")
def results() -> bench.BenchResults:
    return bench.run(quick=True, workloads=[WORKLOAD])


def _expected_codecs(results: bench.BenchResults) -> list[str]:
    return [name for name in bench.CODEC_BUILDERS if name not in results.skipped]


def test_every_codec_and_op_is_measured(results: bench.BenchResults) -> None:
    measured = [(m.workload, m.codec, m.op) for m in results.measurements]
    expected = [(WORKLOAD, codec, op) for codec in _expected_codecs(results) for op in bench.OPS]
    assert measured == expected
    assert set(results.skipped) <= {"pyasn1", "asn1tools"}


@pytest.mark.parametrize("library", ["pyasn1", "asn1tools"])
def test_asn1_libraries_run_when_installed(results: bench.BenchResults, library: str) -> None:
    pytest.importorskip(library)
    assert library not in results.skipped


def test_measurements_are_positive(results: bench.BenchResults) -> None:
    for m in results.measurements:
        assert m.ops_per_s > 0, m
        assert m.iterations >= 1, m


def test_sizes(results: bench.BenchResults) -> None:
    size = {(m.codec, m.op): m.bytes for m in results.measurements}
    assert size["dict", "encode"] is None
    assert size["struct", "encode"] == size["qemufile", "encode"] == size["qemufile", "decode"]
    assert size["qemufile-walker", "encode"] == size["qemufile", "encode"]
    assert size["ber-walker", "encode"] == size["ber", "encode"] == size["ber", "decode"]
    assert size["struct", "encode"] == 4 + 8 * 2 + 1 * 2 + 2 + bench.CONFIG_SIZE + 8 * (4 + 8 * 3 + 2 * 3 + 1)
    for library in ("pyasn1", "asn1tools"):
        if library not in results.skipped:
            assert size[library, "encode"] == size["ber", "encode"]


def test_ratios_cover_each_op(results: bench.BenchResults) -> None:
    names = {(r.name, r.op) for r in results.ratios}
    pairs = [
        "qemufile/ber",
        "struct/qemufile",
        "qemufile-walker/ber-walker",
        "struct/qemufile-walker",
        "qemufile/qemufile-walker",
        "ber/ber-walker",
        "ber/ber-pure",
    ]
    for library in ("pyasn1", "asn1tools"):
        if library not in results.skipped:
            pairs += [f"ber/{library}", f"ber-walker/{library}", f"ber-pure/{library}"]
    if "asn1crypto" not in results.skipped:
        pairs.append("ber/asn1crypto")
    if "cbor2" not in results.skipped:
        pairs.append("cbor2/ber")
    assert names == {(pair, op) for pair in pairs for op in bench.OPS}
    for ratio in results.ratios:
        assert ratio.value > 0
        # Targets apply to the large workloads only; virtio-8 reports ratios without them.
        assert ratio.meets_target is None


SPEEDS = (("ber", 100.0), ("pyasn1", 2.0), ("asn1tools", 30.0), ("qemufile", 300.0), ("struct", 500.0))


def test_targets_apply_to_the_large_workloads() -> None:
    measurements = [
        bench.Measurement(workload, codec, op, speed, 1, 1, 1)
        for workload in ("virtio-8", "virtio-1024", "slirp-1000")
        for codec, speed in (
            ("ber", 100.0),
            ("pyasn1", 2.0),
            ("asn1tools", 30.0),
            ("qemufile", 300.0),
            ("struct", 500.0),
        )
        for op in bench.OPS
    ]
    ratios = {(r.workload, r.name, r.op): r for r in bench._ratios(measurements)}
    for workload in ("virtio-1024", "slirp-1000"):
        assert ratios[workload, "ber/pyasn1", "encode"].meets_target is True  # 50x >= 40x
        assert ratios[workload, "ber/asn1tools", "decode"].meets_target is False  # 3.3x < 4x
        assert ratios[workload, "qemufile/ber", "encode"].meets_target is False  # 3x > 2x
        assert ratios[workload, "struct/qemufile", "decode"].meets_target is True  # 1.7x <= 2x
    assert ratios["virtio-8", "ber/pyasn1", "encode"].meets_target is None


def test_the_wire_rows_measure_the_compiled_path() -> None:
    codecs, _skipped = bench.build_codecs(bench.WORKLOADS["virtio-8"])
    for fmt in ("qemufile", "ber"):
        compiled = compile_codec(bench.VIRTIO, fmt)
        assert compiled.compiled
        assert codecs[fmt].encode == compiled.encode and codecs[fmt].decode == compiled.decode
        assert codecs[f"{fmt}-walker"].encode != compiled.encode


def test_json_report(results: bench.BenchResults) -> None:
    report = json.loads(json.dumps(bench.to_json(results)))
    assert report["format_version"] == bench.FORMAT_VERSION
    assert len(report["results"]) == len(results.measurements)
    for row in report["results"]:
        assert {"workload", "codec", "op", "ops_per_s", "bytes"} <= set(row)
        assert row["workload"] == WORKLOAD
        assert row["ops_per_s"] > 0
    assert {row["name"] for row in report["ratios"]} == {r.name for r in results.ratios}


def test_text_report(results: bench.BenchResults) -> None:
    text = bench.render_text(results)
    for codec in _expected_codecs(results):
        assert f" {codec} " in text
    for codec, reason in results.skipped.items():
        assert f"skipped codec {codec}: {reason}" in text


@pytest.mark.parametrize("name", ["virtio-8", "virtio-64", "virtio-1024", "slirp-10"])
def test_every_codec_round_trips_every_workload(name: str) -> None:
    workload = bench.WORKLOADS[name]
    codecs, _skipped = bench.build_codecs(workload, [c for c in bench.CODEC_BUILDERS if c != "pyasn1"])
    state = workload.state()
    key = "queues" if name.startswith("virtio") else "sockets"
    assert len(state[key]) == workload.size
    encoded = bench.check_codecs(codecs, state)
    assert encoded["struct"] == encoded["qemufile"] == encoded["qemufile-walker"]
    assert encoded["ber"] == encoded["ber-walker"]


def test_states_are_deterministic() -> None:
    assert workloads.make_virtio_state(64) == workloads.make_virtio_state(64)
    assert workloads.make_virtio_state(64) != workloads.make_virtio_state(64, seed=1)
    assert workloads.make_slirp_state(3) == workloads.make_slirp_state(3)
    assert workloads.make_slirp_state(3) != workloads.make_slirp_state(3, seed=1)


def test_a_codec_that_loses_data_is_refused() -> None:
    codecs, _skipped = bench.build_codecs(bench.WORKLOADS["virtio-8"])
    honest = codecs["struct"]

    def lossy_decode(data: Any) -> State:
        state = honest.decode(data)
        state["queues"] = state["queues"][:-1]
        return state

    broken = bench.Codec("lossy", honest.encode, lossy_decode)
    with pytest.raises(bench.BenchmarkCheckFailed, match="lossy: decode"):
        bench.check_codecs({"lossy": broken}, bench.make_state(8))


def test_a_codec_that_writes_another_wire_is_refused() -> None:
    codecs, _skipped = bench.build_codecs(bench.WORKLOADS["virtio-8"])
    honest = codecs["struct"]
    shifted = bench.Codec("struct", lambda state: b"\0" + honest.encode(state), lambda data: honest.decode(data[1:]))
    bench.check_codecs({"struct": honest, "qemufile": codecs["qemufile"]}, bench.make_state(8))
    with pytest.raises(bench.BenchmarkCheckFailed, match="differ from qemufile"):
        bench.check_codecs({"struct": shifted, "qemufile": codecs["qemufile"]}, bench.make_state(8))


def test_missing_pyasn1_is_skipped_and_said(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in sys.modules if name == "pyasn1" or name.startswith("pyasn1.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "pyasn1", None)
    results = bench.run(quick=True, workloads=[WORKLOAD])
    assert "pyasn1" in results.skipped
    assert all(m.codec != "pyasn1" for m in results.measurements)
    assert all("pyasn1" not in r.name for r in results.ratios)
    assert "skipped codec pyasn1: " in bench.render_text(results)


def test_unknown_workload_or_codec_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="virtio-3"):
        bench.run(quick=True, workloads=["virtio-3"])
    with pytest.raises(UsageError, match="asn2tools"):
        bench.run(quick=True, workloads=["virtio-8"], codecs=["asn2tools"])


def test_measure_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        timing.measure(lambda: None, budget_s=0, rounds=3)
    measured = timing.measure(lambda: None, budget_s=0.001, rounds=2)
    assert measured.rounds == 2
    assert measured.seconds > 0


def test_cli_bench_errors_and_scaling_files(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from migcompat.cli import EXIT_USAGE, cli

    runner = CliRunner()
    bad = runner.invoke(cli, ["bench", "--quick", "--workload", "virtio-3"])
    assert bad.exit_code == EXIT_USAGE
    assert "virtio-3" in bad.stderr and "Traceback" not in bad.output
    out = tmp_path / "reports"
    ok = runner.invoke(
        cli, ["bench", "--quick", "--workload", "virtio-8", "--codec", "ber", "--scaling", "--out", str(out), "--json"]
    )
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.stdout)
    assert {row["codec"] for row in report["results"]} == {"ber"}
    assert [s["name"] for s in report["scaling"]][-1].startswith("matrix slirp")
    assert json.loads((out / "scaling.json").read_text()) == report["scaling"]
    assert (out / "scaling.svg").read_text().startswith("<svg")


def test_cli_bench_times_whole_streams_of_the_captures_given(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from migcompat.cli import EXIT_USAGE, cli
    from migcompat.perf import streams

    captures = tmp_path / "captures"
    captures.mkdir()
    source = Path(__file__).parent.parent / "corpora" / "qemu-7.2" / "microvm-virtio-net.bin"
    (captures / source.name).write_bytes(source.read_bytes())
    runner = CliRunner()
    args = ["bench", "--quick", "--workload", "virtio-8", "--codec", "qemufile", "--json", "--streams", str(captures)]
    ok = runner.invoke(cli, args)
    assert ok.exit_code == 0, ok.output
    figures = json.loads(ok.stdout)["streams"]
    assert [figure["operation"] for figure in figures] == list(streams.OPERATIONS)
    assert all(figure["capture"] == "microvm-virtio-net" and figure["bytes"] == 89822 for figure in figures)
    assert all(figure["mb_per_s"] > 0 for figure in figures)
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = runner.invoke(cli, ["bench", "--quick", "--workload", "virtio-8", "--streams", str(empty)])
    assert bad.exit_code == EXIT_USAGE and "no captures (*.bin) in" in bad.stderr
