"""Where a visitor is: the field path shared by every concrete visitor.

Why: every error must name the field (``virtio/vq[2]/last_avail_idx``). Keeping
the path as a stack of cheap entries and formatting it only when an error is
raised keeps the hot path fast.

Strategy: ``_stack`` holds one ``[name, index]`` entry per open struct or list;
``index`` is -1 for a struct and the current element for a list. Empty names (a
struct that is a list element) are left out of the formatted path.
"""

from __future__ import annotations

from migcompat.errors import DecodeError, EncodeError, LimitExceeded
from migcompat.limits import MAX_DEPTH


class PathTracker:
    """Mixin: keeps the open structs and lists, formats the path on demand."""

    def __init__(self) -> None:
        self._stack: list[list[object]] = []

    def _push(self, name: str, index: int) -> None:
        if len(self._stack) >= MAX_DEPTH:
            raise LimitExceeded(f"nesting deeper than {MAX_DEPTH}", offset=self._offset(), path=self.path())
        self._stack.append([name, index])

    def _offset(self) -> int | None:
        return None

    def path(self, leaf: str = "") -> str:
        parts = []
        for entry in self._stack:
            name, index = entry[0], entry[1]
            if index == -1:
                if name:
                    parts.append(str(name))
            else:
                parts.append(f"{name}[{index}]")
        if leaf:
            parts.append(leaf)
        return "/".join(parts)

    def where(self) -> tuple[int | None, str]:
        """Byte offset (None where the format has none) and field path."""
        return self._offset(), self.path()

    def _fail(self, cls: type[DecodeError], message: str, leaf: str = "", offset: int | None = None) -> DecodeError:
        return cls(message, offset=self._offset() if offset is None else offset, path=self.path(leaf))

    def _bad_value(self, message: str, leaf: str) -> EncodeError:
        return EncodeError(message, self.path(leaf))
