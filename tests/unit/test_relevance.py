"""IR metrics against qrels: a hand-worked example, a brute-force cross-check, the scifact anchor."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from vecbench.core.errors import DataError
from vecbench.compute.relevance import (Judgments, mrr_at_k, ndcg_at_k, recall_at_k, relevance_per_query,
                                relevance_row)

DATA = os.environ.get("VECBENCH_DATA")  # CI sets VECBENCH_DATA=../shared/datasets
needs_data = pytest.mark.skipif(
    not DATA or not os.path.isdir(os.path.join(DATA, "scifact")),
    reason="VECBENCH_DATA not set or has no scifact folder (real BEIR data)")

BASE_IDS = ["a", "b", "c", "d", "e"]  # rows 0..4
QRELS = {"q1": {"a": 3, "c": 1, "x": 2, "d": 0},  # x is judged but not in the corpus
         "q2": {"e": 1},
         "q3": {"b": 0}}  # nothing relevant: no score
A, B, C, D, E = range(5)


@pytest.fixture
def judgments():
    return Judgments(QRELS, ["q1", "q2", "q3"], BASE_IDS)


def test_hand_worked_example_at_depth_3(judgments):
    ids = np.array([[C, D, A, B],     # q1: relevant c at rank 1, a (grade 3) at rank 3
                    [-1, B, E, A],    # q2: an empty slot, then e at rank 3
                    [A, B, C, D]])    # q3: no relevant judgment
    # q1: DCG@3 = 1/log2(2) + 0/log2(3) + 3/log2(4) = 1 + 0 + 1.5 = 2.5
    #     ideal grades 3, 2, 1 (x counts although unretrievable):
    #     IDCG@3 = 3/1 + 2/log2(3) + 1/log2(4) = 3 + 1.2618595 + 0.5 = 4.7618595
    # q2: DCG@3 = 1/log2(4) = 0.5; IDCG@3 = 1/log2(2) = 1
    q1_ndcg = 2.5 / (3 + 2 / math.log2(3) + 0.5)
    np.testing.assert_allclose(ndcg_at_k(ids, judgments, 3), [q1_ndcg, 0.5, np.nan])
    assert q1_ndcg == pytest.approx(0.525005, abs=1e-6)
    # recall@3: q1 found a and c of {a, c, x}; q2 found e of {e}
    np.testing.assert_allclose(recall_at_k(ids, judgments, 3), [2 / 3, 1.0, np.nan])
    # MRR@3: q1's first relevant is at rank 1, q2's at rank 3
    np.testing.assert_allclose(mrr_at_k(ids, judgments, 3), [1.0, 1 / 3, np.nan])
    # depth 1: q2's first slot is empty
    np.testing.assert_allclose(ndcg_at_k(ids, judgments, 1), [1 / 3, 0.0, np.nan])
    np.testing.assert_allclose(mrr_at_k(ids, judgments, 1), [1.0, 0.0, np.nan])


def test_a_document_returned_twice_counts_once(judgments):
    ids = np.array([[A, A, A], [E, E, B], [A, B, C]])
    # q1: a at rank 1 only: DCG = 3; IDCG@3 = 4.7618595 (as above). q2: e at rank 1: 1 / 1
    np.testing.assert_allclose(ndcg_at_k(ids, judgments, 3),
                               [3 / (3 + 2 / math.log2(3) + 0.5), 1.0, np.nan])
    np.testing.assert_allclose(recall_at_k(ids, judgments, 3), [1 / 3, 1.0, np.nan])


def test_identical_ids_are_kept_unless_asked(tmp_path):
    judged = Judgments({"q1": {"a": 1}}, ["q1"], ["q1", "a", "b"])
    ids = np.array([[0, 1, 2]])  # the document with the query's own id comes first
    assert mrr_at_k(ids, judged, 2)[0] == 0.5
    assert mrr_at_k(ids, judged, 2, ignore_identical_ids=True)[0] == 1.0  # BEIR's default
    assert recall_at_k(ids, judged, 1, ignore_identical_ids=True)[0] == 1.0


def test_matches_a_brute_force_implementation():
    rng = np.random.default_rng(7)
    base_ids = [f"doc{i}" for i in range(60)]
    query_ids = [f"q{i}" for i in range(40)]
    qrels = {q: {f"doc{d}": int(rng.integers(0, 4)) for d in rng.choice(70, 6, replace=False)}
             for q in query_ids}
    ids = rng.integers(-1, 60, size=(40, 20))
    got = {k: (ndcg_at_k(ids, Judgments(qrels, query_ids, base_ids), k),
               recall_at_k(ids, Judgments(qrels, query_ids, base_ids), k),
               mrr_at_k(ids, Judgments(qrels, query_ids, base_ids), k)) for k in (5, 20)}
    for k, (ndcg, recall, mrr) in got.items():
        for q, qid in enumerate(query_ids):
            relevant = {d: g for d, g in qrels[qid].items() if g > 0}
            if not relevant:
                assert np.isnan(ndcg[q]) and np.isnan(recall[q]) and np.isnan(mrr[q])
                continue
            seen, dcg, found, first = set(), 0.0, 0, None
            for rank, row in enumerate(ids[q, :k], start=1):
                doc = base_ids[row] if row >= 0 else None
                if doc in relevant and doc not in seen:
                    dcg += relevant[doc] / math.log2(rank + 1)
                    found += 1
                    first = first or rank
                seen.add(doc)
            ideal = sorted(relevant.values(), reverse=True)[:k]
            idcg = sum(g / math.log2(r + 1) for r, g in enumerate(ideal, start=1))
            assert ndcg[q] == pytest.approx(dcg / idcg)
            assert recall[q] == pytest.approx(found / len(relevant))
            assert mrr[q] == pytest.approx(1 / first if first else 0.0)


def test_relevance_row_needs_depth_100_and_averages_judged_queries(judgments):
    ids = np.full((3, 100), -1)
    ids[:, :3] = [[C, D, A], [-1, B, E], [A, B, C]]
    row = relevance_row(ids, judgments)
    assert set(row) == {"ndcg@10", "recall@100", "mrr@10"}
    # @10 ideal for q1 is the same three grades: IDCG = 4.7618595; q3 is left out of the mean
    assert row["ndcg@10"] == pytest.approx((2.5 / (3 + 2 / math.log2(3) + 0.5) + 0.5) / 2)
    assert row["recall@100"] == pytest.approx((2 / 3 + 1) / 2)
    assert row["mrr@10"] == pytest.approx((1 + 1 / 3) / 2)
    per_query = relevance_per_query(ids, judgments)
    assert per_query["ndcg@10"].shape == (3,) and np.isnan(per_query["mrr@10"][2])
    with pytest.raises(ValueError, match="need at least 100 returned ids per query, got 10"):
        relevance_row(ids[:, :10], judgments)
    with pytest.raises(ValueError, match=r"ids must be -1 or base rows in \[0, 5\)"):
        ndcg_at_k(np.array([[5], [0], [0]]), judgments, 1)


def test_dataset_without_qrels_is_a_data_error():
    from vecbench.core.registry import datasets

    ds = datasets.get("synthetic")(n_base=50, n_queries=5, dim=4, intrinsic_dim=2).load()
    with pytest.raises(DataError, match="no relevance judgments"):
        ndcg_at_k(np.zeros((5, 10), dtype=np.int64), ds)


@needs_data
@pytest.mark.realdata
def test_scifact_exact_search_gives_the_published_ndcg():
    """all-MiniLM-L6-v2 on SciFact: MTEB publishes nDCG@10 = 0.6451 for exact search."""
    import faiss

    from vecbench.datasets.beir import Beir

    ds = Beir(path=os.path.join(DATA, "scifact"), embeddings="minilm-l6").load()
    index = faiss.IndexFlatIP(ds.dim)
    index.add(ds.base)
    _, ids = index.search(ds.queries, 100)
    row = relevance_row(ids, ds)
    assert row["ndcg@10"] == pytest.approx(0.645, abs=0.001)
    assert 0.5 < row["mrr@10"] <= 1 and row["ndcg@10"] < row["recall@100"] <= 1
    # no judged scifact query id is also a document id: BEIR's identical-id rule changes nothing
    assert relevance_row(ids, ds, ignore_identical_ids=True) == row
