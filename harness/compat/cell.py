"""One cell of the compatibility matrix: its spec, the run's configuration, one example, one cell.

Why a module of its own: the matrix, the mutation matrix, negotiation, the
agreement check and the golden gate all run examples the same way (save at the
source, carry through a pairing, load at the destination, classify); they reach
this module from below instead of importing the matrix that orchestrates them.

For each example the outcome (:class:`~migcompat.outcomes.Outcome`) is ``ok``
when the loaded state equals the source state projected onto the destination
(:mod:`migcompat.model.projection`, computed from descriptions alone),
``refused`` for a clean :class:`~migcompat.errors.LoadRefused`, ``detected``
for any other :class:`~migcompat.errors.DecodeError`, ``corrupt`` when it
loaded wrong, and ``crash`` for anything else. A conversion pairing ``a>b>a``
saves in ``a``, converts through ``b`` and back with the source's description
(the bytes must come back identical) and loads the result. States are drawn
once per (device, source release) from the device's hypothesis strategy under a
fixed seed, so a run is reproducible and every cell of a row sees the same
states; the worst outcome over the examples is the cell's, and for a failing
cell hypothesis shrinks a state that still shows it.
"""

from __future__ import annotations

import signal
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, Phase, find, given, seed, settings
from hypothesis.errors import HypothesisWarning, NoSuchExample, Unsatisfiable

from migcompat import devices
from migcompat.compat.classify import ExampleResult, StreamChanged, classify
from migcompat.compat.results import Cell, Detail, cell_key
from migcompat.devices.base import Device, ExpectedState, Release
from migcompat.model import vmstate
from migcompat.model.projection import project
from migcompat.model.vmstate import Description, State
from migcompat.outcomes import Outcome, worst
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
    #: Only the cells run with these machine types (a cell without one runs
    #: the source's own); empty: every machine type.
    machines: tuple[str, ...] = ()
    #: (part, parts): run only the cells and mutants whose index is ``part`` modulo
    #: ``parts`` (:mod:`migcompat.compat.shard`); (0, 1) is the whole matrix.
    shard: tuple[int, int] = (0, 1)


@dataclass(frozen=True)
class CellSpec:
    device: str
    source: str
    destination: str
    pairing: str
    #: The machine type both sides run; empty: the source release's own.
    machine: str = ""

    @property
    def key(self) -> str:
        return cell_key(self.device, self.source, self.destination, self.pairing, self.machine)


@dataclass(frozen=True)
class ResolvedCell:
    """A cell's two releases as they run under its machine type."""

    device: Device
    source: Release
    destination: Release
    #: The machine type both sides run (empty for a device without machine types).
    machine: str
    #: The outcome the device promises for the cell: ``refused`` when the
    #: destination cannot run the machine type, else its policy's on the two forms.
    expected: Outcome
    #: Why the destination cannot run at all (it does not know the machine type); empty when it can.
    refusal: str = ""


def resolve(spec: CellSpec) -> ResolvedCell:
    """The releases of a cell under its machine type, and what the device promises for it."""
    device = devices.get(spec.device)
    source, destination = device.release(spec.source), device.release(spec.destination)
    machine = device.machine_of(source, spec.machine)
    sent = device.at(source, machine)
    if not device.knows_machine(destination, machine):
        refusal = (
            f"{device.name} {destination.name} does not know machine type {machine}: the destination "
            f"cannot be started with the source's machine type (QEMU: unsupported machine type)"
        )
        return ResolvedCell(device, sent, destination, machine, Outcome.REFUSED, refusal)
    loaded = device.at(destination, machine)
    return ResolvedCell(device, sent, loaded, machine, device.expectation(sent, loaded, spec.pairing))


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


def run_example(
    source: Release, destination: Release, pairing: str, state: State, expected: ExpectedState | None = None
) -> ExampleResult:
    """Save ``state`` at ``source``, carry it through ``pairing``, load it at ``destination``;
    the load is right when it gives ``expected`` (by default: the state projected by names)."""
    path = PAIRING_PATHS[pairing]
    first = path[0]

    def load() -> State:
        encoded = encode(first, source.description, state)
        if len(path) > 1 and _convert(encoded, path, source.description) != encoded:
            raise StreamChanged(f"converting through {'>'.join(path)} changed the stream")
        return decode(first, destination.description, encoded, source.version_id)

    return classify(
        load,
        lambda: (
            project(state, source.description, destination.description)
            if expected is None
            else expected(source, destination, pairing, state)
        ),
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
def states_for(
    device_name: str, release_name: str, examples: int, seed_value: int, machine: str = ""
) -> tuple[State, ...]:
    """The release's fixed edge states, then ``examples`` drawn ones -- the same
    ones for a given seed -- as the release saves them under ``machine``."""
    device = devices.get(device_name)
    release = device.at(device.release(release_name), machine)
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


def _shrink(cell: ResolvedCell, spec: CellSpec, outcome: Outcome, seed_value: int) -> State | None:
    device, source, destination = cell.device, cell.source, cell.destination

    def shows(state: State) -> bool:
        return run_example(source, destination, spec.pairing, state, device.expected_state).outcome is outcome

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
    machine = f" --machine {spec.machine}" if spec.machine else ""
    return (
        f"migcompat matrix --device {spec.device} --source {spec.source} --destination {spec.destination}"
        f"{machine} --pairing '{spec.pairing}' --examples {examples} --seed {seed_value}"
    )


def run_cell(spec: CellSpec, examples: int, seed_value: int, waived: bool, shrink: bool) -> Cell:
    resolved = resolve(spec)
    device, source, destination = resolved.device, resolved.source, resolved.destination
    expected = resolved.expected
    started = time.perf_counter()
    if resolved.refusal:
        detail = Detail(message=resolved.refusal, replay=replay_command(spec, examples, seed_value))
        return _cell(spec, Outcome.REFUSED, expected, detail, [], waived, started)
    results: list[ExampleResult] = []
    first_of: dict[Outcome, tuple[int, ExampleResult]] = {}
    use_alarm = hasattr(signal, "SIGALRM")
    previous = signal.signal(signal.SIGALRM, _alarm) if use_alarm else None
    if use_alarm:
        signal.alarm(CELL_TIMEOUT_SECONDS)
    try:
        for index, state in enumerate(states_for(spec.device, spec.source, examples, seed_value, spec.machine)):
            result = run_example(source, destination, spec.pairing, state, device.expected_state)
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
        states = states_for(spec.device, spec.source, examples, seed_value, spec.machine)
        example = _shrink(resolved, spec, outcome, seed_value) if shrink and outcome is not Outcome.CRASH else None
        detail.example = jsonable(example if example is not None else states[index] if states else None)
    return _cell(spec, outcome, expected, detail, results, waived, started)


def _cell(
    spec: CellSpec,
    outcome: Outcome,
    expected: Outcome,
    detail: Detail,
    results: list[ExampleResult],
    waived: bool,
    started: float,
) -> Cell:
    return Cell(
        device=spec.device,
        source=spec.source,
        destination=spec.destination,
        pairing=spec.pairing,
        machine=spec.machine,
        outcome=outcome,
        expected=expected,
        detail=detail,
        examples=len(results),
        counts=dict(Counter(result.outcome.value for result in results)),
        waived=waived,
        seconds=time.perf_counter() - started,
    )


def run_cell_packed(arguments: tuple[CellSpec, int, int, bool, bool]) -> Cell:
    return run_cell(*arguments)
