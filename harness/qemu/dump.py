"""Reading QEMU's own ``-dump-vmstate`` JSON into the layout the static checker compares.

Why: QEMU ships a static checker (``scripts/vmstate-static-checker.py``) that
compares two such dumps; ``migcompat diff`` reads the same files, so it can
report what that script reports -- and the cases it misses -- on real QEMU
releases (``corpora/qemu-7.2/vmstate-pc.json`` is Debian's QEMU 7.2).

The format (QEMU's ``migration/savevm.c``, ``dump_vmstate_json``): an object
whose keys are section names; ``vmschkmachine`` holds the machine type
(``{"Name": ...}``); every other entry is ``{"Name", "version_id",
"minimum_version_id", "Description"}``, a description is ``{"name",
"version_id", "minimum_version_id", "Fields"?, "Subsections"?}``, a field is
``{"field", "version_id", "field_exists", "size", "num"?, "Description"?}``
(``num`` only in dumps from QEMU 8.0 on, and only for arrays: a dump
without any ``num`` cannot tell an array from one element, and its layout
says so, :attr:`~migcompat.model.layout.Layout.counts_known`). A field's ``version_id`` is the
stream version it arrived in; ``field_exists`` says a test function gates it;
``size`` is its size in bytes (of one element, for an array), except for a
nested description, where it is the C struct's size and says nothing about
the wire. So a member's type is only its byte size (:class:`Opaque`) or a
nested description: QEMU's dump cannot tell widths from buffers or signed from
unsigned, and this reader does not pretend it can.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from migcompat.errors import UsageError
from migcompat.limits import MAX_DEPTH
from migcompat.model.layout import QEMU, Condition, Kind, Layout, Member, Opaque, Section, Subsection, TopSection, join

MACHINE = "vmschkmachine"
KEYS = ("name", "version_id", "minimum_version_id")


def is_qemu_dump(document: Any) -> bool:
    """Whether a parsed JSON document looks like QEMU's ``-dump-vmstate`` output."""
    if not isinstance(document, dict) or not document:
        return False
    return MACHINE in document or any(isinstance(entry, dict) and "Description" in entry for entry in document.values())


class _Reader:
    def __init__(self, label: str) -> None:
        self.label = label
        self.depth = 0
        #: Whether any field gives its element count (``num``: QEMU 8.0 on).
        self.counts = False

    def fail(self, where: str, problem: str) -> UsageError:
        return UsageError(f"{self.label}: not a QEMU -dump-vmstate file: {problem} (at {where or '/'})")

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected an object, found {type(value).__name__}")
        return value

    def array(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list, found {type(value).__name__}")
        return value

    def integer(self, container: dict[str, Any], key: str, where: str) -> int:
        if key not in container:
            raise self.fail(where, f"'{key}' is missing")
        value = container[key]
        if type(value) is not int or value < 0:
            raise self.fail(join(where, key), f"'{key}' must be an integer >= 0, found {value!r:.40}")
        return value

    def text(self, container: dict[str, Any], key: str, where: str) -> str:
        value = container.get(key)
        if not isinstance(value, str):
            raise self.fail(join(where, key), f"'{key}' must be a string")
        return value

    def document(self, document: Any) -> Layout:
        root = self.obj(document, "")
        machine = None
        if MACHINE in root:
            machine = self.text(self.obj(root[MACHINE], join("", MACHINE)), "Name", join("", MACHINE))
        layout = Layout(QEMU, machine=machine, machine_pointer=join("", MACHINE, "Name"))
        for key, entry in root.items():
            if key == MACHINE:
                continue
            where = join("", key)
            entry = self.obj(entry, where)
            version = self.integer(entry, "version_id", where)
            minimum = self.integer(entry, "minimum_version_id", where) if "minimum_version_id" in entry else 0
            if "Description" in entry:
                description = self.section(entry["Description"], join(where, "Description"))
            else:
                # An entry without a description: no fields we can see.
                description = Section(key, version, minimum, (), (), where, keys=KEYS)
            layout.sections[key] = TopSection(key, description, version, minimum, where)
        # A dump that gives no count anywhere is from before QEMU 8.0: it cannot tell arrays.
        return dataclasses.replace(layout, counts_known=self.counts)

    def section(self, value: Any, where: str) -> Section:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise self.fail(where, f"descriptions nested deeper than {MAX_DEPTH} levels")
            return self._section(value, where)
        finally:
            self.depth -= 1

    def _section(self, value: Any, where: str) -> Section:
        description = self.obj(value, where)
        version = self.integer(description, "version_id", where)
        minimum = self.integer(description, "minimum_version_id", where) if "minimum_version_id" in description else 0
        members = []
        fields_at = join(where, "Fields")
        for index, item in enumerate(self.array(description.get("Fields", []), fields_at)):
            at = join(fields_at, index)
            item = self.obj(item, at)
            exists = item.get("field_exists", False)
            if not isinstance(exists, bool):
                raise self.fail(join(at, "field_exists"), "'field_exists' must be true or false")
            kind: Kind
            count = self.integer(item, "num", at) if "num" in item else None
            self.counts = self.counts or count is not None
            if "Description" in item:
                kind = self.section(item["Description"], join(at, "Description"))
            else:
                kind = Opaque(self.integer(item, "size", at), count)
            members.append(
                Member(
                    name=self.text(item, "field", at),
                    kind=kind,
                    since=self.integer(item, "version_id", at),
                    until=None,
                    when=Condition() if exists else None,
                    pointer=at,
                    count=count if "Description" in item else None,
                )
            )
        subsections = []
        subs_at = join(where, "Subsections")
        for index, item in enumerate(self.array(description.get("Subsections", []), subs_at)):
            at = join(subs_at, index)
            sub = self.section(item, at)
            subsections.append(Subsection(sub.name, True, sub, at))
        return Section(
            name=self.text(description, "name", where),
            version_id=version,
            minimum_version_id=minimum,
            members=tuple(members),
            subsections=tuple(subsections),
            pointer=where,
            keys=KEYS,
        )


def read(document: Any, label: str) -> Layout:
    """The layout of a parsed ``-dump-vmstate`` document; ``label`` names the file in errors."""
    return _Reader(label).document(document)


__all__ = ["MACHINE", "is_qemu_dump", "read"]
