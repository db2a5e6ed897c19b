"""Where a dataset's files are: the experiment's folder first, then ``$VECBENCH_DATA``.

A module of its own (no numpy) because validation and the recipes resolve paths without loading
data.
"""

from __future__ import annotations

import os
from pathlib import Path

from vecbench.errors import MissingDataError


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
