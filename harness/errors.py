"""The one error hierarchy of migcompat.

Why: callers (the CLI, the matrix, the fuzz targets) must tell a clean, expected
rejection apart from a bug. Everything the project raises on purpose derives from
:class:`MigcompatError`; anything else escaping a decoder is a finding. Errors that
come from bad input carry the byte offset and the field path
(``virtio/vq[2]/last_avail_idx``) so a user can find the fault in a hex dump.

Strategy: as in h11 and cbor2, the root cannot be raised directly, and each
concrete error also inherits the builtin it refines (``ValueError``, ``EOFError``)
so generic callers keep working.
"""

from __future__ import annotations


class MigcompatError(Exception):
    """Root of every error migcompat raises on purpose; never raised itself."""

    def __init__(self, *args: object) -> None:
        if type(self) is MigcompatError:
            raise TypeError("MigcompatError is abstract; raise a subclass")
        super().__init__(*args)


class DescriptionError(MigcompatError, ValueError):
    """A device description is broken; raised when it is defined, not when used."""


class EncodeError(MigcompatError, ValueError):
    """An output visitor got a value that does not fit its declared type."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message, path)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class UsageError(MigcompatError, ValueError):
    """A command-line argument or file is unusable."""


class DecodeError(MigcompatError, ValueError):
    """Input was rejected; carries where (byte offset) and what (field path)."""

    #: Short word for reports: what kind of rejection this is.
    kind = "malformed"

    def __init__(self, message: str, *, offset: int | None = None, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.path = path

    def __str__(self) -> str:
        where = []
        if self.path:
            where.append(f"at {self.path}")
        if self.offset is not None:
            where.append(f"byte offset {self.offset}")
        return f"{self.message} ({', '.join(where)})" if where else self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments do not survive the default pickling, and the
        # matrix sends errors between worker processes.
        return (_rebuild, (type(self), self.message, self.offset, self.path))


def _rebuild(cls: type[DecodeError], message: str, offset: int | None, path: str) -> DecodeError:
    return cls(message, offset=offset, path=path)


class MalformedInput(DecodeError):
    """Bytes that no valid encoder writes (bad tag, bad length, bad marker)."""


class TruncatedInput(DecodeError, EOFError):
    """The input ended before the value it announced."""

    kind = "truncated"


class TrailingData(DecodeError):
    """Bytes left over after a complete value."""

    kind = "trailing"


class LimitExceeded(DecodeError):
    """A named limit in :mod:`migcompat.limits` was reached."""

    kind = "limit"


class MismatchDetected(DecodeError):
    """The self-describing stream disagrees with the destination's description.

    This is the detection the BER format exists for: a width, sign, name, order or
    shape change that the legacy stream would have misread silently.
    """

    kind = "detected"


class LoadRefused(DecodeError):
    """A clean, expected refusal: version out of range, unknown subsection."""

    kind = "refused"


class InvalidState(DecodeError):
    """Post-load validation rejected an impossible device state."""

    kind = "invalid"
