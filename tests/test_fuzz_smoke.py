"""A few seconds of real fuzzing per target, on every test run.

Why: the replay tests prove the fuzz logic on known inputs; only a real libFuzzer
run proves the entry points, the instrumentation, the dictionaries and the
runner work -- that ``migcompat fuzz`` and ``tox -e fuzz`` will run tonight.
Each target runs for two seconds (a fixed libFuzzer seed) on a copy of its
seeds and regressions (a finding must not write into the repository from a
test) and must report executions and coverage and no finding.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from migcompat.fuzzing.targets import TARGETS

pytest.importorskip("atheris", reason="atheris is not installed (pip install -e .[test]); fuzz smoke runs skipped")

ROOT = Path(__file__).parent.parent


def _corpora(tmp_path: Path, target: str) -> Path:
    corpora = tmp_path / "corpora"
    for kind in ("seeds", "regressions"):
        source = ROOT / "corpora" / kind / target
        if source.is_dir():
            shutil.copytree(source, corpora / kind / target)
    return corpora


@pytest.mark.parametrize("target", list(TARGETS))
def test_a_short_run_fuzzes_without_findings(target: str, tmp_path: Path) -> None:
    corpora = _corpora(tmp_path, target)
    # A fixed seed: the same mutations every run, so the smoke is not a lottery.
    command = [sys.executable, "-m", "migcompat.cli", "fuzz", target, "--time", "2", "--seed", "1", "--json"]
    command += ["--corpora", str(corpora), "--work", str(tmp_path / "work")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert document["target"] == target and document["findings"] == []
    assert document["execs"] > 0 and document["exec_per_s"] > 0
    assert document["corpus_size"] > 0 and document["coverage"] > 0


def test_two_runs_of_one_target_at_once_report_their_own_executions(tmp_path: Path) -> None:
    corpora = _corpora(tmp_path, "ber_input_fuzzer")
    work = tmp_path / "work"
    runs = {}
    for count in (2000, 3000):
        command = [sys.executable, "-m", "migcompat.cli", "fuzz", "ber_input_fuzzer", "--runs", str(count)]
        command += ["--seed", "1", "--json", "--corpora", str(corpora), "--work", str(work)]
        runs[count] = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    for count, process in runs.items():
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stdout + stderr
        assert json.loads(stdout)["execs"] == count
    # One shared work corpus; a directory of logs and artifacts per run.
    assert len(list((work / "ber_input_fuzzer" / "runs").iterdir())) == 2
    assert any((work / "ber_input_fuzzer" / "corpus").iterdir())


def test_a_fuzz_script_replays_a_file_and_exits_cleanly(tmp_path: Path) -> None:
    seed = ROOT / "corpora/seeds/ber_input_fuzzer/full.ber"
    result = subprocess.run(
        [sys.executable, str(ROOT / "fuzz/ber_input_fuzzer.py"), str(seed)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "Executed" in result.stderr and str(seed) in result.stderr


def test_a_crashing_input_is_reported_with_its_traceback(tmp_path: Path) -> None:
    # A stand-in for a decoder bug: a target whose function raises ZeroDivisionError.
    crash = tmp_path / "input"
    crash.write_bytes(b"\x02\x01\x05")
    script = (
        "import sys; import migcompat.fuzzing.targets as t; "
        "t.TARGETS['ber_input_fuzzer'] = t.Target('ber_input_fuzzer', lambda data: 1 / 0, '', max_len=8); "
        "from migcompat.fuzzing.entry import main; main('ber_input_fuzzer', [sys.argv[0], sys.argv[1]])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(crash)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode != 0
    # atheris prints the traceback on stdout, libFuzzer its report on stderr.
    assert "ZeroDivisionError: division by zero" in result.stdout + result.stderr
    assert "libFuzzer: fuzz target exited" in result.stderr
