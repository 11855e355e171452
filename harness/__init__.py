"""migcompat: compatibility test harness and fuzzer for visitor-based VM migration streams.

The public API is the names in :data:`__all__`; everything else is private to
its folder and may change between releases::

    import migcompat

    description = migcompat.Description("demo", 2, 1, (migcompat.Field("x", migcompat.Scalar("uint32")),))
    data = migcompat.encode(migcompat.BerOutputVisitor(), description, {"x": 7})
    state = migcompat.load(migcompat.BerInputVisitor(data), description, 2)

    fmt, stream = migcompat.inspect_stream(open("capture.bin", "rb").read())
    ber = migcompat.convert_stream(open("capture.bin", "rb").read(), to="ber")

    results = migcompat.run_matrix(migcompat.MatrixConfig(devices=("slirp",), examples=2))

Why the names are loaded on first use (PEP 562): ``import migcompat`` stays
cheap, importing one submodule does not import the whole package, and the fuzz
entry point can import the package's modules under coverage instrumentation
before anything else has imported them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_HOMES: dict[str, str] = {
    # descriptions and states
    "Array": "migcompat.model.vmstate",
    "Buffer": "migcompat.model.vmstate",
    "Description": "migcompat.model.vmstate",
    "Field": "migcompat.model.vmstate",
    "FieldRef": "migcompat.model.vmstate",
    "Scalar": "migcompat.model.vmstate",
    "State": "migcompat.model.vmstate",
    "Struct": "migcompat.model.vmstate",
    "Subsection": "migcompat.model.vmstate",
    # save and load through a visitor
    "encode": "migcompat.model.vmstate",
    "load": "migcompat.model.vmstate",
    "save": "migcompat.model.vmstate",
    "compile_codec": "migcompat.codec.compiled",
    # the visitors
    "Visitor": "migcompat.wire.visitor",
    "BerInputVisitor": "migcompat.wire.ber",
    "BerOutputVisitor": "migcompat.wire.ber",
    "DictInputVisitor": "migcompat.wire.dict",
    "DictOutputVisitor": "migcompat.wire.dict",
    "QemuFileInputVisitor": "migcompat.wire.qemufile",
    "QemuFileOutputVisitor": "migcompat.wire.qemufile",
    "PAIRINGS": "migcompat.wire",
    "Pairing": "migcompat.wire",
    "description_schema": "migcompat.schema.visitor",
    # whole streams
    "MigrationStream": "migcompat.qemu.stream",
    "Record": "migcompat.qemu.stream",
    "convert_stream": "migcompat.devices.streams",
    "inspect_stream": "migcompat.devices.streams",
    # the compatibility matrix
    "MatrixConfig": "migcompat.compat.cell",
    "MatrixResults": "migcompat.compat.results",
    "Outcome": "migcompat.outcomes",
    "run_matrix": "migcompat.compat.matrix",
    # errors
    "DecodeError": "migcompat.errors",
    "DescriptionError": "migcompat.errors",
    "EncodeError": "migcompat.errors",
    "LoadRefused": "migcompat.errors",
    "MigcompatError": "migcompat.errors",
    "MismatchDetected": "migcompat.errors",
    "TruncatedInput": "migcompat.errors",
}

#: The public API (the keys of :data:`_HOMES`; a test keeps the two equal).
__all__ = [
    "Array",
    "BerInputVisitor",
    "BerOutputVisitor",
    "Buffer",
    "DecodeError",
    "Description",
    "DescriptionError",
    "DictInputVisitor",
    "DictOutputVisitor",
    "EncodeError",
    "Field",
    "FieldRef",
    "LoadRefused",
    "MatrixConfig",
    "MatrixResults",
    "MigcompatError",
    "MigrationStream",
    "MismatchDetected",
    "Outcome",
    "PAIRINGS",
    "Pairing",
    "QemuFileInputVisitor",
    "QemuFileOutputVisitor",
    "Record",
    "Scalar",
    "State",
    "Struct",
    "Subsection",
    "TruncatedInput",
    "Visitor",
    "compile_codec",
    "convert_stream",
    "description_schema",
    "encode",
    "inspect_stream",
    "load",
    "run_matrix",
    "save",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'migcompat' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from migcompat.codec.compiled import compile_codec
    from migcompat.compat.cell import MatrixConfig
    from migcompat.compat.matrix import run_matrix
    from migcompat.compat.results import MatrixResults
    from migcompat.devices.streams import convert_stream, inspect_stream
    from migcompat.errors import (
        DecodeError,
        DescriptionError,
        EncodeError,
        LoadRefused,
        MigcompatError,
        MismatchDetected,
        TruncatedInput,
    )
    from migcompat.model.vmstate import (
        Array,
        Buffer,
        Description,
        Field,
        FieldRef,
        Scalar,
        State,
        Struct,
        Subsection,
        encode,
        load,
        save,
    )
    from migcompat.outcomes import Outcome
    from migcompat.qemu.stream import MigrationStream, Record
    from migcompat.schema.visitor import description_schema
    from migcompat.wire import PAIRINGS, Pairing
    from migcompat.wire.ber import BerInputVisitor, BerOutputVisitor
    from migcompat.wire.dict import DictInputVisitor, DictOutputVisitor
    from migcompat.wire.qemufile import QemuFileInputVisitor, QemuFileOutputVisitor
    from migcompat.wire.visitor import Visitor
