"""Filtered recall, short@k, returned@k, violations@k and selectivity, checked by hand on a
10-row example, through the same path collect takes (filter -> exact filtered answers ->
metric registry)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from vecbench.compute import filtered_knn, filters, recall
from vecbench.evaluate import metrics
from vecbench.evaluate.results import FilterView

# Ten base rows on a line, row i at (i, 0); squared L2. Even rows carry label "a", odd rows "b".
BASE = np.array([[i, 0.0] for i in range(10)], dtype=np.float32)
LABELS = np.array(["a", "b"] * 5)
# query 0 at 0 (label a), query 1 at 9 (label b), query 2 at 3 (label a)
QUERIES = np.array([[0.0, 0.0], [9.0, 0.0], [3.0, 0.0]], dtype=np.float32)
QUERY_LABELS = np.array(["a", "b", "a"])


def _setting(returned: list[list[int]], k: int, tmp_path) -> metrics.Setting:
    row_filter = filters.label_filter(LABELS, QUERY_LABELS, seed=0)
    truth = filtered_knn.filtered_truth(BASE, QUERIES, k, "l2", row_filter, "ten-rows",
                                        cache=tmp_path)
    ids = np.array(returned, dtype=np.int64)
    return metrics.Setting(
        ids={k: ids}, reference=SimpleNamespace(n_queries=len(QUERIES)),
        true_distances=recall.true_distances(BASE, QUERIES, ids, "l2"),
        filtered=FilterView(row_filter, truth.ids, truth.n_matching, truth.kth), n_base=10)


def _per_query(setting, column: str) -> np.ndarray:
    return metrics.evaluate(setting, metrics.parse_metric(column))[1]


def test_hand_checked_recall_at_3(tmp_path):
    # Query 0 sees rows {0, 2, 4, 6, 8}; its exact filtered top 3 is 0, 2, 4 (distances 0, 4,
    # 16). It got [0, 1, 4]: 0 and 4 are hits, 1 is label b (a violation): recall 2/3.
    # Query 1 sees {1, 3, 5, 7, 9}; top 3 is 9, 7, 5. It got [9, 9, -1]: one distinct result
    # (the repeat counts once, -1 is no result): recall 1/3, returned 1, short (1 < 3).
    # Query 2 (at 3) sees {0, 2, 4, 6, 8} at squared distances 9, 1, 1, 9, 25: top 3 is 2, 4
    # and one of the tied 0 / 6. It got [2, 4, 6]: 6 ties the third true distance (9), so it
    # is a hit whichever of 0 and 6 exact search kept: recall 3/3.
    setting = _setting([[0, 1, 4], [9, 9, -1], [2, 4, 6]], 3, tmp_path)
    assert _per_query(setting, "recall@3") == pytest.approx([2 / 3, 1 / 3, 1.0])
    assert _per_query(setting, "recall_eps@3") == pytest.approx([2 / 3, 1 / 3, 1.0])
    assert _per_query(setting, "violations@3").tolist() == [1, 0, 0]
    assert _per_query(setting, "returned@3").tolist() == [3, 1, 3]
    assert _per_query(setting, "short@3").tolist() == [0, 1, 0]
    # five of ten rows match each query
    assert _per_query(setting, "selectivity").tolist() == [0.5, 0.5, 0.5]
    value, _ = metrics.evaluate(setting, metrics.parse_metric("recall@3"))
    assert value == pytest.approx((2 / 3 + 1 / 3 + 1) / 3)


def test_fewer_matching_rows_than_k(tmp_path):
    # k = 10 but only 5 rows match each query: returning all five is a perfect answer,
    # 5 / min(10, 5) = 1.0 (divided by k it would read 0.5), and it is not short.
    # Query 1 returned 3 of its 5 (9, 7, 5): 3 / 5 = 0.6 and short (3 < 5). Query 2 returned
    # its five plus row 1, which fails the filter: recall 1.0 and one violation.
    pad = [-1] * 5
    setting = _setting([[0, 2, 4, 6, 8] + pad, [9, 7, 5, -1, -1] + pad,
                        [2, 4, 0, 6, 8, 1, -1, -1, -1, -1]], 10, tmp_path)
    assert _per_query(setting, "recall@10") == pytest.approx([1.0, 0.6, 1.0])
    assert _per_query(setting, "short@10").tolist() == [0, 1, 0]
    assert _per_query(setting, "violations@10").tolist() == [0, 0, 1]


def test_truth_is_exact_under_the_filter(tmp_path):
    row_filter = filters.label_filter(LABELS, QUERY_LABELS, seed=0)
    truth = filtered_knn.filtered_truth(BASE, QUERIES, 3, "l2", row_filter, "ten-rows",
                                        cache=tmp_path)
    assert truth.ids[0].tolist() == [0, 2, 4]
    assert truth.ids[1].tolist() == [9, 7, 5]
    assert truth.ids[2, :2].tolist() in ([2, 4], [4, 2]) and truth.ids[2, 2] in (0, 6)
    assert truth.n_matching.tolist() == [5, 5, 5]
    assert truth.kth.tolist() == [16.0, 16.0, 9.0]


def test_query_label_never_seen_is_refused():
    from vecbench.core.errors import DataError

    with pytest.raises(DataError, match="label 'c', which no base row carries"):
        filters.label_filter(LABELS, np.array(["a", "c"]), seed=0)
