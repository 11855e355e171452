"""Concrete visitors, one module per wire format, and the table of pairings.

Why a table: tests, the matrix and the benchmark iterate over every pairing; a
new format added here gets every case for free (the shape of QEMU's
test-visitor-serialization).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from migcompat.wire.ber import BerInputVisitor, BerOutputVisitor
from migcompat.wire.dict import DictInputVisitor, DictOutputVisitor
from migcompat.wire.qemufile import QemuFileInputVisitor, QemuFileOutputVisitor
from migcompat.wire.visitor import Visitor


@dataclass(frozen=True)
class Pairing:
    """An output visitor and the input visitor that reads what it writes."""

    name: str
    make_output: Callable[[], Visitor]
    make_input: Callable[[Any], Visitor]
    #: True when the format carries names and types (mismatches are detected).
    self_describing: bool
    #: True when the encoded form is bytes (truncation and garbage can be tried).
    is_bytes: bool


def _encoded(visitor: Visitor) -> Any:
    return visitor.result()  # type: ignore[attr-defined]


PAIRINGS: dict[str, Pairing] = {
    "dict": Pairing("dict", DictOutputVisitor, DictInputVisitor, self_describing=True, is_bytes=False),
    "qemufile": Pairing("qemufile", QemuFileOutputVisitor, QemuFileInputVisitor, self_describing=False, is_bytes=True),
    "ber": Pairing("ber", BerOutputVisitor, BerInputVisitor, self_describing=True, is_bytes=True),
}

__all__ = [
    "PAIRINGS",
    "BerInputVisitor",
    "BerOutputVisitor",
    "DictInputVisitor",
    "DictOutputVisitor",
    "Pairing",
    "QemuFileInputVisitor",
    "QemuFileOutputVisitor",
]
