"""The ``migcompat`` command line.

Why: release engineers and CI drive migcompat from a shell. Every command reads
its inputs, calls the sans-IO core, and maps the outcome to a documented exit
code: 0 success / compatible, 1 incompatibility found, 2 usage or input error.
Input errors are one line naming the section, field path and byte offset -- never
a traceback -- and nothing is written to an output file on failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import click

from migcompat.devices.streams import check_stream, convert_stream, inspect_stream, read_destination
from migcompat.errors import MigcompatError, UsageError
from migcompat.progress import Progress
from migcompat.qemu import render

if TYPE_CHECKING:
    from migcompat.ci.findings import Results
    from migcompat.compat.real import RealResults
    from migcompat.compat.results import MatrixResults

EXIT_OK = 0
EXIT_INCOMPATIBLE = 1
EXIT_USAGE = 2


def _fail(message: str) -> None:
    click.echo(f"migcompat: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        _fail(f"cannot read {path}: {error.strerror}")
        raise AssertionError from None  # unreachable: _fail exits


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def _write_atomically(path: str, data: bytes) -> None:
    """Write through a temporary file so a failure leaves no partial output."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            # mkstemp creates 0600; the output gets the mode any new file would.
            os.fchmod(file.fileno(), 0o666 & ~_umask())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


#: ``--format`` values that print a CI format (:mod:`migcompat.ci`) instead of the text.
CI_FORMATS = ("github", "sarif", "junit")


def _format_option(help_text: str, *others: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``--format``: ``text`` (and ``others``) or one of the CI formats."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", *others, *CI_FORMATS]),
        default="text",
        show_default=True,
        help=help_text,
    )


def _emit_ci(fmt: str, results: Results) -> None:
    """Print ``results`` in the CI format ``fmt``; under GitHub Actions, ``github`` also
    appends the verdict and the failing checks to the job's step summary."""
    from migcompat import ci
    from migcompat.ci import github

    click.echo(ci.render(fmt, results), nl=False)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if fmt == "github" and summary:
        try:
            with open(summary, "a", encoding="utf-8") as outfile:
                outfile.write(github.step_summary(results) + "\n")
        except OSError as error:
            click.echo(f"migcompat: warning: cannot append to $GITHUB_STEP_SUMMARY: {error.strerror}", err=True)


#: ``--history``: earlier runs whose trend the HTML report draws.
_HISTORY_OPTION = click.option(
    "--history",
    "history_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="An earlier run's matrix.json (repeatable): the HTML report draws the trend over them.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="migcompat")
def cli() -> None:
    """Compatibility test harness and fuzzer for VM migration streams.

    Exit codes: 0 success, 1 incompatibility found, 2 usage or input error.
    """


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["auto", "qemu", "ber"]), default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the decoded stream as JSON.")
@click.option(
    "--no-vmdesc",
    is_flag=True,
    help="Do not decode sections with the stream's vmdesc descriptions: only size them (kept opaque).",
)
def inspect(file: str, fmt: str, as_json: bool, no_vmdesc: bool) -> None:
    """Decode a migration stream and show its sections and every field.

    Sections of devices migcompat models (slirp, virtio) are decoded by those
    models; every other VMState section by the description QEMU wrote in the
    stream's vmdesc trailer.
    """
    data = _read(file)
    try:
        fmt, decoded = inspect_stream(data, cast(Literal["auto", "qemu", "ber"], fmt), decode_vmdesc=not no_vmdesc)
    except MigcompatError as error:
        _fail(f"{file}: {error}")
        return
    if as_json:
        click.echo(json.dumps(render.stream_json(fmt, decoded, len(data)), indent=2))
    else:
        click.echo(render.stream_text(fmt, decoded, len(data)))
        if no_vmdesc and fmt == "qemu":
            click.echo("(--no-vmdesc: sections without a device model are opaque, sized by the vmdesc trailer)")


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--against",
    "against",
    type=click.Path(dir_okay=False),
    required=True,
    help="A stream the destination saved in the destination configuration (migcompat qemu capture).",
)
@click.option(
    "--dump",
    "dump",
    type=click.Path(dir_okay=False),
    help="The destination release's -dump-vmstate: minimum versions, field versions, every subsection it knows.",
)
@click.option(
    "--minimums",
    "minimums",
    type=click.Path(dir_okay=False),
    help="The destination release's minimum-versions table (migcompat qemu minimums), for sections the dump lacks.",
)
@click.option("--release", "release", help="The destination's QEMU release (7.2): the virtio features it offers.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
def check(file: str, against: str, dump: str | None, minimums: str | None, release: str | None, as_json: bool) -> None:
    """Say what a destination QEMU will do with a stream, without running it.

    The stream is read the way QEMU's loader reads it, with the destination's
    devices: each section loads or is refused (in QEMU's words), and a section
    after a refusal is not read. Exit 0 when the destination loads the stream,
    1 when it refuses it (or migcompat cannot tell offline, with the reason),
    2 for bad input.
    """
    data = _read(file)
    try:
        destination = read_destination(
            Path(against), Path(dump) if dump else None, release, Path(minimums) if minimums else None
        )
        verdict = check_stream(data, destination)
    except MigcompatError as error:
        _fail(str(error))
        return
    if as_json:
        click.echo(json.dumps({"stream": file, "against": against, **verdict.as_json()}, indent=2))
    else:
        click.echo(render.check_text(file, verdict, destination))
    sys.exit(EXIT_OK if verdict.loads else EXIT_INCOMPATIBLE)


@cli.command()
@click.argument("source", type=click.Path(dir_okay=False))
@click.argument("target", type=click.Path(dir_okay=False))
@click.option("--to", "to", type=click.Choice(["qemu", "ber"]), required=True, help="Wire format to write.")
def convert(source: str, target: str, to: str) -> None:
    """Convert a whole stream between QEMU's format and BER."""
    data = _read(source)
    try:
        out = convert_stream(data, cast(Literal["qemu", "ber"], to))
    except MigcompatError as error:
        _fail(f"{source}: {error}")
        return
    try:
        _write_atomically(target, out)
    except OSError as error:
        _fail(f"cannot write {target}: {error.strerror}")
    click.echo(f"wrote {len(out)} bytes ({to}) to {target}")


@cli.command()
@click.option("--device", "device_names", multiple=True, help="Only this device (repeatable).")
@click.option(
    "--pairing", "pairings", multiple=True, help="Only this pairing (repeatable), e.g. ber or 'qemufile>ber>qemufile'."
)
@click.option("--source", "sources", multiple=True, help="Only this source release (repeatable).")
@click.option("--destination", "destinations", multiple=True, help="Only this destination release (repeatable).")
@click.option(
    "--examples", type=click.IntRange(1, 100_000), default=None, help="Generated states per cell [default: 10]."
)
@click.option("--seed", type=int, default=None, help="Seed of the generated states [default: 20111].")
@click.option("--jobs", type=click.IntRange(1, 256), default=None, help="Worker processes [default: all cores].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="reports", show_default=True)
@click.option(
    "--waivers",
    "waiver_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Waiver file [default: waivers.toml when it exists].",
)
@click.option("--no-shrink", is_flag=True, help="Do not shrink failing examples.")
@click.option("--no-mutants", is_flag=True, help="Skip the mutation matrix (cells and negotiation only).")
@click.option(
    "--qemu-dump",
    "qemu_dumps",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A QEMU -dump-vmstate file, one per release, oldest first (two or more): run every device class they "
    "describe instead of the reference models.",
)
@click.option(
    "--real", is_flag=True, help="Run real migrations between the installed QEMU releases (migcompat qemu releases)."
)
@click.option("--config", "configs", multiple=True, help="With --real: only this machine config (repeatable).")
@click.option(
    "--machine",
    "machines",
    multiple=True,
    help="Only the cells run with this machine type (repeatable); a cell without one runs the source's own.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1.0, max=3600.0),
    default=60.0,
    show_default=True,
    help="With --real: seconds a QEMU gets before it is considered hung and killed.",
)
@click.option(
    "--shard",
    default=None,
    metavar="K/N",
    help="Run the K-th of N deterministic shares of the cells and mutants (merge: migcompat report merge).",
)
@_format_option("What to print besides the reports: github annotations on the descriptions, SARIF 2.1.0 or JUnit XML.")
@_HISTORY_OPTION
def matrix(
    device_names: tuple[str, ...],
    pairings: tuple[str, ...],
    sources: tuple[str, ...],
    destinations: tuple[str, ...],
    examples: int | None,
    seed: int | None,
    jobs: int | None,
    out_dir: str,
    waiver_file: str | None,
    no_shrink: bool,
    no_mutants: bool,
    qemu_dumps: tuple[str, ...],
    real: bool,
    configs: tuple[str, ...],
    machines: tuple[str, ...],
    timeout: float,
    shard: str | None,
    fmt: str,
    history_files: tuple[str, ...],
) -> None:
    """Run the compatibility matrix and write its reports.

    Every device x source release x destination release x machine type x
    visitor pairing: each source release with its own machine type, which a
    destination that does not know it refuses, and with every machine type of
    QEMU 5.2, 7.2 and 10.0 both releases know; exit 0 when every cell matches
    its expectation, 1 when not. With
    --qemu-dump, the devices are every section of the dumps (`qemu:<section>`),
    the releases the dumps, and a cell's expectation the static checker's
    verdict on the two dumps. With --real, real migrations between the
    installed QEMU releases, for each machine type and config, beside the
    model's prediction and the static checker's verdict; exit 0 when they
    agree and no migration corrupted a field, 1 when not.
    """
    if real:
        given = {
            "--device": device_names,
            "--pairing": pairings,
            "--qemu-dump": qemu_dumps,
            "--examples": examples,
            "--seed": seed,
            "--waivers": waiver_file,
            "--history": history_files,
            "--format": fmt != "text",
        }
        clash = [name for name, value in given.items() if value]
        if clash:
            _fail(f"{clash[0]} does not apply to --real")
        _real_matrix(sources, destinations, configs, machines, jobs, timeout, out_dir, shard)
        return
    if configs:
        _fail("--config applies to --real only")
    from migcompat.compat import cell
    from migcompat.compat import matrix as matrix_module
    from migcompat.compat import shard as shard_module

    waivers: frozenset[str] = frozenset()
    earlier = _earlier_runs(history_files)
    with contextlib.ExitStack() as scope:
        try:
            if waiver_file is not None or Path("waivers.toml").exists():
                waivers = matrix_module.load_waivers(Path(waiver_file or "waivers.toml"))
            if qemu_dumps:
                device_names = _dump_devices(scope, qemu_dumps, device_names)
            config = cell.MatrixConfig(
                devices=device_names,
                pairings=pairings or tuple(cell.PAIRING_PATHS),
                sources=sources,
                destinations=destinations,
                examples=examples or cell.DEFAULT_EXAMPLES,
                seed=cell.DEFAULT_SEED if seed is None else seed,
                jobs=jobs or matrix_module.default_jobs(),
                waivers=waivers,
                shrink=not no_shrink,
                mutants=not no_mutants,
                machines=machines,
                shard=shard_module.parse(shard) if shard else (0, 1),
            )
            specs = matrix_module.shard_cells(config)
        except MigcompatError as error:
            _fail(str(error))
            return
        with Progress("matrix", total=len(specs)) as progress:
            results = matrix_module.run_matrix(
                config, progress=lambda cell: progress.step(note=cell.key), phase=progress.note
            )
        dumps = {dumps_label(path): Path(path) for path in qemu_dumps}
        _finish_matrix(results, out_dir, fmt, dumps, earlier)


def _earlier_runs(paths: tuple[str, ...]) -> list[MatrixResults]:
    """The matrix.json files of ``--history``; an unreadable one is a usage error."""
    from migcompat.compat.results import MatrixResults

    return [results for _, results in _read_shards(_json_files(paths), MatrixResults.from_json, "matrix.json")]


def _json_files(paths: tuple[str, ...]) -> list[tuple[str, Any]]:
    documents = []
    for name in paths:
        try:
            documents.append((name, json.loads(_read(name))))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            _fail(f"{name}: not JSON: {error}")
    return documents


def dumps_label(path: str) -> str:
    from migcompat.compat import dumps

    return dumps.label(Path(path))


def _finish_matrix(
    results: MatrixResults,
    out_dir: str,
    fmt: str,
    dumps: dict[str, Path] | None = None,
    earlier: list[MatrixResults] | None = None,
) -> None:
    """Write every report of ``results``, print the verdict (in ``fmt``) and exit with it."""
    from migcompat import report
    from migcompat.compat import matrix as matrix_module

    if earlier:
        report.with_history(results, earlier)
    try:
        written = report.write_all(results, Path(out_dir))
    except OSError as error:
        _fail(f"cannot write reports to {out_dir}: {error.strerror}")
        return
    totals = results.outcome_totals()
    headline = f"{len(results.cells)} cells in {results.meta['seconds']} s: " + ", ".join(
        f"{count} {outcome}" for outcome, count in sorted(totals.items())
    )
    if fmt in CI_FORMATS:
        from migcompat.ci import collect

        verdict = "passed" if results.passed else f"{len(results.failures)} failing cells"
        _emit_ci(fmt, collect.of_matrix(results, collect.Descriptions(dumps), f"{headline}; {verdict}"))
        sys.exit(EXIT_OK if results.passed else EXIT_INCOMPATIBLE)
    click.echo(headline)
    for line in matrix_module.iter_failures(results):
        click.echo(f"FAIL {line}")
    for key in results.meta.get("unused_waivers", []):
        click.echo(f"note: waiver for {key} matched no cell")
    click.echo(
        f"static checker: {len(results.agreement)} verdicts compared with the dynamic outcome, "
        f"{len(results.disagreements)} disagree (listed with the reason in the reports)"
    )
    click.echo("reports: " + ", ".join(str(path) for path in written))
    sys.exit(EXIT_OK if results.passed else EXIT_INCOMPATIBLE)


@cli.group("report")
def report_group() -> None:
    """Work with written reports: merge the shards of a matrix run."""


@report_group.command("merge")
@click.argument("shards", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="reports", show_default=True)
@_format_option("What to print besides the reports, as for migcompat matrix.")
@_HISTORY_OPTION
def report_merge(shards: tuple[str, ...], out_dir: str, fmt: str, history_files: tuple[str, ...]) -> None:
    """Merge the matrix.json (or real.json) of every shard of a run (migcompat matrix [--real]
    --shard K/N) into one and write its reports.

    Exit 0 when the merged matrix passes, 1 when not, 2 when a file is
    unreadable, not a shard, of another run, given twice, or a shard is missing.
    """
    from migcompat.compat import shard as shard_module
    from migcompat.compat.real import RealResults
    from migcompat.compat.results import MatrixResults

    documents = _json_files(shards)
    earlier = _earlier_runs(history_files)
    kinds = {isinstance(document, dict) and document.get("kind") == "real-matrix" for _, document in documents}
    if len(kinds) > 1:
        _fail("give the shards of one run: these mix matrix.json and real.json files")
    is_real = kinds == {True}
    if is_real and (fmt != "text" or earlier):
        _fail("--format and --history apply to matrix.json shards; the real matrix writes real-junit.xml")
    try:
        if is_real:
            _finish_real(shard_module.merge_real(_read_shards(documents, RealResults.from_json, "real.json")), out_dir)
        merged = shard_module.merge(_read_shards(documents, MatrixResults.from_json, "matrix.json"))
    except MigcompatError as error:
        _fail(str(error))
        return
    _finish_matrix(merged, out_dir, fmt, earlier=earlier)


_Shard = TypeVar("_Shard")


def _read_shards(
    documents: list[tuple[str, Any]], reader: Callable[[dict[str, Any]], _Shard], kind: str
) -> list[tuple[str, _Shard]]:
    parts = []
    for name, document in documents:
        try:
            parts.append((name, reader(document)))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            _fail(f"{name}: not a {kind}: {type(error).__name__}: {error}")
    return parts


def _real_matrix(
    sources: tuple[str, ...],
    destinations: tuple[str, ...],
    configs: tuple[str, ...],
    machines: tuple[str, ...],
    jobs: int | None,
    timeout: float,
    out_dir: str,
    shard: str | None,
) -> None:
    from migcompat.compat import real
    from migcompat.compat import shard as shard_module
    from migcompat.qemu import releases

    try:
        installed = releases.installed()
        for name in (*sources, *destinations):
            if name not in {release.name for release in installed}:
                releases.find(name)  # unknown names are named as such
                raise UsageError(f"QEMU release {name} is not installed ({releases.find(name).install_hint()})")
        with Progress("real matrix") as progress:
            results = real.run_real(
                installed,
                configs=configs or real.DEFAULT_CONFIGS,
                machines=machines,
                sources=sources,
                destinations=destinations,
                jobs=jobs or 2,
                timeout=timeout,
                progress=lambda line: progress.step(note=line),
                shard=shard_module.parse(shard) if shard else (0, 1),
            )
    except MigcompatError as error:
        _fail(str(error))
        return
    _finish_real(results, out_dir)


def _finish_real(results: RealResults, out_dir: str) -> None:
    """Write the real matrix's reports, print its verdict and exit with it."""
    from migcompat.report.real import write_real

    try:
        written = write_real(results, Path(out_dir))
    except OSError as error:
        _fail(f"cannot write reports to {out_dir}: {error.strerror}")
        return
    from migcompat import report

    refreshed = report.refresh_html(Path(out_dir))
    if refreshed is not None:
        written.append(refreshed)
    click.echo(results.headline())
    for name, why in results.skipped.items():
        click.echo(f"SKIPPED release {name}: {why}")
    shard = results.meta.get("shard", "1/1")
    if shard != "1/1":
        # A disagreement is explained by the baselines, which may be another shard's.
        click.echo(f"shard {shard}: the verdict is the merge's (migcompat report merge)")
        click.echo("reports: " + ", ".join(str(path) for path in written))
        sys.exit(EXIT_OK)
    for cell in (cell for cell in results.cells if cell.fails):
        click.echo(f"FAIL {cell.key}: {cell.failure}")
    click.echo("reports: " + ", ".join(str(path) for path in written))
    sys.exit(EXIT_OK if results.passed else EXIT_INCOMPATIBLE)


def _dump_devices(scope: contextlib.ExitStack, paths: tuple[str, ...], names: tuple[str, ...]) -> tuple[str, ...]:
    """The devices of QEMU dumps, registered while ``scope`` lasts; the ones asked
    for (all by default), after saying which sections cannot run."""
    from migcompat.compat import dumps

    dumped, skipped = scope.enter_context(dumps.use(paths))
    chosen = tuple(dumps.qualified(name) for name in names) or dumped
    for name in chosen:
        if name in skipped:
            raise UsageError(f"{name} cannot run: {skipped[name]}")
    if skipped and chosen == dumped:
        click.echo(
            f"{len(dumped)} device classes from {len(paths)} dumps; {len(skipped)} not run (fields of a size the "
            f"dump does not give differ between releases): {', '.join(sorted(skipped))}",
            err=True,
        )
    return chosen


@cli.command("devices")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable output.")
def list_devices(as_json: bool) -> None:
    """List the reference devices and their releases, with the machine types
    each release saves for (its own first) where the state depends on one."""
    from migcompat import devices

    registry = devices.registry()

    def machine_types(device: devices.Device, release: devices.Release) -> list[str]:
        return [device.machine_of(form, form.machine) for form in device.forms(release) if device.machines]

    if as_json:
        listing = [
            {
                "device": device.name,
                "summary": device.summary,
                "releases": [
                    {
                        "name": release.name,
                        "version_id": release.version_id,
                        "minimum_version_id": release.description.minimum_version_id,
                        "notes": release.notes,
                        "machines": machine_types(device, release),
                    }
                    for release in device.releases
                ],
            }
            for device in registry.values()
        ]
        click.echo(json.dumps(listing, indent=2))
        return
    for device in registry.values():
        click.echo(f"{device.name}: {device.summary}")
        for release in device.releases:
            click.echo(f"  {release.name:<10} v{release.version_id:<3} {release.notes}")
            if device.machines:
                click.echo(f"  {'':<10} {'':<4} saved for: {', '.join(machine_types(device, release))}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable results.")
@click.option("--quick", is_flag=True, help="Fewer rounds and smaller series: a smoke run, not a measurement.")
@click.option("--workload", "workloads", multiple=True, help="Only this workload (repeatable), e.g. virtio-1024.")
@click.option("--codec", "codecs", multiple=True, help="Only this codec (repeatable), e.g. ber.")
@click.option("--memory", is_flag=True, help="Also measure peak memory decoding hostile inputs.")
@click.option("--scaling", is_flag=True, help="Also measure time vs. size and matrix time vs. examples.")
@click.option(
    "--streams",
    "streams_dir",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Also time split / inspect / convert of the whole captures (*.bin) in this directory, e.g. corpora/qemu-7.2.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="reports",
    show_default=True,
    help="Where --scaling writes scaling.json and scaling.svg.",
)
def bench(
    as_json: bool,
    quick: bool,
    workloads: tuple[str, ...],
    codecs: tuple[str, ...],
    memory: bool,
    scaling: bool,
    streams_dir: str | None,
    out_dir: str,
) -> None:
    """Benchmark the codecs side by side and print ops/s, MB/s, sizes and ratios.

    Workloads: virtio-8, virtio-64, virtio-1024, slirp-10, slirp-1000. Codecs:
    dict, qemufile, qemufile-walker, ber (native where built), ber-pure,
    ber-walker, pyasn1, asn1tools, asn1crypto, cbor2, struct. The first line
    says which BER path runs (MIGCOMPAT_PURE_PYTHON=1 forces the pure one).
    """
    from migcompat.perf import bench as benchmark

    try:
        code = benchmark.main(
            as_json,
            quick,
            list(workloads) or None,
            list(codecs) or None,
            memory=memory,
            scaling=scaling,
            streams=Path(streams_dir) if streams_dir is not None else None,
            out_dir=Path(out_dir),
        )
    except MigcompatError as error:
        _fail(str(error))
        return
    except OSError as error:
        _fail(f"cannot write to {out_dir}: {error.strerror}")
        return
    sys.exit(code)


@cli.command("fuzz")
@click.argument("target", required=False)
@click.option("--time", "seconds", type=click.IntRange(1), default=None, help="Seconds per target [default: 60].")
@click.option("--runs", type=click.IntRange(1), default=None, help="Executions per job instead of a time.")
@click.option("--jobs", type=click.IntRange(1, 256), default=1, show_default=True, help="Fuzzing processes.")
@click.option("--seed", type=int, default=None, help="libFuzzer seed of the first job.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable results.")
@click.option("--make-seeds", is_flag=True, help="(Re)write the seed corpora and the fuzz/ dictionaries and options.")
@click.option("--corpora", type=click.Path(file_okay=False), default="corpora", show_default=True)
@click.option("--work", type=click.Path(file_okay=False), default=".fuzz", show_default=True, help="Work corpora.")
@click.option(
    "--instrument-native",
    is_flag=True,
    help="Fuzz on a clang build of the native BER path with coverage (fuzzer-no-link) and UBSan (needs clang).",
)
def fuzz(
    target: str | None,
    seconds: int | None,
    runs: int | None,
    jobs: int,
    seed: int | None,
    as_json: bool,
    make_seeds: bool,
    corpora: str,
    work: str,
    instrument_native: bool,
) -> None:
    """Fuzz TARGET (or 'all') and print executions, exec/s, coverage, new corpus entries and findings.

    Findings are minimized and saved under CORPORA/regressions/TARGET/ with the
    command that reproduces them; exit 1 when there is one, 2 for an unknown
    target or when atheris is not installed.
    """
    from migcompat.fuzzing import command

    try:
        if make_seeds:
            click.echo(command.make_seeds(Path(corpora), Path("fuzz")))
            if target is None:
                return
        names = command.target_names(target)
        summaries = command.fuzz(names, seconds, runs, jobs, seed, Path(corpora), Path(work), instrument_native)
    except MigcompatError as error:
        _fail(str(error))
        return
    if as_json:
        documents = [summary.as_json() for summary in summaries]
        click.echo(json.dumps(documents[0] if target != "all" else documents, indent=2))
    else:
        for summary in summaries:
            click.echo(summary.text())
    sys.exit(EXIT_INCOMPATIBLE if any(summary.findings for summary in summaries) else EXIT_OK)


# -- releases and golden streams ----------------------------------------------------------

_GOLDEN_DIRECTORY = "corpora/golden"


@cli.command("negotiate")
@click.argument("source")
@click.argument("destination")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable output.")
@click.option(
    "--machine",
    default="",
    help="The machine type both run (default: each device release's own), e.g. pc-i440fx-5.2.",
)
def negotiate_releases(source: str, destination: str, as_json: bool, machine: str) -> None:
    """Agree on a wire format between two hypervisor releases and load every device.

    Prints the protocol (the first format in SOURCE's preference order that
    DESTINATION speaks) and, per device, the outcome of loading SOURCE's device
    release at DESTINATION's, both under --machine (a destination that does
    not know the machine type refuses). Exit 0 when every device does what it
    promises (ok, or refused where the device release is newer), 1 when one
    does not or the releases share no wire format, 2 for an unknown release or
    a machine type the source does not know.
    """
    from migcompat.compat import negotiate
    from migcompat.devices import machines, releases
    from migcompat.outcomes import Outcome

    try:
        sender, receiver = releases.get(source), releases.get(destination)
        if machine:
            machines.parse(machine)
        agreement = negotiate.negotiate(sender, receiver, machine=machine)
    except MigcompatError as error:
        _fail(str(error))
        return
    if as_json:
        document = {
            "source": {"name": sender.name, "formats": list(sender.formats), "devices": dict(sender.devices)},
            "destination": {
                "name": receiver.name,
                "formats": list(receiver.formats),
                "devices": dict(receiver.devices),
            },
            "protocol": agreement.protocol,
            "machine": machine,
            "worst": agreement.worst.value,
            "compatible": agreement.compatible,
            "devices": [
                {
                    "device": device.device,
                    "source": device.source,
                    "destination": device.destination,
                    "outcome": device.outcome.value,
                    "expected": device.expected.value,
                    "matches": device.matches,
                    "message": device.message,
                    "path": device.path,
                }
                for device in agreement.devices
            ],
        }
        click.echo(json.dumps(document, indent=2))
    else:
        speaks = (
            f"{sender.name} speaks {', '.join(sender.formats)}; {receiver.name} speaks {', '.join(receiver.formats)}"
        )
        if agreement.protocol is None:
            click.echo(f"{sender.name} -> {receiver.name}: no common wire format ({speaks})")
        else:
            under = f", machine type {machine}" if machine else ""
            click.echo(f"{sender.name} -> {receiver.name}: protocol {agreement.protocol}{under} ({speaks})")
        width = max((len(device.device) for device in agreement.devices), default=0)
        for device in agreement.devices:
            releases_shown = f"{device.source} -> {device.destination or '(none)'}"
            line = f"  {device.device:<{width}}  {releases_shown:<22} {device.outcome.value}"
            if not device.matches:
                line += f" (expected {device.expected.value})"
            if device.outcome is not Outcome.OK and device.message:
                line += f": {device.message}" + (f" at {device.path}" if device.path else "")
            click.echo(line)
        click.echo("compatible: every device does what it promises" if agreement.compatible else "INCOMPATIBLE")
    sys.exit(EXIT_OK if agreement.compatible else EXIT_INCOMPATIBLE)


def _write_corpus(
    build: Callable[[], dict[str, bytes]],
    write_corpus: Callable[[Path, dict[str, bytes]], list[str]],
    target: Path,
    what: str,
) -> None:
    """Write the files ``build`` makes to ``target``, remove the ones it no longer makes, and say so."""
    try:
        files = build()
        removed = write_corpus(target, files)
    except MigcompatError as error:
        _fail(str(error))
        return
    except OSError as error:
        _fail(f"cannot write {target}: {error.strerror}")
        return
    click.echo(f"wrote {len(files)} {what} ({sum(map(len, files.values()))} bytes) to {target}")
    for name in removed:
        click.echo(f"removed {name}")


@cli.command("golden")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=_GOLDEN_DIRECTORY, show_default=True)
def write_golden(out_dir: str) -> None:
    """Write the golden streams: every fixed state of every device release, in every wire format.

    Deterministic: the same code writes the same bytes. Golden files the code no
    longer writes (a release or state that is gone) are removed.
    """
    from migcompat.compat import golden

    _write_corpus(golden.build, golden.write_corpus, Path(out_dir), "files")


@cli.command("gate")
@click.option("--golden", "golden_dir", type=click.Path(file_okay=False), default=_GOLDEN_DIRECTORY, show_default=True)
@_format_option("github: annotations on the golden files; sarif: SARIF 2.1.0; junit: JUnit XML.")
def golden_gate(golden_dir: str, fmt: str) -> None:
    """Load every golden stream with the current code at every current release of its device.

    Exit 0 when every load matches the device's expectation and every release
    has its golden files, 1 when not (each failure is printed), 2 when the
    golden directory is missing or unreadable.
    """
    from migcompat.compat import golden

    try:
        files = golden.read_corpus(Path(golden_dir))
        with Progress("golden gate", total=sum(name.endswith(".json") for name in files)) as progress:
            result = golden.gate(files, progress=lambda stem: progress.step(note=stem))
    except MigcompatError as error:
        _fail(str(error))
        return
    totals = result.totals()
    loads = [load for cell in result.cells for load in cell.loads]
    headline = (
        f"golden gate: {len({load.file for load in loads})} streams, {len(loads)} loads at every current release, "
        f"{len(result.cells)} cells: " + ", ".join(f"{count} {outcome}" for outcome, count in sorted(totals.items()))
    )
    failed = len(result.problems) + len(result.failures)
    verdict = "passed" if result.passed else f"{failed} failures"
    if fmt in CI_FORMATS:
        from migcompat.ci import collect

        _emit_ci(fmt, collect.of_gate(result, Path(golden_dir), f"{headline}; {verdict}"))
        sys.exit(EXIT_OK if result.passed else EXIT_INCOMPATIBLE)
    click.echo(headline)
    for problem in result.problems:
        click.echo(f"FAIL {problem}")
    for cell in result.failures:
        click.echo(f"FAIL {golden.describe_failure(cell)}")
    click.echo(verdict)
    sys.exit(EXIT_OK if result.passed else EXIT_INCOMPATIBLE)


# -- schemas and the static checker ------------------------------------------------------


@cli.command("schema")
@click.argument("spec", required=False)
@click.option("--all", "every", is_flag=True, help="Write every device release and hypervisor release to --out.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Directory for --all [default: corpora/schemas].",
)
def schema(spec: str | None, every: bool, out_dir: str | None) -> None:
    """Print the JSON Schema of SPEC: DEVICE[@RELEASE] (newest when no release) or a hypervisor release.

    With --all, write one file per device per release (DIR/DEVICE/RELEASE.json)
    and one per hypervisor release (DIR/releases/NAME.json), and remove the
    schema files the code no longer writes.
    """
    from migcompat.schema import dump as schema_dump
    from migcompat.schema.visitor import dumps

    if every == (spec is not None):
        _fail("give DEVICE[@RELEASE] (or a hypervisor release), or --all")
    if out_dir is not None and not every:
        _fail("--out goes with --all; a single schema is printed")
    if spec is not None:
        try:
            click.echo(dumps(schema_dump.resolve(spec)), nl=False)
        except MigcompatError as error:
            _fail(str(error))
        return
    target = Path(out_dir or schema_dump.DEFAULT_DIRECTORY)
    _write_corpus(schema_dump.build, schema_dump.write_corpus, target, "schemas")


@cli.command("diff")
@click.argument("old")
@click.argument("new")
@_format_option(
    "github: workflow-command annotations on the schema lines; sarif: SARIF 2.1.0; junit: JUnit XML.", "json"
)
@click.option(
    "--direction",
    type=click.Choice(["forward", "backward", "both"]),
    default="forward",
    show_default=True,
    help="forward: can NEW load what OLD writes; backward: the reverse.",
)
@click.option(
    "--wire",
    type=click.Choice(["all", "qemufile", "ber"]),
    default="all",
    show_default=True,
    help="Count only findings that break this wire format.",
)
@click.option(
    "--machine",
    default="",
    help="Resolve release names under this machine type, as a migration runs both sides (e.g. pc-i440fx-5.2).",
)
def diff(old: str, new: str, fmt: str, direction: str, wire: str, machine: str) -> None:
    """Compare two schema dumps and report every incompatibility, with its rule and where it is.

    OLD and NEW are schema files -- migcompat's (from `migcompat schema`, one
    device or a whole hypervisor release) or QEMU's `-dump-vmstate` JSON -- or
    names: DEVICE@RELEASE[@MACHINE], or a hypervisor release, each under its
    own machine type unless --machine names the one both run (a migration
    between two releases runs the source's). Exit 0 when compatible, 1
    when a finding breaks the wire (WIRE, WIRE_LEGACY, WIRE_BER levels; ADVISORY
    never does), 2 for unreadable input.
    """
    from migcompat.schema import diff as schema_diff
    from migcompat.schema import input as schema_input
    from migcompat.schema import report as schema_report
    from migcompat.schema.rules import WIRES

    directions = schema_diff.DIRECTIONS if direction == "both" else (direction,)
    wires = WIRES if wire == "all" else (wire,)
    try:
        before, after = schema_input.load_pair(old, new, machine)
    except MigcompatError as error:
        _fail(str(error))
        return
    report = schema_diff.compare(before, after, directions)
    if fmt in CI_FORMATS:
        from migcompat.ci import collect

        summary = schema_report.text(report, old, new, wires).rsplit("\n", 1)[-1]
        _emit_ci(fmt, collect.of_diff(report, old, new, (before, after), wires, summary, machine))
    elif fmt == "json":
        click.echo(json.dumps(schema_report.document(report, old, new, before.source, wires), indent=2))
    else:
        click.echo(schema_report.text(report, old, new, wires))
    sys.exit(EXIT_OK if report.compatible(wires) else EXIT_INCOMPATIBLE)


# -- real QEMU ------------------------------------------------------------------


@cli.group("qemu")
def qemu_group() -> None:
    """Run real QEMU releases: install them, capture a stream, load one, dump VMState descriptions.

    Releases 5.2, 7.2 and 10.0 are built in (7.2 is the host's qemu-system-x86
    package, 5.2 and 10.0 Debian roots that `migcompat qemu install` builds);
    `migcompat qemu add` records a QEMU build of your own.
    """


def _peer_config(name: str) -> Any:
    from migcompat.qemu import peer

    if name not in peer.CONFIGS:
        _fail(f"unknown machine config {name!r} (known: {', '.join(peer.CONFIGS)})")
    return peer.CONFIGS[name]


def _peer_call(call: Callable[[], Any]) -> Any:
    """Run one peer operation; QEMU's failures (not installed, hung, exited) are usage/input errors."""
    try:
        return call()
    except MigcompatError as error:
        _fail(" | ".join(str(error).splitlines()))
    except OSError as error:
        _fail(f"{error.filename or 'qemu'}: {error.strerror}")
    raise AssertionError("unreachable: _fail exits")


_TIMEOUT = click.option(
    "--timeout",
    type=click.FloatRange(min=1.0, max=3600.0),
    default=30.0,
    show_default=True,
    help="Seconds QEMU gets before it is considered hung and killed.",
)
_RELEASE = click.option(
    "--release", "release", default="7.2", show_default=True, help="The QEMU release to run (migcompat qemu releases)."
)
_MACHINE = click.option("--machine", default=None, help="Machine type (-M) instead of the config's own.")


@qemu_group.command("configs")
@click.option("--json", "as_json", is_flag=True, help="Print the configs as JSON.")
def qemu_configs(as_json: bool) -> None:
    """List the named machine configs capture and load start QEMU with."""
    from migcompat.qemu import peer

    configs = {name: config.command_line() for name, config in peer.CONFIGS.items()}
    if as_json:
        click.echo(json.dumps(configs, indent=2))
        return
    for name, args in configs.items():
        click.echo(f"{name:<26} qemu-system-x86_64 {' '.join(args)}")
    if any(peer.IMAGE_TOKEN in arg for args in configs.values() for arg in args):
        click.echo(f"({peer.IMAGE_TOKEN}: a fresh raw image of {peer.IMAGE_SIZE} zero bytes, removed afterwards)")


@qemu_group.command("releases")
@click.option("--json", "as_json", is_flag=True, help="Print the releases as JSON.")
@click.option("--all", "show_all", is_flag=True, help="Also list the releases that are not installed.")
def qemu_releases(as_json: bool, show_all: bool) -> None:
    """List the installed QEMU releases: version, how each is started, its machine types."""
    from migcompat.qemu import releases

    rows = []
    for release in _peer_call(releases.registry).values():
        entry: dict[str, Any] = {"name": release.name, "origin": release.origin, "command": release.argv()}
        if release.is_installed():
            try:
                entry.update(version=release.version(), machines=list(release.machine_types()))
            except MigcompatError as error:
                entry.update(broken=str(error))
        elif show_all:
            entry.update(installed=False, install=release.install_hint())
        else:
            continue
        rows.append(entry)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for entry in rows:
        if "broken" in entry:
            click.echo(f"{entry['name']:<6} BROKEN  {entry['broken']}")
        elif entry.get("installed") is False:
            click.echo(f"{entry['name']:<6} not installed: {entry['install']}")
        else:
            versioned = [name for name in entry["machines"] if name.startswith(("pc-i440fx-", "pc-q35-"))]
            click.echo(
                f"{entry['name']:<6} QEMU {entry['version']:<10} {' '.join(entry['command'])}  ({entry['origin']})"
            )
            click.echo(
                f"       {len(entry['machines'])} machine types, {len(versioned)} of them pc-i440fx-/pc-q35- "
                f"(--json lists them all); {entry['name']}'s own: "
                + " ".join(name for name in versioned if name.endswith(f"-{entry['name']}"))
            )
    if not rows:
        click.echo("no QEMU release is installed (migcompat qemu install)")


@qemu_group.command("install")
@click.option("--release", "names", multiple=True, help="Only this release (repeatable) [default: every built-in one].")
def qemu_install(names: tuple[str, ...]) -> None:
    """Install the built-in QEMU releases that are missing (needs root: apt-get, mmdebstrap)."""
    from migcompat.qemu import releases

    chosen: list[Any] = [_peer_call(partial(releases.find, name)) for name in names or releases.BUILTIN]
    for release in chosen:
        built = _peer_call(partial(releases.install, release))
        state = "installed" if built else "already installed"
        click.echo(f"{release.name:<6} {state}: QEMU {release.version()} ({' '.join(release.argv())})")


@qemu_group.command("add")
@click.argument("name")
@click.option("--binary", required=True, help="The qemu-system-x86_64 to run (inside --root when given).")
@click.option(
    "--root", type=click.Path(file_okay=False, exists=True), default=None, help="Run the binary in this chroot."
)
def qemu_add(name: str, binary: str, root: str | None) -> None:
    """Add a QEMU build of your own as release NAME (it must answer --version)."""
    from migcompat.qemu import releases

    release = _peer_call(lambda: releases.add_release(name, binary, Path(root) if root else None))
    click.echo(f"added release {release.name}: QEMU {release.version()} ({' '.join(release.argv())})")


@qemu_group.command("remove")
@click.argument("name")
def qemu_remove(name: str) -> None:
    """Forget release NAME added with migcompat qemu add."""
    from migcompat.qemu import releases

    _peer_call(lambda: releases.remove_release(name))
    click.echo(f"removed release {name}")


@qemu_group.command("capture")
@click.argument("config")
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
@_RELEASE
@_MACHINE
@_TIMEOUT
def qemu_capture(config: str, out: str, release: str, machine: str | None, timeout: float) -> None:
    """Save the migration stream of a paused VM started with CONFIG to OUT.

    OUT is written only once QEMU reports the migration completed.
    """
    from migcompat.qemu import peer

    chosen = _peer_config(config)
    _peer_call(lambda: peer.capture(chosen, Path(out), release=release, machine=machine, timeout=timeout))
    click.echo(f"wrote {Path(out).stat().st_size} bytes ({config}, QEMU {release}) to {out}")


@qemu_group.command("load")
@click.argument("config")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_RELEASE
@_MACHINE
@_TIMEOUT
def qemu_load(config: str, file: str, release: str, machine: str | None, timeout: float) -> None:
    """Ask a fresh QEMU started with CONFIG whether it accepts the stream FILE.

    Exit 0 when QEMU accepts it, 1 when QEMU rejects it (its message is printed).
    """
    from migcompat.qemu import peer

    chosen = _peer_config(config)
    result = _peer_call(lambda: peer.load(chosen, Path(file), release=release, machine=machine, timeout=timeout))
    if result.accepted:
        click.echo(f"accepted: {file} ({config}, QEMU {release})")
        sys.exit(EXIT_OK)
    click.echo(f"rejected: {file} ({config}, QEMU {release}): {' | '.join(result.message.splitlines())}")
    sys.exit(EXIT_INCOMPATIBLE)


@qemu_group.command("dump-vmstate")
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
@click.option("--machine", default="pc", show_default=True, help="Machine type QEMU is started with.")
@_RELEASE
def qemu_dump_vmstate(out: str, machine: str, release: str) -> None:
    """Write QEMU's JSON description of every device class (-dump-vmstate) to OUT."""
    from migcompat.qemu import peer

    with tempfile.TemporaryDirectory(prefix="migcompat-dump-") as scratch:
        written = Path(scratch) / "vmstate.json"
        _peer_call(lambda: peer.dump_vmstate(written, machine, release=release))
        data = written.read_bytes()
    try:
        _write_atomically(out, data)
    except OSError as error:
        _fail(f"cannot write {out}: {error.strerror}")
    click.echo(f"wrote {len(data)} bytes (-dump-vmstate, machine {machine}, QEMU {release}) to {out}")


@qemu_group.command("minimums")
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
@click.option(
    "--config",
    "configs",
    multiple=True,
    default=("pc-virtio-net", "q35-virtio-net", "microvm-virtio-net", "pc-virtio-blk"),
    show_default=True,
    help="Machine configs whose sections are probed (repeatable).",
)
@_RELEASE
@_TIMEOUT
def qemu_minimums(out: str, configs: tuple[str, ...], release: str, timeout: float) -> None:
    """Ask a QEMU release the minimum version of every section it writes; write the table to OUT.

    One load per section: the section at version 0, and QEMU's answer "incoming
    version_id 0 is too old for local minimum version_id N". migcompat check
    reads the table (--minimums) for the sections -dump-vmstate does not list.
    """
    from migcompat.qemu import minimums

    for name in configs:
        _peer_config(name)
    table = _peer_call(lambda: minimums.probe(release, configs, timeout=timeout))
    try:
        minimums.write(Path(out), release, table)
    except OSError as error:
        _fail(f"cannot write {out}: {error.strerror}")
    click.echo(
        f"wrote the minimum versions of {len(table.minimums)} sections, and the field versions of "
        f"{len(table.fields_since)} that load at older versions (QEMU {release}), to {out}"
    )


@qemu_group.command("agree")
@click.option(
    "--release",
    "release_names",
    multiple=True,
    help="A QEMU release whose committed captures are mutated (repeatable; default: every installed one).",
)
@click.option("--mutants", "count", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--jobs", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--corpora", default="corpora", show_default=True, type=click.Path(file_okay=False))
@click.option("--keep", "keep_dir", type=click.Path(file_okay=False), help="Write each disagreement as a case here.")
@click.option("--json", "as_json", is_flag=True, help="Print every outcome as JSON.")
@click.option("--timeout", type=click.FloatRange(min=1.0), default=8.0, show_default=True)
@click.option(
    "--pairs", "with_pairs", is_flag=True, help="Also load every committed capture into every other's configuration."
)
def qemu_agree(
    with_pairs: bool,
    release_names: tuple[str, ...],
    count: int,
    seed: int,
    jobs: int,
    corpora: str,
    keep_dir: str | None,
    as_json: bool,
    timeout: float,
) -> None:
    """Mutate the committed captures; load each mutant into real QEMU and into migcompat check; count agreement.

    Exit 0 when every verdict agrees, 1 when one does not (each is listed), 2 when QEMU cannot run.
    """
    from migcompat.compat import agree
    from migcompat.qemu import peer

    names = list(release_names) or [name for name in ("5.2", "7.2", "10.0") if peer.installed(name)]
    if not names:
        _fail("no QEMU release is installed (migcompat qemu install)")
    campaign = _peer_call(
        lambda: agree.run(Path(corpora), names, count, seed=seed, jobs=jobs, timeout=timeout, progress=_progress_line)
    )
    if with_pairs:
        paired = _peer_call(lambda: agree.pairs(Path(corpora), names, jobs=jobs, timeout=timeout))
        campaign.outcomes += paired.outcomes
        campaign.seconds += paired.seconds
    if as_json:
        click.echo(json.dumps([agree.case_json(outcome) for outcome in campaign.outcomes], indent=1))
    else:
        for line in agree.summary(campaign):
            click.echo(line)
        for outcome in campaign.disagreements:
            click.echo(f"  {outcome.label}: {outcome.mutant.base.name} {outcome.mutant.kind} {outcome.mutant.what}")
            click.echo(f"    QEMU {outcome.qemu}: {_one_line(outcome.qemu_message)}")
            click.echo(f"    migcompat {outcome.ours}: {outcome.our_reason}")
    if keep_dir is not None:
        written = agree.keep(campaign, Path(keep_dir))
        click.echo(f"kept {len(written)} cases in {keep_dir}")
    sys.exit(EXIT_OK if not campaign.disagreements else EXIT_INCOMPATIBLE)


def _one_line(message: str) -> str:
    return " | ".join(line.removeprefix("qemu-system-x86_64: ") for line in message.splitlines() if line.strip())


def _progress_line(line: str) -> None:
    if sys.stderr.isatty():
        click.echo(line, err=True)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
