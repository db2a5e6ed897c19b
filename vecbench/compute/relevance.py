"""Retrieval quality against graded judgments (qrels): nDCG@k, recall@k and MRR@k.

Conventions are those of trec_eval (which BEIR and MTEB call through pytrec_eval):

- the gain of a retrieved document is its judgment grade, linear (not 2^grade - 1); unjudged
  documents and grades <= 0 gain 0;
- the document at rank r (1-based) is discounted by log2(r + 1);
- the ideal DCG@k sorts *all* the query's judged relevant grades, documents missing from the
  corpus included, and cuts at k; recall@k divides by that same count of judged relevant documents;
- MRR@k is 1 / rank of the first relevant document in the top k, 0 if there is none;
- a query without any relevant judgment has no score: NaN in the per-query arrays, left out of
  the means (trec_eval skips queries without relevant documents).

The ranking is taken as the index returned it: a -1 (padding) is an empty slot, and a document
returned twice counts at its first rank only. trec_eval would re-sort by score, breaking ties by
document id; exact ties in float scores are too rare to matter here.

BEIR by default also drops a retrieved document whose id equals the query id, meant for corpora
that contain their queries (ArguAna, Quora). Here that is ``ignore_identical_ids``, off by default:
on cranfield, cisi and cacm the numeric query ids collide with unrelated document ids (query "1"
is not document "1"), so dropping them would remove real results. On scifact no judged query id
is a document id, so the choice does not change its scores.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from vecbench.core.errors import DataError

#: The relevance columns of the results table and the depth each needs.
RELEVANCE_COLUMNS = {"ndcg@10": 10, "recall@100": 100, "mrr@10": 10}


class Judgments:
    """qrels aligned with result matrices: query row x base row -> grade, plus ideal gains.

    Built once per dataset (see :func:`judgments_of`) and reused for every result matrix.
    """

    def __init__(self, qrels: Mapping[str, Mapping[str, float]], query_ids: Sequence[Any],
                 base_ids: Sequence[Any]):
        from scipy import sparse

        row_of = {str(doc): row for row, doc in enumerate(base_ids)}
        self.n_queries, self.n_base = len(query_ids), len(base_ids)
        self.n_relevant = np.zeros(self.n_queries, dtype=np.int64)
        self.self_rows = np.full(self.n_queries, -1, dtype=np.int64)
        rows, cols, gains, ideal = [], [], [], []
        for q, qid in enumerate(query_ids):
            judged = qrels.get(str(qid), {})
            relevant = sorted((float(g) for g in judged.values() if g > 0), reverse=True)
            self.n_relevant[q] = len(relevant)
            ideal.append(relevant)
            self.self_rows[q] = row_of.get(str(qid), -1)
            for doc, grade in judged.items():
                if grade > 0 and str(doc) in row_of:
                    rows.append(q)
                    cols.append(row_of[str(doc)])
                    gains.append(float(grade))
        # one extra column, always 0, that padding and repeated ids are pointed at
        self.gains = sparse.csr_matrix((gains, (rows, cols)),
                                       shape=(self.n_queries, self.n_base + 1))
        self.ideal = np.zeros((self.n_queries, max(map(len, ideal), default=0)))
        for q, relevant in enumerate(ideal):
            self.ideal[q, :len(relevant)] = relevant

    @classmethod
    def from_arrays(cls, data, indices, indptr, ideal, n_relevant, self_rows,
                    n_base: int) -> "Judgments":
        """Rebuild judgments saved as their arrays (run records keep them beside the truth)."""
        from scipy import sparse

        judgments = cls.__new__(cls)
        judgments.n_queries, judgments.n_base = len(n_relevant), int(n_base)
        judgments.n_relevant = np.asarray(n_relevant, dtype=np.int64)
        judgments.self_rows = np.asarray(self_rows, dtype=np.int64)
        judgments.gains = sparse.csr_matrix((data, indices, indptr),
                                            shape=(judgments.n_queries, judgments.n_base + 1))
        judgments.ideal = np.asarray(ideal, dtype=np.float64)
        return judgments

    def retrieved_gains(self, ids: np.ndarray, k: int,
                        ignore_identical_ids: bool = False) -> np.ndarray:
        """(n_queries, k) gain of each of the top k returned rows (0 for padding and repeats)."""
        ids = np.asarray(ids)
        if ids.ndim != 2 or len(ids) != self.n_queries or ids.dtype.kind not in "iu":
            raise ValueError(f"expected integer ids of shape ({self.n_queries}, >= {k}), got "
                             f"{ids.dtype} {ids.shape}")
        if ids.shape[1] < k:
            raise ValueError(f"metrics at depth {k} need at least {k} returned ids per query, "
                             f"got {ids.shape[1]}: search with k >= {k}")
        ids = ids.astype(np.int64)
        if (ids >= self.n_base).any() or (ids < -1).any():
            raise ValueError(f"ids must be -1 or base rows in [0, {self.n_base})")
        if ignore_identical_ids:
            drop = (ids == self.self_rows[:, None]) & (self.self_rows[:, None] >= 0)
            order = np.argsort(drop, axis=1, kind="stable")  # kept ids move up, in order
            ids = np.where(np.take_along_axis(drop, order, 1), -1,
                           np.take_along_axis(ids, order, 1))
        ids = ids[:, :k]
        # a repeated id counts once, at its first rank: stable sort puts the first occurrence first
        order = np.argsort(ids, axis=1, kind="stable")
        ranked = np.take_along_axis(ids, order, 1)
        repeat_sorted = np.zeros(ids.shape, dtype=bool)
        repeat_sorted[:, 1:] = ranked[:, 1:] == ranked[:, :-1]
        repeat = np.empty_like(repeat_sorted)
        np.put_along_axis(repeat, order, repeat_sorted, axis=1)
        cols = np.where((ids < 0) | repeat, self.n_base, ids)
        rows = np.repeat(np.arange(self.n_queries), k)
        return np.asarray(self.gains[rows, cols.ravel()]).reshape(self.n_queries, k)

    def _no_relevant(self, scores: np.ndarray) -> np.ndarray:
        scores[self.n_relevant == 0] = np.nan
        return scores


def judgments_of(judged: Any) -> Judgments:
    """The :class:`Judgments` of a Dataset (memoized in its ``info``), or ``judged`` itself."""
    if isinstance(judged, Judgments):
        return judged
    if judged.qrels is None or judged.query_ids is None or judged.base_ids is None:
        raise DataError(f"{judged.name}: no relevance judgments (qrels, query_ids, base_ids); "
                        "nDCG/MRR need a dataset with qrels, such as beir")
    cached = judged.info.get("_judgments")
    if cached is None:
        cached = Judgments(judged.qrels, judged.query_ids, judged.base_ids)
        judged.info["_judgments"] = cached  # frozen dataclass: info is the memo, as fingerprint
    return cached


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def ndcg_at_k(ids: np.ndarray, judged: Any, k: int = 10,
              ignore_identical_ids: bool = False) -> np.ndarray:
    """Per-query nDCG@k of returned base rows ``ids`` (n_queries, >= k); NaN: no relevant doc."""
    j = judgments_of(judged)
    discounts = _discounts(k)
    dcg = j.retrieved_gains(ids, k, ignore_identical_ids) @ discounts
    width = min(k, j.ideal.shape[1])
    ideal = j.ideal[:, :width] @ discounts[:width]
    with np.errstate(invalid="ignore", divide="ignore"):
        return j._no_relevant(dcg / ideal)


def recall_at_k(ids: np.ndarray, judged: Any, k: int = 100,
                ignore_identical_ids: bool = False) -> np.ndarray:
    """Per-query fraction of the judged relevant documents returned in the top k."""
    j = judgments_of(judged)
    found = (j.retrieved_gains(ids, k, ignore_identical_ids) > 0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return j._no_relevant(found / j.n_relevant)


def mrr_at_k(ids: np.ndarray, judged: Any, k: int = 10,
             ignore_identical_ids: bool = False) -> np.ndarray:
    """Per-query reciprocal rank of the first relevant document in the top k (0 if none)."""
    j = judgments_of(judged)
    hits = j.retrieved_gains(ids, k, ignore_identical_ids) > 0
    first = hits.argmax(axis=1)
    return j._no_relevant(np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0))


def relevance_per_query(ids: np.ndarray, judged: Any,
                        ignore_identical_ids: bool = False) -> dict[str, np.ndarray]:
    """The per-query arrays behind :func:`relevance_row` (for confidence intervals)."""
    return {"ndcg@10": ndcg_at_k(ids, judged, 10, ignore_identical_ids),
            "recall@100": recall_at_k(ids, judged, 100, ignore_identical_ids),
            "mrr@10": mrr_at_k(ids, judged, 10, ignore_identical_ids)}


def relevance_row(ids: np.ndarray, judged: Any,
                  ignore_identical_ids: bool = False) -> dict[str, float]:
    """Mean ``ndcg@10``, ``recall@100``, ``mrr@10`` over the queries with a relevant judgment.

    ``ids`` are the returned base rows, (n_queries, >= 100), -1 padded; ``judged`` a Dataset
    with qrels or a :class:`Judgments`.
    """
    per_query = relevance_per_query(ids, judged, ignore_identical_ids)
    evaluated = ~np.isnan(per_query["ndcg@10"])
    if not evaluated.any():
        raise DataError("no query has a relevant judgment; expected qrels with grades > 0")
    return {name: float(values[evaluated].mean()) for name, values in per_query.items()}
