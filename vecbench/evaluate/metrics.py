"""What is measured, and which way is better.

Recall variants compare the ids an index returned with exact kNN of the original float32 vectors.
``METRICS`` is the one table that says whether higher or lower is better; Pareto fronts, plot
labels and regression gates read the direction from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from vecbench.core import registry
from vecbench.core.errors import ConfigError

#: Relative tolerance of recall_eps: a returned id is a hit when its true distance is at most
#: the k-th true distance times (1 + EPS_REL) (plus EPS_ABS, so a k-th distance of 0 still works).
EPS_REL = 1e-6
EPS_ABS = 1e-9


@dataclass(frozen=True)
class Metric:
    """A measured quantity, which way is better, and (for metrics computed at collect) how.

    ``compute(setting, depth)`` returns per-query values (aggregated by their mean over the
    queries where they are defined, NaN elsewhere) or one number for the whole setting.
    ``depth`` is the ``@K`` of the column (None for metrics without one). ``needs`` names what
    the computation reads: ``truth`` (exact kNN ids), ``truth_distances``, ``judgments``,
    ``index_truth``, ``true_distances`` (original-space distances of the returned ids),
    ``timings``; a setting without one of them gets NaN.
    """

    name: str
    higher_is_better: bool
    label: str
    compute: Callable[["Setting", int | None], Any] | None = None
    needs: tuple[str, ...] = ()
    per_query: bool = True
    takes_depth: bool = True


#: Every metric by name (``recall@10`` is looked up as ``recall``). Register with :func:`register`;
#: a plugin's metrics (entry-point group ``vecbench.evaluate.metrics``) join it when first looked up.
METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    METRICS[metric.name] = metric
    registry.metrics.register(metric.name, metric)
    return metric


def lookup(name: str) -> Metric | None:
    """The metric called ``name`` (a built-in, or a plugin's, imported on first use), or None.

    A plugin's entry point names a :class:`Metric` of the same name; one that fails to load or
    names something else is a one-line ConfigError naming its distribution."""
    if name not in registry.metrics:
        return None
    metric = registry.metrics.get(name)
    if name not in METRICS:
        if not isinstance(metric, Metric) or metric.name != name:
            raise ConfigError(f"metric {name!r} of {registry.metrics.origin(name)}: expected a "
                              f"vecbench.evaluate.metrics.Metric named {name!r}, got {metric!r}")
        METRICS[name] = metric
    return metric


class MetricUnavailable(Exception):
    """The raw results of a setting cannot give this metric (too shallow, nothing stored)."""


@dataclass(frozen=True)
class MetricColumn:
    """A parsed column name: ``recall@10_q4`` -> metric recall, depth 10, LID quartile 4."""

    column: str
    metric: Metric
    depth: int | None
    quartile: int | None = None


#: The one grammar of metric names: NAME, NAME@K, NAME@K_qQ (K and Q in ASCII digits: K >= 1
#: without leading zeros, Q a LID quartile 1-4). Whether NAME takes @K is the metric's own.
_NAME = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*?)(?:@(?P<depth>[0-9]*))?(?:_q(?P<quartile>[1-4]))?",
                   re.ASCII)
#: Depths beyond this are no search anyone runs (and would allocate nq x K arrays).
MAX_DEPTH = 100_000
_EXAMPLES = "e.g. recall@10, ndcg@10, qps, p99_ms"


def parse_metric(text: str) -> MetricColumn:
    """A metric name read from the user (``--metrics``, ``--fail``, a spec's ``expect``) ->
    its column; ConfigError saying what is wrong otherwise (the caller names the option)."""
    match = _NAME.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(f"{text!r} is not a metric name; expected NAME or NAME@K with K a "
                          f"whole number in ASCII digits ({_EXAMPLES})")
    name, depth_text, quartile = match.group("name", "depth", "quartile")
    metric = lookup(name)
    if metric is None:
        unknown = "" if name == text else f" (unknown name {name!r})"
        raise ConfigError(f"{text!r} is not a metric{unknown}; expected one of: "
                          f"{', '.join(registry.metrics.names())}")
    if metric.takes_depth and not depth_text:
        raise ConfigError(f"{text!r} has no depth; expected {name}@K, e.g. {name}@10")
    if not metric.takes_depth and depth_text is not None:
        raise ConfigError(f"{name} takes no depth, got {text!r}; expected {name}")
    depth = None
    if depth_text is not None:
        if depth_text.startswith("0") or not 1 <= int(depth_text) <= MAX_DEPTH:
            raise ConfigError(f"depth of {text!r} out of range; expected {name}@K with K "
                              f"in [1, {MAX_DEPTH}] (no leading zeros)")
        depth = int(depth_text)
    if quartile is not None and not (metric.per_query and metric.compute is not None):
        raise ConfigError(f"{name} is not a per-query metric, got {text!r}; expected "
                          f"{name} without _q{quartile}")
    return MetricColumn(text, metric, depth, None if quartile is None else int(quartile))


def parse_column(column: str) -> MetricColumn | None:
    """The metric behind a column name, or None when the column is not a metric."""
    try:
        return parse_metric(column)
    except ConfigError:
        return None


def metric_info(column: str) -> Metric | None:
    """The Metric of a result column (``recall@10`` -> recall), or None if it is not a metric."""
    parsed = parse_column(column)
    return None if parsed is None else parsed.metric


@dataclass
class Setting:
    """One search setting's raw results beside the dataset's exact answers, read at collect.

    ``ids`` maps a depth to the ids returned by a search that deep (the timed search at the
    unit's k; a deeper untimed one where judgments exist). ``reference`` holds the exact kNN
    (``truth_ids`` and, to the unit's k, ``truth_distances``), ``query_lid`` and judgments.
    """

    ids: dict
    reference: Any
    true_distances: np.ndarray | None = None   # original-space distances of ids[k]
    index_truth: np.ndarray | None = None       # exact kNN ids of the indexed vectors
    batch_seconds: np.ndarray | None = None     # every timed pass over the whole query batch
    latency_seconds: np.ndarray | None = None   # single queries: the loop, or every client's
    client_wall_seconds: float | None = None    # with concurrent clients: how long they ran

    def returned(self, depth: int) -> np.ndarray:
        """The first ``depth`` ids of the shallowest stored search at least that deep."""
        deep_enough = [d for d in self.ids if d >= depth]
        if not deep_enough:
            raise MetricUnavailable(f"searches were stored to depth {max(self.ids)}, "
                                    f"not {depth}")
        return self.ids[min(deep_enough)][:, :depth]

    def truth(self, depth: int) -> np.ndarray:
        ids = self.reference.truth_ids
        if ids.shape[1] < depth:
            raise MetricUnavailable(f"ground truth is stored to depth {ids.shape[1]}, not {depth}")
        return ids[:, :depth]


def _recall(setting: Setting, depth: int) -> np.ndarray:
    return recall_per_query(setting.returned(depth), setting.truth(depth), depth)


def _recall_index(setting: Setting, depth: int) -> np.ndarray:
    if setting.index_truth is None or setting.index_truth.shape[1] < depth:
        raise MetricUnavailable("exact kNN of the indexed vectors is not stored that deep")
    return recall_per_query(setting.returned(depth), setting.index_truth, depth)


def _recall_eps(setting: Setting, depth: int) -> np.ndarray:
    kth = setting.reference.truth_distances
    stored = setting.true_distances
    if stored is None or kth is None or stored.shape[1] < depth or kth.shape[1] < depth:
        raise MetricUnavailable("true distances of the returned ids are not stored that deep")
    returned = setting.ids[min(d for d in setting.ids if d >= depth)][:, :depth]
    return recall_eps_from_distances(returned, stored[:, :depth], kth[:, depth - 1], depth)


def _judged(function: Callable) -> Callable:
    def compute(setting: Setting, depth: int) -> np.ndarray:
        judgments = setting.reference.judgments
        if judgments is None:
            raise MetricUnavailable("the dataset has no relevance judgments")
        return function(setting.returned(depth), judgments, depth)
    return compute


def _qps(setting: Setting, depth: int | None) -> float:
    """Queries answered per second of wall time: the median batch pass, or with concurrent
    clients, every query they completed over the time they ran."""
    if setting.client_wall_seconds is not None:
        return float(len(setting.latency_seconds) / setting.client_wall_seconds)
    passes = _passes(setting)
    return float(setting.reference.n_queries / np.median(passes))


def _qps_spread(setting: Setting, depth: int | None) -> float:
    """(max - min) / median of the per-pass QPS: how far a rerun may land from this one."""
    qps = setting.reference.n_queries / _passes(setting)
    return float((qps.max() - qps.min()) / np.median(qps))


def _passes(setting: Setting) -> np.ndarray:
    if setting.batch_seconds is None or len(setting.batch_seconds) == 0:
        raise MetricUnavailable("no timed passes stored")
    return np.asarray(setting.batch_seconds, dtype=np.float64)


def _latency(percentile: float) -> Callable:
    def compute(setting: Setting, depth: int | None) -> float:
        return float(np.percentile(_latencies(setting), percentile))
    return compute


def _latency_spread(percentile: float) -> Callable:
    """The percentile's sampling spread over the calls, plus the QPS spread of the setting's
    timed passes: the single-query loop is one short pass, so how much the machine's speed
    drifted during the run (contention, frequency) is read from the batch passes."""
    def compute(setting: Setting, depth: int | None) -> float:
        spread = percentile_spread(_latencies(setting), percentile)
        if setting.batch_seconds is not None and len(setting.batch_seconds):
            spread += _qps_spread(setting, depth)
        return spread
    return compute


def _latencies(setting: Setting) -> np.ndarray:
    if setting.latency_seconds is None or len(setting.latency_seconds) == 0:
        raise MetricUnavailable("no single-query latencies stored")
    return np.asarray(setting.latency_seconds, dtype=np.float64) * 1000.0


def percentile_spread(values, percentile: float, z: float = 1.96) -> float:
    """How far a rerun's ``percentile`` of ``values`` may land from this one, as a fraction of
    it: the width of its ~95% distribution-free interval, (upper - lower) / estimate.

    The count of values below the true percentile q is binomial (n, q), so the interval runs
    between the order statistics ranked n q -+ z sqrt(n q (1 - q)). This is the interval a
    bootstrap of the percentile approximates, without resampling or a seed. Few values give a
    wide interval (a p99 of 20 calls is about the largest two), so a gate then allows more.
    """
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    n, q = len(ordered), percentile / 100.0
    half = z * np.sqrt(n * q * (1.0 - q))
    low = int(np.clip(np.floor(n * q - half), 0, n - 1))
    high = int(np.clip(np.ceil(n * q + half), 0, n - 1))
    estimate = float(np.percentile(ordered, percentile))
    return float((ordered[high] - ordered[low]) / estimate) if estimate else 0.0


def _builtin_metrics() -> None:
    from vecbench.compute import relevance

    for metric in [
        Metric("recall", True, "recall vs exact kNN", _recall, ("truth",)),
        Metric("recall_index", True, "recall vs exact kNN of the indexed codes", _recall_index,
               ("index_truth",)),
        Metric("recall_eps", True, "recall with distance ties", _recall_eps,
               ("true_distances", "truth_distances")),
        Metric("ndcg", True, "nDCG", _judged(relevance.ndcg_at_k), ("judgments",)),
        Metric("mrr", True, "MRR", _judged(relevance.mrr_at_k), ("judgments",)),
        Metric("judged_recall", True, "recall of the judged relevant documents",
               _judged(relevance.recall_at_k), ("judgments",)),
        Metric("qps", True, "queries per second", _qps, ("timings",), False, False),
        Metric("qps_spread", False, "spread of QPS over timed passes (fraction of the median)",
               _qps_spread, ("timings",), False, False),
        Metric("p50_ms", False, "median latency (ms)", _latency(50), ("timings",), False, False),
        Metric("p95_ms", False, "p95 latency (ms)", _latency(95), ("timings",), False, False),
        Metric("p99_ms", False, "p99 latency (ms)", _latency(99), ("timings",), False, False),
        *(Metric(f"p{p}_ms_spread", False, f"spread of the p{p} latency (fraction of it)",
                 _latency_spread(p), ("timings",), False, False) for p in (50, 95, 99)),
    ]:
        register(metric)
    # recorded at run time, not computed from raw results: direction and label only
    for name, higher, label in [
        ("build_s", False, "build time (s)"), ("fit_s", False, "fit time (s)"),
        ("encode_s", False, "encode time (s)"), ("bytes_per_vector", False, "codes only"),
        ("resident_bytes_per_vector", False,
         "codes + links + copies + parameters"),
        ("graph_bytes_per_vector", False, "graph or list bytes per vector"),
        ("total_bytes_per_vector", False, "bytes per vector with the rescoring copy"),
        ("rescore_bytes_per_vector", False, "bytes per vector of the rescoring copy"),
        ("index_bytes", False, "index size (bytes)"),
        ("peak_rss_bytes", False, "peak memory of the unit's process (bytes)"),
        ("compression_ratio", True, "compression ratio"),
        ("trustworthiness", True, "trustworthiness of the reduced space"),
    ]:
        register(Metric(name, higher, label, takes_depth=name == "trustworthiness"))


def default_columns(k: int, judged: bool) -> list[str]:
    """The metric columns collect computes when none are asked for."""
    columns = [f"recall@{k}", f"recall_index@{k}", f"recall_eps@{k}",
               *(f"recall@{k}_q{i}" for i in range(1, 5)),
               "qps", "qps_spread", "p50_ms", "p95_ms", "p99_ms", "p50_ms_spread",
               "p95_ms_spread", "p99_ms_spread"]
    if judged:
        columns += ["ndcg@10", "judged_recall@100", "mrr@10"]
    return columns


def evaluate(setting: Setting, column: MetricColumn) -> tuple[float, np.ndarray | None]:
    """(value, per-query values or None) of one column; NaN when the raw results cannot say."""
    metric = column.metric
    if metric.compute is None:
        raise MetricUnavailable(f"{metric.name} is recorded at run time, not computed")
    if metric.takes_depth and column.depth is None:
        raise MetricUnavailable(f"{metric.name} needs a depth, e.g. {metric.name}@10")
    values = metric.compute(setting, column.depth)
    if not metric.per_query:
        return float(values), None
    values = np.asarray(values, dtype=np.float64)
    if column.quartile is not None:
        groups = quartile_groups(setting.reference.query_lid)
        rows = groups[column.quartile - 1]
        chosen = values[rows]
        return (float(np.nanmean(chosen)) if np.isfinite(chosen).any() else float("nan")), None
    defined = ~np.isnan(values)
    return (float(values[defined].mean()) if defined.any() else float("nan")), values


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


def recall_eps_from_distances(returned: np.ndarray, returned_distances: np.ndarray,
                              kth_distances: np.ndarray, k: int) -> np.ndarray:
    """Tie-tolerant recall from stored distances: ``returned_distances`` are the exact
    original-space distances of the returned ids and ``kth_distances`` that of each query's k-th
    exact neighbour, both from :func:`true_distances` (the same arithmetic, so ties are equal)."""
    threshold = kth_distances + EPS_REL * np.abs(kth_distances) + EPS_ABS
    ok = (returned_distances <= threshold[:, None]) & _first_occurrence(returned) & (returned >= 0)
    return ok.sum(axis=1) / float(k)


def _first_occurrence(returned: np.ndarray) -> np.ndarray:
    """True where an id appears for the first time in its row (a repeat counts once)."""
    order = np.argsort(returned, axis=1, kind="stable")  # equal ids: first occurrence first
    ranked = np.take_along_axis(returned, order, axis=1)
    repeat_sorted = np.zeros(returned.shape, dtype=bool)
    repeat_sorted[:, 1:] = ranked[:, 1:] == ranked[:, :-1]
    first = np.empty_like(repeat_sorted)
    np.put_along_axis(first, order, ~repeat_sorted, axis=1)
    return first


def recall_eps_per_query(returned: np.ndarray, truth, base: np.ndarray, queries: np.ndarray,
                         k: int) -> np.ndarray:
    """Tie-tolerant recall: hits within the k-th true distance (+ relative tolerance), over k."""
    return hits_within_kth(returned, truth, base, queries, k).sum(axis=1) / float(k)


def query_lid_k(n_base: int) -> int:
    """Neighbours per query for the query LID: lid.DEFAULT_K, or all of a smaller base."""
    from vecbench.compute.lid import DEFAULT_K

    return min(DEFAULT_K, n_base)


def query_lid_from_truth(base: np.ndarray, queries: np.ndarray, metric: str, truth,
                         fingerprint: str) -> np.ndarray:
    """MLE LID of each query (its difficulty) from its exact nearest vectors of the original base.

    Euclidean, as in vecbench.compute.lid: ``cos`` vectors are already normalized, so the ground truth's
    neighbours are the Euclidean ones; under ``ip`` they are not, and come from a cached L2
    search. A base of fewer than 2 vectors gives LID 0 (a degenerate neighbourhood, as in lid).
    """
    from vecbench.compute import groundtruth, lid

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
    if n_neighbors < 1:  # fewer than 3 rows: no neighbourhood to keep or lose
        return float("nan")
    distance = "euclidean" if metric == "l2" else "cosine"
    return float(trustworthiness(np.asarray(original[rows], dtype=np.float64),
                                 np.asarray(reduced[rows], dtype=np.float64),
                                 n_neighbors=n_neighbors, metric=distance))


_builtin_metrics()
