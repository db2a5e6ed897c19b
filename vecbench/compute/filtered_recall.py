"""Scores of a filtered search against its exact filtered answers, over arrays.

- recall@k under a filter = |distinct returned ids that pass the filter and lie within the
  exact distance of the last true filtered neighbour| / min(k, matching rows): tie-tolerant
  like recall_eps@k, and a query with fewer than k matching rows is not charged for the rows
  that do not exist (NaN where nothing matches: the question has no answer);
- ``returned``: distinct ids returned; ``short``: fewer than min(k, matching) of them;
- ``violations``: distinct returned ids that fail the filter (counted, never hidden).
"""

from __future__ import annotations

import numpy as np

from vecbench.compute.filters import RowFilter
from vecbench.compute.recall import EPS_ABS, EPS_REL, _first_occurrence


def counted(ids: np.ndarray) -> np.ndarray:
    """(nq, k) bool: an id that is a result (not -1) and not a repeat within its row."""
    return _first_occurrence(ids) & (ids >= 0)


def passes(row_filter: RowFilter, ids: np.ndarray) -> np.ndarray:
    """(nq, k) bool: the returned id is a row its query may see (False for -1)."""
    safe = np.maximum(ids, 0)
    attr, sub = row_filter.attr[safe], row_filter.sub[safe]
    out = np.empty(ids.shape, dtype=bool)
    for q in range(len(ids)):  # k values a query: the filter's own lists, not a mask of nb
        hit = np.isin(attr[q], row_filter.whole[q])
        value, limit = row_filter.partial[q]
        if value >= 0:
            hit |= (attr[q] == value) & (sub[q] < limit)
        out[q] = hit
    return out & (ids >= 0)


def filtered_recall(ids: np.ndarray, true_distances: np.ndarray, row_filter: RowFilter,
                    n_matching: np.ndarray, kth: np.ndarray, k: int) -> np.ndarray:
    """Per-query recall@k under the filter (see the module docstring)."""
    ids, true_distances = ids[:, :k], true_distances[:, :k]
    threshold = (kth + EPS_REL * np.abs(kth) + EPS_ABS)[:, None]
    hits = counted(ids) & passes(row_filter, ids) & (true_distances <= threshold)
    wanted = np.minimum(k, n_matching).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(wanted > 0, np.minimum(hits.sum(axis=1), wanted) / wanted, np.nan)


def short(ids: np.ndarray, n_matching: np.ndarray, k: int) -> np.ndarray:
    """Per query 1.0 where fewer than min(k, matching) results came back, else 0.0."""
    return (counted(ids[:, :k]).sum(axis=1) < np.minimum(k, n_matching)).astype(np.float64)


def violations(ids: np.ndarray, row_filter: RowFilter, k: int) -> np.ndarray:
    """Per query, distinct returned ids that fail the filter."""
    ids = ids[:, :k]
    return (counted(ids) & ~passes(row_filter, ids)).sum(axis=1).astype(np.float64)
