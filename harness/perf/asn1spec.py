"""ASN.1 types generated from our descriptions, for two third-party ASN.1 libraries.

Why: the BER visitors are pitched as a self-describing wire that general ASN.1
tools read, and the benchmark compares our codecs with general-purpose ones. A
fair comparison needs those libraries to encode and decode *our* bytes for the
*same* descriptions and states, not for one hand-written workload. This module
derives, from any :class:`~migcompat.model.vmstate.Description`, an ASN.1 module (for
asn1tools) and the matching pyasn1 type classes, plus converters between our
dict states and each library's value form, so that

* ``asn1tools_codec(d).encode(state)`` and ``pyasn1_codec(d).encode(state)``
  return exactly ``vmstate.encode(BerOutputVisitor(), d, state)``, and
* their ``decode`` returns the state our BER decoder returns.

Strategy (the mapping; universal tags only, as on our wire):

* integers are ``INTEGER``, bools ``BOOLEAN``, strings ``UTF8String``, buffers
  ``OCTET STRING``;
* a struct or description is ``SEQUENCE { signature UTF8String, m0 ..., m1 ...,
  [subsections Subsections] }``: members are named by position (``m<index>``,
  the index among the declared fields) because our field names contain
  characters ASN.1 identifiers cannot; fields absent at the version the walker
  uses (the description's ``version_id``, a nested description's own) are left
  out, and a member with a ``when`` condition is ``OPTIONAL``;
* a list is ``SEQUENCE OF CHOICE { code UTF8String, element T }`` -- its first
  element is the element code (``""`` when empty), then the elements; a list of
  strings is ``SEQUENCE OF UTF8String`` (the code is a string too, and CHOICE
  alternatives must have distinct tags);
* our encoder writes the (empty) subsection list of a description as
  ``SEQUENCE { UTF8String "" }``: that is ``Subsections``. States that need a
  subsection are refused with :class:`Asn1Unsupported`, and a stream that
  carries one is refused on decode: these codecs cover subsection-free states;
* X.680 requires the components of a run of ``OPTIONAL`` members, and the member
  after it, to have distinct tags -- otherwise a decoder cannot tell which one it
  reads (pyasn1 refuses, asn1tools guesses). A struct whose conditional members
  break that rule (slirp's socket address: ``family``, then ``addr`` and
  ``port`` -- two INTEGERs -- only for IPv4) is written as a ``SEQUENCE OF
  CHOICE { text UTF8String, number INTEGER, ... nested T }`` of its members'
  types instead, which is the same bytes; the converter matches elements to
  members by the struct's layout and conditions. When such a struct has
  constructed members of several types (a description's subsection list is
  one), ``T`` is their union: again a ``SEQUENCE OF CHOICE`` over the types one
  level inside them, down to the level where the values share one type. Every
  description is expressible this way; only states that use subsections are not.

Converters are built once per description: a closure per struct and list with
its member plan, its signature text precomputed when no member is conditional
(built per instance otherwise), so a call does no dispatch on description
types and the library's own work dominates.

What the libraries check is less than our decoder does -- say so in any
comparison: INTEGERs carry no range constraints (widths and signedness are not
checked, nor minimal encodings), and neither the descriptions' post-load
validation nor list maxima are applied. The converters check what needs no
integer knowledge: every signature text and list element code, that present
conditional members are exactly those the decoded values call for, buffer sizes
and list lengths, and trailing bytes. BER that does not fit the ASN.1 types
raises the library's own error (pyasn1, for instance, already refuses a
subsection list with elements); BER that fits them but not the description
raises :class:`Asn1Mismatch` (a :class:`ValueError`). Encoding trusts the state as the
libraries do: a value out of its range or a buffer of the wrong size is written,
where our encoder refuses it. pyasn1 0.6 writes INTEGERs of the form
-2**(8k-1) (-128, -32768, ...) one octet longer than X.690 allows; its INTEGER
item encoder is replaced here by a correct one (see :func:`pyasn1_codec`).
asn1tools encodes with ``check_types=False`` and
pyasn1 from plain Python values with the type as ``asn1Spec`` (the faster of its
two ways; objects built member by member cost twice as much): the comparison
uses each library at its fastest.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice, repeat
from operator import itemgetter
from typing import Any, ClassVar, NamedTuple

from migcompat.model.vmstate import (
    Array,
    Buffer,
    Description,
    Field,
    FieldRef,
    FieldType,
    Scalar,
    State,
    Struct,
    Subsection,
)
from migcompat.wire.ber import CODES

#: Name of the ASN.1 module and of the description's own type in it.
MODULE_NAME = "MigcompatSection"
TOP_TYPE = "Section"
#: The type of a description's subsection list when it is empty.
SUBSECTIONS_TYPE = "Subsections"

_INTEGER, _BOOLEAN, _UTF8, _OCTETS = "INTEGER", "BOOLEAN", "UTF8String", "OCTET STRING"
#: The universal tag shared by every SEQUENCE and SEQUENCE OF.
_CONSTRUCTED = "SEQUENCE"
#: The alternative of a flattened struct's CHOICE for each universal tag, in CHOICE order.
_ALTERNATIVES = {_UTF8: "text", _INTEGER: "number", _BOOLEAN: "flag", _OCTETS: "octets", _CONSTRUCTED: "nested"}
_SUBSECTIONS_PART = "subsections:" + CODES["list"]

Convert = Callable[[Any], Any]
#: A decode-side check of a member's size against the struct decoded so far.
Check = Callable[[Any, Mapping[str, Any]], None]


class Asn1LibraryMissing(Exception):
    """The ASN.1 library a codec needs is not installed."""


class Asn1Unsupported(ValueError):
    """The state cannot be written with these ASN.1 types: it needs a subsection."""


class Asn1Mismatch(ValueError):
    """Well-formed BER that does not fit the description (signature, code, size, members)."""


class Asn1Codec(NamedTuple):
    """A library codec for one description: ``encode(state) -> bytes`` and ``decode(bytes) -> state``."""

    encode: Callable[[State], bytes]
    decode: Callable[[bytes], State]


# -- the schema: ASN.1 types and member plans ------------------------------------------


@dataclass(frozen=True)
class _Component:
    ident: str
    ref: str
    optional: bool = False


@dataclass(frozen=True)
class _Definition:
    """One ASN.1 type assignment's right-hand side (equal definitions share a name)."""

    kind: str  # "SEQUENCE", "SEQUENCE OF" or "CHOICE"
    components: tuple[_Component, ...] = ()
    element: str = ""

    def text(self) -> str:
        if self.kind == "SEQUENCE OF":
            return f"SEQUENCE OF {self.element}"
        lines = [f"    {c.ident} {c.ref}{' OPTIONAL' if c.optional else ''}" for c in self.components]
        return self.kind + " {\n" + ",\n".join(lines) + "\n}"


@dataclass(eq=False)
class _Primitive:
    ref: str
    code: str


@dataclass(eq=False)
class _ListNode:
    ref: str
    element: _Node
    element_code: str
    #: A list of strings: ``SEQUENCE OF UTF8String``, the code being its first string.
    strings: bool
    code: ClassVar[str] = CODES["list"]


@dataclass(eq=False)
class _SubsectionsNode:
    """A description's subsection list (always empty in the values these codecs handle)."""

    ref: str = SUBSECTIONS_TYPE
    code: ClassVar[str] = CODES["list"]


@dataclass(eq=False)
class _Member:
    """A field on the wire at the version: where it sits and how it is checked."""

    name: str
    ident: str
    #: Position in the SEQUENCE (the signature is 0).
    position: int
    node: _Node
    part: str
    when: tuple[str, int] | None
    check: Check | None
    alternative: str


@dataclass(eq=False)
class _Entry:
    """A declared field: its member (``None`` when absent at the version) and its default."""

    name: str
    member: _Member | None
    default: Callable[[], Any]


@dataclass(eq=False)
class _StructNode:
    ref: str
    label: str
    #: Written as a SEQUENCE OF CHOICE (see the module docstring).
    flat: bool
    entries: tuple[_Entry, ...]
    members: tuple[_Member, ...]
    #: The signature text when no member is conditional; ``None`` when it depends on the values.
    signature: str | None
    #: ``None`` for a struct; a description's declared subsections.
    subsections: tuple[Subsection, ...] | None
    #: Fields some member's condition looks at.
    tracked: frozenset[str]
    code: ClassVar[str] = CODES["struct"]


_Node = _Primitive | _ListNode | _SubsectionsNode | _StructNode
_Level = tuple[_Node, ...]
_SUBSECTIONS = _SubsectionsNode()


def _tag(node: _Node) -> str:
    return node.ref if isinstance(node, _Primitive) else _CONSTRUCTED


def _constructed_children(level: Iterable[_Node]) -> _Level:
    """The constructed values one level inside values of the nodes in ``level``."""
    children: list[_Node] = []
    for node in level:
        if isinstance(node, _StructNode):
            children += [m.node for m in node.members]
            if node.subsections is not None:
                children.append(_SUBSECTIONS)
        elif isinstance(node, _ListNode):
            children.append(node.element)
    return tuple(child for child in children if not isinstance(child, _Primitive))


def _primitive_children(level: Iterable[_Node]) -> set[str]:
    refs: set[str] = set()
    for node in level:
        if isinstance(node, _StructNode):
            refs.update(m.node.ref for m in node.members if isinstance(m.node, _Primitive))
        elif isinstance(node, _ListNode) and isinstance(node.element, _Primitive):
            refs.add(node.element.ref)
    return refs


def _one_type(level: _Level) -> bool:
    """Whether all values at a level are of one ASN.1 type (else they meet in a union)."""
    return len({node.ref for node in level}) == 1


def _on_wire(f: Field, version: int) -> bool:
    """The version half of :meth:`~migcompat.model.vmstate.Field.present` (static for one version)."""
    return f.since <= version and (f.until is None or version < f.until)


def _default_factory(f: Field) -> Callable[[], Any]:
    value = f.default_value()
    if value is None or isinstance(value, (int, str, bytes)):
        return lambda: value
    return f.default_value


def _size_check(size: int | FieldRef, where: str, unit: str) -> Check:
    if isinstance(size, int):
        fixed = size

        def check_fixed(value: Any, siblings: Mapping[str, Any]) -> None:
            if len(value) != fixed:
                raise Asn1Mismatch(f"{where}: {len(value)} {unit} in the stream, expected {fixed}")

        return check_fixed
    name, scale = size.name, size.scale

    def check_held(value: Any, siblings: Mapping[str, Any]) -> None:
        expected = siblings[name] * scale
        if len(value) != expected:
            raise Asn1Mismatch(f"{where}: {len(value)} {unit} in the stream, length field {name!r} says {expected}")

    return check_held


def _checker(kind: FieldType, where: str) -> Check | None:
    """The size and length checks of a member (a struct element checks its own members)."""
    if isinstance(kind, Buffer):
        return _size_check(kind.size, where, "bytes")
    if not isinstance(kind, Array):
        return None
    inner = _checker(kind.element, where) if isinstance(kind.element, (Buffer, Array)) else None
    count = None if kind.length is None else _size_check(kind.length, where, "elements")
    if inner is None:
        return count
    each = inner

    def check_elements(values: Any, siblings: Mapping[str, Any]) -> None:
        if count is not None:
            count(values, siblings)
        for value in values:
            each(value, siblings)

    return check_elements


def _comment(text: str) -> str:
    # "--" would end an ASN.1 comment early.
    return "-- " + text.replace("--", "-_")


class _Schema:
    """The ASN.1 types and member plans of one description."""

    def __init__(self, description: Description) -> None:
        self.description = description
        self._names: dict[_Definition, str] = {}
        self._numbers = itertools.count()
        #: Type assignments in dependency order: (name, definition, comment).
        self.assignments: list[tuple[str, _Definition, str]] = []
        self._structs: dict[tuple[int, int], tuple[object, _StructNode]] = {}
        self._define(_Definition("SEQUENCE", (_Component("code", _UTF8),)), "", SUBSECTIONS_TYPE)
        self.top = self._struct(description, description.version_id, TOP_TYPE)

    def _define(self, definition: _Definition, comment: str = "", name: str | None = None) -> str:
        if name is None:
            existing = self._names.get(definition)
            if existing is not None:
                return existing
            name = f"T{next(self._numbers)}"
            self._names[definition] = name
        self.assignments.append((name, definition, comment))
        return name

    def _node(self, kind: FieldType, version: int) -> _Node:
        if isinstance(kind, Scalar):
            ref = {"bool": _BOOLEAN, "str": _UTF8}.get(kind.kind, _INTEGER)
            return _Primitive(ref, CODES[kind.kind])
        if isinstance(kind, Buffer):
            return _Primitive(_OCTETS, CODES["buffer"])
        if isinstance(kind, Description):
            return self._struct(kind, kind.version_id)
        if isinstance(kind, Struct):
            return self._struct(kind, version)
        element = self._node(kind.element, version)
        if isinstance(element, _Primitive) and element.ref == _UTF8:
            return _ListNode(self._define(_Definition("SEQUENCE OF", element=_UTF8)), element, element.code, True)
        item = self._define(_Definition("CHOICE", (_Component("code", _UTF8), _Component("element", element.ref))))
        return _ListNode(self._define(_Definition("SEQUENCE OF", element=item)), element, element.code, False)

    def _struct(self, kind: Struct | Description, version: int, name: str | None = None) -> _StructNode:
        key = (id(kind), version)
        known = self._structs.get(key)
        if known is not None:
            return known[1]
        is_description = isinstance(kind, Description)
        label = kind.name
        entries: list[_Entry] = []
        members: list[_Member] = []
        for index, f in enumerate(kind.fields):
            default = _default_factory(f)
            if not _on_wire(f, version):
                entries.append(_Entry(f.name, None, default))
                continue
            node = self._node(f.type, version)
            member = _Member(
                f.name,
                f"m{index}",
                len(members) + 1,
                node,
                f"{f.name}:{node.code}",
                f.when,
                _checker(f.type, f"{label}.{f.name}"),
                _ALTERNATIVES[_tag(node)],
            )
            members.append(member)
            entries.append(_Entry(f.name, member, default))
        parts = [m.part for m in members] + ([_SUBSECTIONS_PART] if is_description else [])
        components = [_Component(m.ident, m.node.ref, m.when is not None) for m in members]
        if is_description:
            components.append(_Component("subsections", SUBSECTIONS_TYPE))
        flat = _optional_clash(components)
        node = _StructNode(
            "",
            label,
            flat,
            tuple(entries),
            tuple(members),
            None if any(m.when is not None for m in members) else " ".join(parts),
            kind.subsections if isinstance(kind, Description) else None,
            frozenset(m.when[0] for m in members if m.when is not None),
        )
        comment = _comment(f"{label}: {' '.join(parts)}")
        if flat:
            node.ref = self._generic((node,), comment, name)
        else:
            sequence = _Definition("SEQUENCE", (_Component("signature", _UTF8), *components))
            node.ref = self._define(sequence, comment, name)
        self._structs[key] = (kind, node)
        return node

    def _union(self, level: _Level) -> str:
        """The type of the constructed values at one level: theirs if they share
        one, else a SEQUENCE OF CHOICE that holds any of them."""
        if _one_type(level):
            return level[0].ref
        return self._generic(level, _comment("any of " + ", ".join(sorted({node.ref for node in level}))))

    def _generic(self, level: _Level, comment: str, name: str | None = None) -> str:
        """``SEQUENCE OF CHOICE`` over the universal types found one level inside ``level``."""
        tags = _primitive_children(level) | {_UTF8}
        components = [
            _Component(_ALTERNATIVES[tag], tag) for tag in (_UTF8, _INTEGER, _BOOLEAN, _OCTETS) if tag in tags
        ]
        inner = _constructed_children(level)
        if inner:
            components.append(_Component(_ALTERNATIVES[_CONSTRUCTED], self._union(inner)))
        choice = self._define(_Definition("CHOICE", tuple(components)))
        return self._define(_Definition("SEQUENCE OF", element=choice), comment, name)

    def module_text(self) -> str:
        d = self.description
        lines = [
            _comment(
                f"Generated by migcompat.perf.asn1spec from the description {d.name!r} at version {d.version_id}."
            ),
            _comment("Universal tags only: values of Section are the bytes of migcompat.wire.ber."),
            f"{MODULE_NAME} DEFINITIONS ::= BEGIN",
            "",
        ]
        for name, definition, comment in self.assignments:
            if comment:
                lines.append(comment)
            lines += [f"{name} ::= {definition.text()}", ""]
        lines.append("END")
        return "\n".join(lines) + "\n"


def _optional_clash(components: Sequence[_Component]) -> bool:
    """Whether the components break X.680's rule that a run of OPTIONAL
    components and the component after it have distinct tags."""
    run: list[_Component] = []
    for component in (*components, None):
        if component is not None:
            run.append(component)
            if component.optional:
                continue
        tags = [item.ref if item.ref in _ALTERNATIVES else _CONSTRUCTED for item in run]
        if len(set(tags)) != len(tags):
            return True
        run = []
    return False


def asn1_module(description: Description) -> str:
    """The ASN.1 module of ``description`` (its type is ``Section``), for asn1tools."""
    return _Schema(description).module_text()


# -- converters between our states and the libraries' values ---------------------------


@dataclass(frozen=True)
class _Library:
    """How one library represents values, as far as the converters care."""

    #: A CHOICE value is ``{alternative: value}`` (pyasn1) rather than ``(alternative, value)``.
    dict_choices: bool
    #: Decoded primitive -> our value, per ASN.1 type (``None``: already ours).
    primitives: Mapping[str, Convert | None]
    #: Decoded SEQUENCE -> mapping by identifier (``None``: it is one).
    fields: Callable[[_StructNode], Convert] | None
    #: Decoded SEQUENCE OF CHOICE -> list of (alternative, value) (``None``: it is one).
    items: Convert | None
    #: Decoded SEQUENCE OF UTF8String -> list of str (``None``: it is one).
    strings: Convert | None
    #: Decoded Subsections -> its code text.
    subsections: Convert


class _Partial(dict[str, Any]):
    """A SEQUENCE value with absent OPTIONAL members: looking one up gives ``None``.

    pyasn1's encoder of plain values looks every member up before it checks
    whether the member is OPTIONAL; asn1tools asks ``in`` first and is unaffected.
    """

    def __missing__(self, key: str) -> None:
        return None


_EMPTY_SUBSECTIONS = {"code": ""}


def _getter(keys: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    if not keys:
        return lambda mapping: ()
    if len(keys) == 1:
        key = keys[0]
        return lambda mapping: (mapping[key],)
    return itemgetter(*keys)


def _signature_mismatch(label: str, expected: str, found: object) -> Asn1Mismatch:
    return Asn1Mismatch(f"{label}: the stream's signature is {found!r}, expected {expected!r}")


def _refuse_subsections(label: str, code: str) -> None:
    if code != "":
        raise Asn1Mismatch(
            f"{label}: the stream carries subsections (a list of {code!r}); these codecs read states without any"
        )


def _subsection_guard(node: _StructNode) -> Callable[[State], None] | None:
    subsections = node.subsections
    if not subsections:
        return None
    label = node.label

    def guard(state: State) -> None:
        for sub in subsections:
            if sub.is_needed(state):
                raise Asn1Unsupported(
                    f"{label}: the state needs subsection {sub.name!r}; these codecs write states without subsections"
                )

    return guard


def _tuple_choice(alternative: str, value: Any) -> Any:
    return (alternative, value)


def _dict_choice(alternative: str, value: Any) -> Any:
    return {alternative: value}


class _Direction(NamedTuple):
    """How one direction (encoding or decoding) builds the converter of each kind of node.

    Why: choosing which converter a node gets, and memoising it, is the same in both
    directions; only the builders differ. The choice runs once per node while the
    converters are built, never per value.
    """

    #: Converters built so far, by node and the union type it is written in (``None``: its own).
    cache: dict[tuple[int, tuple[int, ...] | None], Convert | None]
    primitive: Callable[[_Primitive], Convert | None]
    list_of: Callable[[_ListNode], Convert]
    #: The subsection list's converter; ``None`` where it is written as a constant.
    subsections: Convert | None
    generic: Callable[[_Node, _Level], Convert]
    conditional: Callable[[_StructNode], Convert]
    sequence: Callable[[_StructNode, str], Convert]


class _Converters:
    """State <-> library value converters, one closure per node and the type it is written as.

    A node is written as its own type ("typed"), or -- inside a union of several
    types -- as the union's generic SEQUENCE OF CHOICE, whose constructed
    elements are again typed or generic depending on the next level's union.
    """

    def __init__(self, library: _Library) -> None:
        self._lib = library
        self._text = library.primitives[_UTF8]
        self._choice = _dict_choice if library.dict_choices else _tuple_choice
        self._encoding = _Direction(
            cache={},
            primitive=lambda node: None,
            list_of=self._list_encoder,
            subsections=None,
            generic=self._generic_encoder,
            conditional=self._conditional_encoder,
            sequence=self._sequence_encoder,
        )
        self._decoding = _Direction(
            cache={},
            primitive=lambda node: library.primitives[node.ref],
            list_of=self._list_decoder,
            subsections=library.subsections,
            generic=self._generic_decoder,
            conditional=self._conditional_decoder,
            sequence=self._sequence_decoder,
        )

    # -- choosing a converter (both directions) ------------------------------------------
    def _converter(self, direction: _Direction, node: _Node, level: _Level | None) -> Convert | None:
        """The converter of ``direction`` for ``node``: of its own type (``level`` ``None``), or
        of the type of ``level``, the union that holds it. Built once per node and type."""
        cache = direction.cache
        if level is not None and not (isinstance(node, _Primitive) or _one_type(level)):
            inner = _constructed_children(level)
            key: tuple[int, tuple[int, ...] | None] = (id(node), tuple(map(id, inner)))
            if key not in cache:
                cache[key] = direction.generic(node, inner)
            return cache[key]
        key = (id(node), None)
        if key not in cache:
            built: Convert | None
            if isinstance(node, _Primitive):
                built = direction.primitive(node)
            elif isinstance(node, _ListNode):
                built = direction.list_of(node)
            elif isinstance(node, _SubsectionsNode):
                if direction.subsections is None:
                    raise AssertionError("subsection lists are written as constants")
                built = direction.subsections
            elif node.flat:
                built = direction.generic(node, _constructed_children((node,)))
            elif node.signature is None:
                built = direction.conditional(node)
            else:
                built = direction.sequence(node, node.signature)
            cache[key] = built
        return cache[key]

    # -- encoding ----------------------------------------------------------------------
    def encoder(self, node: _Node) -> Convert | None:
        """State value -> the library's value of the node's own type (``None``: as it is)."""
        return self._converter(self._encoding, node, None)

    def _encoder_in(self, node: _Node, level: _Level) -> Convert | None:
        """State value -> the library's value of the type of ``level`` (which holds ``node``)."""
        return self._converter(self._encoding, node, level)

    def _empty_subsections(self, level: _Level) -> Any:
        """The empty subsection list as a value of the type of ``level``."""
        return _EMPTY_SUBSECTIONS if _one_type(level) else [self._choice(_ALTERNATIVES[_UTF8], "")]

    def _list_encoder(self, node: _ListNode) -> Convert:
        convert = self.encoder(node.element)
        code = node.element_code
        if node.strings:

            def encode_strings(values: list[str]) -> list[str]:
                return [code, *values] if values else [""]

            return encode_strings
        if self._lib.dict_choices:
            dict_head = {"code": code}
            if convert is None:

                def encode_dicts(values: list[Any]) -> list[Any]:
                    if not values:
                        return [{"code": ""}]
                    return [dict_head, *[{"element": value} for value in values]]

                return encode_dicts
            to_dict = convert

            def encode_converted_dicts(values: list[Any]) -> list[Any]:
                if not values:
                    return [{"code": ""}]
                return [dict_head, *[{"element": to_dict(value)} for value in values]]

            return encode_converted_dicts
        tuple_head = ("code", code)
        if convert is None:

            def encode_tuples(values: list[Any]) -> list[Any]:
                if not values:
                    return [("code", "")]
                return [tuple_head, *zip(repeat("element"), values)]

            return encode_tuples
        to_tuple = convert

        def encode_converted_tuples(values: list[Any]) -> list[Any]:
            if not values:
                return [("code", "")]
            return [tuple_head, *[("element", to_tuple(value)) for value in values]]

        return encode_converted_tuples

    def _sequence_encoder(self, node: _StructNode, signature: str) -> Convert:
        plain = [m for m in node.members if self.encoder(m.node) is None]
        get_plain = _getter([m.name for m in plain])
        idents = tuple(m.ident for m in plain)
        converted = tuple((m.name, m.ident, self.encoder(m.node)) for m in node.members if m not in plain)
        constant: dict[str, Any] = {"signature": signature}
        if node.subsections is not None:
            constant["subsections"] = _EMPTY_SUBSECTIONS
        guard = _subsection_guard(node)

        def encode_sequence(state: State) -> dict[str, Any]:
            if guard is not None:
                guard(state)
            value = dict(zip(idents, get_plain(state), strict=True))
            for name, ident, convert in converted:
                value[ident] = convert(state[name])  # type: ignore[misc]
            value.update(constant)
            return value

        return encode_sequence

    def _encode_steps(self, node: _StructNode, inner: _Level | None) -> tuple[tuple[Any, ...], ...]:
        """Per declared field: name, key (identifier, or alternative when ``inner`` --
        the level inside a generic value -- is given; None when absent at the
        version), signature part, condition, converter, default, tracked."""
        steps: list[tuple[Any, ...]] = []
        for entry in node.entries:
            m = entry.member
            if m is None:
                steps.append((entry.name, None, None, None, None, None, entry.default, entry.name in node.tracked))
                continue
            when_name, when_value = (None, None) if m.when is None else m.when
            key = m.ident if inner is None else m.alternative
            convert = self.encoder(m.node) if inner is None else self._encoder_in(m.node, inner)
            steps.append(
                (entry.name, key, m.part, when_name, when_value, convert, entry.default, entry.name in node.tracked)
            )
        return tuple(steps)

    def _conditional_encoder(self, node: _StructNode) -> Convert:
        steps = self._encode_steps(node, None)
        description = node.subsections is not None
        guard = _subsection_guard(node)

        def encode_conditional(state: State) -> dict[str, Any]:
            if guard is not None:
                guard(state)
            value = _Partial()
            seen: dict[str, Any] = {}
            parts: list[str] = []
            for name, ident, part, when_name, when_value, convert, default, tracked in steps:
                if ident is None or (when_name is not None and seen.get(when_name) != when_value):
                    if tracked:
                        seen[name] = default()
                    continue
                item = state[name]
                if tracked:
                    seen[name] = item
                value[ident] = item if convert is None else convert(item)
                parts.append(part)
            if description:
                parts.append(_SUBSECTIONS_PART)
                value["subsections"] = _EMPTY_SUBSECTIONS
            value["signature"] = " ".join(parts)
            return value

        return encode_conditional

    def _generic_encoder(self, node: _Node, inner: _Level) -> Convert:
        """State value -> a generic value: a list of CHOICE values, the first one the
        signature or element code; ``inner`` is the level of its constructed elements."""
        choice = self._choice
        text = _ALTERNATIVES[_UTF8]
        if isinstance(node, _ListNode):
            element = node.element
            alternative = _ALTERNATIVES[_tag(element)]
            convert = self._encoder_in(element, inner)
            code = node.element_code

            def encode_generic_list(values: list[Any]) -> list[Any]:
                if not values:
                    return [choice(text, "")]
                head = choice(text, code)
                if convert is None:
                    return [head, *[choice(alternative, value) for value in values]]
                return [head, *[choice(alternative, convert(value)) for value in values]]

            return encode_generic_list
        if not isinstance(node, _StructNode):
            raise AssertionError(f"no generic encoder for {node!r}")
        steps = self._encode_steps(node, inner)
        subsections = self._empty_subsections(inner) if node.subsections is not None else None
        nested = _ALTERNATIVES[_CONSTRUCTED]
        signature = node.signature
        guard = _subsection_guard(node)

        def encode_generic(state: State) -> list[Any]:
            if guard is not None:
                guard(state)
            items: list[Any] = [None]
            seen: dict[str, Any] = {}
            parts: list[str] = []
            for name, alternative, part, when_name, when_value, convert, default, tracked in steps:
                if alternative is None or (when_name is not None and seen.get(when_name) != when_value):
                    if tracked:
                        seen[name] = default()
                    continue
                item = state[name]
                if tracked:
                    seen[name] = item
                items.append(choice(alternative, item if convert is None else convert(item)))
                parts.append(part)
            if subsections is not None:
                parts.append(_SUBSECTIONS_PART)
                items.append(choice(nested, subsections))
            items[0] = choice(text, " ".join(parts) if signature is None else signature)
            return items

        return encode_generic

    # -- decoding ----------------------------------------------------------------------
    def decoder(self, node: _Node) -> Convert | None:
        """The library's value of the node's own type -> state value (``None``: as it is)."""
        return self._converter(self._decoding, node, None)

    def _decoder_in(self, node: _Node, level: _Level) -> Convert | None:
        """The library's value of the type of ``level`` (which holds ``node``) -> state value."""
        return self._converter(self._decoding, node, level)

    def _list_decoder(self, node: _ListNode) -> Convert:
        code = node.element_code
        accepted = ("", code)
        where = f"a list of {code!r}"
        if node.strings:
            strings = self._lib.strings

            def decode_strings(raw: Any) -> list[str]:
                values: list[str] = raw if strings is None else strings(raw)
                if not values or values[0] not in accepted or (values[0] != code and len(values) > 1):
                    raise Asn1Mismatch(f"{where}: the stream's list starts with {values[0] if values else None!r}")
                return values[1:]

            return decode_strings
        items_of = self._lib.items
        text = self._text
        convert = self.decoder(node.element)

        def decode_list(raw: Any) -> list[Any]:
            items: list[tuple[str, Any]] = raw if items_of is None else items_of(raw)
            if not items:
                raise Asn1Mismatch(f"{where}: the stream's list has no element code")
            alternative, found = items[0]
            if text is not None:
                found = text(found)
            if alternative != "code" or found not in accepted or (found != code and len(items) > 1):
                raise Asn1Mismatch(f"{where}: the stream's list starts with {alternative} {found!r}")
            values: list[Any] = []
            append = values.append
            for alternative, value in islice(items, 1, None):
                if alternative != "element":
                    raise Asn1Mismatch(f"{where}: a {alternative} where an element is expected")
                append(value if convert is None else convert(value))
            return values

        return decode_list

    def _decode_steps(self, node: _StructNode, inner: _Level | None) -> tuple[tuple[Any, ...], ...]:
        """Per declared field: name, key (as in :meth:`_encode_steps`), signature
        part, condition, converter, check, default."""
        steps: list[tuple[Any, ...]] = []
        for entry in node.entries:
            m = entry.member
            if m is None:
                steps.append((entry.name, None, None, None, None, None, None, entry.default))
                continue
            when_name, when_value = (None, None) if m.when is None else m.when
            key = m.ident if inner is None else m.alternative
            convert = self.decoder(m.node) if inner is None else self._decoder_in(m.node, inner)
            steps.append((entry.name, key, m.part, when_name, when_value, convert, m.check, entry.default))
        return tuple(steps)

    def _sequence_decoder(self, node: _StructNode, signature: str) -> Convert:
        fields = None if self._lib.fields is None else self._lib.fields(node)
        subsections = self._lib.subsections if node.subsections is not None else None
        label = node.label
        steps = tuple(
            (name, key, convert, check, default)
            for name, key, _part, _when, _value, convert, check, default in self._decode_steps(node, None)
        )
        if all(key is not None and convert is None and check is None for _, key, convert, check, _ in steps):
            names = tuple(name for name, *_ in steps)
            get_values = _getter([key for _, key, *_ in steps])

            def decode_plain(raw: Any) -> State:
                view = raw if fields is None else fields(raw)
                if view["signature"] != signature:
                    raise _signature_mismatch(label, signature, view["signature"])
                if subsections is not None:
                    _refuse_subsections(label, subsections(view["subsections"]))
                return dict(zip(names, get_values(view), strict=True))

            return decode_plain

        def decode_sequence(raw: Any) -> State:
            view = raw if fields is None else fields(raw)
            if view["signature"] != signature:
                raise _signature_mismatch(label, signature, view["signature"])
            if subsections is not None:
                _refuse_subsections(label, subsections(view["subsections"]))
            out: State = {}
            for name, key, convert, check, default in steps:
                if key is None:
                    out[name] = default()
                    continue
                value = view[key]
                if convert is not None:
                    value = convert(value)
                if check is not None:
                    check(value, out)
                out[name] = value
            return out

        return decode_sequence

    def _conditional_decoder(self, node: _StructNode) -> Convert:
        fields = None if self._lib.fields is None else self._lib.fields(node)
        subsections = self._lib.subsections if node.subsections is not None else None
        label = node.label
        steps = self._decode_steps(node, None)

        def decode_conditional(raw: Any) -> State:
            view = raw if fields is None else fields(raw)
            out: State = {}
            parts: list[str] = []
            for name, key, part, when_name, when_value, convert, check, default in steps:
                if key is None:
                    out[name] = default()
                    continue
                if when_name is not None and out.get(when_name) != when_value:
                    if key in view:
                        raise Asn1Mismatch(
                            f"{label}: the stream has member {name!r} although {when_name} is {out.get(when_name)!r}"
                            f" (signature {view['signature']!r})"
                        )
                    out[name] = default()
                    continue
                if key not in view:
                    raise Asn1Mismatch(f"{label}: the stream has no member {name!r} (signature {view['signature']!r})")
                value = view[key]
                if convert is not None:
                    value = convert(value)
                if check is not None:
                    check(value, out)
                out[name] = value
                parts.append(part)
            if subsections is not None:
                parts.append(_SUBSECTIONS_PART)
                _refuse_subsections(label, subsections(view["subsections"]))
            expected = " ".join(parts)
            if view["signature"] != expected:
                raise _signature_mismatch(label, expected, view["signature"])
            return out

        return decode_conditional

    def _generic_decoder(self, node: _Node, inner: _Level) -> Convert:
        """A generic value (see :meth:`_generic_encoder`) -> state value."""
        items_of = self._lib.items
        text = self._text
        text_alternative, nested = _ALTERNATIVES[_UTF8], _ALTERNATIVES[_CONSTRUCTED]

        def head(items: list[tuple[str, Any]], where: str) -> str:
            if not items or items[0][0] != text_alternative:
                raise Asn1Mismatch(f"{where}: the stream's value does not start with its signature or element code")
            found: str = items[0][1] if text is None else text(items[0][1])
            return found

        if isinstance(node, _SubsectionsNode):

            def decode_generic_subsections(raw: Any) -> str:
                items: list[tuple[str, Any]] = raw if items_of is None else items_of(raw)
                code = head(items, "subsections")
                if code == "" and len(items) > 1:
                    raise Asn1Mismatch("subsections: elements but no element code in the stream")
                return code

            return decode_generic_subsections
        if isinstance(node, _ListNode):
            code = node.element_code
            accepted = ("", code)
            where = f"a list of {code!r}"
            alternative = _ALTERNATIVES[_tag(node.element)]
            convert = self._decoder_in(node.element, inner)

            def decode_generic_list(raw: Any) -> list[Any]:
                items: list[tuple[str, Any]] = raw if items_of is None else items_of(raw)
                found = head(items, where)
                if found not in accepted or (found != code and len(items) > 1):
                    raise Asn1Mismatch(f"{where}: the stream's element code is {found!r}")
                values: list[Any] = []
                for got, value in islice(items, 1, None):
                    if got != alternative:
                        raise Asn1Mismatch(f"{where}: a {got} where an element ({alternative}) is expected")
                    values.append(value if convert is None else convert(value))
                return values

            return decode_generic_list
        if not isinstance(node, _StructNode):
            raise AssertionError(f"no generic decoder for {node!r}")
        subsections = None if node.subsections is None else _required(self._decoder_in(_SUBSECTIONS, inner))
        signature = node.signature
        label = node.label
        steps = self._decode_steps(node, inner)

        def decode_generic(raw: Any) -> State:
            items: list[tuple[str, Any]] = raw if items_of is None else items_of(raw)
            found = head(items, label)
            if signature is not None and found != signature:
                raise _signature_mismatch(label, signature, found)
            count = len(items)
            out: State = {}
            parts: list[str] = []
            index = 1
            for name, alternative, part, when_name, when_value, convert, check, default in steps:
                if alternative is None or (when_name is not None and out.get(when_name) != when_value):
                    out[name] = default()
                    continue
                if index >= count:
                    raise Asn1Mismatch(f"{label}: the stream ends before member {name!r} (signature {found!r})")
                got, value = items[index]
                index += 1
                if got != alternative:
                    raise Asn1Mismatch(
                        f"{label}: member {name!r} is {got} in the stream, expected {alternative} (signature {found!r})"
                    )
                if convert is not None:
                    value = convert(value)
                if check is not None:
                    check(value, out)
                out[name] = value
                parts.append(part)
            if subsections is not None:
                if index >= count or items[index][0] != nested:
                    raise Asn1Mismatch(f"{label}: the stream has no subsection list (signature {found!r})")
                _refuse_subsections(label, subsections(items[index][1]))
                index += 1
                parts.append(_SUBSECTIONS_PART)
            if index != count:
                raise Asn1Mismatch(f"{label}: {count - index} unexpected member(s) in the stream (signature {found!r})")
            if signature is None and found != " ".join(parts):
                raise _signature_mismatch(label, " ".join(parts), found)
            return out

        return decode_generic


def _required(convert: Convert | None) -> Convert:
    if convert is None:
        raise AssertionError("a struct always has a converter")
    return convert


# -- asn1tools ------------------------------------------------------------------------------

_ASN1TOOLS = _Library(
    dict_choices=False,
    primitives=dict.fromkeys((_INTEGER, _BOOLEAN, _UTF8, _OCTETS)),
    fields=None,
    items=None,
    strings=None,
    subsections=itemgetter("code"),
)


def asn1tools_codec(description: Description) -> Asn1Codec:
    """``description``'s BER wire through asn1tools and :func:`asn1_module`.

    Raises :class:`Asn1LibraryMissing` without asn1tools; ``encode`` raises
    :class:`Asn1Unsupported` for a state that needs a subsection.
    """
    try:
        import asn1tools  # type: ignore[import-untyped]
    except ImportError:
        raise Asn1LibraryMissing("asn1tools is not installed (pip install 'migcompat[bench]')") from None
    schema = _Schema(description)
    specification = asn1tools.compile_string(schema.module_text(), "ber")
    converters = _Converters(_ASN1TOOLS)
    to_value = _required(converters.encoder(schema.top))
    from_value = _required(converters.decoder(schema.top))
    encode_value = specification.encode
    decode_value = specification.decode_with_length

    def encode(state: State) -> bytes:
        data: bytes = encode_value(TOP_TYPE, to_value(state), check_types=False)
        return data

    def decode(data: bytes) -> State:
        value, length = decode_value(TOP_TYPE, data)
        if length != len(data):
            raise Asn1Mismatch(f"{len(data) - length} trailing bytes after the section")
        state: State = from_value(value)
        return state

    return Asn1Codec(encode, decode)


# -- pyasn1 -----------------------------------------------------------------------------------


def _pyasn1_fields(node: _StructNode) -> Convert:
    """A decoded pyasn1 SEQUENCE as a mapping by identifier (absent OPTIONAL members left out)."""
    mandatory = tuple((m.ident, m.position) for m in node.members if m.when is None)
    optional = tuple((m.ident, m.position) for m in node.members if m.when is not None)
    subsections = len(node.members) + 1 if node.subsections is not None else None

    def fields(sequence: Any) -> dict[str, Any]:
        get = sequence.getComponentByPosition
        view = {"signature": str(get(0))}
        for ident, position in mandatory:
            view[ident] = get(position)
        for ident, position in optional:
            component = get(position, None, False)
            if component is not None:
                view[ident] = component
        if subsections is not None:
            view["subsections"] = get(subsections)
        return view

    return fields


def _pyasn1_items(sequence_of: Any) -> list[tuple[str, Any]]:
    return [(item.getName(), item.getComponent()) for item in sequence_of]


def _pyasn1_strings(sequence_of: Any) -> list[str]:
    return [str(item) for item in sequence_of]


def _pyasn1_subsections(sequence: Any) -> str:
    return str(sequence.getComponentByPosition(0))


_PYASN1 = _Library(
    dict_choices=True,
    primitives={_INTEGER: int, _BOOLEAN: bool, _UTF8: str, _OCTETS: bytes},
    fields=_pyasn1_fields,
    items=_pyasn1_items,
    strings=_pyasn1_strings,
    subsections=_pyasn1_subsections,
)


def pyasn1_classes(description: Description) -> dict[str, Any]:
    """pyasn1 type classes for :func:`asn1_module`'s assignments, by type name."""
    try:
        from pyasn1.type import char, namedtype, univ  # type: ignore[import-untyped]
    except ImportError:
        raise Asn1LibraryMissing("pyasn1 is not installed (pip install 'migcompat[bench]')") from None
    return _pyasn1_classes(_Schema(description), char, namedtype, univ)


def _pyasn1_classes(schema: _Schema, char: Any, namedtype: Any, univ: Any) -> dict[str, Any]:
    primitives = {_INTEGER: univ.Integer, _BOOLEAN: univ.Boolean, _UTF8: char.UTF8String, _OCTETS: univ.OctetString}
    classes: dict[str, Any] = {}

    def instance(ref: str) -> Any:
        return (primitives.get(ref) or classes[ref])()

    for name, definition, _comment in schema.assignments:
        if definition.kind == "SEQUENCE OF":
            classes[name] = type(name, (univ.SequenceOf,), {"componentType": instance(definition.element)})
            continue
        named = namedtype.NamedTypes(
            *(
                (namedtype.OptionalNamedType if c.optional else namedtype.NamedType)(c.ident, instance(c.ref))
                for c in definition.components
            )
        )
        base = univ.Sequence if definition.kind == "SEQUENCE" else univ.Choice
        classes[name] = type(name, (base,), {"componentType": named})
    return classes


def _pyasn1_der_encoder(ber_encoder: Any, der_encoder: Any, univ: Any) -> Any:
    """pyasn1's DER encoder with an INTEGER encoder that writes the minimal form.

    pyasn1 0.6's INTEGER encoder (``pyasn1.compat.integer.to_bytes``) writes
    -2**(8k-1) -- the minimum of int8, int16, int32 and int64 among them -- with
    one octet too many (``02 02 ff 80`` for -128), which X.690 8.3.2 forbids and
    our decoder refuses. Replacing that one item encoder, through the maps
    pyasn1's encoders are built from, keeps every other step pyasn1's own.
    """

    class MinimalIntegerEncoder(ber_encoder.IntegerEncoder):  # type: ignore[misc]
        def encodeValue(self, value: Any, asn1Spec: Any, encodeFun: Any, **options: Any) -> tuple[bytes, bool, bool]:
            number = int(value)
            return number.to_bytes((number + (number < 0)).bit_length() // 8 + 1, "big", signed=True), False, True

    item = MinimalIntegerEncoder()
    tag_map = {**der_encoder.TAG_MAP, univ.Integer.tagSet: item}
    type_map = {**der_encoder.TYPE_MAP, univ.Integer.typeId: item}
    return der_encoder.Encoder(tag_map, type_map)


def pyasn1_codec(description: Description) -> Asn1Codec:
    """``description``'s BER wire through pyasn1 (DER encoder, DER decoder) and
    type classes generated like :func:`asn1_module`'s types.

    The encoder is pyasn1's DER encoder with its INTEGER item encoder replaced
    (:func:`_pyasn1_der_encoder`: pyasn1 0.6 writes -128 and the like with a
    superfluous octet). Raises :class:`Asn1LibraryMissing` without pyasn1;
    ``encode`` raises :class:`Asn1Unsupported` for a state that needs a subsection.
    """
    try:
        from pyasn1.codec.ber import encoder as ber_encoder  # type: ignore[import-untyped]
        from pyasn1.codec.der import decoder, encoder  # type: ignore[import-untyped]
        from pyasn1.type import char, namedtype, univ
    except ImportError:
        raise Asn1LibraryMissing("pyasn1 is not installed (pip install 'migcompat[bench]')") from None
    schema = _Schema(description)
    spec = _pyasn1_classes(schema, char, namedtype, univ)[TOP_TYPE]()
    converters = _Converters(_PYASN1)
    to_value = _required(converters.encoder(schema.top))
    from_value = _required(converters.decoder(schema.top))
    encode_value = _pyasn1_der_encoder(ber_encoder, encoder, univ)
    decode_value = decoder.decode

    def encode(state: State) -> bytes:
        data: bytes = encode_value(to_value(state), asn1Spec=spec)
        return data

    def decode(data: bytes) -> State:
        value, rest = decode_value(data, asn1Spec=spec)
        if rest:
            raise Asn1Mismatch(f"{len(rest)} trailing bytes after the section")
        state: State = from_value(value)
        return state

    return Asn1Codec(encode, decode)


# -- asn1crypto ------------------------------------------------------------------------------


def _asn1crypto_fields(node: _StructNode) -> Convert:
    """A decoded asn1crypto Sequence as a mapping by identifier (absent OPTIONAL members left out)."""
    mandatory = tuple((m.ident, m.position) for m in node.members if m.when is None)
    optional = tuple((m.ident, m.position) for m in node.members if m.when is not None)
    subsections = len(node.members) + 1 if node.subsections is not None else None

    def fields(sequence: Any) -> dict[str, Any]:
        view = {"signature": sequence[0].native}
        for ident, position in mandatory:
            view[ident] = sequence[position]
        for ident, position in optional:
            component = sequence[position]
            if component.contents is not None:
                view[ident] = component
        if subsections is not None:
            view["subsections"] = sequence[subsections]
        return view

    return fields


def _native(value: Any) -> Any:
    return value.native


_ASN1CRYPTO = _Library(
    dict_choices=False,
    primitives={_INTEGER: _native, _BOOLEAN: _native, _UTF8: _native, _OCTETS: _native},
    fields=_asn1crypto_fields,
    items=lambda sequence_of: [(item.name, item.chosen) for item in sequence_of],
    strings=lambda sequence_of: [item.native for item in sequence_of],
    subsections=lambda sequence: sequence[0].native,
)


def _asn1crypto_classes(schema: _Schema, core: Any) -> dict[str, Any]:
    primitives = {_INTEGER: core.Integer, _BOOLEAN: core.Boolean, _UTF8: core.UTF8String, _OCTETS: core.OctetString}
    classes: dict[str, Any] = {}

    def spec(ref: str) -> Any:
        return primitives.get(ref) or classes[ref]

    class ChoiceList(core.SequenceOf):  # type: ignore[misc]
        """A SEQUENCE OF CHOICE taking the converters' (alternative, value) pairs,
        which asn1crypto takes only as Choice objects."""

        def _make_value(self, value: Any) -> Any:
            if isinstance(value, tuple):
                return self._child_spec(name=value[0], value=value[1])
            return super()._make_value(value)

    for name, definition, _comment in schema.assignments:
        if definition.kind == "SEQUENCE OF":
            child = spec(definition.element)
            base = ChoiceList if issubclass(child, core.Choice) else core.SequenceOf
            classes[name] = type(name, (base,), {"_child_spec": child})
        elif definition.kind == "SEQUENCE":
            fields = [(c.ident, spec(c.ref), {"optional": True} if c.optional else {}) for c in definition.components]
            classes[name] = type(name, (core.Sequence,), {"_fields": fields})
        else:
            classes[name] = type(
                name, (core.Choice,), {"_alternatives": [(c.ident, spec(c.ref)) for c in definition.components]}
            )
    return classes


def asn1crypto_codec(description: Description) -> Asn1Codec:
    """``description``'s BER wire through asn1crypto (the fast pure-Python ASN.1
    library) with classes generated like :func:`asn1_module`'s types.

    asn1crypto parses lazily: ``decode`` converts the whole value to our state,
    so every member is parsed. Raises :class:`Asn1LibraryMissing` without
    asn1crypto; ``encode`` raises :class:`Asn1Unsupported` for a state that
    needs a subsection.
    """
    try:
        from asn1crypto import core  # type: ignore[import-untyped]
    except ImportError:
        raise Asn1LibraryMissing("asn1crypto is not installed (pip install 'migcompat[bench]')") from None
    schema = _Schema(description)
    top = _asn1crypto_classes(schema, core)[TOP_TYPE]
    converters = _Converters(_ASN1CRYPTO)
    to_value = _required(converters.encoder(schema.top))
    from_value = _required(converters.decoder(schema.top))

    def encode(state: State) -> bytes:
        data: bytes = top(to_value(state)).dump()
        return data

    def decode(data: bytes) -> State:
        value = top.load(data, strict=True)
        state: State = from_value(value)
        return state

    return Asn1Codec(encode, decode)


__all__ = [
    "MODULE_NAME",
    "SUBSECTIONS_TYPE",
    "TOP_TYPE",
    "Asn1Codec",
    "Asn1LibraryMissing",
    "Asn1Mismatch",
    "Asn1Unsupported",
    "asn1_module",
    "asn1crypto_codec",
    "asn1tools_codec",
    "pyasn1_classes",
    "pyasn1_codec",
]
