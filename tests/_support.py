"""Helpers shared by the test modules: save/load through a pairing, and a tiny
independent BER reader used to check what the harness writes.

Why a separate BER reader: tests that say "the INTEGER of field x sits at byte
42" must not learn the 42 from the code under test. This reader knows only
X.690's definite-length TLV layout (a few lines), nothing of signatures.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from migcompat.cli import cli
from migcompat.model import vmstate
from migcompat.model.vmstate import Description, Field, Scalar, typed_state
from migcompat.qemu import peer, releases
from migcompat.wire import PAIRINGS, Pairing

PAIRING_NAMES = tuple(PAIRINGS)
BYTE_PAIRING_NAMES = tuple(name for name, pairing in PAIRINGS.items() if pairing.is_bytes)


def encode(pairing: Pairing | str, description: Description, state: dict[str, Any]) -> Any:
    """What ``pairing``'s output visitor produces for ``state``."""
    if isinstance(pairing, str):
        pairing = PAIRINGS[pairing]
    return vmstate.encode(pairing.make_output(), description, state)


def decode(pairing: Pairing | str, description: Description, encoded: Any, version: int | None = None) -> Any:
    """Load ``encoded`` with ``pairing``'s input visitor; bytes must be consumed whole."""
    if isinstance(pairing, str):
        pairing = PAIRINGS[pairing]
    visitor = pairing.make_input(encoded)
    state = vmstate.load(visitor, description, description.version_id if version is None else version)
    if pairing.is_bytes:
        visitor.finish()  # type: ignore[attr-defined]
    return state


def roundtrip(pairing: Pairing | str, description: Description, state: dict[str, Any]) -> Any:
    return decode(pairing, description, encode(pairing, description, state))


def one_field(field_type: Any, *, name: str = "case", field_name: str = "value") -> Description:
    """A description whose only member is ``field_name`` of ``field_type``."""
    return Description(name, 1, 1, (Field(field_name, field_type),))


def scalars(name: str, *members: tuple[str, str], version_id: int = 1, **options: Any) -> Description:
    """A flat description of scalar members given as (name, kind)."""
    return Description(name, version_id, 1, tuple(Field(member, Scalar(kind)) for member, kind in members), **options)


# -- an independent BER reader ----------------------------------------------


@dataclass
class Tlv:
    """One definite-length TLV: where it starts, its tag octet and its content."""

    offset: int
    tag: int
    content_offset: int
    length: int
    children: list[Tlv] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.content_offset + self.length

    def content(self, data: bytes) -> bytes:
        return data[self.content_offset : self.end]


def parse_tlv(data: bytes, offset: int = 0) -> Tlv:
    """Parse one definite-length TLV with single-octet tags (what our encoder writes)."""
    tag = data[offset]
    assert tag & 0x1F != 0x1F, "multi-byte tags are not expected from our encoder"
    first = data[offset + 1]
    if first < 0x80:
        length, content = first, offset + 2
    else:
        count = first & 0x7F
        assert 0 < count <= 8, f"unexpected length octet 0x{first:02x}"
        length = int.from_bytes(data[offset + 2 : offset + 2 + count], "big")
        content = offset + 2 + count
    node = Tlv(offset, tag, content, length)
    if tag & 0x20:
        position = content
        while position < node.end:
            child = parse_tlv(data, position)
            node.children.append(child)
            position = child.end
        assert position == node.end
    return node


def to_indefinite(data: bytes, node: Tlv | None = None) -> bytes:
    """Re-encode a definite-length BER value with every constructed length indefinite."""
    if node is None:
        node = parse_tlv(data)
    if not node.tag & 0x20:
        return data[node.offset : node.end]
    return bytes((node.tag, 0x80)) + b"".join(to_indefinite(data, child) for child in node.children) + b"\0\0"


def ber_length(length: int) -> bytes:
    """X.690 definite length, written independently of the code under test."""
    if length < 0x80:
        return bytes((length,))
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + ber_length(len(content)) + content


def utf8(text: str) -> bytes:
    return tlv(0x0C, text.encode())


def sequence(*members: bytes) -> bytes:
    return tlv(0x30, b"".join(members))


#: An empty ``subsections`` list as every description's struct ends with it.
NO_SUBSECTIONS = sequence(utf8(""))


#: ``value`` with each leaf's type part of equality (``True != 1``, ``bytes != bytearray``).
typed = typed_state


def run_cli(*args: str) -> tuple[int, str, str]:
    """``migcompat ARGS`` in process: its exit code, stdout and stderr."""
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def missing_release(name: str = peer.DEFAULT_RELEASE) -> str | None:
    """Why QEMU release ``name`` cannot run here, with the command that installs it; None when it can."""
    if peer.installed(name):
        return None
    hint = f"migcompat qemu install --release {name}"
    with contextlib.suppress(releases.ReleaseError):
        hint = releases.find(name).install_hint()
    return f"QEMU {name} is not installed ({hint})"


def needs_release(name: str = peer.DEFAULT_RELEASE) -> pytest.MarkDecorator:
    """Skip unless QEMU release ``name`` is installed, saying how to install it."""
    reason = missing_release(name)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


#: The committed captures of real QEMU releases: ``corpora/qemu-<release>/<config>[@<machine>].bin``.
CORPORA = Path(__file__).parent.parent / "corpora"
REAL_CAPTURES = sorted(CORPORA.glob("qemu-*/*.bin"))


@dataclass(frozen=True)
class Capture:
    """What a committed capture's path says: the release, machine config and machine type
    (None: the config's own) it was captured with."""

    path: Path
    release: str
    config: str
    machine: str | None

    @classmethod
    def of(cls, path: Path) -> Capture:
        config, _, machine = path.stem.partition("@")
        return cls(path, path.parent.name.removeprefix("qemu-"), config, machine or None)

    @property
    def label(self) -> str:
        return f"{self.release}/{self.path.stem}"


def capture_label(path: Path) -> str:
    return Capture.of(path).label


def require_release(name: str) -> None:
    """Inside a test: skip it unless QEMU release ``name`` is installed (see :func:`missing_release`)."""
    reason = missing_release(name)
    if reason is not None:
        pytest.skip(reason)
