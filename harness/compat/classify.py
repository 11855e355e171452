"""One rule for what a load attempt's outcome is.

Why: the matrix (generated states through a pairing) and the gate (committed
golden streams) both load something at a destination and must call the result
the same way; one function decides, so the two can never drift apart.

``refused`` is a clean :class:`~migcompat.errors.LoadRefused` or
:class:`~migcompat.errors.InvalidState`; ``detected`` any other
:class:`~migcompat.errors.DecodeError`; ``crash`` anything else raised; and a
load that succeeded is ``ok`` when the state equals the expected one,
``corrupt`` when it does not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from migcompat.errors import DecodeError, InvalidState, LoadRefused
from migcompat.model.projection import first_difference
from migcompat.outcomes import Outcome


@dataclass
class ExampleResult:
    """The outcome of one load and what explains it."""

    outcome: Outcome
    message: str = ""
    path: str = ""
    offset: int | None = None


class StreamChanged(Exception):
    """A conversion did not give back the bytes it was handed: corrupt before any load."""


def classify(load: Callable[[], Any], expected: Callable[[], Any], differs: str) -> ExampleResult:
    """Run ``load`` and compare what it returns with ``expected()``.

    ``expected`` is called only after a successful load; it may raise
    :class:`StreamChanged` to report that the reference itself no longer fits.
    ``differs`` is the message of a silent mismatch.
    """
    try:
        loaded = load()
    except StreamChanged as error:
        return ExampleResult(Outcome.CORRUPT, str(error))
    except (LoadRefused, InvalidState) as error:
        # A version or subsection the destination does not take, or a state its
        # post-load checks call impossible: a clean refusal with a message.
        return ExampleResult(Outcome.REFUSED, error.message, error.path, error.offset)
    except DecodeError as error:
        return ExampleResult(Outcome.DETECTED, f"{type(error).__name__}: {error.message}", error.path, error.offset)
    except Exception as error:  # outside the error hierarchy, or a MigcompatError a load must not raise
        return ExampleResult(Outcome.CRASH, f"{type(error).__name__}: {error}")
    try:
        want = expected()
    except StreamChanged as error:
        return ExampleResult(Outcome.CORRUPT, str(error))
    if loaded == want:
        return ExampleResult(Outcome.OK)
    return ExampleResult(Outcome.CORRUPT, differs, first_difference(want, loaded) or "")
