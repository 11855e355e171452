"""The compatibility matrix: every device x source release x destination release x pairing.

Why: this is migcompat's main job and CI gate. For each cell, generated states
are saved by the source release and loaded by the destination release through a
visitor pairing, and the cell gets one outcome (:class:`~migcompat.compat.results.Outcome`):
``ok`` when the loaded state equals the source state projected onto the
destination (:mod:`migcompat.model.projection`, computed from descriptions alone),
``refused`` for a clean :class:`~migcompat.errors.LoadRefused`, ``detected`` for any
other :class:`~migcompat.errors.DecodeError`, ``corrupt`` when it loaded wrong, and
``crash`` for anything else. Each device declares the outcome it expects per cell;
waivers (a ratchet) accept known deviations.

Strategy: states are drawn once per (device, source release) from the device's
hypothesis strategy under a fixed seed, so a run is reproducible and every cell
of a row sees the same states. A conversion pairing ``a>b>a`` saves in ``a``,
converts through ``b`` and back with the source's description (the bytes must
come back identical) and loads the result. Cells run in worker processes
(``jobs``); the worst outcome over the examples is the cell's outcome, and for a
failing cell hypothesis shrinks a state that still shows it.
"""

from __future__ import annotations

import json
import os
import signal
import time
import tomllib
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, find, given, seed, settings
from hypothesis.errors import HypothesisWarning, NoSuchExample, Unsatisfiable

from migcompat import devices
from migcompat.compat.classify import ExampleResult, StreamChanged, classify
from migcompat.compat.results import Cell, Detail, MatrixResults, Outcome, worst
from migcompat.devices.base import Device, Release
from migcompat.errors import UsageError
from migcompat.model import vmstate
from migcompat.model.projection import project
from migcompat.model.vmstate import Description, State
from migcompat.qemu.render import jsonable
from migcompat.wire import PAIRINGS

#: Pairing name -> the formats a stream passes through.
PAIRING_PATHS: dict[str, tuple[str, ...]] = {
    "dict": ("dict",),
    "qemufile": ("qemufile",),
    "ber": ("ber",),
    "qemufile>ber>qemufile": ("qemufile", "ber", "qemufile"),
    "ber>qemufile>ber": ("ber", "qemufile", "ber"),
}
DEFAULT_EXAMPLES = 10
DEFAULT_SEED = 20111
#: A cell that takes longer than this has hung: it is a crash.
CELL_TIMEOUT_SECONDS = 120
SHRINK_EXAMPLES = 200


@dataclass(frozen=True)
class MatrixConfig:
    devices: tuple[str, ...] = ()
    pairings: tuple[str, ...] = tuple(PAIRING_PATHS)
    sources: tuple[str, ...] = ()
    destinations: tuple[str, ...] = ()
    examples: int = DEFAULT_EXAMPLES
    seed: int = DEFAULT_SEED
    jobs: int = 1
    waivers: frozenset[str] = frozenset()
    shrink: bool = True
    #: Also run the mutation matrix (:mod:`migcompat.compat.mutants`) on the selected devices.
    mutants: bool = True


@dataclass(frozen=True)
class CellSpec:
    device: str
    source: str
    destination: str
    pairing: str

    @property
    def key(self) -> str:
        return f"{self.device}/{self.source}->{self.destination}/{self.pairing}"


# -- one example ------------------------------------------------------------


def encode(fmt: str, description: Description, state: State) -> Any:
    return vmstate.encode(PAIRINGS[fmt].make_output(), description, state)


def decode(fmt: str, description: Description, encoded: Any, version: int) -> State:
    pairing = PAIRINGS[fmt]
    visitor = pairing.make_input(encoded)
    loaded = vmstate.load(visitor, description, version)
    if pairing.is_bytes:
        visitor.finish()  # type: ignore[attr-defined]
    return loaded


def run_example(source: Release, destination: Release, pairing: str, state: State) -> ExampleResult:
    """Save ``state`` at ``source``, carry it through ``pairing``, load it at ``destination``."""
    path = PAIRING_PATHS[pairing]
    first = path[0]

    def load() -> State:
        encoded = encode(first, source.description, state)
        if len(path) > 1 and _convert(encoded, path, source.description) != encoded:
            raise StreamChanged(f"converting through {'>'.join(path)} changed the stream")
        return decode(first, destination.description, encoded, source.version_id)

    return classify(
        load,
        lambda: project(state, source.description, destination.description),
        "loaded without error, but the state differs from the source's",
    )


def _convert(encoded: Any, path: tuple[str, ...], description: Description) -> Any:
    """Carry a stream through the formats of ``path`` using one description."""
    current = encoded
    version = description.version_id
    for here, there in pairwise(path):
        current = encode(there, description, decode(here, description, current, version))
    return current


# -- states -----------------------------------------------------------------


@cache
def states_for(device_name: str, release_name: str, examples: int, seed_value: int) -> tuple[State, ...]:
    """The release's fixed edge states, then ``examples`` drawn ones -- the same
    ones for a given seed."""
    device = devices.get(device_name)
    release = device.release(release_name)
    drawn: list[State] = []

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @seed(seed_value)
    @given(device.strategy(release))
    def collect(state: State) -> None:
        if len(drawn) < examples:
            drawn.append(state)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HypothesisWarning)
        collect()
    return (*device.fixed_states(release), *drawn)


def _shrink(device: Device, spec: CellSpec, outcome: Outcome, seed_value: int) -> State | None:
    source, destination = device.release(spec.source), device.release(spec.destination)

    def shows(state: State) -> bool:
        return run_example(source, destination, spec.pairing, state).outcome is outcome

    try:
        shrunk: State = find(
            device.strategy(source),
            shows,
            settings=settings(
                max_examples=SHRINK_EXAMPLES, database=None, deadline=None, suppress_health_check=list(HealthCheck)
            ),
        )
    except (NoSuchExample, Unsatisfiable):
        return None
    return shrunk


# -- one cell ---------------------------------------------------------------


class _CellTimeout(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _CellTimeout


def replay_command(spec: CellSpec, examples: int, seed_value: int) -> str:
    return (
        f"migcompat matrix --device {spec.device} --source {spec.source} --destination {spec.destination} "
        f"--pairing '{spec.pairing}' --examples {examples} --seed {seed_value}"
    )


def run_cell(spec: CellSpec, examples: int, seed_value: int, waived: bool, shrink: bool) -> Cell:
    device = devices.get(spec.device)
    source, destination = device.release(spec.source), device.release(spec.destination)
    expected = device.expectation(source, destination, spec.pairing)
    started = time.perf_counter()
    results: list[ExampleResult] = []
    first_of: dict[Outcome, tuple[int, ExampleResult]] = {}
    use_alarm = hasattr(signal, "SIGALRM")
    previous = signal.signal(signal.SIGALRM, _alarm) if use_alarm else None
    if use_alarm:
        signal.alarm(CELL_TIMEOUT_SECONDS)
    try:
        for index, state in enumerate(states_for(spec.device, spec.source, examples, seed_value)):
            result = run_example(source, destination, spec.pairing, state)
            results.append(result)
            first_of.setdefault(result.outcome, (index, result))
    except _CellTimeout:
        results.append(ExampleResult(Outcome.CRASH, f"cell did not finish in {CELL_TIMEOUT_SECONDS} s (hang)"))
        first_of.setdefault(Outcome.CRASH, (len(results) - 1, results[-1]))
    finally:
        if use_alarm:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
    outcome = worst([result.outcome for result in results])
    index, shown = first_of.get(outcome, (0, ExampleResult(outcome)))
    detail = Detail(
        message=shown.message,
        path=shown.path,
        offset=shown.offset,
        seed=seed_value,
        replay=replay_command(spec, examples, seed_value),
    )
    if outcome is not expected or outcome in (Outcome.CORRUPT, Outcome.CRASH):
        states = states_for(spec.device, spec.source, examples, seed_value)
        example = _shrink(device, spec, outcome, seed_value) if shrink and outcome is not Outcome.CRASH else None
        detail.example = jsonable(example if example is not None else states[index] if states else None)
    return Cell(
        device=spec.device,
        source=spec.source,
        destination=spec.destination,
        pairing=spec.pairing,
        outcome=outcome,
        expected=expected,
        detail=detail,
        examples=len(results),
        counts=dict(Counter(result.outcome.value for result in results)),
        waived=waived,
        seconds=time.perf_counter() - started,
    )


def _run_cell_packed(arguments: tuple[CellSpec, int, int, bool, bool]) -> Cell:
    return run_cell(*arguments)


# -- the whole matrix ---------------------------------------------------------


def cells_of(config: MatrixConfig) -> list[CellSpec]:
    """Every cell the configuration asks for, validated against the registry."""
    registry = devices.registry()
    names = config.devices or tuple(registry)
    for name in names:
        if name not in registry:
            raise UsageError(f"unknown device {name!r} (known: {', '.join(registry)})")
    for pairing in config.pairings:
        if pairing not in PAIRING_PATHS:
            raise UsageError(f"unknown pairing {pairing!r} (known: {', '.join(PAIRING_PATHS)})")
    specs: list[CellSpec] = []
    for name in names:
        releases = [release.name for release in registry[name].releases]
        for wanted in (*config.sources, *config.destinations):
            if len(names) == 1 and wanted not in releases:
                raise UsageError(f"device {name} has no release {wanted!r} (known: {', '.join(releases)})")
        for source in releases:
            if config.sources and source not in config.sources:
                continue
            for destination in releases:
                if config.destinations and destination not in config.destinations:
                    continue
                specs.extend(CellSpec(name, source, destination, pairing) for pairing in config.pairings)
    if not specs:
        raise UsageError("the selection matches no cell")
    return specs


def run_cells(config: MatrixConfig, progress: Callable[[Cell], None] | None = None) -> list[Cell]:
    specs = cells_of(config)
    arguments = [(spec, config.examples, config.seed, spec.key in config.waivers, config.shrink) for spec in specs]
    cells: list[Cell] = []
    if config.jobs <= 1:
        for argument in arguments:
            cells.append(_run_cell_packed(argument))
            if progress:
                progress(cells[-1])
        return cells
    with ProcessPoolExecutor(max_workers=config.jobs) as pool:
        # Rows of one (device, source) share their states: keep them together.
        for cell in pool.map(_run_cell_packed, arguments, chunksize=max(1, len(PAIRING_PATHS))):
            cells.append(cell)
            if progress:
                progress(cell)
    return cells


def run_matrix(config: MatrixConfig, progress: Callable[[Cell], None] | None = None) -> MatrixResults:
    started = time.time()
    results = MatrixResults()
    results.cells = run_cells(config, progress)
    if config.mutants:
        from migcompat.compat import mutants  # imports this module: not at the top

        results.mutants = mutants.run_all(config)
    from migcompat.compat import negotiate  # negotiate imports this module

    results.releases = negotiate.release_rows(config, results.cells)
    from migcompat.compat import agreement  # imports mutants, which imports this module

    agreement.attach(results, config)
    unused = config.waivers - {cell.key for cell in results.cells}
    results.meta = {
        "tool": "migcompat",
        "examples": config.examples,
        "seed": config.seed,
        "jobs": config.jobs,
        "devices": config.devices or list(devices.registry()),
        "pairings": list(config.pairings),
        "waivers": sorted(config.waivers),
        "unused_waivers": sorted(unused),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 3),
    }
    return results


def default_jobs() -> int:
    return os.cpu_count() or 1


# -- waivers ------------------------------------------------------------------


def load_waivers(path: Path) -> frozenset[str]:
    """Cell keys from a waiver file: ``[[waiver]]`` tables with ``cell`` and ``reason``."""
    try:
        document = tomllib.loads(path.read_text())
    except OSError as error:
        raise UsageError(f"cannot read waiver file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"waiver file {path} is not valid TOML: {error}") from None
    keys = set()
    for index, entry in enumerate(document.get("waiver", [])):
        if not isinstance(entry, dict) or not isinstance(entry.get("cell"), str) or not entry.get("reason"):
            raise UsageError(f"waiver {index} in {path} needs a 'cell' and a 'reason'")
        keys.add(entry["cell"])
    return frozenset(keys)


def iter_failures(results: MatrixResults) -> Iterator[str]:
    for cell in results.failures:
        why = "waived but now matches: remove the waiver" if cell.waived else f"expected {cell.expected.value}"
        yield f"{cell.key}: {cell.outcome.value} ({why}) {cell.detail.message}".rstrip()


def dump(results: MatrixResults) -> str:
    return json.dumps(results.to_json(), indent=2)


__all__ = [
    "PAIRING_PATHS",
    "CellSpec",
    "MatrixConfig",
    "cells_of",
    "load_waivers",
    "run_cell",
    "run_example",
    "run_matrix",
]
