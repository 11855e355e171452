"""Random descriptions with fitting random states round-trip through every pairing.

Why: the hand-written tables cover the cases someone thought of; this covers the
combinations nobody listed -- nested structs inside sentinel lists inside
subsections, lengths held in fields of every integer width, fields absent at the
stream version. Descriptions and states come from
:func:`migcompat.model.strategies.descriptions` and :func:`migcompat.model.strategies.values_of`,
which take integer ranges from the kinds' names and the expected state from the
description alone: not from the visitors' tables or the runtime :func:`states`.
"""

from __future__ import annotations

from typing import Any

import pytest
from _support import PAIRING_NAMES, decode, encode, to_indefinite, typed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migcompat.errors import DecodeError
from migcompat.model.strategies import Layouts, descriptions, values_of
from migcompat.model.vmstate import Description, walk
from migcompat.wire import PAIRINGS

#: Descriptions whose expected state at an older stream version is known without
#: the code under test: fields are gated only by ``since`` (never inside a struct)
#: and then carry an explicit default; a list with no terminator only ends the stream.
DESCRIPTIONS = descriptions(
    layouts=Layouts(
        random_names=True,
        gates=frozenset({"since"}),
        nested_gates=False,
        drawn_defaults=True,
        nested_descriptions=False,
        framings=("count", "sentinel"),
        open_last=True,
        long_lists=False,
        validators=False,
        accept_unknown=False,
        min_subsection_fields=1,
        needed_subsections=False,
    )
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Description, dict[str, Any], int]:
    """A description, a state that fits it, and the stream version to write it at."""
    description = draw(DESCRIPTIONS)
    state = draw(values_of(description))
    version = draw(st.integers(max(description.minimum_version_id, 1), description.version_id))
    return description, state, version


def _at_version(description: Description, state: dict[str, Any], version: int) -> dict[str, Any]:
    """What a destination loads from ``state`` written at stream ``version``."""
    projected = {f.name: (state[f.name] if f.since <= version else f.default) for f in description.fields}
    projected.update({sub.name: state[sub.name] for sub in description.subsections if sub.name in state})
    return projected


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("pairing", PAIRING_NAMES)
@PROPERTY
@given(case=cases())
def test_a_random_state_round_trips(pairing: str, case: tuple[Description, dict[str, Any], int]) -> None:
    description, state, version = case
    visitor = PAIRINGS[pairing].make_output()
    walk(visitor, description, state, version)
    loaded = decode(pairing, description, visitor.result(), version=version)  # type: ignore[attr-defined]
    assert typed(loaded) == typed(_at_version(description, state, version))


@PROPERTY
@given(case=cases())
def test_qemufile_through_ber_and_dict_reproduces_the_bytes(case: tuple[Description, dict[str, Any], int]) -> None:
    description, state, _version = case
    original = encode("qemufile", description, state)
    through_ber = decode("ber", description, encode("ber", description, decode("qemufile", description, original)))
    through_dict = decode("dict", description, encode("dict", description, through_ber))
    assert encode("qemufile", description, through_dict) == original


@settings(max_examples=100, deadline=None)
@given(case=cases(), data=st.data())
def test_every_strict_prefix_of_an_indefinite_ber_stream_is_rejected(
    case: tuple[Description, dict[str, Any], int], data: st.DataObject
) -> None:
    description, state, _version = case
    stream = to_indefinite(encode("ber", description, state))
    cut = data.draw(st.integers(0, len(stream) - 1), label="cut")
    with pytest.raises(DecodeError) as caught:
        decode("ber", description, stream[:cut])
    assert isinstance(caught.value.offset, int) and caught.value.offset <= cut
