"""Legacy wire, encode: ``encode_<struct>(s, ap)`` functions appending QEMU's bytes to ``ap``.

Why: the legacy stream is the bytes QEMU writes; the generated encoder writes
them a run of fields per ``pack`` call, checking every value's type once per
run, and leaves to the generic path whatever it does not check itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from migcompat.codec.analysis import Leaf, count_format, flat
from migcompat.codec.legacy import GatedRun, LegacyFields, bind_leaves
from migcompat.codec.source import Function
from migcompat.codec.traversal import (
    Encoding,
    default_expr,
    emit_checks,
    fetch_many,
    known_length,
    needed_flags,
    resolve,
    type_checks,
    when_condition,
)
from migcompat.model.vmstate import Array, Buffer, Description, Field, FieldRef, FieldType, Scalar, Struct
from migcompat.wire.visitor import ListFraming


class QemuFileEncoder(LegacyFields, Encoding[None]):
    params = "s, ap"
    groups_gated = True

    def top(self, description: Description) -> str:
        inner = self.description(description, description.version_id)
        fn = Function(self.module, "encode", "state", f"The legacy bytes of a {description.name!r} state.")
        fn("out = []")
        fn(f"{inner}(state, out.append)")
        fn('return b"".join(out)')
        fn.finish()
        return "encode"

    def description_body(self, fn: Function, description: Description, version: int) -> None:
        self.fields(fn, description.fields, version, "s")
        self.subsections(fn, description)

    def struct_body(self, fn: Function, kind: Struct, version: int) -> None:
        self.fields(fn, kind.fields, version, "s")

    # -- fields ---------------------------------------------------------------------
    def absent(self, fn: Function, f: Field, siblings: dict[str, str]) -> None:
        siblings[f.name] = default_expr(self.module, f)

    def fetch(self, fn: Function, var: str, state: str, f: Field) -> None:
        fn(f"{var} = {state}[{f.name!r}]")

    def run(self, fn: Function, run: tuple[Field, ...], version: int, state: str, siblings: dict[str, str]) -> None:
        """One pack call for consecutive fixed-width fields."""
        if run:
            self.pack(fn, self.read(fn, run, version, state, siblings))

    def gated_run(self, fn: Function, step: GatedRun, version: int, state: str, siblings: dict[str, str]) -> None:
        """One pack call either way -- the run with the group when the condition
        holds, the run alone (the group at its defaults) when it does not."""
        group = step.group
        run_leaves = self.read(fn, step.run, version, state, siblings)
        names = [fn.fresh(f"v_{f.name}") for f in group]
        with fn.block(f"if {when_condition(self.module, group[0], siblings)}:"):
            group_leaves = self.read(fn, group, version, state, {}, names)
            self.pack(fn, run_leaves + group_leaves)
        with fn.block("else:"):
            for f, name in zip(group, names, strict=True):
                fn(f"{name} = {default_expr(self.module, f)}")
            if run_leaves:
                self.pack(fn, run_leaves)
        for f, name in zip(group, names, strict=True):
            siblings[f.name] = name

    def read(
        self,
        fn: Function,
        run: tuple[Field, ...],
        version: int,
        state: str,
        siblings: dict[str, str],
        names: list[str] | None = None,
    ) -> list[tuple[Leaf, str]]:
        """Emit the reads of consecutive fixed-width fields; return their leaves."""
        if not run:
            return []
        names = names or [fn.fresh(f"v_{f.name}") for f in run]
        fetch_many(fn, run, state, names, "FIELDS")
        leaves: list[tuple[Leaf, str]] = []
        for f, name in zip(run, names, strict=True):
            bind_leaves(fn, f.type, name, version, leaves)
            siblings[f.name] = name
        return leaves

    def pack(self, fn: Function, leaves: list[tuple[Leaf, str]], prefix: str = "") -> None:
        emit_checks(fn, type_checks(leaves))
        if not leaves and not prefix:
            return
        packer = self.module.packer(">" + ("B" if prefix else "") + "".join(leaf.code for leaf, _ in leaves))
        args = ([prefix] if prefix else []) + [var for _, var in leaves]
        fn(f"ap({packer}.pack({', '.join(args)}))")

    # -- values ---------------------------------------------------------------------
    def fixed(self, fn: Function, kind: FieldType, var: str, version: int, leaves: list[Leaf]) -> None:
        bound: list[tuple[Leaf, str]] = []
        bind_leaves(fn, kind, var, version, bound)
        self.pack(fn, bound)

    def scalar(self, fn: Function, kind: Scalar, var: str) -> None:
        """A str (the other scalars are fixed-width): a length byte, then UTF-8."""
        data = fn.fresh("data")
        fn(f"if type({var}) is not str: raise _Fallback")
        fn(f"{data} = {var}.encode()")
        fn(f"ap(bytes((len({data}),)))")  # ValueError above 255: the generic path's EncodeError
        fn(f"ap({data})")

    def buffer(self, fn: Function, kind: Buffer, var: str, siblings: Mapping[str, str]) -> None:
        """A buffer sized by a sibling (fixed sizes are fixed-width)."""
        assert isinstance(kind.size, FieldRef)
        size = resolve(fn, kind.size, siblings)
        fn(f"if type({var}) not in _BYTES or len({var}) != {size}: raise _Fallback")
        fn(f"ap({var})")

    def call(self, fn: Function, callee: str, var: str) -> None:
        fn(f"{callee}({var}, ap)")

    def array(self, fn: Function, kind: Array, var: str, version: int, siblings: Mapping[str, str]) -> None:
        fn(f"if type({var}) not in _SEQ: raise _Fallback")
        framing = kind.framing
        if framing.kind is ListFraming.KNOWN:
            fn(f"if len({var}) != {known_length(fn, kind, siblings)}: raise _Fallback")
        elif framing.kind is ListFraming.COUNT:
            fn(f"ap({self.module.packer(count_format(framing.count_bits))}.pack(len({var})))")
        sentinel = framing.kind is ListFraming.SENTINEL
        element = fn.fresh("element")
        leaves = flat(kind.element, version)
        with fn.block(f"for {element} in {var}:"):
            if leaves is not None:
                bound: list[tuple[Leaf, str]] = []
                bind_leaves(fn, kind.element, element, version, bound)
                self.pack(fn, bound, prefix=str(framing.marker) if sentinel else "")
            else:
                if sentinel:
                    fn(f"ap({bytes((framing.marker,))!r})")
                self.value(fn, kind.element, element, version, siblings)
        if sentinel and framing.terminator is not None:
            fn(f"ap({bytes((framing.terminator,))!r})")

    def subsections(self, fn: Function, description: Description) -> None:
        """QEMU's subsections: 0x05, the name, the version, then the subsection."""
        flags = needed_flags(fn, description)
        for sub, flag in zip(description.subsections, flags, strict=True):
            name = sub.name.encode()
            version = sub.description.version_id
            with fn.block(f"if {flag}:"):
                if len(name) > 255 or version > 0xFFFFFFFF:
                    fn("raise _Fallback")
                    continue
                header = b"\x05" + bytes((len(name),)) + name + version.to_bytes(4, "big")
                fn(f"ap({self.module.literal(header, f'HEADER_{sub.name}')})")
                fn(f"{self.description(sub.description, version)}(s.get({sub.name!r}) or {{}}, ap)")
