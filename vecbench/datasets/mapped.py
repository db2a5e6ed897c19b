"""Data files read through memory maps, checked while a unit runs: a file truncated or rewritten
under its map is read past its end (SIGBUS) or as garbage, so a unit checks the sizes before
each stage that reads them and before and after each search setting, and a worker that dies of
SIGBUS is explained by the files it had mapped (listed in its folder as it loads them)."""

from __future__ import annotations

import json
import mmap
import os
from pathlib import Path

from vecbench.core import atomic
from vecbench.core.errors import MachineFailure

#: Where a worker lists the files it maps (set by vecbench.run.workers in the worker's process).
FOLDER_ENV = "VECBENCH_WORKER_FOLDER"


def files(dataset) -> list[tuple[str, int]]:
    """(file, bytes its map needs) of every memory-mapped array of ``dataset``."""
    out = {}
    for name in ("base", "queries", "train"):
        x = getattr(dataset, name, None)
        while x is not None and not (hasattr(x, "filename") and hasattr(x, "_mmap")):
            x = getattr(x, "base", None)   # a view of a map: its owner has the file
        if x is not None and x.filename and x._mmap is not None:
            start = x.offset - x.offset % mmap.ALLOCATIONGRANULARITY
            out[str(x.filename)] = max(out.get(str(x.filename), 0), start + len(x._mmap))
    return sorted(out.items())


def shrunk(mapped: list) -> list[str]:
    """One phrase per file now shorter than its map needs."""
    out = []
    for path, need in mapped:
        try:
            now = os.stat(path).st_size
        except OSError as exc:
            out.append(f"{path} is gone ({exc.strerror})")
            continue
        if now < need:
            out.append(f"{path} changed size mid-run ({need} bytes mapped, {now} now)")
    return out


def check(mapped: list) -> None:
    """MachineFailure naming the file when one shrank under its map."""
    changed = shrunk(mapped)
    if changed:
        raise MachineFailure(f"{changed[0]}: truncated or rewritten while the unit read it; "
                             "expected data files to stay as they are during a run")


def note(mapped: list) -> None:
    """In a worker, list the mapped files in its folder (for :func:`explain`)."""
    folder = os.environ.get(FOLDER_ENV)
    if folder and mapped:
        try:
            atomic.write_text(Path(folder, "mapped.json"), json.dumps(mapped))
        except OSError:
            pass   # the runner stopped and removed the folder: nothing to explain to


def explain(folder: Path) -> str | None:
    """Why a worker got SIGBUS, when a file it mapped shrank; None otherwise."""
    try:
        mapped = json.loads((Path(folder) / "mapped.json").read_text())
    except (OSError, ValueError):
        return None
    changed = shrunk(mapped)
    return "; ".join(changed) if changed else None
