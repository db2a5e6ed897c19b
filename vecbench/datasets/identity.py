"""What a dataset entry reads, as a content digest: the data part of a unit's key.

A unit's key must change when the data under a path changes, without loading the data to find
out. The digest covers the loader's name and parameters and the content of every file (or
folder) a parameter names; file contents are hashed once and remembered by path, size and
modification time, so a rerun rehashes only what moved.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from vecbench import atomic
from vecbench.datasets.base import PathResolver

_MEMO_FILE = "file-digests.json"


def identity(name: str, params: dict, base_dir: str, where: str = "") -> str:
    """Digest of a dataset entry's name, parameters and the content of the files it names."""
    resolver: PathResolver = PathResolver(base_dir, where)
    if name == "recipe":  # a recipe stands for a loader entry over the data folder
        from vecbench.datasets.recipes import _DataFolder, data_dir, get_recipe

        try:
            entry = get_recipe(str(params.get("name"))).dataset
        except Exception:  # an unknown recipe fails at load, with its message, not here
            entry = {}
        if entry:
            inner_name, inner_params = next(iter(entry.items()))
            params = {"recipe": params, "entry": {inner_name: inner_params}}
            resolver = _DataFolder(data_dir(), where)
            paths = list(_paths(inner_params or {}, resolver))
        else:
            paths = []
    else:
        paths = list(_paths(params, resolver))
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps([name, params, _library_version(name)], sort_keys=True,
                        default=str).encode())
    memo = _Memo()
    for path in paths:
        h.update(str(path.name).encode())
        h.update(memo.digest(path).encode())
    memo.save()
    return h.hexdigest()


def _library_version(name: str) -> str:
    """Loaders whose data ships inside a library change with it (digits: scikit-learn)."""
    if name == "digits":
        from importlib.metadata import version

        return version("scikit-learn")
    return ""


def _paths(params: Any, resolver: PathResolver):
    """Existing files or folders named by string parameters (nested lists and maps too)."""
    values = params.values() if isinstance(params, dict) else params
    for value in values:
        if isinstance(value, (dict, list, tuple)):
            yield from _paths(value, resolver)
        elif isinstance(value, str) and value:
            path = resolver.resolve("", value, must_exist=False)
            if path.exists():
                yield path.resolve()


class _Memo:
    """path -> (size, mtime_ns, digest), kept in the cache folder; a bad memo is rebuilt."""

    def __init__(self):
        from vecbench.groundtruth import cache_dir

        self.path = cache_dir() / _MEMO_FILE
        self.changed = False
        try:
            self.entries = json.loads(self.path.read_text())
            if not isinstance(self.entries, dict):
                self.entries = {}
        except (OSError, ValueError):
            self.entries = {}

    def digest(self, path: Path) -> str:
        if path.is_dir():
            h = hashlib.blake2b(digest_size=16)
            for child in sorted(p for p in path.rglob("*") if p.is_file()
                                and not any(part.startswith(".") for part in
                                            p.relative_to(path).parts)):
                h.update(str(child.relative_to(path)).encode())
                h.update(self.digest(child).encode())
            return h.hexdigest()
        stat = path.stat()
        key = str(path)
        seen = self.entries.get(key)
        if isinstance(seen, list) and len(seen) == 3 and seen[:2] == [stat.st_size,
                                                                      stat.st_mtime_ns]:
            return str(seen[2])
        h = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                h.update(block)
        self.entries[key] = [stat.st_size, stat.st_mtime_ns, h.hexdigest()]
        self.changed = True
        return self.entries[key][2]

    def save(self) -> None:
        if not self.changed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_text(self.path, json.dumps(self.entries))
        except OSError:
            pass  # a read-only cache only costs rehashing next time
