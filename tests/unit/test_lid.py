"""Intrinsic dimension: agreement with scikit-dimension, copies, the HNSW graph, the cache."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from vecbench.compute import lid
from vecbench.core.errors import ConfigError, DataError
from cache_damage import edit_cache_entry

skdim = pytest.importorskip("skdim")

TRUE_ID = 8


def subspace_points(n: int, dim: int = 64, intrinsic: int = TRUE_ID, seed: int = 0) -> np.ndarray:
    """Gaussian points in a random ``intrinsic``-d subspace of ``dim``-d: the ID is known."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, intrinsic)))
    return (rng.standard_normal((n, intrinsic)) @ basis.T).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return subspace_points(2000)


@pytest.fixture(scope="module")
def graph(data):
    return lid.knn_graph(data, 20)


def test_exact_graph_excludes_self_and_is_sorted(data, graph):
    distances, ids, info = graph
    assert info["method"] == "exact" and distances.shape == ids.shape == (len(data), 20)
    assert not (ids == np.arange(len(data))[:, None]).any()
    assert (np.diff(distances, axis=1) >= 0).all()
    # distances are Euclidean and belong to the ids returned
    row = 7
    expected = np.linalg.norm(data[ids[row]] - data[row], axis=1)
    np.testing.assert_allclose(distances[row], expected, rtol=1e-5)
    # and they are the true nearest: nothing outside the list is nearer than the k-th
    all_d = np.linalg.norm(data - data[row], axis=1)
    all_d[row] = np.inf
    assert np.sort(all_d)[19] == pytest.approx(distances[row, -1], rel=1e-5)


def test_mle_matches_skdim_on_the_same_neighbours(data, graph):
    distances, ids, _ = graph
    ours = lid.pointwise_lid(distances=distances, k=20)
    theirs = skdim.id.MLE().fit(data, precomputed_knn_arrays=(distances, ids), n_neighbors=20,
                                comb="mle")
    assert np.corrcoef(ours, theirs.dimension_pw_)[0, 1] >= 0.99
    assert abs(ours.mean() - theirs.dimension_pw_.mean()) <= 0.01 * theirs.dimension_pw_.mean()
    assert lid.mle_aggregate(distances, 20) == pytest.approx(theirs.dimension_, rel=1e-6)
    assert abs(np.median(ours) - TRUE_ID) < 1.0


def test_mle_from_vectors_equals_mle_from_their_graph(data, graph):
    np.testing.assert_allclose(lid.pointwise_lid(data, 20), lid.pointwise_lid(distances=graph[0]))


def test_mom_and_mada_match_skdim():
    x = subspace_points(600, seed=3)
    distances, ids, _ = lid.knn_graph(x, 20)
    mom = skdim.id.MOM().fit(x, precomputed_knn_arrays=(distances, ids), n_neighbors=20)
    np.testing.assert_allclose(lid.pointwise_lid(distances=distances, estimator="mom"),
                               mom.dimension_pw_, rtol=1e-9)
    # skdim's MADA computes its own full distance matrix: same neighbours, float32 rounding
    mada = skdim.id.MADA().fit(x, n_neighbors=20)
    np.testing.assert_allclose(lid.pointwise_lid(distances=distances, estimator="mada"),
                               mada.dimension_pw_, rtol=1e-4)


def test_tle_runs_skdim_on_our_neighbours():
    x = subspace_points(500, seed=4)
    distances, ids, _ = lid.knn_graph(x, 20)
    ours = lid.pointwise_lid(x, 20, estimator="tle", distances=distances, ids=ids)
    with np.errstate(all="ignore"):  # skdim's own 0/0 measurements, which it drops
        theirs = skdim.id.TLE().fit(x, precomputed_knn_arrays=(distances, ids), n_neighbors=20)
    np.testing.assert_allclose(ours, theirs.dimension_pw_)
    assert abs(np.median(ours) - TRUE_ID) < 1.5


@pytest.mark.parametrize("intrinsic", [4, 12])
def test_twonn_and_mle_aggregate_near_true_id(intrinsic):
    x = subspace_points(3000, intrinsic=intrinsic, seed=intrinsic)
    estimates = lid.global_estimates(x, k=20)
    assert set(estimates) == {"twonn", "mle", "pca90", "pca95"}
    assert abs(estimates["twonn"] - intrinsic) < 0.15 * intrinsic
    assert abs(estimates["mle"] - intrinsic) < 0.2 * intrinsic
    assert estimates["pca95"] == intrinsic


def test_twonn_equals_skdim_on_its_own_neighbours(data, graph):
    theirs = skdim.id.TwoNN().fit(data).dimension_
    assert lid.twonn(distances=graph[0]) == pytest.approx(theirs, rel=1e-6)


def test_pca_dimension_counts_components_of_known_variances():
    # exact sample variances: orthonormal latent columns scaled, embedded in 64-d
    variances = np.array([50, 20, 10, 8, 5, 3, 2, 1, 0.5, 0.5])  # cumulative 0.5 ... 1.0
    rng = np.random.default_rng(5)
    latent = rng.standard_normal((4000, len(variances)))
    u, _, _ = np.linalg.svd(latent - latent.mean(axis=0), full_matrices=False)
    basis, _ = np.linalg.qr(rng.standard_normal((64, len(variances))))
    x = (u * np.sqrt(variances)) @ basis.T
    cumulative = np.cumsum(variances) / variances.sum()
    for share in (0.45, 0.75, 0.9, 0.95, 0.985):  # off the cumulative steps: float32 safe
        expected = int(np.argmax(cumulative >= share - 1e-12)) + 1
        assert lid.pca_dimension(x, share) == expected


def with_copies(x: np.ndarray) -> np.ndarray:
    """x, then copies of its first 300 rows, then 30 more copies of row 300."""
    return np.concatenate([x, x[:300], np.repeat(x[300:301], 30, axis=0)])


@pytest.mark.parametrize("exact_limit", [10**9, 500])
def test_copies_give_finite_lid_equal_to_their_original(exact_limit):
    base = subspace_points(1200, dim=32, intrinsic=5, seed=6)
    x = with_copies(base)
    distances, ids, info = lid.knn_graph(x, 20, exact_limit=exact_limit)
    assert info["n_distinct"] == len(base) and (distances > 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for estimator in lid.ESTIMATORS:
            values = lid.pointwise_lid(x, 20, estimator=estimator, distances=distances, ids=ids)
            assert np.isfinite(values).all() and (values > 0).all(), estimator
            np.testing.assert_array_equal(values[1200:1500], values[:300])
            assert (values[1500:] == values[300]).all()
    assert np.isfinite(list(lid.global_estimates(x, distances=distances).values())).all()


def test_raw_graph_drops_self_by_id_and_zero_distances():
    base = subspace_points(800, dim=32, intrinsic=5, seed=7)
    x = np.concatenate([base, base[:200]])  # pairs only
    distances, ids, info = lid.knn_graph(x, 20, distinct=False)
    assert info["n_distinct"] == len(x)
    assert not (ids == np.arange(len(x))[:, None]).any()
    # each copy's twin is its nearest neighbour at distance 0, wherever faiss ranked self
    assert (ids[:200, 0] == np.arange(800, 1000)).all() and (distances[:200, 0] == 0).all()
    values = lid.pointwise_lid(distances=distances)
    assert np.isfinite(values).all() and (values > 0).all()


def test_zero_distances_are_dropped_from_precomputed_rows():
    rng = np.random.default_rng(8)
    nonzero = np.sort(rng.uniform(0.5, 2.0, size=(50, 19)), axis=1)
    with_zeros = np.hstack([np.zeros((50, 1)), nonzero])
    for estimator in ("mle", "mom", "mada"):
        np.testing.assert_allclose(
            lid.pointwise_lid(distances=with_zeros, k=20, estimator=estimator),
            lid.pointwise_lid(distances=nonzero, k=19, estimator=estimator))
    degenerate = np.zeros((2, 20))
    degenerate[1, -1] = 1.0  # one non-zero distance: still no spread to measure
    for estimator in ("mle", "mom", "mada"):
        assert (lid.pointwise_lid(distances=degenerate, estimator=estimator) == 0).all()


def test_squared_and_unsorted_distances(graph):
    distances = graph[0]
    expected = lid.pointwise_lid(distances=distances)
    np.testing.assert_allclose(lid.pointwise_lid(distances=distances**2, squared=True), expected)
    shuffled = np.random.default_rng(9).permuted(distances, axis=1)
    np.testing.assert_allclose(lid.pointwise_lid(distances=shuffled), expected)


def test_hnsw_graph_reports_recall_and_gives_lid_close_to_exact():
    x = subspace_points(3000, seed=10)
    exact = lid.pointwise_lid(x, 20)
    distances, ids, info = lid.knn_graph(x, 20, exact_limit=1000, recall_sample=300)
    assert info["method"] == "hnsw" and info["recall_sample"] == 300
    assert 0.95 <= info["sample_recall"] <= 1.0
    assert 0.0 <= info["sample_lid_rel_diff"] < 0.02
    approx = lid.pointwise_lid(distances=distances)
    assert np.corrcoef(exact, approx)[0, 1] > 0.98
    assert abs(approx.mean() - exact.mean()) < 0.02 * exact.mean()
    # a starved graph is caught by the recall check (one thread: a deterministic build)
    poor = lid.knn_graph(x, 20, exact_limit=1000, recall_sample=300, num_threads=1,
                         hnsw_params={"M": 3, "ef_construction": 4, "ef": 1})[2]
    assert poor["sample_recall"] < 0.9 * info["sample_recall"]
    with pytest.raises(ConfigError, match="hnsw_params"):  # cannot even find k+1 neighbours
        lid.knn_graph(x, 20, exact_limit=1000, num_threads=1,
                      hnsw_params={"M": 2, "ef_construction": 1})


def test_cos_metric_is_l2_on_normalized_vectors(data):
    scaled = data * np.random.default_rng(11).uniform(0.5, 3.0, size=(len(data), 1))
    normalized = data / np.linalg.norm(data, axis=1, keepdims=True)
    np.testing.assert_allclose(lid.pointwise_lid(scaled.astype(np.float32), metric="cos"),
                               lid.pointwise_lid(normalized.astype(np.float32)), rtol=1e-4)


def query_distances(queries: np.ndarray, base: np.ndarray) -> np.ndarray:
    return np.sort(np.linalg.norm(queries[:, None, :] - base[None, :, :], axis=2), axis=1)


def test_query_lid_and_relative_contrast():
    x = subspace_points(2200, seed=12)
    base, queries = x[:2000], x[2000:]
    dq = query_distances(queries, base)
    assert abs(np.median(lid.query_lid(dq[:, :20], 20)) - TRUE_ID) < 1.5
    mean = lid.mean_distance_to_base(queries, base, sample=len(base))
    np.testing.assert_allclose(mean, dq.mean(axis=1), rtol=1e-6)
    contrast = lid.relative_contrast(dq[:, :10], mean)
    np.testing.assert_allclose(contrast, dq.mean(axis=1) / dq[:, 0], rtol=1e-6)
    # He et al.: contrast falls as the intrinsic dimension grows
    y = subspace_points(2200, intrinsic=32, seed=12)
    dy = query_distances(y[2000:], y[:2000])
    high = lid.relative_contrast(dy[:, :10], lid.mean_distance_to_base(y[2000:], y[:2000]))
    assert np.median(high) < np.median(contrast)
    # a query equal to a base vector: no nearest-neighbour gap to divide by
    assert lid.relative_contrast(np.array([[0.0, 1.0]]), 2.0)[0] == np.inf


def test_sampled_mean_distance_is_close_to_full(data):
    full = lid.mean_distance_to_base(data[:50], data, sample=len(data))
    sampled = lid.mean_distance_to_base(data[:50], data, sample=500, seed=1)
    assert np.abs(sampled / full - 1).max() < 0.05


def test_cache_hit_miss_and_verification(tmp_path, data, monkeypatch):
    values, info = lid.cached_pointwise_lid("fp1", data, 20, "mle", tmp_path, return_info=True)
    assert info["cache"] == "miss"
    np.testing.assert_array_equal(values, lid.pointwise_lid(data, 20))
    again, info = lid.cached_pointwise_lid("fp1", data, 20, "mle", tmp_path, return_info=True)
    assert info["cache"] == "hit" and info["method"] == "exact"
    np.testing.assert_array_equal(again, values)
    stored = list((tmp_path / "lid").glob("*.npz"))
    assert len(stored) == 1
    # tampered values (digest kept) fail the content digest and are recomputed
    edit_cache_entry(stored[0], lambda arrays: arrays.update(values=arrays["values"] + 1))
    fixed, info = lid.cached_pointwise_lid("fp1", data, 20, "mle", tmp_path, return_info=True)
    assert info["cache"] == "miss"
    np.testing.assert_array_equal(fixed, values)
    # another k, estimator or graph method is another entry
    lid.cached_pointwise_lid("fp1", data, 10, "mle", tmp_path)
    lid.cached_pointwise_lid("fp1", data, 20, "mom", tmp_path)
    assert len(list((tmp_path / "lid").glob("*.npz"))) == 3
    assert (lid.lid_cache_key("fp1", 20, "mle", "exact")
            != lid.lid_cache_key("fp1", 20, "mle", "hnsw"))
    # the default cache folder follows VECBENCH_CACHE
    monkeypatch.setenv("VECBENCH_CACHE", str(tmp_path / "env"))
    lid.cached_pointwise_lid("fp2", data[:100], 5)
    assert len(list((tmp_path / "env" / "lid").glob("*.npz"))) == 1


def test_bad_input_is_reported(data):
    with pytest.raises(ConfigError, match="estimator"):
        lid.pointwise_lid(data, estimator="mle2")
    with pytest.raises(ConfigError, match="k"):
        lid.knn_graph(data, k=1)
    with pytest.raises(ConfigError, match="hnsw_params"):
        lid.knn_graph(data, hnsw_params={"m": 16})
    with pytest.raises(ConfigError, match="metric"):
        lid.knn_graph(data, metric="hamming")
    with pytest.raises(ConfigError, match="tle"):
        lid.pointwise_lid(distances=np.ones((5, 20)), estimator="tle")
    with pytest.raises(ConfigError, match="distances"):
        lid.pointwise_lid()
    with pytest.raises(DataError, match="distinct vectors"):
        lid.knn_graph(np.repeat(data[:5], 10, axis=0), k=20)
    with pytest.raises(DataError, match="non-negative"):
        lid.pointwise_lid(distances=-np.ones((5, 20)))
    with pytest.raises(DataError, match="columns"):
        lid.pointwise_lid(distances=np.ones((5, 10)), k=20)
    bad = data[:100].copy()
    bad[3, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        lid.knn_graph(bad, 5)


def test_import_is_light():
    code = ("import sys, vecbench.compute.lid; "
            "print([m for m in ('faiss', 'hnswlib', 'skdim', 'sklearn') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


