"""faiss_hnsw level assignment: faiss's own draw follows the insertion position; ``levels:
content`` gives each vector a level from its bytes, so a permuted insertion order keeps every
vector's level and only the order changes."""

from __future__ import annotations

import numpy as np
import pytest

from vecbench.core.errors import ConfigError
from vecbench.indexes.faiss.families import FaissHNSW

faiss = pytest.importorskip("faiss")


def gaussian(n: int, d: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def build(x: np.ndarray, **params) -> FaissHNSW:
    index = FaissHNSW(**{"M": 8, "ef_construction": 32, "threads": 1, "seed": 3, **params})
    index.build(x, "l2")
    return index


def stored_levels(index: FaissHNSW) -> np.ndarray:
    """Level of each stored vector, in insertion position (faiss stores level + 1)."""
    return faiss.vector_to_array(index.index_.hnsw.levels).astype(np.int64) - 1


def levels_by_original_row(x: np.ndarray, perm: np.ndarray, **params) -> np.ndarray:
    """Build on ``x[perm]`` and return the level each row of ``x`` got."""
    out = np.empty(len(perm), dtype=np.int64)
    out[perm] = stored_levels(build(x[perm], **params))
    return out


X = gaussian(3000, 16)
ORDERS = [np.random.default_rng(s).permutation(len(X)) for s in (1, 2)]


@pytest.mark.parametrize("keep_order", [True, False])
def test_content_levels_follow_the_vector_whatever_the_order(keep_order):
    first, second = (levels_by_original_row(X, perm, levels="content", keep_order=keep_order)
                     for perm in ORDERS)
    assert np.array_equal(first, second)
    assert first.max() >= 2  # a real hierarchy, not all-zero levels


def test_insertion_levels_follow_the_position():
    # faiss's default: the i-th vector inserted gets the i-th draw of the seeded RNG
    builds = [build(X[perm]) for perm in ORDERS]
    assert np.array_equal(stored_levels(builds[0]), stored_levels(builds[1]))
    first, second = (levels_by_original_row(X, perm) for perm in ORDERS)
    assert np.mean(first == second) < 0.9  # ~1 - 2 * P(level > 0) * P(level = 0) ≈ 0.78


def test_content_levels_keep_the_top_layer_but_ties_pick_the_entry_by_order():
    tops, entries = [], []
    for perm in ORDERS:
        index = build(X[perm], levels="content")
        levels = stored_levels(index)
        top = np.flatnonzero(levels == levels.max())
        tops.append(set(perm[top].tolist()))
        # faiss keeps the first vector inserted at the highest level as the entry point
        assert index.index_.hnsw.entry_point == top[0]
        entries.append(perm[top[0]])
    assert tops[0] == tops[1] and len(tops[0]) > 1  # several vectors share the top level here
    assert entries[0] != entries[1]  # so which one is the entry point still follows the order


def test_content_levels_have_faiss_level_distribution():
    x = gaussian(40_000, 4, seed=5)
    content = levels_by_original_row(x, np.arange(len(x)), levels="content", M=8,
                                     ef_construction=8)
    # faiss's levelMult = 1/ln(M): P(level >= l) = M**-l
    for level, expected in ((1, 1 / 8), (2, 1 / 64)):
        share = np.mean(content >= level)
        sd = np.sqrt(expected * (1 - expected) / len(x))
        assert abs(share - expected) < 4 * sd, (level, share, expected)


def test_content_levels_depend_on_the_seed():
    perm = ORDERS[0]
    same = levels_by_original_row(X, perm, levels="content", seed=7)
    assert np.array_equal(same, levels_by_original_row(X, perm, levels="content", seed=7))
    assert not np.array_equal(same, levels_by_original_row(X, perm, levels="content", seed=8))


def test_content_levels_search_correctly_and_keep_the_order():
    x, q = gaussian(4000, 24, 0), gaussian(100, 24, 1)
    d2 = (q**2).sum(1)[:, None] - 2 * q @ x.T + (x**2).sum(1)[None, :]
    truth = np.argsort(d2, axis=1)[:, :10]
    index = build(x, levels="content", M=16, ef_construction=100)
    ids = index.search(q, 10, ef=100)[0]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth)])
    assert recall > 0.95
    assert index.honours_order
    # inserted in the order given: the prefix's graph is the whole graph before its last add
    prefix = build(x[:-1], levels="content", M=16, ef_construction=100)
    changed = sum(a != b for a, b in zip(level0_lists(prefix), level0_lists(index)))
    assert changed <= 2 * 16


def level0_lists(index: FaissHNSW) -> list[frozenset]:
    hnsw = index.index_.hnsw
    offsets = faiss.vector_to_array(hnsw.offsets).astype(np.int64)
    neighbors = faiss.vector_to_array(hnsw.neighbors)
    width = int(faiss.vector_to_array(hnsw.cum_nneighbor_per_level)[1])
    return [frozenset(neighbors[o:o + width][neighbors[o:o + width] >= 0].tolist())
            for o in offsets[:-1]]


def test_bad_levels_value_names_the_parameter():
    with pytest.raises(ConfigError, match=r"^levels: expected one of insertion, content, "
                                          r"got 'by_id'"):
        FaissHNSW(levels="by_id")
    assert FaissHNSW().get_params()["levels"] == "insertion"
