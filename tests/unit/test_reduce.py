"""Reductions: component counts, the JL bound, normalization, fit samples, parameter errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.random_projection import johnson_lindenstrauss_min_dim

from vecbench.core.errors import ConfigError
from vecbench.transforms.reduce import (Autoencoder, KernelPCAReduction, PCAReduction,
                                        RandomProjection, Truncate, UMAPReduction)


def unit_vectors(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_digits().data.astype(np.float32)  # 1797 x 64, a cheap real-looking dataset


@pytest.mark.parametrize("value,expected", [(0.5, 12), (0.25, 6), (1.0, 24), (1, 1), (7, 7),
                                            (0.01, 1)])
def test_n_components_fraction_resolves_against_d_at_fit(value, expected):
    x = unit_vectors(100, 24)
    for cls in (PCAReduction, Truncate, RandomProjection):
        t = cls(n_components=value).fit(x)
        assert t.n_components_ == expected and t.transform(x).shape == (100, expected)


@pytest.mark.parametrize("value", [0, -1, 1.5, 0.0, True, "half", None])
def test_bad_n_components_are_rejected_without_data(value):
    with pytest.raises(ConfigError) as err:
        PCAReduction.check_params({"n_components": value})
    assert err.value.path == "n_components" and "fraction" in err.value.message


def test_more_components_than_dimensions_is_a_config_error_naming_d():
    with pytest.raises(ConfigError, match=r"input dimension \(n_features = 24\), got 30"):
        Truncate(n_components=30).fit(unit_vectors(50, 24))


@pytest.mark.parametrize("kind", ["gaussian", "sparse"])
def test_random_projection_auto_keeps_pairwise_distances_within_eps(kind):
    """Johnson-Lindenstrauss: squared distances within 1 +- eps for (nearly) all pairs."""
    n, d, eps = 200, 2000, 0.3
    x = np.random.default_rng(5).standard_normal((n, d)).astype(np.float32)
    t = RandomProjection(kind=kind, n_components="auto", eps=eps, seed=3).fit(x)
    assert t.n_components_ == johnson_lindenstrauss_min_dim(n, eps=eps) < d
    y = t.transform(x)
    i, j = np.triu_indices(n, 1)
    before = euclidean_distances(x.astype(np.float64), squared=True)[i, j]
    after = euclidean_distances(y.astype(np.float64), squared=True)[i, j]
    ratio = after / before
    assert np.mean((ratio > 1 - eps) & (ratio < 1 + eps)) > 0.99
    assert abs(np.median(ratio) - 1) < eps / 3  # unbiased, not just inside the band


def test_random_projection_auto_beyond_d_is_a_config_error():
    with pytest.raises(ConfigError, match="eps=0.1.*raise eps"):
        RandomProjection(n_components="auto", eps=0.1).fit(unit_vectors(500, 64))
    with pytest.raises(ConfigError):
        PCAReduction.check_params({"n_components": "auto"})  # only random projections have it
    RandomProjection.check_params({"n_components": "auto"})


def test_truncate_keeps_the_leading_dimensions_and_inverse_pads_zeros():
    x = unit_vectors(20, 10)
    t = Truncate(n_components=0.4).fit(x)
    y = t.transform(x)
    np.testing.assert_array_equal(y, x[:, :4])
    back = t.inverse_transform(y)
    np.testing.assert_array_equal(back[:, :4], x[:, :4])
    assert not back[:, 4:].any()


@pytest.mark.parametrize("cls", [PCAReduction, RandomProjection, Truncate])
def test_normalize_renormalizes_output_and_none_means_off(cls):
    x = unit_vectors(200, 32)
    on = cls(n_components=8, normalize=True).fit(x).transform(x)
    np.testing.assert_allclose(np.linalg.norm(on, axis=1), 1.0, rtol=1e-5)
    plain = cls(n_components=8, normalize=False).fit(x).transform(x)
    default = cls(n_components=8).fit(x)
    assert default.normalize is None
    np.testing.assert_array_equal(default.transform(x), plain)
    assert not np.allclose(np.linalg.norm(plain, axis=1), 1.0)
    with pytest.raises(ConfigError, match="true or false"):
        cls.check_params({"normalize": "yes"})
    with pytest.raises(ConfigError, match="true or false"):
        cls(normalize="yes").fit(x)


def test_pca_keeps_most_variance_and_whitening_gives_unit_variance(digits):
    full = PCAReduction(n_components=1.0).fit(digits)
    np.testing.assert_allclose(full.inverse_transform(full.transform(digits)), digits, atol=1e-3)
    half = PCAReduction(n_components=0.5).fit(digits)
    assert half.pca_.explained_variance_ratio_.sum() > 0.9
    white = PCAReduction(n_components=10, whiten=True).fit(digits).transform(digits)
    np.testing.assert_allclose(white.var(axis=0, ddof=1), 1.0, rtol=1e-3)


def test_umap_fits_on_a_seeded_sample_and_transforms_new_points():
    x = unit_vectors(260, 16, seed=2)
    train, queries = x[:220], x[220:]
    t = UMAPReduction(n_components=2, n_neighbors=8, fit_size=150, seed=1).fit(train)
    assert t.umap_.embedding_.shape == (150, 2)
    y = t.transform(queries)
    assert y.shape == (40, 2) and y.dtype == np.float32 and np.isfinite(y).all()
    # umap-learn's own rule, said by vecbench (fit silences umap-learn's warnings)
    with pytest.warns(UserWarning, match="n_neighbors=150 .* has 150, so n_neighbors = 149"):
        wide = UMAPReduction(n_components=2, n_neighbors=150, fit_size=150).fit(train)
    assert wide.umap_.n_neighbors == 149 and wide.n_neighbors == 150


def test_kernel_pca_uses_at_most_fit_size_vectors(digits):
    t = KernelPCAReduction(n_components=8, kernel="cosine", fit_size=300).fit(digits)
    assert t.kpca_.eigenvectors_.shape == (300, 8)
    y = t.transform(digits[:50])
    assert y.shape == (50, 8) and y.dtype == np.float32
    with pytest.raises(ConfigError, match="fit sample size"):
        KernelPCAReduction(n_components=40, fit_size=30).fit(digits)


def test_pca_and_kernel_pca_with_cosine_kernel_agree_on_unit_vectors():
    """On unit vectors the cosine kernel is the linear kernel: the same subspace as PCA."""
    x = unit_vectors(150, 12)
    p = PCAReduction(n_components=3).fit(x).transform(x)
    k = KernelPCAReduction(n_components=3, kernel="cosine", fit_size=150).fit(x).transform(x)
    for a, b in zip(p.T, k.T):  # components agree up to sign
        assert abs(np.corrcoef(a, b)[0, 1]) > 0.999


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_autoencoder_learns_to_reconstruct_through_its_bottleneck(digits, activation):
    t = Autoencoder(hidden=[32], n_components=12, epochs=60, activation=activation,
                    seed=0).fit(digits)
    codes = t.transform(digits)
    assert codes.shape == (len(digits), 12) and codes.dtype == np.float32
    assert len(t.encoder_) == 2 and len(t.decoder_) == 2
    error = ((t.inverse_transform(codes) - digits) ** 2).sum()
    baseline = ((digits - digits.mean(0)) ** 2).sum()  # predicting the mean
    assert error < 0.5 * baseline


def test_autoencoder_rejects_bad_hidden_layers():
    with pytest.raises(ConfigError) as err:
        Autoencoder.check_params({"hidden": [64, 0]})
    assert err.value.path == "hidden[1]"
    with pytest.raises(ConfigError, match="hidden: expected a list of integers >= 1, got 64"):
        Autoencoder.check_params({"hidden": 64})
