"""Exact kNN over the rows each query may see: blockwise, bounded memory, cached and verified.

Filtered recall is measured against these answers, as unfiltered recall is against
:func:`vecbench.compute.groundtruth.ground_truth`. A filter that shows every query the same rows
(random, range, one label) is answered by the unfiltered kernel on those rows; a per-query
filter (correlated clusters, labels) is answered block by block with its masks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vecbench.compute import groundtruth, recall
from vecbench.compute.filters import RowFilter
from vecbench.core.cache import read_verified, write_verified
from vecbench.core.paths import cache_dir

#: Queries per block of the per-query path: their masks (rows x nb bools) and one block of
#: scores (rows x BASE_ROWS float32, 32 MiB) are what it holds besides the results.
QUERY_ROWS = 128
BASE_ROWS = 1 << 16


@dataclass(frozen=True)
class FilteredTruth:
    """Exact filtered neighbours: ``ids`` (nq x k, -1 where fewer than k rows match),
    ``n_matching`` (nq,), and ``kth`` (nq,): the exact original-space distance of the last
    true neighbour (min(k, matching)-th; inf where nothing matches), recomputed in float64 as
    returned ids' are, so ties compare equal."""

    ids: np.ndarray
    n_matching: np.ndarray
    kth: np.ndarray


def filter_digest(row_filter: RowFilter) -> str:
    """Content digest of a filter (what its cached truth is keyed by)."""
    h = hashlib.blake2b(digest_size=16)
    for name, array in sorted(row_filter.to_arrays("").items()):
        array = np.ascontiguousarray(array)
        h.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def filtered_knn(base: np.ndarray, queries: np.ndarray, k: int, metric: str,
                 row_filter: RowFilter) -> np.ndarray:
    """(nq, k) int64 exact kNN ids among the rows each query may see, -1 padded."""
    nq = len(queries)
    ids = np.full((nq, k), -1, dtype=np.int64)
    if nq == 0:
        return ids
    if row_filter.shared:
        rows = np.flatnonzero(row_filter.mask(0))
        if len(rows) == 0:
            return ids
        found = groundtruth.exact_knn(np.ascontiguousarray(base[rows], dtype=np.float32),
                                      queries, k, metric).ids
        return np.where(found >= 0, rows[np.maximum(found, 0)], -1)
    # faiss's brute-force kNN takes no per-query mask: scores by BLAS, masked, merged here
    inner = metric in ("ip", "cos")
    for q_start in range(0, nq, QUERY_ROWS):
        q = np.ascontiguousarray(queries[q_start:q_start + QUERY_ROWS], dtype=np.float32)
        masks = row_filter.masks(range(q_start, q_start + len(q)))
        best_d = np.full((len(q), k), np.inf, dtype=np.float32)
        best_i = np.full((len(q), k), -1, dtype=np.int64)
        for b_start in range(0, len(base), BASE_ROWS):
            block = np.ascontiguousarray(base[b_start:b_start + BASE_ROWS], dtype=np.float32)
            d = -(q @ block.T)
            if not inner:
                d = 2.0 * d + (block * block).sum(axis=1)[None, :]
            d[~masks[:, b_start:b_start + len(block)]] = np.inf
            d_all = np.concatenate([best_d, d], axis=1)
            i_all = np.concatenate(
                [best_i, np.broadcast_to(np.arange(b_start, b_start + len(block)),
                                         d.shape)], axis=1)
            keep = np.argpartition(d_all, min(k, d_all.shape[1] - 1), axis=1)[:, :k] \
                if d_all.shape[1] > k else np.arange(d_all.shape[1])[None, :].repeat(len(q), 0)
            best_d = np.take_along_axis(d_all, keep, axis=1)
            best_i = np.take_along_axis(i_all, keep, axis=1)
        order = np.argsort(best_d, axis=1, kind="stable")
        best_d = np.take_along_axis(best_d, order, axis=1)
        best_i = np.take_along_axis(best_i, order, axis=1)
        ids[q_start:q_start + len(q)] = np.where(np.isfinite(best_d), best_i, -1)
    return ids


def filtered_truth(base: np.ndarray, queries: np.ndarray, k: int, metric: str,
                   row_filter: RowFilter, fingerprint: str,
                   cache: Path | None = None) -> FilteredTruth:
    """Exact filtered kNN to depth ``k``, read from the cache when a verified copy is there
    (keyed by the data's fingerprint, the filter's content, k and the metric)."""
    key = hashlib.blake2b(f"{fingerprint}|{filter_digest(row_filter)}|{k}|{metric}".encode(),
                          digest_size=16).hexdigest()
    path = (cache or cache_dir()) / "groundtruth" / f"filtered-{key}.npz"
    shape = (len(queries), k)

    def fits(arrays: dict) -> str | None:
        if arrays.get("ids") is None or arrays["ids"].shape != shape:
            return f"expected ids of shape {shape}"
        return None

    n_matching = row_filter.n_matching()
    stored = read_verified(path, "filtered ground truth", fits)
    if stored is not None:
        ids = stored["ids"]
    else:
        ids = filtered_knn(base, queries, k, metric, row_filter)
        write_verified(path, {"ids": ids})
    last = np.clip(np.minimum(n_matching, k) - 1, 0, k - 1)
    kth = recall.true_distances(base, queries, ids[np.arange(len(ids)), last][:, None],
                                metric)[:, 0]
    return FilteredTruth(ids, n_matching, kth)
