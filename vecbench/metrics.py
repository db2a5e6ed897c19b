"""What is measured, and which way is better.

Recall variants compare the ids an index returned with exact kNN of the original float32 vectors.
``METRICS`` is the one table that says whether higher or lower is better; Pareto fronts, plot
labels and regression gates read the direction from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Relative tolerance of recall_eps: a returned id is a hit when its true distance is at most
#: the k-th true distance times (1 + EPS_REL) (plus EPS_ABS, so a k-th distance of 0 still works).
EPS_REL = 1e-6
EPS_ABS = 1e-9


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    label: str


def _m(name: str, higher: bool, label: str) -> tuple[str, Metric]:
    return name, Metric(name, higher, label)


#: Metric columns by name pattern: ``recall@k`` etc. are looked up with the ``@k`` part removed.
METRICS: dict[str, Metric] = dict([
    _m("recall", True, "recall vs exact kNN"),
    _m("recall_index", True, "recall vs exact kNN of the indexed codes"),
    _m("recall_eps", True, "recall with distance ties"),
    _m("ndcg", True, "nDCG"),
    _m("mrr", True, "MRR"),
    _m("qps", True, "queries per second"),
    _m("p50_ms", False, "median latency (ms)"),
    _m("p95_ms", False, "p95 latency (ms)"),
    _m("p99_ms", False, "p99 latency (ms)"),
    _m("build_s", False, "build time (s)"),
    _m("fit_s", False, "fit time (s)"),
    _m("encode_s", False, "encode time (s)"),
    _m("bytes_per_vector", False, "bytes per vector"),
    _m("total_bytes_per_vector", False, "bytes per vector with the rescoring copy"),
    _m("rescore_bytes_per_vector", False, "bytes per vector of the rescoring copy"),
    _m("index_bytes", False, "index size (bytes)"),
    _m("compression_ratio", True, "compression ratio"),
    _m("trustworthiness", True, "trustworthiness of the reduced space"),
])


def metric_info(column: str) -> Metric | None:
    """The Metric of a result column (``recall@10`` -> recall), or None if it is not a metric."""
    base = column.split("@", 1)[0]
    if base.endswith(tuple(f"_q{i}" for i in range(1, 5))):
        base = base.rsplit("_", 1)[0]
    return METRICS.get(base)


def unique_hits(returned: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Per query, how many distinct returned ids (ignoring -1) are among ``relevant``."""
    hits = np.zeros(len(returned), dtype=np.int64)
    for row, (got, want) in enumerate(zip(returned, relevant)):
        got = np.unique(got[got >= 0])
        hits[row] = np.isin(got, want, assume_unique=False).sum()
    return hits


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
    ok = dist <= threshold[:, None]
    # count each id once: mask later repeats of an id in the same row
    first = np.zeros_like(ok)
    for row in range(len(returned)):
        _, where = np.unique(returned[row], return_index=True)
        first[row, where] = True
    return ok & first & (returned >= 0)


def recall_eps_per_query(returned: np.ndarray, truth, base: np.ndarray, queries: np.ndarray,
                         k: int) -> np.ndarray:
    """Tie-tolerant recall: hits within the k-th true distance (+ relative tolerance), over k."""
    return hits_within_kth(returned, truth, base, queries, k).sum(axis=1) / float(k)


def query_lid_k(n_base: int) -> int:
    """Neighbours per query for the query LID: lid.DEFAULT_K, or all of a smaller base."""
    from vecbench.lid import DEFAULT_K

    return min(DEFAULT_K, n_base)


def query_lid_from_truth(base: np.ndarray, queries: np.ndarray, metric: str, truth,
                         fingerprint: str) -> np.ndarray:
    """MLE LID of each query (its difficulty) from its exact nearest vectors of the original base.

    Euclidean, as in vecbench.lid: ``cos`` vectors are already normalized, so the ground truth's
    neighbours are the Euclidean ones; under ``ip`` they are not, and come from a cached L2
    search. A base of fewer than 2 vectors gives LID 0 (a degenerate neighbourhood, as in lid).
    """
    from vecbench import groundtruth, lid

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


def latency_percentiles(seconds: np.ndarray) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99)}


def mean_ci95(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and Student's t 95% interval of the mean (repeats are few: 3 builds need t=4.30,
    not 1.96); a single value gets a zero-width interval."""
    from scipy.special import stdtrit  # Student's t quantile; scipy.stats costs 1-2 s to import

    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, mean, mean
    half = float(stdtrit(len(values) - 1, 0.975)) * float(values.std(ddof=1)) / np.sqrt(len(values))
    return mean, mean - half, mean + half


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
    distance = "euclidean" if metric == "l2" else "cosine"
    return float(trustworthiness(np.asarray(original[rows], dtype=np.float64),
                                 np.asarray(reduced[rows], dtype=np.float64),
                                 n_neighbors=n_neighbors, metric=distance))
