"""Shards of the matrix: 1/3, 2/3 and 3/3 merged are the unsharded run, cell for cell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _support import run_cli

from migcompat.compat import shard
from migcompat.errors import UsageError

#: The reference slirp with its mutants, and virtio's machine types and releases without
#: (its mutants are the slow part of a run, and split the same way as slirp's).
RUNS = {
    "slirp": ("matrix", "--device", "slirp", "--examples", "2", "--jobs", "2"),
    "virtio": ("matrix", "--device", "virtio", "--examples", "1", "--jobs", "2", "--no-mutants"),
}


def _comparable(document: dict[str, Any]) -> dict[str, Any]:
    """A matrix.json without what differs between two runs of the same cells: times."""
    cells = [{key: value for key, value in cell.items() if key != "seconds"} for cell in document["cells"]]
    return {key: document[key] for key in ("mutants", "releases", "agreement")} | {"cells": cells}


@pytest.fixture(scope="module", params=sorted(RUNS))
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shards")
    out = {}
    for name, extra in [("whole", ()), ("1", ("--shard", "1/3")), ("2", ("--shard", "2/3")), ("3", ("--shard", "3/3"))]:
        code, stdout, stderr = run_cli(*RUNS[request.param], *extra, "--out", str(root / name))
        assert code == 0, stdout + stderr
        out[name] = root / name / "matrix.json"
    return out


def test_the_merged_shards_are_the_unsharded_run(runs: dict[str, Path], tmp_path: Path) -> None:
    shards = [str(runs[name]) for name in ("3", "1", "2")]  # in any order
    code, stdout, stderr = run_cli("report", "merge", *shards, "--out", str(tmp_path))
    assert code == 0, stdout + stderr
    whole = json.loads(runs["whole"].read_text())
    merged = json.loads((tmp_path / "matrix.json").read_text())
    assert _comparable(merged) == _comparable(whole)
    assert merged["meta"]["merged_from"] == 3
    for name in ("matrix.md", "matrix.html", "junit.xml"):
        assert (tmp_path / name).stat().st_size > 0


def test_shards_split_cells_and_mutants_without_overlap(runs: dict[str, Path]) -> None:
    documents = [json.loads(runs[name].read_text()) for name in ("1", "2", "3")]
    whole = json.loads(runs["whole"].read_text())
    keys = [
        {(c["device"], c["source"], c["destination"], c["machine"], c["pairing"]) for c in d["cells"]}
        for d in documents
    ]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    assert sum(len(k) for k in keys) == len(whole["cells"])
    sizes = [len(d["cells"]) for d in documents]
    assert max(sizes) - min(sizes) <= 1  # balanced
    mutants = [len(d["mutants"]) for d in documents]
    assert sum(mutants) == len(whole["mutants"])
    assert min(mutants) > 0 or not whole["mutants"]
    assert all(d["releases"] == [] for d in documents)  # negotiation is the merge's


def test_merge_refuses_a_missing_a_repeated_or_a_foreign_shard(runs: dict[str, Path], tmp_path: Path) -> None:
    one, two, three = (str(runs[name]) for name in ("1", "2", "3"))
    code, _, stderr = run_cli("report", "merge", one, three, "--out", str(tmp_path / "a"))
    assert code == 2 and "missing shard 2/3" in stderr
    code, _, stderr = run_cli("report", "merge", one, two, two, three, "--out", str(tmp_path / "b"))
    assert code == 2 and "shard 2/3 is also" in stderr
    foreign = json.loads(Path(two).read_text())
    foreign["meta"]["seed"] += 1
    (tmp_path / "foreign.json").write_text(json.dumps(foreign))
    code, _, stderr = run_cli("report", "merge", one, str(tmp_path / "foreign.json"), three, "--out", str(tmp_path))
    assert code == 2 and "meta.seed differs" in stderr
    code, _, stderr = run_cli("report", "merge", one, str(runs["whole"]), "--out", str(tmp_path / "c"))
    assert code == 2 and "another split" in stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_merge_refuses_what_is_not_a_matrix_json(tmp_path: Path) -> None:
    (tmp_path / "text.json").write_text("not json")
    (tmp_path / "other.json").write_text('{"format_version": 1, "cells": [{"device": 1}]}')
    for name, said in (("text.json", "not JSON"), ("other.json", "not a matrix.json"), ("absent.json", "cannot read")):
        code, stdout, stderr = run_cli("report", "merge", str(tmp_path / name), "--out", str(tmp_path / "out"))
        assert code == 2 and said in stderr and "Traceback" not in stderr + stdout


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "a/b", "1", "1/3/5", "-1/3", "1/100000"])
def test_a_bad_shard_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        shard.parse(text)
    code, _, stderr = run_cli("matrix", "--shard", text, "--device", "slirp")
    assert code == 2 and "--shard" in stderr


def test_shard_parse_counts_from_one() -> None:
    assert shard.parse("1/1") == (0, 1)
    assert shard.parse(" 3/4 ") == (2, 4)
