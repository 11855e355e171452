"""Seed corpora: valid inputs of every target, generated from the reference devices and real captures.

Why: a coverage-guided fuzzer starting from nothing spends its first hours
learning what a SEQUENCE with a signature or a QEVM header looks like. Seeds that
are already valid put it deep in the decoders from the first execution, and
mutations of valid streams are exactly the hostile streams a peer could send.

Strategy: :func:`build` returns every target's seeds as ``{target: {name:
bytes}}``, deterministic (same code, same seeds), so ``migcompat fuzz
--make-seeds`` can (re)write ``corpora/seeds/<target>/`` and the committed files
can be compared with what the code writes. Seeds come from the fixed states of
every device release (loaded at their own release and at the newest), from the committed QEMU 7.2 captures trimmed to
their device sections (RAM pages dropped, the vmdesc trailer cut down to the
sections kept), and, for the BER targets, from the forms X.690 allows beyond
what our encoder writes (indefinite and long-form lengths, segmented strings).
Seeds longer than the target's ``max_len`` are left out.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migcompat.fuzzing.targets import TARGETS, ber_input_description, native_descriptions
from migcompat.model import vmstate
from migcompat.qemu import stream

if TYPE_CHECKING:
    from migcompat.devices.base import Device, Release
from migcompat.wire import PAIRINGS
from migcompat.wire.ber import CONSTRUCTED, encode_length

#: Seed of the round-trip target's random seeds.
SEED = 20111
#: The committed captures the stream seeds are cut from, relative to the corpora directory.
CAPTURES = (
    "qemu-7.2/pc-virtio-net.bin",
    "qemu-7.2/microvm-virtio-net.bin",
    "qemu-7.2/pc-virtio-blk.bin",
    "qemu-7.2/pc-virtio-net-novectors.bin",
)
#: Sections QEMU describes in the vmdesc kept in a trimmed capture (small ones), with their vmdesc entries.
_KEPT_SECTIONS = ("timer", "cpu_common", "globalstate")


def _encode(fmt: str, description: vmstate.Description, state: Mapping[str, Any]) -> bytes:
    return bytes(vmstate.encode(PAIRINGS[fmt].make_output(), description, state))


# -- BER forms our encoder does not write ---------------------------------------------


def _tlvs(data: bytes, position: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(tag, content start, content end) of the definite-length TLVs in ``data[position:end]``
    (single-octet tags: what our encoder writes)."""
    while position < end:
        tag, first = data[position], data[position + 1]
        if first < 0x80:
            length, content = first, position + 2
        else:
            count = first & 0x7F
            length = int.from_bytes(data[position + 2 : position + 2 + count], "big")
            content = position + 2 + count
        yield tag, content, content + length
        position = content + length


def _rewrite(data: bytes, position: int = 0, end: int | None = None, *, form: str) -> bytes:
    """Re-encode our BER with every constructed length indefinite (``form="indefinite"``),
    every length in long form (``"long"``), or every string in two segments (``"segmented"``)."""
    out = bytearray()
    for tag, content, stop in _tlvs(data, position, len(data) if end is None else end):
        body = data[content:stop]
        if tag & CONSTRUCTED:
            body = _rewrite(data, content, stop, form=form)
            if form == "indefinite":
                out += bytes((tag, 0x80)) + body + b"\0\0"
                continue
        elif form == "segmented" and tag in (0x04, 0x0C) and len(body) >= 2:
            half = len(body) // 2
            body = bytes((tag,)) + encode_length(half) + body[:half]
            body += bytes((tag,)) + encode_length(len(data[content:stop]) - half) + data[content + half : stop]
            tag |= CONSTRUCTED
        if form == "long":
            size = len(body).to_bytes(2, "big")
            out += bytes((tag, 0x82)) + size + body
        else:
            out += bytes((tag,)) + encode_length(len(body)) + body
    return bytes(out)


def _ber_input_states() -> dict[str, dict[str, Any]]:
    queue = {"n": 256, "d": 0x7FFF0000, "i": 17, "e": True}
    full: dict[str, Any] = {
        "st": 0x0F,
        "ft": 2**64 - 1,
        "qs": -32768,
        "sm": -1,
        "cl": 6,
        "cf": bytes.fromhex("525400123456"),
        "nm": "virtio-net ü",
        "vq": [queue, {**queue, "e": False, "d": 0}],
        "so": [{"f": 3, "p": "10.0.2.2", "b": b"abcd"}, {"f": -1, "p": "", "b": bytes(4)}],
        "is": [1, 0, 255],
        "ne": {"a": -128, "b": 2**63 - 1, "n/o": {"o": True}},
        "d/r": {"r": [256, 1024]},
        "d/f": {"f": False},
    }
    empty = ber_input_description().defaults()
    empty["ne"] = {"a": 0, "b": 0}
    return {"full": full, "empty": empty}


def _ber_input_seeds() -> dict[str, bytes]:
    description = ber_input_description()
    seeds: dict[str, bytes] = {}
    for name, state in _ber_input_states().items():
        data = _encode("ber", description, state)
        seeds[f"{name}.ber"] = data
        for form in ("indefinite", "long", "segmented"):
            seeds[f"{name}-{form}.ber"] = _rewrite(data, form=form)
    # A newer source: a member and a non-critical subsection this description skips.
    newer = vmstate.Description(
        description.name,
        description.version_id,
        description.minimum_version_id,
        (*description.fields, vmstate.Field("x", vmstate.Scalar("uint16"))),
        (*description.subsections, vmstate.Subsection(vmstate.Description("d/x", 1, 1, ()), critical=False)),
    )
    state = {**_ber_input_states()["full"], "x": 7, "d/x": {}}
    seeds["newer-source.ber"] = _encode("ber", newer, state)
    return seeds


def _differential_seeds(ber_input: Mapping[str, bytes]) -> dict[str, bytes]:
    seeds = {f"wire-{name}": data for name, data in ber_input.items()}
    forms = {
        "boolean-true": "0101ff",
        "integer-negative": "0209ff7fffffffffffffff",
        "integer-uint64-max": "020900ffffffffffffffff",
        "octets-constructed-nested": "248004036162632406040164040165 0000".replace(" ", ""),
        "utf8-segments-octet-string": "2c08040261620402c3bc",
        "utf8-segments-utf8": "2c080c02c3bc0c026364",
        "sequence-indefinite-nested": "3080308002010100000101000000",
        "length-long-form-leading-zero": "0483000003616263",
        "sequence-empty": "3000",
    }
    seeds.update({f"x690-{name}": bytes.fromhex(text) for name, text in forms.items()})
    return seeds


def _native_seeds() -> dict[str, bytes]:
    """The ber_input states, written for each of the native target's two
    descriptions (the first byte chooses), in every form X.690 allows."""
    seeds = {}
    for choice, description in enumerate(native_descriptions()):
        for name, state in _ber_input_states().items():
            data = _encode("ber", description, state)
            for form in ("definite", "long", "indefinite"):
                body = data if form == "definite" else _rewrite(data, form=form)
                seeds[f"{choice}-{name}-{form}.ber"] = bytes((choice,)) + body
    return seeds


# -- device seeds ---------------------------------------------------------------------


def _device_states() -> Iterator[tuple[str, str, str, Mapping[str, Any]]]:
    """(device, release, label, state): every release's fixed states (hypothesis
    draws are left out: the seeds must not depend on a hypothesis database)."""
    from migcompat import devices

    for device in devices.registry().values():
        for release in device.releases:
            for index, state in enumerate(device.fixed_states(release)):
                yield device.name, release.name, f"fixed{index}", state


def _newest_with_machine_of(device: Device, release: Release) -> str:
    """The label of the newest release's form that runs ``release``'s machine
    type, where a migration from it lands; empty when that is not a form."""
    wanted = device.machine_of(release)
    for form in device.forms(device.newest):
        if device.machine_of(form, form.machine) == wanted:
            return form.label
    return ""


def _device_seeds(fmt: str, max_len: int) -> dict[str, bytes]:
    from migcompat import devices
    from migcompat.fuzzing.device_loads import selector

    seeds: dict[str, bytes] = {}
    for device_name, release_name, label, state in _device_states():
        device = devices.get(device_name)
        release = device.release(release_name)
        data = _encode(fmt, release.description, state)
        for destination in {release.label, _newest_with_machine_of(device, release)} - {""}:
            prefix = selector(device_name, destination, release.version_id)
            name = f"{device_name}-{release_name}-{label}-at-{destination}.{fmt}"
            if len(prefix) + len(data) <= max_len:
                seeds[name] = prefix + data
    return seeds


# -- stream seeds ---------------------------------------------------------------------


#: virtio subsections holding 1024-entry per-queue arrays: a section with them is
#: ~45 KB and slows a fuzzer a hundredfold, so trimmed seeds leave them out.
_LARGE_SUBSECTIONS = ("virtio/virtqueues", "virtio/ringsize", "virtio/extra_state", "virtio/packed_virtqueues")


def _trimmed(capture: bytes, *, keep_opaque: bool) -> stream.MigrationStream:
    """A capture with RAM pages, the large virtio subsections and all sections
    but those of our device models dropped (``keep_opaque``: and a few small
    sections QEMU describes in the vmdesc, which is cut to match)."""
    from migcompat.devices import resolve_section

    parsed = stream.parse_qemu(capture, resolve_section)
    for record in parsed.records:
        if record.device == "virtio" and record.state is not None:
            nested = record.state["virtio"]
            record.state["virtio"] = {key: value for key, value in nested.items() if key not in _LARGE_SUBSECTIONS}
    kept = [
        record
        for record in parsed.records
        if record.decoded_by == "model"
        or (keep_opaque and record.idstr in _KEPT_SECTIONS)
        or (keep_opaque and record.idstr == "ram" and record.kind != stream.SECTION_PART)
    ]
    vmdesc = None
    if keep_opaque and parsed.vmdesc is not None:
        document = json.loads(parsed.vmdesc)
        names = {(record.idstr, record.instance_id) for record in kept}
        document["devices"] = [
            entry for entry in document["devices"] if (entry.get("name"), entry.get("instance_id", 0)) in names
        ]
        vmdesc = json.dumps(document, separators=(",", ":")).encode()
    return stream.MigrationStream(machine=parsed.machine, records=kept, vmdesc=vmdesc)


def _stream_seeds(corpora: Path) -> dict[str, dict[str, bytes]]:
    """``{"qemu": {...}, "ber": {...}}``: trimmed captures in both formats."""
    from migcompat.devices import resolve_section

    seeds: dict[str, dict[str, bytes]] = {"qemu": {}, "ber": {}}
    for capture in CAPTURES:
        path = corpora / capture
        if not path.is_file():
            continue
        stem = path.stem
        for keep_opaque in (True, False):
            trimmed = _trimmed(path.read_bytes(), keep_opaque=keep_opaque)
            label = f"{stem}-{'sections' if keep_opaque else 'devices'}"
            seeds["qemu"][f"{label}.bin"] = stream.encode_qemu(trimmed, resolve_section)
            seeds["ber"][f"{label}.ber"] = stream.encode_ber(trimmed, resolve_section)
    empty = stream.MigrationStream(machine="pc")
    seeds["qemu"]["empty.bin"] = stream.encode_qemu(empty)
    seeds["ber"]["empty.ber"] = stream.encode_ber(empty)
    return seeds


def _round_trip_seeds() -> dict[str, bytes]:
    generator = random.Random(SEED)
    return {f"random-{size}": generator.randbytes(size) for size in (8, 64, 256, 1024, 4096)}


def build(corpora: Path) -> dict[str, dict[str, bytes]]:
    """Every target's seeds: ``{target: {file name: content}}``. ``corpora`` is where
    the QEMU captures are (``corpora/qemu-7.2``); without them the stream seeds are
    the empty stream only."""
    ber_input = _ber_input_seeds()
    streams = _stream_seeds(corpora)
    seeds = {
        "ber_input_fuzzer": ber_input,
        "ber_stream_fuzzer": {**_device_seeds("ber", TARGETS["ber_stream_fuzzer"].max_len), **streams["ber"]},
        "qemufile_device_fuzzer": _device_seeds("qemufile", TARGETS["qemufile_device_fuzzer"].max_len),
        "qemu_stream_fuzzer": streams["qemu"],
        "ber_differential_fuzzer": _differential_seeds(ber_input),
        "ber_native_fuzzer": _native_seeds(),
        "device_round_trip_fuzzer": _round_trip_seeds(),
    }
    return {
        target: {name: data for name, data in files.items() if len(data) <= TARGETS[target].max_len}
        for target, files in seeds.items()
    }


def write(root: Path, seeds: Mapping[str, Mapping[str, bytes]]) -> list[Path]:
    """Write ``seeds`` under ``root/<target>/``, removing files no longer generated; return what was written."""
    written = []
    for target, files in seeds.items():
        directory = root / target
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.iterdir():
            if stale.is_file() and stale.name not in files:
                stale.unlink()
        for name, data in files.items():
            path = directory / name
            if not path.is_file() or path.read_bytes() != data:
                path.write_bytes(data)
            written.append(path)
    return written


def digest(data: bytes) -> str:
    """The short content hash findings and regressions are named by."""
    return hashlib.sha1(data).hexdigest()[:16]


__all__ = ["build", "digest", "write"]
