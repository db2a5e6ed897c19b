"""Exact search with faiss's flat indexes: the baseline every other index is measured against."""

from __future__ import annotations

from typing import Any

from vecbench.indexes.faiss_build import _FaissIndex


class FlatIndex(_FaissIndex):
    """Brute-force kNN (faiss ``IndexFlatL2`` / ``IndexFlatIP``; ``cos`` = IP on unit vectors).

    No build or search parameters. Exact, so insertion order changes nothing but the order of
    exactly tied results.
    """

    name = "flat"

    def __init__(self, *, threads: int | None = None, seed: int = 0, **extra: Any):
        super().__init__(threads=threads, seed=seed, extra=extra)

    def _factory(self) -> str:
        return "Flat"
