"""Datasets that need no download: scikit-learn's digits, seeded synthetic data, .npy files."""

from __future__ import annotations

import numpy as np

from vecbench.core.params import assign
from vecbench.datasets import checks, formats
from vecbench.datasets.base import Dataset, finish, PathResolver


class Digits:
    """scikit-learn's bundled 8×8 digits (1797 × 64), split into base and queries by a seeded draw."""

    params = checks.digits.params

    def __init__(self, n_queries: int = 200, seed: int = 0, metric: str = "l2"):
        assign(self, locals())

    def load(self, paths: PathResolver | None = None) -> Dataset:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = bunch.data.astype(np.float32)
        rows = np.random.default_rng(self.seed).permutation(len(x))
        query_rows, base_rows = np.sort(rows[:self.n_queries]), np.sort(rows[self.n_queries:])
        return finish("digits", x[base_rows], x[query_rows], self.metric,
                      labels=bunch.target[base_rows], query_labels=bunch.target[query_rows])


class Synthetic:
    """Points in the span of a random orthonormal basis of ``intrinsic_dim`` vectors in ``dim``-d.

    Latent coordinates are Gaussian (around ``n_clusters`` Gaussian centres when > 1, which also
    gives labels); ``noise`` adds isotropic Gaussian noise in all ``dim`` dimensions, which raises
    the intrinsic dimension at small scales. Reproducible bit for bit from ``seed``.
    """

    params = checks.synthetic.params

    def __init__(self, n_base: int = 10_000, n_queries: int = 200, dim: int = 64,
                 intrinsic_dim: int = 8, noise: float = 0.0, n_clusters: int = 1,
                 cluster_std: float = 0.5, n_train: int = 0, seed: int = 0, metric: str = "l2"):
        assign(self, locals())
        checks.synthetic.check(vars(self))

    def load(self, paths: PathResolver | None = None) -> Dataset:
        rng = np.random.default_rng(self.seed)
        # QR of a Gaussian matrix: a uniformly random orthonormal basis of the subspace
        basis, _ = np.linalg.qr(rng.standard_normal((self.dim, self.intrinsic_dim)))
        centres = rng.standard_normal((self.n_clusters, self.intrinsic_dim))
        total = self.n_base + self.n_queries + self.n_train
        labels = rng.integers(0, self.n_clusters, size=total)
        latent = rng.standard_normal((total, self.intrinsic_dim))
        if self.n_clusters > 1:
            latent = centres[labels] + self.cluster_std * latent
        x = latent @ basis.T
        if self.noise > 0:
            x += self.noise * rng.standard_normal(x.shape)
        x = x.astype(np.float32)
        nb, nq = self.n_base, self.n_queries
        name = f"synthetic-d{self.dim}-id{self.intrinsic_dim}"
        return finish(name, x[:nb], x[nb:nb + nq], self.metric,
                      train=x[nb + nq:] if self.n_train else None, seed=self.seed,
                      labels=labels[:nb] if self.n_clusters > 1 else None,
                      query_labels=labels[nb:nb + nq] if self.n_clusters > 1 else None)


class Npy:
    """Vectors in .npy files, memory-mapped: ``base``, ``queries``, optional ``train``, ``labels``."""

    params = checks.npy.params

    def __init__(self, base: str, queries: str, train: str | None = None,
                 labels: str | None = None, metric: str = "l2", name: str | None = None):
        assign(self, locals())

    def load(self, paths: PathResolver | None = None) -> Dataset:
        paths = paths or PathResolver()

        def read(param: str, value: str | None) -> np.ndarray | None:
            if value is None:
                return None
            path = paths.resolve(param, value)
            array = formats.read_npy(path)
            sources[param] = path
            return array

        sources: dict = {}

        base, queries = read("base", self.base), read("queries", self.queries)
        labels = read("labels", self.labels)
        name = self.name or str(self.base).rsplit("/", 1)[-1].removesuffix(".npy")
        return finish(name, base, queries, self.metric, train=read("train", self.train),
                      labels=labels, sources=sources)
