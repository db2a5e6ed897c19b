"""What a dataset entry reads, as a content digest: the data part of a unit's key.

A unit's key must change when the data under a path changes, without loading the data to find
out. The digest covers the loader's name and parameters and the content of every file (or
folder) a parameter names; file contents are hashed once and remembered by path, size and
modification time, so a rerun rehashes only what moved (``vecbench run --rehash`` hashes all).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from vecbench.core import atomic
from vecbench.datasets.base import PathResolver
from vecbench.core.paths import cache_dir

_MEMO_FILE = "file-digests.json"


def identity(name: str, params: dict, base_dir: str, where: str = "",
             rehash: bool = False) -> str:
    """Digest of a dataset entry's name, parameters and the content of the files it names."""
    return DataDigests(rehash).of(name, params, base_dir, where)


class DataDigests:
    """The digests of a sweep's dataset entries, each file's remembered, so that the sweep can
    check at its end that its inputs are still those it started with.

    ``rehash`` hashes every file in full instead of trusting the size+mtime memo (a file
    rewritten with the same size and its mtime kept escapes the memo); ``memo_used`` says
    whether any digest came from the memo (the ``data_hashing`` column of the table).
    """

    def __init__(self, rehash: bool = False):
        self.rehash = rehash
        self.memo_used = False
        self.entries: dict[str, tuple[tuple, dict[str, str]]] = {}   # entry -> (args, files)

    def of(self, name: str, params: dict, base_dir: str, where: str = "") -> str:
        entry = json.dumps([name, params, base_dir], sort_keys=True, default=str)
        files: dict[str, str] = {}
        digest = _identity(name, params, base_dir, where, self, files)
        self.entries[entry] = ((name, params, base_dir, where), files)
        return digest

    @property
    def hashing(self) -> str:
        return "size+mtime" if self.memo_used else "full"

    def changed(self) -> list[tuple[str, str]]:
        """``(YAML path, file)`` of every file whose content differs from when it was digested
        (hashed in full when ``rehash``, else through the memo: a rewrite changes the mtime)."""
        again = DataDigests(self.rehash)
        out = []
        for (name, params, base_dir, where), files in self.entries.values():
            now: dict[str, str] = {}
            _identity(name, params, base_dir, where, again, now)
            out += [(where, path) for path in sorted(set(files) | set(now))
                    if files.get(path) != now.get(path)]
        return out


def _identity(name: str, params: dict, base_dir: str, where: str, digests: DataDigests,
              files: dict[str, str]) -> str:
    resolver: PathResolver = PathResolver(base_dir, where)
    if name == "recipe":  # a recipe stands for a loader entry over the data folder
        from vecbench.datasets.recipes import _DataFolder, get_recipe
        from vecbench.core.paths import data_dir

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
    memo = _Memo(digests.rehash)
    for path in paths:
        h.update(str(path.name).encode())
        files[str(path)] = memo.digest(path)
        h.update(files[str(path)].encode())
    memo.save()
    digests.memo_used |= memo.hits > 0
    return h.hexdigest()


def stamp(name: str, params: dict, base_dir: str, where: str = "") -> list:
    """(path, size, mtime) of the files and folders an entry names: cheap, to tell a dataset
    loaded earlier in this process from the same entry's data rewritten since."""
    out = []
    for top in _paths(params, PathResolver(base_dir, where)):
        for path in sorted(top.rglob("*")) if top.is_dir() else [top]:
            stat = path.stat()
            out.append([str(path), stat.st_size, stat.st_mtime_ns])
    return out


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

    def __init__(self, rehash: bool = False):
        self.path = cache_dir() / _MEMO_FILE
        self.changed = False
        self.rehash = rehash
        self.hits = 0
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
        if not self.rehash and isinstance(seen, list) and len(seen) == 3 \
                and seen[:2] == [stat.st_size, stat.st_mtime_ns]:
            self.hits += 1
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
