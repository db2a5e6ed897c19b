"""What libraries print or warn while a unit runs, kept with the unit instead of the terminal.

faiss's C++ writes its warnings ("WARNING clustering 1797 points to 64 centroids: please provide
at least 2496 training points") straight to file descriptor 2, and scikit-learn and friends
raise Python warnings. Either is worth keeping (it may explain a poor recall) but, sprayed over
the progress lines of a sweep, it hides them. So a unit's Python warnings are recorded as they
are raised, its fd 2 is read from the worker's stderr file (isolated workers) or captured
around the unit (``--in-process``), and the distinct lines go into the record's
``library_output``; the run says in one line how many units printed something.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from typing import Iterator

#: Distinct lines kept per unit, characters kept of each, bytes of output read.
MAX_LINES = 20
LINE_CHARS = 300
MAX_BYTES = 256 * 1024


def distinct_lines(text: str, limit: int = MAX_LINES) -> list[str]:
    """The non-empty lines of ``text``, stripped, deduplicated in order, at most ``limit``
    (and a last line saying how many more distinct ones there were)."""
    lines = list(dict.fromkeys(line.strip()[:LINE_CHARS] for line in text.splitlines()
                               if line.strip()))
    if len(lines) > limit:
        return lines[:limit] + [f"... and {len(lines) - limit} more distinct lines"]
    return lines


def lines_of_file(path: str | os.PathLike) -> list[str]:
    """The distinct lines of the first :data:`MAX_BYTES` of a file (none if unreadable)."""
    try:
        with open(path, "rb") as handle:
            return distinct_lines(handle.read(MAX_BYTES).decode("utf-8", "replace"))
    except OSError:
        return []


def merge(*groups: list[str]) -> list[str]:
    """Several lists of lines as one, deduplicated and bounded again."""
    return distinct_lines("\n".join(line for group in groups for line in group))


class Heard:
    """What a unit's libraries said: filled in when :func:`heard` ends."""

    def __init__(self) -> None:
        self.lines: list[str] = []


@contextlib.contextmanager
def heard(capture_fd: bool = False) -> Iterator[Heard]:
    """Record the Python warnings raised meanwhile (and, with ``capture_fd``, what is written
    to file descriptor 2, C libraries included) instead of printing them. Capturing fd 2 is
    for a process that runs one unit at a time: anything else writing there meanwhile is
    kept with the unit."""
    out = Heard()
    with contextlib.ExitStack() as stack:
        caught = stack.enter_context(warnings.catch_warnings(record=True))
        path = stack.enter_context(_fd2_to_file()) if capture_fd else None
        try:
            yield out
        finally:
            said = [f"{w.category.__name__}: {w.message}" for w in caught]
            sys.stderr.flush()
            out.lines = merge(said, lines_of_file(path) if path else [])


@contextlib.contextmanager
def _fd2_to_file() -> Iterator[str]:
    """Point fd 2 at a temporary file meanwhile; yield its path (read before it is removed)."""
    sys.stderr.flush()
    saved = os.dup(2)
    handle = tempfile.NamedTemporaryFile(prefix="vecbench-stderr-", delete=False)
    try:
        os.dup2(handle.fileno(), 2)
        yield handle.name
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        handle.close()
        os.unlink(handle.name)
