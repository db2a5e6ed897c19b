"""Behaviour specific to each index adapter: insertion order, seeds, stateless search
parameters, hnswlib's failures at small ef, training sets, refinement, factory strings."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from vecbench.core.errors import ConfigError, DataError
from vecbench.indexes.faiss.factory import FaissFactory
from vecbench.indexes.faiss.families import FaissHNSW, FaissIVF, FaissIVFPQ
from vecbench.indexes.faiss.families import FlatIndex
from vecbench.indexes.hnswlib_index import HnswlibIndex

faiss = pytest.importorskip("faiss")


def gaussian(n: int, d: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def recall(ids: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(ids, truth)]))


@pytest.fixture(scope="module")
def xq() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2000 base vectors, 50 queries, and their exact 10-NN (l2) by numpy."""
    x, q = gaussian(2000, 32, 0), gaussian(50, 32, 1)
    d2 = (q**2).sum(1)[:, None] - 2 * q @ x.T + (x**2).sum(1)[None, :]
    return x, q, np.argsort(d2, axis=1)[:, :10]


# -- insertion order ------------------------------------------------------------------------
#
# With insertion in the given order, the graph built on x[:n] is the state of the graph built on
# x[:n+1] just before its last insertion; that insertion only adds the new point's links and the
# reverse links into its neighbours' lists (at most max_M0 = 2M lists at level 0). An index that
# reorders a batch (faiss's IndexHNSW.add: by level, shuffled within a level) or inserts
# concurrently builds a different graph for the prefix, and most lists differ.

def hnswlib_level0(index) -> list[frozenset]:
    """Level-0 neighbour ids of each point, read from hnswlib's pickled state."""
    state = index.__getstate__()[0]
    n, size = state["cur_element_count"], state["size_data_per_element"]
    rows = np.frombuffer(state["data_level0"], dtype=np.uint8)[:n * size].reshape(n, size)
    counts = rows[:, :4].copy().view(np.uint32)[:, 0] & 0xFFFF
    links = rows[:, 4:4 + 4 * state["max_M0"]].copy().view(np.uint32)
    off = state["label_offset"]
    labels = rows[:, off:off + 8].copy().view(np.uint64)[:, 0].astype(np.int64)
    by_label = [frozenset()] * n
    for internal in range(n):
        by_label[labels[internal]] = frozenset(labels[links[internal, :counts[internal]]].tolist())
    return by_label


def faiss_level0(index) -> list[frozenset]:
    hnsw = index.hnsw
    offsets = faiss.vector_to_array(hnsw.offsets).astype(np.int64)
    neighbors = faiss.vector_to_array(hnsw.neighbors)
    width = int(faiss.vector_to_array(hnsw.cum_nneighbor_per_level)[1])  # level 0 comes first
    lists = []
    for i in range(index.ntotal):
        row = neighbors[offsets[i]:offsets[i] + width]
        lists.append(frozenset(row[row >= 0].tolist()))
    return lists


def lists_changed_by_appending(cls, level0, m: int = 8, **params) -> int:
    x = gaussian(1201, 16, 3)
    prefix, whole = cls(M=m, ef_construction=64, threads=1, seed=5, **params), \
        cls(M=m, ef_construction=64, threads=1, seed=5, **params)
    prefix.build(x[:-1], "l2")
    whole.build(x, "l2")
    before, after = level0(prefix.index_), level0(whole.index_)
    return sum(before[i] != after[i] for i in range(len(before)))


@pytest.mark.parametrize("cls, level0", [(HnswlibIndex, hnswlib_level0),
                                         (FaissHNSW, faiss_level0)])
def test_insertion_order_holds(cls, level0):
    assert cls.honours_order
    assert lists_changed_by_appending(cls, level0, m=8) <= 2 * 8


def test_the_order_check_detects_faiss_batch_reordering():
    assert lists_changed_by_appending(FaissHNSW, faiss_level0, keep_order=False) > 300


@pytest.mark.parametrize("cls", [HnswlibIndex, FaissHNSW])
def test_entry_point_is_the_first_inserted_point_of_the_top_level(cls):
    x = gaussian(3000, 8, 4)
    for order in (np.arange(len(x)), np.arange(len(x))[::-1]):
        index = cls(M=4, ef_construction=32, threads=1, seed=1)
        index.build(x[order], "l2")
        if cls is HnswlibIndex:
            state = index.index_.__getstate__()[0]
            levels, entry = np.asarray(state["element_levels"]), state["enterpoint_node"]
        else:
            levels = faiss.vector_to_array(index.index_.hnsw.levels) - 1
            entry = index.index_.hnsw.entry_point
        assert entry == int(np.flatnonzero(levels == levels.max())[0])


def test_faiss_hnsw_keep_order_false_is_declared():
    assert FaissHNSW(keep_order=False).honours_order is False
    ordered, batch = FaissHNSW(M=4, threads=2), FaissHNSW(M=4, threads=2, keep_order=False)
    reports = [index.build(gaussian(50, 4), "l2") for index in (ordered, batch)]
    assert [report.threads for report in reports] == [1, 2]
    assert [report.deterministic for report in reports] == [True, False]
    # threads given to build() override the index's own, for the build only
    single = batch.build(gaussian(50, 4), "l2", threads=1)
    assert (single.threads, single.deterministic, batch.threads) == (1, True, 2)
    assert FaissHNSW.honours_order is True
    with pytest.raises(ConfigError, match="keep_order: expected true or false"):
        FaissHNSW(keep_order="yes")


def test_faiss_hnsw_seed_sets_the_levels():
    x = gaussian(2000, 8)

    def levels(seed):
        index = FaissHNSW(M=8, ef_construction=16, threads=1, seed=seed)
        index.build(x, "l2")
        return faiss.vector_to_array(index.index_.hnsw.levels)
    assert np.array_equal(levels(1), levels(1))
    assert not np.array_equal(levels(1), levels(2))


def test_hnswlib_seed_sets_the_levels():
    x = gaussian(2000, 8)

    def levels(seed):
        index = HnswlibIndex(M=8, ef_construction=16, threads=1, seed=seed)
        index.build(x, "l2")
        return np.asarray(index.index_.__getstate__()[0]["element_levels"])
    assert np.array_equal(levels(1), levels(1))
    assert not np.array_equal(levels(1), levels(2))


# -- search parameters are arguments, not state ---------------------------------------------

@pytest.mark.parametrize("cls", [HnswlibIndex, FaissHNSW])
def test_ef_below_k_searches_with_k(cls, xq):
    x, q, _ = xq
    index = cls(M=8, ef_construction=64, threads=1)
    index.build(x, "l2")
    low = index.search(q, 50, ef=1)[0]
    assert (low >= 0).all()
    assert np.array_equal(low, index.search(q, 50, ef=50)[0])


@pytest.mark.parametrize("cls", [HnswlibIndex, FaissHNSW])
def test_ef_does_not_leak_into_the_next_call(cls, xq):
    x, q, truth = xq
    index = cls(M=4, ef_construction=16, threads=1)
    index.build(x, "l2")
    default = index.search(q, 10)[0]
    wide = index.search(q, 10, ef=400)[0]
    assert recall(wide, truth) > recall(default, truth)  # ef matters at this setting
    assert np.array_equal(index.search(q, 10)[0], default)


@pytest.mark.parametrize("cls", [HnswlibIndex, FaissHNSW])
def test_bound_settings_do_not_leak_into_each_other(cls, xq):
    """Two bound settings used alternately (and a deeper k in between) answer as fresh calls."""
    x, q, truth = xq
    index = cls(M=4, ef_construction=16, threads=1)
    index.build(x, "l2")
    narrow, wide = index.searcher(q, 10, {"ef": 10}), index.searcher(q, 10, {"ef": 400})
    first = narrow(slice(None), 10)[0]
    assert recall(wide(slice(None), 10)[0], truth) > recall(first, truth)
    assert (narrow(slice(None), 60)[0] >= 0).all()  # beam widened to k for this call only
    assert np.array_equal(narrow(slice(None), 10)[0], first)
    assert np.array_equal(index.search(q, 10, ef=10)[0], first)


def test_faiss_parameters_leave_the_index_untouched(xq):
    x, q, truth = xq
    ivf = FaissIVF(nlist=32, threads=1)
    ivf.build(x, "l2")
    few, all_lists = ivf.search(q, 10, nprobe=1)[0], ivf.search(q, 10, nprobe=32)[0]
    assert recall(all_lists, truth) == 1.0 and recall(few, truth) < 0.9
    assert faiss.extract_index_ivf(ivf.index_).nprobe == 1
    hnsw = FaissHNSW(M=8, threads=1)
    hnsw.build(x, "l2")
    hnsw.search(q, 10, ef=300)[0]
    assert hnsw.index_.hnsw.efSearch == 16


def test_thread_setting_is_restored(xq):
    x, q, _ = xq
    before = faiss.omp_get_max_threads()
    index = FlatIndex(threads=1)
    index.build(x, "l2")
    index.search(q, 10)[0]
    assert faiss.omp_get_max_threads() == before
    assert index.n_threads == 1 and FlatIndex().n_threads >= 1


# -- hnswlib's failures at small ef -----------------------------------------------------------

def test_hnswlib_pads_queries_it_cannot_answer_in_full():
    """Copies of 5 vectors make a graph where some queries reach fewer than k points;
    hnswlib raises for the whole batch, the adapter answers each query as far as it can."""
    rng = np.random.default_rng(0)
    x = np.repeat(rng.standard_normal((5, 8)).astype(np.float32), 200, axis=0)
    index = HnswlibIndex(M=2, ef_construction=2, threads=1, seed=0)
    index.build(x, "l2")
    q, k = x[::20], 300
    index.index_.set_ef(1)
    with pytest.raises(RuntimeError):  # the path under test is really taken
        index.index_.knn_query(q, k=k, num_threads=1)
    ids = index.search(q, k, ef=1)[0]
    assert ids.shape == (len(q), k) and ids.dtype == np.int64
    found = (ids >= 0).sum(axis=1)
    assert found.min() < k and found.max() > 0
    for row, count in zip(ids, found):
        assert (row[:count] >= 0).all() and (row[count:] == -1).all()  # a prefix, then padding
        assert len(set(row[:count])) == count
    full = np.flatnonzero(found == k)
    for i in full:  # queries hnswlib can answer get hnswlib's answer
        expected = index.index_.knn_query(q[i:i + 1], k=k, num_threads=1)[0][0]
        assert np.array_equal(ids[i], expected.astype(np.int64))


# -- IVF and PQ -------------------------------------------------------------------------------

def test_ivf_is_trained_on_the_train_set(xq):
    x, _, _ = xq
    shift = np.float32(50.0)
    index = FaissIVF(nlist=8, threads=1)
    index.build(x, "l2", train=gaussian(500, 32, 9) + shift)
    centroids = faiss.extract_index_ivf(index.index_).quantizer.reconstruct_n(0, 8)
    assert abs(centroids.mean() - shift) < 1.0  # fitted on train, not on the base (mean 0)


def test_ivf_seed_sets_the_kmeans(xq):
    x = xq[0]

    def centroids(cls, seed, **params):
        index = cls(nlist=16, threads=1, seed=seed, **params)
        index.build(x, "l2")
        ivf = faiss.extract_index_ivf(index.index_)
        pq = getattr(faiss.downcast_index(ivf), "pq", None)
        codebooks = faiss.vector_to_array(pq.centroids) if pq is not None else np.zeros(1)
        return np.concatenate([ivf.quantizer.reconstruct_n(0, 16).ravel(), codebooks])
    for cls, params in ((FaissIVF, {}), (FaissIVFPQ, {"m": 8, "nbits": 4})):
        assert np.array_equal(centroids(cls, 1, **params), centroids(cls, 1, **params))
        assert not np.array_equal(centroids(cls, 1, **params), centroids(cls, 2, **params))


def test_ivf_train_set_smaller_than_nlist_is_a_data_error(xq):
    x, _, _ = xq
    with pytest.raises(DataError, match=r"train set has 20 vectors; expected at least 64 "
                                        r"\(one per IVF list, nlist=64\)"):
        FaissIVF(nlist=64).build(x, "l2", train=x[:20])
    with pytest.raises(DataError, match=r"expected at least 256 \(one per PQ centroid"):
        FaissIVFPQ(nlist=4, m=8, nbits=8).build(x[:200], "l2")


def test_ivfpq_checks_m_against_the_dimension(xq):
    with pytest.raises(ConfigError) as info:
        FaissIVFPQ(nlist=4, m=5, nbits=4).build(xq[0], "l2")
    assert str(info.value) == "m: expected a divisor of the dimension 32, got 5"
    with pytest.raises(ConfigError, match="nbits: expected an integer in"):
        FaissIVFPQ(nbits=17)


def test_ivfpq_refinement(xq):
    x, q, truth = xq
    plain = FaissIVFPQ(nlist=4, m=16, nbits=4, threads=1)
    plain.build(x, "l2")
    with pytest.raises(ConfigError, match="k_factor applies only with refine"):
        plain.search(q, 10, k_factor=4)[0]
    base_recall = recall(plain.search(q, 10, nprobe=4)[0], truth)
    for refine in (True, "SQfp16"):
        refined = FaissIVFPQ(nlist=4, m=16, nbits=4, refine=refine, threads=1)
        refined.build(x, "l2")
        assert recall(refined.search(q, 10, nprobe=4, k_factor=50)[0], truth) > \
            max(base_recall + 0.2, 0.95)
    with pytest.raises(ConfigError, match="refine: faiss cannot build"):
        FaissIVFPQ(nlist=4, m=16, nbits=4, refine="Bogus").build(x, "l2")


# -- factory ------------------------------------------------------------------------------------

def test_factory_search_parameters_apply_per_call(xq):
    x, q, truth = xq
    hnsw = FaissFactory(factory="HNSW8,Flat", threads=1)
    hnsw.build(x, "l2")
    low, high = hnsw.search(q, 10, efSearch=10)[0], hnsw.search(q, 10, efSearch=300)[0]
    assert recall(high, truth) > recall(low, truth)
    assert faiss.downcast_index(hnsw.index_).hnsw.efSearch == 16  # restored
    assert np.array_equal(hnsw.search(q, 10)[0], hnsw.search(q, 10, efSearch=16)[0])

    refined = FaissFactory(factory="IVF8,PQ16x4np,RFlat", threads=1)
    refined.build(x, "l2")
    aliased = refined.search(q, 10, nprobe=8, k_factor=50)[0]
    assert np.array_equal(aliased, refined.search(q, 10, nprobe=8, k_factor_rf=50)[0])
    assert recall(aliased, truth) > 0.95
    assert faiss.downcast_index(refined.index_).k_factor == 1


def test_factory_errors_name_the_parameter(xq):
    x, q, _ = xq
    with pytest.raises(ConfigError, match="factory: faiss cannot parse the factory string "
                                          "'IVF8,Bogus'"):
        FaissFactory(factory="IVF8,Bogus")  # refused without data
    with pytest.raises(ConfigError, match="did you mean 'nprobe'"):
        FaissFactory.check_search({"nprob": 4})
    ivf = FaissFactory(factory="IVF8,Flat", threads=1)
    ivf.build(x, "l2")
    with pytest.raises(ConfigError, match="efSearch: not a search parameter of 'IVF8,Flat'; "
                                          "it takes: nprobe"):
        ivf.search(q, 10, nprobe=4, efSearch=32)[0]
    assert faiss.extract_index_ivf(ivf.index_).nprobe == 1  # restored after the error
    with pytest.raises(DataError, match="training on 5 vectors failed"):
        FaissFactory(factory="IVF8,Flat").build(x, "l2", train=x[:5])


def test_factory_quantizer_parameters(xq):
    x, q, truth = xq
    index = FaissFactory(factory="IVF16_HNSW8,Flat", threads=1)
    index.build(x, "l2")
    ids = index.search(q, 10, nprobe=16, quantizer_efSearch=64)[0]
    assert recall(ids, truth) == 1.0


# -- the package stays light ------------------------------------------------------------------

def test_adapters_import_nothing_heavy():
    code = ("import sys, vecbench, vecbench.indexes.faiss.families, "
            "vecbench.indexes.faiss.factory, vecbench.indexes.faiss.compressed, "
            "vecbench.indexes.hnswlib_index; "
            "print(sorted(m for m in ('faiss', 'hnswlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
