"""Exact search with faiss's flat indexes: the baseline every other index is measured against."""

from __future__ import annotations

from typing import Any

import numpy as np

from vecbench.indexes.base import IndexBase, faiss_serialized_size, omp_threads


class FlatIndex(IndexBase):
    """Brute-force kNN (faiss ``IndexFlatL2`` / ``IndexFlatIP``; ``cos`` = IP on normalized copies).

    No build or search parameters. Exact, so insertion order changes nothing but the order of
    exactly tied results.
    """

    name = "flat"

    def __init__(self, *, threads: int | None = None, seed: int = 0, **extra: Any):
        super().__init__(threads=threads, seed=seed, extra=extra)

    def build(self, x: Any, metric: str, *, train: Any = None) -> None:
        import faiss

        x = self._start_build(x, metric)
        flat = faiss.IndexFlatL2 if self.metric_ == "l2" else faiss.IndexFlatIP
        index = flat(self.dim_)
        with omp_threads(self.n_threads):
            index.add(x)
        self.index_ = index

    def search(self, q: Any, k: int, **search_params: Any) -> np.ndarray:
        q, k, _ = self._start_search(q, k, search_params)
        with omp_threads(self.n_threads):
            _, ids = self.index_.search(q, k)
        return ids

    def _serialized_size(self) -> int:
        return faiss_serialized_size(self.index_)
