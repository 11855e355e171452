"""Generated source: the lines, names and constants of one generated module.

Why: the emitters write Python as text. Names must never collide (a struct
called ``p`` and the position ``p``), constants too large or too odd for a
literal live in the module's globals, and a traceback through generated code
must show that code -- :class:`Module` and :class:`Function` take care of all
three, so an emitter only says what to write.
"""

from __future__ import annotations

import itertools
import keyword
import linecache
import re
import struct
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from migcompat.codec.runtime import HELPERS

#: Generated modules whose source tracebacks can show (and compiled codecs kept).
CACHE_SIZE = 512

_NOT_IN_NAMES = re.compile(r"\W")
_MODULE_NUMBERS = itertools.count(1)
_SOURCES_SHOWN: deque[str] = deque()


def identifier(text: str) -> str:
    """A Python identifier made from any text (a QEMU field name, a struct name)."""
    name = _NOT_IN_NAMES.sub("_", text).strip("_") or "x"
    if name[0].isdigit():
        name = "_" + name
    return name


class Module:
    """The namespace and source of one generated module."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.namespace: dict[str, Any] = dict(HELPERS)
        self.functions: list[str] = []
        self._constants: dict[tuple[str, Any], str] = {}
        #: Emitter memo: what was already generated, by key, and the function's name.
        self.memo: dict[Any, str] = {}

    def unique(self, hint: str) -> str:
        """A new global name like ``hint``, reserved."""
        base = identifier(hint)
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
        """A shared :class:`struct.Struct` of ``fmt``."""
        return self.const(struct.Struct(fmt), "_S", key=fmt)

    def build(self) -> tuple[dict[str, Any], str]:
        """Compile and run the module; its namespace and its source."""
        source = "\n\n".join(self.functions) + "\n"
        filename = f"<migcompat compiled #{next(_MODULE_NUMBERS)} {self.title}>"
        # Tracebacks through generated code show it; only the newest modules are kept.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        _SOURCES_SHOWN.append(filename)
        if len(_SOURCES_SHOWN) > CACHE_SIZE:
            linecache.cache.pop(_SOURCES_SHOWN.popleft(), None)
        exec(compile(source, filename, "exec"), self.namespace)
        return self.namespace, source


class Function:
    """One generated function's lines and local names."""

    def __init__(self, module: Module, name: str, params: str, doc: str) -> None:
        self.module = module
        self.name = name
        self.lines = [f"def {name}({params}):", f'    """{doc}"""']
        self.indent = 1
        self.locals: set[str] = {p.strip().split("=")[0] for p in params.split(",")}

    def __call__(self, line: str) -> None:
        self.lines.append("    " * self.indent + line)

    @contextmanager
    def block(self, header: str) -> Iterator[None]:
        """An indented block under ``header`` (``pass`` when nothing was written in it)."""
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
        """A new local name like ``hint``."""
        base = identifier(hint)
        name = base
        for number in itertools.count(2):
            if name not in self.locals and name not in self.module.namespace and not keyword.iskeyword(name):
                break
            name = f"{base}_{number}"
        self.locals.add(name)
        return name

    def finish(self) -> None:
        self.module.functions.append("\n".join(self.lines))
