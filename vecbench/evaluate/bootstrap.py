"""Bootstrap intervals of a mean difference over queries, and over seeds and queries.

A configuration run with several seeds (``repeat``: fit, training and build seeds) gives a
matrix of per-query differences, seeds x queries. Its interval has to cover what another seed
would move, not only which queries were drawn: :func:`seeds_and_queries` resamples the seeds,
then the queries. The queries are the same for every seed (a crossed design), so one resample
of the queries serves all the seeds drawn: a hard query stays hard in every seed, and resampling
it separately per seed would average its effect away. With one seed this is the per-query
bootstrap (:func:`queries`, scipy.stats.bootstrap, as the committed tables were made).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Resamples drawn per block in the two-level bootstrap (bounds memory: block x queries floats).
BLOCK = 1000


@dataclass(frozen=True)
class Interval:
    """A mean difference, its percentile interval and the bootstrap distribution it came from."""

    mean: float
    low: float
    high: float
    #: the resampled means (empty where every resample has the same mean)
    distribution: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)

    def p_value(self) -> float:
        """Two-sided bootstrap p-value of "the mean difference is 0": twice the smaller share of
        resampled means on either side of 0 (at least 1/(resamples + 1))."""
        boot = self.distribution
        if boot.size == 0:
            return 1.0 if self.mean == 0 else 0.0
        side = min(np.mean(boot <= 0), np.mean(boot >= 0))
        return float(min(1.0, max(2 * side, 1.0 / (boot.size + 1))))

    def equivalence_p(self, margin: float) -> float:
        """TOST p-value of "|mean difference| < margin": the larger of the two one-sided
        bootstrap p-values (below +margin, above -margin)."""
        boot = self.distribution
        if boot.size == 0:
            return 0.0 if abs(self.mean) < margin else 1.0
        floor = 1.0 / (boot.size + 1)
        return float(max(np.mean(boot >= margin), np.mean(boot <= -margin), floor))


def queries(delta: np.ndarray, resamples: int = 10_000, seed: int = 0,
            confidence: float = 0.95) -> Interval:
    """Mean of ``delta`` (one value per query) and its percentile bootstrap interval."""
    from scipy.stats import bootstrap

    delta = np.asarray(delta, dtype=np.float64)
    mean = float(delta.mean())
    if len(delta) < 2 or np.ptp(delta) == 0:  # every resample has the same mean
        return Interval(mean, mean, mean)
    result = bootstrap((delta,), np.mean, n_resamples=resamples, confidence_level=confidence,
                       method="percentile", random_state=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return Interval(mean, float(low), float(high), np.asarray(result.bootstrap_distribution))


def seeds_and_queries(deltas: np.ndarray, resamples: int = 10_000, seed: int = 0,
                      confidence: float = 0.95) -> Interval:
    """Mean of ``deltas`` (seeds x queries) and its two-level percentile bootstrap interval:
    resample the seeds, then the queries (shared by the seeds drawn). One seed: :func:`queries`.

    Written here because scipy.stats.bootstrap resamples one level (its ``paired`` resamples
    rows together, never seeds and queries separately)."""
    deltas = np.atleast_2d(np.asarray(deltas, dtype=np.float64))
    n_seeds, n_queries = deltas.shape
    if n_seeds == 1:
        return queries(deltas[0], resamples, seed, confidence)
    mean = float(deltas.mean())
    if np.ptp(deltas) == 0:
        return Interval(mean, mean, mean)
    rng = np.random.default_rng(seed)
    means = []
    for size in _blocks(resamples):
        # how often each seed and each query is drawn: the mean of a resample is then
        # (seed counts @ deltas) . (query counts) / (seeds x queries)
        seed_counts = _counts(rng, n_seeds, size)
        query_counts = _counts(rng, n_queries, size)
        means.append(((seed_counts @ deltas) * query_counts).sum(axis=1)
                     / (n_seeds * n_queries))
    return _percentile(mean, np.concatenate(means), confidence)


def two_groups_and_queries(treated: np.ndarray, control: np.ndarray, resamples: int = 10_000,
                           seed: int = 0, confidence: float = 0.95) -> Interval:
    """Mean of ``treated`` minus mean of ``control`` (each builds x queries, the same queries in
    the same columns) and its percentile interval: resample each group's builds, then the
    queries, once for both groups. For builds that are not paired seed with seed: an informed
    insertion order built with 10 seeds against 30 random orders, scored on one query set. A
    hard query stays hard in both groups, so resampling it once keeps the comparison paired on
    queries; the builds' own spread (the build noise) enters through each group's resample.

    Written here for the same reason as :func:`seeds_and_queries`: scipy resamples one level."""
    treated = np.atleast_2d(np.asarray(treated, dtype=np.float64))
    control = np.atleast_2d(np.asarray(control, dtype=np.float64))
    if treated.shape[1] != control.shape[1]:
        raise ValueError(f"the groups must share their queries: {treated.shape[1]} != "
                         f"{control.shape[1]} columns")
    n_treated, n_queries = treated.shape
    n_control = len(control)
    mean = float(treated.mean() - control.mean())
    rng = np.random.default_rng(seed)
    means = []
    for size in _blocks(resamples):
        per_query = (_counts(rng, n_treated, size) @ treated / n_treated
                     - _counts(rng, n_control, size) @ control / n_control)
        # the queries drawn by index: a gather is ~5x faster than multinomial counts of many
        drawn = rng.integers(0, n_queries, size=(size, n_queries))
        means.append(np.take_along_axis(per_query, drawn, axis=1).mean(axis=1))
    boot = np.concatenate(means)
    if np.ptp(boot) == 0:
        return Interval(mean, mean, mean)
    return _percentile(mean, boot, confidence)


def _blocks(resamples: int):
    """Block sizes summing to ``resamples``, at most :data:`BLOCK` each."""
    return [min(BLOCK, resamples - start) for start in range(0, resamples, BLOCK)]


def _counts(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """``size`` resamples of ``n`` items, as how often each item is drawn (size x n)."""
    return rng.multinomial(n, np.full(n, 1 / n), size=size)


def _percentile(mean: float, boot: np.ndarray, confidence: float) -> Interval:
    tail = (1 - confidence) / 2
    low, high = np.quantile(boot, [tail, 1 - tail])
    return Interval(mean, float(low), float(high), boot)
