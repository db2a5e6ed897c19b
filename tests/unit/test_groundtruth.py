import numpy as np
import pytest

from vecbench.compute import groundtruth, recall
from vecbench.compute.groundtruth import exact_knn, ground_truth
from cache_damage import edit_cache_entry


def brute(base, queries, k, metric):
    if metric == "l2":
        d = ((queries[:, None, :] - base[None]) ** 2).sum(-1)
        return np.argsort(d, axis=1, kind="stable")[:, :k]
    s = queries @ base.T
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_blockwise_equals_brute_force(metric):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((1000, 16)).astype(np.float32)
    queries = rng.standard_normal((30, 16)).astype(np.float32)
    truth = exact_knn(base, queries, 20, metric, block_rows=97)  # many uneven blocks
    assert truth.ids.dtype == np.int64 and truth.ids.shape == (30, 20)
    np.testing.assert_array_equal(truth.ids, brute(base, queries, 20, metric))
    whole = exact_knn(base, queries, 20, metric)
    np.testing.assert_allclose(truth.distances, whole.distances, rtol=1e-5)


def test_memory_mapped_base_and_padding(tmp_path):
    rng = np.random.default_rng(2)
    base = rng.standard_normal((50, 8)).astype(np.float32)
    np.save(tmp_path / "b.npy", base)
    mapped = np.load(tmp_path / "b.npy", mmap_mode="r")
    truth = exact_knn(mapped, base[:3], 60, "l2", block_rows=16)
    assert (truth.ids[:, 50:] == -1).all() and (truth.ids[:, 0] == [0, 1, 2]).all()


def test_cache_is_used_and_verified(tmp_path):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((400, 8)).astype(np.float32)
    queries = rng.standard_normal((10, 8)).astype(np.float32)
    first = ground_truth(base, queries, "l2", "fp1", k=10, cache=tmp_path)
    assert first.depth == 100  # always at least 100 deep
    files = list((tmp_path / "groundtruth").glob("*.npz"))
    assert len(files) == 1
    # corrupt the cached ids: the checksum must catch it and the result must be recomputed
    edit_cache_entry(files[0], lambda arrays: arrays.update(ids=arrays["ids"][:, ::-1].copy()))
    again = ground_truth(base, queries, "l2", "fp1", k=10, cache=tmp_path)
    np.testing.assert_array_equal(again.ids, first.ids)


def test_shipped_mismatch_counts_wrong_rows_but_not_ties():
    base = np.array([[0.0], [1.0], [-1.0], [5.0]], np.float32)  # 1 and -1 tie for query 0
    queries = np.array([[0.0], [5.0]], np.float32)
    truth = exact_knn(base, queries, 2, "l2")
    other = 2 if truth.ids[0, 1] == 1 else 1
    tie_swapped = np.array([[0, other], [3, 1]])
    assert recall.shipped_mismatch(tie_swapped, truth, base, queries, 2) == 0.0
    same = truth.ids.copy()
    assert recall.shipped_mismatch(same, truth, base, queries, 2) == 0.0
    wrong = same.copy()
    wrong[0] = [0, 3]
    assert recall.shipped_mismatch(wrong, truth, base, queries, 2) == 0.5


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_converted_base_and_queries_go_blockwise(monkeypatch, metric):
    """A float16 base and strided queries are converted a block at a time: same answer."""
    rng = np.random.default_rng(4)
    base = rng.standard_normal((1000, 16)).astype(np.float16)
    queries = rng.standard_normal((40, 32)).astype(np.float32)[:, ::2]  # not C-contiguous
    expected = brute(base.astype(np.float32), np.ascontiguousarray(queries), 20, metric)
    monkeypatch.setattr(groundtruth, "BASE_BLOCK_BYTES", 128 * 16 * 4)  # 8 base blocks
    truth = exact_knn(base, queries, 20, metric)
    np.testing.assert_array_equal(truth.ids, expected)
    monkeypatch.setattr(groundtruth, "QUERY_BLOCK_ROWS", 7)  # query blocks too
    np.testing.assert_array_equal(exact_knn(base, queries, 20, metric).ids, expected)
