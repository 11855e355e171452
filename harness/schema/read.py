"""Reading migcompat's schema dumps back into the layout the static checker compares.

Why: ``migcompat diff`` takes files -- committed ones, ones from another
branch, ones a person edited -- so everything in them is input: a missing or
mistyped ``x-`` annotation is a one-line :class:`~migcompat.errors.UsageError`
naming the file and the JSON pointer, never a traceback.

Strategy: read only what :mod:`migcompat.schema.visitor` writes for the
checker -- the ``x-`` annotations, ``properties``, ``items`` and ``$defs`` -- and
ignore the validation keywords, which are derived from the same facts. A
device document is one section; a hypervisor-release document holds one
embedded device document per device, each its own resource for ``$defs``.
"""

from __future__ import annotations

from typing import Any

from migcompat.errors import UsageError
from migcompat.limits import MAX_DEPTH
from migcompat.model.layout import (
    MIGCOMPAT,
    Buf,
    Condition,
    Int,
    Kind,
    Layout,
    List,
    ListFraming,
    Member,
    Plain,
    Record,
    Ref,
    Section,
    Subsection,
    TopSection,
    join,
)
from migcompat.schema.visitor import SCHEMA_FORMAT
from migcompat.wire.visitor import INTEGER_KINDS

HEADER = "x-migcompat"


def is_schema_dump(document: Any) -> bool:
    """Whether a parsed JSON document claims to be one of migcompat's schema dumps."""
    return isinstance(document, dict) and HEADER in document


class _Reader:
    def __init__(self, label: str) -> None:
        self.label = label
        self.depth = 0

    def enter(self, where: str) -> None:
        """One level deeper; a schema nested past the decoders' limit is not one we wrote."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(where, f"nested deeper than {MAX_DEPTH} levels")

    def fail(self, where: str, problem: str) -> UsageError:
        return UsageError(f"{self.label}: not a migcompat schema dump: {problem} (at {where or '/'})")

    # -- typed access --------------------------------------------------------
    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected an object, found {type(value).__name__}")
        return value

    def get(self, container: dict[str, Any], key: str, where: str) -> Any:
        if key not in container:
            raise self.fail(where, f"'{key}' is missing")
        return container[key]

    def integer(self, container: dict[str, Any], key: str, where: str, *, minimum: int = 0) -> int:
        value = self.get(container, key, where)
        if type(value) is not int or value < minimum:
            raise self.fail(join(where, key), f"'{key}' must be an integer >= {minimum}, found {value!r:.40}")
        return value

    def optional_integer(self, container: dict[str, Any], key: str, where: str) -> int | None:
        return self.integer(container, key, where) if key in container else None

    def text(self, container: dict[str, Any], key: str, where: str) -> str:
        value = self.get(container, key, where)
        if not isinstance(value, str):
            raise self.fail(join(where, key), f"'{key}' must be a string, found {value!r:.40}")
        return value

    def names(self, container: dict[str, Any], key: str, where: str) -> list[str]:
        value = self.get(container, key, where)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.fail(join(where, key), f"'{key}' must be a list of names")
        if len(set(value)) != len(value):
            raise self.fail(join(where, key), f"'{key}' names a member twice")
        return value

    # -- the layout ------------------------------------------------------------
    def document(self, document: Any) -> Layout:
        root = self.obj(document, "")
        header = self.obj(self.get(root, HEADER, ""), f"/{HEADER}")
        version = header.get("format")
        if version != SCHEMA_FORMAT:
            raise UsageError(
                f"{self.label}: schema dump format {version!r} is not the one this migcompat reads ({SCHEMA_FORMAT})"
            )
        kind = header.get("kind")
        layout = Layout(MIGCOMPAT)
        if kind == "device":
            self._top(layout, root, "")
        elif kind == "release":
            properties = self.obj(self.get(root, "properties", ""), "/properties")
            for name in self.names(root, "x-order", ""):
                where = join("", "properties", name)
                self._top(layout, self.obj(self.get(properties, name, "/properties"), where), where)
        else:
            raise self.fail(join("", HEADER, "kind"), f"kind must be 'device' or 'release', found {kind!r:.40}")
        return layout

    def _top(self, layout: Layout, resource: dict[str, Any], where: str) -> None:
        section = self.section(resource, where, resource, where)
        if section.name in layout.sections:
            raise self.fail(where, f"section '{section.name}' appears twice")
        layout.sections[section.name] = TopSection(section.name, section, None, None, where)

    def section(self, schema: dict[str, Any], where: str, resource: dict[str, Any], resource_at: str) -> Section:
        self.enter(where)
        try:
            return self._section(schema, where, resource, resource_at)
        finally:
            self.depth -= 1

    def _section(self, schema: dict[str, Any], where: str, resource: dict[str, Any], resource_at: str) -> Section:
        if schema.get("x-kind") != "description":
            raise self.fail(where, "expected a description (x-kind 'description')")
        version = self.integer(schema, "x-version-id", where)
        minimum = self.integer(schema, "x-minimum-version-id", where)
        if minimum > version:
            raise self.fail(where, f"x-minimum-version-id {minimum} is above x-version-id {version}")
        subsections = []
        definitions = resource.get("$defs", {})
        for key in self.names(schema, "x-subsections", where):
            at = join(resource_at, "$defs", key)
            sub = self.obj(definitions.get(key) if isinstance(definitions, dict) else None, at)
            critical = sub.get("x-critical", True)
            if not isinstance(critical, bool):
                raise self.fail(at, "'x-critical' must be true or false")
            described = self.section(sub, at, resource, resource_at)
            subsections.append(Subsection(self.text(sub, "x-subsection", at), critical, described, at))
        accept = schema.get("x-accept-unknown", False)
        return Section(
            name=self.text(schema, "x-description", where),
            version_id=version,
            minimum_version_id=minimum,
            members=self.members(schema, where, resource, resource_at),
            subsections=tuple(subsections),
            pointer=where,
            accept_unknown=accept is True,
        )

    def members(
        self, schema: dict[str, Any], where: str, resource: dict[str, Any], resource_at: str
    ) -> tuple[Member, ...]:
        properties = self.obj(self.get(schema, "properties", where), join(where, "properties"))
        out = []
        for name in self.names(schema, "x-order", where):
            at = join(where, "properties", name)
            member = self.obj(self.get(properties, name, join(where, "properties")), at)
            when = member.get("x-when")
            condition = None
            if when is not None:
                when = self.obj(when, join(at, "x-when"))
                condition = Condition(self.text(when, "field", join(at, "x-when")), self.integer_any(when, at))
            out.append(
                Member(
                    name=name,
                    kind=self.kind(member, at, resource, resource_at),
                    since=self.integer(member, "x-since", at),
                    until=self.optional_integer(member, "x-until", at),
                    when=condition,
                    pointer=at,
                )
            )
        return tuple(out)

    def integer_any(self, when: dict[str, Any], where: str) -> int:
        value = self.get(when, "equals", join(where, "x-when"))
        if type(value) is not int:
            raise self.fail(join(where, "x-when", "equals"), "'equals' must be an integer")
        return value

    def kind(self, schema: dict[str, Any], where: str, resource: dict[str, Any], resource_at: str) -> Kind:
        self.enter(where)
        try:
            return self._kind(schema, where, resource, resource_at)
        finally:
            self.depth -= 1

    def _kind(self, schema: dict[str, Any], where: str, resource: dict[str, Any], resource_at: str) -> Kind:
        kind = schema.get("x-kind")
        if not isinstance(kind, str):
            raise self.fail(where, f"'x-kind' must be a string, found {kind!r:.40}")
        if kind in INTEGER_KINDS:
            bits, signed = INTEGER_KINDS[kind]
            return Int(bits, signed)
        if kind in ("bool", "str"):
            return Plain(kind)
        if kind == "buffer":
            return Buf(self.size(schema, "x-size", where))
        if kind == "struct":
            return Record(self.text(schema, "x-struct", where), self.members(schema, where, resource, resource_at))
        if kind == "description":
            return self.section(schema, where, resource, resource_at)
        if kind == "array":
            items = join(where, "items")
            element = self.kind(self.obj(self.get(schema, "items", where), items), items, resource, resource_at)
            length = self.size(schema, "x-length", where) if "x-length" in schema else None
            return List(
                element=element,
                length=length,
                framing=self.framing(schema, where),
                max_length=self.optional_integer(schema, "x-max-length", where),
                items=items,
            )
        raise self.fail(where, f"unknown x-kind {kind!r:.40}")

    def size(self, schema: dict[str, Any], key: str, where: str) -> int | Ref:
        value = self.get(schema, key, where)
        if type(value) is int and value >= 0:
            return value
        if isinstance(value, dict):
            return Ref(
                self.text(value, "field", join(where, key)), self.integer(value, "scale", join(where, key), minimum=1)
            )
        raise self.fail(join(where, key), f"'{key}' must be a size or {{field, scale}}, found {value!r:.40}")

    def framing(self, schema: dict[str, Any], where: str) -> ListFraming:
        at = join(where, "x-framing")
        framing = self.obj(self.get(schema, "x-framing", where), at)
        kind = framing.get("kind")
        if kind == "count":
            return ListFraming("count", count_bits=self.integer(framing, "count-bits", at, minimum=1))
        if kind == "sentinel":
            terminator = framing.get("terminator")
            if terminator is not None and type(terminator) is not int:
                raise self.fail(at, "'terminator' must be an integer or null")
            return ListFraming("sentinel", marker=self.integer(framing, "marker", at), terminator=terminator)
        if kind == "known":
            return ListFraming("known")
        raise self.fail(at, f"unknown framing kind {kind!r:.40}")


def read(document: Any, label: str) -> Layout:
    """The layout of a parsed schema dump; ``label`` names the file in errors."""
    return _Reader(label).document(document)


__all__ = ["is_schema_dump", "read"]
