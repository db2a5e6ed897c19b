"""Rescoring: fetch k × oversample candidates from a compressed index, re-rank with finer vectors.

The finer copy is the dataset's original float32 vectors (``with: float32``) or their symmetric
per-dimension int8 quantization (``with: int8``, decoded for the distance computation); its
on-disk size is reported as ``rescore_bytes_per_vector``.
"""

from __future__ import annotations

import numpy as np

from vecbench.errors import ConfigError
from vecbench.params import check_choice, check_int, check_no_extra

RESCORE_WITH = ("float32", "int8")


def check(params: dict) -> dict:
    """Validate one rescore setting (no data): ``oversample`` >= 1 and ``with``."""
    if not isinstance(params, dict):
        raise ConfigError(f"expected a mapping with oversample and with, got {params!r}")
    check_no_extra("rescore", params, ("oversample", "with"))
    return {"oversample": check_int("oversample", params.get("oversample", 1), 1),
            "with": check_choice("with", params.get("with", "float32"), RESCORE_WITH)}


class FinerVectors:
    """The copy candidates are re-ranked with, and what it costs to store."""

    def __init__(self, kind: str, base: np.ndarray, train: np.ndarray):
        self.kind = kind
        if kind == "float32":
            self.vectors = np.ascontiguousarray(base, dtype=np.float32)
            self.bytes_per_vector = 4 * base.shape[1]
        else:
            from vecbench.registry import transforms

            int8 = transforms.get("int8")(symmetric=True, granularity="per_dimension").fit(train)
            self.vectors = int8.inverse_transform(int8.transform(base)).astype(np.float32)
            self.bytes_per_vector = int(int8.bytes_per_vector_)


def rerank(candidates: np.ndarray, queries: np.ndarray, finer: FinerVectors, metric: str,
           k: int) -> np.ndarray:
    """The k nearest of each query's candidates by the finer vectors; -1 padded."""
    safe = np.where(candidates >= 0, candidates, 0)
    vectors = finer.vectors[safe]                       # (nq, c, d)
    q = np.asarray(queries, dtype=np.float32)[:, None, :]
    if metric == "l2":
        distance = ((vectors - q) ** 2).sum(axis=-1)
    else:
        distance = -(vectors * q).sum(axis=-1)
    distance = np.where(candidates >= 0, distance, np.inf)
    take = min(k, candidates.shape[1])
    order = np.argsort(distance, axis=1, kind="stable")[:, :take]
    ids = np.take_along_axis(candidates, order, axis=1)
    if take < k:
        ids = np.pad(ids, ((0, 0), (0, k - take)), constant_values=-1)
    return ids
