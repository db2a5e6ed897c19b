"""The one checksum-verified cache format: named arrays in an ``.npz`` behind a file digest.

Every cache vecbench keeps (ground truth, pointwise LID, embeddings, fitted pipelines) writes
through :func:`write_verified` and reads through :func:`read_verified`. An entry is a 40-byte
header (``VBCACHE1`` + the blake2b hex digest of everything after it) followed by an ``.npz``,
so a flipped bit anywhere, a truncated or empty file, a directory in its place or edited rows
are all caught on read: :func:`read_verified` then prints ONE warning line naming the file,
removes the entry and returns None, and the caller rebuilds it. A cache is never used unverified
and never raises on a bad entry. Writes are atomic (temporary file in the same folder, renamed).

On a Dask worker an entry under ``$VECBENCH_CACHE`` is also published to the scheduler when
written and fetched from it when missing here (:mod:`vecbench.core.cluster`), so ground truth and
LID are computed once per cluster even where machines do not share a cache folder.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

from vecbench.core import atomic, cluster
from vecbench.core.paths import cache_dir

MAGIC = b"VBCACHE1"
_HEADER = len(MAGIC) + 32


def _payload_digest(handle) -> str:
    h = hashlib.blake2b(digest_size=16)
    handle.seek(_HEADER)
    for block in iter(lambda: handle.read(1 << 20), b""):
        h.update(block)
    return h.hexdigest()


_PROBLEMS: dict[str, str | None] = {}


def cache_problem() -> str | None:
    """Why the cache folder (``$VECBENCH_CACHE``) cannot be used, or None; checked once per
    process and folder, by making the folder and a file in it (a read-only file system, a
    regular file named as the folder, no permission). The first time a problem is found it is
    said in one warning line; every cache then works without the folder: shared results are
    recomputed, never a crash."""
    folder = cache_dir()
    if str(folder) not in _PROBLEMS:
        _PROBLEMS[str(folder)] = problem = _probe(folder)
        if problem is not None:
            warn(problem)
    return _PROBLEMS[str(folder)]


def _probe(folder: Path) -> str | None:
    try:
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "a file, not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = atomic.temporary_for(folder / ".probe")
        os.close(fd)
        name.unlink()
    except OSError as exc:
        return (f"VECBENCH_CACHE {folder}: not a writable folder ({exc.strerror or exc}); "
                "running without the cache (shared results are recomputed, not stored)")
    return None


def in_cache(path: Path) -> bool:
    """True for a path under the cache folder."""
    return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(cache_dir()))


def warn(line: str) -> None:
    """One warning line on stderr (the CLI's form), never a traceback."""
    print(f"vecbench: warning: {line}", file=sys.stderr, flush=True)


def discard(path: Path) -> None:
    """Remove a bad cache entry, whatever it is (file, folder, link); never raises."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def read_verified(path: str | os.PathLike, kind: str,
                  check: Callable[[dict], str | None] | None = None) -> dict | None:
    """The arrays of a verified cache entry, or None when there is none or it is bad.

    ``check`` may add a shape test on the arrays (return why they do not fit, or None). A bad
    entry (unreadable, digest mismatch, failed ``check``) is reported in one warning line naming
    ``kind`` and the file, removed, and None is returned so the caller rebuilds it.
    """
    import numpy as np

    path = Path(path)
    if not path.exists() and not path.is_symlink() and not _fetch_from_cluster(path):
        return None
    problem = None
    arrays: dict = {}
    try:
        if path.is_dir():
            raise IsADirectoryError("a directory, not a file")
        with open(path, "rb") as handle:
            header = handle.read(_HEADER)
            if len(header) < _HEADER or not header.startswith(MAGIC):
                problem = "not a vecbench cache entry (no header)"
            elif header[len(MAGIC):].decode("ascii", "replace") != _payload_digest(handle):
                problem = "content does not match its digest (altered or truncated)"
            else:
                handle.seek(_HEADER)
                with np.load(handle, allow_pickle=False) as stored:
                    arrays = {name: stored[name] for name in stored.files}
                if check is not None:
                    problem = check(arrays)
    except Exception as exc:  # numpy/zipfile raise many kinds for a damaged file
        text = str(exc).splitlines()[0] if str(exc) else ""
        problem = f"unreadable ({type(exc).__name__}{': ' + text if text else ''})"
    if problem is None:
        return arrays
    warn(f"{path}: {kind} cache entry failed verification: {problem}; rebuilding it")
    discard(path)
    return None


def write_verified(path: str | os.PathLike, arrays: dict[str, Any]) -> Path:
    """Store named arrays with their digest, atomically; a bad entry in the way is replaced.

    A cache that cannot be written (read-only folder, full disk) is reported in one warning
    line and skipped: the computed value is still returned to the caller by its own code.
    """
    import numpy as np

    path = Path(path)
    if in_cache(path) and cache_problem() is not None:
        return path   # said once already: no warning per entry
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_temporaries(path.parent)   # left by an interrupted write
        if path.is_dir() and not path.is_symlink():
            discard(path)
        with atomic.atomic_file(path, mode="w+b") as handle:
            handle.write(MAGIC + b"0" * 32)
            np.savez(handle, **arrays)
            handle.flush()
            digest = _payload_digest(handle).encode()
            handle.seek(len(MAGIC))
            handle.write(digest)
    except OSError as exc:
        warn(f"{path}: cache not written ({exc.strerror or exc}); continuing without it")
        return path
    _publish_to_cluster(path)
    return path


def _cluster_name(path: Path) -> str | None:
    """The entry's name on the cluster: its path inside the cache folder (the folder itself may
    differ between machines); None for a file outside it."""
    try:
        return "cache-" + path.resolve().relative_to(cache_dir().resolve()).as_posix()
    except ValueError:
        return None


def _publish_to_cluster(path: Path) -> None:
    name = _cluster_name(path)
    if name is not None and cluster.on_cluster():
        cluster.publish(name, path.read_bytes())


def _fetch_from_cluster(path: Path) -> bool:
    """Write the entry another worker published for ``path`` here; True when one was there
    (it is then verified like any entry read from disk)."""
    name = _cluster_name(path)
    data = cluster.fetch(name) if name is not None else None
    if data is None:
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(path, data)
    except OSError:  # an unwritable cache: compute here instead
        return False
    return True


def clean_temporaries(folder: str | os.PathLike) -> int:
    """Remove ``.*.tmp`` files an interrupted write left in ``folder`` (not recursive) whose
    writer is gone; return how many."""
    removed = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for tmp in folder.glob(".*.tmp"):
        pid = _writer_pid(tmp.name)
        if pid is not None and pid_alive(pid):   # being written right now (maybe by us)
            continue
        try:
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
            removed += 1
        except OSError:
            pass
    return removed


def _writer_pid(name: str) -> int | None:
    parts = name.rsplit(".", 2)   # .<name>.<random>.<pid>.tmp (vecbench.core.atomic)
    try:
        return int(parts[-2])
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """A process with this pid exists (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
