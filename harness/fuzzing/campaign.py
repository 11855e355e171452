"""One fuzz run of a target: libFuzzer processes, their statistics, and the findings kept.

Why: ``migcompat fuzz`` and ``tox -e fuzz`` must run a target for a set time on
any machine the package is installed on, tell what the run achieved (executions,
speed, coverage, corpus growth) and turn every finding into a small, committed
regression input with a one-line command that reproduces it.

Strategy: libFuzzer (through atheris) exits the process that runs it, so each
job is a subprocess: ``python -m migcompat.fuzzing.entry TARGET`` with the work
corpus (``<work>/<target>/corpus``, kept between runs), the seeds
(``corpora/seeds/<target>``, generated there when absent) and the regressions
(``corpora/regressions/<target>``) as corpus directories, the target's
``max_len`` and dictionary, a per-input timeout and a memory limit. ``--jobs``
starts that many independent processes on the shared work corpus (libFuzzer
re-reads it as it grows); their final statistics are parsed from their logs and
summed. A finding is an artifact libFuzzer wrote (``crash-``, ``timeout-``,
``oom-``...): it is minimized with libFuzzer's ``-minimize_crash``, saved under
``corpora/regressions/<target>/`` named by kind and content hash, and reported
with the command that reproduces it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migcompat.fuzzing import dictionaries, native_build, seeds
from migcompat.fuzzing.targets import Target, judge
from migcompat.progress import Progress

#: Seconds one input may take before it is a finding (libFuzzer's -timeout).
#: The slowest legitimate input (a whole virtio section with 1024-entry queue
#: arrays through every load path) takes well under a second.
TIMEOUT_SECONDS = 10
#: Resident memory in MiB beyond which a job is a finding (libFuzzer's
#: -rss_limit_mb). Inputs are at most a target's max_len (64 KiB) and every
#: decoder refuses lengths and counts beyond migcompat.limits before allocating,
#: so a healthy job stays near 100 MiB.
RSS_LIMIT_MB = 1024
#: Seconds spent minimizing one finding.
MINIMIZE_SECONDS = 60

_DONE = re.compile(r"#(\d+)\s+DONE\s+(?:cov: (\d+) )?(?:ft: (\d+) )?corp: (\d+)/")
_PROGRESS = re.compile(r"#(\d+)\s+\w+\s+(?:cov: (\d+) )?(?:ft: (\d+) )?corp: (\d+)/")
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)", re.MULTILINE)
_ARTIFACT_KINDS = ("crash", "timeout", "oom", "leak", "slow-unit")


@dataclass
class Finding:
    """A minimized input that breaks the target's invariant, kept as a regression."""

    kind: str
    path: Path
    reproduce: str
    detail: str = ""

    def as_json(self) -> dict[str, str]:
        return {"kind": self.kind, "file": str(self.path), "reproduce": self.reproduce, "detail": self.detail}


@dataclass
class JobStats:
    """What one libFuzzer process reported."""

    execs: int = 0
    exec_per_s: int = 0
    coverage: int | None = None
    features: int | None = None
    corpus_size: int = 0
    new_units: int = 0


@dataclass
class Summary:
    """The outcome of one run of one target."""

    target: str
    seconds: float
    jobs: list[JobStats]
    new_entries: int
    findings: list[Finding] = field(default_factory=list)
    #: With the native path instrumented: the coverage counters its C gave libFuzzer.
    native_counters: int | None = None

    @property
    def execs(self) -> int:
        return sum(job.execs for job in self.jobs)

    @property
    def exec_per_s(self) -> int:
        """libFuzzer's own rate, summed over the jobs (start-up excluded); the wall-clock
        rate when a job did not report one."""
        if self.jobs and all(job.exec_per_s > 0 for job in self.jobs):
            return sum(job.exec_per_s for job in self.jobs)
        return round(self.execs / self.seconds) if self.seconds > 0 else 0

    @property
    def coverage(self) -> int | None:
        known = [job.coverage for job in self.jobs if job.coverage is not None]
        return max(known) if known else None

    @property
    def features(self) -> int | None:
        known = [job.features for job in self.jobs if job.features is not None]
        return max(known) if known else None

    @property
    def corpus_size(self) -> int:
        return max((job.corpus_size for job in self.jobs), default=0)

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "execs": self.execs,
            "exec_per_s": self.exec_per_s,
            "findings": [finding.as_json() for finding in self.findings],
            "corpus_size": self.corpus_size,
            "coverage": self.coverage,
            "features": self.features,
            "new_corpus_entries": self.new_entries,
            "seconds": round(self.seconds, 1),
            "native_counters": self.native_counters,
        }

    def text(self) -> str:
        coverage = "n/a" if self.coverage is None else f"{self.coverage} edges / {self.features} features"
        lines = [
            f"{self.target}: {self.execs} executions in {self.seconds:.0f} s ({self.exec_per_s} exec/s), "
            f"coverage {coverage}, corpus {self.corpus_size} entries ({self.new_entries} new), "
            f"{len(self.findings)} findings"
        ]
        if self.native_counters is not None:
            lines.append(f"  native BER path instrumented: {self.native_counters} C coverage counters")
        for finding in self.findings:
            detail = f" ({finding.detail})" if finding.detail else ""
            lines.append(f"  finding: {finding.kind}{detail}: {finding.path}")
            lines.append(f"    reproduce: {finding.reproduce}")
        return "\n".join(lines)


def parse_log(text: str) -> JobStats:
    """libFuzzer's final statistics from one job's output (the last progress line
    when the job stopped on a finding before printing them)."""
    stats = JobStats()
    lines = _DONE.findall(text) or _PROGRESS.findall(text)
    if lines:
        execs, coverage, features, corpus = lines[-1]
        stats.execs, stats.corpus_size = int(execs), int(corpus)
        stats.coverage = int(coverage) if coverage else None
        stats.features = int(features) if features else None
    final = dict(_STAT.findall(text))
    if "number_of_executed_units" in final:
        stats.execs = int(final["number_of_executed_units"])
    stats.exec_per_s = int(final.get("average_exec_per_sec", 0))
    stats.new_units = int(final.get("new_units_added", 0))
    return stats


_COUNTERS = re.compile(r"INFO: Loaded 1 modules\s+\((\d+) inline 8-bit counters\)")


def _native_counters(log: str) -> int:
    """How many coverage counters the instrumented native module gave libFuzzer (0: none loaded)."""
    found = _COUNTERS.search(log)
    return int(found.group(1)) if found else 0


def entry_command(target: str) -> list[str]:
    return [sys.executable, "-m", "migcompat.fuzzing.entry", target]


def reproduce_command(target: str, path: Path) -> str:
    """The one line that replays ``path`` through ``target`` (and shows the traceback)."""
    script = Path("fuzz") / f"{target}.py"
    if script.is_file():
        return f"python3 {shlex.quote(str(script))} {shlex.quote(str(path))}"
    return f"python3 -m migcompat.fuzzing.entry {target} {shlex.quote(str(path))}"


def _files(directory: Path) -> set[Path]:
    return {path for path in directory.iterdir() if path.is_file()} if directory.is_dir() else set()


def _prepare(target: Target, corpora: Path, work: Path) -> tuple[Path, list[Path], Path, list[str]]:
    """The work corpus, the corpus directories to read, this run's directory and the libFuzzer flags.

    The work corpus is shared by every run of the target; the job logs and the
    artifacts are this run's own (``runs/<time>-<pid>/``), so two runs of one
    target at once neither mix their statistics nor claim each other's findings.
    """
    base = work / target.name
    corpus = base / "corpus"
    run_dir = base / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    artifacts = run_dir / "artifacts"
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    seed_dir = corpora / "seeds" / target.name
    if not seed_dir.is_dir() or not _files(seed_dir):
        seeds.write(base / "seeds-all", seeds.build(corpora))
        seed_dir = base / "seeds-all" / target.name
    inputs = [corpus, seed_dir]
    regressions = corpora / "regressions" / target.name
    if _files(regressions):
        inputs.append(regressions)
    flags = [
        f"-max_len={target.max_len}",
        f"-timeout={TIMEOUT_SECONDS}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts.resolve()}/",
    ]
    if target.dictionary is not None:
        dictionary = base / target.dictionary
        dictionary.write_text(dictionaries.render_dictionary(target.dictionary))
        flags.append(f"-dict={dictionary.resolve()}")
    return corpus, inputs, run_dir, flags


def run(
    target: Target,
    *,
    seconds: int | None,
    runs: int | None = None,
    jobs: int = 1,
    corpora: Path = Path("corpora"),
    work: Path = Path(".fuzz"),
    seed: int | None = None,
    instrument_native: bool = False,
) -> Summary:
    """Fuzz ``target`` for ``seconds`` (or ``runs`` executions per job) with ``jobs`` processes;
    with ``instrument_native``, on an instrumented build of the native BER path (:mod:`.native_build`)."""
    environment = native_build.job_environment(work) if instrument_native else None
    corpus, inputs, run_dir, flags = _prepare(target, corpora, work)
    if seconds is not None:
        flags.append(f"-max_total_time={seconds}")
    if runs is not None:
        flags.append(f"-runs={runs}")
    before = _files(corpus)
    logs = [run_dir / f"job-{index}.log" for index in range(jobs)]
    started = time.monotonic()
    processes = []
    for index, log in enumerate(logs):
        job_seed = [f"-seed={seed + index}"] if seed is not None else []
        command = [*entry_command(target.name), *flags, *job_seed, *(str(path) for path in inputs)]
        with log.open("wb") as output:
            processes.append(subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=environment))
    try:
        _wait(processes, logs, target.name, seconds)
    finally:
        for process in processes:  # an interrupt ends the jobs too
            if process.poll() is None:
                process.kill()
                process.wait()
    elapsed = time.monotonic() - started
    summary = Summary(
        target=target.name,
        seconds=elapsed,
        jobs=[parse_log(log.read_text(errors="replace")) for log in logs],
        new_entries=len(_files(corpus) - before),
        native_counters=_native_counters(logs[0].read_text(errors="replace")) if instrument_native else None,
    )
    for artifact in sorted(_files(run_dir / "artifacts")):
        summary.findings.append(keep_finding(target, artifact, corpora / "regressions" / target.name))
    return summary


_EXEC_RATE = re.compile(rb"exec/s: (\d+)")


def _wait(processes: list[subprocess.Popen[bytes]], logs: list[Path], name: str, seconds: int | None) -> None:
    """Wait for every job; on a terminal, say how far the run is and how fast the first job goes."""
    with Progress(f"fuzz {name}", total=seconds) as progress:
        while any(process.poll() is None for process in processes):
            time.sleep(0.2)
            if not progress.shown:
                continue
            try:
                with logs[0].open("rb") as log:
                    log.seek(max(0, log.seek(0, os.SEEK_END) - 4096))
                    rates = _EXEC_RATE.findall(log.read())
            except OSError:
                rates = []
            progress.done = int(time.monotonic() - progress.started) if seconds else progress.done
            progress.note(f"{int(rates[-1])} exec/s in job 1 of {len(processes)}" if rates else "")


def keep_finding(target: Target, artifact: Path, regressions: Path) -> Finding:
    """Minimize ``artifact`` and save it under ``regressions`` as ``<kind>-<hash>``."""
    kind = next((kind for kind in _ARTIFACT_KINDS if artifact.name.startswith(kind)), "crash")
    data = artifact.read_bytes()
    if kind == "crash":
        minimized = artifact.with_name(artifact.name + ".min")
        command = [
            *entry_command(target.name),
            "-minimize_crash=1",
            f"-max_total_time={MINIMIZE_SECONDS}",
            f"-timeout={TIMEOUT_SECONDS}",
            f"-exact_artifact_path={minimized}",
            str(artifact),
        ]
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        if minimized.is_file() and minimized.stat().st_size > 0 and _crashes(target, minimized.read_bytes()):
            data = minimized.read_bytes()
    regressions.mkdir(parents=True, exist_ok=True)
    path = regressions / f"{kind}-{seeds.digest(data)}"
    path.write_bytes(data)
    detail = _crashes(target, data) if kind == "crash" else kind
    return Finding(kind, path, reproduce_command(target.name, path), detail or "")


def _crashes(target: Target, data: bytes) -> str:
    """The exception ``data`` raises through the target (outside the DecodeError family), or ''."""
    try:
        judge(target, data)
    except Exception as error:
        first = str(error).splitlines()[0] if str(error) else ""
        return f"{type(error).__name__}: {first}"[:200]
    return ""


__all__ = ["Finding", "JobStats", "Summary", "keep_finding", "parse_log", "reproduce_command", "run"]
