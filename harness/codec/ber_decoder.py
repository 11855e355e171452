"""BER, decode: ``decode_<struct>(d, p) -> (value, p)`` functions for one stream version.

Why: containers are trusted only as far as their end: every struct and list
checks that its members ended exactly where its length said, so a member that
ran past its container (or past the input) is caught there. A struct's whole
signature is compared once with ``startswith``; an integer is
``int.from_bytes`` checked against per-length bounds that reject both
non-minimal and out-of-range values.
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
    members,
    signature,
    signature_text,
    signature_variants,
    simple_struct,
    static_present,
)
from migcompat.codec.runtime import (
    EMPTY_CODE,
    TAG_OCTET_STRING,
    TAG_SEQUENCE,
    TAG_UTF8STRING,
    tlv_head,
)
from migcompat.codec.source import Function
from migcompat.codec.traversal import (
    Decoding,
    default_expr,
    dict_display,
    element_limit,
    known_length,
    resolve,
    when_condition,
)
from migcompat.model.vmstate import Array, Buffer, Description, Field, Scalar, Struct
from migcompat.wire.ber import CODES
from migcompat.wire.visitor import INTEGER_KINDS, ListFraming


def uint_high(bits: int) -> tuple[int, ...]:
    """Per content length: one past the highest canonical value of an unsigned kind."""
    return (0, *(min(1 << (8 * n - 1), 1 << bits) for n in range(1, bits // 8 + 2)))


def sint_bounds(bits: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Per content length for a signed kind: the kind's range within that length
    (low, high) and the range one octet shorter would hold (non-minimal)."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    out_lo, out_hi, in_lo, in_hi = [1], [0], [1], [0]
    for n in range(1, bits // 8 + 1):
        out_lo.append(max(lo, -(1 << (8 * n - 1))))
        out_hi.append(min(hi, (1 << (8 * n - 1)) - 1))
        if n == 1:
            in_lo.append(1)
            in_hi.append(0)
        else:
            in_lo.append(-(1 << (8 * (n - 1) - 1)))
            in_hi.append((1 << (8 * (n - 1) - 1)) - 1)
    return tuple(out_lo), tuple(out_hi), tuple(in_lo), tuple(in_hi)


class BerDecoder(Decoding):
    def header(self, fn: Function, at: str, tag: int, content: str, end: str) -> None:
        """A definite-length header of ``tag`` at ``at``: content offset and end."""
        size = fn.fresh("size")
        fn(f"if d[{at}] != {tag}: raise _Fallback")
        fn(f"{size} = d[{at} + 1]")
        with fn.block(f"if {size} < 128:"):
            fn(f"{content} = {at} + 2")
        with fn.block(f"elif {size} == 129:"):
            fn(f"{size} = d[{at} + 2]")
            fn(f"{content} = {at} + 3")
        with fn.block("else:"):
            fn(f"{size}, {content} = _long_length(d, {at} + 1)")
        fn(f"{end} = {content} + {size}")

    def open_list(self, fn: Function, code: bytes, end_hint: str = "end") -> str:
        """A SEQUENCE of elements of one type code (or the empty list) at ``p``:
        ``p`` is left at the first element; return the variable holding its end."""
        content = fn.fresh("content")
        end = fn.fresh(end_hint)
        self.header(fn, "p", TAG_SEQUENCE, content, end)
        with fn.block(f"if d.startswith({self.module.literal(code, 'CODE')}, {content}):"):
            fn(f"p = {content} + {len(code)}")
        with fn.block(f"elif {content} + 2 == {end} and d.startswith({EMPTY_CODE!r}, {content}):"):
            fn(f"p = {end}")
        with fn.block("else:"):
            fn("raise _Fallback")
        return end

    def description_body(self, fn: Function, description: Description, version: int) -> None:
        end, span = self.open_struct(fn, description.fields, version, subsections=True)
        values = self.fields(fn, description.fields, version, span, subsections=True)
        fn(f"s = {dict_display(values)}")
        self.subsections(fn, description)
        fn(f"if p != {end}: raise _Fallback")
        self.validate(fn, description)
        fn("return s, p")

    def struct_body(self, fn: Function, kind: Struct, version: int) -> None:
        fn(f"return {self.struct_value(fn, kind, version)}, p")

    def struct_value(self, fn: Function, kind: Struct, version: int) -> str:
        """Emit a struct read in place; return the expression of its value."""
        end, span = self.open_struct(fn, kind.fields, version, subsections=False)
        values = self.fields(fn, kind.fields, version, span, subsections=False)
        fn(f"if p != {end}: raise _Fallback")
        return dict_display(values)

    def open_struct(
        self, fn: Function, fields: tuple[Field, ...], version: int, *, subsections: bool
    ) -> tuple[str, tuple[str, str] | None]:
        """The SEQUENCE header and its signature: a static signature is compared
        here; with value-gated fields the signature depends on values not read
        yet, so its span is returned and :meth:`fields` compares it after them."""
        content = fn.fresh("content")
        end = fn.fresh("end")
        self.header(fn, "p", TAG_SEQUENCE, content, end)
        present = [f for f in fields if static_present(f, version)]
        if any(f.when is not None for f in present):
            signature_content = fn.fresh("signature_content")
            signature_end = fn.fresh("signature_end")
            self.header(fn, content, TAG_UTF8STRING, signature_content, signature_end)
            fn(f"p = {signature_end}")
            return end, (content, signature_end)
        tail = [SUBSECTIONS_MEMBER] if subsections else []
        static = signature(members(present) + tail)
        fn(f"if not d.startswith({self.module.literal(static, 'SIGNATURE')}, {content}): raise _Fallback")
        fn(f"p = {content} + {len(static)}")
        return end, None

    def fields(
        self,
        fn: Function,
        fields: tuple[Field, ...],
        version: int,
        span: tuple[str, str] | None,
        *,
        subsections: bool,
    ) -> list[tuple[str, str]]:
        module = self.module
        siblings: dict[str, str] = {}
        present, gated = ber_members(fields, version)
        mask = ""
        if gated:
            mask = fn.fresh("mask")
            fn(f"{mask} = 0")
        for f in fields:
            var = fn.fresh(f"v_{f.name}")
            if not static_present(f, version):
                fn(f"{var} = {default_expr(module, f)}")
            elif f.when is not None:
                with fn.block(f"if {when_condition(module, f, siblings)}:"):
                    fn(f"{mask} |= {1 << gated.index(f)}")
                    self.value(fn, f.type, var, version, siblings)
                with fn.block("else:"):
                    fn(f"{var} = {default_expr(module, f)}")
            else:
                self.value(fn, f.type, var, version, siblings)
            siblings[f.name] = var
        if gated:
            tail: list[Member] = [SUBSECTIONS_MEMBER] if subsections else []
            variants = signature_variants(present, gated, tail)
            table = module.const(variants, "SIGNATURES", key=variants)
            assert span is not None
            fn(f"if d[{span[0]}:{span[1]}] != {table}[{mask}]: raise _Fallback")
        return [(f.name, siblings[f.name]) for f in fields]

    def integer(self, fn: Function, kind: str, var: str) -> None:
        """A canonical INTEGER of ``kind``: minimal content, in range."""
        module = self.module
        bits, signed = INTEGER_KINDS[kind]
        size = fn.fresh("n")
        fn("if d[p] != 2: raise _Fallback")
        fn(f"{size} = d[p + 1]")
        if signed:
            out_lo, out_hi, in_lo, in_hi = (
                module.const(table, f"{kind}_{label}", key=(kind, label))
                for label, table in zip(("LOW", "HIGH", "SHORT_LOW", "SHORT_HIGH"), sint_bounds(bits), strict=True)
            )
            fn(f'{var} = _from_bytes(d[p + 2:p + 2 + {size}], "big", signed=True)')
            fn(
                f"if not {out_lo}[{size}] <= {var} <= {out_hi}[{size}] "
                f"or {in_lo}[{size}] <= {var} <= {in_hi}[{size}]: raise _Fallback"
            )
        else:
            high = module.const(uint_high(bits), f"{kind}_HIGH", key=(kind, "HIGH"))
            fn(f'{var} = _from_bytes(d[p + 2:p + 2 + {size}], "big")')
            fn(f"if not _UINT_LOW[{size}] <= {var} < {high}[{size}]: raise _Fallback")
        fn(f"p += 2 + {size}")

    def string(self, fn: Function, tag: int, var: str) -> None:
        content = fn.fresh("content")
        end = fn.fresh("end")
        self.header(fn, "p", tag, content, end)
        fn(f"{var} = d[{content}:{end}]")
        fn(f"p = {end}")

    # -- values -----------------------------------------------------------------------
    def scalar(self, fn: Function, kind: Scalar, var: str) -> None:
        if kind.kind in INTEGER_KINDS:
            self.integer(fn, kind.kind, var)
        elif kind.kind == "bool":
            fn(f"{var} = _BOOL_VALUES[d[p:p + 3]]")
            fn("p += 3")
        else:
            self.string(fn, TAG_UTF8STRING, var)
            fn(f"{var} = {var}.decode()")

    def buffer(self, fn: Function, kind: Buffer, var: str, siblings: Mapping[str, str]) -> None:
        if isinstance(kind.size, int):
            header = tlv_head(TAG_OCTET_STRING, kind.size)
            fn(f"if not d.startswith({self.module.literal(header, 'OCTETS')}, p): raise _Fallback")
            fn(f"{var} = d[p + {len(header)}:p + {len(header) + kind.size}]")
            fn(f"p += {len(header) + kind.size}")
        else:
            size = resolve(fn, kind.size, siblings)
            self.string(fn, TAG_OCTET_STRING, var)
            fn(f"if len({var}) != {size}: raise _Fallback")

    def array(self, fn: Function, kind: Array, var: str, version: int, siblings: Mapping[str, str]) -> None:
        expected = known_length(fn, kind, siblings) if kind.framing.kind is ListFraming.KNOWN else None
        end = self.open_list(fn, code_tlv(ber_code(kind.element)))
        fn(f"{var} = []")
        append = fn.fresh("append")
        fn(f"{append} = {var}.append")
        element = fn.fresh("element")
        with fn.block(f"while p < {end}:"):
            if isinstance(kind.element, Struct) and simple_struct(kind.element, version):
                fn(f"{append}({self.struct_value(fn, kind.element, version)})")
            else:
                self.value(fn, kind.element, element, version, siblings)
                fn(f"{append}({element})")
        fn(f"if p != {end}: raise _Fallback")
        limit = element_limit(kind)
        if expected is not None:
            fn(f"if len({var}) != {expected} or len({var}) > {limit}: raise _Fallback")
        else:
            fn(f"if len({var}) > {limit}: raise _Fallback")

    def subsections(self, fn: Function, description: Description) -> None:
        """The ``subsections`` list of entry structs (name, version_id, critical, subsection)."""
        known = {}
        for sub in description.subsections:
            entry_signature = signature_text([*ENTRY_MEMBERS, (sub.name, CODES["struct"])])
            known[sub.name] = (entry_signature, self.dispatch(sub.description))
        table = self.subsection_table(description, known)
        end = self.open_list(fn, code_tlv(CODES["struct"]), end_hint="list_end")
        with fn.block(f"while p < {end}:"):
            entry = fn.fresh("entry")
            entry_end = fn.fresh("entry_end")
            self.header(fn, "p", TAG_SEQUENCE, entry, entry_end)
            fn(f"p = {entry}")
            self.string(fn, TAG_UTF8STRING, "signature")
            self.string(fn, TAG_UTF8STRING, "name")
            fn("name = name.decode()")
            fn(f"known = {table}.get(name)")
            fn("if known is None or signature != known[0] or name in s: raise _Fallback")
            self.integer(fn, "uint32", "sent_version")
            fn("_critical = _BOOL_VALUES[d[p:p + 3]]")
            fn("p += 3")
            fn("subsection_decoder = known[1](sent_version)")
            fn("if subsection_decoder is None: raise _Fallback")
            fn("s[name], p = subsection_decoder(d, p)")
            fn(f"if p != {entry_end}: raise _Fallback")
        fn(f"if p != {end}: raise _Fallback")
