"""Parity with real QEMU: mutated real streams, each loaded by real QEMU and given to ``migcompat check``.

Why: ``migcompat check`` predicts what a destination QEMU does with a stream;
real QEMU is the judge of that prediction. A campaign takes the committed
captures of every installed release, changes them the ways streams break in
practice -- one byte, a cut, a section header, a footer, two sections swapped,
a section taken from another release -- and loads each mutant into real QEMU
(the same release and configuration as the capture) and into the check, with
the unchanged capture as the destination. Every disagreement is kept under
``corpora/regressions/qemu_agree/`` with both verdicts, so pytest replays it
without QEMU.

A mutant is a list of splices on a committed capture (start, end, replacement),
so a kept case is a few bytes of JSON, not a copy of the stream. Generation is
deterministic from the seed.
"""

from __future__ import annotations

import json
import random
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migcompat import devices
from migcompat.devices.streams import check_stream
from migcompat.errors import UsageError
from migcompat.qemu import destination as destinations
from migcompat.qemu import peer
from migcompat.qemu.incoming import LOADED, REFUSED, UNJUDGED
from migcompat.qemu.stream import FOOTER, SECTION_FULL, parse_qemu

#: Mutation classes and their share of a campaign.
CLASSES: dict[str, int] = {
    "byte": 30,
    "model": 20,
    "truncate": 10,
    "header": 16,
    "footer": 6,
    "swap": 8,
    "cross": 10,
}
#: Sections whose every field a device model of ours reads ("model" mutants change a byte of one).
_MODELLED = ("slirp", "virtio-net", "virtio-blk")
#: QEMU's verdicts.
ACCEPTED, REJECTED, CRASHED, HUNG = "accepted", "rejected", "crashed", "hung"
REGRESSIONS = "qemu_agree"
#: The minimum-versions table beside a release's captures (migcompat qemu minimums).
MINIMUMS = "minimum-versions.json"


@dataclass(frozen=True)
class Base:
    """A committed capture a campaign mutates: its release, configuration and machine type."""

    release: str
    config: str
    machine: str | None
    path: Path
    dump: Path | None
    minimums: Path | None = None

    @property
    def name(self) -> str:
        return f"qemu-{self.release}/{self.path.name}"


@dataclass(frozen=True)
class Mutant:
    base: Base
    kind: str
    what: str
    #: (start, end, replacement) on the base's bytes, applied from the last to the first.
    splices: tuple[tuple[int, int, bytes], ...]

    def apply(self, data: bytes) -> bytes:
        out = data
        for start, end, replacement in sorted(self.splices, key=lambda splice: splice[0], reverse=True):
            out = out[:start] + replacement + out[end:]
        return out


@dataclass
class Outcome:
    mutant: Mutant
    qemu: str
    qemu_message: str
    ours: str
    our_reason: str
    our_finding: str = ""

    @property
    def agrees(self) -> bool:
        if self.ours == UNJUDGED:
            return False
        return (self.qemu == ACCEPTED) == (self.ours == LOADED)

    @property
    def label(self) -> str:
        if self.ours == UNJUDGED:
            return "cannot tell"
        if self.agrees:
            return "both accept" if self.qemu == ACCEPTED else "both refuse"
        return "QEMU refuses, we accept" if self.ours == LOADED else "QEMU accepts, we refuse"


@dataclass
class Campaign:
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def counts(self) -> Counter[tuple[str, str]]:
        return Counter((outcome.mutant.kind, outcome.label) for outcome in self.outcomes)

    @property
    def disagreements(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if not outcome.agrees]


def bases(root: Path, release_names: Sequence[str]) -> list[Base]:
    """Every committed capture of the given releases whose configuration migcompat can run, with the
    release's -dump-vmstate (one per binary: its device classes are every machine's) and minimum versions."""
    found: list[Base] = []
    for release in release_names:
        folder = root / f"qemu-{release}"
        dump = folder / "vmstate-pc.json"
        table = folder / MINIMUMS
        for path in sorted(folder.glob("*.bin")):
            config, _, machine = path.stem.partition("@")
            if config not in peer.CONFIGS:
                continue
            found.append(
                Base(
                    release,
                    config,
                    machine or None,
                    path,
                    dump if dump.is_file() else None,
                    table if table.is_file() else None,
                )
            )
    return found


def _full_sections(data: bytes) -> list[tuple[str, int, int, int]]:
    """(idstr, record start, body start, footer offset) of each FULL section."""
    parsed = parse_qemu(data, devices.resolve_section)
    return [
        (record.idstr, *record.span)
        for record in parsed.records
        if record.kind == SECTION_FULL and record.span is not None
    ]


def mutants(base: Base, count: int, rng: random.Random, others: dict[str, bytes]) -> list[Mutant]:
    """``count`` mutants of one capture, by the shares of :data:`CLASSES`."""
    data = base.path.read_bytes()
    sections = _full_sections(data)
    makers: dict[str, Callable[[], Mutant | None]] = {
        "byte": lambda: _byte(base, data, sections, rng),
        "model": lambda: _byte(base, data, [s for s in sections if s[0].endswith(_MODELLED)], rng, "model"),
        "truncate": lambda: _truncate(base, data, sections, rng),
        "header": lambda: _header(base, data, sections, rng),
        "footer": lambda: _footer(base, data, sections, rng),
        "swap": lambda: _swap(base, data, sections, rng),
        "cross": lambda: _cross(base, sections, rng, others),
    }
    kinds = [kind for kind, share in CLASSES.items() for _ in range(share)]
    made: list[Mutant] = []
    attempts = 0
    while len(made) < count and attempts < count * 20:
        attempts += 1
        mutant = makers[rng.choice(kinds)]()
        if mutant is not None:
            made.append(mutant)
    return made


def _byte(
    base: Base, data: bytes, sections: list[tuple[str, int, int, int]], rng: random.Random, kind: str = "byte"
) -> Mutant | None:
    if not sections:
        return None
    idstr, _start, body, footer = rng.choice(sections)
    # A model's checks are in a section's head (transport, generic part, the device's own state):
    # half the "model" changes land in its first 700 bytes, not in the long per-queue arrays.
    head = kind == "model" and rng.random() < 0.5
    offset = rng.randrange(body, min(footer, body + 700) if head else footer)
    old = data[offset]
    new = rng.choice([0, 1, 0xFF, old ^ 1, (old + 1) & 0xFF, old ^ 0x80, rng.randrange(256)])
    if new == old:
        new = old ^ 0xFF
    return Mutant(
        base, kind, f"{idstr}+{offset - body}: {old:02x} -> {new:02x}", ((offset, offset + 1, bytes((new,))),)
    )


def _truncate(base: Base, data: bytes, sections: list[tuple[str, int, int, int]], rng: random.Random) -> Mutant:
    first = sections[0][1]
    offset = rng.randrange(first, len(data)) if rng.random() < 0.85 else rng.randrange(1, first)
    return Mutant(base, "truncate", f"cut at {offset} of {len(data)}", ((offset, len(data), b""),))


def _header(base: Base, data: bytes, sections: list[tuple[str, int, int, int]], rng: random.Random) -> Mutant:
    idstr, start, body, _footer = rng.choice(sections)
    name_at = start + 5
    choices = {
        "type": (start, rng.choice([0x00, 0x01, 0x02, 0x03, 0x05, 0x06, 0x07, 0x08, 0x09, 0x7E])),
        "section id": (start + 1 + rng.randrange(4), None),
        "name length": (name_at, None),
        "name": (name_at + 1 + rng.randrange(max(1, len(idstr))), None),
        "instance id": (body - 8 + rng.randrange(4), None),
        "version": (body - 1, None),
    }
    part = rng.choice(list(choices))
    offset, forced = choices[part]
    old = data[offset]
    new = forced if forced is not None else rng.choice([(old + 1) & 0xFF, (old - 1) & 0xFF, 0, 0xFF, old ^ 0x20])
    if new == old:
        new = old ^ 1
    return Mutant(base, "header", f"{idstr} {part}: {old:02x} -> {new:02x}", ((offset, offset + 1, bytes((new,))),))


def _footer(base: Base, data: bytes, sections: list[tuple[str, int, int, int]], rng: random.Random) -> Mutant:
    idstr, _start, _body, footer = rng.choice(sections)
    offset = footer + rng.randrange(5)
    old = data[offset]
    new = rng.choice([old ^ 1, 0, 0xFF]) if offset > footer else rng.choice([0x7F, 0x00, 0x04])
    if new == old:
        new = old ^ 2
    assert data[footer] == FOOTER
    return Mutant(
        base,
        "footer",
        f"{idstr} footer+{offset - footer}: {old:02x} -> {new:02x}",
        ((offset, offset + 1, bytes((new,))),),
    )


def _swap(base: Base, data: bytes, sections: list[tuple[str, int, int, int]], rng: random.Random) -> Mutant | None:
    if len(sections) < 2:
        return None
    index = rng.randrange(len(sections) - 1)
    first, second = sections[index], sections[index + 1]
    a = data[first[1] : first[3] + 5]
    b = data[second[1] : second[3] + 5]
    if first[3] + 5 != second[1]:
        return None  # not adjacent (a command or RAM between them)
    return Mutant(base, "swap", f"{first[0]} <-> {second[0]}", ((first[1], second[3] + 5, b + a),))


def _cross(
    base: Base, sections: list[tuple[str, int, int, int]], rng: random.Random, others: dict[str, bytes]
) -> Mutant | None:
    """A section replaced by the same device's section from another release's capture of the configuration."""
    candidates = [(name, other) for name, other in others.items() if name != base.release]
    if not candidates:
        return None
    release, other = rng.choice(candidates)
    theirs = {idstr: (start, footer) for idstr, start, _body, footer in _full_sections(other)}
    shared = [section for section in sections if section[0] in theirs]
    if not shared:
        return None
    idstr, start, _body, footer = rng.choice(shared)
    their_start, their_footer = theirs[idstr]
    # The section id is the destination's numbering: keep ours, take the rest of theirs.
    ours_id = bytes(base.path.read_bytes()[start + 1 : start + 5])
    replacement = other[their_start : their_start + 1] + ours_id + other[their_start + 5 : their_footer + 1] + ours_id
    return Mutant(base, "cross", f"{idstr} from QEMU {release}", ((start, footer + 5, replacement),))


def _qemu_verdict(mutant: Mutant, data: bytes, timeout: float) -> tuple[str, str]:
    with tempfile.TemporaryDirectory(prefix="migcompat-agree-") as scratch:
        path = Path(scratch) / "mutant.bin"
        path.write_bytes(data)
        try:
            result = peer.load(
                peer.CONFIGS[mutant.base.config],
                path,
                release=mutant.base.release,
                machine=mutant.base.machine,
                timeout=timeout,
            )
        except peer.QemuPeerError as error:
            if "timed out" in str(error):
                return HUNG, str(error)
            raise
    if result.accepted:
        return ACCEPTED, ""
    if "exited with status -" in result.message or "Assertion" in result.message:
        return CRASHED, result.message
    return REJECTED, result.message


def judge(mutant: Mutant, destination: destinations.Destination, data: bytes, qemu: tuple[str, str] | None) -> Outcome:
    """Our verdict on a mutant beside QEMU's (given, or recorded)."""
    verdict = check_stream(mutant.apply(data), destination)
    refusal = verdict.refusal
    reason = f"{refusal.label}: {refusal.reason}" if refusal else ""
    qemu_verdict, message = qemu if qemu is not None else ("", "")
    return Outcome(mutant, qemu_verdict, message, verdict.verdict, reason, refusal.finding if refusal else "")


def run(
    root: Path,
    release_names: Sequence[str],
    count: int,
    *,
    seed: int = 0,
    jobs: int = 2,
    timeout: float = 8.0,
    progress: Callable[[str], None] | None = None,
) -> Campaign:
    """Generate ``count`` mutants over the captures of the releases, and judge each by QEMU and by the check."""
    import time

    started = time.monotonic()
    every = bases(root, release_names)
    if not every:
        raise UsageError(f"no committed captures of QEMU {', '.join(release_names)} under {root}")
    rng = random.Random(seed)
    per_base = max(1, count // len(every))
    planned: list[Mutant] = []
    contexts: dict[Base, tuple[destinations.Destination, bytes]] = {}
    for base in every:
        others = {
            other.release: other.path.read_bytes()
            for other in every
            if other.config == base.config and other.machine == base.machine and other.release != base.release
        }
        planned += mutants(base, per_base, rng, others)
        contexts[base] = (
            destinations.read(base.path, devices.resolve_section, base.dump, base.release, base.minimums),
            base.path.read_bytes(),
        )
    campaign = Campaign()

    def one(mutant: Mutant) -> Outcome:
        destination, data = contexts[mutant.base]
        qemu = _qemu_verdict(mutant, mutant.apply(data), timeout)
        return judge(mutant, destination, data, qemu)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for index, outcome in enumerate(pool.map(one, planned), 1):
            campaign.outcomes.append(outcome)
            if progress is not None and index % 50 == 0:
                progress(f"{index}/{len(planned)} mutants")
    campaign.seconds = time.monotonic() - started
    return campaign


def pairs(root: Path, release_names: Sequence[str], *, jobs: int = 2, timeout: float = 8.0) -> Campaign:
    """Every committed capture loaded into the configuration of every other one (its release, config and
    machine type), by real QEMU and by the check: the destination question on real streams, unmutated."""
    import time

    started = time.monotonic()
    every = bases(root, release_names)
    contexts = {
        base: destinations.read(base.path, devices.resolve_section, base.dump, base.release, base.minimums)
        for base in every
    }
    planned = [(source, target) for source in every for target in every if source != target]
    campaign = Campaign()

    def one(pair: tuple[Base, Base]) -> Outcome:
        source, target = pair
        data, own = source.path.read_bytes(), target.path.read_bytes()
        mutant = Mutant(target, "pair", f"{source.name} into {target.name}", ((0, len(own), data),))
        return judge(mutant, contexts[target], own, _qemu_verdict(mutant, data, timeout))

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        campaign.outcomes.extend(pool.map(one, planned))
    campaign.seconds = time.monotonic() - started
    return campaign


def case_json(outcome: Outcome) -> dict[str, Any]:
    """A kept case: the mutant as splices on its base, and both verdicts."""
    mutant = outcome.mutant
    return {
        "base": mutant.base.name,
        "config": mutant.base.config,
        "machine": mutant.base.machine,
        "kind": mutant.kind,
        "what": mutant.what,
        "splices": [[start, end, replacement.hex()] for start, end, replacement in mutant.splices],
        "qemu": {"verdict": outcome.qemu, "message": outcome.qemu_message},
        "ours": {"verdict": outcome.ours, "reason": outcome.our_reason, "finding": outcome.our_finding},
    }


def keep(campaign: Campaign, folder: Path) -> list[Path]:
    """Write every disagreement (and every QEMU crash or hang) as a regression case."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for outcome in campaign.outcomes:
        if outcome.agrees and outcome.qemu not in (CRASHED, HUNG):
            continue
        case = case_json(outcome)
        key = f"{case['base']}|{case['splices']}"
        name = (
            f"{outcome.mutant.base.release}-{outcome.mutant.base.path.stem}-{outcome.mutant.kind}-{_digest(key)}.json"
        )
        path = folder / name.replace("@", "_at_")
        path.write_text(json.dumps(case, indent=1) + "\n")
        written.append(path)
    return written


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:10]


def load_case(path: Path, root: Path) -> tuple[Mutant, tuple[str, str], dict[str, Any]]:
    """A kept case as a mutant of its base, QEMU's recorded verdict, and the whole record."""
    case = json.loads(path.read_text())
    release_folder, file_name = case["base"].split("/")
    release = release_folder.removeprefix("qemu-")
    config = case["config"]
    dump = root / release_folder / "vmstate-pc.json"
    table = root / release_folder / MINIMUMS
    base = Base(
        release,
        config,
        case["machine"],
        root / release_folder / file_name,
        dump if dump.is_file() else None,
        table if table.is_file() else None,
    )
    splices = tuple((start, end, bytes.fromhex(replacement)) for start, end, replacement in case["splices"])
    return Mutant(base, case["kind"], case["what"], splices), (case["qemu"]["verdict"], case["qemu"]["message"]), case


def summary(campaign: Campaign) -> Iterator[str]:
    counts = campaign.counts()
    kinds = sorted({kind for kind, _ in counts})
    labels = ["both accept", "both refuse", "QEMU refuses, we accept", "QEMU accepts, we refuse", "cannot tell"]
    yield f"{len(campaign.outcomes)} streams in {campaign.seconds:.1f} s"
    yield f"{'class':<10}" + "".join(f"{label:>26}" for label in labels)
    for kind in kinds:
        yield f"{kind:<10}" + "".join(f"{counts[(kind, label)]:>26}" for label in labels)
    agree = sum(1 for outcome in campaign.outcomes if outcome.agrees)
    yield f"agreement: {agree}/{len(campaign.outcomes)}"
    qemu_faults = Counter(outcome.qemu for outcome in campaign.outcomes if outcome.qemu in (CRASHED, HUNG))
    refused = sum(1 for o in campaign.outcomes if o.qemu in (CRASHED, HUNG) and o.ours == REFUSED)
    if qemu_faults:
        yield (
            f"QEMU crashed on {qemu_faults[CRASHED]} and hung on {qemu_faults[HUNG]}; "
            f"migcompat refused {refused} of them"
        )
