"""Where a dataset's files are: the experiment's folder first, then ``$VECBENCH_DATA``.

A module of its own (no numpy) because validation and the recipes resolve paths without loading
data.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from vecbench.core.errors import DataError, MissingDataError

#: What ``stat`` says a path is, for the line that refuses it.
_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def special_kind(path: str | os.PathLike) -> str | None:
    """What ``path`` is when it is neither a regular file nor a folder (None otherwise, or when
    it does not exist): reading a FIFO blocks and ``/dev/zero`` never ends, so nothing is opened
    before this says no."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return next((kind for test, kind in _KINDS if test(mode)), None)


def regular_file(path: str | os.PathLike, expected: str) -> Path:
    """``path`` when it is a regular file, else a one-line DataError naming what it is."""
    path = Path(path)
    kind = special_kind(path)
    if kind is None and path.is_dir():
        kind = "a directory"
    if kind is not None:
        raise DataError(f"{path}: is {kind}, not a regular file; expected {expected}")
    return path


class PathResolver:
    """Resolve data paths: relative to the experiment file's folder first, then ``$VECBENCH_DATA``.

    ``where`` names the YAML path of the dataset entry, so a missing file is reported as
    ``exp.yaml: datasets[2].npy.base: no such file 'b.npy' (looked in ...)``.
    """

    def __init__(self, base_dir: str | Path | None = None, where: str = ""):
        self.base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
        self.where = where

    def roots(self) -> list[Path]:
        roots = [self.base_dir]
        data = os.environ.get("VECBENCH_DATA")
        if data:
            roots.append(Path(data))
        return roots

    def resolve(self, param: str, value: str | os.PathLike, must_exist: bool = True) -> Path:
        path = Path(os.path.expanduser(str(value)))
        candidates = [path] if path.is_absolute() else [root / path for root in self.roots()]
        for candidate in candidates:
            if candidate.exists():
                kind = special_kind(candidate)
                if kind is not None:  # refused before anything (the digest too) opens it
                    where = f"{self.where}.{param}" if self.where and param else self.where
                    raise DataError(f"{where + ': ' if where else ''}{candidate}: is {kind}; "
                                    "expected a regular file or a folder")
                return candidate
        if not must_exist:
            return candidates[0]
        looked = ", ".join(str(c.parent) for c in candidates)
        where = f"{self.where}.{param}" if self.where else param
        hint = ("" if path.is_absolute() or os.environ.get("VECBENCH_DATA") else
                "; relative paths are also looked up in $VECBENCH_DATA, which is not set: set "
                "it to the data folder (the shared datasets: ../shared/datasets)")
        raise MissingDataError(f"{where}: no such file or folder {str(value)!r} "
                               f"(looked in {looked}){hint}")
