"""Fuzzing the native BER path with its C coverage (``migcompat fuzz --instrument-native``).

Why: without an instrumented build libFuzzer is blind inside ``_berc.c``; with
it, the C's edges guide the fuzzer. These tests build it with clang (CI installs
clang) and check that the C's counters reach libFuzzer and widen its coverage.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _support import run_cli

from migcompat.errors import UsageError
from migcompat.fuzzing import native_build

pytest.importorskip("atheris", reason="pip install 'migcompat[fuzz]'")


def _fuzz(work: Path, *extra: str) -> dict[str, object]:
    args = ["fuzz", "ber_native_fuzzer", "--runs", "3000", "--seed", "1", "--work", str(work), "--json", *extra]
    code, out, err = run_cli(*args)
    assert code == 0, err
    document: dict[str, object] = json.loads(out)
    return document


@pytest.mark.skipif(not any(shutil.which(name) for name in native_build._COMPILERS), reason="needs clang")
def test_the_instrumented_build_gives_libfuzzer_the_c_coverage(tmp_path: Path) -> None:
    instrumented = _fuzz(tmp_path / "instrumented", "--instrument-native")
    plain = _fuzz(tmp_path / "plain")
    assert isinstance(instrumented["native_counters"], int) and instrumented["native_counters"] > 500
    assert plain["native_counters"] is None
    assert instrumented["findings"] == [] and plain["findings"] == []
    # The same inputs reach many more edges once the C's own are counted.
    assert int(instrumented["coverage"]) > int(plain["coverage"]) + 300  # type: ignore[call-overload]


def test_without_clang_the_instrumented_run_is_a_clear_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(native_build.shutil, "which", lambda name: None)
    code, out, err = run_cli(
        "fuzz", "ber_native_fuzzer", "--runs", "10", "--work", str(tmp_path), "--instrument-native"
    )
    assert code == 2 and "needs clang" in err and "Traceback" not in out + err


def test_a_job_loads_the_instrumented_module_only_when_told(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(native_build.INSTRUMENTED_VARIABLE, raising=False)
    assert native_build.use_from_environment() is False
    monkeypatch.setenv(native_build.INSTRUMENTED_VARIABLE, str(tmp_path / "missing.so"))
    with pytest.raises((UsageError, OSError, ImportError)):
        native_build.use_from_environment()


def test_the_native_source_ships_with_the_package() -> None:
    assert native_build.source().read_text().startswith("/*")
