"""Every seed and every kept regression, replayed through its fuzz target on every run.

Why: a finding is fixed once and must stay fixed; a seed is a valid input and
must stay one. The replay needs no atheris: it calls the same target functions
the fuzzer calls (``migcompat.fuzzing.targets``), so a regression that comes back
fails here, in the default test run, with the target's own error.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from migcompat.compat import agree
from migcompat.fuzzing.differential import AGREE_ACCEPT, AGREE_REJECT, KNOWN_PYASN1
from migcompat.fuzzing.targets import ACCEPTED, TARGETS, judge

CORPORA = Path(__file__).parent.parent / "corpora"
QEMU_AGREE = agree.REGRESSIONS


def _files(kind: str) -> list[tuple[str, Path]]:
    found = []
    for directory in sorted((CORPORA / kind).iterdir()) if (CORPORA / kind).is_dir() else []:
        if directory.name == QEMU_AGREE:
            continue  # the real-QEMU parity cases: tests/test_check.py replays them
        found += [(directory.name, path) for path in sorted(directory.iterdir()) if path.is_file()]
    return found


SEEDS = _files("seeds")
REGRESSIONS = _files("regressions")
#: Verdicts a valid input may get: loaded, or (the differential) read alike or a known pyasn1 difference.
VALID = {ACCEPTED, AGREE_ACCEPT} | {known.name for known in KNOWN_PYASN1}
KNOWN = {known.name: known for known in KNOWN_PYASN1}


def test_every_target_has_seeds_and_every_corpus_directory_is_a_target() -> None:
    assert {target for target, _ in SEEDS} == set(TARGETS)
    assert {target for target, _ in REGRESSIONS} <= set(TARGETS)


def test_the_committed_corpora_stay_small() -> None:
    total = sum(path.stat().st_size for _, path in SEEDS + REGRESSIONS)
    assert 0 < total < 2 * 1024 * 1024


@pytest.mark.parametrize(("target", "path"), SEEDS, ids=[f"{t}/{p.name}" for t, p in SEEDS])
def test_a_seed_is_a_valid_input_of_its_target(target: str, path: Path) -> None:
    data = path.read_bytes()
    assert len(data) <= TARGETS[target].max_len
    assert judge(TARGETS[target], data) in VALID


@pytest.mark.parametrize(("target", "path"), REGRESSIONS, ids=[f"{t}/{p.name}" for t, p in REGRESSIONS])
def test_a_regression_loads_or_is_rejected_cleanly(target: str, path: Path) -> None:
    # Anything but a DecodeError escaping judge() fails this test with the target's own error.
    verdict = judge(TARGETS[target], path.read_bytes())
    if path.name.startswith("pyasn1-"):
        # Kept to show a difference of pyasn1's: recognised as that one while the
        # installed pyasn1 shows it, read alike by both once pyasn1 is fixed.
        known = KNOWN[path.name.rsplit("-", 1)[0]]
        assert verdict == known.name if known.shown_by_installed_pyasn1() else verdict in (AGREE_ACCEPT, AGREE_REJECT)
