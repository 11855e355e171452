"""The native BER path: a description turned into a plan that C code runs.

Why: the generated Python codecs (:mod:`.compiled`) decide everything a
description fixes once, yet still pay the interpreter per TLV. The plan here
is the same decisions -- which fields a version carries, every signature TLV
(one per combination of value-gated fields), each integer's width, each list's
element code -- as nested tuples that :mod:`migcompat.wire._berc` (C) runs over a
state or over bytes. It is one plan per description and version, not a second
codec written per device.

The native path keeps the fast path's contract: it never reports an error of
its own. Whatever it does not handle exactly -- a subsection at another version
than its own, an unknown one, a value of an unexpected type, any BER form our
encoder does not write -- makes it return None, and the generated Python code
and then the generic walker decide, with their errors (type, message, offset,
path).

:func:`status` says which path runs: the extension is built by ``pip install .``
where a C compiler is present (an install without one still works, on the
pure-Python path), and ``MIGCOMPAT_PURE_PYTHON=1`` forces the pure path.
"""

from __future__ import annotations

import os
from typing import Any

from migcompat.codec.analysis import Unsupported, check_supported
from migcompat.limits import MAX_ELEMENTS
from migcompat.model.vmstate import Array, Buffer, Description, Field, FieldRef, FieldType, Scalar, Struct, Subsection
from migcompat.wire.ber import CODES, TAG_UTF8STRING, encode_integer, encode_tlv, signature_text
from migcompat.wire.visitor import INTEGER_KINDS

try:
    from migcompat.wire import _berc  # type: ignore[attr-defined]
except ImportError:  # built without a C compiler: the pure-Python path runs
    _berc = None

OP_INT, OP_BOOL, OP_BUF, OP_STR, OP_STRUCT, OP_LIST = range(6)
Plan = tuple[Any, ...]

#: Set to force the pure-Python path (the generated Python codecs).
PURE_PYTHON_VARIABLE = "MIGCOMPAT_PURE_PYTHON"


def forced_pure() -> bool:
    return os.environ.get(PURE_PYTHON_VARIABLE, "") not in ("", "0")


def available() -> bool:
    """True when the native path runs (built, and not forced off)."""
    return _berc is not None and not forced_pure()


def status() -> str:
    """Which BER path runs, and why, in a line for the bench and ``--version``."""
    if _berc is None:
        return "pure Python (the native extension was not built: no C compiler at install)"
    if forced_pure():
        return f"pure Python ({PURE_PYTHON_VARIABLE}=1)"
    return "native (migcompat.wire._berc)"


class NotPlanned(Exception):
    """A description the plan cannot follow exactly: the Python paths keep it."""


def _code(kind: FieldType) -> str:
    if isinstance(kind, Scalar):
        return CODES[kind.kind]
    if isinstance(kind, Buffer):
        return "buf"
    if isinstance(kind, Struct | Description):
        return "struct"
    return "list"


def _present(f: Field, version: int) -> bool:
    return not (f.since > version or (f.until is not None and version >= f.until))


class _Planner:
    """Plans per (description or struct, version); shared types are planned once."""

    def __init__(self) -> None:
        self._plans: dict[tuple[int, int], Plan] = {}

    def description(self, description: Description, version: int) -> Plan:
        return self._struct(description, description.fields, version, description)

    def _struct(self, owner: Struct | Description, fields: tuple[Field, ...], version: int, described: Any) -> Plan:
        key = (id(owner), version)
        cached = self._plans.get(key)
        if cached is not None:
            return cached
        index = {f.name: i for i, f in enumerate(fields)}
        names: list[str] = []
        ops: list[Plan | None] = []
        defaults: list[tuple[bool, Any]] = []
        whens: list[tuple[int, Any, int] | None] = []
        gated: list[Field] = []
        for position, f in enumerate(fields):
            if not f.name:
                raise NotPlanned("an empty member name")
            names.append(f.name)
            present = _present(f, version)
            ops.append(self._type(f.type, version, index, position) if present else None)
            default = f.default_value()
            fresh = isinstance(default, list | dict | bytearray)
            defaults.append((True, f.default_value) if fresh else (False, default))
            if present and f.when is not None:
                sibling = index.get(f.when[0])
                if sibling is None or sibling >= position:
                    raise NotPlanned(f"{f.name}: gated on a field that does not precede it")
                whens.append((sibling, f.when[1], len(gated)))
                gated.append(f)
            else:
                whens.append(None)
        is_description = isinstance(described, Description)
        signatures = []
        for mask in range(1 << len(gated)):
            members = [
                (f.name, _code(f.type))
                for f in fields
                if _present(f, version) and (f.when is None or mask & (1 << gated.index(f)))
            ]
            if is_description:
                members.append(("subsections", "list"))
            signatures.append(encode_tlv(TAG_UTF8STRING, signature_text(members).encode()))
        plan = (
            tuple(names),
            tuple(ops),
            tuple(defaults),
            tuple(whens),
            tuple(signatures),
            is_description,
            tuple(self._subsection(sub) for sub in described.subsections) if is_description else (),
            described.validate if is_description else None,
        )
        self._plans[key] = plan
        return plan

    def _subsection(self, sub: Subsection) -> Plan:
        """A subsection entry as the walker writes it: its name, its own version, whether it is critical."""
        described = sub.description
        entry = [("name", "str"), ("version_id", "u32"), ("critical", "bool"), (described.name, "struct")]
        return (
            sub,
            described.name,
            encode_tlv(TAG_UTF8STRING, described.name.encode()),
            encode_tlv(TAG_UTF8STRING, signature_text(entry).encode()),
            encode_integer(described.version_id),
            self.description(described, described.version_id),
            b"\x01\x01\xff" if sub.critical else b"\x01\x01\x00",
        )

    def _type(self, kind: FieldType, version: int, siblings: dict[str, int], position: int) -> Plan:
        if isinstance(kind, Scalar):
            if kind.kind == "bool":
                return (OP_BOOL,)
            if kind.kind == "str":
                return (OP_STR,)
            bits, signed = INTEGER_KINDS[kind.kind]
            return (OP_INT, bits, int(signed))
        if isinstance(kind, Buffer):
            size, ref, scale = self._length(kind.size, siblings, position)
            return (OP_BUF, size, ref, scale)
        if isinstance(kind, Struct):
            return (OP_STRUCT, self._struct(kind, kind.fields, version, kind))
        if isinstance(kind, Description):
            return (OP_STRUCT, self.description(kind, kind.version_id))
        if isinstance(kind, Array):
            element = self._type(kind.element, version, siblings, position)
            code = encode_tlv(TAG_UTF8STRING, _code(kind.element).encode())
            length = kind.length if kind.length is not None else -1
            size, ref, scale = self._length(length, siblings, position)
            maximum = kind.max_length if kind.max_length is not None else -1
            return (OP_LIST, element, code, size, ref, scale, maximum, MAX_ELEMENTS)
        raise NotPlanned(f"type {type(kind).__name__}")

    @staticmethod
    def _length(length: int | FieldRef, siblings: dict[str, int], position: int) -> tuple[int, int, int]:
        if isinstance(length, int):
            return length, -1, 1
        sibling = siblings.get(length.name)
        if sibling is None or sibling >= position:
            raise NotPlanned(f"a length held by '{length.name}', which does not precede it")
        return -1, sibling, length.scale


class NativeCodec:
    """The native BER encoder and decoders of one description.

    :meth:`encode` and :meth:`decode` return None whenever the Python paths must
    decide; a description the plan cannot follow has :attr:`unplanned` set and
    always returns None.
    """

    def __init__(self, description: Description) -> None:
        self.description = description
        self._planner = _Planner()
        self.unplanned: str | None = None
        self._encode_plan: Plan | None = None
        self._decode_plans: dict[int, Plan | None] = {}
        try:
            check_supported(description, "ber")  # depth within MAX_DEPTH: the plan's recursion is bounded
            self._encode_plan = self._planner.description(description, description.version_id)
        except (NotPlanned, Unsupported) as reason:
            self.unplanned = str(reason)

    def encode(self, state: Any) -> bytes | None:
        if self._encode_plan is None or _berc is None:
            return None
        result: bytes | None = _berc.encode(self._encode_plan, state)
        return result

    def decode(self, data: bytes, start: int, version: int) -> tuple[dict[str, Any], int] | None:
        """The state at ``start`` for an accepted stream ``version``, and where it ends."""
        if self.unplanned is not None or _berc is None:
            return None
        plan = self._decode_plans.get(version)
        if plan is None and version not in self._decode_plans:
            try:
                plan = self._planner.description(self.description, version)
            except NotPlanned:
                plan = None
            self._decode_plans[version] = plan
        if plan is None:
            return None
        result: tuple[dict[str, Any], int] | None = _berc.decode(plan, data, start)
        return result


__all__ = ["NativeCodec", "NotPlanned", "available", "forced_pure", "status"]
