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

from vecbench.compute.recall import quartile_groups, recall_eps_from_distances, recall_per_query
from vecbench.core import registry
from vecbench.core.errors import ConfigError
from vecbench.compute import filtered_recall, relevance
from vecbench.evaluate import load_metrics, steps


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
#: a plugin's metrics (entry-point group ``vecbench.metrics``) join it when first looked up.
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
                              f"vecbench.metrics.Metric named {name!r}, got {metric!r}")
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
    arrival: np.ndarray | None = None           # open-loop load: every query's times
    arrival_spec: dict | None = None            # the setting's checked ``arrival:`` mapping
    #: a filtered search: its filter (RowFilter) and exact answers (truth_ids, n_matching, kth)
    filtered: Any = None
    n_base: int = 0
    runbook: dict | None = None                 # a runbook unit's step log (RawResults.runbook)
    step: dict | None = None                    # and this row's search step (SettingInfo.step)

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
    if setting.filtered is not None:
        return _filtered_recall(setting, depth)
    return recall_per_query(setting.returned(depth), setting.truth(depth), depth)


def _filtered_recall(setting: Setting, depth: int) -> np.ndarray:
    """Recall under the setting's filter, tie-tolerant (compute.filtered_recall)."""
    answers = setting.filtered
    stored = answers.truth_ids.shape[1]
    if depth != stored or setting.true_distances is None:
        raise MetricUnavailable(f"filtered answers are stored at depth {stored}, not {depth}")
    return filtered_recall.filtered_recall(setting.returned(depth), setting.true_distances,
                                           answers.row_filter, answers.n_matching,
                                           answers.kth, depth)


def _matching(setting: Setting) -> np.ndarray:
    """Rows each query may see: the filter's, or the whole base without one."""
    if setting.filtered is not None:
        return np.asarray(setting.filtered.n_matching)
    if not setting.n_base:
        raise MetricUnavailable("the base size is not recorded")
    return np.full(setting.reference.n_queries, setting.n_base)


def _short(setting: Setting, depth: int) -> np.ndarray:
    return filtered_recall.short(setting.returned(depth), _matching(setting), depth)


def _returned(setting: Setting, depth: int) -> np.ndarray:
    return filtered_recall.counted(setting.returned(depth)).sum(axis=1).astype(np.float64)


def _violations(setting: Setting, depth: int) -> np.ndarray:
    if setting.filtered is None:
        return np.zeros(len(setting.returned(depth)))
    return filtered_recall.violations(setting.returned(depth), setting.filtered.row_filter,
                                      depth)


def _selectivity(setting: Setting, depth: int | None) -> np.ndarray:
    n_base = setting.n_base or (len(setting.filtered.row_filter.attr) if setting.filtered
                                else 0)
    if not n_base:
        raise MetricUnavailable("the base size is not recorded")
    return _matching(setting) / float(n_base)


def _recall_index(setting: Setting, depth: int) -> np.ndarray:
    if setting.filtered is not None:
        raise MetricUnavailable("no exact filtered kNN of the indexed codes is stored")
    if setting.index_truth is None or setting.index_truth.shape[1] < depth:
        raise MetricUnavailable("exact kNN of the indexed vectors is not stored that deep")
    return recall_per_query(setting.returned(depth), setting.index_truth, depth)


def _recall_eps(setting: Setting, depth: int) -> np.ndarray:
    if setting.filtered is not None:  # filtered recall is tie-tolerant already
        return _filtered_recall(setting, depth)
    kth = setting.reference.truth_distances
    stored = setting.true_distances
    if stored is None or kth is None or stored.shape[1] < depth or kth.shape[1] < depth:
        raise MetricUnavailable("true distances of the returned ids are not stored that deep")
    returned = setting.ids[min(d for d in setting.ids if d >= depth)][:, :depth]
    return recall_eps_from_distances(returned, stored[:, :depth], kth[:, depth - 1], depth)


def _judged(function: Callable) -> Callable:
    def compute(setting: Setting, depth: int) -> np.ndarray:
        judgments = setting.reference.judgments
        if setting.filtered is not None:  # judged without the filter: not this question
            raise MetricUnavailable("relevance judgments are not filtered")
        if judgments is None:
            raise MetricUnavailable("the dataset has no relevance judgments")
        return function(setting.returned(depth), judgments, depth)
    return compute


def _qps(setting: Setting, depth: int | None) -> float:
    """Queries answered per second of wall time: the median batch pass, or with concurrent
    clients, every query they completed over the time they ran."""
    if setting.arrival is not None:
        return load_metrics.achieved_qps(setting)
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
    """Single-query latency; under an arrival load, response time (queueing included)."""
    def compute(setting: Setting, depth: int | None) -> float:
        if setting.arrival is not None:
            return load_metrics.response_percentile(setting, percentile)
        return float(np.percentile(_latencies(setting), percentile))
    return compute


def _load(function: Callable) -> Callable:
    """A metric of the open-loop load alone."""
    def compute(setting: Setting, depth: int | None) -> float:
        if setting.arrival is None:
            raise MetricUnavailable("the setting ran no arrival load (search: {arrival: ...})")
        return function(setting)
    return compute


def _latency_spread(percentile: float) -> Callable:
    """The percentile's sampling spread over the calls, plus the QPS spread of the setting's
    timed passes: the single-query loop is one short pass, so how much the machine's speed
    drifted during the run (contention, frequency) is read from the batch passes."""
    def compute(setting: Setting, depth: int | None) -> float:
        if setting.arrival is not None:  # the answered queries' response times
            response = load_metrics.response_ms(setting.arrival)
            if not np.isfinite(response).any():
                raise MetricUnavailable("no query of the load was answered")
            return percentile_spread(response[np.isfinite(response)], percentile)
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


def _of_runbook(function: Callable) -> Callable:
    def compute(setting: Setting, depth: int | None) -> float:
        if setting.runbook is None or setting.step is None:
            raise MetricUnavailable("not a runbook unit")
        return function(setting.runbook, setting.step, depth)
    return compute


def _builtin_metrics() -> None:
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
        Metric("short", False, "share of queries given fewer than min(k, matching) results",
               _short),
        Metric("returned", True, "results returned per query (distinct, -1 not counted)",
               _returned),
        Metric("violations", False, "returned ids per query that fail the filter",
               _violations),
        Metric("selectivity", True, "achieved share of base rows the filter lets a query see",
               _selectivity, takes_depth=False),
        Metric("qps", True, "queries per second", _qps, ("timings",), False, False),
        Metric("qps_spread", False, "spread of QPS over timed passes (fraction of the median)",
               _qps_spread, ("timings",), False, False),
        Metric("p50_ms", False, "median latency (ms)", _latency(50), ("timings",), False, False),
        Metric("p95_ms", False, "p95 latency (ms)", _latency(95), ("timings",), False, False),
        Metric("p99_ms", False, "p99 latency (ms)", _latency(99), ("timings",), False, False),
        *(Metric(f"p{p}_ms_spread", False, f"spread of the p{p} latency (fraction of it)",
                 _latency_spread(p), ("timings",), False, False) for p in (50, 95, 99)),
        Metric("p999_ms", False, "p99.9 latency (ms)", _latency(99.9), ("timings",), False,
               False),
        *(Metric(name, higher, label, _load(function), ("arrival",), False, False)
          for name, higher, label, function in LOAD_METRICS),
        # runbooks (vecbench.evaluate.steps): from the unit's step log
        Metric("searchable", True, "new points found by searching for themselves",
               _of_runbook(steps.searchable), ("runbook",), False),
        Metric("truth_s", False, "exact kNN of the active set at this step (s)",
               _of_runbook(steps.truth_seconds), ("runbook",), False, False),
        *(Metric(f"{op}_per_s", True, f"{op}s per second (vectors)",
                 _of_runbook(steps.throughput(op)), ("runbook",), False, False)
          for op in ("insert", "delete", "replace")),
        Metric("rebuild_s", False, "seconds of rebuilds over the runbook",
               _of_runbook(steps.total_seconds("rebuild")), ("runbook",), False, False),
        Metric("compact_s", False, "seconds of compact steps (pgvector VACUUM) over the runbook",
               _of_runbook(steps.total_seconds("compact")), ("runbook",), False, False),
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
        # over a setting's rates, and with cost: (vecbench.evaluate.operating)
        ("sustainable_rate", True, "highest rate with p99 <= p99_ms_max (queries/s)"),
        ("usd_per_million_queries", False, "USD per million queries at the sustainable rate"),
        ("usd_per_gb_month", False, "USD a month per GB of float32 vectors held"),
    ]:
        register(Metric(name, higher, label, takes_depth=name == "trustworthiness"))


#: Metrics of an open-loop load: (name, higher is better, label, function of the setting).
LOAD_METRICS = [
    ("offered_qps", True, "arrivals per second offered", load_metrics.offered_qps),
    ("achieved_qps", True, "answers per second achieved", load_metrics.achieved_qps),
    ("late_share", False, "share answered after p99_ms_max", load_metrics.late_share),
    ("dropped_share", False, "share never answered", load_metrics.dropped_share),
    ("send_lag_p99_ms", False, "p99 of sent - scheduled (ms): the client behind",
     load_metrics.lag_ms(load_metrics.SCHEDULED, load_metrics.SENT, 99)),
    ("queue_p99_ms", False, "p99 of search start - sent (ms): waiting for the server",
     load_metrics.lag_ms(load_metrics.SENT, load_metrics.START, 99)),
    ("service_p50_ms", False, "median search time under load (ms)",
     load_metrics.lag_ms(load_metrics.START, load_metrics.END, 50)),
]


def default_columns(k: int, judged: bool, load: bool = False) -> list[str]:
    """The metric columns collect computes when none are asked for (``load``: the unit ran
    an arrival load)."""
    columns = [f"recall@{k}", f"recall_index@{k}", f"recall_eps@{k}",
               *(f"recall@{k}_q{i}" for i in range(1, 5)),
               "qps", "qps_spread", "p50_ms", "p95_ms", "p99_ms", "p50_ms_spread",
               "p95_ms_spread", "p99_ms_spread"]
    if judged:
        columns += ["ndcg@10", "judged_recall@100", "mrr@10"]
    if load:
        columns += ["p999_ms", *(name for name, *_ in LOAD_METRICS)]
    return columns


def filter_columns(k: int) -> list[str]:
    """The columns collect adds to a unit searched with a ``filters:`` axis."""
    return [f"short@{k}", f"returned@{k}", f"violations@{k}", "selectivity"]


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


_builtin_metrics()
