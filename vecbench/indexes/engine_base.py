"""What the database-engine adapters (pgvector, LanceDB, Chroma) share: resources that must be
released (a temporary folder, a server handle, a table) and the build report.

An engine adapter owns things outside the Python process: files in a temporary folder, a table in
a PostgreSQL server, the server itself. They are released by ``close()`` (also on leaving a
``with`` block), when the adapter is garbage-collected, and at interpreter exit (after Ctrl-C
too): a :func:`weakref.finalize` holds the release callbacks, never the adapter itself.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from vecbench.errors import ConfigError
from vecbench.indexes.base import IndexBase

try:  # the protocol's build report (vecbench.indexes.base, added by the index-protocol change)
    from vecbench.indexes.base import BuildReport
except ImportError:  # stand-in with the same fields until that change is merged
    @dataclass(frozen=True)
    class BuildReport:  # type: ignore[no-redef]
        threads: int
        deterministic: bool
        code_bytes_per_vector: float
        graph_bytes_per_vector: float = 0.0
        compresses: bool = False
        details: dict = field(default_factory=dict)


class _Releases:
    """Release callbacks, run last-in first-out, each once, all of them even when one fails."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[], Any]] = []

    def __call__(self) -> None:
        first_error: BaseException | None = None
        while self.callbacks:
            try:
                self.callbacks.pop()()
            except BaseException as exc:  # noqa: BLE001  (keep releasing; re-raised below)
                first_error = first_error or exc
        if first_error is not None:
            raise first_error


def folder_size(path: str | Path) -> int:
    """Bytes of the regular files under ``path`` (what the engine wrote to disk)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            if not os.path.islink(full):
                total += os.path.getsize(full)
    return total


_STORAGE_ERRNOS = {errno.EROFS, errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EDQUOT}
#: How engines word the same failures in their own exceptions (Lance IO errors, SQLite).
_STORAGE_TEXTS = ("No space left", "Read-only file system", "readonly database",
                  "Permission denied", "disk is full", "Operation not permitted")


class EngineIndex(IndexBase):
    """An adapter whose index lives in an engine: ``close()`` releases what ``build`` acquired.

    Subclasses call :meth:`_new_resources` at the start of ``build`` (which releases a previous
    build's) and register release callbacks with :meth:`_on_close`.
    """

    folder_: str | None = None  # the temporary folder of the last build, if any
    _releases: _Releases | None = None
    _finalizer: weakref.finalize | None = None

    def _new_resources(self) -> None:
        self.close()
        self._releases = _Releases()
        self._finalizer = weakref.finalize(self, self._releases)

    def _on_close(self, callback: Callable[[], Any]) -> None:
        assert self._releases is not None, "_new_resources() first"
        self._releases.callbacks.append(callback)

    def _temporary_folder(self, parent: str | None = None) -> str:
        """A new folder removed on close (under ``parent``, else the system's temp folder)."""
        folder = self.folder_ = tempfile.mkdtemp(prefix=f"vecbench-{self.name}-", dir=parent)
        self._on_close(lambda: shutil.rmtree(folder, ignore_errors=True))
        return folder

    @contextlib.contextmanager
    def _storage_errors(self, parent: str | None) -> Iterator[None]:
        """A build whose folder cannot take the engine's files (read-only, full, no permission)
        is bad input: one line naming the engine and the folder, not a crash record. Engines
        report it in their own exception types, so the message is read too."""
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - re-raised unless it is a storage failure
            text = str(exc)
            errno_ = getattr(exc, "errno", None)
            if errno_ not in _STORAGE_ERRNOS and not any(m in text for m in _STORAGE_TEXTS):
                raise
            folder = self.folder_ or parent or tempfile.gettempdir()
            reason = getattr(exc, "strerror", None) or (text.splitlines() or [""])[0][:200]
            # a ConfigError of the build parameter `folder`: the record names its YAML path
            raise ConfigError(f"{self.name}: folder {folder}: cannot write the engine's files "
                              f"({reason}); expected a writable folder with free space (or, "
                              "without folder, a writable TMPDIR)", "folder") from None

    def close(self) -> None:
        """Release the engine's resources (tables, folders, server handles). Idempotent; the
        index cannot be searched afterwards."""
        self.index_ = None
        if self._finalizer is not None:
            finalizer, self._finalizer = self._finalizer, None
            finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
