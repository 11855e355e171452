"""Compiled codecs: a description turned into straight-line Python per wire format.

Why: the generic walker (:mod:`migcompat.model.vmstate`) with the visitors is the single
source of truth for both byte wires, and it is slow -- every member costs a few
method calls, a path-stack push and, for BER, a signature check. A device is
encoded and decoded with the same description over and over, so everything that
depends only on the description can be decided once: which fields exist at a
stream version, the :class:`struct.Struct` formats of runs of fixed-width legacy
fields, every BER signature and tag. This module decides it once and writes the
result down as Python source.

Strategy:

* :func:`compile_codec` (cached per description and format) generates one module
  of functions per direction, one function per struct named after it
  (``encode_virtio``, ``decode_slirp_socket``), and ``exec``\\ s it. The source
  is kept (:attr:`CompiledCodec.source`) and registered with :mod:`linecache`,
  so tracebacks through generated code show it.
* The generated code is a *fast path*. It checks every value as strictly as the
  visitors do and gives up -- by raising :class:`~migcompat.codec.runtime.Fallback` or letting one of
  the exceptions of :data:`~migcompat.codec.runtime.GIVES_UP` escape (an ``IndexError`` on a short
  input, a ``struct.error`` or ``OverflowError`` on an out-of-range value) -- on
  anything it does not handle:
  a value that does not fit, truncation, trailing bytes, a limit, a failed
  post-load check, and every BER form our encoder does not write (indefinite
  lengths, constructed strings, a BOOLEAN other than 00/FF, multi-byte tags,
  members the destination does not read). Then the generic path runs on the same
  input, so every error is exactly the generic path's (type, message, offset,
  path) and every input the fast path accepts decodes to the generic path's
  state. The fast path never reports an error of its own.
* Legacy wire: consecutive fixed-width fields -- including nested structs and
  short fixed arrays made only of them -- are one ``Struct.pack``/``unpack_from``
  behind one type check; a list of fixed-size elements is one ``iter_unpack``
  over a slice, its bool bytes checked with one strided ``translate``.
* BER: signatures and tags are precomputed TLVs. Encoding, an integer's header
  comes from a table indexed by its bit length that is exactly as long as its
  kind's range allows (the range check is the ``IndexError``), and a struct is
  one ``join`` behind a header computed from its members' sizes. Decoding, a
  struct's whole signature is compared once with ``startswith`` and an integer
  is ``int.from_bytes`` checked against per-length bounds that reject both
  non-minimal and out-of-range values. Definite lengths are read in any form the
  visitor accepts (they mean the same thing to it).
* Decoders are specialised per stream version (field gating becomes static) and
  built lazily per class of versions that gate the same fields; subsections,
  whose version is only known from the stream, dispatch to the subsection's own
  compiled codec at run time.
* One walk of a description (:mod:`.traversal`, with the legacy wire's runs in
  :mod:`.legacy`) drives four emitters -- :mod:`.qemufile_encoder`,
  :mod:`.qemufile_decoder`, :mod:`.ber_encoder`, :mod:`.ber_decoder` -- each
  supplying only the code it writes; :mod:`.analysis` decides what depends on
  the description alone, :mod:`.source` holds the text and names, and
  :mod:`.runtime` what the generated code calls.
* Descriptions the generated code cannot follow exactly are not compiled and use
  the generic path for everything: nesting deeper than
  :data:`~migcompat.limits.MAX_DEPTH` (the visitors refuse it), an explicit default
  on a struct, array or description field (the walker visits that default on
  load), and (BER) more than :data:`~migcompat.codec.analysis.MAX_WHEN_FIELDS` value-gated fields in one
  struct.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

from migcompat.codec import native as native_path
from migcompat.codec.analysis import Unsupported, check_supported, thresholds
from migcompat.codec.ber_decoder import BerDecoder
from migcompat.codec.ber_encoder import BerEncoder
from migcompat.codec.qemufile_decoder import QemuFileDecoder
from migcompat.codec.qemufile_encoder import QemuFileEncoder
from migcompat.codec.runtime import GIVES_UP
from migcompat.codec.source import CACHE_SIZE, Module
from migcompat.codec.traversal import Dispatch, RawDecoder
from migcompat.limits import MAX_INPUT
from migcompat.model import vmstate
from migcompat.model.vmstate import Description, State
from migcompat.wire.ber import BerInputVisitor, BerOutputVisitor
from migcompat.wire.qemufile import QemuFileInputVisitor, QemuFileOutputVisitor
from migcompat.wire.visitor import Visitor

Format = Literal["qemufile", "ber"]
FORMATS: tuple[Format, ...] = ("qemufile", "ber")

Encoder = Callable[[Any], bytes]


class CompiledCodec:
    """A description compiled for one wire format: ``encode`` and ``decode`` with
    the generic path's exact results and errors, at generated-code speed.

    Code is generated on first use (the encoder, and a decoder per class of stream
    versions). A failure to generate code is recorded in :attr:`build_errors` and
    that direction uses the generic path: a code-generator bug costs speed, never
    a different result.
    """

    def __init__(self, description: Description, fmt: Format, *, native: bool | None = None) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
        self.description = description
        self.format: Format = fmt
        #: Why the description is not compiled (everything uses the generic path), or None.
        self.unsupported: str | None = None
        #: Code generation failures (bugs), each making one direction generic.
        self.build_errors: list[str] = []
        self._sources: dict[str, str] = {}
        self._encoder: Encoder | None = None
        self._encoder_built = False
        self._decoders: dict[int, RawDecoder | None] = {}
        #: Stream version -> decoder, for the versions seen (all of them accepted ones).
        self._by_version: dict[int, RawDecoder | None] = {}
        self._thresholds = sorted(thresholds(description.fields, set()))
        self._accept_newer = fmt == "ber" and description.accept_unknown
        try:
            check_supported(description, fmt)
        except Unsupported as reason:
            self.unsupported = str(reason)
        #: The native BER path in front of the generated code (None: not used --
        #: another format, not compiled, not built, or forced off; ``native=False`` turns it off).
        use_native = native_path.available() and native is not False and not _pure_only and self.unsupported is None
        self.native = native_path.NativeCodec(description) if fmt == "ber" and use_native else None

    @property
    def compiled(self) -> bool:
        """True when everything built so far is generated code."""
        return self.unsupported is None and not self.build_errors

    @property
    def source(self) -> str:
        """The generated source so far (the encoder, and decoders built on use)."""
        return "\n\n".join(f"# -- {title}\n{text}" for title, text in self._sources.items())

    # -- building ----------------------------------------------------------------
    def _build(self, title: str, generate: Callable[[Module], str]) -> Any:
        """Generate, compile and return one entry point; None (and a recorded
        error) if generating failed."""
        module = Module(f"{self.description.name} {self.format} {title}")
        try:
            name = generate(module)
            namespace, source = module.build()
        except Exception as error:  # a generator bug: this direction stays generic
            self.build_errors.append(f"{title}: {type(error).__name__}: {error}")
            return None
        self._sources[title] = source
        return namespace[name]

    def _build_encoder(self) -> Encoder | None:
        self._encoder_built = True
        if self.unsupported is not None:
            return None
        encoder = QemuFileEncoder if self.format == "qemufile" else BerEncoder
        self._encoder = self._build("encode", lambda module: encoder(module).top(self.description))
        return self._encoder

    def _build_decoder(self, version: int) -> RawDecoder | None:
        dispatch = _dispatcher(self.format)
        generator = QemuFileDecoder if self.format == "qemufile" else BerDecoder
        decoder: RawDecoder | None = self._build(
            f"decode v{version}", lambda module: generator(module, dispatch).description(self.description, version)
        )
        return decoder

    def _accepts(self, version: int) -> bool:
        """Whether a stream version is one the description reads (else the generic path refuses it)."""
        description = self.description
        if version < description.minimum_version_id:
            return False
        return version <= description.version_id or self._accept_newer

    def raw_decoder(self, version: int) -> RawDecoder | None:
        """The generated decoder for a stream version, or None when the version is
        refused (the generic path says how) or the description is not compiled."""
        description = self.description
        if self.unsupported is not None or version < description.minimum_version_id:
            return None
        if version > description.version_id:
            if not self._accept_newer:
                return None
            version = description.version_id
        if version in self._by_version:
            return self._by_version[version]
        key = bisect.bisect_right(self._thresholds, version)
        if key not in self._decoders:
            self._decoders[key] = self._build_decoder(version)
        decoder = self._by_version[version] = self._decoders[key]
        return decoder

    # -- the fast path with the generic path behind it ---------------------------------
    def encode(self, state: Mapping[str, Any]) -> bytes:
        """The bytes ``vmstate.encode`` writes through this format's output visitor."""
        if self.native is not None:
            encoded = self.native.encode(state)
            if encoded is not None:
                return encoded
        encoder = self._encoder if self._encoder_built else self._build_encoder()
        if encoder is not None:
            try:
                return encoder(state)
            except GIVES_UP:  # the generic path decides, and reports any error
                pass
        return self.generic_encode(state)

    def decode(self, data: bytes, version: int | None = None) -> State:
        """The state ``vmstate.load`` reads through this format's input visitor,
        which must consume the whole input; errors are the generic path's."""
        if version is None:
            version = self.description.version_id
        try:
            if type(data) is bytes and len(data) <= MAX_INPUT:
                if self.native is not None and self._accepts(version):
                    decoded = self.native.decode(data, 0, min(version, self.description.version_id))
                    if decoded is not None and decoded[1] == len(data):
                        return decoded[0]
                decoder = self._by_version.get(version) or self.raw_decoder(version)
                if decoder is not None:
                    state, end = decoder(data, 0)
                    if end == len(data):
                        return state
        except GIVES_UP:  # the generic path decides, and reports any error
            pass
        return self.generic_decode(data, version)

    def decode_at(self, data: bytes, start: int, end: int, version: int) -> tuple[State, int] | None:
        """The state the generated decoder reads from ``data`` at ``start`` and
        where it ends, if it ends by ``end``; None when the generic path must
        decide (the input visitor reading ``data[start:end]`` then gives the
        same state and position, or the error)."""
        if self.format != "qemufile" or type(data) is not bytes:
            return None
        try:
            decoder = self._by_version.get(version) or self.raw_decoder(version)
            if decoder is not None:
                state, position = decoder(data, start)
                if position <= end:
                    return state, position
        except GIVES_UP:
            pass
        return None

    def generic_encode(self, state: Mapping[str, Any]) -> bytes:
        """The walker with the output visitor: the reference the fast path matches."""
        visitor = QemuFileOutputVisitor() if self.format == "qemufile" else BerOutputVisitor()
        vmstate.save(visitor, self.description, state)
        return visitor.result()

    def generic_decode(self, data: bytes, version: int | None = None) -> State:
        """The walker with the input visitor, then ``finish()``."""
        if version is None:
            version = self.description.version_id
        visitor = QemuFileInputVisitor(data) if self.format == "qemufile" else BerInputVisitor(data)
        state = vmstate.load(visitor, self.description, version)
        visitor.finish()
        return state


def load(visitor: Visitor, description: Description, version: int) -> State:
    """``vmstate.load``, through the compiled codec when ``visitor`` reads QEMU's
    legacy bytes, or through the native path when it reads BER: the same state,
    end position and errors, at compiled speed. A stream parser calls it once
    per section of a real stream."""
    if type(visitor) is QemuFileInputVisitor:
        decoded = compile_codec(description, "qemufile").decode_at(visitor.data, visitor.position, visitor.end, version)
        if decoded is not None:
            state, visitor.position = decoded
            return state
    elif type(visitor) is BerInputVisitor:
        codec = compile_codec(description, "ber")
        span = visitor.member_span(description.name, "struct") if codec.native is not None else None
        if span is not None and codec.native is not None and codec._accepts(version):
            read = codec.native.decode(visitor.data, span[0], min(version, description.version_id))
            if read is not None and read[1] == span[1]:
                visitor.skip_member(span[1])
                return read[0]
    return vmstate.load(visitor, description, version)


def save(visitor: Visitor, description: Description, state: Mapping[str, Any], version: int) -> None:
    """``vmstate.walk`` at ``version``, through the native path when ``visitor``
    writes BER at the description's own version: the same bytes."""
    if type(visitor) is BerOutputVisitor and version == description.version_id:
        codec = compile_codec(description, "ber")
        encoded = codec.native.encode(state) if codec.native is not None else None
        if encoded is not None:
            visitor.visit_encoded(description.name, "struct", encoded)
            return
    vmstate.walk(visitor, description, state, version)


def _dispatcher(fmt: Format) -> Dispatch:
    """For a subsection: a function from the version the stream sent to the
    subsection's own generated decoder (None: refused, the generic path says how)."""

    def for_description(description: Description) -> Callable[[int], RawDecoder | None]:
        def dispatch(version: int) -> RawDecoder | None:
            return compile_codec(description, fmt).raw_decoder(version)

        return dispatch

    return for_description


_CACHE: dict[tuple[int, str], CompiledCodec] = {}


_pure_only = False


@contextmanager
def pure_python() -> Iterator[None]:
    """Run the block on the pure-Python path: the codecs compiled inside it (the
    cache is emptied on the way in and out) do not use the native one."""
    global _pure_only
    previous, _pure_only = _pure_only, True
    _CACHE.clear()
    try:
        yield
    finally:
        _pure_only = previous
        _CACHE.clear()


def compile_codec(description: Description, fmt: Format) -> CompiledCodec:
    """The compiled codec of ``description`` for ``fmt`` ("qemufile" or "ber"), built
    once per description object (the cache keeps the description alive)."""
    key = (id(description), fmt)
    codec = _CACHE.get(key)
    if codec is not None and codec.description is description:
        return codec
    codec = CompiledCodec(description, fmt)
    if len(_CACHE) >= CACHE_SIZE:
        del _CACHE[next(iter(_CACHE))]
    _CACHE[key] = codec
    return codec


__all__ = ["FORMATS", "CompiledCodec", "Format", "compile_codec", "load", "pure_python", "save"]
