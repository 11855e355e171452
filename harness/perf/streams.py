"""Whole real streams: splitting into sections, decoding every section, and converting, in MB/s.

Why: a release engineer's input is a whole capture, not one device's state.
Splitting a stream into its sections (sized by the vmdesc trailer, bodies kept
as bytes) is the floor every other operation is measured against; decoding
every section field by field (``migcompat inspect``) and the qemu -> BER ->
qemu conversion (``migcompat convert``) are what users run. Measured side by
side on the same captures in one run, as ratios to splitting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migcompat.codec import compiled
from migcompat.devices import resolve_section
from migcompat.errors import UsageError
from migcompat.perf.timing import FULL_BUDGET_S, FULL_ROUNDS, QUICK_BUDGET_S, QUICK_ROUNDS, measure
from migcompat.qemu import stream

#: Operation -> what it runs on the capture's bytes.
OPERATIONS: dict[str, str] = {
    "split": "sections sized by the vmdesc trailer, bodies kept as bytes",
    "inspect": "every section decoded field by field (device models, then the vmdesc)",
    "to-ber": "decode, then write the BER envelope",
    "from-ber": "read the BER envelope, then write QEMU's format",
    "to-ber-pure": "to-ber on the pure-Python path (the native BER path off)",
    "from-ber-pure": "from-ber on the pure-Python path",
}


@dataclass(frozen=True)
class StreamFigure:
    capture: str
    operation: str
    bytes: int
    seconds: float

    @property
    def megabytes_per_second(self) -> float:
        return self.bytes / self.seconds / 1e6

    def to_json(self) -> dict[str, Any]:
        return {
            "capture": self.capture,
            "operation": self.operation,
            "bytes": self.bytes,
            "seconds": self.seconds,
            "mb_per_s": self.megabytes_per_second,
        }


def _calls(data: bytes) -> dict[str, Callable[[], object]]:
    decoded = stream.parse_qemu(data, resolve_section)
    ber = stream.encode_ber(decoded, resolve_section)
    if stream.encode_qemu(stream.parse_ber(ber, resolve_section), resolve_section) != data:
        raise AssertionError("qemu -> ber -> qemu changed the capture: nothing to time")
    return {
        "split": lambda: stream.parse_qemu(data, decode_vmdesc=False),
        "inspect": lambda: stream.parse_qemu(data, resolve_section),
        "to-ber": lambda: stream.encode_ber(stream.parse_qemu(data, resolve_section), resolve_section),
        "from-ber": lambda: stream.encode_qemu(stream.parse_ber(ber, resolve_section), resolve_section),
    }


def run(directory: Path, quick: bool = False) -> list[StreamFigure]:
    """Every operation on every ``*.bin`` capture in ``directory``."""
    captures = sorted(directory.glob("*.bin"))
    if not captures:
        raise UsageError(f"no captures (*.bin) in {directory}")
    budget_s, rounds = (QUICK_BUDGET_S, QUICK_ROUNDS) if quick else (FULL_BUDGET_S, FULL_ROUNDS)
    figures = []
    for path in captures:
        data = path.read_bytes()
        for operation, call in _calls(data).items():
            timing = measure(call, budget_s=budget_s, rounds=rounds)
            figures.append(StreamFigure(path.stem, operation, len(data), timing.seconds))
        with compiled.pure_python():
            calls = _calls(data)
            for operation in ("to-ber", "from-ber"):
                timing = measure(calls[operation], budget_s=budget_s, rounds=rounds)
                figures.append(StreamFigure(path.stem, f"{operation}-pure", len(data), timing.seconds))
    return figures


def render_text(figures: list[StreamFigure]) -> str:
    lines = ["whole streams (MB/s of the capture's bytes; x = time / time to split)"]
    split = {figure.capture: figure.seconds for figure in figures if figure.operation == "split"}
    lines.append(f"  {'capture':<28} {'operation':<13} {'MB/s':>8} {'ms':>9} {'x split':>8}")
    for figure in figures:
        lines.append(
            f"  {figure.capture:<28} {figure.operation:<13} {figure.megabytes_per_second:>8.1f} "
            f"{figure.seconds * 1e3:>9.2f} {figure.seconds / split[figure.capture]:>7.1f}x"
        )
    lines.extend(f"  {name}: {meaning}" for name, meaning in OPERATIONS.items())
    return "\n".join(lines) + "\n"


__all__ = ["OPERATIONS", "StreamFigure", "render_text", "run"]
