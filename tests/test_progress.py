"""Progress: drawn on a terminal once a run lasts, never into a pipe or a log."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _support import run_cli

from migcompat import progress as progress_module
from migcompat.progress import Progress

ROOT = Path(__file__).resolve().parents[1]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", fake)
    monkeypatch.delenv("MIGCOMPAT_PROGRESS_DELAY", raising=False)
    monkeypatch.delenv("MIGCOMPAT_PROGRESS", raising=False)
    return fake


def test_nothing_is_drawn_into_a_pipe(clock: Clock) -> None:
    stream = io.StringIO()
    with Progress("matrix", total=3, stream=stream) as progress:
        clock.now += 10
        progress.step(note="a cell")
    assert stream.getvalue() == ""


def test_a_terminal_sees_progress_only_after_the_delay_and_a_clean_line_at_the_end(clock: Clock) -> None:
    stream = Terminal()
    with Progress("matrix", total=4, stream=stream) as progress:
        progress.step(note="early")
        assert stream.getvalue() == ""  # a short run shows nothing
        clock.now += progress_module.DELAY + 0.01
        progress.step(note="slirp/v1->v2/ber")
        drawn = stream.getvalue()
        assert drawn.startswith("\rmatrix: 2/4  50%") and "slirp/v1->v2/ber" in drawn
        progress.step(note="throttled")  # within 1/RATE of the last draw
        assert stream.getvalue() == drawn
        clock.now += 1
        progress.step(note="later")
        assert "matrix: 4/4 100%" in stream.getvalue()
    assert stream.getvalue().endswith("\r") and stream.getvalue().rstrip("\r").endswith(" ")


def test_progress_can_be_turned_off_on_a_terminal(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGCOMPAT_PROGRESS", "0")
    stream = Terminal()
    with Progress("fuzz", stream=stream) as progress:
        clock.now += 60
        progress.step()
    assert stream.getvalue() == ""


def test_a_cli_run_into_a_pipe_prints_no_progress(tmp_path: Path) -> None:
    code, out, err = run_cli("matrix", "--device", "slirp", "--examples", "1", "--jobs", "1", "--no-mutants",
                             "--out", str(tmp_path))  # fmt: skip
    assert code == 0, out + err
    assert err == ""


def test_the_gate_on_a_terminal_shows_its_progress(tmp_path: Path) -> None:
    """A real terminal (a pty): the progress line is drawn, then cleared before the verdict."""
    leader, follower = pty.openpty()
    environment = dict(os.environ, MIGCOMPAT_PROGRESS_DELAY="0", COLUMNS="100")
    process = subprocess.Popen(
        [sys.executable, "-m", "migcompat.cli", "gate"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=environment,
    )
    os.close(follower)
    output = b""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(timeout=30) == 0, output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
    text = output.decode(errors="replace").replace("\r\n", "\n")  # the terminal's own line ends
    assert "\rgolden gate: " in text and re.search(r"golden gate: \d+/\d+ +\d+%", text)
    verdict = text.rsplit("\r", 1)[-1]  # what follows the cleared progress line
    assert re.match(r"golden gate: \d+ streams, .*\npassed\n$", verdict), verdict
