"""What the database-engine adapters (pgvector, LanceDB, Chroma) share: resources that must be
released (a temporary folder, a server handle, a table), and the build wrapper that acquires them
and releases them again when the build fails.

An engine adapter owns things outside the Python process: files in a temporary folder, a table in
a PostgreSQL server, the server itself. They are released by ``close()`` (also on leaving a
``with`` block), when the adapter is garbage-collected, and at interpreter exit (after Ctrl-C
too): a :func:`weakref.finalize` holds the release callbacks, never the adapter itself.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any, Callable

from vecbench.core.errors import ConfigError
from vecbench.indexes.base import IndexBase, check_threads
from vecbench.indexes.protocol import BuildReport


def check_folder(folder: str | None) -> None:
    """A ``folder`` parameter (already a non-empty string or None) names an existing folder."""
    if folder is not None and not Path(folder).is_dir():
        raise ConfigError(f"expected an existing folder, got {folder!r}", "folder")


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

    Subclasses implement ``_build(x, metric, threads)``, which registers release callbacks
    with :meth:`_on_close` as it acquires things; :meth:`build` starts from fresh resources
    (releasing a previous build's) and releases them all when ``_build`` fails or is
    interrupted. ``_explain`` may turn a failure into a clearer one (a crashed server).
    """

    folder_: str | None = None  # the temporary folder of the last build, if any
    _releases: _Releases | None = None
    _finalizer: weakref.finalize | None = None

    def build(self, x: Any, metric: str, *, train: Any = None,
              threads: int | None = None) -> BuildReport:
        threads = check_threads(threads) or self.n_threads
        self._new_resources()
        try:
            return self._build(x, metric, threads)
        except BaseException as exc:
            clearer = self._explain(exc)  # before the release: it may ask the server
            self.close()  # a failed (or interrupted) build leaves no table or folder behind
            if clearer is None:
                raise
            raise clearer from exc

    def _build(self, x: Any, metric: str, threads: int) -> BuildReport:
        raise NotImplementedError

    def _explain(self, exc: BaseException) -> BaseException | None:
        """A clearer exception for a failed build, or None to re-raise it as it is."""
        return None

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

    def _storage_error(self, exc: BaseException, parent: str | None) -> ConfigError | None:
        """A build whose folder cannot take the engine's files (read-only, full, no permission)
        is bad input: one line naming the engine and the folder, not a crash record; None for
        any other failure. Engines report it in their own exception types, so the message is
        read too. Adapters with a folder return it from :meth:`_explain`."""
        if not isinstance(exc, Exception):
            return None
        text = str(exc)
        errno_ = getattr(exc, "errno", None)
        if errno_ not in _STORAGE_ERRNOS and not any(m in text for m in _STORAGE_TEXTS):
            return None
        folder = self.folder_ or parent or tempfile.gettempdir()
        reason = getattr(exc, "strerror", None) or (text.splitlines() or [""])[0][:200]
        # a ConfigError of the build parameter `folder`: the record names its YAML path
        return ConfigError(f"{self.name}: folder {folder}: cannot write the engine's files "
                           f"({reason}); expected a writable folder with free space (or, "
                           "without folder, a writable TMPDIR)", "folder")

    def close(self) -> None:
        """Release the engine's resources (tables, folders, server handles). Idempotent; the
        index cannot be searched afterwards."""
        self.index_ = None
        self._forget_searches()
        if self._finalizer is not None:
            finalizer, self._finalizer = self._finalizer, None
            finalizer()
