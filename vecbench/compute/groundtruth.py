"""Exact k nearest neighbours of the original float32 vectors: blockwise, bounded memory, cached.

Ground truth is what every recall number is measured against, so it is always computed by
vecbench (shipped neighbours are only checked against it) and verified when read from cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vecbench.core.cache import read_verified, write_verified
from vecbench.core.paths import cache_dir
from vecbench.core.vectors import is_mapped, release_rows

#: Ground truth is computed this deep whatever k is, so recall@100 and IR metrics share it.
MIN_DEPTH = 100
#: Bytes of the reusable float32 buffer a base is copied into block by block (a memory map, or
#: not float32 C-contiguous): what bounds ground truth's memory besides the results.
BASE_BLOCK_BYTES = 256 << 20
#: Queries per block: each query block is one pass over the base; its results (rows x depth
#: scores and ids, 12 bytes each) are what it holds besides the base buffer.
QUERY_BLOCK_ROWS = 1 << 16


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


def exact_knn(base: np.ndarray, queries: np.ndarray, k: int, metric: str,
              block_rows: int | None = None) -> GroundTruth:
    """Exact kNN of ``queries`` in ``base`` with faiss's brute-force kNN (``faiss.knn``).

    faiss's ``knn_L2sqr`` / ``knn_inner_product`` already work blockwise with bounded
    temporaries, straight from the caller's memory: an in-memory float32 C-contiguous base is
    passed whole (no copy). Any other base (memory-mapped, another dtype, strided) is copied a
    block at a time (``BASE_BLOCK_BYTES`` of float32) into one reusable float32 buffer, a memory
    map's pages released after each block (mapped pages count in RSS, so a file larger than
    memory keeps about one block resident); faiss's ResultHeap merges the per-block results.
    Queries go ``QUERY_BLOCK_ROWS`` at a time unless in memory and float32. ``block_rows`` forces
    blocks of that many base rows. ``cos`` expects normalized vectors.
    """
    import faiss

    buffer = _BlockBuffer()
    nq, nb = len(queries), len(base)
    k_eff = min(k, nb)
    inner = metric in ("ip", "cos")
    search = faiss.knn_inner_product if inner else faiss.knn_L2sqr
    if block_rows is None:
        block_rows = nb if _in_memory_float32(base) else base_block_rows(base.shape[1])
    block_rows = max(1, int(block_rows))
    query_rows = nq if _in_memory_float32(queries) else QUERY_BLOCK_ROWS
    scores = np.empty((nq, k_eff), dtype=np.float32)
    ids = np.empty((nq, k_eff), dtype=np.int64)
    for q_start in range(0, nq, max(1, query_rows)):
        q = _float32_rows(queries, q_start, q_start + query_rows)
        release_rows(queries, q_start, q_start + len(q))
        q_scores, q_ids = scores[q_start:q_start + len(q)], ids[q_start:q_start + len(q)]
        if nb <= block_rows:  # one call writes the answer in place
            _knn_into(search, q, buffer.rows(base, 0, nb), k_eff, q_scores, q_ids)
            continue
        heap = faiss.ResultHeap(len(q), k_eff, keep_max=inner)
        for start in range(0, nb, block_rows):
            block = buffer.rows(base, start, start + block_rows)
            kb = min(k_eff, len(block))
            block_scores = np.empty((len(q), kb), dtype=np.float32)
            block_ids = np.empty((len(q), kb), dtype=np.int64)
            _knn_into(search, q, block, kb, block_scores, block_ids)
            block_ids[block_ids >= 0] += start
            heap.add_result(block_scores, block_ids)
        heap.finalize()
        q_scores[:], q_ids[:] = heap.D, heap.I
    if k_eff < k:  # fewer base vectors than asked for: pad as an index would
        ids = np.pad(ids, ((0, 0), (0, k - k_eff)), constant_values=-1)
        fill = -np.inf if inner else np.inf
        scores = np.pad(scores, ((0, 0), (0, k - k_eff)), constant_values=fill)
    return GroundTruth(ids=ids, distances=scores, metric=metric)


def base_block_rows(dim: int) -> int:
    """Base rows per block when the base is read block by block: BASE_BLOCK_BYTES of float32."""
    return max(1, BASE_BLOCK_BYTES // (4 * max(1, dim)))


class _BlockBuffer:
    """Base rows as float32 C-contiguous: a view of an in-memory float32 base, else a copy into
    one reusable buffer, a memory map's pages released once copied.

    A mapped float32 block is copied too: faiss's kNN runs slower on a memory map's 4 KiB
    page-cache pages than on a copy in anonymous memory (transparent huge pages), copy included
    (about 1.4x the CPU time on 699,050 x 96 blocks; see bench_bigdata in
    benchmarks/RESULTS.md).
    """

    def __init__(self):
        self.buffer: np.ndarray | None = None

    def rows(self, x: np.ndarray, start: int, stop: int) -> np.ndarray:
        rows = x[start:stop]
        if _in_memory_float32(x):
            return rows
        if self.buffer is None or len(self.buffer) < len(rows):
            self.buffer = np.empty((len(rows), x.shape[1]), dtype=np.float32)
        out = self.buffer[:len(rows)]
        np.copyto(out, rows, casting="same_kind")
        release_rows(x, start, start + len(rows))
        return out


def _in_memory_float32(x: np.ndarray) -> bool:
    return x.dtype == np.float32 and x.flags.c_contiguous and not is_mapped(x)


def _float32_rows(x: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows start:stop as float32 C-contiguous: a view where they are already, else a copy."""
    return np.ascontiguousarray(x[start:stop], dtype=np.float32)


def _knn_into(search, q: np.ndarray, block: np.ndarray, k: int, scores: np.ndarray,
              ids: np.ndarray) -> None:
    """faiss brute-force kNN of ``q`` in ``block`` written into ``scores``/``ids`` (views)."""
    import faiss

    if len(q) == 0:
        return
    out_scores = scores if scores.flags.c_contiguous else np.empty_like(scores)
    out_ids = ids if ids.flags.c_contiguous else np.empty_like(ids)
    search(faiss.swig_ptr(q), faiss.swig_ptr(block), q.shape[1], len(q), len(block), k,
           faiss.swig_ptr(out_scores), faiss.swig_ptr(out_ids))
    if out_scores is not scores:
        scores[:], ids[:] = out_scores, out_ids


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
    def fits(arrays: dict) -> str | None:
        if arrays.get("ids") is None or arrays["ids"].shape != expected_shape \
                or arrays.get("distances") is None \
                or arrays["distances"].shape != expected_shape:
            return f"expected ids and distances of shape {expected_shape}"
        if str(arrays.get("metric")) != metric:
            return f"metric {arrays.get('metric')!s}, expected {metric}"
        return None

    stored = read_verified(path, "ground truth", fits)
    if stored is not None:
        return GroundTruth(ids=stored["ids"], distances=stored["distances"], metric=metric)
    truth = exact_knn(base, queries, depth, metric)
    write_verified(path, {"ids": truth.ids, "distances": truth.distances,
                          "metric": np.array(metric)})
    return truth
