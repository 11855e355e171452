"""The migration schema: the JSON-schema visitor, schema dumps per release, the schema and ``-dump-vmstate``
readers, the static checker (``migcompat diff``), its rules and its report.

Why one folder: everything that answers "is this change compatible?" from descriptions alone, without running a
state through a wire.
"""
