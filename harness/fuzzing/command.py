"""What ``migcompat fuzz`` does, apart from parsing its options and printing.

Why: the CLI module stays a thin layer of option parsing and exit codes; choosing
targets, checking that atheris and a target's extra modules are installed,
writing seeds and running campaigns live here, where they raise the project's
errors (a :class:`~migcompat.errors.UsageError` becomes exit code 2).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from migcompat.errors import UsageError
from migcompat.fuzzing import campaign, dictionaries, seeds
from migcompat.fuzzing.targets import TARGETS, get

#: Seconds per target when neither a time nor a number of runs is given.
DEFAULT_SECONDS = 60


def target_names(name: str | None) -> list[str]:
    """The targets ``name`` selects: one, or every target for ``all``."""
    if name is None:
        raise UsageError(f"name a fuzz target or 'all' (targets: {', '.join(TARGETS)})")
    if name == "all":
        return list(TARGETS)
    return [get(name).name]


def _require(module: str, why: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise UsageError(f"{module} is not installed ({why}): python3 -m pip install {module}")


def fuzz(
    names: list[str],
    seconds: int | None,
    runs: int | None,
    jobs: int,
    seed: int | None,
    corpora: Path,
    work: Path,
    instrument_native: bool = False,
) -> list[campaign.Summary]:
    """Run each target in turn; a summary per target."""
    _require("atheris", "it runs the fuzz targets")
    for name in names:
        for module in TARGETS[name].needs:
            _require(module, f"{name} compares against it")
    if seconds is None and runs is None:
        seconds = DEFAULT_SECONDS
    return [
        campaign.run(
            TARGETS[name],
            seconds=seconds,
            runs=runs,
            jobs=jobs,
            corpora=corpora,
            work=work,
            seed=seed,
            instrument_native=instrument_native,
        )
        for name in names
    ]


def make_seeds(corpora: Path, fuzz_dir: Path) -> str:
    """Write every target's seeds under ``corpora/seeds`` and, when ``fuzz_dir``
    exists, its dictionaries and options files; return a one-line report."""
    written = seeds.write(corpora / "seeds", seeds.build(corpora))
    report = (
        f"wrote {len(written)} seed files ({sum(path.stat().st_size for path in written)} bytes) to {corpora}/seeds"
    )
    if fuzz_dir.is_dir():
        for name, text in dictionaries.files().items():
            (fuzz_dir / name).write_text(text)
        report += f"; dictionaries and options to {fuzz_dir}"
    return report


__all__ = ["DEFAULT_SECONDS", "fuzz", "make_seeds", "target_names"]
