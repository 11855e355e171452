"""The installed package: the public API in ``migcompat/__init__.py``, and a wheel
installed into a fresh venv puts ``migcompat`` -- and nothing called ``harness`` or
``devices`` -- into site-packages, with a working console script.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

import migcompat

REPO = Path(__file__).parent.parent
CAPTURE = REPO / "corpora" / "qemu-7.2" / "pc-virtio-net.bin"
#: What a checkout accumulates that a clean clone does not have.
ARTEFACTS = (
    "build",
    "dist",
    "*.egg-info",
    ".git",
    ".tox",
    ".*_cache",
    ".hypothesis",
    ".fuzz",
    "__pycache__",
    "reports",
)


# -- the public API -------------------------------------------------------------------


def test_all_names_exactly_the_public_names_and_each_resolves() -> None:
    assert migcompat.__all__ == sorted(migcompat._HOMES)
    for name in migcompat.__all__:
        value = getattr(migcompat, name)
        assert getattr(importlib.import_module(migcompat._HOMES[name]), name) is value
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = migcompat.nope  # type: ignore[attr-defined]


def test_importing_the_package_imports_nothing_of_it_until_a_name_is_used() -> None:
    code = (
        "import sys, migcompat; "
        "loaded = sorted(m for m in sys.modules if m.startswith('migcompat.')); "
        "assert loaded == [], loaded; "
        "migcompat.BerOutputVisitor; "
        "assert 'migcompat.wire.ber' in sys.modules and 'migcompat.compat.matrix' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO / "tests")


def test_save_and_load_through_every_visitor_pair_of_the_public_api() -> None:
    description = migcompat.Description(
        "demo",
        2,
        1,
        (
            migcompat.Field("x", migcompat.Scalar("uint32")),
            migcompat.Field("flag", migcompat.Scalar("bool"), since=2),
        ),
    )
    state = {"x": 0xDEADBEEF, "flag": True}
    for output, reader in (
        (migcompat.QemuFileOutputVisitor, migcompat.QemuFileInputVisitor),
        (migcompat.BerOutputVisitor, migcompat.BerInputVisitor),
        (migcompat.DictOutputVisitor, migcompat.DictInputVisitor),
    ):
        encoded = migcompat.encode(output(), description, state)
        assert migcompat.load(reader(encoded), description, 2) == state
    qemufile = migcompat.encode(migcompat.QemuFileOutputVisitor(), description, state)
    assert qemufile == bytes.fromhex("deadbeef01")
    assert set(migcompat.PAIRINGS) == {"dict", "qemufile", "ber"}
    codec = migcompat.compile_codec(description, "ber")
    assert codec.encode(state) == migcompat.encode(migcompat.BerOutputVisitor(), description, state)
    schema = migcompat.description_schema(description)
    assert set(schema["properties"]) == {"x", "flag", "subsections"}  # type: ignore[arg-type]


def test_inspect_and_convert_a_real_stream_through_the_public_api() -> None:
    data = CAPTURE.read_bytes()
    fmt, stream = migcompat.inspect_stream(data)
    assert fmt == "qemu" and isinstance(stream, migcompat.MigrationStream)
    assert {record.device for record in stream.records} >= {"slirp", "virtio"}
    ber = migcompat.convert_stream(data, to="ber")
    assert migcompat.inspect_stream(ber)[0] == "ber"
    assert migcompat.convert_stream(ber, to="qemu") == data
    with pytest.raises(migcompat.DecodeError):
        migcompat.inspect_stream(data[:600_000])
    with pytest.raises(migcompat.TruncatedInput) as caught:
        migcompat.inspect_stream(data[:6])
    assert caught.value.offset is not None


def test_run_a_small_matrix_through_the_public_api() -> None:
    config = migcompat.MatrixConfig(devices=("slirp",), pairings=("ber",), examples=1, shrink=False, mutants=False)
    results = migcompat.run_matrix(config)
    assert isinstance(results, migcompat.MatrixResults) and results.cells
    assert all(isinstance(cell.outcome, migcompat.Outcome) for cell in results.cells)
    assert results.passed


# -- the installed wheel --------------------------------------------------------------


def _runtime_modules() -> set[str]:
    """Top-level module names of migcompat's runtime dependencies, transitively."""
    providers = importlib.metadata.packages_distributions()
    wanted, seen = ["migcompat"], set()
    while wanted:
        dist = wanted.pop()
        for requirement in importlib.metadata.requires(dist) or []:
            if ";" in requirement and "extra ==" in requirement:
                continue
            name = re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0]
            if name.lower() not in seen:
                seen.add(name.lower())
                wanted.append(name)
    return {module for module, dists in providers.items() if any(d.lower() in seen for d in dists)}


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A new venv with only the built wheel installed (its dependencies linked in
    from this environment, so no network is needed); returns (venv, wheel)."""
    root = tmp_path_factory.mktemp("wheel")
    # Built from a copy without build artefacts, as from a clean clone: a stale
    # build/lib of an older layout would otherwise be packed into the wheel.
    source = root / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*ARTEFACTS))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(root / "dist"), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (root / "dist").glob("migcompat-*.whl")
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    deps = root / "deps"
    deps.mkdir()
    for module in _runtime_modules():
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            continue
        location = Path(spec.origin).parent if spec.submodule_search_locations else Path(spec.origin)
        (deps / location.name).symlink_to(location)
    site = next((env_dir / "lib").glob("python3*/site-packages"))
    (site / "migcompat-test-deps.pth").write_text(f"{deps}\n")
    return env_dir, wheel


def _in_venv(env_dir: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(list(argv), capture_output=True, text=True, cwd=cwd, env=env, check=False, timeout=120)


def test_the_wheel_holds_only_the_migcompat_package(fresh_venv: tuple[Path, Path]) -> None:
    _, wheel = fresh_venv
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/", 1)[0] for name in archive.namelist()}
        names = set(archive.namelist())
    # name-version.dist-info, whatever the wheel's tags (py3-none-any, or cp311-... with the native extension)
    assert tops == {"migcompat", "-".join(wheel.name.split("-")[:2]) + ".dist-info"}
    assert {"migcompat/__init__.py", "migcompat/devices/__init__.py", "migcompat/py.typed"} <= names
    assert "migcompat/wire/ber.py" in names and "migcompat/devices/slirp.py" in names


def test_the_installed_package_imports_as_migcompat_only(fresh_venv: tuple[Path, Path], tmp_path: Path) -> None:
    env_dir, _ = fresh_venv
    python = str(env_dir / "bin" / "python")
    found = _in_venv(
        env_dir,
        python,
        "-c",
        "import migcompat, migcompat.devices; print(migcompat.__file__); print(sorted(migcompat.devices.registry()))",
        cwd=tmp_path,
    )
    assert found.returncode == 0, found.stderr
    where, registry = found.stdout.splitlines()
    assert Path(where).is_relative_to(env_dir) and registry == "['slirp', 'virtio']"
    for stray in ("harness", "devices"):
        missing = _in_venv(env_dir, python, "-c", f"import {stray}", cwd=tmp_path)
        assert missing.returncode == 1 and f"No module named '{stray}'" in missing.stderr


def test_the_console_script_of_the_installed_package_works(fresh_venv: tuple[Path, Path], tmp_path: Path) -> None:
    env_dir, _ = fresh_venv
    script = str(env_dir / "bin" / "migcompat")
    version = _in_venv(env_dir, script, "--version", cwd=tmp_path)
    assert version.returncode == 0 and "0.1.0" in version.stdout
    inspected = _in_venv(env_dir, script, "inspect", str(CAPTURE), cwd=tmp_path)
    assert inspected.returncode == 0, inspected.stderr
    assert "slirp" in inspected.stdout and "virtio" in inspected.stdout
    bad = _in_venv(env_dir, script, "inspect", str(tmp_path / "absent.bin"), cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_the_readmes_python_example_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (REPO / "README.md").read_text()
    example = readme.split("### From Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(REPO)
    exec(compile(example, "README.md", "exec"), {})
    assert "'ok':" in capsys.readouterr().out
