"""Every file vecbench writes is written here: all or nothing, and never through a planted link.

The data go to a temporary file that :func:`tempfile.mkstemp` creates in the target's folder
(O_EXCL, an unpredictable name), so a file or symlink someone placed
at a predictable name is never opened; :func:`os.replace` then renames it over the target, which
replaces a symlink found there instead of writing through it. A reader never sees half a file.

Temporary names are ``.<name>.<random>.<pid>.tmp``: ``cache.clean_temporaries`` reads the pid
to remove only those whose writer is gone.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from pathlib import Path
from typing import IO, Callable, Iterator


@functools.lru_cache(maxsize=1)
def _file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file (0666 less the umask), read once."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def temporary_for(path: Path) -> tuple[int, Path]:
    """An open descriptor and the name of a new, exclusive temporary sibling of ``path``."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".{os.getpid()}.tmp",
                                dir=path.parent)
    os.fchmod(fd, _file_mode())  # what the target would have had; mkstemp gives 0600
    return fd, Path(name)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, *, durable: bool = False,
                mode: str = "wb") -> Iterator[IO]:
    """An open handle on a temporary sibling of ``path``, renamed over ``path`` when the block
    succeeds (and removed when it fails). ``durable``: fsync before the rename (run records).
    ``mode``: ``wb`` or ``w+b`` (a writer that reads back what it wrote)."""
    path = Path(path)
    fd, tmp = temporary_for(path)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # gone after the rename; left only by a failure


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """The name of an exclusive temporary sibling of ``path``, for writers that take a file
    name only (h5py); renamed over ``path`` when the block succeeds. Prefer
    :func:`atomic_file`: a writer that reopens the name trusts the folder not to swap it."""
    path = Path(path)
    fd, tmp = temporary_for(path)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = False) -> Path:
    with atomic_file(path, durable=durable) as handle:
        handle.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, *, durable: bool = False) -> Path:
    return write_bytes(path, text.encode("utf-8"), durable=durable)


def write_with(path: str | os.PathLike, write: Callable[[IO], object], *,
               durable: bool = False) -> Path:
    """``write(handle)`` into ``path``, all or nothing (np.savez, DataFrame.to_parquet, ...)."""
    with atomic_file(path, durable=durable) as handle:
        write(handle)
    return Path(path)
