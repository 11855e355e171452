"""Reference device models and the registry that finds them.

Why: the harness, the stream parser and the matrix need one place that says
which devices exist, their releases, and which stream sections they decode.
Adding a device is one new module and one line in :data:`DEVICE_MODULES`.
"""

from __future__ import annotations

from harness.stream import SectionCodec

#: Modules under ``devices`` that define a device (filled as devices are added).
DEVICE_MODULES: tuple[str, ...] = ()


def resolve_section(idstr: str, version: int) -> SectionCodec | None:
    """The codec that decodes a stream section, or None to carry it opaque."""
    return None
