"""The legacy wire's share of the walk: runs of fixed-width fields, both directions.

Why: QEMU's legacy stream is big-endian fields back to back, so consecutive
fixed-width fields -- nested structs and short fixed arrays of them included --
are one ``Struct.pack`` or ``unpack_from``. Which fields form a run is the same
question for the encoder and the decoder; :func:`field_plan` answers it once
and :class:`LegacyFields` walks the answer, leaving each emitter only what it
writes for a run, a lone field and a field the version does not carry.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from migcompat.codec.analysis import Leaf, flat, static_present
from migcompat.codec.source import Function
from migcompat.codec.traversal import Traversal, default_expr, dict_display, fetch_many, when_condition
from migcompat.model.vmstate import Array, Buffer, Field, FieldType, Scalar, Struct


@dataclass(frozen=True)
class Absent:
    """A field the stream version does not carry: its default."""

    field: Field


@dataclass(frozen=True)
class Run:
    """Consecutive fixed-width fields without a value condition: one pack."""

    fields: tuple[Field, ...]


@dataclass(frozen=True)
class GatedRun:
    """The pending run, then fixed-width fields sharing one value condition
    (slirp's IPv4 ``addr`` and ``port``)."""

    run: tuple[Field, ...]
    group: tuple[Field, ...]


@dataclass(frozen=True)
class One:
    """A field written or read on its own (after the pending run)."""

    field: Field


Step = Absent | Run | GatedRun | One


def field_plan(fields: tuple[Field, ...], version: int, *, group_gated: bool) -> Iterator[Step]:
    """The steps of a struct's fields at ``version``, in the order they are emitted.

    A run ends where a field that is not fixed-width (or is value-gated) comes;
    an absent field does not end it. With ``group_gated``, fixed-width fields
    sharing a value condition join the pending run's pack call.
    """
    run: list[Field] = []
    index = 0
    while index < len(fields):
        f = fields[index]
        if not static_present(f, version):
            yield Absent(f)
        elif f.when is None and flat(f.type, version) is not None:
            run.append(f)
        else:
            group = gated_group(fields, index, version) if group_gated else []
            if group:
                yield GatedRun(tuple(run), tuple(group))
                run = []
                index += len(group)
                continue
            if run:
                yield Run(tuple(run))
                run = []
            yield One(f)
        index += 1
    if run:
        yield Run(tuple(run))


def gated_group(fields: tuple[Field, ...], index: int, version: int) -> list[Field]:
    """The fixed-width fields from ``index`` on that share one value condition;
    empty when ``fields[index]`` is not one."""
    first = fields[index]
    group: list[Field] = []
    for f in fields[index:]:
        if f.when is None or f.when != first.when or not static_present(f, version):
            break
        if flat(f.type, version) is None:
            break
        group.append(f)
    return group


class LegacyFields(Traversal[None]):
    """The walk of a struct's fields on the legacy wire."""

    packs_fixed_values = True
    #: Whether fixed-width fields sharing a value condition join the pending run.
    groups_gated: ClassVar[bool] = False

    def fields(self, fn: Function, fields: tuple[Field, ...], version: int, state: str) -> dict[str, str]:
        """Emit a struct's fields; return each field's expression (value or default)."""
        siblings: dict[str, str] = {}
        for step in field_plan(fields, version, group_gated=self.groups_gated):
            if isinstance(step, Absent):
                self.absent(fn, step.field, siblings)
            elif isinstance(step, Run):
                self.run(fn, step.fields, version, state, siblings)
            elif isinstance(step, GatedRun):
                self.gated_run(fn, step, version, state, siblings)
            else:
                self.one(fn, step.field, version, state, siblings)
        return siblings

    def one(self, fn: Function, f: Field, version: int, state: str, siblings: dict[str, str]) -> None:
        var = fn.fresh(f"v_{f.name}")
        if f.when is not None:
            with fn.block(f"if {when_condition(self.module, f, siblings)}:"):
                self.fetch(fn, var, state, f)
                self.value(fn, f.type, var, version, siblings)
            with fn.block("else:"):
                fn(f"{var} = {default_expr(self.module, f)}")
        else:
            self.fetch(fn, var, state, f)
            self.value(fn, f.type, var, version, siblings)
        siblings[f.name] = var

    @abstractmethod
    def absent(self, fn: Function, f: Field, siblings: dict[str, str]) -> None: ...

    @abstractmethod
    def run(self, fn: Function, run: tuple[Field, ...], version: int, state: str, siblings: dict[str, str]) -> None: ...

    def gated_run(self, fn: Function, step: GatedRun, version: int, state: str, siblings: dict[str, str]) -> None:
        """With :attr:`groups_gated`: the pending run and a gated group."""
        raise NotImplementedError

    def fetch(self, fn: Function, var: str, state: str, f: Field) -> None:
        """Encoders: take a field's value from the state before emitting it."""


# -- fixed-width values: leaves -----------------------------------------------------------


def bind_leaves(fn: Function, kind: FieldType, var: str, version: int, out: list[tuple[Leaf, str]]) -> None:
    """Emit statements binding the leaves of a flat value held in ``var`` (encode side)."""
    if isinstance(kind, (Scalar, Buffer)):
        leaves = flat(kind, version)
        assert leaves is not None
        out.append((leaves[0], var))
        return
    if isinstance(kind, Struct):
        present = [f for f in kind.fields if static_present(f, version)]
        if not present:
            return
        names = [fn.fresh(f"v_{f.name}") for f in present]
        fetch_many(fn, present, var, names, f"FIELDS_{kind.name}")
        for f, name in zip(present, names, strict=True):
            bind_leaves(fn, f.type, name, version, out)
        return
    assert isinstance(kind, Array) and isinstance(kind.length, int)
    fn(f"if type({var}) not in _SEQ: raise _Fallback")
    if kind.length == 0:
        fn(f"if len({var}): raise _Fallback")
        return
    names = [fn.fresh(f"{var}_{index}") for index in range(kind.length)]
    fn(f"{', '.join(names)}, = {var}")
    for name in names:
        bind_leaves(fn, kind.element, name, version, out)


def template(fn: Function, kind: FieldType, version: int, leaves: Iterator[str]) -> str:
    """An expression building a flat value from its unpacked leaves (decode side)."""
    if isinstance(kind, (Scalar, Buffer)):
        return next(leaves)
    if isinstance(kind, Struct):
        values = []
        for f in kind.fields:
            present = static_present(f, version)
            values.append((f.name, template(fn, f.type, version, leaves) if present else default_expr(fn.module, f)))
        return dict_display(values)
    assert isinstance(kind, Array) and isinstance(kind.length, int)
    return "[" + ", ".join(template(fn, kind.element, version, leaves) for _ in range(kind.length)) + "]"
