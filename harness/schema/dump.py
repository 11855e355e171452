"""Schema dumps: one JSON Schema document per device release and per hypervisor release.

Why: the static checker (:mod:`migcompat.schema.diff`) compares releases from
their schemas alone, so the schemas of every release are committed under
``corpora/schemas/`` -- a change to what a release sends shows up in review as a
diff of these files, and ``tests/test_schema.py`` fails when they are stale.

Strategy: a device document is the description's schema resource
(:func:`migcompat.schema.visitor.description_schema`) with a ``$schema``, a
``$id`` and an ``x-migcompat`` header naming the device and release. A
hypervisor-release document (the whole release, like QEMU's
``-dump-vmstate``) holds the document of every device release it ships as an
embedded resource under the device's name. Names on the command line are
``DEVICE[@RELEASE]`` (the newest release when none is given) or a hypervisor
release (``hv-2022``). :func:`build` is the whole corpus the code writes;
:func:`write_corpus` writes it and removes the files it no longer holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from migcompat import corpus, devices
from migcompat.devices import machines, releases
from migcompat.devices.base import Device, Release
from migcompat.errors import UsageError
from migcompat.schema.visitor import DIALECT, SCHEMA_FORMAT, JsonObject, description_schema, dumps

#: Where the committed schemas live, relative to the repository root.
DEFAULT_DIRECTORY = "corpora/schemas"
#: Sub-directory of the hypervisor-release documents.
RELEASES_DIRECTORY = "releases"


def device_document(device: Device, release: Release) -> JsonObject:
    """The schema of one device release, with its header."""
    document = description_schema(release.description)
    header: JsonObject = {"format": SCHEMA_FORMAT, "kind": "device", "device": device.name, "release": release.name}
    if release.machine:
        header["machine"] = release.machine
    document.update(
        {
            "$schema": DIALECT,
            "$id": f"urn:migcompat:schema:{device.name}:{release.label}",
            "title": f"{device.name} {release.label}",
            "description": f"{device.summary}. {release.name}: {release.notes}".strip(),
            "x-migcompat": header,
        }
    )
    return document


def release_document(release: releases.HypervisorRelease, machine: str = "") -> JsonObject:
    """The schema of a hypervisor release: every device release it ships, by
    device name, under ``machine`` (empty: each device release's own)."""
    shipped = releases.device_releases(release)
    properties = {}
    for name, (device, device_release) in shipped.items():
        embedded = device_document(device, _under(device, device_release, machine))
        del embedded["$schema"]
        properties[name] = embedded
    return {
        "$schema": DIALECT,
        "$id": f"urn:migcompat:schema:release:{release.name}",
        "title": release.name,
        "description": f"hypervisor release {release.name}: the state of every device it ships",
        "x-migcompat": {
            "format": SCHEMA_FORMAT,
            "kind": "release",
            "release": release.name,
            "formats": list(release.formats),
            "devices": dict(release.devices),
        },
        "type": "object",
        "x-order": list(properties),
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _under(device: Device, release: Release, machine: str) -> Release:
    try:
        return device.at(release, machine)
    except UsageError as error:
        raise UsageError(f"{error}; its machine types are {machines.own(release.name)} and older") from None


def resolve(spec: str, machine: str = "") -> JsonObject:
    """The document a command-line name means: ``DEVICE[@RELEASE[@MACHINE]]`` or a
    hypervisor release, under ``machine`` when given (a device whose state does
    not depend on the machine type is the same under every one)."""
    registry = devices.registry()
    name, at, rest = spec.partition("@")
    release_name, _, named_machine = rest.partition("@")
    if named_machine:
        if machine and machine != named_machine:
            raise UsageError(f"{spec} names machine type {named_machine}, and --machine {machine}")
        machine = named_machine
    if machine:
        machines.parse(machine)
    if name in registry:
        device = registry[name]
        if not at:
            return device_document(device, _under(device, device.newest, machine))
        try:
            found = device.release(release_name)
        except KeyError as error:
            raise UsageError(str(error.args[0])) from None
        return device_document(device, _under(device, found, machine))
    if not at and any(known.name == spec for known in releases.RELEASES):
        return release_document(releases.get(spec), machine)
    hypervisors = ", ".join(known.name for known in releases.RELEASES)
    raise UsageError(
        f"unknown device or release {spec!r} (devices: {', '.join(registry)}; "
        f"write DEVICE@RELEASE, e.g. slirp@v4, or DEVICE@RELEASE@MACHINE, e.g. virtio@qemu-10.0@pc-i440fx-5.2; "
        f"hypervisor releases: {hypervisors})"
    )


def build() -> dict[str, bytes]:
    """Every schema the code writes: relative POSIX path -> content."""
    files: dict[str, bytes] = {}
    for device in devices.registry().values():
        for release in device.releases:
            files[f"{device.name}/{release.name}.json"] = dumps(device_document(device, release)).encode()
    for hypervisor in releases.RELEASES:
        files[f"{RELEASES_DIRECTORY}/{hypervisor.name}.json"] = dumps(release_document(hypervisor)).encode()
    return files


def _is_schema_file(relative: PurePosixPath) -> bool:
    return len(relative.parts) == 2 and relative.suffix == ".json"


def write_corpus(root: Path, files: Mapping[str, bytes]) -> list[str]:
    """Write ``files`` under ``root`` and remove the ``<dir>/<name>.json`` files it no longer holds.

    Returns the relative paths removed; other files are left alone.
    """
    return corpus.write_corpus(root, files, _is_schema_file)


__all__ = ["DEFAULT_DIRECTORY", "build", "device_document", "release_document", "resolve", "write_corpus"]
