"""Legacy wire, decode: ``decode_<struct>(d, p) -> (value, p)`` for one stream version.

Why: the generated decoder reads a run of fixed-width fields with one
``unpack_from`` and a list of fixed-size elements with one ``iter_unpack``,
checks what the input visitor checks (bool bytes, limits, bounds), and leaves
to the generic path every input it does not accept.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from migcompat.codec.analysis import Leaf, count_format, flat, struct_format
from migcompat.codec.legacy import LegacyFields, template
from migcompat.codec.source import Function
from migcompat.codec.traversal import (
    Decoding,
    default_expr,
    dict_display,
    element_limit,
    known_length,
    resolve,
)
from migcompat.limits import MAX_ELEMENTS
from migcompat.model.vmstate import Array, Buffer, Description, Field, FieldRef, FieldType, Scalar, Struct
from migcompat.wire.visitor import ListFraming


class QemuFileDecoder(LegacyFields, Decoding):
    def description_body(self, fn: Function, description: Description, version: int) -> None:
        fn(f"s = {dict_display(self.values(fn, description.fields, version))}")
        self.subsections(fn, description)
        self.validate(fn, description)
        fn("return s, p")

    def struct_body(self, fn: Function, kind: Struct, version: int) -> None:
        fn(f"return {dict_display(self.values(fn, kind.fields, version))}, p")

    def values(self, fn: Function, fields: tuple[Field, ...], version: int) -> list[tuple[str, str]]:
        siblings = self.fields(fn, fields, version, "")
        # Keep the declaration order (the walker's): runs were emitted as they ended.
        return [(f.name, siblings[f.name]) for f in fields]

    # -- fields ---------------------------------------------------------------------
    def absent(self, fn: Function, f: Field, siblings: dict[str, str]) -> None:
        var = fn.fresh(f"v_{f.name}")
        fn(f"{var} = {default_expr(self.module, f)}")
        siblings[f.name] = var

    def run(self, fn: Function, run: tuple[Field, ...], version: int, state: str, siblings: dict[str, str]) -> None:
        leaves: list[Leaf] = []
        names: list[str] = []
        composite: list[tuple[Field, str, list[str]]] = []
        for f in run:
            inner = flat(f.type, version) or []
            var = fn.fresh(f"v_{f.name}")
            siblings[f.name] = var
            leaves += inner
            if isinstance(f.type, (Scalar, Buffer)):
                names.append(var)
            else:
                parts = [fn.fresh("x") for _ in inner]
                names += parts
                composite.append((f, var, parts))
        self.unpack(fn, leaves, names)
        for f, var, parts in composite:
            fn(f"{var} = {template(fn, f.type, version, iter(parts))}")

    def unpack(self, fn: Function, leaves: list[Leaf], names: list[str]) -> None:
        """Unpack one run at ``p``: a short input is a struct.error; bools must be 0 or 1."""
        if not leaves:
            return
        packer = self.module.packer(struct_format(leaves))
        size = struct.calcsize(struct_format(leaves))
        fn(f"{', '.join(names)}, = {packer}.unpack_from(d, p)")
        offsets = [struct.calcsize(struct_format(leaves[:at])) for at, leaf in enumerate(leaves) if leaf.code == "?"]
        if offsets:
            fn(f"if {' or '.join(f'd[p + {offset}] > 1' for offset in offsets)}: raise _Fallback")
        fn(f"p += {size}")

    # -- values ---------------------------------------------------------------------
    def fixed(self, fn: Function, kind: FieldType, var: str, version: int, leaves: list[Leaf]) -> None:
        names = [fn.fresh("x") for _ in leaves]
        self.unpack(fn, leaves, names)
        fn(f"{var} = {template(fn, kind, version, iter(names))}")

    def scalar(self, fn: Function, kind: Scalar, var: str) -> None:
        """A str (the other scalars are fixed-width): a length byte, then UTF-8."""
        end = fn.fresh("end")
        fn(f"{end} = p + 1 + d[p]")
        fn(f"if {end} > len(d): raise _Fallback")
        fn(f"{var} = d[p + 1:{end}].decode()")
        fn(f"p = {end}")

    def buffer(self, fn: Function, kind: Buffer, var: str, siblings: Mapping[str, str]) -> None:
        """A buffer sized by a sibling (fixed sizes are fixed-width)."""
        assert isinstance(kind.size, FieldRef)
        size = resolve(fn, kind.size, siblings)
        fn(f"if p + {size} > len(d): raise _Fallback")
        fn(f"{var} = d[p:p + {size}]")
        fn(f"p += {size}")

    def array(self, fn: Function, kind: Array, var: str, version: int, siblings: Mapping[str, str]) -> None:
        framing = kind.framing
        leaves = flat(kind.element, version)
        if framing.kind is ListFraming.SENTINEL:
            self.sentinel(fn, kind, var, version, siblings)
            return
        count = fn.fresh("count")
        if framing.kind is ListFraming.COUNT:
            fn(f"{count}, = {self.module.packer(count_format(framing.count_bits))}.unpack_from(d, p)")
            fn(f"p += {framing.count_bits // 8}")
        else:
            fn(f"{count} = {known_length(fn, kind, siblings)}")
        fn(f"if {count} > {element_limit(kind)}: raise _Fallback")
        if leaves and struct.calcsize(struct_format(leaves)) > 0:
            # Fixed-size elements: one slice, one iter_unpack, bools checked per column.
            size = struct.calcsize(struct_format(leaves))
            end = fn.fresh("end")
            fn(f"{end} = p + {count} * {size}")
            fn(f"if {end} > len(d): raise _Fallback")
            for index, leaf in enumerate(leaves):
                if leaf.code == "?":
                    offset = struct.calcsize(struct_format(leaves[:index]))
                    fn(f'if d[p + {offset}:{end}:{size}].translate(None, b"\\x00\\x01"): raise _Fallback')
            names = [fn.fresh("x") for _ in leaves]
            element = template(fn, kind.element, version, iter(names))
            packer = self.module.packer(struct_format(leaves))
            fn(f"{var} = [{element} for {', '.join(names)}, in {packer}.iter_unpack(d[p:{end}])]")
            fn(f"p = {end}")
            return
        fn(f"{var} = []")
        element = fn.fresh("element")
        with fn.block(f"for _ in range({count}):"):
            self.value(fn, kind.element, element, version, siblings)
            fn(f"{var}.append({element})")

    def sentinel(self, fn: Function, kind: Array, var: str, version: int, siblings: Mapping[str, str]) -> None:
        """A marker before each element; a terminator after the last, or the first
        other byte (left unread) ends the list."""
        framing = kind.framing
        fn(f"{var} = []")
        element = fn.fresh("element")
        with fn.block("while True:"):
            # next_list refuses a further element (even the terminator) after MAX_ELEMENTS.
            fn(f"if len({var}) >= {MAX_ELEMENTS}: raise _Fallback")
            with fn.block("if p >= len(d):"):
                fn("break" if framing.terminator is None else "raise _Fallback")
            byte = fn.fresh("byte")
            fn(f"{byte} = d[p]")
            if framing.name_prefix is not None:
                prefix = framing.name_prefix.encode()
                condition = (
                    f"{byte} == {framing.marker} and not (p + 1 < len(d) and d[p + 1] > {len(prefix)} "
                    f"and d[p + 2:p + {2 + len(prefix)}] == {self.module.literal(prefix, 'PREFIX')})"
                )
                fn(f"if {condition}: break")
            with fn.block(f"if {byte} != {framing.marker}:"):
                if framing.terminator is None:
                    fn("break")
                else:
                    fn(f"if {byte} != {framing.terminator}: raise _Fallback")
                    fn("p += 1")
                    fn("break")
            fn("p += 1")
            if kind.max_length is not None:
                fn(f"if len({var}) >= {kind.max_length}: raise _Fallback")
            self.value(fn, kind.element, element, version, siblings)
            fn(f"{var}.append({element})")

    def subsections(self, fn: Function, description: Description) -> None:
        """0x05 then a name starting with this description's name: a subsection."""
        prefix = description.name.encode()
        table = self.subsection_table(
            description, {sub.name: self.dispatch(sub.description) for sub in description.subsections}
        )
        literal = self.module.literal(prefix, f"PREFIX_{description.name}")
        header = (
            f"p + 1 < len(d) and d[p] == 5 and d[p + 1] > {len(prefix)} and d[p + 2:p + {2 + len(prefix)}] == {literal}"
        )
        with fn.block(f"while {header}:"):
            end = fn.fresh("end")
            fn(f"{end} = p + 2 + d[p + 1]")
            fn(f"if {end} + 4 > len(d): raise _Fallback")
            fn(f"name = d[p + 2:{end}].decode()")
            fn(f"sent_version, = {self.module.packer('>I')}.unpack_from(d, {end})")
            fn(f"p = {end} + 4")
            fn(f"dispatch = {table}.get(name)")
            fn("if dispatch is None or name in s: raise _Fallback")
            fn("subsection_decoder = dispatch(sent_version)")
            fn("if subsection_decoder is None: raise _Fallback")
            fn("s[name], p = subsection_decoder(d, p)")
