"""Shards: the matrix split into N deterministic shares, run apart and merged back into one.

Why: every device x release x machine type x pairing outgrows one machine,
and every CI system already has a distributed engine -- its job matrix. A
shard is one job's share (``migcompat matrix --shard K/N``); ``migcompat
report merge`` joins the shards' ``matrix.json`` files into the document the
whole run would have written, and renders every report from it. No scheduler
of ours: the CI runs the N jobs and hands the files to one more.

Strategy: shard K of N takes every N-th cell of the run's cell list from the
K-th, and every N-th mutant of each release likewise, so shares are balanced
and a merge can put the cells back in the unsharded order by interleaving. A
merge refuses shards of different runs (seed, examples, selection), a shard
given twice and a missing shard. What is computed over the whole run -- the
release rows of negotiation, the unused waivers -- is computed again from the
merged cells, so it is what the unsharded run computes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from migcompat.compat import negotiate, real
from migcompat.compat.cell import MatrixConfig
from migcompat.compat.real import RealResults
from migcompat.compat.results import MatrixResults
from migcompat.errors import UsageError

_SHARD = re.compile(r"(\d+)/(\d+)")
#: Meta entries every shard of one run has alike.
SAME = ("tool", "examples", "seed", "devices", "pairings", "machines", "sources", "destinations", "mutants", "waivers")
#: The same for the real matrix.
SAME_REAL = ("configs", "machines", "sources", "destinations")
MAX_SHARDS = 10_000


def parse(text: str) -> tuple[int, int]:
    """``K/N`` (1 <= K <= N) as the (part, parts) of :class:`~migcompat.compat.cell.MatrixConfig`."""
    match = _SHARD.fullmatch(text.strip())
    if match is None:
        raise UsageError(f"--shard {text!r}: expected K/N, e.g. 2/3")
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= count <= MAX_SHARDS or not 1 <= index <= count:
        raise UsageError(f"--shard {text!r}: K must be between 1 and N, and N between 1 and {MAX_SHARDS}")
    return index - 1, count


def _interleave(lists: Sequence[Sequence[Any]]) -> list[Any]:
    """Items of shard lists back in the order of the list they were taken from (every N-th from K)."""
    merged: list[Any] = []
    for position in range(max((len(items) for items in lists), default=0)):
        merged.extend(items[position] for items in lists if position < len(items))
    return merged


def _check(shards: Sequence[tuple[str, dict[str, Any]]], same: Sequence[str]) -> int:
    """The shard count, after checking the shards (name, meta) are one run's, each once."""
    first_name, first = shards[0]
    seen: dict[int, str] = {}
    count = None
    for name, meta in shards:
        text = meta.get("shard")
        if not isinstance(text, str):
            raise UsageError(f"{name}: not a shard of a matrix run (no meta.shard)")
        index, parts = parse(text)
        if count is not None and parts != count:
            raise UsageError(f"{name}: shard {text} of another split than {first_name} ({first['shard']})")
        count = parts
        if index in seen:
            raise UsageError(f"{name}: shard {text} is also {seen[index]}")
        seen[index] = name
        for key in same:
            if meta.get(key) != first.get(key):
                raise UsageError(f"{name}: not the run of {first_name}: meta.{key} differs")
    assert count is not None
    missing = [f"{index + 1}/{count}" for index in range(count) if index not in seen]
    if missing:
        raise UsageError(f"missing shard{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    return count


def merge(shards: Sequence[tuple[str, MatrixResults]]) -> MatrixResults:
    """The one run ``shards`` (name, results) are the parts of."""
    if not shards:
        raise UsageError("give the matrix.json of every shard")
    count = _check([(name, results.meta) for name, results in shards], SAME)
    parts = _in_order(shards)
    meta = dict(parts[0].meta)
    merged = MatrixResults(meta=meta)
    merged.cells = _interleave([results.cells for results in parts])
    merged.mutants = [result for results in parts for result in results.mutants]
    by_cell = {row.key: row for results in parts for row in results.agreement if row.kind == "cell"}
    mutant_rows = [row for results in parts for row in results.agreement if row.kind != "cell"]
    merged.agreement = [by_cell[cell.key] for cell in merged.cells if cell.key in by_cell] + mutant_rows
    merged.sort_mutants()
    config = MatrixConfig(
        devices=tuple(meta.get("devices", ())),
        machines=tuple(meta.get("machines", ())),
    )
    merged.releases = negotiate.release_rows(config, merged.cells)
    waivers = set(meta.get("waivers", []))
    meta["unused_waivers"] = sorted(waivers - {cell.key for cell in merged.cells})
    meta["shard"] = "1/1"
    meta["merged_from"] = count
    meta["seconds"] = round(max(float(results.meta.get("seconds", 0.0)) for results in parts), 3)
    meta["cpu_seconds"] = round(sum(float(results.meta.get("seconds", 0.0)) for results in parts), 3)
    return merged


def _in_order(shards: Sequence[tuple[str, Any]]) -> list[Any]:
    return [results for _, results in sorted(shards, key=lambda shard: parse(shard[1].meta["shard"])[0])]


def merge_real(shards: Sequence[tuple[str, RealResults]]) -> RealResults:
    """The one real matrix run ``shards`` are the parts of; explanations made again over every cell."""
    if not shards:
        raise UsageError("give the real.json of every shard")
    count = _check([(name, results.meta) for name, results in shards], SAME_REAL)
    parts = _in_order(shards)
    releases: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for results in parts:
        releases.update(results.releases)
        skipped.update(results.skipped)
    for name, results in shards:
        clash = [key for key, version in results.releases.items() if releases[key] != version]
        if clash:
            raise UsageError(f"{name}: QEMU {clash[0]} is another version than in the other shards")
    cells = _interleave([results.cells for results in parts])
    real.explain(cells)
    meta = dict(parts[0].meta) | {"shard": "1/1", "merged_from": count}
    return RealResults(releases, cells, max(results.seconds for results in parts), skipped, meta)


__all__ = ["MAX_SHARDS", "merge", "merge_real", "parse"]
