"""Progress on a terminal for every run that takes more than a moment; silence elsewhere.

Why: a matrix, a real matrix, a fuzz campaign or a benchmark runs for seconds
to hours; a person at a terminal wants to see it move, and a CI log or a
pipe wants none of it (a progress bar in a log is thousands of lines of
noise). So progress is drawn only on a terminal, only once a run has lasted
:data:`DELAY` seconds, at most :data:`RATE` times a second, on one line that
is cleared when the run ends. ``MIGCOMPAT_PROGRESS_DELAY`` sets the delay in
seconds (``0``: at once); ``MIGCOMPAT_PROGRESS=0`` turns progress off on a terminal too.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from types import TracebackType
from typing import TextIO

#: Seconds a run lasts before its progress shows (``MIGCOMPAT_PROGRESS_DELAY`` overrides).
DELAY = 2.0
#: Redraws per second at most.
RATE = 10.0


def _delay() -> float:
    try:
        return max(0.0, float(os.environ.get("MIGCOMPAT_PROGRESS_DELAY", DELAY)))
    except ValueError:
        return DELAY


class Progress:
    """``with Progress("matrix", total=365) as progress: ... progress.step()``."""

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        wanted = os.environ.get("MIGCOMPAT_PROGRESS", "1") != "0"
        self.shown = wanted and bool(getattr(self.stream, "isatty", lambda: False)())
        self.delay = _delay()
        self.started = time.monotonic()
        self._drawn_at = 0.0
        self._drawn = False
        self._note = ""

    def step(self, count: int = 1, note: str | None = None) -> None:
        """``count`` more done (and what is being done now)."""
        self.done += count
        self.note(note)

    def note(self, note: str | None) -> None:
        """Say what is being done now, without counting a step."""
        if note is not None:
            self._note = note
        if not self.shown:
            return
        now = time.monotonic()
        if now - self.started < self.delay or now - self._drawn_at < 1 / RATE:
            return
        self._drawn_at = now
        self._draw(now)

    def _draw(self, now: float) -> None:
        count = f"{self.done}/{self.total}" if self.total else str(self.done)
        percent = f" {100 * self.done // self.total:3d}%" if self.total else ""
        line = f"{self.label}: {count}{percent} {now - self.started:5.0f} s {self._note}"
        width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)
        self.stream.write("\r" + line[:width].ljust(width))
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Clear the line, so what is printed next starts on a clean one."""
        if self._drawn:
            width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)
            self.stream.write("\r" + " " * width + "\r")
            self.stream.flush()
            self._drawn = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


__all__ = ["DELAY", "RATE", "Progress"]
