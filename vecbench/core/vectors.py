"""Vectors: the metric names and the helpers every layer above shares over (n, d) arrays.

Normalization, the unit-norm check, NaN/Inf checks, blockwise passes over a memory map (whose
pages are released after each block) and hashing. numpy is imported inside each function:
validation imports this module for :data:`METRICS` and must stay light.
"""

from __future__ import annotations

import hashlib
import mmap
from typing import TYPE_CHECKING, Any, Iterator

from vecbench.core.errors import DataError

if TYPE_CHECKING:
    import numpy as np

#: The distances a dataset and an index take: squared Euclidean, inner product, cosine.
METRICS = ("l2", "ip", "cos")


def hash_array(h: hashlib._Hash, array: np.ndarray, rows_per_block: int = 65536) -> None:
    """Feed ``array`` to ``h`` block by block, so a memory-mapped base is never copied whole."""
    import numpy as np

    for _, block in row_blocks(array, rows_per_block):
        h.update(memoryview(np.ascontiguousarray(block)).cast("B"))


def is_mapped(x: Any) -> bool:
    """True for an array that reads a file through a memory map (np.memmap or a view of one)."""
    import numpy as np

    return isinstance(x, np.memmap) and getattr(x, "_mmap", None) is not None


def row_blocks(x: np.ndarray, rows_per_block: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, x[start:start + rows_per_block])`` over all rows; a memory map's pages are
    released after each block (:func:`release_rows`), so a pass over a file larger than memory
    keeps about one block resident. A block must not be used after the next one is drawn."""
    rows_per_block = max(1, int(rows_per_block))
    for start in range(0, len(x), rows_per_block):
        stop = min(start + rows_per_block, len(x))
        yield start, x[start:stop]
        release_rows(x, start, stop)


def release_rows(x: np.ndarray, start: int = 0, stop: int | None = None) -> None:
    """Drop rows ``start:stop`` of a memory map from this process's resident set.

    Pages a memory map has touched count in the process's RSS until the map is closed; on a
    file larger than memory that is the whole file. ``madvise(MADV_DONTNEED)`` unmaps them (the
    file's pages stay in the OS page cache, so reading them again is a page fault, not a disk
    read). Anything else than a memory map with rows in increasing address order, or a
    copy-on-write one (whose changed pages MADV_DONTNEED would discard): no-op.
    """
    import numpy as np

    mm = getattr(x, "_mmap", None)
    stop = len(x) if stop is None else stop
    if mm is None or getattr(x, "mode", "c") in ("c", "copyonwrite") or stop <= start \
            or x.ndim == 0 or x.strides[0] <= 0 or not hasattr(mm, "madvise") or mm.closed:
        return
    origin = np.frombuffer(mm, dtype=np.uint8).ctypes.data
    first = x.ctypes.data + start * x.strides[0] - origin
    end = min(x.ctypes.data + stop * x.strides[0] - origin, len(mm))
    first -= first % mmap.PAGESIZE
    if end > first:
        mm.madvise(mmap.MADV_DONTNEED, first, end - first)


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """L2-normalize rows in float32; zero rows stay zero (they are counted by the data guards)."""
    import numpy as np

    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


#: A row counts as unit-norm (and is not normalized again under ``cos``) when its squared norm
#: is within this of 1: float32 rounding of a normalized row stays far inside it, and the
#: rescaling it tolerates changes no ranking but exact ties.
UNIT_NORM_TOLERANCE = 1e-4


def is_unit_norm(x: np.ndarray, rows_per_block: int | None = None) -> bool:
    """Every row has norm 1 (squared norm within ``UNIT_NORM_TOLERANCE``) or is zero
    (``normalize_rows`` leaves zero rows zero). One pass in blocks (a memory map's pages are
    released after each), no copy of ``x``."""
    if len(x) == 1 and x.dtype.char == "f":  # one float32 query (a public search()): one dot
        row = x.ravel()
        squared = float(row.dot(row))
        return abs(squared - 1.0) <= UNIT_NORM_TOLERANCE or squared == 0.0
    import numpy as np

    rows = rows_per_block or BLOCK_BYTES // (4 * max(1, x.shape[1]))
    for _, block in row_blocks(x, rows):
        block = np.asarray(block, dtype=np.float32)
        squared = np.einsum("ij,ij->i", block, block)
        if not np.all((np.abs(squared - 1.0) <= UNIT_NORM_TOLERANCE) | (squared == 0.0)):
            return False
    return True


def unit_rows(x: np.ndarray) -> np.ndarray:
    """``x`` itself when its rows already are unit-norm (a normalized memory-mapped base stays
    mapped, not copied), else ``normalize_rows(x)``."""
    return x if is_unit_norm(x) else normalize_rows(x)


def check_vectors(name: str, what: str, x: np.ndarray, rows_per_block: int = 65536) -> None:
    """Reject NaN/Inf and non-2-D arrays: an index built on them returns nonsense silently."""
    import numpy as np

    if x.ndim != 2:
        raise DataError(f"{name}: {what}: expected a 2-D array of vectors, got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise DataError(f"{name}: {what}: expected numeric vectors, got dtype {x.dtype}")
    if not np.issubdtype(x.dtype, np.floating):
        return
    for start, block in row_blocks(x, rows_per_block):
        if not np.isfinite(block).all():
            bad = start + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
            raise DataError(f"{name}: {what}: row {bad} has NaN or Inf values; "
                            "expected finite vectors")


#: Bytes of float32 one block of a blockwise pass over a memory-mapped base converts at once.
BLOCK_BYTES = 64 << 20


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux MemAvailable), None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def as_float32(x: np.ndarray) -> np.ndarray:
    import numpy as np

    if x.dtype == np.float32 and x.flags.c_contiguous:
        return x
    return np.ascontiguousarray(x, dtype=np.float32)
