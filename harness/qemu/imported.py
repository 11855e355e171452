"""Descriptions imported from QEMU: a vmdesc entry (the JSON trailer of a stream) read as a :class:`Description`.

Why: QEMU describes every VMState section it writes in the stream's own vmdesc
trailer -- each field's name, type and size, nested structs, arrays and the
subsections actually sent. Read into our descriptions, every such section goes
through the visitors like a hand-modelled device: decoded field by field with
QEMU's names, converted to self-describing BER and back to the same bytes, and
compared across releases. Only what QEMU itself leaves opaque (a field whose
type has no layout, such as the ``virtio`` blob that the virtio model decodes)
stays bytes, with the exact size QEMU gives.

How QEMU's types map (every type seen in the vmdesc of 5.2, 7.2 and 10.0 streams):

* ``int8`` .. ``uint64``: integers of that width (big-endian on the wire);
  ``<int> equal`` and ``<int> le`` are the same integers, which QEMU compares on
  load with the destination's own value (equal to it, or at most it);
* ``bool``: one byte; ``timer``: the be64 expiry time (``-1``: not pending);
* ``pci irq state``: four be32 IRQ levels;
* ``buffer``, ``unused_buffer``, ``pci config`` and any other type with a size
  but no layout: bytes of that size (:data:`OPAQUE_TYPES` names the ones whose
  layout is QEMU's private business);
* ``struct`` (with its own vmsd, version and subsections): a nested description;
  ``tmp`` (QEMU's VMSTATE_WITH_TMP): its fields as a struct;
* ``array_len``: that many elements of the field's type; consecutive entries of
  one name with ``index`` 0, 1, ... (10.0: ``index`` 0, then none): an array
  when the elements agree, else one field per element named ``name[i]``.

A vmdesc lists only what was written, so an imported description reads exactly
one stream's section: field presence, array lengths and subsections are those
of the stream (the version is the stream's, the minimum version too).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from migcompat.errors import DescriptionError
from migcompat.limits import MAX_DEPTH, MAX_ELEMENTS
from migcompat.model.vmstate import Array, Buffer, Description, Field, FieldType, Scalar, Struct, Subsection
from migcompat.wire.visitor import INTEGER_KINDS

#: Integer kinds by their vmdesc type name, and their width in bytes.
_INTEGER_BYTES = {kind: int(kind.lstrip("uint")) // 8 for kind in INTEGER_KINDS}
#: ``uint8 equal``, ``int32 le``: integers QEMU checks against the destination's value.
_CHECKED_INTEGER = re.compile(r"^(u?int(?:8|16|32|64)) (equal|le)$")
#: Types that are bytes by design (buffers) or whose layout QEMU does not describe.
OPAQUE_TYPES = frozenset({"buffer", "unused_buffer", "pci config", "virtio"})
#: A description's name must be usable as a subsection prefix; QEMU's names are.
_NAME = re.compile(r"^[^\x00]{1,255}$")


def _fail(path: str, message: str) -> DescriptionError:
    return DescriptionError(f"vmdesc {path}: {message}")


def _int(entry: Mapping[str, Any], key: str, path: str, default: int | None = None) -> int:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(path, f"{key!r} is {value!r}, not a non-negative integer")
    return value


def _name(entry: Mapping[str, Any], key: str, path: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not _NAME.match(value):
        raise _fail(path, f"{key!r} is {value!r}, not a name")
    return value


def _list(entry: Mapping[str, Any], key: str, path: str) -> Sequence[Mapping[str, Any]]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise _fail(path, f"{key!r} is not a list of objects")
    return value


def _element_type(entry: Mapping[str, Any], path: str, depth: int) -> FieldType:
    """The type of one element of a vmdesc field entry."""
    if depth > MAX_DEPTH:
        raise _fail(path, f"nests deeper than {MAX_DEPTH} levels")
    kind = entry.get("type")
    if not isinstance(kind, str):
        raise _fail(path, f"'type' is {kind!r}, not a type name")
    size = _int(entry, "size", path)
    checked = _CHECKED_INTEGER.match(kind)
    integer = checked.group(1) if checked else kind
    if integer in _INTEGER_BYTES:
        if size != _INTEGER_BYTES[integer]:
            raise _fail(path, f"type {kind!r} has size {size}, not {_INTEGER_BYTES[integer]}")
        return Scalar(integer)
    if kind == "bool":
        if size != 1:
            raise _fail(path, f"type 'bool' has size {size}, not 1")
        return Scalar("bool")
    if kind == "timer":
        if size != 8:
            raise _fail(path, f"type 'timer' has size {size}, not 8")
        return Scalar("int64")
    if kind == "pci irq state" and size == 16:
        return Array(Scalar("uint32"), 4)
    if kind == "struct":
        struct = entry.get("struct")
        if not isinstance(struct, dict):
            raise _fail(path, "a 'struct' field without its 'struct' object")
        described = _description(struct, path, depth + 1)
        if _wire_size(described) != size:
            raise _fail(path, f"struct {described.name!r} holds {_wire_size(described)} bytes, not its size {size}")
        return described
    if kind == "tmp":
        fields = _fields(_list(entry, "fields", path), path, depth + 1)
        struct_type = Struct(_name(entry, "vmsd_name", path), fields)
        if _wire_size(struct_type) != size:
            raise _fail(path, f"tmp {struct_type.name!r} holds {_wire_size(struct_type)} bytes, not its size {size}")
        return struct_type
    return Buffer(size)


def _field_types(entry: Mapping[str, Any], path: str, depth: int) -> FieldType:
    element = _element_type(entry, path, depth)
    if "array_len" not in entry:
        return element
    count = _int(entry, "array_len", path)
    if count > MAX_ELEMENTS:
        raise _fail(path, f"array_len {count} exceeds the limit of {MAX_ELEMENTS}")
    return Array(element, count)


def _fields(entries: Sequence[Mapping[str, Any]], owner: str, depth: int) -> tuple[Field, ...]:
    fields: list[Field] = []
    index = 0
    while index < len(entries):
        entry = entries[index]
        name = _name(entry, "name", f"{owner}/field {index}")
        path = f"{owner}/{name}"
        if "index" not in entry:
            fields.append(Field(name, _field_types(entry, path, depth)))
            index += 1
            continue
        # One entry per element, of the same name: index 0, 1, ... (QEMU 10.0
        # gives the index of the first element only).
        elements: list[FieldType] = []
        while (
            index < len(entries)
            and entries[index].get("name") == name
            and entries[index].get("index", len(elements) if elements else None) == len(elements)
        ):
            elements.append(_field_types(entries[index], f"{path}[{len(elements)}]", depth))
            index += 1
        if not elements:
            raise _fail(path, f"element index {entry.get('index')!r} where index 0 was expected")
        if all(element == elements[0] for element in elements):
            fields.append(Field(name, Array(elements[0], len(elements))))
        else:
            fields.extend(Field(f"{name}[{i}]", element) for i, element in enumerate(elements))
    names = [f.name for f in fields]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise _fail(f"{owner}/{duplicate}", "the name appears twice")
    return tuple(fields)


def _description(entry: Mapping[str, Any], owner: str, depth: int) -> Description:
    if depth > MAX_DEPTH:
        raise _fail(owner, f"nests deeper than {MAX_DEPTH} levels")
    name = _name(entry, "vmsd_name", owner)
    version = _int(entry, "version", owner, 0)
    path = f"{owner}/{name}"
    fields = _fields(_list(entry, "fields", path), path, depth)
    subsections = tuple(Subsection(_description(sub, path, depth + 1)) for sub in _list(entry, "subsections", path))
    try:
        return Description(name, version, version, fields, subsections)
    except DescriptionError as error:
        raise _fail(path, str(error)) from None


#: Imported descriptions by their vmdesc entry's JSON text and version: one
#: object per distinct section layout, so its compiled codec is built once.
_IMPORTED: dict[tuple[str, int], Description] = {}
_IMPORTED_MOST = 2048


def from_vmdesc(entry: Mapping[str, Any], version: int) -> Description:
    """:func:`read_vmdesc`, the same object for the same entry and version."""
    key = (json.dumps(entry, sort_keys=True, separators=(",", ":")), version)
    described = _IMPORTED.get(key)
    if described is None:
        described = read_vmdesc(entry, version)
        if len(_IMPORTED) >= _IMPORTED_MOST:
            del _IMPORTED[next(iter(_IMPORTED))]
        _IMPORTED[key] = described
    return described


def read_vmdesc(entry: Mapping[str, Any], version: int) -> Description:
    """The description of one section, written at ``version``, from its vmdesc entry.

    A VMState section's entry is ``{"name", "instance_id", "vmsd_name",
    "version", "fields", "subsections"}``; a section QEMU writes with its own
    save function (slirp) has no ``vmsd_name`` and one opaque field with the
    section's size. Raises :class:`~migcompat.errors.DescriptionError` naming the
    section and field path when the entry is not a well-formed description.
    """
    section = _name(entry, "name", "section")
    if "vmsd_name" not in entry:
        fields = _fields(_list(entry, "fields", section), section, 0)
        if _int(entry, "size", section) != sum(_wire_size(f.type) for f in fields):
            raise _fail(section, f"fields hold {sum(_wire_size(f.type) for f in fields)} bytes, not its size")
        try:
            return Description(section, version, version, fields)
        except DescriptionError as error:
            raise _fail(section, str(error)) from None
    described = _description(entry, section, 0)
    if described.version_id != version:
        raise _fail(section, f"describes version {described.version_id}, the section is version {version}")
    return described


def _wire_size(kind: FieldType) -> int:
    """Bytes the type takes on QEMU's wire, as a vmdesc ``size`` counts them: a
    nested description's subsections (``05``, name length, name, be32 version,
    body) included."""
    if isinstance(kind, Scalar):
        return 1 if kind.kind == "bool" else _INTEGER_BYTES[kind.kind]
    if isinstance(kind, Buffer):
        assert isinstance(kind.size, int)
        return kind.size
    if isinstance(kind, Array):
        assert isinstance(kind.length, int)
        return kind.length * _wire_size(kind.element)
    total = sum(_wire_size(f.type) for f in kind.fields)
    if isinstance(kind, Description):
        total += sum(6 + len(sub.name.encode()) + _wire_size(sub.description) for sub in kind.subsections)
    return total


__all__ = ["OPAQUE_TYPES", "from_vmdesc"]
