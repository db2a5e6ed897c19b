"""faiss binary indexes over packed sign bits, searched by Hamming distance.

They index vecbench's ``binary`` codes natively: uint8 rows of ``np.packbits`` bits (first
dimension in the high bit), ceil(d / 8) bytes per vector; a uint8 array is always read as such
codes. Given float vectors (any other dtype) they binarize them themselves, exactly as the
``binary`` quantizer does (bit = x > 0, packed), so they also run on raw embeddings and in the
index conformance suite. Queries may be codes or floats of the same kind as the base.

The distance is Hamming whatever ``metric`` says: the metric is checked and recorded, but
``l2``, ``ip`` and ``cos`` (normalizing never changes a sign) give the same codes and results.
Hamming distances take few values (0..bits), so results at the k-th distance are often tied;
which of the tied vectors is returned is faiss's choice.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vecbench.errors import DataError
from vecbench.indexes.base import (BuildReport, check_k, check_metric, faiss_serialized_size,
                                   omp_threads)
from vecbench.indexes.faiss_build import _FaissIndex, faiss_message
from vecbench.indexes.faiss_index import FaissHNSW, FaissIVF


def binarize(x: np.ndarray) -> np.ndarray:
    """Sign bits packed eight per byte: the codes of vecbench's ``binary`` quantizer."""
    return np.packbits(x > 0, axis=1)


class _FaissBinary(_FaissIndex):
    """Build and search of a faiss ``IndexBinary`` (the parameters come from the float adapter
    listed after this class in a subclass's bases)."""

    accepts = frozenset({"binary"})

    def build(self, x: Any, metric: str, *, train: Any = None,
              threads: int | None = None) -> BuildReport:
        import faiss

        threads = self._build_threads(threads)
        self.index_ = None  # a failed build leaves no half-built index behind
        self.metric_ = check_metric(metric)
        self.dim_ = self.code_bytes_ = None
        codes, float_dim = self._codes(x, "base vectors")
        if len(codes) == 0:
            raise DataError(f"{self.name}: expected at least one base vector, got 0")
        self.dim_, self.code_bytes_, self.ntotal_ = float_dim, codes.shape[1], len(codes)
        self._nbytes = None
        self._parameter_objects = {}
        with omp_threads(threads):
            index = self._new_index(faiss, 8 * self.code_bytes_)
            if not index.is_trained:
                train_codes = codes if train is None else self._codes(train, "train vectors")[0]
                need, why = self._min_train()
                if len(train_codes) < need:
                    raise DataError(f"{self.name}: train set has {len(train_codes)} vectors; "
                                    f"expected at least {need} ({why})")
                try:
                    index.train(train_codes)
                except RuntimeError as exc:
                    raise DataError(f"{self.name}: training on {len(train_codes)} vectors "
                                    f"failed: {faiss_message(exc)}") from None
            self._add(index, codes)
        self.index_ = index
        # given floats, the index binarizes them itself: it compresses
        return self._report(self._used_threads(threads), float_input=float_dim is not None)

    def _details(self) -> dict:
        return {"bits": 8 * self.code_bytes_}

    def search(self, q: Any, k: int, **search_params: Any) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        if self.index_ is None:
            raise RuntimeError(f"{self.name}: search() called before build()")
        if type(k) is not int or k < 1:
            k = check_k(k)
        params = self.check_search(search_params)
        codes, _ = self._codes(q, "queries")
        faiss_params = self._search_parameters(faiss, params, k)
        with omp_threads(self.n_threads):
            distances, ids = self.index_.search(codes, k, params=faiss_params)
        return ids, distances.astype(np.float32)  # Hamming distances

    def _codes(self, x: Any, what: str) -> tuple[np.ndarray, int | None]:
        """Packed codes of ``x`` (codes as given, floats binarized) and its float dimension
        (None for codes), checked against the built index."""
        x = np.asarray(x)
        if x.ndim != 2:
            raise DataError(f"{self.name}: {what}: expected a 2-D array, got shape {x.shape}")
        float_dim = None
        if x.dtype == np.uint8:
            codes = x
        else:
            float_dim = int(x.shape[1])
            if self.dim_ is not None and float_dim != self.dim_:
                raise DataError(f"{self.name}: {what}: expected vectors of dimension "
                                f"{self.dim_}, got {float_dim}")
            codes = binarize(x)
        if self.code_bytes_ is not None and codes.shape[1] != self.code_bytes_:
            raise DataError(f"{self.name}: {what}: expected packed codes of {self.code_bytes_} "
                            f"bytes (a {x.dtype} array of shape (n, {self.code_bytes_})), got "
                            f"{codes.shape[1]} bytes from shape {x.shape}")
        return np.ascontiguousarray(codes), float_dim

    def _serialized_size(self) -> int:
        return faiss_serialized_size(self.index_, binary=True)


class FaissBinaryFlat(_FaissBinary):
    """faiss ``IndexBinaryFlat``: exact Hamming kNN. No build or search parameters."""

    name = "faiss_binary_flat"
    params = _FaissBinary.params

    def __init__(self, *, threads: int | None = None, seed: int = 0, **extra: Any):
        super().__init__(threads=threads, seed=seed, extra=extra)

    def _new_index(self, faiss: Any, bits: int) -> Any:
        return faiss.IndexBinaryFlat(bits)


class FaissBinaryHNSW(_FaissBinary, FaissHNSW):
    """faiss ``IndexBinaryHNSW``. Build: ``M``, ``ef_construction``, ``keep_order``, search:
    ``ef``, all as ``faiss_hnsw`` (one vector per add call keeps the insertion order)."""

    name = "faiss_binary_hnsw"

    def _new_index(self, faiss: Any, bits: int) -> Any:
        index = faiss.IndexBinaryHNSW(bits, self.M)
        index.hnsw.efConstruction = self.ef_construction
        index.hnsw.rng = faiss.RandomGenerator(self.seed)
        return index


class FaissBinaryIVF(_FaissBinary, FaissIVF):
    """faiss ``IndexBinaryIVF`` with a flat Hamming coarse quantizer. Build: ``nlist`` (k-means
    on the bits, seeded by ``seed``, fitted on ``train`` binarized, else on the base codes);
    search: ``nprobe``, both as ``faiss_ivf``."""

    name = "faiss_binary_ivf"

    def _new_index(self, faiss: Any, bits: int) -> Any:
        # the factory's index owns its coarse quantizer (no SWIG lifetime to manage)
        index = faiss.index_binary_factory(bits, f"BIVF{self.nlist}")  # already an IndexBinaryIVF
        index.cp.seed = self.seed % (2**31 - 1)  # faiss's k-means seed is a C int
        return index
