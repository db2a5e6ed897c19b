"""Work shared by many units, done once: a per-key lock and a verified store of fitted pipelines.

Exact ground truth, pointwise LID and fitted pipelines are cached by content under
``$VECBENCH_CACHE``. Without coordination, units that start together (``--jobs N``, a Dask
cluster) would all miss the cache and compute the same thing N times. :func:`lock` makes them
wait for the first one instead:

- on a Dask cluster, a cluster-wide ``distributed.Lock`` held by the scheduler (every machine of
  the cluster sees it; a unit in a process of its own asks its Dask worker to hold it);
- elsewhere, an exclusive lock file under ``$VECBENCH_CACHE/locks`` (every process on the
  machine sees it).

A fitted pipeline is stored as a pickle with its blake2b digest beside it, verified on read and
refitted with a warning when corrupt. On a Dask cluster the bytes of every shared result (fits
here, ground truth and LID through :mod:`vecbench.core.cache`) are also handed to the scheduler
(:mod:`vecbench.core.cluster`: a ``distributed.Variable`` named by the entry), so a worker on another machine, whose cache is not shared, reads the result
instead of redoing it: work is done once per cluster, not once per machine.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import pickle
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

from vecbench.core import atomic
from vecbench.core.cache import cache_problem, discard, warn
from vecbench.core.cluster import digest, fetch, on_cluster, publish
from vecbench.core.cluster import lock as cluster_lock
from vecbench.core.paths import cache_dir


@contextlib.contextmanager
def lock(name: str) -> Iterator[None]:
    """Hold the lock called ``name`` (a content key) across the cluster or the machine."""
    if on_cluster():   # a Dask worker, or a unit's own process under one (its relay)
        with cluster_lock(name):
            yield
        return
    import fcntl


    folder = cache_dir() / "locks"
    try:
        if cache_problem() is not None:
            raise OSError(errno.EROFS, "cache unusable")
        folder.mkdir(parents=True, exist_ok=True)
        # O_NOFOLLOW: a link planted at the lock's name is refused, never opened (or created)
        fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        handle = os.fdopen(fd, "r+b")
    except OSError:  # no cache to share through: each process computes for itself
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def key_of(*parts: Any) -> str:
    """A short content key of JSON-able parts."""
    import json

    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _paths(key: str) -> tuple[Path, Path]:
    folder = cache_dir() / "fits"
    return folder / f"{key}.pkl", folder / f"{key}.blake2b"


def read_fit(key: str) -> Any | None:
    """The fitted object stored under ``key``, or None when absent; a corrupt entry (digest
    mismatch, unreadable pickle) is reported with a warning and treated as absent."""

    path, digest_path = _paths(key)
    data = None
    for entry in (path, digest_path):
        if entry.is_dir() and not entry.is_symlink():   # a folder where the entry belongs
            warnings.warn(f"{entry}: a folder in place of a cached fitted pipeline; refitting",
                          RuntimeWarning, stacklevel=2)
            discard(entry)
    if cache_problem() is None and path.exists():
        try:
            data = path.read_bytes()
            expected = digest_path.read_text().strip()
        except OSError:
            data, expected = None, ""
        if data is not None and digest(data) != expected:
            warnings.warn(f"{path}: checksum mismatch in a cached fitted pipeline; refitting",
                          RuntimeWarning, stacklevel=2)
            data = None
    if data is None:
        data = fetch(f"fit-{key}")
        if data is not None:
            _write(key, data)
    if data is None:
        return None
    try:
        return pickle.loads(data)
    except Exception:  # noqa: BLE001 - any unpickling failure means "refit"
        warnings.warn(f"{path}: unreadable cached fitted pipeline; refitting", RuntimeWarning,
                      stacklevel=2)
        return None


def write_fit(key: str, value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    _write(key, data)
    publish(f"fit-{key}", data)


def _write(key: str, data: bytes) -> None:
    """Store a fit; a cache that cannot take it (read-only, full, unusable) is one warning line,
    and the fit is still used by the unit that made it."""

    if cache_problem() is not None:
        return
    path, digest_path = _paths(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for entry in (path, digest_path):
            if entry.is_dir() and not entry.is_symlink():
                discard(entry)
        atomic.write_bytes(path, data)  # the data first: a digest never names bytes not yet there
        atomic.write_text(digest_path, digest(data))
    except OSError as exc:
        warn(f"{path}: fitted pipeline not cached ({exc.strerror or exc}); continuing "
             "without it")


def once(key: str, compute: Callable[[], Any]) -> tuple[Any, bool]:
    """``(value, computed_here)``: the stored fit under ``key``, else ``compute()`` stored.

    Concurrent callers with the same key wait on one lock, so exactly one of them computes."""
    value = read_fit(key)
    if value is not None:
        return value, False
    with lock(f"fit-{key}"):
        value = read_fit(key)
        if value is not None:
            return value, False
        value = compute()
        write_fit(key, value)
        return value, True
