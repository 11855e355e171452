"""An instrumented build of the native BER path, so libFuzzer sees its C coverage.

Why: atheris instruments Python bytecode; the native path (``harness/wire/_berc.c``)
is C, and without instrumentation the fuzzer is blind inside it -- it finds
new inputs only by what they do in the Python around it. Built with clang's
``-fsanitize=fuzzer-no-link`` (coverage counters for libFuzzer) and
``-fsanitize=undefined`` (undefined behaviour becomes a finding), and run with
atheris's ``ubsan_with_fuzzer.so`` preloaded (the sanitizer runtime and the
libFuzzer that reads those counters), the C's edges guide the fuzzer like the
Python's. The build goes to the work directory; the installed package is left
as it is.

A fuzz job started with :data:`INSTRUMENTED_VARIABLE` set loads the module
from that file in place of the installed one (:func:`use_from_environment`,
called by the fuzz entry point before the project is imported).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from migcompat.errors import UsageError

#: The path of the instrumented module a fuzz job loads instead of the installed one.
INSTRUMENTED_VARIABLE = "MIGCOMPAT_INSTRUMENTED_BERC"
MODULE = "migcompat.wire._berc"
FLAGS = ("-fsanitize=fuzzer-no-link,undefined", "-O2", "-g", "-fPIC", "-shared")
_COMPILERS = ("clang", "clang-19", "clang-18", "clang-16", "clang-15", "clang-14")


def source() -> Path:
    """The C source of the native path, shipped beside the package's wire modules."""
    import migcompat.wire

    path = Path(migcompat.wire.__file__).parent / "_berc.c"
    if not path.is_file():
        raise UsageError(f"the native path's source is not installed ({path}): reinstall migcompat")
    return path


def compiler() -> str:
    for name in _COMPILERS:
        found = shutil.which(name)
        if found:
            return found
    raise UsageError("--instrument-native needs clang (Debian: apt-get install clang)")


def build(work: Path) -> Path:
    """Compile the instrumented module into ``work/native/``; its path."""
    out = work / "native" / f"_berc{sysconfig.get_config_var('EXT_SUFFIX') or '.so'}"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [compiler(), *FLAGS, f"-I{sysconfig.get_paths()['include']}", str(source()), "-o", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise UsageError(f"building the instrumented native path failed: {result.stderr.strip()[:400]}")
    return out


def runtime() -> Path:
    """atheris's UBSan runtime with libFuzzer, preloaded into the fuzz jobs."""
    import atheris  # type: ignore[import-untyped]

    path = Path(atheris.path()) / "ubsan_with_fuzzer.so"
    if not path.is_file():
        raise UsageError(f"this atheris has no {path.name}: it cannot fuzz native extensions")
    return path


def job_environment(work: Path) -> dict[str, str]:
    """The environment of a fuzz job that runs the instrumented build."""
    return {**os.environ, INSTRUMENTED_VARIABLE: str(build(work).resolve()), "LD_PRELOAD": str(runtime())}


def use_from_environment() -> bool:
    """Load the instrumented module named by :data:`INSTRUMENTED_VARIABLE`, if set,
    as ``migcompat.wire._berc``; True when it did."""
    path = os.environ.get(INSTRUMENTED_VARIABLE)
    if not path:
        return False
    spec = importlib.util.spec_from_file_location(MODULE, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{INSTRUMENTED_VARIABLE}={path} is not a loadable extension module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[MODULE] = module
    return True


__all__ = ["INSTRUMENTED_VARIABLE", "build", "job_environment", "runtime", "use_from_environment"]
