"""Peak memory of decoding hostile inputs: declared sizes are never trusted.

Why: a stream declaring a 1 GiB buffer, ten million list elements or nesting
ten thousand levels deep must be refused having allocated about as much as the
input it actually sent -- O(n) in the input plus the named limits of
:mod:`migcompat.limits` -- not what it declared. This module builds such inputs
from real encodings of the benchmark workloads (so everything before the lie is
valid), decodes them through the product's codecs, and measures the peak with
:mod:`tracemalloc`.

Each case reports the input size, the size it declares, the peak traced
allocation during the decode, and the error the decoder gave (any outcome but a
:class:`~migcompat.errors.DecodeError` is a bug and is reported as such).
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from migcompat.codec.compiled import Format, compile_codec
from migcompat.errors import DecodeError
from migcompat.model.vmstate import Description
from migcompat.perf.workloads import CONFIG_SIZE, SBUF_SIZE, SLIRP, VIRTIO, make_slirp_state, make_virtio_state

GIB = 1 << 30


@dataclass(frozen=True)
class HostileCase:
    """A named hostile input for one codec."""

    name: str
    wire: Format
    description: Description
    #: What the input claims, in bytes or elements, for the report.
    declared: str
    build: Callable[[], bytes]


@dataclass(frozen=True)
class MemoryFigure:
    name: str
    wire: str
    declared: str
    input_bytes: int
    peak_bytes: int
    outcome: str

    def to_json(self) -> dict[str, Any]:
        return {
            "case": self.name,
            "wire": self.wire,
            "declared": self.declared,
            "input_bytes": self.input_bytes,
            "peak_bytes": self.peak_bytes,
            "outcome": self.outcome,
        }


def _slirp_qemufile_huge_buffer() -> bytes:
    """One socket whose receive buffer says 0xffffffff bytes; 64 bytes follow."""
    data = compile_codec(SLIRP, "qemufile").encode(make_slirp_state(1))
    # marker, so_urgc, two IPv4 addresses (8 bytes each), iptos, emu, type, state, sb_cc:
    at = 1 + 4 + 8 + 8 + 3 + 4 + 4
    return data[:at] + b"\xff\xff\xff\xff" + data[at + 4 : at + 4 + 64]


def _virtio_qemufile_queues(count: int) -> Callable[[], bytes]:
    def build() -> bytes:
        """A virtio header declaring ``count`` queues, then one queue's bytes."""
        data = compile_codec(VIRTIO, "qemufile").encode(make_virtio_state(1))
        at = 8 + 8 + 1 + 1 + 2 + CONFIG_SIZE
        return data[:at] + count.to_bytes(4, "big") + data[at + 4 :]

    return build


def _indefinite(data: bytes) -> bytes:
    """Our definite-length BER with every SEQUENCE re-framed as indefinite-length,
    so a lie in a leaf is not already caught by an enclosing length."""
    out = bytearray()
    position = 0
    while position < len(data):
        tag = data[position]
        first = data[position + 1]
        if first < 0x80:
            size, content = first, position + 2
        else:
            octets = first & 0x7F
            size, content = int.from_bytes(data[position + 2 : position + 2 + octets], "big"), position + 2 + octets
        if tag == 0x30:
            out += b"\x30\x80" + _indefinite(data[content : content + size]) + b"\x00\x00"
        else:
            out += data[position : content + size]
        position = content + size
    return bytes(out)


def _slirp_ber_buffer(declared: int) -> Callable[[], bytes]:
    def build() -> bytes:
        """A socket buffer's OCTET STRING declaring ``declared`` bytes in long form
        inside indefinite-length SEQUENCEs; 64 bytes follow."""
        data = _indefinite(compile_codec(SLIRP, "ber").encode(make_slirp_state(1)))
        header = b"\x04\x82" + SBUF_SIZE.to_bytes(2, "big")
        at = data.index(header)
        return data[:at] + b"\x04\x84" + declared.to_bytes(4, "big") + data[at + len(header) : at + len(header) + 64]

    return build


def _virtio_ber_sequence_of_ten_million() -> bytes:
    """The queue list's SEQUENCE declaring 10,000,000 minimal queues' worth of
    bytes (about 1.4 GB), then one real queue."""
    data = compile_codec(VIRTIO, "ber").encode(make_virtio_state(1))
    code = b"\x0c\x06struct"
    at = data.index(code)
    # The list's SEQUENCE header sits just before its element code.
    for header_size in (2, 3, 4):
        if data[at - header_size] == 0x30:
            start = at - header_size
            break
    else:  # pragma: no cover - the encoder always writes one of these
        raise AssertionError("no list header before the element code")
    declared = 10_000_000 * 140
    return data[:start] + b"\x30\x84" + declared.to_bytes(4, "big") + data[at:]


def _ber_deep_nesting() -> bytes:
    """Ten thousand nested indefinite-length SEQUENCEs: 20 KB of input. The
    decoder reads against the description, so it stops at the first level the
    description does not have; the depth limit guards the skipping paths."""
    return b"\x30\x80" * 10_000


CASES: tuple[HostileCase, ...] = (
    HostileCase("buffer of 4 GiB - 1", "qemufile", SLIRP, "4294967295 bytes", _slirp_qemufile_huge_buffer),
    HostileCase("10 million queues", "qemufile", VIRTIO, "10000000 elements", _virtio_qemufile_queues(10_000_000)),
    HostileCase("900,000 queues", "qemufile", VIRTIO, "900000 elements", _virtio_qemufile_queues(900_000)),
    HostileCase("OCTET STRING of 1 GiB", "ber", SLIRP, f"{GIB} bytes", _slirp_ber_buffer(GIB)),
    HostileCase("OCTET STRING of 60 MiB", "ber", SLIRP, f"{60 << 20} bytes", _slirp_ber_buffer(60 << 20)),
    HostileCase(
        "list SEQUENCE of 1.4 GB",
        "ber",
        VIRTIO,
        "1400000000 bytes (10 million queues)",
        _virtio_ber_sequence_of_ten_million,
    ),
    HostileCase("10,000 nested SEQUENCEs", "ber", VIRTIO, "depth 10000", _ber_deep_nesting),
)


def measure_case(case: HostileCase) -> MemoryFigure:
    """Decode the case's input under :mod:`tracemalloc` and report the peak."""
    data = case.build()
    codec = compile_codec(case.description, case.wire)
    codec.decode(codec.encode(_valid_state(case.description)))  # warm: code generation is not the decode
    # The native path reads the valid state by itself; a hostile input reaches the generated code too.
    codec.raw_decoder(case.description.version_id)
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    try:
        codec.decode(data)
        outcome = "BUG: loaded"
    except DecodeError as error:
        outcome = f"{type(error).__name__}: {error.message} (at {error.path or '-'}, byte offset {error.offset})"
    except Exception as error:  # a decoder bug, reported rather than hidden
        outcome = f"BUG: {type(error).__name__}: {error}"
    _, peak = tracemalloc.get_traced_memory()
    if started:
        tracemalloc.stop()
    return MemoryFigure(case.name, case.wire, case.declared, len(data), max(0, peak - before), outcome)


def _valid_state(description: Description) -> Any:
    return make_slirp_state(1) if description is SLIRP else make_virtio_state(1)


def measure_all() -> list[MemoryFigure]:
    return [measure_case(case) for case in CASES]


def render_text(figures: list[MemoryFigure]) -> str:
    lines = [
        "peak memory decoding hostile inputs (tracemalloc; refused inputs must cost O(input), not what they declare)",
        f"{'case':<26} {'wire':<9} {'declared':>38} {'input':>7} {'peak':>9}  outcome",
    ]
    for f in figures:
        lines.append(f"{f.name:<26} {f.wire:<9} {f.declared:>38} {f.input_bytes:>7,} {f.peak_bytes:>9,}  {f.outcome}")
    return "\n".join(lines) + "\n"


__all__ = ["CASES", "HostileCase", "MemoryFigure", "measure_all", "measure_case", "render_text"]
