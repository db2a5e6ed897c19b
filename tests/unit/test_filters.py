"""Generated filters (seeded, achieved selectivity measured, correlation as named) and exact
filtered kNN (against brute force, cached and verified)."""

from __future__ import annotations

import numpy as np
import pytest

from vecbench.compute import filtered_knn, filters

RNG = np.random.default_rng(0)
# four well-separated blobs: "near the query" and "far from it" mean something
CENTRES = RNG.standard_normal((4, 16)) * 8
BASE = (CENTRES[RNG.integers(0, 4, 2000)] + RNG.standard_normal((2000, 16))).astype(np.float32)
QUERIES = (CENTRES[RNG.integers(0, 4, 40)] + RNG.standard_normal((40, 16))).astype(np.float32)


def brute(row_filter, k: int) -> np.ndarray:
    out = np.full((len(QUERIES), k), -1)
    for q in range(len(QUERIES)):
        d = ((BASE.astype(np.float64) - QUERIES[q]) ** 2).sum(axis=1)
        d[~row_filter.mask(q)] = np.inf
        order = np.argsort(d, kind="stable")[:k]
        out[q] = np.where(np.isfinite(d[order]), order, -1)
    return out


@pytest.mark.parametrize("correlation", ["random", "positive", "negative"])
@pytest.mark.parametrize("selectivity", [0.002, 0.05, 0.5])
def test_generated_filters_reach_their_selectivity_and_exact_truth(correlation, selectivity):
    row_filter = filters.generated(BASE, QUERIES, "l2", selectivity, correlation, seed=3)
    achieved = row_filter.selectivity()
    if correlation == "random":  # Bernoulli per row: near S, the same rows for every query
        assert row_filter.shared
        assert abs(achieved.mean() - selectivity) < 4 * np.sqrt(selectivity / len(BASE)) + 1e-3
    else:  # filled to round(S n) rows per query
        assert (row_filter.n_matching() == max(1, round(selectivity * len(BASE)))).all()
    masks = row_filter.masks()
    assert (masks.sum(axis=1) == row_filter.n_matching()).all()
    ids = filtered_knn.filtered_knn(BASE, QUERIES, 10, "l2", row_filter)
    expected = brute(row_filter, 10)
    assert (ids == expected).mean() > 0.99  # float32 vs float64 may swap exact near-ties
    assert all(masks[q, ids[q][ids[q] >= 0]].all() for q in range(len(QUERIES)))


def test_correlation_moves_the_matching_rows_towards_or_away_from_the_query():
    mean_distance = {}
    for correlation in ("random", "positive", "negative"):
        row_filter = filters.generated(BASE, QUERIES, "l2", 0.1, correlation, seed=1)
        distances = [np.sqrt(((BASE[row_filter.mask(q)] - QUERIES[q]) ** 2).sum(axis=1)).mean()
                     for q in range(len(QUERIES))]
        mean_distance[correlation] = np.mean(distances)
    assert mean_distance["positive"] < mean_distance["random"] < mean_distance["negative"]


def test_seeded_and_reproducible():
    one = filters.generated(BASE, QUERIES, "l2", 0.05, "positive", seed=7)
    two = filters.generated(BASE, QUERIES, "l2", 0.05, "positive", seed=7)
    assert filtered_knn.filter_digest(one) == filtered_knn.filter_digest(two)
    other = filters.random_filter(len(BASE), len(QUERIES), 0.05, seed=8)
    assert filtered_knn.filter_digest(other) != filtered_knn.filter_digest(
        filters.random_filter(len(BASE), len(QUERIES), 0.05, seed=7))


def test_range_filter_and_arrays_round_trip():
    values = np.arange(len(BASE), dtype=np.float64)
    row_filter = filters.range_filter(values, len(QUERIES), 100, 299, seed=0)
    assert row_filter.n_matching().tolist() == [200] * len(QUERIES)
    again = filters.RowFilter.from_arrays(row_filter.to_arrays("f0_"), "f0_")
    assert filtered_knn.filter_digest(again) == filtered_knn.filter_digest(row_filter)


def test_filtered_truth_is_cached_and_a_damaged_copy_recomputed(tmp_path, capsys):
    row_filter = filters.generated(BASE, QUERIES, "l2", 0.05, "negative", seed=2)
    first = filtered_knn.filtered_truth(BASE, QUERIES, 10, "l2", row_filter, "fp", cache=tmp_path)
    [entry] = (tmp_path / "groundtruth").glob("filtered-*.npz")
    data = bytearray(entry.read_bytes())
    data[-40] ^= 0xFF  # one flipped byte in the payload
    entry.write_bytes(bytes(data))
    again = filtered_knn.filtered_truth(BASE, QUERIES, 10, "l2", row_filter, "fp",
                                        cache=tmp_path)
    assert "filtered ground truth cache entry failed verification" in capsys.readouterr().err
    assert (again.ids == first.ids).all() and (again.kth == first.kth).all()
