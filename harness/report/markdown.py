"""``matrix.md``: the matrix as GitHub-flavoured Markdown, for CI summaries.

Why: a CI run's summary page (``$GITHUB_STEP_SUMMARY``, a merge-request note) is
where people look first, and it renders Markdown, not HTML files. So this
report says pass or fail in its first line, draws each device's matrix as a
table of marks a reader can scan, and lists every failing cell with the one
command that replays it.

Strategy: one function per section, each yielding lines; everything taken
from the results is escaped (:func:`_text`, :func:`_code`) so a message can
neither break a table nor inject markup. The failing list is capped
(:data:`MAX_FAILURES`) to stay far below the step summary's 1 MiB limit;
``matrix.json`` always has them all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TextIO

from migcompat.compat.results import Cell, MatrixResults
from migcompat.report._views import (
    MARKS,
    MEANINGS,
    MUTANT_OUTCOMES,
    OUTCOMES,
    Grid,
    agreement_headline,
    agreement_text,
    counts_text,
    disagreement_text,
    example_text,
    grids,
    headline,
    mutant_agreement,
    mutant_rows,
    release_grids,
    static_cell_text,
    static_grids,
    verdict,
)

#: Failing cells listed in full; the rest are counted. GitHub caps a step summary at 1 MiB.
MAX_FAILURES = 50
#: Shrunk example characters shown per failing cell.
EXAMPLE_CHARS = 300
#: Characters that mean something to Markdown (or to GitHub's HTML sanitizer) inside a line.
_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def _text(value: str) -> str:
    """Plain text made safe inside a Markdown line or table cell."""
    return _SPECIAL.sub(r"\\\1", " ".join(value.split()))


def _code(value: str, *, in_table: bool = False) -> str:
    """An inline code span that holds ``value`` verbatim, whatever backticks it contains."""
    value = " ".join(value.splitlines())
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    padded = f" {value} " if value.startswith("`") or value.endswith("`") else value
    if in_table:
        padded = padded.replace("|", "\\|")
    return f"{fence}{padded}{fence}"


def _mark(cell: Cell) -> str:
    """A pairing's mark in a grid: ``!`` when unexpected, ``ʷ`` when waived, bold when failing."""
    mark = MARKS[cell.outcome] + ("" if cell.matches else "!") + ("ʷ" if cell.waived else "")
    return f"**{mark}**" if cell.failed else mark


def _headline(results: MatrixResults) -> Iterator[str]:
    state = "✅ compatible" if results.passed else f"❌ {len(results.failures)} failing cells"
    yield f"# migcompat matrix: {state}"
    yield ""
    meta = results.meta
    facts = [headline(results)]
    if "examples" in meta:
        facts.append(f"{meta['examples']} examples per cell")
    if "seed" in meta:
        facts.append(f"seed {meta['seed']}")
    if "seconds" in meta:
        facts.append(f"{meta['seconds']} s")
    yield _text(" · ".join(str(fact) for fact in facts))
    yield ""
    if results.agreement:
        yield _text(agreement_headline(results))
        yield ""
    totals = results.outcome_totals()
    yield "| " + " | ".join(f"{MARKS[outcome]} {outcome.value}" for outcome in OUTCOMES) + " |"
    yield "|" + "---:|" * len(OUTCOMES)
    yield "| " + " | ".join(str(totals.get(outcome.value, 0)) for outcome in OUTCOMES) + " |"
    yield ""
    for key in meta.get("unused_waivers", []):
        yield f"> note: the waiver for {_code(str(key))} matched no cell"
        yield ""


def _legend() -> Iterator[str]:
    yield "**Legend:** " + " · ".join(f"{MARKS[outcome]} {outcome.value}" for outcome in OUTCOMES)
    yield ""
    for outcome in OUTCOMES:
        yield f"- {MARKS[outcome]} **{outcome.value}**: {_text(MEANINGS[outcome])}"
    yield "- a mark followed by **!** is not the outcome the device expects; **ʷ** marks a waived cell"
    yield "- **bold** marks fail the gate"
    yield ""


def _grid(grid: Grid) -> Iterator[str]:
    yield f"## {_text(grid.title)}"
    yield ""
    yield "Marks per cell, in pairing order: " + ", ".join(_code(pairing) for pairing in grid.pairings)
    yield ""
    yield "| source \\\\ destination | " + " | ".join(_text(name) for name in grid.destinations) + " |"
    yield "|---|" + ":---:|" * len(grid.destinations)
    for source in grid.sources:
        marks = [
            " ".join(_mark(cell) for cell in grid.at(source, destination)) or "·" for destination in grid.destinations
        ]
        yield f"| **{_text(source)}** | " + " | ".join(marks) + " |"
    yield ""


def _failures(results: MatrixResults) -> Iterator[str]:
    failing = results.failures
    yield "## Failing cells"
    yield ""
    if not failing:
        yield "_None: every cell has its expected outcome._"
        yield ""
        return
    for cell in failing[:MAX_FAILURES]:
        detail = cell.detail
        yield f"### {MARKS[cell.outcome]} {_text(cell.key)}"
        yield ""
        yield f"- {_text(verdict(cell))}"
        if detail.message:
            yield f"- message: {_text(detail.message)}"
        if detail.path or detail.offset is not None:
            where = [f"path {_code(detail.path)}"] if detail.path else []
            where += [f"byte offset {detail.offset}"] if detail.offset is not None else []
            yield "- at " + ", ".join(where)
        yield f"- {_text(counts_text(cell))}"
        if detail.replay:
            yield f"- replay: {_code(detail.replay)}"
        example = example_text(detail.example, EXAMPLE_CHARS)
        if example:
            yield f"- shrunk example: {_code(example)}"
        yield ""
    if len(failing) > MAX_FAILURES:
        yield f"_… and {len(failing) - MAX_FAILURES} more failing cells: see matrix.json._"
        yield ""


def _mutants(results: MatrixResults) -> Iterator[str]:
    yield "## Mutants"
    yield ""
    rows = mutant_rows(results)
    if not rows:
        yield "_No mutants were run._"
        yield ""
        return
    # The static checker's column, when it was compared with this run.
    agreement = mutant_agreement(results) if results.agreement else None
    extra = " static vs dynamic |" if agreement is not None else ""
    yield (
        "| device | mutant class | format | " + " | ".join(outcome.value for outcome in MUTANT_OUTCOMES) + " |" + extra
    )
    yield "|---|---|---|" + "---:|" * len(MUTANT_OUTCOMES) + ("---|" if extra else "")
    for row in rows:
        counts = row.counts
        numbers = [str(counts.get(outcome.value, 0)) for outcome in MUTANT_OUTCOMES]
        line = (
            f"| {_text(row.device)} | {_text(row.mutant_class)} | {_text(row.format)} | " + " | ".join(numbers) + " |"
        )
        if agreement is not None:
            line += f" {_text(agreement_text(agreement.get((row.device, row.mutant_class, row.format)))) or '·'} |"
        yield line
    yield ""


def _releases(results: MatrixResults) -> Iterator[str]:
    if not results.releases:
        return
    for releases in release_grids(results):
        yield f"## {_text(releases.title)}"
        yield ""
        yield "Negotiated protocol and worst device outcome per release pair."
        yield ""
        yield "| source \\\\ destination | " + " | ".join(_text(name) for name in releases.destinations) + " |"
        yield "|---|" + ":---:|" * len(releases.destinations)
        for source in releases.sources:
            entries = []
            for destination in releases.destinations:
                row = releases.at(source, destination)
                if row is None:
                    entries.append("·")
                    continue
                protocol = _code(row.protocol, in_table=True) if row.protocol else "none"
                entries.append(f"{protocol} {MARKS[row.worst]} {row.worst.value}")
            yield f"| **{_text(source)}** | " + " | ".join(entries) + " |"
        yield ""


def _static(results: MatrixResults) -> Iterator[str]:
    if not results.agreement:
        return
    yield "## Static checker vs dynamic outcome"
    yield ""
    yield (
        f"{_text(agreement_headline(results))}. Each release pair: the static verdict of `migcompat diff` "
        "(compatible, or the rules that break the wire) and whether every pairing's outcome agrees."
    )
    yield ""
    for grid in static_grids(results):
        yield f"### {_text(grid.title)}"
        yield ""
        yield "| source \\\\ destination | " + " | ".join(_text(name) for name in grid.destinations) + " |"
        yield "|---|" + ":---|" * len(grid.destinations)
        for source in grid.sources:
            entries = [
                _text(static_cell_text(grid.at(source, destination))) or "·" for destination in grid.destinations
            ]
            yield f"| **{_text(source)}** | " + " | ".join(entries) + " |"
        yield ""
    yield "### Disagreements"
    yield ""
    disagreements = results.disagreements
    if not disagreements:
        yield "_None: the static checker agrees with every dynamic outcome._"
        yield ""
        return
    for row in disagreements[:MAX_FAILURES]:
        yield f"- {_text(disagreement_text(row))}"
    if len(disagreements) > MAX_FAILURES:
        yield f"- _… and {len(disagreements) - MAX_FAILURES} more: see matrix.json._"
    yield ""


def report(results: MatrixResults, outfile: TextIO) -> None:
    sections = [_headline(results), _legend()]
    sections.extend(_grid(grid) for grid in grids(results))
    sections.extend([_failures(results), _mutants(results), _static(results), _releases(results)])
    for section in sections:
        for line in section:
            outfile.write(line + "\n")
