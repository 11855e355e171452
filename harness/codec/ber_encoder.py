"""BER, encode: ``encode_<struct>(s) -> bytes`` functions returning a whole TLV.

Why: each member is a few pieces of bytes and a known size, so a struct is one
``join`` behind a header computed from the sizes. An integer's header comes
from a table indexed by its bit length that is only as long as the kind's
range: a value out of range is an ``IndexError`` (a negative one for an
unsigned kind an ``OverflowError`` from ``to_bytes``) -- the range check
costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from migcompat.codec.analysis import (
    ENTRY_MEMBERS,
    SUBSECTIONS_MEMBER,
    Member,
    ber_code,
    ber_members,
    code_tlv,
    flat,
    members,
    signature,
    signature_variants,
    simple_struct,
    static_present,
)
from migcompat.codec.runtime import BOOL_TLVS, EMPTY_CODE, EMPTY_LIST, TAG_INTEGER, TAG_OCTET_STRING, tlv_head
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
from migcompat.model.vmstate import Array, Buffer, Description, Field, FieldType, Scalar, Struct
from migcompat.wire.ber import CODES, encode_integer
from migcompat.wire.visitor import INTEGER_KINDS, ListFraming, integer_range

#: A member's TLV: the expressions of its pieces and of their sizes (digits: constants).
Pieces = tuple[list[str], list[str]]


class BerEncoder(Encoding[Pieces]):
    params = "s"

    def top(self, description: Description) -> str:
        inner = self.description(description, description.version_id)
        fn = Function(self.module, "encode", "state", f"The BER bytes of a {description.name!r} state.")
        fn(f"return {inner}(state)")
        fn.finish()
        return "encode"

    def description_body(self, fn: Function, description: Description, version: int) -> None:
        fn(f"return {self.fields(fn, description.fields, version, 's', description=description)}")

    def struct_body(self, fn: Function, kind: Struct, version: int) -> None:
        fn(f"return {self.fields(fn, kind.fields, version, 's', description=None)}")

    def fields(
        self, fn: Function, fields: tuple[Field, ...], version: int, state: str, *, description: Description | None
    ) -> str:
        """Emit a struct's members (and a description's subsection list); return
        the variable holding the struct's TLV."""
        module = self.module
        siblings: dict[str, str] = {}
        present, gated = ber_members(fields, version)
        for f in fields:
            if not static_present(f, version):
                siblings[f.name] = default_expr(module, f)
        # Every ungated value at once (one itemgetter), then one type check.
        plain = [f for f in present if f.when is None]
        names = {f.name: fn.fresh(f"v_{f.name}") for f in plain}
        if plain:
            fetch_many(fn, plain, state, list(names.values()), "FIELDS")
        self.check_types(fn, [(f.type, names[f.name]) for f in plain])
        pieces: list[str] = []
        sizes: list[str] = []
        mask = items = ""
        if gated:
            mask, items = fn.fresh("mask"), fn.fresh("items")
            fn(f"{mask} = 0")
            fn(f"{items} = []")
        for f in present:
            if f.when is None:
                var = names[f.name]
                member, size = self.value(fn, f.type, var, version, siblings)
                if gated:
                    fn(f"{items} += ({', '.join(member)},)")
                else:
                    pieces += member
                    sizes += size
            else:
                var = fn.fresh(f"v_{f.name}")
                with fn.block(f"if {when_condition(module, f, siblings)}:"):
                    fn(f"{var} = {state}[{f.name!r}]")
                    fn(f"{mask} |= {1 << gated.index(f)}")
                    self.check_types(fn, [(f.type, var)])
                    member, _size = self.value(fn, f.type, var, version, siblings)
                    fn(f"{items} += ({', '.join(member)},)")
                with fn.block("else:"):
                    fn(f"{var} = {default_expr(module, f)}")
            siblings[f.name] = var
        tail: list[Member] = []
        if description is not None:
            subsections = self.subsections(fn, description)
            tail = [SUBSECTIONS_MEMBER]
            if gated:
                fn(f"{items}.append({subsections})")
            else:
                pieces.append(subsections)
                sizes.append(f"len({subsections})")
        tlv = fn.fresh("tlv")
        if not gated:
            static = signature(members(present) + tail)
            self.sequence(fn, [module.literal(static, "SIGNATURE"), *pieces], [str(len(static)), *sizes], tlv)
            return tlv
        variants = signature_variants(present, gated, tail)
        table = module.const(variants, "SIGNATURES", key=variants)
        content = fn.fresh("content")
        fn(f'{content} = {table}[{mask}] + b"".join({items})')
        self.sequence(fn, [content], [f"len({content})"], tlv)
        return tlv

    def sequence(self, fn: Function, pieces: list[str], sizes: list[str], target: str) -> None:
        """One SEQUENCE TLV of ``pieces`` whose lengths add up to ``sizes``."""
        constant = sum(int(size) for size in sizes if size.isdigit())
        terms = [size for size in sizes if not size.isdigit()]
        size = fn.fresh("size")
        fn(f"{size} = {' + '.join([str(constant), *terms])}")
        head = f"(_SEQ_HEADS[{size}] if {size} < 256 else _tlv_head(48, {size}))"
        if len(pieces) == 1:
            fn(f"{target} = {head} + {pieces[0]}")
        else:
            fn(f'{target} = b"".join(({head}, {", ".join(pieces)}))')

    def check_types(self, fn: Function, values: list[tuple[FieldType, str]]) -> None:
        """One check for the types of integer and bool members (ranges come free)."""
        leaves = [(leaf, var) for kind, var in values if isinstance(kind, Scalar) for leaf in flat(kind, 0) or []]
        emit_checks(fn, type_checks(leaves))

    # -- values (type already checked) ------------------------------------------------
    def scalar(self, fn: Function, kind: Scalar, var: str) -> Pieces:
        if kind.kind == "str":
            data = fn.fresh("data")
            head = fn.fresh("head")
            fn(f"if type({var}) is not str: raise _Fallback")
            fn(f"{data} = {var}.encode()")
            fn(f"{head} = _tlv_head(12, len({data}))")
            return [head, data], [f"len({head})", f"len({data})"]
        if kind.kind == "bool":
            return [f"_BOOL_TLVS[{var}]"], ["3"]
        bits, signed = INTEGER_KINDS[kind.kind]
        width = fn.fresh(f"bits_{var}")
        size = fn.fresh(f"n_{var}")
        heads = self.module.const(
            tuple(bytes((TAG_INTEGER, (b >> 3) + 1)) for b in range(bits if signed else bits + 1)),
            f"{kind.kind}_HEADS",
            key=kind.kind,
        )
        if signed:
            fn(f"{width} = ({var} if {var} >= 0 else ~{var}).bit_length()")
            fn(f"{size} = ({width} >> 3) + 1")
            return [f"{heads}[{width}]", f'{var}.to_bytes({size}, "big", signed=True)'], ["2", size]
        fn(f"{width} = {var}.bit_length()")
        fn(f"{size} = ({width} >> 3) + 1")
        return [f"{heads}[{width}]", f'{var}.to_bytes({size}, "big")'], ["2", size]

    def buffer(self, fn: Function, kind: Buffer, var: str, siblings: Mapping[str, str]) -> Pieces:
        if isinstance(kind.size, int):
            fn(f"if type({var}) not in _BYTES or len({var}) != {kind.size}: raise _Fallback")
            header = tlv_head(TAG_OCTET_STRING, kind.size)
            return [self.module.literal(header, "OCTETS"), var], [str(len(header) + kind.size)]
        size = resolve(fn, kind.size, siblings)
        head = fn.fresh("head")
        fn(f"if type({var}) not in _BYTES or len({var}) != {size}: raise _Fallback")
        fn(f"{head} = _tlv_head(4, {size})")
        return [head, var], [f"len({head})", size]

    def call(self, fn: Function, callee: str, var: str) -> Pieces:
        tlv = fn.fresh("tlv")
        fn(f"{tlv} = {callee}({var})")
        return [tlv], [f"len({tlv})"]

    def array(self, fn: Function, kind: Array, var: str, version: int, siblings: Mapping[str, str]) -> Pieces:
        module = self.module
        fn(f"if type({var}) not in _SEQ: raise _Fallback")
        if kind.framing.kind is ListFraming.KNOWN:
            fn(f"if len({var}) != {known_length(fn, kind, siblings)}: raise _Fallback")
        code = module.literal(code_tlv(ber_code(kind.element)), "CODE")
        items = fn.fresh("items")
        element = fn.fresh("element")
        element_kind = kind.element
        fn(f"{items} = [{code} if {var} else {EMPTY_CODE!r}]")
        if isinstance(element_kind, Scalar) and element_kind.kind in INTEGER_KINDS:
            lo, hi = integer_range(element_kind.kind)
            with fn.block(f"for {element} in {var}:"):
                fn(f"if type({element}) is not int or not {lo} <= {element} <= {hi}: raise _Fallback")
            fn(f"{items} += map(_ber_int, {var})")
        elif isinstance(element_kind, Scalar) and element_kind.kind == "bool":
            with fn.block(f"for {element} in {var}:"):
                fn(f"if type({element}) is not bool: raise _Fallback")
            fn(f"{items} += map(_BOOL_TLVS.__getitem__, {var})")
        else:
            append = fn.fresh("append")
            fn(f"{append} = {items}.append")
            with fn.block(f"for {element} in {var}:"):
                if isinstance(element_kind, Struct) and simple_struct(element_kind, version):
                    fn(f"{append}({self.fields(fn, element_kind.fields, version, element, description=None)})")
                else:
                    self.check_types(fn, [(element_kind, element)])
                    pieces, _sizes = self.value(fn, element_kind, element, version, siblings)
                    fn(f"{append}({' + '.join(pieces)})")
        tlv = fn.fresh("tlv")
        content = fn.fresh("content")
        fn(f'{content} = b"".join({items})')
        self.sequence(fn, [content], [f"len({content})"], tlv)
        return [tlv], [f"len({tlv})"]

    def subsections(self, fn: Function, description: Description) -> str:
        """The ``subsections`` list: one entry struct (name, version_id, critical,
        then the subsection) per needed subsection."""
        module = self.module
        if not description.subsections:
            return module.literal(EMPTY_LIST, "EMPTY_LIST")
        tlv = fn.fresh("subsections")
        flags = needed_flags(fn, description)
        entries = fn.fresh("entries")
        fn(f"{entries} = []")
        for sub, flag in zip(description.subsections, flags, strict=True):
            version = sub.description.version_id
            with fn.block(f"if {flag}:"):
                if version > 0xFFFFFFFF:
                    fn("raise _Fallback")
                    continue
                prefix = (
                    signature([*ENTRY_MEMBERS, (sub.name, CODES["struct"])])
                    + code_tlv(sub.name)
                    + encode_integer(version)
                    + BOOL_TLVS[sub.critical]
                )
                body = fn.fresh("body")
                entry = module.literal(prefix, f"ENTRY_{sub.name}")
                encoder = self.description(sub.description, version)
                fn(f"{body} = {entry} + {encoder}(s.get({sub.name!r}) or {{}})")
                fn(f"{entries}.append(_tlv_head(48, len({body})) + {body})")
        code = code_tlv(CODES["struct"])
        with fn.block(f"if {entries}:"):
            content = fn.fresh("content")
            fn(f'{content} = {code!r} + b"".join({entries})')
            fn(f"{tlv} = _tlv_head(48, len({content})) + {content}")
        with fn.block("else:"):
            fn(f"{tlv} = {EMPTY_LIST!r}")
        return tlv
