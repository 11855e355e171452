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

from migcompat.codec.analysis import (
    ENTRY_MEMBERS,
    SUBSECTIONS_MEMBER,
    Unsupported,
    ber_code,
    ber_members,
    check_supported,
    code_tlv,
    signature,
    signature_variants,
)
from migcompat.codec.runtime import BOOL_TLVS
from migcompat.limits import MAX_ELEMENTS
from migcompat.model.vmstate import Array, Buffer, Description, FieldRef, FieldType, Scalar, Struct, Subsection
from migcompat.wire.ber import CODES, encode_integer
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


class _Planner:
    """Plans per (description or struct, version); shared types are planned once."""

    def __init__(self) -> None:
        self._plans: dict[tuple[int, int], Plan] = {}

    def description(self, description: Description, version: int) -> Plan:
        return self._struct(description, version)

    def _struct(self, owner: Struct | Description, version: int) -> Plan:
        key = (id(owner), version)
        cached = self._plans.get(key)
        if cached is not None:
            return cached
        fields = owner.fields
        if any(not f.name for f in fields):
            raise NotPlanned("an empty member name")
        index = {f.name: i for i, f in enumerate(fields)}
        present, gated = ber_members(fields, version)
        ops: list[Plan | None] = []
        defaults: list[tuple[bool, Any]] = []
        whens: list[tuple[int, Any, int] | None] = []
        for position, f in enumerate(fields):
            ops.append(self._type(f.type, version, index, position) if f in present else None)
            default = f.default_value()
            fresh = isinstance(default, list | dict | bytearray)
            defaults.append((True, f.default_value) if fresh else (False, default))
            if f in gated:
                assert f.when is not None
                sibling = index.get(f.when[0])
                if sibling is None or sibling >= position:
                    raise NotPlanned(f"{f.name}: gated on a field that does not precede it")
                whens.append((sibling, f.when[1], gated.index(f)))
            else:
                whens.append(None)
        described = owner if isinstance(owner, Description) else None
        plan = (
            tuple(f.name for f in fields),
            tuple(ops),
            tuple(defaults),
            tuple(whens),
            signature_variants(present, gated, [SUBSECTIONS_MEMBER] if described is not None else []),
            described is not None,
            tuple(self._subsection(sub) for sub in described.subsections) if described is not None else (),
            described.validate if described is not None else None,
        )
        self._plans[key] = plan
        return plan

    def _subsection(self, sub: Subsection) -> Plan:
        """A subsection entry as the generated encoder writes it (``BerEncoder.subsections``)."""
        described = sub.description
        if described.version_id > 0xFFFFFFFF:
            raise NotPlanned(f"{sub.name}: a version beyond uint32")  # the walker refuses to write it
        return (
            sub,
            described.name,
            code_tlv(described.name),
            signature([*ENTRY_MEMBERS, (described.name, CODES["struct"])]),
            encode_integer(described.version_id),
            self.description(described, described.version_id),
            BOOL_TLVS[sub.critical],
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
            return (OP_STRUCT, self._struct(kind, version))
        if isinstance(kind, Description):
            return (OP_STRUCT, self.description(kind, kind.version_id))
        if isinstance(kind, Array):
            element = self._type(kind.element, version, siblings, position)
            code = code_tlv(ber_code(kind.element))
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
