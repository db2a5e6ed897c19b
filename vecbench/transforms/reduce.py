"""Dimensionality reductions.

Reductions are fitted on the dataset's ``train`` vectors (never on the queries) and output
float32. ``n_components`` is an integer (dimensions kept) or a fraction in (0, 1] of the input
dimension d, resolved at fit time: ``1`` keeps one dimension, ``1.0`` keeps all d.

``normalize`` (all reductions): L2-normalize the output rows. ``None`` (the default) means "the
runner decides": the runner sets it to true when the dataset's metric is cos (a projection of
unit vectors is no longer unit-norm, and PCA also centres) and leaves it off otherwise. A
reduction built outside the runner treats None as false.

The scikit-learn estimators are used where they exist (PCA, random projections, KernelPCA,
MLPRegressor for the autoencoder); UMAP comes from umap-learn, imported only when fitted.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.utils.validation import check_is_fitted

from vecbench.core.vectors import normalize_rows
from vecbench.core.errors import ConfigError
from vecbench.transforms import checks
from vecbench.transforms.base import TransformBase


def resolve_components(value, d: int, limit: int | None = None, limit_name: str = "") -> int:
    """Dimensions kept for ``n_components`` on d-dimensional input (at most d, and ``limit``).

    An integer above d raises, as scikit-learn's PCA does (a grid over dimensions must not
    record a clipped unit under the asked-for number); the defaults are fractions, so an
    estimator built with them fits any input. The message names ``n_features`` the way
    scikit-learn's checks expect of an estimator that refuses an input's width.
    """
    k = max(1, int(round(float(value) * d))) if not isinstance(value, numbers.Integral) \
        else int(value)
    if k > d:
        raise ConfigError(f"expected at most the input dimension (n_features = {d}), "
                          f"got {value!r}", "n_components")
    if limit is not None and k > limit:
        raise ConfigError(f"expected at most {limit} ({limit_name}), got {value!r} -> {k}",
                          "n_components")
    return k


def seeded_sample(x: np.ndarray, size: int, seed: int) -> np.ndarray:
    """At most ``size`` rows of x, drawn without replacement with ``seed``, in original order."""
    if len(x) <= size:
        return x
    rows = np.sort(np.random.default_rng(seed).choice(len(x), size, replace=False))
    return x[rows]


class Reduction(TransformBase):
    """Shared checks and output handling of the reductions."""

    def _output(self, y) -> np.ndarray:
        y = np.ascontiguousarray(y, dtype=np.float32)
        return normalize_rows(y) if self.normalize else y


class PCAReduction(Reduction):
    """Principal components (scikit-learn PCA), optionally whitened."""

    name = "pca"
    params = checks.pca.params

    def __init__(self, *, n_components=0.5, whiten=False, normalize=None, seed=0):
        self.n_components = n_components
        self.whiten = whiten
        self.normalize = normalize
        self.seed = seed

    def fit(self, x, y=None) -> "PCAReduction":
        from sklearn.decomposition import PCA
        self._check_params()
        x = self._validate(x, reset=True)
        k = resolve_components(self.n_components, x.shape[1], len(x), "the number of fit vectors")
        self.pca_ = PCA(n_components=k, whiten=self.whiten, random_state=self.seed).fit(x)
        self.n_features_in_, self.n_components_ = x.shape[1], k
        return self

    def transform(self, x) -> np.ndarray:
        check_is_fitted(self, "pca_")
        return self._output(self.pca_.transform(self._validate(x, reset=False)))

    def inverse_transform(self, y) -> np.ndarray:
        check_is_fitted(self, "pca_")
        return self.pca_.inverse_transform(np.asarray(y, np.float32)).astype(np.float32)


class RandomProjection(Reduction):
    """Gaussian or sparse (Achlioptas / Li) random projection, scikit-learn's estimators.

    ``n_components='auto'`` picks the Johnson-Lindenstrauss dimension that keeps squared
    pairwise distances of the fit vectors within 1 +- ``eps`` with high probability.
    """

    name = "random_projection"
    params = checks.random_projection.params

    def __init__(self, *, kind="gaussian", n_components=0.5, eps=0.1, normalize=None, seed=0):
        self.kind = kind
        self.n_components = n_components
        self.eps = eps
        self.normalize = normalize
        self.seed = seed

    def fit(self, x, y=None) -> "RandomProjection":
        from sklearn.random_projection import (GaussianRandomProjection, SparseRandomProjection,
                                               johnson_lindenstrauss_min_dim)
        self._check_params()
        x = self._validate(x, reset=True)
        n, d = x.shape
        if self.n_components == "auto":
            k = int(johnson_lindenstrauss_min_dim(n, eps=self.eps))
            if k > d:
                raise ConfigError(f"'auto' with eps={self.eps} on {n} fit vectors needs {k} "
                                  f"dimensions, more than the input's {d}; raise eps or give a "
                                  "number", "n_components")
        else:
            k = resolve_components(self.n_components, d)
        cls = GaussianRandomProjection if self.kind == "gaussian" else SparseRandomProjection
        extra = {} if self.kind == "gaussian" else {"dense_output": True}
        self.projection_ = cls(n_components=k, random_state=self.seed, **extra).fit(x)
        self.n_features_in_, self.n_components_ = d, k
        return self

    def transform(self, x) -> np.ndarray:
        check_is_fitted(self, "projection_")
        return self._output(self.projection_.transform(self._validate(x, reset=False)))

    def inverse_transform(self, y) -> np.ndarray:
        """Least-squares reconstruction through the pseudo-inverse of the projection, computed
        on first use (an SVD of k x d: seconds for large d, and the runner rarely needs it)."""
        check_is_fitted(self, "projection_")
        if not hasattr(self, "inverse_components_"):
            components = self.projection_.components_
            dense = components.toarray() if hasattr(components, "toarray") else components
            self.inverse_components_ = np.linalg.pinv(dense).astype(np.float32)
        return np.asarray(y, np.float32) @ self.inverse_components_.T


class Truncate(Reduction):
    """The first ``n_components`` dimensions (Matryoshka-style embeddings put the most in front)."""

    name = "truncate"
    params = checks.truncate.params

    def __init__(self, *, n_components=0.5, normalize=None):
        self.n_components = n_components
        self.normalize = normalize

    def fit(self, x, y=None) -> "Truncate":
        self._check_params()
        x = self._validate(x, reset=True)
        self.n_features_in_ = x.shape[1]
        self.n_components_ = resolve_components(self.n_components, x.shape[1])
        return self

    def transform(self, x) -> np.ndarray:
        check_is_fitted(self, "n_components_")
        return self._output(self._validate(x, reset=False)[:, :self.n_components_])

    def _feature_names(self, input_names: np.ndarray) -> list[str]:
        """The kept input features' own names (``x0, x1, ...`` without names)."""
        return list(input_names[:self.n_components_])

    def inverse_transform(self, y) -> np.ndarray:
        """Zeros in the dropped dimensions."""
        check_is_fitted(self, "n_components_")
        y = np.asarray(y, np.float32)
        out = np.zeros((len(y), self.n_features_in_), np.float32)
        out[:, :y.shape[1]] = y
        return out


class UMAPReduction(Reduction):
    """UMAP (umap-learn), fitted on a seeded sample of at most ``fit_size`` vectors.

    Base and query vectors alike go through ``transform`` (UMAP's out-of-sample embedding), so
    the sample's own fitted coordinates are never mixed with transformed ones.
    """

    name = "umap"
    METRICS = ("euclidean", "cosine", "manhattan", "correlation")
    params = checks.umap.params

    def __init__(self, *, n_components=0.5, n_neighbors=15, min_dist=0.1, metric="euclidean",
                 fit_size=10_000, normalize=None, seed=0):
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.fit_size = fit_size
        self.normalize = normalize
        self.seed = seed

    def fit(self, x, y=None) -> "UMAPReduction":
        import umap
        self._check_params()
        x = self._validate(x, reset=True, min_samples=3)
        sample = seeded_sample(x, self.fit_size, self.seed)
        k = resolve_components(self.n_components, x.shape[1], len(sample) - 2,
                               "the fit sample size minus 2")
        self.umap_ = umap.UMAP(n_components=k, n_neighbors=self._neighbours_for(len(sample)),
                               min_dist=self.min_dist, metric=self.metric,
                               random_state=self.seed)
        with warnings.catch_warnings():  # "n_jobs overridden by random_state": deterministic
            warnings.simplefilter("ignore", UserWarning)
            self.umap_.fit(sample)
        self.n_features_in_, self.n_components_ = x.shape[1], k
        return self

    def _neighbours_for(self, n: int) -> int:
        """``n_neighbors``, or n − 1 on a smaller fit sample, with a warning: umap-learn's own
        rule (it truncates and warns), said here because fit silences umap-learn's warnings."""
        if self.n_neighbors < n:
            return self.n_neighbors
        warnings.warn(f"umap: n_neighbors={self.n_neighbors} needs more than {self.n_neighbors} "
                      f"fit vectors; the fit sample has {n}, so n_neighbors = {n - 1}",
                      UserWarning, stacklevel=3)
        return n - 1

    def transform(self, x) -> np.ndarray:
        check_is_fitted(self, "umap_")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return self._output(self.umap_.transform(self._validate(x, reset=False)))


class KernelPCAReduction(Reduction):
    """Kernel PCA (scikit-learn), fitted on a seeded sample of at most ``fit_size`` vectors
    (its cost grows with the square of the sample in memory, the cube in time)."""

    name = "kernel_pca"
    params = checks.kernel_pca.params

    def __init__(self, *, n_components=0.5, kernel="cosine", fit_size=2000, normalize=None,
                 seed=0):
        self.n_components = n_components
        self.kernel = kernel
        self.fit_size = fit_size
        self.normalize = normalize
        self.seed = seed

    def fit(self, x, y=None) -> "KernelPCAReduction":
        from sklearn.decomposition import KernelPCA
        self._check_params()
        x = self._validate(x, reset=True, min_samples=2)
        sample = seeded_sample(x, self.fit_size, self.seed)
        k = resolve_components(self.n_components, x.shape[1], len(sample) - 1,
                               "the fit sample size minus 1")
        self.kpca_ = KernelPCA(n_components=k, kernel=self.kernel, random_state=self.seed)
        self.kpca_.fit(sample)
        self.n_features_in_, self.n_components_ = x.shape[1], k
        return self

    def transform(self, x) -> np.ndarray:
        check_is_fitted(self, "kpca_")
        return self._output(self.kpca_.transform(self._validate(x, reset=False)))


_ACTIVATIONS = {
    "relu": lambda h: np.maximum(h, 0, out=h),
    "tanh": lambda h: np.tanh(h, out=h),
    "identity": lambda h: h,
}


class Autoencoder(Reduction):
    """A dense autoencoder d -> hidden... -> n_components -> ...hidden -> d, trained to
    reconstruct its (centred, scaled) input with scikit-learn's MLPRegressor; the encoder half
    (the layers up to the bottleneck) transforms. MLPRegressor applies one activation to every
    hidden layer, the bottleneck included, hence tanh by default (scifact MiniLM, 384 -> 192:
    recall@10 0.65 with tanh, 0.60 with relu, whose bottleneck units can die). Without torch,
    the forward pass is plain numpy.
    """

    name = "autoencoder"
    list_params = ("hidden",)  # experiment YAML: a list of sizes is one value, not a grid axis
    params = checks.autoencoder.params

    def __init__(self, *, n_components=0.5, hidden=(512, 256), activation="tanh", epochs=20,
                 fit_size=10_000, normalize=None, seed=0):
        self.n_components = n_components
        self.hidden = hidden
        self.activation = activation
        self.epochs = epochs
        self.fit_size = fit_size
        self.normalize = normalize
        self.seed = seed

    def fit(self, x, y=None) -> "Autoencoder":
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor
        self._check_params()
        x = self._validate(x, reset=True)
        k = resolve_components(self.n_components, x.shape[1])
        sample = seeded_sample(x, self.fit_size, self.seed)
        # Embedding components are small (~1/sqrt(d)): standardize so Adam's defaults fit.
        self.mean_ = sample.mean(axis=0)
        self.scale_ = np.float32(1.0 / max(float(sample.std()), 1e-12))
        z = (sample - self.mean_) * self.scale_
        layers = (*self.hidden, k, *reversed(self.hidden))
        net = MLPRegressor(hidden_layer_sizes=layers, activation=self.activation,
                           max_iter=self.epochs, random_state=self.seed)
        with warnings.catch_warnings():  # stopping after `epochs` is the point, not a problem
            warnings.simplefilter("ignore", ConvergenceWarning)
            net.fit(z, z)
        weights = [(w.astype(np.float32), b.astype(np.float32))
                   for w, b in zip(net.coefs_, net.intercepts_)]
        self.encoder_ = weights[:len(self.hidden) + 1]
        self.decoder_ = weights[len(self.hidden) + 1:]
        self.loss_ = float(net.loss_)
        self.n_features_in_, self.n_components_ = x.shape[1], k
        return self

    def _forward(self, h: np.ndarray, layers, last_activation: bool) -> np.ndarray:
        act = _ACTIVATIONS[self.activation]
        for i, (w, b) in enumerate(layers):
            h = h @ w
            h += b
            if last_activation or i < len(layers) - 1:
                h = act(h)
        return h

    def transform(self, x) -> np.ndarray:
        check_is_fitted(self, "encoder_")
        z = (self._validate(x, reset=False) - self.mean_) * self.scale_
        return self._output(self._forward(z, self.encoder_, last_activation=True))

    def inverse_transform(self, y) -> np.ndarray:
        """The decoder half: reconstructions of the input from bottleneck codes."""
        check_is_fitted(self, "decoder_")
        z = self._forward(np.asarray(y, np.float32), self.decoder_, last_activation=False)
        return (z / self.scale_ + self.mean_).astype(np.float32)
