"""MPAD reductions: exact gradients, the transformer contract, and neighbour preservation."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.random_projection import GaussianRandomProjection

from vecbench.core.errors import ConfigError, DataError
from vecbench.core.registry import transforms
from vecbench.transforms.mpad import (MPAD, AxisObjective, MarginObjective, MPADAxiswise,
                                      exact_neighbours, sample_triplets, stalled)

# small budgets keep every fit well under a second
FAST = {"MPAD": dict(n_anchors=100, n_negatives=8, negative_rank=30, max_iter=30),
        "MPADAxiswise": dict(pairs_per_point=10, max_iter=20)}


def small(cls, **params):
    return cls(**{**FAST[cls.__name__], **params})


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((8, 24))
    return (centres[rng.integers(0, 8, 400)] + 0.3 * rng.standard_normal((400, 24))).astype(
        np.float32)


def numeric_gradient(fun, point, step):
    basis = np.eye(point.size)
    return np.array([(fun(point + step * e)[0] - fun(point - step * e)[0]) / (2 * step)
                     for e in basis])


def test_margin_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((90, 9))
    x -= x.mean(axis=0)
    triplets = sample_triplets(x, 5, 25, 6, 20, rng)
    objective = MarginObjective(x, *triplets, penalty=0.7)
    w = 0.4 * rng.standard_normal((3, 9))
    objective.tau = objective.initial_tau(w, 0.3)
    loss, grad = objective(w.ravel())
    assert loss > 0
    np.testing.assert_allclose(grad, numeric_gradient(objective, w.ravel(), 1e-6),
                               rtol=1e-5, atol=1e-7 * np.abs(grad).max())
    # fit runs in float32: the same function to float32 precision
    single = MarginObjective(x, *triplets, penalty=0.7, tau=objective.tau, dtype=np.float32)
    loss32, grad32 = single(w.ravel())
    assert loss32 == pytest.approx(loss, rel=1e-4)
    np.testing.assert_allclose(grad32, grad, atol=1e-4 * np.abs(grad).max())


def test_axis_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((70, 8))
    left = rng.integers(0, 70, 3000)
    right = (left + rng.integers(1, 70, 3000)) % 70
    for tail in ("lower", "upper"):
        objective = AxisObjective(x, left, right, b=2.0, alpha=0.3, tail=tail)
        objective.previous = np.linalg.qr(rng.standard_normal((8, 2)))[0].T
        v = 1.7 * rng.standard_normal(8)  # not unit: checks the normalization's chain rule
        _, grad = objective(v)
        # the tail selection is piecewise constant: a tiny step keeps it, so the derivative is
        # that of the selected set
        np.testing.assert_allclose(grad, numeric_gradient(objective, v, 1e-8),
                                   rtol=1e-4, atol=1e-6 * np.abs(grad).max())
        single = AxisObjective(x, left, right, b=2.0, alpha=0.3, tail=tail, dtype=np.float32)
        single.previous = objective.previous
        np.testing.assert_allclose(single(v)[1], grad, atol=1e-4 * np.abs(grad).max())


def test_exact_neighbours_excludes_self_even_with_duplicates():
    x = np.array([[0.0, 0], [0, 0], [1, 0], [3, 0], [7, 0]])
    ids = exact_neighbours(x, np.array([0, 1, 4]), 2)
    assert ids.tolist() == [[1, 2], [0, 2], [3, 2]]


def test_triplets_mask_uniform_draws_that_are_neighbours(blobs):
    rng = np.random.default_rng(3)
    anchors, pos, neg, valid = sample_triplets(blobs.astype(np.float64), 10, 50, 40, 20, rng)
    assert pos.shape == (50, 10) and neg.shape == valid.shape == (50, 40)
    near = neg[:, :10]  # ranks 11..20: the near misses
    assert not (near[:, :, None] == pos[:, None, :]).any()
    clash = (neg[:, :, None] == pos[:, None, :]).any(axis=2) | (neg == anchors[:, None])
    assert not (valid & clash).any()


@pytest.mark.parametrize("cls", [MPAD, MPADAxiswise])
def test_fit_transform_shapes_dtypes_and_formula(cls, blobs):
    est = small(cls, n_components=5).fit(blobs.astype(np.float64))
    assert est.components_.shape == (5, 24) and est.components_.dtype == np.float32
    assert est.mean_.shape == (24,)
    out = est.transform(blobs[:50])
    assert out.shape == (50, 5) and out.dtype == np.float32
    np.testing.assert_allclose(out, (blobs[:50] - est.mean_) @ est.components_.T, atol=1e-4)
    unit = blobs / np.linalg.norm(blobs, axis=1, keepdims=True)
    np.testing.assert_allclose(est.mean_, unit.mean(axis=0), atol=1e-6)  # fitted on unit rows
    assert small(cls, n_components=0.25).fit(blobs).transform(blobs).shape == (400, 6)
    raw = small(cls, n_components=3, normalize=False).fit(blobs)
    np.testing.assert_allclose(raw.mean_, blobs.mean(axis=0), atol=1e-5)


def test_learned_axes_are_near_orthonormal(blobs):
    # soft constraints: near, not exactly, orthonormal; λ = 0 leaves MPAD's rows free (~0.3 off)
    for est, limit in ((small(MPAD, n_components=6), 0.05),
                       (small(MPADAxiswise, n_components=6, alpha=1.0), 0.1)):
        w = est.fit(blobs).components_.astype(np.float64)
        assert np.abs(w @ w.T - np.eye(6)).max() < limit, type(est).__name__


@pytest.mark.parametrize("cls,params", [(MPAD, {"init": "random"}),
                                        (MPAD, {"optimizer": "adam", "init": "random"}),
                                        (MPADAxiswise, {})])
def test_deterministic_for_a_seed(cls, params, blobs):
    first = small(cls, n_components=4, **params).fit(blobs).components_
    again = small(cls, n_components=4, **params).fit(blobs).components_
    other = small(cls, n_components=4, seed=1, **params).fit(blobs).components_
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_optimizers_lower_the_objective(blobs):
    for optimizer in ("lbfgs", "adam"):
        est = small(MPAD, n_components=4, optimizer=optimizer, init="random").fit(blobs)
        assert est.loss_ < est.initial_loss_, optimizer


def test_stall_rule_compares_the_loss_a_window_apart():
    assert stalled([1.0, 0.99, 0.98, 0.97, 0.96], 0.05, window=2)  # 0.98 -> 0.96: 2% < 5%
    assert not stalled([1.0, 0.99, 0.98, 0.97], 0.05, window=2)  # before two full windows
    assert stalled([1.0, 0.95, 0.9, 0.89, 0.88], 0.05, window=2)  # 0.9 -> 0.88: 2.2% < 5%
    assert not stalled([1.0, 0.95, 0.9, 0.89, 0.80], 0.05, window=2)  # 0.9 -> 0.80: 11%


def test_fit_stops_when_the_loss_stalls(blobs):
    for optimizer in ("lbfgs", "adam"):
        patient = small(MPAD, n_components=4, optimizer=optimizer, tol=0.0, max_iter=40)
        assert patient.fit(blobs).n_iter_ == 40, optimizer  # tol 0: never stalls
        hasty = small(MPAD, n_components=4, optimizer=optimizer, tol=0.5, max_iter=40)
        assert hasty.fit(blobs).n_iter_ < 40, optimizer
        assert hasty.loss_ < hasty.initial_loss_, optimizer


@pytest.mark.parametrize("cls", [MPAD, MPADAxiswise])
def test_sklearn_pipeline_clone_and_params(cls, blobs):
    pipe = Pipeline([("scale", StandardScaler()), ("mpad", small(cls, n_components=6)),
                     ("pca", PCA(n_components=2))])
    assert pipe.fit_transform(blobs).shape == (400, 2)
    est = small(cls, n_components=6, seed=3)
    copy = clone(est)
    assert copy.get_params() == est.get_params() and copy.seed == 3
    assert not hasattr(copy, "components_")
    est.set_params(n_components=2).fit(blobs)
    assert est.transform(blobs).shape == (400, 2)
    assert list(est.get_feature_names_out()) == [f"{est.name}{i}" for i in range(2)]


@pytest.mark.parametrize("cls,name,value", [
    (MPAD, "n_components", 0), (MPAD, "n_components", 1.5), (MPAD, "n_components", "64"),
    (MPAD, "k", 0), (MPAD, "optimizer", "sgd"), (MPAD, "init", "lda"), (MPAD, "penalty", -1.0),
    (MPAD, "temperature", 0.0), (MPAD, "fit_size", 1), (MPAD, "normalize", "yes"),
    (MPADAxiswise, "b", 0.0), (MPADAxiswise, "b", 101), (MPADAxiswise, "tail", "middle"),
    (MPADAxiswise, "alpha", -0.1), (MPADAxiswise, "pairs_per_point", 0)])
def test_bad_parameters_raise_config_error_naming_them(cls, name, value):
    with pytest.raises(ConfigError) as info:
        cls.check_params({name: value})
    assert info.value.path == name and repr(value) in str(info.value)


def test_bad_data_raises_data_error(blobs):
    bad = blobs.copy()
    bad[3, 2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        small(MPAD, n_components=2).fit(bad)
    est = small(MPADAxiswise, n_components=2).fit(blobs)
    with pytest.raises(DataError, match="X has 10 features, .* expecting 24"):
        est.transform(blobs[:, :10])
    with pytest.raises(ConfigError, match="n_components"):
        small(MPAD, n_components=30).fit(blobs)
    with pytest.raises(DataError, match="k \\+ 2 = 12"):
        small(MPAD, n_components=2).fit(blobs[:2])


def test_k_beyond_a_small_fit_sample_is_truncated_with_a_warning(blobs):
    """As umap-learn truncates n_neighbors: k = n - 2 (each anchor needs one point beyond its
    neighbours), said in a warning; a sample large enough for k fits without one."""
    with pytest.warns(UserWarning, match="k=10 .* 12 fit vectors; .* has 8, so k = 6"):
        small(MPAD, n_components=2).fit(blobs[:8])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small(MPAD, n_components=2, k=6).fit(blobs[:8])


def test_registered_names_resolve():
    assert transforms.get("mpad") is MPAD
    assert transforms.get("mpad_axiswise") is MPADAxiswise


def test_importing_the_module_loads_no_faiss():
    code = "import sys, vecbench.transforms.mpad; print('faiss' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def knn_ids(base, queries, k=10):
    import faiss
    index = faiss.IndexFlatL2(base.shape[1])
    index.add(np.ascontiguousarray(base, dtype=np.float32))
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k)[1]


def recall_at_10(base, queries, truth):
    found = knn_ids(base, queries)
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]))


def test_neighbour_preservation_on_digits(record_property):
    """Held-out digits queries: recall@10 in 12 dims vs exact kNN in the original 64 dims."""
    x = load_digits().data.astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # the authors' cosine geometry
    order = np.random.default_rng(0).permutation(len(x))
    base, queries = x[order[300:]], x[order[:300]]
    truth = knn_ids(base, queries)
    scores = {}
    for name, est in [("mpad", MPAD(12, n_anchors=500, max_iter=100)),
                      ("mpad_axiswise", MPADAxiswise(12, pairs_per_point=20)),
                      ("pca", PCA(12, random_state=0))]:
        est.fit(base)
        scores[name] = recall_at_10(est.transform(base), est.transform(queries), truth)
    rp = []
    for seed in range(3):
        projection = GaussianRandomProjection(12, random_state=seed).fit(base)
        rp.append(recall_at_10(projection.transform(base), projection.transform(queries), truth))
    scores["random_projection"] = float(np.mean(rp))
    for name, value in scores.items():
        record_property(f"recall@10_{name}", round(value, 4))
    print("digits recall@10 at 12 dims:", scores)
    assert scores["mpad"] >= scores["random_projection"]
    assert scores["mpad_axiswise"] >= scores["random_projection"]


@pytest.mark.parametrize("spread", [1.0, 1e4])  # 1e4: exponents past EXP_SAFE, the direct form
def test_margin_terms_match_softplus_written_out(spread):
    """The factored kernel (k + J exps per anchor) against softplus and sigmoid per triplet."""
    from vecbench.transforms.margin import margin_terms
    rng = np.random.default_rng(3)
    pos = rng.uniform(0, 1, (40, 5)) * spread
    neg = rng.uniform(0.3, 2, (40, 7)) * spread
    valid = rng.random((40, 7)) > 0.2
    tau = 0.01 * spread
    z = (pos[:, :, None] - neg[:, None, :]) / tau
    softplus = np.logaddexp(0, z) * valid[:, None, :]
    sigma = 1 / (1 + np.exp(-z)) * valid[:, None, :]
    loss, d_pos, d_neg = margin_terms(pos, neg, valid, tau)
    # log of a product of (1 + u): a u below 1e-16 of 1 is lost, an absolute error below 1e-15
    np.testing.assert_allclose(loss, softplus.sum(axis=(1, 2)), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(d_pos, sigma.sum(axis=2), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(d_neg, -sigma.sum(axis=1), rtol=1e-12, atol=1e-300)
