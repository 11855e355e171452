"""The real matrix: every prediction checked against a real migration between QEMU releases.

Why: the matrix is a model, and real QEMU is the judge. For each ordered pair of
installed releases, each machine type, and each device configuration, this
captures the source's stream (a paused VM that never ran a guest), loads it into
the destination started with the same machine type, and records QEMU's outcome
beside

* the model's prediction: a destination that knows the machine type loads the
  stream (the machine type's compatibility properties keep the stream in the
  form that release reads); one that does not refuses it -- QEMU's rule, and
  the matrix's (DESIGN section 7);
* the static checker's verdict on the two releases' own ``-dump-vmstate`` for
  every section the stream carries (which cannot see machine types).

and the model's layout is checked on every stream a release writes: the
reference virtio-net-pci under that (release, machine type) must have the MSI-X
vectors QEMU wrote (:func:`model_layout`); where it does not, the model is wrong
and the cell fails.

A completed migration is checked further: the destination saves its state
again at once and every section is compared field by field with the source's
(:mod:`migcompat.qemu.compare`); a value that changed is ``corrupt`` -- silent
corruption real QEMU accepted.

Machine types run by default: for every installed release R, ``pc-i440fx-R``
and ``pc-q35-R`` where both releases know them (so backward migration with an
older machine type is exercised), the source's newest ones where the
destination does not know them (to show refusals), and ``microvm`` for the
virtio-mmio configuration.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from migcompat import devices
from migcompat.compat import dumps
from migcompat.errors import DecodeError, MigcompatError, UsageError
from migcompat.model.layout import Layout
from migcompat.qemu import compare, dump, peer, stream
from migcompat.qemu.peer import MachineConfig
from migcompat.qemu.releases import QemuRelease
from migcompat.schema.diff import Finding
from migcompat.schema.diff import compare as static_compare

__all__ = [
    "DEFAULT_CONFIGS",
    "RealCell",
    "RealResults",
    "machines_for",
    "explain",
    "run_real",
]

#: The configurations the real matrix runs by default (``q35-virtio-net`` is
#: ``pc-virtio-net`` on another machine type, which the machine axis covers).
DEFAULT_CONFIGS: tuple[str, ...] = tuple(name for name in peer.CONFIGS if name != "q35-virtio-net")

OK, REFUSED, CORRUPT, CRASH = "ok", "refused", "corrupt", "crash"
#: The static checker's verdicts.
COMPATIBLE, INCOMPATIBLE, NOT_APPLICABLE = "compatible", "incompatible", "n/a"

FORMAT_VERSION = 1


@dataclass
class RealCell:
    """One real migration: (configuration, machine type, source, destination)."""

    config: str
    machine: str
    source: str
    destination: str
    real: str = CRASH
    message: str = ""
    #: Field-by-field differences after a completed migration (text, corrupting first).
    changes: list[str] = field(default_factory=list)
    model: str = OK
    model_reason: str = ""
    static: str = NOT_APPLICABLE
    static_findings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: Static findings about members the source's stream did not carry (set aside, with the reason).
    static_unsent: list[str] = field(default_factory=list)
    #: Why a disagreement is not a fault of the model (empty: unexplained).
    explanation: str = ""
    #: Corrupting changes as (section, path), for the same-release baseline.
    corrupting: list[tuple[str, str]] = field(default_factory=list, repr=False)
    #: The model's layout of the source's virtio-net-pci under the machine type
    #: against the bytes QEMU wrote (:func:`model_layout`); None: not checked.
    layout_agrees: bool | None = None
    layout: str = ""

    @property
    def key(self) -> str:
        return f"{self.config}@{self.machine}/{self.source}->{self.destination}"

    @property
    def agrees(self) -> bool:
        return self.real == self.model

    @property
    def fails(self) -> bool:
        """A finding for the gate: QEMU and the model disagree, or a migration crashed
        or changed a value, with no reason found in the evidence."""
        unexplained = (not self.agrees or self.real in (CORRUPT, CRASH)) and not self.explanation
        return unexplained or self.layout_agrees is False

    @property
    def failure(self) -> str:
        """Why the cell fails, in one line (empty when it does not)."""
        if not self.fails:
            return ""
        if self.layout_agrees is False:
            return f"the model's layout is wrong: {self.layout}"
        return f"QEMU {self.real} ({self.message}); model {self.model} ({self.model_reason})"

    @property
    def static_agrees(self) -> bool | None:
        """None where the checker has no verdict (a machine type it cannot see)."""
        if self.static == NOT_APPLICABLE:
            return None
        return (self.static == COMPATIBLE) == self.intact

    @property
    def intact(self) -> bool:
        """Loaded with every field kept, or changed only where QEMU recomputes on loading."""
        return self.real == OK or (self.real == CORRUPT and bool(self.explanation))

    @property
    def baseline(self) -> bool:
        """A same-release migration: what the release itself does to its own state."""
        return self.source == self.destination

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["corrupting"] = [list(change) for change in self.corrupting]
        out.update(key=self.key, agrees=self.agrees, static_agrees=self.static_agrees, baseline=self.baseline)
        return out

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> RealCell:
        names = {entry.name for entry in fields(cls)}
        cell = cls(**{name: value for name, value in item.items() if name in names})
        cell.corrupting = [(section, path) for section, path in item.get("corrupting", [])]
        return cell


@dataclass
class RealResults:
    releases: dict[str, str]
    cells: list[RealCell]
    seconds: float
    skipped: dict[str, str] = field(default_factory=dict)
    #: The selection the run was asked for and its shard (``K/N``), for a merge to check.
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def disagreements(self) -> list[RealCell]:
        return [cell for cell in self.cells if not cell.agrees]

    @property
    def unexplained(self) -> list[RealCell]:
        return [cell for cell in self.disagreements if not cell.explanation]

    @property
    def static_false_alarms(self) -> list[RealCell]:
        return [c for c in self.cells if c.static == INCOMPATIBLE and c.intact]

    @property
    def static_misses(self) -> list[RealCell]:
        return [c for c in self.cells if c.static == COMPATIBLE and not c.intact]

    @property
    def passed(self) -> bool:
        return not any(cell.fails for cell in self.cells)

    @property
    def layouts(self) -> dict[tuple[str, str, str], tuple[bool, str]]:
        """(config, machine type, source) -> the model layout check of that stream."""
        return {
            (cell.config, cell.machine, cell.source): (cell.layout_agrees, cell.layout)
            for cell in self.cells
            if cell.layout_agrees is not None
        }

    def counts(self) -> Counter[str]:
        return Counter(cell.real for cell in self.cells)

    def headline(self) -> str:
        counts = ", ".join(f"{count} {name}" for name, count in sorted(self.counts().items()))
        judged = [c for c in self.cells if c.static != NOT_APPLICABLE]
        return (
            f"{len(self.cells)} real migrations in {self.seconds:.1f} s: {counts}; "
            f"model agrees on {len(self.cells) - len(self.disagreements)}, disagrees on {len(self.disagreements)} "
            f"({len(self.disagreements) - len(self.unexplained)} explained); "
            f"static checker judged {len(judged)}: {len(self.static_false_alarms)} false alarms, "
            f"{len(self.static_misses)} misses ({sum(len(c.static_unsent) for c in self.cells)} findings set aside: "
            "members the source's stream did not carry); "
            f"model layout checked on {len(self.layouts)} streams: "
            f"{sum(1 for agrees, _ in self.layouts.values() if not agrees)} differ"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "kind": "real-matrix",
            "releases": self.releases,
            "seconds": round(self.seconds, 3),
            "headline": self.headline(),
            "counts": dict(self.counts()),
            "disagreements": [cell.key for cell in self.disagreements],
            "unexplained": [cell.key for cell in self.unexplained],
            "static": {
                "false_alarms": [cell.key for cell in self.static_false_alarms],
                "misses": [cell.key for cell in self.static_misses],
            },
            "skipped": self.skipped,
            "meta": self.meta,
            "layouts": [
                {"config": config, "machine": machine, "source": source, "agrees": agrees, "detail": detail}
                for (config, machine, source), (agrees, detail) in self.layouts.items()
            ],
            "cells": [cell.to_json() for cell in self.cells],
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> RealResults:
        if document.get("format_version") != FORMAT_VERSION or document.get("kind") != "real-matrix":
            raise ValueError("not a real.json of this format version")
        return cls(
            releases=dict(document["releases"]),
            cells=[RealCell.from_json(item) for item in document["cells"]],
            seconds=float(document["seconds"]),
            skipped=dict(document.get("skipped", {})),
            meta=dict(document.get("meta", {})),
        )


def explain(cells: Sequence[RealCell]) -> None:
    """(Re)state why each disagreement is not the model's fault, from the baselines among ``cells``."""
    for cell in cells:
        cell.explanation = ""
    _explain(cells)


# -- which migrations ---------------------------------------------------------------------


def _families(release: QemuRelease) -> list[str]:
    """The release's own newest machine types (``pc`` and ``q35``, resolved)."""
    return [release.resolve_machine(alias) for alias in ("pc", "q35")]


def machines_for(source: QemuRelease, destination: QemuRelease, every: Sequence[QemuRelease]) -> list[str]:
    """The machine types a (source, destination) pair runs: each release's own
    pc/q35 types that both know, the source's own ones the destination does not
    know, and ``microvm``."""
    known_source, known_destination = set(source.machine_types()), set(destination.machine_types())
    chosen: list[str] = []
    for release in every:
        for machine in _families(release):
            shared = machine in known_source and machine in known_destination
            refused_demo = release is source and machine in known_source and machine not in known_destination
            if (shared or refused_demo) and machine not in chosen:
                chosen.append(machine)
    if "microvm" in known_source:
        chosen.append("microvm")
    return chosen


def _baseline_machines(release: QemuRelease, every: Sequence[QemuRelease]) -> list[str]:
    """A same-release migration runs the release's own newest machine types and every
    one a cross-release migration into it may use."""
    chosen: list[str] = [machine for machine in _families(release) if machine in release.machine_types()]
    for other in every:
        for machine in machines_for(other, release, every) if other is not release else []:
            if machine in release.machine_types() and machine not in chosen:
                chosen.append(machine)
    return chosen


# -- running --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    config: MachineConfig
    machine: str
    source: QemuRelease
    destination: QemuRelease


def _dumps(releases: Sequence[QemuRelease], scratch: Path, timeout: float) -> dict[str, Layout | str]:
    """Each release's ``-dump-vmstate`` layout, or why there is none."""
    out: dict[str, Layout | str] = {}
    for release in releases:
        path = scratch / f"vmstate-{release.name}.json"
        try:
            peer.dump_vmstate(path, release=release, timeout=timeout)
            out[release.name] = dump.read(json.loads(path.read_text()), str(path))
        except (MigcompatError, OSError, ValueError) as error:
            out[release.name] = f"no -dump-vmstate: {error}"
    return out


def _carried(data: bytes) -> dict[str, set[str]]:
    """What a stream carries, from its vmdesc trailer: per section's VMState name,
    the names of every field and subsection it holds (at any depth)."""
    parsed = stream.parse_qemu(data, stream.no_devices, decode_vmdesc=False)
    if parsed.vmdesc is None:
        return {}
    out: dict[str, set[str]] = {}
    for entry in json.loads(parsed.vmdesc).get("devices", []):
        names = out.setdefault(entry.get("vmsd_name", entry["name"]), set())
        _member_names(entry, names)
    return out


def _member_names(entry: dict[str, Any], names: set[str]) -> None:
    for member in entry.get("fields", []):
        names.add(member["name"])
        if isinstance(member.get("struct"), dict):
            _member_names(member["struct"], names)
    for sub in entry.get("subsections", []):
        names.add(sub.get("vmsd_name", ""))
        _member_names(sub, names)


#: Findings about one member that the stream shows whether the source sent.
_ABOUT_A_MEMBER = frozenset({"SUBSECTION_REMOVED", "FIELD_REMOVED", "FIELD_ADDED"})


def _static(
    cell: RealCell, carried: dict[str, set[str]], layouts: dict[str, Layout | str], verdicts: _Verdicts
) -> None:
    """The checker's verdict on the releases' dumps for the sections the stream carries.

    A finding about a member (a subsection, a field gated by a test) that the
    source's stream does not carry is set aside with the reason: with this
    machine type and state the source did not send it (a subsection only a
    running guest makes needed; a field a compatibility property turns off).
    """
    before, after = layouts.get(cell.source), layouts.get(cell.destination)
    if not isinstance(before, Layout) or not isinstance(after, Layout):
        cell.static_findings = [str(before if not isinstance(before, Layout) else after)]
        return
    findings: list[str] = []
    for name, members in carried.items():
        key, other = _dump_key(before, name), _dump_key(after, name)
        if key is None or other is None:
            continue  # not a device class of both dumps (cpu, timer, ps2kbd ...): they do not describe it
        for finding in _breaking(cell, before, after, (key, other), verdicts):
            text = f"{finding.rule} {finding.path}: {finding.message}"
            if finding.rule in _ABOUT_A_MEMBER and not _sent(finding.path, key, members):
                cell.static_unsent.append(text)
            else:
                findings.append(text)
    cell.static = INCOMPATIBLE if findings else COMPATIBLE
    cell.static_findings = findings


#: The checker's findings per (source, destination, section key, destination key).
_Verdicts = dict[tuple[str, str, str, str], tuple[Finding, ...]]


def _breaking(
    cell: RealCell, before: Layout, after: Layout, keys: tuple[str, str], verdicts: _Verdicts
) -> tuple[Finding, ...]:
    """The checker's legacy-wire findings for one section of two dumps: the same for
    every config and machine type of a release pair, so computed once per run."""
    key, other = keys
    found = verdicts.get((cell.source, cell.destination, key, other))
    if found is None:
        report = static_compare(dumps.one_section(before, key), dumps.one_section(after, other, named=key))
        found = verdicts[cell.source, cell.destination, key, other] = tuple(report.breaking(("qemufile",)))
    return found


def _sent(path: str, key: str, members: set[str]) -> bool:
    """Whether the member a finding's path names is among what the section carried."""
    inner = path.removeprefix(f"{key}/")
    return any(inner == name or inner.endswith(f"/{name}") for name in members if name)


def _dump_key(layout: Layout, vmsd_name: str) -> str | None:
    """The dump's entry for a stream section's VMState name: a dump is keyed by
    device class, and several classes may share one VMState (the first by name)."""
    if vmsd_name in layout.sections:
        return vmsd_name
    return min((key for key, top in layout.sections.items() if top.description.name == vmsd_name), default=None)


def versioned(machine: str) -> bool:
    """True for a machine type with a release in its name (``pc-q35-7.2``): only
    those carry the compatibility properties that keep another release's stream
    in a form a release reads. ``microvm`` has none: it is the same machine only
    within one release (its firmware and devices change between releases)."""
    return any(character.isdigit() for character in machine)


def _model(cell: RealCell, destination: QemuRelease) -> None:
    if cell.machine not in destination.machine_types():
        cell.model = REFUSED
        cell.model_reason = f"QEMU {cell.destination} does not know machine type {cell.machine}"
    elif cell.baseline:
        cell.model, cell.model_reason = OK, f"a migration within QEMU {cell.destination}"
    elif not versioned(cell.machine):
        cell.model = REFUSED
        cell.model_reason = f"{cell.machine} is not a versioned machine type: no compatibility across releases"
    elif cell.machine in destination.machine_types():
        cell.model, cell.model_reason = OK, f"QEMU {cell.destination} knows machine type {cell.machine}"
    else:
        cell.model = REFUSED
        cell.model_reason = f"QEMU {cell.destination} does not know machine type {cell.machine}"


def _destination_machine(plan: _Plan) -> str:
    """The machine type the destination is started with: the same, or (when it does
    not know it) its own of the same family, as a user would start it."""
    if plan.machine in plan.destination.machine_types():
        return plan.machine
    alias = "q35" if "q35" in plan.machine else "pc"
    return plan.destination.resolve_machine(alias)


def _migrate(plan: _Plan, source_stream: Path, scratch: Path, timeout: float) -> RealCell:
    cell = RealCell(plan.config.name, plan.machine, plan.source.name, plan.destination.name)
    _model(cell, plan.destination)
    started = time.monotonic()
    resaved = scratch / f"{plan.config.name}@{plan.machine}-{plan.source.name}-{plan.destination.name}.bin"
    try:
        result = peer.load(
            plan.config,
            source_stream,
            release=plan.destination,
            machine=_destination_machine(plan),
            timeout=timeout,
            resave=resaved,
        )
    except MigcompatError as error:
        cell.real, cell.message = CRASH, str(error)
    else:
        if not result.accepted:
            cell.real, cell.message = REFUSED, " | ".join(result.message.splitlines())
        else:
            _check_intact(cell, source_stream.read_bytes(), resaved.read_bytes())
    finally:
        resaved.unlink(missing_ok=True)
    cell.seconds = time.monotonic() - started
    return cell


def _check_intact(cell: RealCell, before: bytes, after: bytes) -> None:
    try:
        sections = compare.compare_streams(before, after, devices.resolve_section)
    except DecodeError as error:
        cell.real, cell.message = CRASH, f"cannot read a stream to compare: {error}"
        return
    cell.corrupting = [(s.idstr, c.path) for s in sections for c in s.corrupting]
    corrupting = [f"{s.label}: {c.text()}" for s in sections for c in s.corrupting]
    notes = [f"{s.label}: {s.note}" for s in sections if s.note]
    others = [f"{s.label}: {c.text()}" for s in sections for c in s.changes if not c.corrupting]
    cell.changes = corrupting + notes + others
    if corrupting:
        cell.real, cell.message = CORRUPT, corrupting[0]
    else:
        cell.real = OK
        cell.message = f"{sum(s.identical for s in sections)} of {len(sections)} sections byte-identical"


def run_real(
    releases: Sequence[QemuRelease],
    *,
    configs: Sequence[str] = DEFAULT_CONFIGS,
    machines: Sequence[str] = (),
    sources: Iterable[str] = (),
    destinations: Iterable[str] = (),
    jobs: int = 2,
    timeout: float = 60.0,
    progress: Callable[[str], None] = lambda line: None,
    shard: tuple[int, int] = (0, 1),
) -> RealResults:
    """Run every real migration of the plan; every QEMU started is ended, every file removed.

    A release that does not answer (a broken root, a binary that does not run)
    is left out with the reason (:attr:`RealResults.skipped`); the rest run.
    ``shard`` (part, parts) runs every ``parts``-th migration of the plan from
    ``part`` (:mod:`migcompat.compat.shard` merges them; the explanations resting
    on another shard's baselines are made there).
    """
    skipped: dict[str, str] = {}
    working: list[QemuRelease] = []
    for release in releases:
        try:
            release.version()
            release.machine_types()
        except MigcompatError as error:
            skipped[release.name] = str(error)
        else:
            working.append(release)
    releases = working
    if len(releases) < 2:
        broken = "".join(f"; {name}: {why}" for name, why in skipped.items())
        raise UsageError(f"the real matrix needs two or more working QEMU releases (migcompat qemu install){broken}")
    unknown = [name for name in configs if name not in peer.CONFIGS]
    if unknown:
        raise UsageError(f"unknown machine config {unknown[0]!r} (known: {', '.join(peer.CONFIGS)})")
    wanted_sources, wanted_destinations = set(sources), set(destinations)
    started = time.monotonic()
    versions = {release.name: release.version() for release in releases}
    plans: list[_Plan] = []
    for source in releases:
        for destination in releases:
            # A release's baseline runs whenever the release is asked for at all:
            # it is the evidence the explanations of the cross-release cells rest on.
            involved = wanted_sources | wanted_destinations
            if source is destination:
                if involved and source.name not in involved:
                    continue
            elif (wanted_sources and source.name not in wanted_sources) or (
                wanted_destinations and destination.name not in wanted_destinations
            ):
                continue
            chosen = list(machines) or (
                _baseline_machines(source, releases)
                if source is destination
                else machines_for(source, destination, releases)
            )
            for name in configs:
                config = peer.CONFIGS[name]
                plans.extend(
                    _Plan(config, machine, source, destination)
                    for machine in chosen
                    if config.fits(machine) and machine in source.machine_types()
                )
    part, parts = shard
    plans = plans[part::parts]
    with tempfile.TemporaryDirectory(prefix="migcompat-real-") as scratch_name:
        scratch = Path(scratch_name)
        layouts = _dumps(releases, scratch, timeout)
        captures = _capture_all(plans, scratch, timeout, jobs, progress)
        cells = _migrate_all(plans, captures, scratch, timeout, jobs, progress)
        _explain(cells)
        verdicts: _Verdicts = {}
        carried = {key: _carried(path.read_bytes()) for key, path in captures.items() if isinstance(path, Path)}
        checked = {
            key: model_layout(key[0], key[1], versions[key[2]], path.read_bytes())
            for key, path in captures.items()
            if isinstance(path, Path)
        }
        for cell in cells:
            cell.layout_agrees, cell.layout = checked.get((cell.config, cell.machine, cell.source), (None, ""))
            sent = carried.get((cell.config, cell.machine, cell.source))
            judged = cell.machine in _known(releases, cell.destination) and (versioned(cell.machine) or cell.baseline)
            if sent is not None and judged:
                _static(cell, sent, layouts, verdicts)
    meta = {
        "configs": list(configs),
        "machines": list(machines),
        "sources": sorted(wanted_sources),
        "destinations": sorted(wanted_destinations),
        "shard": f"{part + 1}/{parts}",
    }
    return RealResults(versions, cells, time.monotonic() - started, skipped, meta)


#: The configurations whose virtio-net-pci takes its MSI-X vectors from the
#: machine type (no ``vectors=`` given), as the reference model does.
MODEL_LAYOUT_CONFIGS = ("pc-virtio-net", "q35-virtio-net")


def model_layout(config: str, machine: str, version: str, data: bytes) -> tuple[bool | None, str]:
    """Whether the reference model's virtio-net-pci of release ``version`` under
    ``machine`` has the MSI-X layout QEMU wrote in ``data``: (None, "") where the
    model makes no claim (another configuration, an unversioned machine type)."""
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return None, ""
    if config not in MODEL_LAYOUT_CONFIGS or not versioned(machine):
        return None, ""
    from migcompat.devices.virtio import machine_compat

    expected = machine_compat(f"qemu-{major}.{minor}", machine).vectors
    try:
        parsed = stream.parse_qemu(data, devices.resolve_section)
    except DecodeError as error:
        return False, f"the stream does not decode: {error}"
    found = [r for r in parsed.records if r.device == "virtio" and r.idstr.endswith("/virtio-net") and r.state]
    if len(found) != 1:
        return False, f"{len(found)} virtio-net sections in the stream, expected 1"
    state = found[0].state
    assert state is not None
    written = len(state.get("msix_table", b"")) // 16
    detail = f"virtio-net-pci under {machine}: QEMU {version} wrote {written} MSI-X vectors, the model has {expected}"
    return written == expected, detail


def _explain(cells: Sequence[RealCell]) -> None:
    """Say why a disagreement is not the model's fault, where the evidence says so.

    A field that also changes when a release loads its own stream (the
    same-release migration of the source's or the destination's release, with
    the same config and machine type) is one that QEMU recomputes on loading --
    derived state, or bytes that carry no state -- not a value lost between
    releases.
    """
    baselines = {(c.config, c.machine, c.destination): c for c in cells if c.baseline}
    for cell in cells:
        if cell.agrees or cell.real != CORRUPT:
            continue
        seen = [
            baselines[key]
            for key in ((cell.config, cell.machine, cell.source), (cell.config, cell.machine, cell.destination))
            if key in baselines
        ]
        recomputed = {change for baseline in seen for change in baseline.corrupting}
        if all(change in recomputed for change in cell.corrupting):
            fields = ", ".join(sorted({path for _, path in cell.corrupting}))
            where = " and ".join(sorted({f"{b.source} -> {b.destination}" for b in seen if b.corrupting}))
            cell.explanation = (
                f"{fields} also changes when a release loads its own stream ({where}): QEMU recomputes it on "
                "loading, whatever release wrote it"
            )


def _known(releases: Sequence[QemuRelease], name: str) -> tuple[str, ...]:
    return next(release.machine_types() for release in releases if release.name == name)


def _capture_all(
    plans: Sequence[_Plan], scratch: Path, timeout: float, jobs: int, progress: Callable[[str], None]
) -> dict[tuple[str, str, str], Path | str]:
    """One capture per (config, machine, source release): a path, or why it failed."""
    wanted = {(plan.config.name, plan.machine, plan.source.name): plan for plan in plans}

    def one(key: tuple[str, str, str]) -> Path | str:
        plan = wanted[key]
        path = scratch / f"{key[0]}@{key[1]}-{key[2]}.bin"
        try:
            peer.capture(plan.config, path, release=plan.source, machine=plan.machine, timeout=timeout)
        except MigcompatError as error:
            return f"capture at QEMU {plan.source.name} failed: {error}"
        progress(f"captured {key[0]} on {key[1]} at QEMU {key[2]}")
        return path

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return dict(zip(wanted, pool.map(one, wanted), strict=True))


def _migrate_all(
    plans: Sequence[_Plan],
    captures: dict[tuple[str, str, str], Path | str],
    scratch: Path,
    timeout: float,
    jobs: int,
    progress: Callable[[str], None],
) -> list[RealCell]:
    def one(plan: _Plan) -> RealCell:
        captured = captures[plan.config.name, plan.machine, plan.source.name]
        if isinstance(captured, str):
            cell = RealCell(plan.config.name, plan.machine, plan.source.name, plan.destination.name)
            _model(cell, plan.destination)
            cell.real, cell.message = CRASH, captured
            return cell
        cell = _migrate(plan, captured, scratch, timeout)
        progress(f"{cell.key}: {cell.real}")
        return cell

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, plans))
