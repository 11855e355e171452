"""The GitHub Actions workflows: valid for GitHub, and every migcompat command in them parses.

The example workflow (``.github/workflows/migcompat.yml``) is what users copy;
a flag renamed here must not leave it calling a command that no longer exists.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from ruamel.yaml import YAML  # check-jsonschema's YAML reader

from migcompat.cli import cli


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load(path.read_text())
    return loaded


WORKFLOWS = sorted((Path(__file__).resolve().parents[1] / ".github" / "workflows").glob("*.yml"))
EXAMPLE = next(path for path in WORKFLOWS if path.name == "migcompat.yml")
#: What the workflow's expressions and shell variables stand for when a command is parsed.
VALUES = {"${{ matrix.shard }}": "2", "$SHARDS": "3", "$examples": "10", "${{ github.base_ref }}": "main"}


def test_every_workflow_is_valid_for_github() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _runs(document: dict[str, Any]) -> list[str]:
    return [step["run"] for job in document["jobs"].values() for step in job["steps"] if "run" in step]


def _commands(script: str) -> list[list[str]]:
    """The migcompat command lines of a step's script, with its variables given values."""
    found = []
    for line in script.splitlines():
        line = line.strip()
        if not line.startswith("migcompat "):
            continue
        for name, value in VALUES.items():
            line = line.replace(name, value)
        line = re.split(r"\s(?:\|\||>|&&)\s", line)[0].replace('"${history[@]}"', "")
        line = re.sub(r'"ci/base/\$\(basename "\$schema"\)"', "old.json", line).replace('"$schema"', "new.json")
        found.append(shlex.split(line)[1:])
    return found


def test_every_migcompat_command_of_the_example_parses() -> None:
    document = _load(EXAMPLE)
    commands = [command for script in _runs(document) for command in _commands(script)]
    assert {command[0] for command in commands} >= {"diff", "gate", "matrix", "report"}
    for arguments in commands:
        try:
            with cli.make_context("migcompat", list(arguments), resilient_parsing=False) as context:
                command = cli.get_command(context, arguments[0])
                assert command is not None
                if isinstance(command, click.Group):
                    arguments = arguments[1:]
                    command = command.get_command(context, arguments[0])
                command.make_context(arguments[0], list(arguments[1:]), parent=context)
        except click.UsageError as error:
            pytest.fail(f"migcompat {' '.join(arguments)}: {error}")


def test_the_shards_of_the_job_matrix_are_all_of_them() -> None:
    document = _load(EXAMPLE)
    shards = document["jobs"]["matrix"]["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, int(document["env"]["SHARDS"]) + 1))
