"""Declarative device descriptions and the one walker that visits them.

Why: QEMU describes device state declaratively (VMState) so that the same table
drives save and load. We model that form -- a description has a name, a
``version_id``, a ``minimum_version_id``, fields and subsections -- and visit any
state described this way through any visitor. This is the seed's "phase 2"; the
hand-written "phase 1" visit functions of the reference devices are checked
against it byte for byte.

Strategy:

* Types are small frozen dataclasses: :class:`Scalar`, :class:`Buffer`,
  :class:`Struct`, :class:`Array`. A length held in another field is a
  :class:`FieldRef` to an earlier field of the same struct.
* A description validates itself when it is constructed
  (:class:`~migcompat.errors.DescriptionError`), not when it is first used.
* State is plain data (the dict form): structs are ``dict``s keyed by field name,
  a present subsection is a nested ``dict`` under the subsection's name.
* :func:`save` and :func:`load` share :func:`walk`, value-returning like the
  visitors: in save mode the current state is passed, in load mode the
  description's defaults, and the walker always keeps what the visitor returns.
  Loading builds a new state and returns it only when everything (including
  post-load validation) succeeded: there is no half-loaded state.
* Loading follows QEMU's rules: a stream version outside
  ``[minimum_version_id, version_id]`` is refused; a field newer than the stream
  takes its default; an unknown subsection is refused -- unless the format is
  self-describing, the source marked the subsection non-critical, and the
  destination opted in (``accept_unknown``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from migcompat.errors import DecodeError, DescriptionError, EncodeError, InvalidState, LoadRefused, MalformedInput
from migcompat.wire.visitor import INTEGER_KINDS, KNOWN_LENGTH, Framing, ListFraming, Visitor, integer_range

State = dict[str, Any]
#: A post-load check: yields (field, problem) for each impossible value.
Validator = Callable[[Mapping[str, Any]], Iterable[tuple[str, str]]]

#: Printable ASCII, not starting with a space: QEMU's own names include
#: ``config[0]``, ``env.regs`` and ``pit channel``. A field name has no ``/``,
#: which separates the members of a path; a description name may (subsections
#: are named ``device/part``).
_NAME = re.compile(r"^[!-.0-~][ -.0-~]*$")
_SUBSECTION_NAME = re.compile(r"^[!-~][ -~]*$")


@dataclass(frozen=True)
class Scalar:
    """A fixed-width integer (``int8`` .. ``uint64``), ``bool`` or ``str``."""

    kind: str

    def __post_init__(self) -> None:
        if self.kind not in INTEGER_KINDS and self.kind not in ("bool", "str"):
            raise DescriptionError(f"unknown scalar kind {self.kind!r}")

    @property
    def method(self) -> str:
        return "visit_" + self.kind

    def default(self) -> Any:
        return {"bool": False, "str": ""}.get(self.kind, 0)


@dataclass(frozen=True)
class FieldRef:
    """A length taken from an earlier integer field of the same struct, times ``scale``."""

    name: str
    scale: int = 1


@dataclass(frozen=True)
class Buffer:
    """Raw bytes of a fixed size or a size held in another field."""

    size: int | FieldRef

    def default(self) -> bytes:
        return bytes(self.size) if isinstance(self.size, int) else b""


@dataclass(frozen=True)
class Struct:
    """A nested struct: an ordered group of fields (a queue, a socket)."""

    name: str
    fields: tuple[Field, ...]

    def __post_init__(self) -> None:
        _check_fields(self.name, self.fields, version_id=None)

    def default(self) -> State:
        return {f.name: f.default_value() for f in self.fields}


@dataclass(frozen=True)
class Array:
    """A list of elements of one type.

    ``length`` is the element count when the description knows it (an ``int``
    for a fixed array, a :class:`FieldRef` for a count held in an earlier field)
    and ``None`` when the stream carries it (``framing`` COUNT or SENTINEL).
    """

    element: FieldType
    length: int | FieldRef | None = None
    framing: Framing = KNOWN_LENGTH
    #: Most elements a destination accepts (QEMU's VIRTIO_QUEUE_MAX check);
    #: more is an impossible state, refused before the elements are read.
    max_length: int | None = None
    #: The refusal's message; ``{count}`` and ``{maximum}`` are filled in.
    max_message: str = "{count} elements exceed the maximum of {maximum}"

    def __post_init__(self) -> None:
        if self.max_length is not None and self.max_length < 0:
            raise DescriptionError("max_length must not be negative")
        known = self.framing.kind is ListFraming.KNOWN
        if known != (self.length is not None):
            raise DescriptionError("an array has a known length exactly when its framing is KNOWN")
        if self.framing.kind is ListFraming.COUNT and self.framing.count_bits not in (8, 16, 32):
            raise DescriptionError(f"count width {self.framing.count_bits} is not 8, 16 or 32")
        if self.framing.kind is ListFraming.SENTINEL and self.framing.marker == self.framing.terminator:
            raise DescriptionError("sentinel marker and terminator must differ")

    def default(self) -> list[Any]:
        if isinstance(self.length, int):
            return [_default_of(self.element) for _ in range(self.length)]
        return []


FieldType = Union[Scalar, Buffer, Struct, Array, "Description"]


def _default_of(kind: FieldType) -> Any:
    return kind.default()


@dataclass(frozen=True)
class Field:
    """One member: a name, a type, and the stream versions that carry it.

    The field is on the wire when ``since <= version`` and (if ``until`` is set)
    ``version < until`` -- QEMU's field version and its ``field_exists`` tests
    such as slirp's "older than v4" -- and, if ``when`` is set, when the earlier
    field ``when[0]`` holds the value ``when[1]`` (slirp writes an IPv4 address
    only for the IPv4 family). Absent fields take their default.
    """

    name: str
    type: FieldType
    since: int = 0
    default: Any = None
    until: int | None = None
    when: tuple[str, int] | None = None

    def __post_init__(self) -> None:
        # Most fields are on the wire at every version, whatever their siblings hold.
        object.__setattr__(self, "_always", self.since == 0 and self.until is None and self.when is None)

    def present(self, version: int | None, siblings: Mapping[str, Any]) -> bool:
        if self._always:  # type: ignore[attr-defined]
            return True
        if version is not None and (self.since > version or (self.until is not None and version >= self.until)):
            return False
        return self.when is None or siblings.get(self.when[0]) == self.when[1]

    def default_value(self) -> Any:
        return _default_of(self.type) if self.default is None else self.default


@dataclass(frozen=True)
class Subsection:
    """An optional trailer sent when ``needed(state)`` is true.

    ``critical`` (the default) means a destination that does not know it must
    refuse the stream, as QEMU does; a non-critical subsection may be skipped by
    a destination reading a self-describing format.
    """

    description: Description
    needed: Callable[[Mapping[str, Any]], bool] | None = None
    critical: bool = True

    @property
    def name(self) -> str:
        return self.description.name

    def is_needed(self, state: Mapping[str, Any]) -> bool:
        if self.needed is None:
            return self.name in state
        return self.needed(state)


@dataclass(frozen=True)
class Description:
    """A device's state layout at one version (QEMU's ``VMStateDescription``)."""

    name: str
    version_id: int
    minimum_version_id: int
    fields: tuple[Field, ...]
    subsections: tuple[Subsection, ...] = ()
    validate: Validator | None = None
    #: A destination option: on a self-describing format, accept a newer stream
    #: and skip trailing members and non-critical subsections it does not know.
    accept_unknown: bool = False
    _by_subsection: dict[str, Subsection] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _SUBSECTION_NAME.match(self.name):
            raise DescriptionError(f"description name {self.name!r} is not a valid name")
        if not 0 <= self.minimum_version_id <= self.version_id:
            raise DescriptionError(
                f"{self.name}: minimum_version_id {self.minimum_version_id} not in [0, {self.version_id}]"
            )
        _check_fields(self.name, self.fields, self.version_id)
        names = {f.name for f in self.fields}
        if "subsections" in names:
            # The walker ends every description with a member of this name.
            raise DescriptionError(f"{self.name}: field name 'subsections' is reserved for the subsection list")
        for sub in self.subsections:
            if sub.name in self._by_subsection:
                raise DescriptionError(f"{self.name}: subsection {sub.name!r} is declared twice")
            if sub.name in names:
                raise DescriptionError(f"{self.name}: subsection {sub.name!r} clashes with a field name")
            if not (sub.name.startswith(self.name) and len(sub.name) > len(self.name)):
                # QEMU's loader hands such a subsection to the enclosing description.
                raise DescriptionError(f"{self.name}: subsection {sub.name!r} does not start with {self.name!r}")
            self._by_subsection[sub.name] = sub

    @property
    def subsection_framing(self) -> Framing:
        """QEMU's subsection framing for this description: 0x05 before each, and a
        subsection whose name does not start with this description's name ends
        the list unread (it belongs to an enclosing description)."""
        return Framing(ListFraming.SENTINEL, marker=0x05, terminator=None, name_prefix=self.name)

    def subsection(self, name: str) -> Subsection | None:
        return self._by_subsection.get(name)

    def default(self) -> State:
        return self.defaults()

    def defaults(self) -> State:
        """The state a destination starts from: every field at its default."""
        return {f.name: f.default_value() for f in self.fields}


def _check_fields(owner: str, fields: tuple[Field, ...], version_id: int | None) -> None:
    seen: dict[str, Field] = {}
    for f in fields:
        if not _NAME.match(f.name):
            raise DescriptionError(f"{owner}: field name {f.name!r} is not a valid name")
        if f.name in seen:
            raise DescriptionError(f"{owner}: field {f.name!r} is declared twice")
        if version_id is not None and not 0 <= f.since <= version_id:
            raise DescriptionError(f"{owner}.{f.name}: since={f.since} is outside [0, {version_id}]")
        for ref in _refs(f.type):
            target = seen.get(ref.name)
            if target is None:
                raise DescriptionError(f"{owner}.{f.name}: length field {ref.name!r} is not an earlier field")
            if not (isinstance(target.type, Scalar) and target.type.kind in INTEGER_KINDS):
                raise DescriptionError(f"{owner}.{f.name}: length field {ref.name!r} is not an integer")
            if target.since > f.since:
                raise DescriptionError(f"{owner}.{f.name}: length field {ref.name!r} is newer than the field")
            if ref.scale < 1:
                raise DescriptionError(f"{owner}.{f.name}: length scale must be positive")
        if f.when is not None:
            target = seen.get(f.when[0])
            if target is None or not (isinstance(target.type, Scalar) and target.type.kind in INTEGER_KINDS):
                raise DescriptionError(f"{owner}.{f.name}: condition field {f.when[0]!r} is not an earlier integer")
        if f.until is not None and f.until <= f.since:
            raise DescriptionError(f"{owner}.{f.name}: until={f.until} is not after since={f.since}")
        if isinstance(f.type, Buffer) and isinstance(f.type.size, int) and f.type.size < 0:
            raise DescriptionError(f"{owner}.{f.name}: negative buffer size")
        seen[f.name] = f


def _refs(kind: FieldType) -> list[FieldRef]:
    if isinstance(kind, Buffer) and isinstance(kind.size, FieldRef):
        return [kind.size]
    if isinstance(kind, Array):
        # An element's length (a buffer per element) also comes from this struct.
        return ([kind.length] if isinstance(kind.length, FieldRef) else []) + _refs(kind.element)
    return []


# -- the walker -------------------------------------------------------------

#: QEMU's subsection framing: 0x05 before each, nothing after (the next byte is
#: whatever follows, left unread).
SUBSECTION_FRAMING = Framing(ListFraming.SENTINEL, marker=0x05, terminator=None)


def _resolve(length: int | FieldRef, siblings: Mapping[str, Any], visitor: Visitor, name: str) -> int:
    if isinstance(length, int):
        return length
    held = int(siblings[length.name])
    if held < 0:
        # A signed length field read from a stream: never a size to read or write.
        offset, path = visitor.where()
        path = "/".join(part for part in (path, name) if part)
        message = f"length field '{length.name}' holds {held}"
        if visitor.is_input:
            raise MalformedInput(message, offset=offset, path=path)
        raise EncodeError(message, path)
    return held * length.scale


def _walk_type(
    visitor: Visitor, kind: FieldType, name: str, value: Any, siblings: Mapping[str, Any], version: int | None
) -> Any:
    if isinstance(kind, Scalar):
        return getattr(visitor, kind.method)(name, value)
    if isinstance(kind, Buffer):
        return visitor.visit_buffer(name, value, _resolve(kind.size, siblings, visitor, name))
    if isinstance(kind, Struct):
        visitor.start_struct(name)
        result = _walk_fields(visitor, kind.fields, value, version)
        visitor.end_struct()
        return result
    if isinstance(kind, Description):
        # QEMU's VMS_STRUCT with a vmsd: its own version, its own subsections,
        # opened under the member's name (a list element has none: it keeps the
        # description's) so that a self-describing format tells members apart.
        return walk(visitor, kind, value, kind.version_id, name or kind.name)
    return _walk_array(visitor, kind, name, value, siblings, version)


def _walk_array(
    visitor: Visitor, kind: Array, name: str, values: list[Any], siblings: Mapping[str, Any], version: int | None
) -> list[Any]:
    expected = -1 if kind.length is None else _resolve(kind.length, siblings, visitor, name)
    if visitor.is_input:
        count = expected
    else:
        count = len(values)
        if expected >= 0 and count != expected:
            _offset, path = visitor.where()
            raise EncodeError(f"array has {count} elements, its length says {expected}", f"{path}/{name}")
    count = visitor.start_list(name, kind.framing, count)
    maximum = kind.max_length if visitor.is_input else None
    if maximum is not None and count > maximum:
        refuse_count(visitor, kind, name, count)
    element = kind.element
    default = None
    result: list[Any] = []
    index = 0
    while visitor.next_list(index < len(values)):
        if maximum is not None and index >= maximum:
            refuse_count(visitor, kind, name, index + 1)
        if index < len(values):
            old = values[index]
        else:
            if default is None:
                default = _default_of(element)
            old = default
        result.append(_walk_type(visitor, element, "", old, siblings, version))
        index += 1
    visitor.end_list()
    return result


def refuse_count(visitor: Visitor, kind: Array, name: str, count: int) -> None:
    """Refuse a list longer than its description's ``max_length``."""
    offset, path = visitor.where()
    message = kind.max_message.format(count=count, maximum=kind.max_length)
    raise InvalidState(message, offset=offset, path=path or name)


def _walk_fields(
    visitor: Visitor,
    fields: tuple[Field, ...],
    state: Mapping[str, Any],
    version: int | None,
    ends: list[int] | None = None,
) -> State:
    out: State = {}
    for f in fields:
        if not f.present(version, out):
            out[f.name] = f.default_value()
        else:
            try:
                value = state[f.name]
            except KeyError:
                _offset, path = visitor.where()
                raise EncodeError(f"state has no field '{f.name}'", path) from None
            out[f.name] = _walk_type(visitor, f.type, f.name, value, out, version)
        if ends is not None:
            offset = visitor.where()[0]
            ends.append(-1 if offset is None else offset)
    return out


def field_ends(visitor: Visitor, description: Description, version: int) -> list[int]:
    """Load only the top-level fields of ``description`` at ``version`` and
    return the input offset after each (subsections and checks are not read)."""
    ends: list[int] = []
    visitor.start_struct(description.name)
    _walk_fields(visitor, description.fields, description.defaults(), version, ends)
    return ends


def walk(
    visitor: Visitor, description: Description, state: Mapping[str, Any], version: int, name: str | None = None
) -> State:
    """Visit ``state`` as ``description`` lays it out at stream ``version``.

    ``name`` is the member the description is visited as (its own name when
    it is a section or a subsection).
    """
    accept_newer = visitor.is_input and visitor.self_describing and description.accept_unknown
    if (version > description.version_id and not accept_newer) or version < description.minimum_version_id:
        offset, path = visitor.where()
        raise LoadRefused(version_refusal(description.name, version, description), offset=offset, path=path)
    visitor.start_struct(description.name if name is None else name)
    out = _walk_fields(visitor, description.fields, state, min(version, description.version_id))
    _walk_subsections(visitor, description, state, out)
    visitor.end_struct(allow_trailing=accept_newer)
    check_loaded(visitor, description, out)
    return out


def version_refusal(name: str, version: int, description: Description) -> str:
    """QEMU's words for a stream version outside what a description accepts."""
    accepts = f"(accepts {description.minimum_version_id}..{description.version_id})"
    if version < description.minimum_version_id:
        return (
            f"incoming version_id {version} is too old for local minimum version_id "
            f"{description.minimum_version_id} of '{name}' {accepts}"
        )
    return f"unsupported version {version} for '{name}' v{description.version_id} {accepts}"


def check_loaded(visitor: Visitor, description: Description, state: State) -> None:
    """Post-load validation: the first problem becomes an :class:`InvalidState`."""
    if not visitor.is_input or description.validate is None:
        return
    for name, problem in description.validate(state):
        offset, path = visitor.where()
        path = f"{path}/{description.name}/{name}" if path else f"{description.name}/{name}"
        raise InvalidState(problem, offset=offset, path=path)


def _walk_subsections(visitor: Visitor, description: Description, state: Mapping[str, Any], out: State) -> None:
    present = [] if visitor.is_input else [s for s in description.subsections if s.is_needed(state)]
    visitor.start_list("subsections", description.subsection_framing, -1 if visitor.is_input else len(present))
    index = 0
    while visitor.next_list(index < len(present)):
        sub = present[index] if index < len(present) else None
        index += 1
        visitor.start_struct("")
        name = visitor.visit_str("name", sub.name if sub else "")
        known = description.subsection(name)
        sent_version = visitor.visit_uint32("version_id", sub.description.version_id if sub else 0)
        if visitor.qemu_load_rules:
            sent_version &= 0xFF
        critical = True
        if visitor.self_describing:
            critical = visitor.visit_bool("critical", sub.critical if sub else True)
        offset, path = visitor.where()
        if known is None:
            if visitor.self_describing and not critical and description.accept_unknown:
                visitor.end_struct(allow_trailing=True)
                continue
            raise LoadRefused(f"unknown subsection '{name}'", offset=offset, path=path)
        if name in out:
            raise MalformedInput(f"subsection '{name}' appears twice", offset=offset, path=path)
        sub_state = state.get(name) if sub else known.description.defaults()
        out[name] = walk(visitor, known.description, sub_state or {}, sent_version)
        visitor.end_struct()
    visitor.end_list()


def save(visitor: Visitor, description: Description, state: Mapping[str, Any]) -> None:
    """Write ``state`` at the description's own version (as QEMU always does)."""
    walk(visitor, description, state, description.version_id)


def load(visitor: Visitor, description: Description, version: int) -> State:
    """Read a state written at stream ``version``; return it only if all of it loaded."""
    return walk(visitor, description, description.defaults(), version)


def encode(visitor: Visitor, description: Description, state: Mapping[str, Any]) -> Any:
    """Save through a fresh output visitor and return what it produced."""
    save(visitor, description, state)
    return visitor.result()  # type: ignore[attr-defined]


def typed_state(value: Any) -> Any:
    """``value`` with each leaf's type part of equality (``True != 1``,
    ``bytes != bytearray``): two paths read the same state only if these are equal."""
    if isinstance(value, dict):
        return {key: typed_state(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed_state(item) for item in value]
    return (type(value).__name__, value)


def decode_error_path(error: DecodeError, prefix: str) -> DecodeError:
    """Prefix an error's path with the section it occurred in."""
    error.path = f"{prefix}/{error.path}" if error.path else prefix
    return error


__all__ = [
    "typed_state",
    "Array",
    "Buffer",
    "Description",
    "Field",
    "FieldRef",
    "Scalar",
    "Struct",
    "Subsection",
    "SUBSECTION_FRAMING",
    "integer_range",
    "load",
    "save",
    "walk",
]
