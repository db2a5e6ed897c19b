"""Data guards: what in a dataset silently distorts a benchmark, counted before anything runs.

- exact duplicate base vectors: zero distances, ties in every kNN list, and HNSW graphs that
  waste links on copies (LID estimators divide by zero on them);
- zero vectors under ``cos``: a zero vector has no direction; normalization leaves it zero and
  it scores 0 against every query;
- queries that also appear in base: each is its own nearest neighbour at distance 0 (leakage);
- NaN/Inf are already rejected when a dataset is loaded (:func:`base.check_vectors`).

Counts are taken on the vectors as the indexes see them (float32, normalized under ``cos``, so
two base vectors that differ only in length count as duplicates there). Rows are hashed block by
block, so a memory-mapped base is never read into memory whole; rows whose hashes collide are
then compared exactly, so the counts are exact.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from vecbench.datasets.base import Dataset
from vecbench.core.vectors import row_blocks

#: Rows hashed per block (a block is copied; 2^16 rows of 960-d float32 is 250 MiB at most).
ROWS_PER_BLOCK = 1 << 16
#: At most this many rows sharing a hash are gathered for the exact comparison; beyond it the
#: 64-bit hashes are trusted (a false collision among 10^7 rows has probability ~3e-6).
MAX_VERIFIED_ROWS = 1 << 20


def row_hashes(x: np.ndarray, rows_per_block: int = ROWS_PER_BLOCK) -> np.ndarray:
    """A 64-bit hash (BLAKE2b) of every row's float32 bytes, computed block by block.

    Adding 0.0 first maps -0.0 to 0.0, which compare equal as vectors but differ in bits.
    (Measured: hashlib per row beats pandas' column-wise ``hash_pandas_object`` 3x on
    384-d rows, and a vectorized multilinear hash in numpy 5x.)
    """
    out = np.empty(len(x), dtype=np.uint64)
    for start, block in row_blocks(x, rows_per_block):
        # as float32, like the queries, so a memory-mapped uint8 base matches its float32 copy
        block = np.ascontiguousarray(np.asarray(block, dtype=np.float32) + np.float32(0))
        raw, step = memoryview(block).cast("B"), block.itemsize * block.shape[1]
        digests = b"".join(hashlib.blake2b(raw[i:i + step], digest_size=8).digest()
                           for i in range(0, len(raw), step))
        out[start:start + len(block)] = np.frombuffer(digests, dtype=np.uint64)
    return out


def count_duplicates(x: np.ndarray, hashes: np.ndarray | None = None) -> tuple[int, int]:
    """``(rows equal to an earlier row, distinct vectors that occur more than once)``."""
    hashes = row_hashes(x) if hashes is None else hashes
    _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    candidates = np.flatnonzero(counts[inverse] > 1)
    if candidates.size == 0:
        return 0, 0
    if candidates.size > MAX_VERIFIED_ROWS:
        return int(counts[counts > 1].sum() - (counts > 1).sum()), int((counts > 1).sum())
    # rows with different hashes always differ, so exact uniqueness among candidates is enough
    rows = np.asarray(x[candidates])
    distinct, groups = np.unique(rows + rows.dtype.type(0) if rows.dtype.kind == "f" else rows,
                                 axis=0, return_counts=True)
    return int(len(rows) - len(distinct)), int((groups > 1).sum())


def queries_in_base(base: np.ndarray, queries: np.ndarray,
                    base_hashes: np.ndarray | None = None) -> tuple[int, int | None]:
    """``(queries equal to some base vector, row of the first such query or None)``."""
    base_hashes = row_hashes(base) if base_hashes is None else base_hashes
    query_hashes = row_hashes(queries)
    order = np.argsort(base_hashes, kind="stable")
    sorted_hashes = base_hashes[order]
    candidates = np.flatnonzero(np.isin(query_hashes, sorted_hashes))
    found = []
    for q in candidates:  # verify exactly: a hash match is only a candidate
        lo, hi = np.searchsorted(sorted_hashes, query_hashes[q], side="left"), \
            np.searchsorted(sorted_hashes, query_hashes[q], side="right")
        same = np.asarray(base[np.sort(order[lo:hi])])
        if (same == np.asarray(queries[q])).all(axis=1).any():
            found.append(int(q))
    return len(found), (found[0] if found else None)


def _norm_stats(x: np.ndarray, rows_per_block: int = ROWS_PER_BLOCK) -> dict[str, Any]:
    lo, hi, total, zeros = np.inf, 0.0, 0.0, 0
    for start in range(0, len(x), rows_per_block):
        norms = np.linalg.norm(np.asarray(x[start:start + rows_per_block], dtype=np.float32),
                               axis=1)
        lo, hi = min(lo, float(norms.min())), max(hi, float(norms.max()))
        total += float(norms.sum(dtype=np.float64))
        zeros += int((norms == 0).sum())
    return {"min": lo, "mean": total / max(len(x), 1), "max": hi, "zero": zeros}


def inspect(dataset: Dataset) -> tuple[dict[str, Any], list[str]]:
    """Count what distorts a benchmark; return ``(stats, warnings)``.

    Memoized in ``dataset.info`` like :meth:`Dataset.fingerprint` (copies are returned). ``stats``
    is JSON-ready and goes into run records under ``"guards"``; each warning is one line.
    """
    memo = dataset.info.get("_guards")
    if memo is None:
        memo = _inspect(dataset)
        # frozen dataclass: the info dict is the one mutable place for a memo
        dataset.info["_guards"] = memo  # type: ignore[index]
    stats, warnings = memo
    return dict(stats), list(warnings)


def _inspect(dataset: Dataset) -> tuple[dict[str, Any], list[str]]:
    base_hashes = row_hashes(dataset.base)
    duplicates, duplicated = count_duplicates(dataset.base, base_hashes)
    in_base, first_in_base = queries_in_base(dataset.base, dataset.queries, base_hashes)
    base_norms, query_norms = _norm_stats(dataset.base), _norm_stats(dataset.queries)
    stats = {
        "n_base": len(dataset.base), "n_queries": len(dataset.queries), "dim": dataset.dim,
        "metric": dataset.metric, "duplicate_base": duplicates,
        "duplicated_vectors": duplicated, "zero_base": base_norms.pop("zero"),
        "zero_queries": query_norms.pop("zero"), "queries_in_base": in_base,
        "base_norm": base_norms, "query_norm": query_norms,
    }
    name, warnings = dataset.name, []
    if duplicates:
        warnings.append(f"{name}: {duplicates} of {len(dataset.base)} base vectors duplicate an "
                        f"earlier row ({duplicated} distinct vectors repeated); duplicates tie "
                        "in every kNN list (see recall_eps) and crowd HNSW graphs")
    if dataset.metric == "cos" and (stats["zero_base"] or stats["zero_queries"]):
        warnings.append(f"{name}: {stats['zero_base']} base and {stats['zero_queries']} query "
                        "vectors are zero under the cos metric; a zero vector has no direction "
                        "and scores 0 against everything")
    if in_base:
        warnings.append(f"{name}: {in_base} of {len(dataset.queries)} queries also appear in base "
                        f"(first: query row {first_in_base}); each is its own nearest neighbour "
                        "at distance 0")
    return stats, warnings


def describe(dataset: Dataset) -> list[str]:
    """Lines for ``vecbench datasets info``: shape, metric, norms, guard counts, judgments."""
    stats, warnings = inspect(dataset)
    lines = [f"name:            {dataset.name}"]
    if dataset.info.get("source"):
        lines.append(f"source:          {dataset.info['source']}")
    lines += [
        f"base:            {len(dataset.base)} x {dataset.dim} {dataset.base.dtype}",
        f"queries:         {len(dataset.queries)} x {dataset.queries.shape[1]} "
        f"{dataset.queries.dtype}",
        f"train:           {len(dataset.train)} rows (fits transforms, quantizers, IVF)",
        f"metric:          {dataset.metric}"
        + (" (vectors normalized at load)" if dataset.metric == "cos" else ""),
    ]
    for what in ("base", "query"):
        norm = stats[f"{what}_norm"]
        lines.append(f"{what + ' norms:':<17}min {norm['min']:.4g}, mean {norm['mean']:.4g}, "
                     f"max {norm['max']:.4g}")
    lines += [
        f"duplicates:      {stats['duplicate_base']} base rows repeat an earlier row "
        f"({stats['duplicated_vectors']} distinct vectors)",
        f"zero vectors:    {stats['zero_base']} in base, {stats['zero_queries']} in queries",
        f"queries in base: {stats['queries_in_base']}",
    ]
    if dataset.qrels is None:
        lines.append("qrels:           none (no relevance judgments; kNN recall only)")
    else:
        ids = [str(q) for q in (dataset.query_ids if dataset.query_ids is not None else [])]
        judged = sum(any(g > 0 for g in dataset.qrels.get(q, {}).values()) for q in ids)
        grades = sorted({g for docs in dataset.qrels.values() for g in docs.values()})
        n_judgments = sum(len(docs) for docs in dataset.qrels.values())
        lines.append(f"qrels:           yes; {judged} of {len(ids)} queries have a relevant "
                     f"judgment; {n_judgments} judgments, grades {grades}")
    if dataset.labels is not None:
        lines.append(f"labels:          {len(np.unique(np.asarray(dataset.labels)))} classes")
    if dataset.neighbors is not None:
        lines.append(f"neighbors:       shipped, {dataset.neighbors.shape[1]} per query "
                     "(checked against exact search by `vecbench run`)")
    lines += [f"warning:         {w}" for w in warnings]
    return lines
