"""Exact k nearest neighbours of the original float32 vectors: blockwise, bounded memory, cached.

Ground truth is what every recall number is measured against, so it is always computed by
vecbench (shipped neighbours are only checked against it) and verified when read from cache.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Ground truth is computed this deep whatever k is, so recall@100 and IR metrics share it.
MIN_DEPTH = 100
#: Base rows searched per block: 2^18 rows of 384-d float32 is 384 MiB, the memory bound.
BASE_BLOCK_ROWS = 1 << 18


@dataclass(frozen=True)
class GroundTruth:
    """Exact neighbours of each query: ``ids`` (nq × depth int64), ``distances`` (nq × depth).

    ``distances`` are squared L2 for ``l2`` and similarities for ``ip``/``cos`` (higher is
    nearer), as faiss reports them; :func:`as_distance` turns both into "smaller is nearer".
    """

    ids: np.ndarray
    distances: np.ndarray
    metric: str

    @property
    def depth(self) -> int:
        return int(self.ids.shape[1])


def as_distance(values: np.ndarray, metric: str) -> np.ndarray:
    """Map faiss scores to a dissimilarity: squared L2 as is, similarities negated."""
    return values if metric == "l2" else -values


def cache_dir() -> Path:
    return Path(os.environ.get("VECBENCH_CACHE", Path.home() / ".cache" / "vecbench"))


def exact_knn(base: np.ndarray, queries: np.ndarray, k: int, metric: str,
              block_rows: int = BASE_BLOCK_ROWS) -> GroundTruth:
    """Exact kNN of ``queries`` in ``base`` with faiss, one block of base at a time.

    Only one block of base is in memory at once (a memory-mapped base larger than RAM works);
    faiss's ResultHeap merges the per-block results. ``cos`` expects normalized vectors.
    """
    import faiss

    queries = np.ascontiguousarray(queries, dtype=np.float32)
    k_eff = min(k, len(base))
    inner = metric in ("ip", "cos")
    heap = faiss.ResultHeap(len(queries), k_eff, keep_max=inner)
    for start in range(0, len(base), block_rows):
        block = np.ascontiguousarray(base[start:start + block_rows], dtype=np.float32)
        index = faiss.IndexFlatIP(block.shape[1]) if inner else faiss.IndexFlatL2(block.shape[1])
        index.add(block)
        scores, ids = index.search(queries, min(k_eff, len(block)))
        ids = np.where(ids >= 0, ids + start, -1)
        heap.add_result(np.ascontiguousarray(scores), np.ascontiguousarray(ids))
    heap.finalize()
    ids = heap.I.astype(np.int64)
    scores = heap.D.astype(np.float32)
    if k_eff < k:  # fewer base vectors than asked for: pad as an index would
        ids = np.pad(ids, ((0, 0), (0, k - k_eff)), constant_values=-1)
        fill = -np.inf if inner else np.inf
        scores = np.pad(scores, ((0, 0), (0, k - k_eff)), constant_values=fill)
    return GroundTruth(ids=ids, distances=scores, metric=metric)


def _checksum(ids: np.ndarray, distances: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(ids).tobytes())
    h.update(np.ascontiguousarray(distances).tobytes())
    return h.hexdigest()


def ground_truth(base: np.ndarray, queries: np.ndarray, metric: str, fingerprint: str,
                 k: int = MIN_DEPTH, cache: Path | None = None) -> GroundTruth:
    """Exact kNN to depth max(k, 100), read from the cache when a verified copy is there.

    The cache key is the content fingerprint of base, queries and metric; a cached file whose
    checksum, shape or metric does not match is recomputed and overwritten.
    """
    depth = max(k, MIN_DEPTH)
    folder = (cache or cache_dir()) / "groundtruth"
    path = folder / f"{fingerprint}-{depth}.npz"
    expected_shape = (len(queries), depth)
    if path.exists():
        try:
            with np.load(path) as stored:
                ids, distances = stored["ids"], stored["distances"]
                ok = (ids.shape == expected_shape and distances.shape == expected_shape
                      and str(stored["metric"]) == metric
                      and str(stored["checksum"]) == _checksum(ids, distances))
            if ok:
                return GroundTruth(ids=ids, distances=distances, metric=metric)
        except (OSError, ValueError, KeyError):
            pass  # unreadable or truncated: recompute below
    truth = exact_knn(base, queries, depth, metric)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, ids=truth.ids, distances=truth.distances, metric=metric,
             checksum=_checksum(truth.ids, truth.distances))
    os.replace(tmp, path)
    return truth


def shipped_mismatch(shipped: np.ndarray, truth: GroundTruth, base: np.ndarray,
                     queries: np.ndarray, k: int) -> float:
    """Fraction of queries whose shipped top-k contains an id farther than the exact k-th.

    A shipped id outside the exact top-k set is still right when its true distance ties the
    exact k-th distance, so ties never count as a mismatch.
    """
    from vecbench.metrics import hits_within_kth

    k = min(k, shipped.shape[1], truth.depth)
    hits = hits_within_kth(shipped[:, :k], truth, base, queries, k)
    return float(np.mean(hits.sum(axis=1) < k))
