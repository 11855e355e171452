"""Committed corpora written by the code: the files it writes now, and nothing stale.

Why: the golden streams and the schema dumps are both directories the code
regenerates and the repository commits. Regenerating must write every file the
code produces and remove the ones it no longer produces (a release or state
that is gone), without touching anything else a user keeps there -- one rule,
so the two corpora can never disagree on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath


def write_corpus(root: Path, files: Mapping[str, bytes], managed: Callable[[PurePosixPath], bool]) -> list[str]:
    """Write ``files`` (relative POSIX path -> content) under ``root``, then remove
    every file whose relative path ``managed`` claims but ``files`` no longer
    holds, and the directories that leaves empty below ``root``.

    Returns the relative paths removed. Not atomic: an interrupted run leaves a
    corpus the checks reject, and running again mends it.
    """
    for name, content in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    removed = []
    for path in sorted(root.rglob("*")):
        relative = PurePosixPath(path.relative_to(root).as_posix())
        if path.is_file() and managed(relative) and str(relative) not in files:
            path.unlink()
            removed.append(str(relative))
            directory = path.parent
            while directory != root and directory.exists() and not any(directory.iterdir()):
                directory.rmdir()
                directory = directory.parent
    return removed


__all__ = ["write_corpus"]
