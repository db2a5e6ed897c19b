"""Recall kernels against exact neighbours, over arrays: distinct hits, tie-tolerant recall,
exact distances of returned ids, query LID from the ground truth, LID quartiles, trustworthiness.

The metric registry (:mod:`vecbench.evaluate.metrics`) and the unit's search stage
(:mod:`vecbench.run.stages`) both compute with these; exact kNN uses :func:`hits_within_kth` to
check shipped ground truth.
"""

from __future__ import annotations

import numpy as np

from vecbench.compute import groundtruth, lid
from vecbench.compute.groundtruth import GroundTruth

#: Relative tolerance of recall_eps: a returned id is a hit when its true distance is at most
#: the k-th true distance times (1 + EPS_REL) (plus EPS_ABS, so a k-th distance of 0 still works).
EPS_REL = 1e-6
EPS_ABS = 1e-9


def unique_hits(returned: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Per query, how many distinct returned ids (ignoring -1) are among ``relevant``.

    Vectorized over queries in blocks (a (rows, k, m) comparison stays under ~32 MB): collect
    computes it for every row of every study, so a per-query loop would dominate its time.
    """
    returned, relevant = np.asarray(returned), np.asarray(relevant)
    hits = np.zeros(len(returned), dtype=np.int64)
    k, m = returned.shape[1], max(relevant.shape[1], 1)
    block = max(1, (32 << 20) // max(k * m, 1))
    for start in range(0, len(returned), block):
        got = returned[start:start + block]
        counted = _first_occurrence(got) & (got >= 0)
        found = (got[:, :, None] == relevant[start:start + block, None, :]).any(axis=2)
        hits[start:start + block] = (found & counted).sum(axis=1)
    return hits


def _first_occurrence(returned: np.ndarray) -> np.ndarray:
    """True where an id appears for the first time in its row (a repeat counts once)."""
    order = np.argsort(returned, axis=1, kind="stable")  # equal ids: first occurrence first
    ranked = np.take_along_axis(returned, order, axis=1)
    repeat_sorted = np.zeros(returned.shape, dtype=bool)
    repeat_sorted[:, 1:] = ranked[:, 1:] == ranked[:, :-1]
    first = np.empty_like(repeat_sorted)
    np.put_along_axis(first, order, ~repeat_sorted, axis=1)
    return first


def recall_per_query(returned: np.ndarray, truth_ids: np.ndarray, k: int) -> np.ndarray:
    """|distinct returned[:k] ∩ exact top-k| / k for each query (a duplicate counts once)."""
    return unique_hits(returned[:, :k], truth_ids[:, :k]) / float(k)


def true_distances(base: np.ndarray, queries: np.ndarray, ids: np.ndarray,
                   metric: str) -> np.ndarray:
    """Exact distance (smaller is nearer) of each returned id to its query; inf for -1."""
    out = np.empty(ids.shape, dtype=np.float64)
    for start in range(0, len(ids), 256):  # blocks bound the (rows, k, d) temporary
        block = ids[start:start + 256]
        safe = np.where(block >= 0, block, 0)
        vectors = np.asarray(base[safe.ravel()], dtype=np.float64).reshape(*block.shape, -1)
        q = np.asarray(queries[start:start + 256], dtype=np.float64)[:, None, :]
        if metric == "l2":
            d = ((vectors - q) ** 2).sum(axis=-1)
        else:
            d = -(vectors * q).sum(axis=-1)
        out[start:start + 256] = np.where(block >= 0, d, np.inf)
    return out


def hits_within_kth(returned: np.ndarray, truth, base: np.ndarray, queries: np.ndarray,
                    k: int) -> np.ndarray:
    """Boolean (nq, k): returned id is distinct and no farther than the exact k-th neighbour."""
    returned = returned[:, :k]
    # the k-th distance is recomputed with the same arithmetic as the returned ids' distances
    # (not taken from faiss), so an exact tie compares equal
    kth = true_distances(base, queries, truth.ids[:, k - 1:k], truth.metric)[:, 0]
    threshold = kth + EPS_REL * np.abs(kth) + EPS_ABS
    dist = true_distances(base, queries, returned, truth.metric)
    return (dist <= threshold[:, None]) & _first_occurrence(returned) & (returned >= 0)


def shipped_mismatch(shipped: np.ndarray, truth: GroundTruth, base: np.ndarray,
                     queries: np.ndarray, k: int) -> float:
    """Fraction of queries whose shipped top-k contains an id farther than the exact k-th.

    A shipped id outside the exact top-k set is still right when its true distance ties the
    exact k-th distance, so ties never count as a mismatch.
    """
    k = min(k, shipped.shape[1], truth.depth)
    hits = hits_within_kth(shipped[:, :k], truth, base, queries, k)
    return float(np.mean(hits.sum(axis=1) < k))


def recall_eps_from_distances(returned: np.ndarray, returned_distances: np.ndarray,
                              kth_distances: np.ndarray, k: int) -> np.ndarray:
    """Tie-tolerant recall from stored distances: ``returned_distances`` are the exact
    original-space distances of the returned ids and ``kth_distances`` that of each query's k-th
    exact neighbour, both from :func:`true_distances` (the same arithmetic, so ties are equal)."""
    threshold = kth_distances + EPS_REL * np.abs(kth_distances) + EPS_ABS
    ok = (returned_distances <= threshold[:, None]) & _first_occurrence(returned) & (returned >= 0)
    return ok.sum(axis=1) / float(k)


def recall_eps_per_query(returned: np.ndarray, truth, base: np.ndarray, queries: np.ndarray,
                         k: int) -> np.ndarray:
    """Tie-tolerant recall: hits within the k-th true distance (+ relative tolerance), over k."""
    return hits_within_kth(returned, truth, base, queries, k).sum(axis=1) / float(k)


def quartile_groups(values: np.ndarray, n_groups: int = 4) -> list[np.ndarray]:
    """Row indices split into ``n_groups`` groups by rank of ``values``, lowest first.

    By rank (a stable argsort cut by ``np.array_split``), not by quantile thresholds, so ties and
    infinite values still give groups whose sizes differ by at most one; with fewer rows than
    groups the last groups are empty.
    """
    order = np.argsort(np.asarray(values, dtype=np.float64), kind="stable")
    return np.array_split(order, n_groups)


def recall_by_quartile(recall: np.ndarray, groups: list[np.ndarray]) -> list[float]:
    """Mean per-query recall within each group of :func:`quartile_groups`; NaN for an empty one."""
    recall = np.asarray(recall, dtype=np.float64)
    return [float(recall[rows].mean()) if len(rows) else float("nan") for rows in groups]


def query_lid_k(n_base: int) -> int:
    """Neighbours per query for the query LID: lid.DEFAULT_K, or all of a smaller base."""
    return min(lid.DEFAULT_K, n_base)


def query_lid_from_truth(base: np.ndarray, queries: np.ndarray, metric: str, truth,
                         fingerprint: str) -> np.ndarray:
    """MLE LID of each query (its difficulty) from its exact nearest vectors of the original base.

    Euclidean, as in vecbench.compute.lid: ``cos`` vectors are already normalized, so the ground truth's
    neighbours are the Euclidean ones; under ``ip`` they are not, and come from a cached L2
    search. A base of fewer than 2 vectors gives LID 0 (a degenerate neighbourhood, as in lid).
    """
    k = query_lid_k(len(base))
    if k < 2:
        return np.zeros(len(queries))
    ids = truth.ids
    if metric == "ip":
        ids = groundtruth.ground_truth(base, queries, "l2", f"{fingerprint}-l2", k).ids
    # recomputed exactly: faiss's |x|^2 + |y|^2 - 2xy leaves a query found in base at a small
    # non-zero distance, where query_lid must see 0 (a copy) to drop it
    squared = true_distances(base, queries, ids[:, :k], "l2")
    return lid.query_lid(squared, k, squared=True)


#: Trustworthiness is O(n^2) in the sample; 2000 points take about a second.
TRUSTWORTHINESS_SAMPLE = 2000


def trustworthiness_sample(original: np.ndarray, reduced: np.ndarray, metric: str,
                           n_neighbors: int, sample: int = TRUSTWORTHINESS_SAMPLE,
                           seed: int = 0) -> float:
    """scikit-learn's trustworthiness on a seeded sample of rows (1 = no false neighbours).

    Under ``cos`` and ``ip`` both spaces are compared with cosine distance, under ``l2`` with
    Euclidean; the same rows of ``original`` and ``reduced`` are used.
    """
    from sklearn.manifold import trustworthiness

    n = len(original)
    rows = np.sort(np.random.default_rng(seed).choice(n, min(n, sample), replace=False))
    n_neighbors = min(n_neighbors, (len(rows) - 1) // 2)  # scikit-learn requires k < n/2
    if n_neighbors < 1:  # fewer than 3 rows: no neighbourhood to keep or lose
        return float("nan")
    distance = "euclidean" if metric == "l2" else "cosine"
    return float(trustworthiness(np.asarray(original[rows], dtype=np.float64),
                                 np.asarray(reduced[rows], dtype=np.float64),
                                 n_neighbors=n_neighbors, metric=distance))
