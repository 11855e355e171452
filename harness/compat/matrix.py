"""The compatibility matrix: every device x source release x destination release x pairing.

Why: this is migcompat's main job and CI gate. Each cell (:mod:`migcompat.compat.cell`)
saves generated states at the source release and loads them at the destination
release through a visitor pairing; each device declares the outcome it expects
per cell, and waivers (a ratchet) accept known deviations. This module selects
the cells, runs them in worker processes (``jobs``), and adds what is computed
over the whole run: the mutation matrix (:mod:`migcompat.compat.mutants`), the
release rows of negotiation (:mod:`migcompat.compat.negotiate`) and the
agreement of the static checker with the dynamic outcomes
(:mod:`migcompat.compat.agreement`).
"""

from __future__ import annotations

import json
import os
import time
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from migcompat import devices
from migcompat.compat import agreement, mutants, negotiate
from migcompat.compat.cell import PAIRING_PATHS, CellSpec, MatrixConfig, run_cell_packed
from migcompat.compat.results import Cell, MatrixResults
from migcompat.devices import machines
from migcompat.devices.base import Device
from migcompat.errors import UsageError

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
    check_machines(config.machines)
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
                for machine in machines_of(registry[name], source, destination, config.machines):
                    specs.extend(CellSpec(name, source, destination, pairing, machine) for pairing in config.pairings)
    if not specs:
        raise UsageError("the selection matches no cell")
    return specs


def machines_of(device: Device, source: str, destination: str, wanted: tuple[str, ...] = ()) -> list[str]:
    """The machine types a (source, destination) row runs, as cell machine fields.

    Always the source's own (``""``), which the destination refuses when it is
    newer than the destination; then every machine type of
    :data:`~migcompat.devices.machines.AXIS` both releases know, other than the
    source's own. ``wanted`` keeps the cells whose machine type it names; a
    device whose state does not depend on the machine type keeps all its cells.
    """
    if device.machines is None:
        return [""]
    own = machines.own(source)
    shared = machines.shared([source, destination], besides=[own])
    return [machine for machine in ("", *shared) if not wanted or (machine or own) in wanted]


def check_machines(wanted: tuple[str, ...]) -> None:
    """A :class:`UsageError` for a machine type no cell of the model can run."""
    registry = devices.registry()
    known = dict.fromkeys(machines.AXIS)
    for device in registry.values():
        if device.machines is not None:
            known.update(dict.fromkeys(machines.own(release.name) for release in device.releases))
    for machine in wanted:
        if machine not in known:
            raise UsageError(f"no cell runs machine type {machine!r} (known: {', '.join(sorted(known))})")


def shard_cells(config: MatrixConfig) -> list[CellSpec]:
    """The cells of ``config``'s shard: every ``parts``-th of :func:`cells_of`, from ``part``."""
    part, parts = config.shard
    return cells_of(config)[part::parts]


def run_cells(config: MatrixConfig, progress: Callable[[Cell], None] | None = None) -> list[Cell]:
    specs = shard_cells(config)
    arguments = [(spec, config.examples, config.seed, spec.key in config.waivers, config.shrink) for spec in specs]
    cells: list[Cell] = []
    if config.jobs <= 1:
        for argument in arguments:
            cells.append(run_cell_packed(argument))
            if progress:
                progress(cells[-1])
        return cells
    with ProcessPoolExecutor(max_workers=config.jobs) as pool:
        # Rows of one (device, source) share their states: keep them together.
        for cell in pool.map(run_cell_packed, arguments, chunksize=max(1, len(PAIRING_PATHS))):
            cells.append(cell)
            if progress:
                progress(cell)
    return cells


def run_matrix(
    config: MatrixConfig,
    progress: Callable[[Cell], None] | None = None,
    phase: Callable[[str], None] = lambda name: None,
) -> MatrixResults:
    """Run the cells (``progress`` is told each), then what is computed over the
    whole run (``phase`` is told each part as it begins)."""
    started = time.time()
    results = MatrixResults()
    results.cells = run_cells(config, progress)
    if config.mutants:
        phase("the mutation matrix")
        results.mutants = mutants.run_all(config)
    phase("negotiation and the static checker")
    # Release rows negotiate over every cell: a shard leaves them to the merge.
    if config.shard[1] == 1:
        results.releases = negotiate.release_rows(config, results.cells)
    agreement.attach(results, config)
    results.sort_mutants()
    unused = config.waivers - {cell.key for cell in results.cells}
    results.meta = {
        "tool": "migcompat",
        "examples": config.examples,
        "seed": config.seed,
        "jobs": config.jobs,
        "devices": config.devices or list(devices.registry()),
        "pairings": list(config.pairings),
        "machines": list(config.machines),
        "sources": list(config.sources),
        "destinations": list(config.destinations),
        "mutants": config.mutants,
        "shard": f"{config.shard[0] + 1}/{config.shard[1]}",
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
    "cells_of",
    "default_jobs",
    "dump",
    "iter_failures",
    "load_waivers",
    "run_cells",
    "run_matrix",
    "shard_cells",
]
