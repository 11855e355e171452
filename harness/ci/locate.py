"""Where a JSON pointer lands in a JSON file: its line, for an annotation on that line.

Why: the static checker's findings carry JSON pointers into the files compared
(:mod:`migcompat.model.layout`); an annotation needs a line. Parsing the file
into a position map would cost a second parser; walking only along the
pointer's tokens, skipping every other value with the standard decoder, costs
one pass over the bytes before the place.

Strategy: at each object, keys are read and their values skipped with
:meth:`json.JSONDecoder.raw_decode` until the wanted key; at each array,
elements are skipped up to the wanted index. The place of a member is the line
of its key (where a person reads the name); of an array element, its first
character. A pointer that does not resolve lands on the deepest place that did.
"""

from __future__ import annotations

import json
from pathlib import Path

_DECODER = json.JSONDecoder()
_SPACE = " \t\n\r"


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in _SPACE:
        index += 1
    return index


def _tokens(pointer: str) -> list[str]:
    if not pointer:
        return []
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer.split("/")[1:]]


def _find(text: str, index: int, token: str) -> tuple[int, int] | None:
    """(place of the token's entry, start of its value) in the container at ``index``."""
    opener = text[index] if index < len(text) else ""
    index += 1
    position = 0
    while True:
        index = _skip_space(text, index)
        if index >= len(text) or text[index] in "]}":
            return None
        place = index
        if opener == "{":
            key, index = _DECODER.raw_decode(text, index)
            index = _skip_space(text, index) + 1  # the colon
            index = _skip_space(text, index)
            if key == token:
                return place, index
        elif opener == "[":
            if token == str(position):
                return place, index
            position += 1
        else:
            return None
        _, index = _DECODER.raw_decode(text, index)
        index = _skip_space(text, index)
        if index < len(text) and text[index] == ",":
            index += 1


def offset_of(text: str, pointer: str) -> int:
    """Character offset of the place ``pointer`` names (the deepest that resolves)."""
    value = _skip_space(text, 0)
    place = value
    try:
        for token in _tokens(pointer):
            found = _find(text, value, token)
            if found is None:
                break
            place, value = found
    except (json.JSONDecodeError, IndexError):
        pass
    return place


def line_of(text: str, pointer: str) -> int:
    """1-based line of the place ``pointer`` names in the JSON ``text``."""
    return text.count("\n", 0, offset_of(text, pointer)) + 1


def file_line(path: Path, pointer: str) -> int | None:
    """The line of ``pointer`` in the file at ``path``; None when it cannot be read as text."""
    try:
        return line_of(path.read_text(encoding="utf-8"), pointer)
    except (OSError, UnicodeDecodeError):
        return None


__all__ = ["file_line", "line_of", "offset_of"]
