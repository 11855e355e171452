"""The JSON-schema visitor: a description at a release as a JSON Schema (draft 2020-12).

Why: a release's migration schema is what two teams compare before they ship
(the seed's "JSON-schema visitor that generates the migration schema"). A JSON
Schema says what the dict form of a state may hold -- integer bounds from the
widths, buffer sizes, list bounds, required members, optional subsections -- so
any JSON tool can check a state against it, and its ``x-`` annotations carry
the wire facts JSON Schema cannot say (width, signedness, the version a field
arrived or left in, the condition that gates it, the legacy list framing, the
subsection list) so that :mod:`migcompat.schema.diff` can compare two releases
from their schemas alone.

Strategy: unlike the other visitors this one is not a
:class:`~migcompat.wire.visitor.Visitor` driven by :func:`migcompat.model.vmstate.walk`: the
visitor interface sees values, one field at a time, never the declarations
(``since``, ``until``, ``when``, a length held in another field). It walks the
description tree itself, in the walker's order, and is output only.

The dict form comes in two shapes, and the schema accepts both exactly:

* the state as a release holds it (what :func:`migcompat.model.vmstate.load` returns,
  what the strategies draw, what ``migcompat inspect --json`` and the golden
  ``.json`` files show): every member present, a present subsection as a member
  named after it;
* what the dict visitor pair carries: members the stream version does not
  carry left out, and the subsections as the ``subsections`` list of
  ``{name, version_id, critical, <name>: state}``.

Buffers are lowercase hex strings (:func:`migcompat.qemu.render.jsonable`), as in
every JSON view of a state. Subsection schemas live in ``$defs`` under their
names and are referenced from both shapes. :func:`dumps` is the one
serialisation -- sorted keys, two-space indent, trailing newline -- so a
committed schema compares byte for byte; member order, which sorting loses,
is kept in ``x-order``.
"""

from __future__ import annotations

import json
from typing import Any

from migcompat.model.vmstate import Array, Buffer, Description, Field, FieldRef, FieldType, Scalar, Struct
from migcompat.wire.visitor import INTEGER_KINDS, Framing, ListFraming, integer_range

DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: Version of the layout of the documents this module writes (the ``x-`` keys).
SCHEMA_FORMAT = 1
#: The legacy wire writes a string as a length byte then its UTF-8 bytes.
MAX_STR_BYTES = 255
HEX = "^(?:[0-9a-f]{2})*$"

JsonObject = dict[str, Any]


def framing_json(framing: Framing) -> JsonObject:
    """A list framing as the ``x-framing`` annotation."""
    if framing.kind is ListFraming.COUNT:
        return {"kind": "count", "count-bits": framing.count_bits}
    if framing.kind is ListFraming.SENTINEL:
        out: JsonObject = {"kind": "sentinel", "marker": framing.marker, "terminator": framing.terminator}
        if framing.name_prefix is not None:
            out["name-prefix"] = framing.name_prefix
        return out
    return {"kind": "known"}


def _ref_json(ref: FieldRef) -> JsonObject:
    return {"field": ref.name, "scale": ref.scale}


def _pointer_token(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


class _Builder:
    """Builds one schema resource; subsection schemas collect in ``defs``."""

    def __init__(self) -> None:
        self.defs: dict[str, JsonObject] = {}

    # -- types -------------------------------------------------------------
    def type_schema(self, kind: FieldType, version: int) -> JsonObject:
        if isinstance(kind, Scalar):
            return _scalar(kind)
        if isinstance(kind, Buffer):
            return _buffer(kind)
        if isinstance(kind, Struct):
            out: JsonObject = {"type": "object", "x-kind": "struct", "x-struct": kind.name}
            out.update(self._members(kind.fields, version))
            return out
        if isinstance(kind, Description):
            return self.description(kind)
        return self._array(kind, version)

    def _array(self, kind: Array, version: int) -> JsonObject:
        out: JsonObject = {
            "type": "array",
            "x-kind": "array",
            "x-framing": framing_json(kind.framing),
            "items": self.type_schema(kind.element, version),
        }
        if isinstance(kind.length, int):
            out["x-length"] = kind.length
            out["minItems"] = out["maxItems"] = kind.length
        elif isinstance(kind.length, FieldRef):
            out["x-length"] = _ref_json(kind.length)
        if kind.max_length is not None:
            out["x-max-length"] = kind.max_length
        bounds = [] if kind.max_length is None else [kind.max_length]
        if kind.framing.kind is ListFraming.COUNT:
            bounds.append((1 << kind.framing.count_bits) - 1)
        if bounds and not isinstance(kind.length, int):
            out["maxItems"] = min(bounds)
        return out

    # -- members -----------------------------------------------------------
    def field_schema(self, member: Field, version: int) -> JsonObject:
        out = self.type_schema(member.type, version)
        out["x-since"] = member.since
        if member.until is not None:
            out["x-until"] = member.until
        if member.when is not None:
            out["x-when"] = {"field": member.when[0], "equals": member.when[1]}
        if isinstance(member.type, Scalar):
            out["default"] = member.default_value()
        return out

    def _members(self, fields: tuple[Field, ...], version: int) -> JsonObject:
        """``properties``, ``required``, ``x-order`` and the ``when`` rules of a container.

        A member is required when every stream of this version carries it;
        one gated by ``until`` or ``when`` is optional (the dict visitor leaves
        it out), and a ``when`` rule makes it required where its condition holds.
        """
        properties = {member.name: self.field_schema(member, version) for member in fields}
        required = [member.name for member in fields if member.present(version, {}) and member.when is None]
        conditions: dict[tuple[str, int], list[str]] = {}
        for member in fields:
            if member.when is not None and member.present(version, {member.when[0]: member.when[1]}):
                conditions.setdefault(member.when, []).append(member.name)
        out: JsonObject = {
            "x-order": [member.name for member in fields],
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }
        if conditions:
            out["allOf"] = [
                {
                    "if": {"properties": {name: {"const": value}}, "required": [name]},
                    "then": {"required": names},
                }
                for (name, value), names in conditions.items()
            ]
        return out

    # -- descriptions ------------------------------------------------------
    def description(self, description: Description) -> JsonObject:
        out: JsonObject = {
            "type": "object",
            "x-kind": "description",
            "x-description": description.name,
            "x-version-id": description.version_id,
            "x-minimum-version-id": description.minimum_version_id,
        }
        if description.accept_unknown:
            out["x-accept-unknown"] = True
        out.update(self._members(description.fields, description.version_id))
        keys = [self._subsection(description, sub.name) for sub in description.subsections]
        out["x-subsections"] = keys
        properties: JsonObject = out["properties"]
        listed: JsonObject = {
            "type": "array",
            "x-kind": "subsections",
            "x-framing": framing_json(description.subsection_framing),
        }
        if keys:
            listed["items"] = {"oneOf": [self._element(key) for key in keys]}
            for key in keys:
                properties[self.defs[key]["x-subsection"]] = {"$ref": f"#/$defs/{_pointer_token(key)}"}
            # One shape or the other: with the list, no subsection as a member.
            out["dependentSchemas"] = {
                "subsections": {"properties": {self.defs[key]["x-subsection"]: False for key in keys}}
            }
        else:
            listed["maxItems"] = 0
        properties["subsections"] = listed
        return out

    def _subsection(self, owner: Description, name: str) -> str:
        """The ``$defs`` key of a subsection's schema (its name, made unique if two differ)."""
        sub = owner.subsection(name)
        assert sub is not None
        schema = self.description(sub.description)
        schema["x-subsection"] = name
        schema["x-critical"] = sub.critical
        key, index = name, 1
        while key in self.defs and self.defs[key] != schema:
            index += 1
            key = f"{name}#{index}"
        self.defs[key] = schema
        return key

    def _element(self, key: str) -> JsonObject:
        """One entry of the dict visitor's ``subsections`` list."""
        schema = self.defs[key]
        name = schema["x-subsection"]
        return {
            "type": "object",
            "properties": {
                "name": {"const": name},
                "version_id": {
                    "type": "integer",
                    "minimum": schema["x-minimum-version-id"],
                    "maximum": schema["x-version-id"],
                },
                "critical": {"type": "boolean"},
                name: {"$ref": f"#/$defs/{_pointer_token(key)}"},
            },
            "required": ["name", "version_id", "critical", name],
            "additionalProperties": False,
        }


def _scalar(kind: Scalar) -> JsonObject:
    if kind.kind in INTEGER_KINDS:
        bits, signed = INTEGER_KINDS[kind.kind]
        low, high = integer_range(kind.kind)
        return {
            "type": "integer",
            "x-kind": kind.kind,
            "x-width": bits,
            "x-signed": signed,
            "minimum": low,
            "maximum": high,
        }
    if kind.kind == "bool":
        return {"type": "boolean", "x-kind": "bool"}
    return {"type": "string", "x-kind": "str", "maxLength": MAX_STR_BYTES, "x-max-bytes": MAX_STR_BYTES}


def _buffer(kind: Buffer) -> JsonObject:
    out: JsonObject = {"type": "string", "x-kind": "buffer", "contentEncoding": "base16", "pattern": HEX}
    if isinstance(kind.size, int):
        out["x-size"] = kind.size
        out["minLength"] = out["maxLength"] = 2 * kind.size
    else:
        out["x-size"] = _ref_json(kind.size)
    return out


def description_schema(description: Description) -> JsonObject:
    """The schema resource of one description: its own schema plus ``$defs``."""
    builder = _Builder()
    out = builder.description(description)
    if builder.defs:
        out["$defs"] = dict(sorted(builder.defs.items()))
    return out


def dumps(document: JsonObject) -> str:
    """The one serialisation of a schema document: deterministic, with a trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


__all__ = ["DIALECT", "SCHEMA_FORMAT", "description_schema", "dumps", "framing_json"]
