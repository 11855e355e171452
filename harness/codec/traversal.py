"""One walk of a description, shared by the four emitters.

Why: a codec for each wire format and direction visits a description the same
way -- a function per struct and per description (per stream version), a value
dispatched on its type, defaults for the fields a version does not carry, value
conditions, lengths held by sibling fields. :class:`Traversal` is that walk;
an emitter (:mod:`.qemufile_encoder`, :mod:`.qemufile_decoder`,
:mod:`.ber_encoder`, :mod:`.ber_decoder`) supplies only what it writes for each
kind of value and how a struct's fields become bytes or a state.

The statement helpers below are the pieces of code more than one emitter
writes: a field's default, a length read from a sibling, a value condition,
one type check for many values.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import ClassVar, Generic, TypeVar

from migcompat.codec.analysis import Leaf, flat
from migcompat.codec.source import Function, Module
from migcompat.limits import MAX_ELEMENTS
from migcompat.model.vmstate import Array, Buffer, Description, Field, FieldRef, FieldType, Scalar, State, Struct

#: A generated decoder: (data, position) -> (state, position after it).
RawDecoder = Callable[[bytes, int], tuple[State, int]]
#: For a subsection's description: from the version the stream sent to its decoder.
Dispatch = Callable[[Description], Callable[[int], RawDecoder | None]]

#: What emitting one value leaves for its container (the BER encoder: its pieces).
Emitted = TypeVar("Emitted")


class Traversal(ABC, Generic[Emitted]):
    """Generates one function per description and per struct (memoized per
    version in the module) and dispatches each value to the emitter's hooks."""

    #: Generated function names start with it: "encode" or "decode".
    direction: ClassVar[str]
    #: The generated functions' parameters.
    params: ClassVar[str]
    #: Legacy wire: a fixed-width value (scalar, fixed buffer, flat struct or
    #: array) is one pack or unpack, whatever its type.
    packs_fixed_values: ClassVar[bool] = False

    def __init__(self, module: Module) -> None:
        self.module = module

    # -- the functions ------------------------------------------------------------
    def description(self, description: Description, version: int) -> str:
        """The generated function of ``description`` at stream ``version``."""
        return self.function(
            ("description", id(description), version),
            description.name,
            self.description_doc(description, version),
            lambda fn: self.description_body(fn, description, version),
        )

    def struct(self, kind: Struct, version: int) -> str:
        """The generated function of a struct at stream ``version``."""
        return self.function(
            ("struct", id(kind), version),
            kind.name,
            self.struct_doc(kind, version),
            lambda fn: self.struct_body(fn, kind, version),
        )

    def function(self, key: tuple[str, int, int], name: str, doc: str, body: Callable[[Function], None]) -> str:
        memo = self.module.memo
        if key in memo:
            return memo[key]
        unique = memo[key] = self.module.unique(f"{self.direction}_{name}")
        fn = Function(self.module, unique, self.params, doc)
        body(fn)
        fn.finish()
        return unique

    @abstractmethod
    def description_doc(self, description: Description, version: int) -> str: ...

    @abstractmethod
    def struct_doc(self, kind: Struct, version: int) -> str: ...

    @abstractmethod
    def description_body(self, fn: Function, description: Description, version: int) -> None: ...

    @abstractmethod
    def struct_body(self, fn: Function, kind: Struct, version: int) -> None: ...

    # -- one value ------------------------------------------------------------------
    def value(self, fn: Function, kind: FieldType, var: str, version: int, siblings: Mapping[str, str]) -> Emitted:
        """Emit one value of any type held in (encode) or read into (decode) ``var``."""
        if self.packs_fixed_values:
            leaves = flat(kind, version)
            if leaves is not None:
                return self.fixed(fn, kind, var, version, leaves)
        if isinstance(kind, Scalar):
            return self.scalar(fn, kind, var)
        if isinstance(kind, Buffer):
            return self.buffer(fn, kind, var, siblings)
        if isinstance(kind, Array):
            return self.array(fn, kind, var, version, siblings)
        if isinstance(kind, Struct):
            return self.call(fn, self.struct(kind, version), var)
        return self.call(fn, self.description(kind, kind.version_id), var)

    def fixed(self, fn: Function, kind: FieldType, var: str, version: int, leaves: list[Leaf]) -> Emitted:
        """A fixed-width value as one pack or unpack (with :attr:`packs_fixed_values`)."""
        raise NotImplementedError

    @abstractmethod
    def scalar(self, fn: Function, kind: Scalar, var: str) -> Emitted: ...

    @abstractmethod
    def buffer(self, fn: Function, kind: Buffer, var: str, siblings: Mapping[str, str]) -> Emitted: ...

    @abstractmethod
    def array(self, fn: Function, kind: Array, var: str, version: int, siblings: Mapping[str, str]) -> Emitted: ...

    @abstractmethod
    def call(self, fn: Function, callee: str, var: str) -> Emitted:
        """A struct or description value: a call of its generated function."""


class Encoding(Traversal[Emitted]):
    """Encoders: one function per description (at its own version) and struct."""

    direction = "encode"

    def description_doc(self, description: Description, version: int) -> str:
        return f"Description {description.name!r} v{description.version_id}."

    def struct_doc(self, kind: Struct, version: int) -> str:
        return f"Struct {kind.name!r}."


class Decoding(Traversal[None]):
    """Decoders: ``(d, p) -> (value, p)`` functions for one stream version;
    a subsection dispatches on the version the stream sends."""

    direction = "decode"
    params = "d, p"

    def __init__(self, module: Module, dispatch: Dispatch) -> None:
        super().__init__(module)
        self.dispatch = dispatch

    def description_doc(self, description: Description, version: int) -> str:
        return f"Description {description.name!r} at stream version {version}."

    def struct_doc(self, kind: Struct, version: int) -> str:
        return f"Struct {kind.name!r} at stream version {version}."

    def call(self, fn: Function, callee: str, var: str) -> None:
        fn(f"{var}, p = {callee}(d, p)")

    def validate(self, fn: Function, description: Description) -> None:
        """The description's post-load check: any problem leaves the fast path."""
        if description.validate is not None:
            validate = self.module.const(description.validate, f"VALIDATE_{description.name}", key=id(description))
            with fn.block(f"for _problem in {validate}(s):"):
                fn("raise _Fallback")

    def subsection_table(self, description: Description, entries: object) -> str:
        """A constant: subsection name -> what decoding it needs."""
        return self.module.const(entries, f"SUBSECTIONS_{description.name}", key=id(description))


# -- statements more than one emitter writes ---------------------------------------------


def default_expr(module: Module, f: Field) -> str:
    """An expression for a field's default, built as :meth:`Field.default_value` does."""
    if f.default is not None:
        return module.const(f.default, f"DEFAULT_{f.name}", key=id(f.default))
    kind = f.type
    if isinstance(kind, Scalar):
        return repr(kind.default())
    if isinstance(kind, Buffer):
        return module.literal(kind.default(), "ZEROS")
    return module.const(kind, f"TYPE_{getattr(kind, 'name', 'array')}", key=id(kind)) + ".default()"


def when_condition(module: Module, f: Field, siblings: Mapping[str, str]) -> str:
    """The condition under which a value-gated field is on the wire."""
    assert f.when is not None
    return f"{siblings[f.when[0]]} == {module.const(f.when[1], 'WHEN', key=('when', f.when[1]))}"


def resolve(fn: Function, ref: FieldRef, siblings: Mapping[str, str]) -> str:
    """Emit the length a FieldRef holds; negative lengths are the generic path's error."""
    size = fn.fresh(f"size_{ref.name}")
    fn(f"{size} = int({siblings[ref.name]})")
    fn(f"if {size} < 0: raise _Fallback")
    if ref.scale != 1:
        fn(f"{size} *= {ref.scale}")
    return size


def known_length(fn: Function, kind: Array, siblings: Mapping[str, str]) -> str:
    """An expression for the length of a list of known length (fixed or held by a sibling)."""
    assert kind.length is not None
    return str(kind.length) if isinstance(kind.length, int) else resolve(fn, kind.length, siblings)


def element_limit(kind: Array) -> int:
    """Most elements a decoded list may have before the generic path refuses it."""
    return MAX_ELEMENTS if kind.max_length is None else min(MAX_ELEMENTS, kind.max_length)


def dict_display(values: list[tuple[str, str]]) -> str:
    """A dict display of (field, expression) pairs, in their order."""
    return "{" + ", ".join(f"{field!r}: {var}" for field, var in values) + "}"


def needed_flags(fn: Function, description: Description) -> list[str]:
    """Emit, for each subsection in order, whether the state needs it."""
    flags = []
    for sub in description.subsections:
        flag = fn.fresh(f"needed_{sub.name}")
        fn(f"{flag} = {fn.module.const(sub, f'SUB_{sub.name}', key=id(sub))}.is_needed(s)")
        flags.append(flag)
    return flags


def fetch_many(fn: Function, fields: Sequence[Field], state: str, names: list[str], hint: str) -> None:
    """Emit ``names = the fields' values in state`` (one itemgetter for several)."""
    if len(fields) == 1:
        fn(f"{names[0]} = {state}[{fields[0].name!r}]")
    else:
        getter = fn.module.const(
            itemgetter(*(f.name for f in fields)), hint, key=("getter", tuple(f.name for f in fields))
        )
        fn(f"{', '.join(names)} = {getter}({state})")


def type_checks(leaves: list[tuple[Leaf, str]]) -> list[str]:
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


def emit_checks(fn: Function, conditions: list[str]) -> None:
    """One ``if`` leaving the fast path when any condition holds."""
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
