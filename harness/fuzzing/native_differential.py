"""The native BER path against the generic path, on the same bytes: the logic of ``ber_native_fuzzer``.

Why: the native path (:mod:`migcompat.codec.native`) is only correct if it is the
generic path, faster: on every input it either gives up or reads exactly what
the generic path reads, and never accepts what the generic path refuses; on
every state the generic path reads, it writes the generic path's bytes or
gives up. A fuzzer finds the inputs a property test does not think of.

The first input byte chooses one of two descriptions
(``targets.native_descriptions``): the ``ber_input_fuzzer``'s, which reaches
every visitor method (subsections, one of them non-critical, and members a
newer source appends, which the native path leaves to the Python paths), or
the same without subsections. The rest is the stream.
"""

from __future__ import annotations

from migcompat.codec.native import NativeCodec
from migcompat.errors import DecodeError
from migcompat.fuzzing.device_loads import PathsDisagree
from migcompat.model import vmstate
from migcompat.model.vmstate import Description, typed_state
from migcompat.wire.ber import BerInputVisitor, BerOutputVisitor

ACCEPTED_NATIVELY = "accepted natively"
ACCEPTED = "accepted"


_CODECS: dict[int, NativeCodec] = {}


def _codec(description: Description) -> NativeCodec:
    codec = _CODECS.get(id(description))
    if codec is None or codec.description is not description:
        codec = _CODECS[id(description)] = NativeCodec(description)
    return codec


def compare(data: bytes, choices: tuple[Description, Description]) -> str:
    """The verdict on one input (its first byte picks one of ``choices``); a
    DecodeError for inputs the generic path rejects (and the native path gave
    up on), PathsDisagree for a finding."""
    choice, stream = (data[0] & 1, data[1:]) if data else (0, b"")
    description = choices[choice]
    codec = _codec(description)
    native = codec.decode(stream, 0, description.version_id)
    whole = native is not None and native[1] == len(stream)
    visitor = BerInputVisitor(stream)
    try:
        state = vmstate.load(visitor, description, description.version_id)
        visitor.finish()
    except DecodeError:
        if whole:
            raise PathsDisagree("the native path read a stream the generic path refuses") from None
        raise
    if native is not None and typed_state(native[0]) != typed_state(state):
        raise PathsDisagree("the native path read the stream differently from the generic path")
    encoded = codec.encode(state)
    if encoded is not None:
        output = BerOutputVisitor()
        vmstate.save(output, description, state)
        if encoded != output.result():
            raise PathsDisagree("the native path wrote other bytes than the generic path for the same state")
    return ACCEPTED_NATIVELY if whole else ACCEPTED


__all__ = ["ACCEPTED", "ACCEPTED_NATIVELY", "compare"]
