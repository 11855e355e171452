"""The atheris entry point every fuzz target runs through.

Why: atheris hands control to libFuzzer, which never returns (it exits the
process), so a fuzz run is its own process: ``python -m migcompat.fuzzing.entry
TARGET [libFuzzer options] [corpus dirs or files]``, or the thin
``fuzz/<name>_fuzzer.py`` scripts that OSS-Fuzz and ClusterFuzzLite build. This
is the only module that imports atheris.

Strategy: the project's modules are imported inside
``atheris.instrument_imports`` so libFuzzer sees coverage of the decoders (not
of atheris, hypothesis or the standard library); modules a target would import
lazily are imported here, eagerly, for the same reason. Each input goes to the
target's function: a :class:`~migcompat.errors.DecodeError` is the clean rejection
the invariant allows; anything else escapes to atheris, which reports the
Python traceback and writes the input as a crash artifact.
"""

from __future__ import annotations

import importlib
import shlex
import sys
from collections.abc import Callable

#: Modules whose coverage guides the fuzzer (packages include their submodules).
INSTRUMENTED = ("migcompat",)
#: Project modules left out: the hypothesis strategies that generate valid
#: states for the round-trip target are test data, not code under test; their
#: coverage would only reward the fuzzer for new shapes of generator calls, and
#: instrumenting them makes every drawn state slower.
NOT_INSTRUMENTED = ("migcompat.model.strategies",)
#: The project's modules the targets use, imported eagerly under instrumentation.
_MODULES = (
    "migcompat.errors",
    "migcompat.model.vmstate",
    "migcompat.wire",
    "migcompat.qemu.stream",
    "migcompat.codec.compiled",
    "migcompat.wire.ber_tree",
    "migcompat.fuzzing.targets",
    "migcompat.fuzzing.device_loads",
    "migcompat.fuzzing.differential",
    "migcompat.fuzzing.round_trip",
    "migcompat.devices",
)


def _load(name: str) -> Callable[[bytes], None]:
    """Import the project under instrumentation and return the target's TestOneInput."""
    import atheris  # type: ignore[import-untyped]

    from migcompat.fuzzing import native_build

    native_build.use_from_environment()  # before anything imports the installed native module
    with atheris.instrument_imports(include=list(INSTRUMENTED), exclude=[__name__, *NOT_INSTRUMENTED]):
        for module in _MODULES:
            importlib.import_module(module)
        from migcompat.devices import registry

        registry()  # imports every device module
    from migcompat.errors import DecodeError
    from migcompat.fuzzing.targets import get

    target = get(name)
    if target.needs:
        with atheris.instrument_imports(include=list(target.needs)):
            for module in target.needs:
                importlib.import_module(module)
    run = target.run

    def test_one_input(data: bytes) -> None:
        # try/except, not contextlib.suppress: this runs once per input.
        try:  # noqa: SIM105
            run(data)
        except DecodeError:
            pass

    return test_one_input


def main(name: str | None = None, argv: list[str] | None = None) -> None:
    """Fuzz target ``name`` with libFuzzer options and corpora from ``argv`` (``sys.argv``).

    Without ``name``, the first argument after the program names the target.
    """
    argv = list(sys.argv if argv is None else argv)
    if name is None:
        if len(argv) < 2:
            sys.exit("usage: python -m migcompat.fuzzing.entry TARGET [libFuzzer options] [corpus ...]")
        name = argv.pop(1)
    import atheris

    from migcompat.errors import UsageError

    if not getattr(sys, "frozen", False):
        # libFuzzer re-runs its own command line for -jobs, -fork and -minimize_crash,
        # joined into one shell command: make that command this target, run by this
        # Python, whichever way this process was started. (A PyInstaller bundle, as
        # OSS-Fuzz builds, is its own command already.)
        argv[0] = f"{shlex.quote(sys.executable)} -m migcompat.fuzzing.entry {shlex.quote(name)}"

    try:
        test_one_input = _load(name)
    except UsageError as error:
        print(f"migcompat: error: {error}", file=sys.stderr)
        sys.exit(2)
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
