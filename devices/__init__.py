"""Reference device models and the registry that finds them.

Why: the harness, the stream parser and the matrix need one place that says
which devices exist, their releases, and which stream sections they decode.
Adding a device is one new module defining ``DEVICE`` and one line in
:data:`DEVICE_MODULES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from migcompat.devices.base import Device, Release
from migcompat.errors import DescriptionError
from migcompat.qemu.stream import SectionCodec

#: Modules under ``devices`` that each define ``DEVICE``.
DEVICE_MODULES: tuple[str, ...] = ("slirp", "virtio")


#: Devices built at run time (from QEMU's ``-dump-vmstate``), by name.
_REGISTERED: dict[str, Device] = {}


@cache
def _models() -> dict[str, Device]:
    devices: dict[str, Device] = {}
    for module_name in DEVICE_MODULES:
        device: Device = importlib.import_module(f"{__name__}.{module_name}").DEVICE
        devices[device.name] = device
    return devices


def registry() -> dict[str, Device]:
    """Every device by name, in registration order: the reference models, then
    those registered at run time."""
    return {**_models(), **_REGISTERED} if _REGISTERED else _models()


@contextmanager
def registered(extra: list[Device]) -> Iterator[None]:
    """Devices of this process (and of the worker processes it forks) while the
    block runs: the matrix runs them like the reference models."""
    clash = [device.name for device in extra if device.name in registry()]
    if clash:
        raise DescriptionError(f"devices already registered: {', '.join(clash)}")
    _REGISTERED.update((device.name, device) for device in extra)
    try:
        yield
    finally:
        for device in extra:
            del _REGISTERED[device.name]


def get(name: str) -> Device:
    try:
        return registry()[name]
    except KeyError:
        raise KeyError(f"unknown device {name!r} (known: {', '.join(registry())})") from None


def resolve_section(idstr: str, version: int) -> SectionCodec | None:
    """The codec that decodes a stream section, or None to carry it opaque."""
    for device in registry().values():
        codec = device.codec(idstr, version)
        if codec is not None:
            return codec
    return None


__all__ = ["DEVICE_MODULES", "Device", "Release", "get", "registry", "resolve_section"]
