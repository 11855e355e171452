"""Compiled codecs: a description turned into straight-line Python per wire format.

Why: the generic walker (:mod:`migcompat.model.vmstate`) with the visitors is the single
source of truth for both byte wires, and it is slow -- every member costs a few
method calls, a path-stack push and, for BER, a signature check. A device is
encoded and decoded with the same description over and over, so everything that
depends only on the description can be decided once: which fields exist at a
stream version, the :class:`struct.Struct` formats of runs of fixed-width legacy
fields, every BER signature and tag. This module decides it once and writes the
result down as Python source.

Strategy:

* :func:`compile_codec` (cached per description and format) generates one module
  of functions per direction, one function per struct named after it
  (``encode_virtio``, ``decode_slirp_socket``), and ``exec``\\ s it. The source
  is kept (:attr:`CompiledCodec.source`) and registered with :mod:`linecache`,
  so tracebacks through generated code show it.
* The generated code is a *fast path*. It checks every value as strictly as the
  visitors do and gives up -- by raising :class:`_Fallback` or letting one of
  the exceptions of :data:`_GIVES_UP` escape (an ``IndexError`` on a short
  input, a ``struct.error`` or ``OverflowError`` on an out-of-range value) -- on
  anything it does not handle:
  a value that does not fit, truncation, trailing bytes, a limit, a failed
  post-load check, and every BER form our encoder does not write (indefinite
  lengths, constructed strings, a BOOLEAN other than 00/FF, multi-byte tags,
  members the destination does not read). Then the generic path runs on the same
  input, so every error is exactly the generic path's (type, message, offset,
  path) and every input the fast path accepts decodes to the generic path's
  state. The fast path never reports an error of its own.
* Legacy wire: consecutive fixed-width fields -- including nested structs and
  short fixed arrays made only of them -- are one ``Struct.pack``/``unpack_from``
  behind one type check; a list of fixed-size elements is one ``iter_unpack``
  over a slice, its bool bytes checked with one strided ``translate``.
* BER: signatures and tags are precomputed TLVs. Encoding, an integer's header
  comes from a table indexed by its bit length that is exactly as long as its
  kind's range allows (the range check is the ``IndexError``), and a struct is
  one ``join`` behind a header computed from its members' sizes. Decoding, a
  struct's whole signature is compared once with ``startswith`` and an integer
  is ``int.from_bytes`` checked against per-length bounds that reject both
  non-minimal and out-of-range values. Definite lengths are read in any form the
  visitor accepts (they mean the same thing to it).
* Decoders are specialised per stream version (field gating becomes static) and
  built lazily per class of versions that gate the same fields; subsections,
  whose version is only known from the stream, dispatch to the subsection's own
  compiled codec at run time.
* Descriptions the generated code cannot follow exactly are not compiled and use
  the generic path for everything: nesting deeper than
  :data:`~migcompat.limits.MAX_DEPTH` (the visitors refuse it), an explicit default
  on a struct, array or description field (the walker visits that default on
  load), and (BER) more than :data:`MAX_WHEN_FIELDS` value-gated fields in one
  struct.
"""

from __future__ import annotations

import bisect
import itertools
import keyword
import linecache
import re
import struct
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal

from migcompat.limits import MAX_DEPTH, MAX_ELEMENTS, MAX_INPUT
from migcompat.model import vmstate
from migcompat.model.vmstate import Array, Buffer, Description, Field, FieldRef, FieldType, Scalar, State, Struct
from migcompat.wire.ber import (
    CODES,
    BerInputVisitor,
    BerOutputVisitor,
    encode_integer,
    encode_length,
    encode_tlv,
)
from migcompat.wire.qemufile import QemuFileInputVisitor, QemuFileOutputVisitor
from migcompat.wire.visitor import INTEGER_KINDS, ListFraming, integer_range

Format = Literal["qemufile", "ber"]
FORMATS: tuple[Format, ...] = ("qemufile", "ber")

#: Fixed arrays up to this many elements are flattened into a legacy run.
FLAT_ARRAY_MAX = 64
#: Most leaves (scalars, fixed buffers) in one legacy run or flat element.
FLAT_LEAVES_MAX = 512
#: Most value-gated (``when``) fields in one struct for BER: its signature is
#: one of 2**n precomputed variants.
MAX_WHEN_FIELDS = 6
#: Compiled codecs kept (each keeps its description alive).
CACHE_SIZE = 512

Encoder = Callable[[Any], bytes]
#: A generated decoder: (data, position) -> (state, position after it).
RawDecoder = Callable[[bytes, int], tuple[State, int]]


class _Fallback(Exception):
    """Raised by generated code: this input is not for the fast path."""


#: What generated code raises when it gives up on an input: its own signal, or
#: what a short input, a missing member or a value that does not fit raises on
#: the way (an ``IndexError``, ``KeyError``, ``TypeError``, ``ValueError``,
#: ``OverflowError`` or ``struct.error``). Anything else -- a ``NameError``, an
#: ``AttributeError`` -- is a bug in the generator and propagates.
_GIVES_UP = (_Fallback, IndexError, KeyError, TypeError, ValueError, OverflowError, struct.error)


class _Unsupported(Exception):
    """A description (part) the code generator does not handle."""


# -- run-time helpers the generated code uses -----------------------------------

_STRUCT_CHARS = {
    "int8": "b",
    "int16": "h",
    "int32": "i",
    "int64": "q",
    "uint8": "B",
    "uint16": "H",
    "uint32": "I",
    "uint64": "Q",
}
_COUNT_KINDS = {8: "uint8", 16: "uint16", 32: "uint32"}
_TAG_BOOLEAN, _TAG_INTEGER, _TAG_OCTET_STRING, _TAG_UTF8STRING, _TAG_SEQUENCE = 0x01, 0x02, 0x04, 0x0C, 0x30


def _tlv_head(tag: int, length: int) -> bytes:
    return bytes((tag,)) + encode_length(length)


#: SEQUENCE headers for short contents (the short and one-octet long forms).
_SEQ_HEADS = tuple(_tlv_head(_TAG_SEQUENCE, length) for length in range(256))
_BOOL_TLVS = {True: b"\x01\x01\xff", False: b"\x01\x01\x00"}
_BOOL_VALUES = {b"\x01\x01\xff": True, b"\x01\x01\x00": False}
_EMPTY_CODE = encode_tlv(_TAG_UTF8STRING, b"")
_EMPTY_LIST = _tlv_head(_TAG_SEQUENCE, len(_EMPTY_CODE)) + _EMPTY_CODE


def _long_length(data: bytes, at: int) -> tuple[int, int]:
    """A long-form definite length whose first octet is at ``at``: (length, content offset)."""
    count = data[at] - 0x80
    if not 0 < count <= 8:
        raise _Fallback
    content = at + 1 + count
    if content > len(data):
        raise _Fallback
    return int.from_bytes(data[at + 1 : content], "big"), content


def _ber_int(value: int) -> bytes:
    """An INTEGER TLV (the value already checked)."""
    return encode_integer(value)


#: Lowest canonical unsigned value per INTEGER content length (0 is never canonical).
_UINT_LOW = (1, 0, *(1 << (8 * (n - 1) - 1) for n in range(2, 10)))


def _uint_high(bits: int) -> tuple[int, ...]:
    """Per content length: one past the highest canonical value of an unsigned kind."""
    return (0, *(min(1 << (8 * n - 1), 1 << bits) for n in range(1, bits // 8 + 2)))


def _sint_bounds(bits: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
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


_HELPERS: dict[str, Any] = {
    "_Fallback": _Fallback,
    "_from_bytes": int.from_bytes,
    "_long_length": _long_length,
    "_tlv_head": _tlv_head,
    "_ber_int": _ber_int,
    "_SEQ_HEADS": _SEQ_HEADS,
    "_BOOL_TLVS": _BOOL_TLVS,
    "_BOOL_VALUES": _BOOL_VALUES,
    "_UINT_LOW": _UINT_LOW,
    "_BYTES": (bytes, bytearray),
    "_SEQ": (list, tuple),
}

# -- description analysis -----------------------------------------------------------


def _static_present(f: Field, version: int) -> bool:
    """Whether ``f`` is on the wire at ``version`` as far as versions decide."""
    return not (f.since > version or (f.until is not None and version >= f.until))


def _depth(kind: FieldType) -> int:
    """Most path-stack entries the visitors hold while visiting ``kind``."""
    if isinstance(kind, (Scalar, Buffer)):
        return 0
    if isinstance(kind, Struct):
        return 1 + max((_depth(f.type) for f in kind.fields), default=0)
    if isinstance(kind, Array):
        return 1 + _depth(kind.element)
    fields = max((_depth(f.type) for f in kind.fields), default=0)
    # The subsection list is always opened; each entry is a struct holding the walk.
    subsections = 1 + max((1 + _depth(sub.description) for sub in kind.subsections), default=0)
    return 1 + max(fields, subsections)


def _check_supported(description: Description, fmt: Format) -> None:
    """Raise :class:`_Unsupported` when the generated code could not follow the walker."""
    if _depth(description) > MAX_DEPTH:
        raise _Unsupported(f"nesting deeper than {MAX_DEPTH}")
    seen: set[int] = set()

    def fields(owner: str, members: tuple[Field, ...]) -> None:
        if fmt == "ber" and sum(f.when is not None for f in members) > MAX_WHEN_FIELDS:
            raise _Unsupported(f"{owner}: more than {MAX_WHEN_FIELDS} value-gated fields")
        for f in members:
            if f.default is not None and isinstance(f.type, (Struct, Array, Description)):
                raise _Unsupported(f"{owner}.{f.name}: explicit default on a {type(f.type).__name__}")
            kind(f.type)

    def kind(value: FieldType) -> None:
        if id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, Struct):
            fields(value.name, value.fields)
        elif isinstance(value, Array):
            kind(value.element)
        elif isinstance(value, Description):
            fields(value.name, value.fields)
            for sub in value.subsections:
                kind(sub.description)

    kind(description)


def _thresholds(fields: tuple[Field, ...], out: set[int]) -> set[int]:
    """Every version at which a field of these fields (nested structs included,
    nested descriptions excluded: they use their own version) appears or goes."""
    for f in fields:
        out.add(f.since)
        if f.until is not None:
            out.add(f.until)
        kind = f.type
        while isinstance(kind, Array):
            kind = kind.element
        if isinstance(kind, Struct):
            _thresholds(kind.fields, out)
    return out


@dataclass(frozen=True)
class _Leaf:
    """One fixed-width item of a legacy run: a struct format code and its check."""

    code: str
    #: "int", "bool" or "buffer"
    category: str
    size: int = 0


def _flat(kind: FieldType, version: int) -> list[_Leaf] | None:
    """The legacy leaves of a fixed-size value, or None when its size can vary."""
    if isinstance(kind, Scalar):
        if kind.kind in INTEGER_KINDS:
            return [_Leaf(_STRUCT_CHARS[kind.kind], "int")]
        if kind.kind == "bool":
            return [_Leaf("?", "bool")]
        return None
    if isinstance(kind, Buffer):
        return [_Leaf(f"{kind.size}s", "buffer", kind.size)] if isinstance(kind.size, int) else None
    if isinstance(kind, Struct):
        leaves: list[_Leaf] = []
        for f in kind.fields:
            if not _static_present(f, version):
                continue
            inner = _flat(f.type, version) if f.when is None else None
            if inner is None:
                return None
            leaves += inner
        return leaves if len(leaves) <= FLAT_LEAVES_MAX else None
    if isinstance(kind, Array):
        if kind.framing.kind is not ListFraming.KNOWN or not isinstance(kind.length, int):
            return None
        if kind.length > FLAT_ARRAY_MAX or (kind.max_length is not None and kind.length > kind.max_length):
            return None
        element = _flat(kind.element, version)
        if element is None or len(element) * kind.length > FLAT_LEAVES_MAX:
            return None
        return element * kind.length
    return None


def _format(leaves: list[_Leaf]) -> str:
    return ">" + "".join(leaf.code for leaf in leaves)


def _simple_struct(kind: FieldType, version: int) -> bool:
    """A struct of scalars and fixed buffers only: BER code inlines it in list loops."""
    if not isinstance(kind, Struct):
        return False
    return all(
        f.when is None and (isinstance(f.type, Scalar) or (isinstance(f.type, Buffer) and isinstance(f.type.size, int)))
        for f in kind.fields
        if _static_present(f, version)
    )


def _ber_code(kind: FieldType) -> str:
    if isinstance(kind, Scalar):
        return CODES[kind.kind]
    if isinstance(kind, Buffer):
        return CODES["buffer"]
    if isinstance(kind, Array):
        return CODES["list"]
    return CODES["struct"]


def _signature_text(members: list[tuple[str, str]]) -> bytes:
    return " ".join(f"{name}:{code}" for name, code in members).encode()


def _signature(members: list[tuple[str, str]]) -> bytes:
    """The UTF8String TLV the BER output visitor writes as a struct's first element."""
    return encode_tlv(_TAG_UTF8STRING, _signature_text(members))


#: The members of a subsection entry before the subsection itself.
_ENTRY_MEMBERS = [("name", CODES["str"]), ("version_id", CODES["uint32"]), ("critical", CODES["bool"])]


# -- generated source -----------------------------------------------------------------

_IDENTIFIER = re.compile(r"\W")


def _identifier(text: str) -> str:
    name = _IDENTIFIER.sub("_", text).strip("_") or "x"
    if name[0].isdigit():
        name = "_" + name
    return name


_MODULE_NUMBERS = itertools.count(1)
_SOURCES_SHOWN: deque[str] = deque()


class _Module:
    """The namespace and source of one generated module."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.namespace: dict[str, Any] = dict(_HELPERS)
        self.functions: list[str] = []
        self._constants: dict[tuple[str, Any], str] = {}
        self.memo: dict[Any, str] = {}

    def unique(self, hint: str) -> str:
        base = _identifier(hint)
        name = base
        for number in itertools.count(2):
            if name not in self.namespace and not keyword.iskeyword(name):
                break
            name = f"{base}_{number}"
        self.namespace[name] = None  # reserved
        return name

    def const(self, value: Any, hint: str, key: Any = None) -> str:
        """A name bound to ``value`` in the generated module (shared by ``key``)."""
        if key is not None and (hint, key) in self._constants:
            return self._constants[hint, key]
        name = self.unique(hint.upper())
        self.namespace[name] = value
        if key is not None:
            self._constants[hint, key] = name
        return name

    def literal(self, value: bytes, hint: str) -> str:
        """Short bytes inline as a literal, longer ones as a named constant."""
        return repr(value) if len(value) <= 8 else self.const(value, hint, key=value)

    def packer(self, fmt: str) -> str:
        return self.const(struct.Struct(fmt), "_S", key=fmt)

    def build(self) -> tuple[dict[str, Any], str]:
        source = "\n\n".join(self.functions) + "\n"
        filename = f"<migcompat compiled #{next(_MODULE_NUMBERS)} {self.title}>"
        # Tracebacks through generated code show it; only the newest modules are kept.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        _SOURCES_SHOWN.append(filename)
        if len(_SOURCES_SHOWN) > CACHE_SIZE:
            linecache.cache.pop(_SOURCES_SHOWN.popleft(), None)
        exec(compile(source, filename, "exec"), self.namespace)
        return self.namespace, source


class _Function:
    """One generated function's lines and local names."""

    def __init__(self, module: _Module, name: str, params: str, doc: str) -> None:
        self.module = module
        self.name = name
        self.lines = [f"def {name}({params}):", f'    """{doc}"""']
        self.indent = 1
        self.locals: set[str] = {p.strip().split("=")[0] for p in params.split(",")}

    def __call__(self, line: str) -> None:
        self.lines.append("    " * self.indent + line)

    @contextmanager
    def block(self, header: str) -> Iterator[None]:
        self(header)
        self.indent += 1
        size = len(self.lines)
        try:
            yield
        finally:
            if len(self.lines) == size:
                self("pass")
            self.indent -= 1

    def fresh(self, hint: str) -> str:
        base = _identifier(hint)
        name = base
        for number in itertools.count(2):
            if name not in self.locals and name not in self.module.namespace and not keyword.iskeyword(name):
                break
            name = f"{base}_{number}"
        self.locals.add(name)
        return name

    def finish(self) -> None:
        self.module.functions.append("\n".join(self.lines))


def _default_expr(module: _Module, f: Field) -> str:
    """An expression for a field's default, built as :meth:`Field.default_value` does."""
    if f.default is not None:
        return module.const(f.default, f"DEFAULT_{f.name}", key=id(f.default))
    kind = f.type
    if isinstance(kind, Scalar):
        return repr(kind.default())
    if isinstance(kind, Buffer):
        return module.literal(kind.default(), "ZEROS")
    return module.const(kind, f"TYPE_{getattr(kind, 'name', 'array')}", key=id(kind)) + ".default()"


def _resolve(fn: _Function, ref: FieldRef, siblings: Mapping[str, str]) -> str:
    """Emit the length a FieldRef holds; negative lengths are the generic path's error."""
    size = fn.fresh(f"size_{ref.name}")
    fn(f"{size} = int({siblings[ref.name]})")
    fn(f"if {size} < 0: raise _Fallback")
    if ref.scale != 1:
        fn(f"{size} *= {ref.scale}")
    return size


def _type_checks(leaves: list[tuple[_Leaf, str]]) -> list[str]:
    """Conditions that are true when a leaf's value has the wrong type (or buffer size)."""
    conditions = []
    ints = [var for leaf, var in leaves if leaf.category == "int"]
    bools = [var for leaf, var in leaves if leaf.category == "bool"]
    if ints:
        conditions.append("not (int is " + " is ".join(f"type({var})" for var in ints) + ")")
    if bools:
        conditions.append("not (bool is " + " is ".join(f"type({var})" for var in bools) + ")")
    for leaf, var in leaves:
        if leaf.category == "buffer":
            conditions.append(f"type({var}) not in _BYTES or len({var}) != {leaf.size}")
    return conditions


def _emit_checks(fn: _Function, conditions: list[str]) -> None:
    if not conditions:
        return
    if len(conditions) == 1:
        fn(f"if {conditions[0]}:")
    else:
        fn("if (")
        for index, condition in enumerate(conditions):
            fn(f"    {'or ' if index else ''}({condition})")
        fn("):")
    fn("    raise _Fallback")


def _bind_leaves(fn: _Function, kind: FieldType, var: str, version: int, out: list[tuple[_Leaf, str]]) -> None:
    """Emit statements binding the leaves of a flat value held in ``var`` (encode side)."""
    module = fn.module
    if isinstance(kind, (Scalar, Buffer)):
        leaves = _flat(kind, version)
        assert leaves is not None
        out.append((leaves[0], var))
        return
    if isinstance(kind, Struct):
        present = [f for f in kind.fields if _static_present(f, version)]
        if not present:
            return
        names = [fn.fresh(f"v_{f.name}") for f in present]
        if len(present) == 1:
            fn(f"{names[0]} = {var}[{present[0].name!r}]")
        else:
            getter = module.const(
                itemgetter(*(f.name for f in present)),
                f"FIELDS_{kind.name}",
                key=("getter", tuple(f.name for f in present)),
            )
            fn(f"{', '.join(names)} = {getter}({var})")
        for f, name in zip(present, names, strict=True):
            _bind_leaves(fn, f.type, name, version, out)
        return
    assert isinstance(kind, Array) and isinstance(kind.length, int)
    fn(f"if type({var}) not in _SEQ: raise _Fallback")
    if kind.length == 0:
        fn(f"if len({var}): raise _Fallback")
        return
    names = [fn.fresh(f"{var}_{index}") for index in range(kind.length)]
    fn(f"{', '.join(names)}, = {var}")
    for name in names:
        _bind_leaves(fn, kind.element, name, version, out)


def _template(fn: _Function, kind: FieldType, version: int, leaves: Iterator[str]) -> str:
    """An expression building a flat value from its unpacked leaves (decode side)."""
    if isinstance(kind, (Scalar, Buffer)):
        return next(leaves)
    if isinstance(kind, Struct):
        items = []
        for f in kind.fields:
            if _static_present(f, version):
                value = _template(fn, f.type, version, leaves)
            else:
                value = _default_expr(fn.module, f)
            items.append(f"{f.name!r}: {value}")
        return "{" + ", ".join(items) + "}"
    assert isinstance(kind, Array) and isinstance(kind.length, int)
    return "[" + ", ".join(_template(fn, kind.element, version, leaves) for _ in range(kind.length)) + "]"


# -- legacy wire: encode ----------------------------------------------------------------


class _QemuFileEncoder:
    """Generates ``encode_<struct>(s, ap)`` functions appending legacy bytes to ``ap``."""

    def __init__(self, module: _Module) -> None:
        self.module = module

    def top(self, description: Description) -> str:
        inner = self.description(description)
        fn = _Function(self.module, "encode", "state", f"The legacy bytes of a {description.name!r} state.")
        fn("out = []")
        fn(f"{inner}(state, out.append)")
        fn('return b"".join(out)')
        fn.finish()
        return "encode"

    def description(self, description: Description) -> str:
        key = ("description", id(description))
        if key in self.module.memo:
            return self.module.memo[key]
        name = self.module.unique(f"encode_{description.name}")
        self.module.memo[key] = name
        fn = _Function(self.module, name, "s, ap", f"Description {description.name!r} v{description.version_id}.")
        self.fields(fn, description.fields, description.version_id, "s")
        self.subsections(fn, description)
        fn.finish()
        return name

    def struct(self, kind: Struct, version: int) -> str:
        key = ("struct", id(kind), version)
        if key in self.module.memo:
            return self.module.memo[key]
        name = self.module.unique(f"encode_{kind.name}")
        self.module.memo[key] = name
        fn = _Function(self.module, name, "s, ap", f"Struct {kind.name!r}.")
        self.fields(fn, kind.fields, version, "s")
        fn.finish()
        return name

    def fields(self, fn: _Function, fields: tuple[Field, ...], version: int, state: str) -> None:
        siblings: dict[str, str] = {}
        run: list[Field] = []
        skip = 0
        for index, f in enumerate(fields):
            if skip:
                skip -= 1
                continue
            if not _static_present(f, version):
                siblings[f.name] = _default_expr(self.module, f)
                continue
            if f.when is None and _flat(f.type, version) is not None:
                run.append(f)
                continue
            group = self.gated_group(fields, index, version)
            if group:
                self.gated_run(fn, run, group, version, state, siblings)
                run = []
                skip = len(group) - 1
                continue
            self.run(fn, run, version, state, siblings)
            run = []
            var = fn.fresh(f"v_{f.name}")
            if f.when is not None:
                condition = f"{siblings[f.when[0]]} == {self.module.const(f.when[1], 'WHEN', key=('when', f.when[1]))}"
                with fn.block(f"if {condition}:"):
                    fn(f"{var} = {state}[{f.name!r}]")
                    self.value(fn, f.type, var, version, siblings)
                with fn.block("else:"):
                    fn(f"{var} = {_default_expr(self.module, f)}")
            else:
                fn(f"{var} = {state}[{f.name!r}]")
                self.value(fn, f.type, var, version, siblings)
            siblings[f.name] = var
        self.run(fn, run, version, state, siblings)

    @staticmethod
    def gated_group(fields: tuple[Field, ...], index: int, version: int) -> list[Field]:
        """The fixed-width fields from ``index`` on that share one value condition
        (slirp's IPv4 ``addr`` and ``port``); empty when ``fields[index]`` is not one."""
        first = fields[index]
        group: list[Field] = []
        for f in fields[index:]:
            if f.when is None or f.when != first.when or not _static_present(f, version):
                break
            if _flat(f.type, version) is None:
                break
            group.append(f)
        return group

    def gated_run(
        self,
        fn: _Function,
        run: list[Field],
        group: list[Field],
        version: int,
        state: str,
        siblings: dict[str, str],
    ) -> None:
        """The pending run and a group of fields sharing one condition: one pack
        call either way -- the run with the group when the condition holds, the
        run alone (the group at its defaults) when it does not."""
        run_leaves = self.read(fn, run, version, state, siblings)
        when = group[0].when
        assert when is not None
        names = [fn.fresh(f"v_{f.name}") for f in group]
        condition = f"{siblings[when[0]]} == {self.module.const(when[1], 'WHEN', key=('when', when[1]))}"
        with fn.block(f"if {condition}:"):
            group_leaves = self.read(fn, group, version, state, {}, names)
            self.pack(fn, run_leaves + group_leaves)
        with fn.block("else:"):
            for f, name in zip(group, names, strict=True):
                fn(f"{name} = {_default_expr(self.module, f)}")
            if run_leaves:
                self.pack(fn, run_leaves)
        for f, name in zip(group, names, strict=True):
            siblings[f.name] = name

    def read(
        self,
        fn: _Function,
        run: list[Field],
        version: int,
        state: str,
        siblings: dict[str, str],
        names: list[str] | None = None,
    ) -> list[tuple[_Leaf, str]]:
        """Emit the reads of consecutive fixed-width fields; return their leaves."""
        if not run:
            return []
        names = names or [fn.fresh(f"v_{f.name}") for f in run]
        if len(run) == 1:
            fn(f"{names[0]} = {state}[{run[0].name!r}]")
        else:
            getter = self.module.const(
                itemgetter(*(f.name for f in run)), "FIELDS", key=("getter", tuple(f.name for f in run))
            )
            fn(f"{', '.join(names)} = {getter}({state})")
        leaves: list[tuple[_Leaf, str]] = []
        for f, name in zip(run, names, strict=True):
            _bind_leaves(fn, f.type, name, version, leaves)
            siblings[f.name] = name
        return leaves

    def run(self, fn: _Function, run: list[Field], version: int, state: str, siblings: dict[str, str]) -> None:
        """One pack call for consecutive fixed-width fields."""
        if run:
            self.pack(fn, self.read(fn, run, version, state, siblings))

    def pack(self, fn: _Function, leaves: list[tuple[_Leaf, str]], prefix: str = "") -> None:
        _emit_checks(fn, _type_checks(leaves))
        if not leaves and not prefix:
            return
        packer = self.module.packer(">" + ("B" if prefix else "") + "".join(leaf.code for leaf, _ in leaves))
        args = ([prefix] if prefix else []) + [var for _, var in leaves]
        fn(f"ap({packer}.pack({', '.join(args)}))")

    def value(self, fn: _Function, kind: FieldType, var: str, version: int, siblings: Mapping[str, str]) -> None:
        """Emit the bytes of one value of any type held in ``var``."""
        leaves = _flat(kind, version)
        if leaves is not None:
            bound: list[tuple[_Leaf, str]] = []
            _bind_leaves(fn, kind, var, version, bound)
            self.pack(fn, bound)
        elif isinstance(kind, Scalar):  # str
            data = fn.fresh("data")
            fn(f"if type({var}) is not str: raise _Fallback")
            fn(f"{data} = {var}.encode()")
            fn(f"ap(bytes((len({data}),)))")  # ValueError above 255: the generic path's EncodeError
            fn(f"ap({data})")
        elif isinstance(kind, Buffer):
            assert isinstance(kind.size, FieldRef)
            size = _resolve(fn, kind.size, siblings)
            fn(f"if type({var}) not in _BYTES or len({var}) != {size}: raise _Fallback")
            fn(f"ap({var})")
        elif isinstance(kind, Struct):
            fn(f"{self.struct(kind, version)}({var}, ap)")
        elif isinstance(kind, Description):
            fn(f"{self.description(kind)}({var}, ap)")
        else:
            assert isinstance(kind, Array)
            self.array(fn, kind, var, version, siblings)

    def array(self, fn: _Function, kind: Array, var: str, version: int, siblings: Mapping[str, str]) -> None:
        fn(f"if type({var}) not in _SEQ: raise _Fallback")
        framing = kind.framing
        if framing.kind is ListFraming.KNOWN:
            assert kind.length is not None
            expected = str(kind.length) if isinstance(kind.length, int) else _resolve(fn, kind.length, siblings)
            fn(f"if len({var}) != {expected}: raise _Fallback")
        elif framing.kind is ListFraming.COUNT:
            count = self.module.packer(">" + _STRUCT_CHARS[_COUNT_KINDS[framing.count_bits]])
            fn(f"ap({count}.pack(len({var})))")
        sentinel = framing.kind is ListFraming.SENTINEL
        element = fn.fresh("element")
        leaves = _flat(kind.element, version)
        with fn.block(f"for {element} in {var}:"):
            if leaves is not None:
                bound: list[tuple[_Leaf, str]] = []
                _bind_leaves(fn, kind.element, element, version, bound)
                self.pack(fn, bound, prefix=str(framing.marker) if sentinel else "")
            else:
                if sentinel:
                    fn(f"ap({bytes((framing.marker,))!r})")
                self.value(fn, kind.element, element, version, siblings)
        if sentinel and framing.terminator is not None:
            fn(f"ap({bytes((framing.terminator,))!r})")

    def subsections(self, fn: _Function, description: Description) -> None:
        """QEMU's subsections: 0x05, the name, the version, then the subsection."""
        needed = []
        for sub in description.subsections:
            flag = fn.fresh(f"needed_{sub.name}")
            fn(f"{flag} = {self.module.const(sub, f'SUB_{sub.name}', key=id(sub))}.is_needed(s)")
            needed.append(flag)
        for sub, flag in zip(description.subsections, needed, strict=True):
            name = sub.name.encode()
            version = sub.description.version_id
            with fn.block(f"if {flag}:"):
                if len(name) > 255 or version > 0xFFFFFFFF:
                    fn("raise _Fallback")
                    continue
                header = b"\x05" + bytes((len(name),)) + name + version.to_bytes(4, "big")
                fn(f"ap({self.module.literal(header, f'HEADER_{sub.name}')})")
                fn(f"{self.description(sub.description)}(s.get({sub.name!r}) or {{}}, ap)")


# -- legacy wire: decode ------------------------------------------------------------------


class _QemuFileDecoder:
    """Generates ``decode_<struct>(d, p) -> (value, p)`` functions for one stream version."""

    def __init__(self, module: _Module, dispatch: Callable[[Description], Callable[[int], RawDecoder | None]]) -> None:
        self.module = module
        self.dispatch = dispatch

    def description(self, description: Description, version: int) -> str:
        key = ("description", id(description), version)
        if key in self.module.memo:
            return self.module.memo[key]
        name = self.module.unique(f"decode_{description.name}")
        self.module.memo[key] = name
        fn = _Function(self.module, name, "d, p", f"Description {description.name!r} at stream version {version}.")
        values = self.fields(fn, description.fields, version)
        fn("s = {" + ", ".join(f"{field!r}: {var}" for field, var in values) + "}")
        self.subsections(fn, description)
        if description.validate is not None:
            validate = self.module.const(description.validate, f"VALIDATE_{description.name}", key=id(description))
            with fn.block(f"for _problem in {validate}(s):"):
                fn("raise _Fallback")
        fn("return s, p")
        fn.finish()
        return name

    def struct(self, kind: Struct, version: int) -> str:
        key = ("struct", id(kind), version)
        if key in self.module.memo:
            return self.module.memo[key]
        name = self.module.unique(f"decode_{kind.name}")
        self.module.memo[key] = name
        fn = _Function(self.module, name, "d, p", f"Struct {kind.name!r} at stream version {version}.")
        values = self.fields(fn, kind.fields, version)
        fn("return {" + ", ".join(f"{field!r}: {var}" for field, var in values) + "}, p")
        fn.finish()
        return name

    def fields(self, fn: _Function, fields: tuple[Field, ...], version: int) -> list[tuple[str, str]]:
        siblings: dict[str, str] = {}
        run: list[Field] = []
        for f in fields:
            if not _static_present(f, version):
                var = fn.fresh(f"v_{f.name}")
                fn(f"{var} = {_default_expr(self.module, f)}")
            elif f.when is None and _flat(f.type, version) is not None:
                run.append(f)
                continue
            else:
                self.run(fn, run, version, siblings)
                run = []
                var = fn.fresh(f"v_{f.name}")
                if f.when is not None:
                    condition = (
                        f"{siblings[f.when[0]]} == {self.module.const(f.when[1], 'WHEN', key=('when', f.when[1]))}"
                    )
                    with fn.block(f"if {condition}:"):
                        self.value(fn, f.type, var, version, siblings)
                    with fn.block("else:"):
                        fn(f"{var} = {_default_expr(self.module, f)}")
                else:
                    self.value(fn, f.type, var, version, siblings)
            siblings[f.name] = var
        self.run(fn, run, version, siblings)
        # Keep the declaration order (the walker's): runs were emitted as they ended.
        return [(f.name, siblings[f.name]) for f in fields]

    def run(self, fn: _Function, run: list[Field], version: int, siblings: dict[str, str]) -> None:
        if not run:
            return
        leaves: list[_Leaf] = []
        names: list[str] = []
        composite: list[tuple[Field, str, list[str]]] = []
        for f in run:
            inner = _flat(f.type, version) or []
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
            fn(f"{var} = {_template(fn, f.type, version, iter(parts))}")

    def unpack(self, fn: _Function, leaves: list[_Leaf], names: list[str]) -> None:
        """Unpack one run at ``p``: a short input is a struct.error; bools must be 0 or 1."""
        if not leaves:
            return
        packer = self.module.packer(_format(leaves))
        size = struct.calcsize(_format(leaves))
        fn(f"{', '.join(names)}, = {packer}.unpack_from(d, p)")
        offsets = [struct.calcsize(_format(leaves[:index])) for index, leaf in enumerate(leaves) if leaf.code == "?"]
        if offsets:
            fn(f"if {' or '.join(f'd[p + {offset}] > 1' for offset in offsets)}: raise _Fallback")
        fn(f"p += {size}")

    def value(self, fn: _Function, kind: FieldType, var: str, version: int, siblings: Mapping[str, str]) -> None:
        """Emit code reading one value of any type into ``var``."""
        leaves = _flat(kind, version)
        if leaves is not None:
            names = [fn.fresh("x") for _ in leaves]
            self.unpack(fn, leaves, names)
            fn(f"{var} = {_template(fn, kind, version, iter(names))}")
        elif isinstance(kind, Scalar):  # str
            end = fn.fresh("end")
            fn(f"{end} = p + 1 + d[p]")
            fn(f"if {end} > len(d): raise _Fallback")
            fn(f"{var} = d[p + 1:{end}].decode()")
            fn(f"p = {end}")
        elif isinstance(kind, Buffer):
            assert isinstance(kind.size, FieldRef)
            size = _resolve(fn, kind.size, siblings)
            fn(f"if p + {size} > len(d): raise _Fallback")
            fn(f"{var} = d[p:p + {size}]")
            fn(f"p += {size}")
        elif isinstance(kind, Struct):
            fn(f"{var}, p = {self.struct(kind, version)}(d, p)")
        elif isinstance(kind, Description):
            fn(f"{var}, p = {self.description(kind, kind.version_id)}(d, p)")
        else:
            assert isinstance(kind, Array)
            self.array(fn, kind, var, version, siblings)

    def array(self, fn: _Function, kind: Array, var: str, version: int, siblings: Mapping[str, str]) -> None:
        framing = kind.framing
        leaves = _flat(kind.element, version)
        if framing.kind is ListFraming.SENTINEL:
            self.sentinel(fn, kind, var, version, siblings)
            return
        count = fn.fresh("count")
        if framing.kind is ListFraming.COUNT:
            packer = self.module.packer(">" + _STRUCT_CHARS[_COUNT_KINDS[framing.count_bits]])
            fn(f"{count}, = {packer}.unpack_from(d, p)")
            fn(f"p += {framing.count_bits // 8}")
        else:
            assert kind.length is not None
            length = str(kind.length) if isinstance(kind.length, int) else _resolve(fn, kind.length, siblings)
            fn(f"{count} = {length}")
        limit = MAX_ELEMENTS if kind.max_length is None else min(MAX_ELEMENTS, kind.max_length)
        fn(f"if {count} > {limit}: raise _Fallback")
        if leaves and struct.calcsize(_format(leaves)) > 0:
            # Fixed-size elements: one slice, one iter_unpack, bools checked per column.
            size = struct.calcsize(_format(leaves))
            end = fn.fresh("end")
            fn(f"{end} = p + {count} * {size}")
            fn(f"if {end} > len(d): raise _Fallback")
            for index, leaf in enumerate(leaves):
                if leaf.code == "?":
                    offset = struct.calcsize(_format(leaves[:index]))
                    fn(f'if d[p + {offset}:{end}:{size}].translate(None, b"\\x00\\x01"): raise _Fallback')
            names = [fn.fresh("x") for _ in leaves]
            template = _template(fn, kind.element, version, iter(names))
            packer = self.module.packer(_format(leaves))
            fn(f"{var} = [{template} for {', '.join(names)}, in {packer}.iter_unpack(d[p:{end}])]")
            fn(f"p = {end}")
            return
        fn(f"{var} = []")
        element = fn.fresh("element")
        with fn.block(f"for _ in range({count}):"):
            self.value(fn, kind.element, element, version, siblings)
            fn(f"{var}.append({element})")

    def sentinel(self, fn: _Function, kind: Array, var: str, version: int, siblings: Mapping[str, str]) -> None:
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

    def subsections(self, fn: _Function, description: Description) -> None:
        """0x05 then a name starting with this description's name: a subsection."""
        prefix = description.name.encode()
        known = {sub.name: self.dispatch(sub.description) for sub in description.subsections}
        table = self.module.const(known, f"SUBSECTIONS_{description.name}", key=id(description))
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


# -- BER: encode ------------------------------------------------------------------------------


class _BerEncoder:
    """Generates ``encode_<struct>(s) -> bytes`` functions returning a whole TLV.

    Each member is a few pieces of bytes and a known size, so a struct is one
    ``join`` behind a header computed from the sizes. An integer's header comes
    from a table indexed by its bit length that is only as long as the kind's
    range: a value out of range is an ``IndexError`` (a negative one for an
    unsigned kind an ``OverflowError`` from ``to_bytes``) -- the range check
    costs nothing.
    """

    def __init__(self, module: _Module) -> None:
        self.module = module

    def top(self, description: Description) -> str:
        inner = self.description(description)
        fn = _Function(self.module, "encode", "state", f"The BER bytes of a {description.name!r} state.")
        fn(f"return {inner}(state)")
        fn.finish()
        return "encode"

    def description(self, description: Description) -> str:
        key = ("description", id(description))
        if key in self.module.memo:
            return self.module.memo[key]
        name = self.module.unique(f"encode_{description.name}")
        self.module.memo[key] = name
        fn = _Function(self.module, name, "s", f"Description {description.name!r} v{description.version_id}.")
        tlv = self.fields(fn, description.fields, description.version_id, "s", description=description)
        fn(f"return {tlv}")
        fn.finish()
        return name

    def struct(self, kind: Struct, version: int) -> str:
        key = ("struct", id(kind), version)
        if key in self.module.memo:
            return self.module.memo[key]
        name = self.module.unique(f"encode_{kind.name}")
        self.module.memo[key] = name
        fn = _Function(self.module, name, "s", f"Struct {kind.name!r}.")
        tlv = self.fields(fn, kind.fields, version, "s", description=None)
        fn(f"return {tlv}")
        fn.finish()
        return name

    def fields(
        self, fn: _Function, fields: tuple[Field, ...], version: int, state: str, *, description: Description | None
    ) -> str:
        """Emit a struct's members (and a description's subsection list); return
        the variable holding the struct's TLV."""
        module = self.module
        siblings: dict[str, str] = {}
        present = [f for f in fields if _static_present(f, version)]
        gated = [f for f in present if f.when is not None]
        for f in fields:
            if not _static_present(f, version):
                siblings[f.name] = _default_expr(module, f)
        # Every ungated value at once (one itemgetter), then one type check.
        plain = [f for f in present if f.when is None]
        names = {f.name: fn.fresh(f"v_{f.name}") for f in plain}
        if len(plain) == 1:
            fn(f"{names[plain[0].name]} = {state}[{plain[0].name!r}]")
        elif plain:
            getter = module.const(
                itemgetter(*(f.name for f in plain)), "FIELDS", key=("getter", tuple(f.name for f in plain))
            )
            fn(f"{', '.join(names.values())} = {getter}({state})")
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
                member, size = self.member(fn, f.type, var, version, siblings)
                if gated:
                    fn(f"{items} += ({', '.join(member)},)")
                else:
                    pieces += member
                    sizes += size
            else:
                var = fn.fresh(f"v_{f.name}")
                condition = f"{siblings[f.when[0]]} == {module.const(f.when[1], 'WHEN', key=('when', f.when[1]))}"
                with fn.block(f"if {condition}:"):
                    fn(f"{var} = {state}[{f.name!r}]")
                    fn(f"{mask} |= {1 << gated.index(f)}")
                    self.check_types(fn, [(f.type, var)])
                    member, _size = self.member(fn, f.type, var, version, siblings)
                    fn(f"{items} += ({', '.join(member)},)")
                with fn.block("else:"):
                    fn(f"{var} = {_default_expr(module, f)}")
            siblings[f.name] = var
        tail = []
        if description is not None:
            subsections = self.subsections(fn, description)
            tail = [("subsections", CODES["list"])]
            if gated:
                fn(f"{items}.append({subsections})")
            else:
                pieces.append(subsections)
                sizes.append(f"len({subsections})")
        tlv = fn.fresh("tlv")
        if not gated:
            signature = _signature([(f.name, _ber_code(f.type)) for f in present] + tail)
            self.sequence(fn, [module.literal(signature, "SIGNATURE"), *pieces], [str(len(signature)), *sizes], tlv)
            return tlv
        variants = []
        for bits in range(1 << len(gated)):
            chosen = [f for f in present if f.when is None or bits & (1 << gated.index(f))]
            variants.append(_signature([(f.name, _ber_code(f.type)) for f in chosen] + tail))
        table = module.const(tuple(variants), "SIGNATURES", key=tuple(variants))
        content = fn.fresh("content")
        fn(f'{content} = {table}[{mask}] + b"".join({items})')
        self.sequence(fn, [content], [f"len({content})"], tlv)
        return tlv

    def sequence(self, fn: _Function, pieces: list[str], sizes: list[str], target: str) -> None:
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

    def check_types(self, fn: _Function, members: list[tuple[FieldType, str]]) -> None:
        """One check for the types of integer and bool members (ranges come free)."""
        conditions = []
        ints = [var for kind, var in members if isinstance(kind, Scalar) and kind.kind in INTEGER_KINDS]
        bools = [var for kind, var in members if isinstance(kind, Scalar) and kind.kind == "bool"]
        if ints:
            conditions.append("not (int is " + " is ".join(f"type({var})" for var in ints) + ")")
        if bools:
            conditions.append("not (bool is " + " is ".join(f"type({var})" for var in bools) + ")")
        _emit_checks(fn, conditions)

    def member(
        self, fn: _Function, kind: FieldType, var: str, version: int, siblings: Mapping[str, str]
    ) -> tuple[list[str], list[str]]:
        """Emit what one member (type already checked) needs; return the
        expressions of its TLV pieces and of their sizes (digits: constants)."""
        module = self.module
        if isinstance(kind, Scalar):
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
            heads = module.const(
                tuple(bytes((_TAG_INTEGER, (b >> 3) + 1)) for b in range(bits if signed else bits + 1)),
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
        if isinstance(kind, Buffer):
            if isinstance(kind.size, int):
                fn(f"if type({var}) not in _BYTES or len({var}) != {kind.size}: raise _Fallback")
                header = _tlv_head(_TAG_OCTET_STRING, kind.size)
                return [module.literal(header, "OCTETS"), var], [str(len(header) + kind.size)]
            size = _resolve(fn, kind.size, siblings)
            head = fn.fresh("head")
            fn(f"if type({var}) not in _BYTES or len({var}) != {size}: raise _Fallback")
            fn(f"{head} = _tlv_head(4, {size})")
            return [head, var], [f"len({head})", size]
        tlv = fn.fresh("tlv")
        if isinstance(kind, Struct):
            fn(f"{tlv} = {self.struct(kind, version)}({var})")
        elif isinstance(kind, Description):
            fn(f"{tlv} = {self.description(kind)}({var})")
        else:
            assert isinstance(kind, Array)
            tlv = self.array(fn, kind, var, version, siblings)
        return [tlv], [f"len({tlv})"]

    def array(self, fn: _Function, kind: Array, var: str, version: int, siblings: Mapping[str, str]) -> str:
        module = self.module
        fn(f"if type({var}) not in _SEQ: raise _Fallback")
        if kind.framing.kind is ListFraming.KNOWN:
            assert kind.length is not None
            expected = str(kind.length) if isinstance(kind.length, int) else _resolve(fn, kind.length, siblings)
            fn(f"if len({var}) != {expected}: raise _Fallback")
        code = module.literal(encode_tlv(_TAG_UTF8STRING, _ber_code(kind.element).encode()), "CODE")
        items = fn.fresh("items")
        element = fn.fresh("element")
        element_kind = kind.element
        fn(f"{items} = [{code} if {var} else {_EMPTY_CODE!r}]")
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
                if isinstance(element_kind, Struct) and _simple_struct(element_kind, version):
                    tlv = self.fields(fn, element_kind.fields, version, element, description=None)
                    fn(f"{append}({tlv})")
                else:
                    self.check_types(fn, [(element_kind, element)])
                    pieces, _sizes = self.member(fn, element_kind, element, version, siblings)
                    fn(f"{append}({' + '.join(pieces)})")
        tlv = fn.fresh("tlv")
        content = fn.fresh("content")
        fn(f'{content} = b"".join({items})')
        self.sequence(fn, [content], [f"len({content})"], tlv)
        return tlv

    def subsections(self, fn: _Function, description: Description) -> str:
        """The ``subsections`` list: one entry struct (name, version_id, critical,
        then the subsection) per needed subsection."""
        module = self.module
        if not description.subsections:
            return module.literal(_EMPTY_LIST, "EMPTY_LIST")
        tlv = fn.fresh("subsections")
        needed = []
        for sub in description.subsections:
            flag = fn.fresh(f"needed_{sub.name}")
            fn(f"{flag} = {module.const(sub, f'SUB_{sub.name}', key=id(sub))}.is_needed(s)")
            needed.append(flag)
        entries = fn.fresh("entries")
        fn(f"{entries} = []")
        for sub, flag in zip(description.subsections, needed, strict=True):
            version = sub.description.version_id
            with fn.block(f"if {flag}:"):
                if version > 0xFFFFFFFF:
                    fn("raise _Fallback")
                    continue
                prefix = (
                    _signature([*_ENTRY_MEMBERS, (sub.name, CODES["struct"])])
                    + encode_tlv(_TAG_UTF8STRING, sub.name.encode())
                    + encode_integer(version)
                    + _BOOL_TLVS[sub.critical]
                )
                body = fn.fresh("body")
                entry = module.literal(prefix, f"ENTRY_{sub.name}")
                encoder = self.description(sub.description)
                fn(f"{body} = {entry} + {encoder}(s.get({sub.name!r}) or {{}})")
                fn(f"{entries}.append(_tlv_head(48, len({body})) + {body})")
        code = encode_tlv(_TAG_UTF8STRING, CODES["struct"].encode())
        with fn.block(f"if {entries}:"):
            content = fn.fresh("content")
            fn(f'{content} = {code!r} + b"".join({entries})')
            fn(f"{tlv} = _tlv_head(48, len({content})) + {content}")
        with fn.block("else:"):
            fn(f"{tlv} = {_EMPTY_LIST!r}")
        return tlv


# -- BER: decode ----------------------------------------------------------------------------


class _BerDecoder:
    """Generates ``decode_<struct>(d, p) -> (value, p)`` functions for one stream version.

    Containers are trusted only as far as their end: every struct and list checks
    that its members ended exactly where its length said, so a member that ran
    past its container (or past the input) is caught there.
    """

    def __init__(self, module: _Module, dispatch: Callable[[Description], Callable[[int], RawDecoder | None]]) -> None:
        self.module = module
        self.dispatch = dispatch

    def header(self, fn: _Function, at: str, tag: int, content: str, end: str) -> None:
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

    def description(self, description: Description, version: int) -> str:
        key = ("description", id(description), version)
        if key in self.module.memo:
            return self.module.memo[key]
        name = self.module.unique(f"decode_{description.name}")
        self.module.memo[key] = name
        fn = _Function(self.module, name, "d, p", f"Description {description.name!r} at stream version {version}.")
        end, span = self.open_struct(fn, description.fields, version, subsections=True)
        values = self.fields(fn, description.fields, version, span, subsections=True)
        fn("s = {" + ", ".join(f"{field!r}: {var}" for field, var in values) + "}")
        self.subsections(fn, description)
        fn(f"if p != {end}: raise _Fallback")
        if description.validate is not None:
            validate = self.module.const(description.validate, f"VALIDATE_{description.name}", key=id(description))
            with fn.block(f"for _problem in {validate}(s):"):
                fn("raise _Fallback")
        fn("return s, p")
        fn.finish()
        return name

    def struct(self, kind: Struct, version: int) -> str:
        key = ("struct", id(kind), version)
        if key in self.module.memo:
            return self.module.memo[key]
        name = self.module.unique(f"decode_{kind.name}")
        self.module.memo[key] = name
        fn = _Function(self.module, name, "d, p", f"Struct {kind.name!r} at stream version {version}.")
        value = self.struct_body(fn, kind, version)
        fn(f"return {value}, p")
        fn.finish()
        return name

    def struct_body(self, fn: _Function, kind: Struct, version: int) -> str:
        end, span = self.open_struct(fn, kind.fields, version, subsections=False)
        values = self.fields(fn, kind.fields, version, span, subsections=False)
        fn(f"if p != {end}: raise _Fallback")
        return "{" + ", ".join(f"{field!r}: {var}" for field, var in values) + "}"

    def open_struct(
        self, fn: _Function, fields: tuple[Field, ...], version: int, *, subsections: bool
    ) -> tuple[str, tuple[str, str] | None]:
        """The SEQUENCE header and its signature: a static signature is compared
        here; with value-gated fields the signature depends on values not read
        yet, so its span is returned and :meth:`fields` compares it after them."""
        content = fn.fresh("content")
        end = fn.fresh("end")
        self.header(fn, "p", _TAG_SEQUENCE, content, end)
        present = [f for f in fields if _static_present(f, version)]
        if any(f.when is not None for f in present):
            signature_content = fn.fresh("signature_content")
            signature_end = fn.fresh("signature_end")
            self.header(fn, content, _TAG_UTF8STRING, signature_content, signature_end)
            fn(f"p = {signature_end}")
            return end, (content, signature_end)
        tail = [("subsections", CODES["list"])] if subsections else []
        signature = _signature([(f.name, _ber_code(f.type)) for f in present] + tail)
        fn(f"if not d.startswith({self.module.literal(signature, 'SIGNATURE')}, {content}): raise _Fallback")
        fn(f"p = {content} + {len(signature)}")
        return end, None

    def fields(
        self,
        fn: _Function,
        fields: tuple[Field, ...],
        version: int,
        span: tuple[str, str] | None,
        *,
        subsections: bool,
    ) -> list[tuple[str, str]]:
        module = self.module
        siblings: dict[str, str] = {}
        present = [f for f in fields if _static_present(f, version)]
        gated = [f for f in present if f.when is not None]
        mask = ""
        if gated:
            mask = fn.fresh("mask")
            fn(f"{mask} = 0")
        for f in fields:
            var = fn.fresh(f"v_{f.name}")
            if not _static_present(f, version):
                fn(f"{var} = {_default_expr(module, f)}")
            elif f.when is not None:
                condition = f"{siblings[f.when[0]]} == {module.const(f.when[1], 'WHEN', key=('when', f.when[1]))}"
                with fn.block(f"if {condition}:"):
                    fn(f"{mask} |= {1 << gated.index(f)}")
                    self.value(fn, f.type, var, version, siblings)
                with fn.block("else:"):
                    fn(f"{var} = {_default_expr(module, f)}")
            else:
                self.value(fn, f.type, var, version, siblings)
            siblings[f.name] = var
        if gated:
            tail = [("subsections", CODES["list"])] if subsections else []
            variants = []
            for bits in range(1 << len(gated)):
                chosen = [f for f in present if f.when is None or bits & (1 << gated.index(f))]
                variants.append(_signature([(f.name, _ber_code(f.type)) for f in chosen] + tail))
            table = module.const(tuple(variants), "SIGNATURES", key=tuple(variants))
            assert span is not None
            fn(f"if d[{span[0]}:{span[1]}] != {table}[{mask}]: raise _Fallback")
        return [(f.name, siblings[f.name]) for f in fields]

    def integer(self, fn: _Function, kind: str, var: str) -> None:
        """A canonical INTEGER of ``kind``: minimal content, in range."""
        module = self.module
        bits, signed = INTEGER_KINDS[kind]
        size = fn.fresh("n")
        fn("if d[p] != 2: raise _Fallback")
        fn(f"{size} = d[p + 1]")
        if signed:
            out_lo, out_hi, in_lo, in_hi = (
                module.const(table, f"{kind}_{label}", key=(kind, label))
                for label, table in zip(("LOW", "HIGH", "SHORT_LOW", "SHORT_HIGH"), _sint_bounds(bits), strict=True)
            )
            fn(f'{var} = _from_bytes(d[p + 2:p + 2 + {size}], "big", signed=True)')
            fn(
                f"if not {out_lo}[{size}] <= {var} <= {out_hi}[{size}] "
                f"or {in_lo}[{size}] <= {var} <= {in_hi}[{size}]: raise _Fallback"
            )
        else:
            high = module.const(_uint_high(bits), f"{kind}_HIGH", key=(kind, "HIGH"))
            fn(f'{var} = _from_bytes(d[p + 2:p + 2 + {size}], "big")')
            fn(f"if not _UINT_LOW[{size}] <= {var} < {high}[{size}]: raise _Fallback")
        fn(f"p += 2 + {size}")

    def string(self, fn: _Function, tag: int, var: str) -> None:
        content = fn.fresh("content")
        end = fn.fresh("end")
        self.header(fn, "p", tag, content, end)
        fn(f"{var} = d[{content}:{end}]")
        fn(f"p = {end}")

    def value(self, fn: _Function, kind: FieldType, var: str, version: int, siblings: Mapping[str, str]) -> None:
        module = self.module
        if isinstance(kind, Scalar):
            if kind.kind in INTEGER_KINDS:
                self.integer(fn, kind.kind, var)
            elif kind.kind == "bool":
                fn(f"{var} = _BOOL_VALUES[d[p:p + 3]]")
                fn("p += 3")
            else:
                self.string(fn, _TAG_UTF8STRING, var)
                fn(f"{var} = {var}.decode()")
        elif isinstance(kind, Buffer):
            if isinstance(kind.size, int):
                header = _tlv_head(_TAG_OCTET_STRING, kind.size)
                fn(f"if not d.startswith({module.literal(header, 'OCTETS')}, p): raise _Fallback")
                fn(f"{var} = d[p + {len(header)}:p + {len(header) + kind.size}]")
                fn(f"p += {len(header) + kind.size}")
            else:
                size = _resolve(fn, kind.size, siblings)
                self.string(fn, _TAG_OCTET_STRING, var)
                fn(f"if len({var}) != {size}: raise _Fallback")
        elif isinstance(kind, Struct):
            fn(f"{var}, p = {self.struct(kind, version)}(d, p)")
        elif isinstance(kind, Description):
            fn(f"{var}, p = {self.description(kind, kind.version_id)}(d, p)")
        else:
            assert isinstance(kind, Array)
            self.array(fn, kind, var, version, siblings)

    def array(self, fn: _Function, kind: Array, var: str, version: int, siblings: Mapping[str, str]) -> None:
        module = self.module
        expected = None
        if kind.framing.kind is ListFraming.KNOWN:
            assert kind.length is not None
            expected = str(kind.length) if isinstance(kind.length, int) else _resolve(fn, kind.length, siblings)
        content = fn.fresh("content")
        end = fn.fresh("end")
        self.header(fn, "p", _TAG_SEQUENCE, content, end)
        code = encode_tlv(_TAG_UTF8STRING, _ber_code(kind.element).encode())
        with fn.block(f"if d.startswith({module.literal(code, 'CODE')}, {content}):"):
            fn(f"p = {content} + {len(code)}")
        with fn.block(f"elif {content} + 2 == {end} and d.startswith({_EMPTY_CODE!r}, {content}):"):
            fn(f"p = {end}")
        with fn.block("else:"):
            fn("raise _Fallback")
        fn(f"{var} = []")
        append = fn.fresh("append")
        fn(f"{append} = {var}.append")
        element = fn.fresh("element")
        with fn.block(f"while p < {end}:"):
            if _simple_struct(kind.element, version):
                assert isinstance(kind.element, Struct)
                value = self.struct_body(fn, kind.element, version)
                fn(f"{append}({value})")
            else:
                self.value(fn, kind.element, element, version, siblings)
                fn(f"{append}({element})")
        fn(f"if p != {end}: raise _Fallback")
        limit = MAX_ELEMENTS if kind.max_length is None else min(MAX_ELEMENTS, kind.max_length)
        if expected is not None:
            fn(f"if len({var}) != {expected} or len({var}) > {limit}: raise _Fallback")
        else:
            fn(f"if len({var}) > {limit}: raise _Fallback")

    def subsections(self, fn: _Function, description: Description) -> None:
        """The ``subsections`` list of entry structs (name, version_id, critical, subsection)."""
        module = self.module
        known = {}
        for sub in description.subsections:
            signature = _signature_text([*_ENTRY_MEMBERS, (sub.name, CODES["struct"])])
            known[sub.name] = (signature, self.dispatch(sub.description))
        table = module.const(known, f"SUBSECTIONS_{description.name}", key=id(description))
        content = fn.fresh("content")
        end = fn.fresh("list_end")
        self.header(fn, "p", _TAG_SEQUENCE, content, end)
        code = encode_tlv(_TAG_UTF8STRING, CODES["struct"].encode())
        with fn.block(f"if d.startswith({code!r}, {content}):"):
            fn(f"p = {content} + {len(code)}")
        with fn.block(f"elif {content} + 2 == {end} and d.startswith({_EMPTY_CODE!r}, {content}):"):
            fn(f"p = {end}")
        with fn.block("else:"):
            fn("raise _Fallback")
        with fn.block(f"while p < {end}:"):
            entry = fn.fresh("entry")
            entry_end = fn.fresh("entry_end")
            self.header(fn, "p", _TAG_SEQUENCE, entry, entry_end)
            fn(f"p = {entry}")
            self.string(fn, _TAG_UTF8STRING, "signature")
            self.string(fn, _TAG_UTF8STRING, "name")
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


# -- the codec --------------------------------------------------------------------------------


class CompiledCodec:
    """A description compiled for one wire format: ``encode`` and ``decode`` with
    the generic path's exact results and errors, at generated-code speed.

    Code is generated on first use (the encoder, and a decoder per class of stream
    versions). A failure to generate code is recorded in :attr:`build_errors` and
    that direction uses the generic path: a code-generator bug costs speed, never
    a different result.
    """

    def __init__(self, description: Description, fmt: Format) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
        self.description = description
        self.format: Format = fmt
        #: Why the description is not compiled (everything uses the generic path), or None.
        self.unsupported: str | None = None
        #: Code generation failures (bugs), each making one direction generic.
        self.build_errors: list[str] = []
        self._sources: dict[str, str] = {}
        self._encoder: Encoder | None = None
        self._encoder_built = False
        self._decoders: dict[int, RawDecoder | None] = {}
        #: Stream version -> decoder, for the versions seen (all of them accepted ones).
        self._by_version: dict[int, RawDecoder | None] = {}
        self._thresholds = sorted(_thresholds(description.fields, set()))
        self._accept_newer = fmt == "ber" and description.accept_unknown
        try:
            _check_supported(description, fmt)
        except _Unsupported as reason:
            self.unsupported = str(reason)

    @property
    def compiled(self) -> bool:
        """True when everything built so far is generated code."""
        return self.unsupported is None and not self.build_errors

    @property
    def source(self) -> str:
        """The generated source so far (the encoder, and decoders built on use)."""
        return "\n\n".join(f"# -- {title}\n{text}" for title, text in self._sources.items())

    # -- building ----------------------------------------------------------------
    def _build(self, title: str, generate: Callable[[_Module], str]) -> Any:
        """Generate, compile and return one entry point; None (and a recorded
        error) if generating failed."""
        module = _Module(f"{self.description.name} {self.format} {title}")
        try:
            name = generate(module)
            namespace, source = module.build()
        except Exception as error:  # a generator bug: this direction stays generic
            self.build_errors.append(f"{title}: {type(error).__name__}: {error}")
            return None
        self._sources[title] = source
        return namespace[name]

    def _build_encoder(self) -> Encoder | None:
        self._encoder_built = True
        if self.unsupported is not None:
            return None
        if self.format == "qemufile":
            self._encoder = self._build("encode", lambda module: _QemuFileEncoder(module).top(self.description))
        else:
            self._encoder = self._build("encode", lambda module: _BerEncoder(module).top(self.description))
        return self._encoder

    def _build_decoder(self, version: int) -> RawDecoder | None:
        dispatch = _dispatcher(self.format)
        if self.format == "qemufile":
            generator: Any = _QemuFileDecoder
        else:
            generator = _BerDecoder
        decoder: RawDecoder | None = self._build(
            f"decode v{version}", lambda module: generator(module, dispatch).description(self.description, version)
        )
        return decoder

    def raw_decoder(self, version: int) -> RawDecoder | None:
        """The generated decoder for a stream version, or None when the version is
        refused (the generic path says how) or the description is not compiled."""
        description = self.description
        if self.unsupported is not None or version < description.minimum_version_id:
            return None
        if version > description.version_id:
            if not self._accept_newer:
                return None
            version = description.version_id
        if version in self._by_version:
            return self._by_version[version]
        key = bisect.bisect_right(self._thresholds, version)
        if key not in self._decoders:
            self._decoders[key] = self._build_decoder(version)
        decoder = self._by_version[version] = self._decoders[key]
        return decoder

    # -- the fast path with the generic path behind it ---------------------------------
    def encode(self, state: Mapping[str, Any]) -> bytes:
        """The bytes ``vmstate.encode`` writes through this format's output visitor."""
        encoder = self._encoder if self._encoder_built else self._build_encoder()
        if encoder is not None:
            try:
                return encoder(state)
            except _GIVES_UP:  # the generic path decides, and reports any error
                pass
        return self.generic_encode(state)

    def decode(self, data: bytes, version: int | None = None) -> State:
        """The state ``vmstate.load`` reads through this format's input visitor,
        which must consume the whole input; errors are the generic path's."""
        if version is None:
            version = self.description.version_id
        try:
            if type(data) is bytes and len(data) <= MAX_INPUT:
                decoder = self._by_version.get(version) or self.raw_decoder(version)
                if decoder is not None:
                    state, end = decoder(data, 0)
                    if end == len(data):
                        return state
        except _GIVES_UP:  # the generic path decides, and reports any error
            pass
        return self.generic_decode(data, version)

    def generic_encode(self, state: Mapping[str, Any]) -> bytes:
        """The walker with the output visitor: the reference the fast path matches."""
        visitor = QemuFileOutputVisitor() if self.format == "qemufile" else BerOutputVisitor()
        vmstate.save(visitor, self.description, state)
        return visitor.result()

    def generic_decode(self, data: bytes, version: int | None = None) -> State:
        """The walker with the input visitor, then ``finish()``."""
        if version is None:
            version = self.description.version_id
        visitor = QemuFileInputVisitor(data) if self.format == "qemufile" else BerInputVisitor(data)
        state = vmstate.load(visitor, self.description, version)
        visitor.finish()
        return state


def _dispatcher(fmt: Format) -> Callable[[Description], Callable[[int], RawDecoder | None]]:
    """For a subsection: a function from the version the stream sent to the
    subsection's own generated decoder (None: refused, the generic path says how)."""

    def for_description(description: Description) -> Callable[[int], RawDecoder | None]:
        def dispatch(version: int) -> RawDecoder | None:
            return compile_codec(description, fmt).raw_decoder(version)

        return dispatch

    return for_description


_CACHE: dict[tuple[int, str], CompiledCodec] = {}


def compile_codec(description: Description, fmt: Format) -> CompiledCodec:
    """The compiled codec of ``description`` for ``fmt`` ("qemufile" or "ber"), built
    once per description object (the cache keeps the description alive)."""
    key = (id(description), fmt)
    codec = _CACHE.get(key)
    if codec is not None and codec.description is description:
        return codec
    codec = CompiledCodec(description, fmt)
    if len(_CACHE) >= CACHE_SIZE:
        del _CACHE[next(iter(_CACHE))]
    _CACHE[key] = codec
    return codec


__all__ = ["FORMATS", "CompiledCodec", "Format", "compile_codec"]
