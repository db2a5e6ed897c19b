"""The Dataset record and what every loader shares: path resolution, checks, train sampling."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from vecbench.datasets.checks import METRICS  # noqa: F401 (re-exported)
from vecbench.datasets.paths import PathResolver  # noqa: F401 (re-exported)
from vecbench.errors import DataError

#: Train sets larger than this are subsampled: fitting PCA, IVF or a quantizer on more buys little.
DEFAULT_TRAIN_SIZE = 50_000


@dataclass(frozen=True, eq=False)
class Dataset:
    """Vectors to index and to query, and what is known about them.

    ``train`` is what transforms, quantizers and IVF coarse quantizers are fitted on; it never
    contains the queries. ``qrels`` maps query id -> {document id: graded relevance} and is read
    with ``query_ids``/``base_ids`` (row -> id). ``neighbors`` is ground truth shipped with the
    data, which vecbench checks before it trusts it.
    """

    name: str
    base: np.ndarray
    queries: np.ndarray
    metric: str
    train: np.ndarray
    labels: np.ndarray | None = None
    query_labels: np.ndarray | None = None
    qrels: Mapping[str, Mapping[str, float]] | None = None
    base_ids: np.ndarray | None = None
    query_ids: np.ndarray | None = None
    neighbors: np.ndarray | None = None
    version: str = "1"
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.base.shape[1])

    def fingerprint(self) -> str:
        """Content hash of base, queries and metric: the key of every cache derived from them."""
        cached = self.info.get("_fingerprint")
        if cached is None:
            h = hashlib.blake2b(digest_size=16)
            h.update(self.metric.encode())
            for array in (self.base, self.queries):
                h.update(str(array.shape).encode() + str(array.dtype).encode())
                hash_array(h, array)
            cached = h.hexdigest()
            # frozen dataclass: the info dict is the one mutable place for a memo
            self.info["_fingerprint"] = cached  # type: ignore[index]
        return cached


def hash_array(h: "hashlib._Hash", array: np.ndarray, rows_per_block: int = 65536) -> None:
    """Feed ``array`` to ``h`` block by block, so a memory-mapped base is never copied whole."""
    for start in range(0, max(len(array), 1), rows_per_block):
        block = np.ascontiguousarray(array[start:start + rows_per_block])
        h.update(memoryview(block).cast("B"))


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """L2-normalize rows in float32; zero rows stay zero (they are counted by the data guards)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


#: A row counts as unit-norm (and is not normalized again under ``cos``) when its squared norm
#: is within this of 1: float32 rounding of a normalized row stays far inside it, and the
#: rescaling it tolerates changes no ranking but exact ties.
UNIT_NORM_TOLERANCE = 1e-4


def is_unit_norm(x: np.ndarray, rows_per_block: int = 65536) -> bool:
    """Every row of a float32 array has norm 1 (within ``UNIT_NORM_TOLERANCE``) or is zero
    (``normalize_rows`` leaves zero rows zero). One pass in blocks, no copy of ``x``."""
    for start in range(0, len(x), rows_per_block):
        block = x[start:start + rows_per_block]
        squared = np.einsum("ij,ij->i", block, block)
        if not np.all((np.abs(squared - 1.0) <= UNIT_NORM_TOLERANCE) | (squared == 0.0)):
            return False
    return True


def unit_rows(x: np.ndarray) -> np.ndarray:
    """``x`` itself when its rows already are unit-norm (a normalized memory-mapped base stays
    mapped, not copied), else ``normalize_rows(x)``."""
    return x if is_unit_norm(x) else normalize_rows(x)


def check_vectors(name: str, what: str, x: np.ndarray, rows_per_block: int = 65536) -> None:
    """Reject NaN/Inf and non-2-D arrays: an index built on them returns nonsense silently."""
    if x.ndim != 2:
        raise DataError(f"{name}: {what}: expected a 2-D array of vectors, got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise DataError(f"{name}: {what}: expected numeric vectors, got dtype {x.dtype}")
    if not np.issubdtype(x.dtype, np.floating):
        return
    for start in range(0, len(x), rows_per_block):
        block = x[start:start + rows_per_block]
        if not np.isfinite(block).all():
            bad = start + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
            raise DataError(f"{name}: {what}: row {bad} has NaN or Inf values; "
                            "expected finite vectors")


def finish(name: str, base: np.ndarray, queries: np.ndarray, metric: str,
           train: np.ndarray | None = None, seed: int = 0, **extra: Any) -> Dataset:
    """Check, convert and normalize loaded arrays, and build the Dataset.

    Float vectors become float32 C-contiguous (memory maps stay memory maps when already so);
    ``cos`` normalizes rows that are not unit-norm already; a missing train set is a seeded
    sample of base.
    """
    sources = extra.pop("sources", None) or {}
    label = {what: f"{what} ({sources[what]})" if sources.get(what) else what
             for what in ("base", "queries", "train")}
    check_vectors(name, label["base"], base)
    check_vectors(name, label["queries"], queries)
    if base.shape[1] != queries.shape[1]:
        raise DataError(f"{name}: dimension mismatch: {label['base']} has {base.shape[1]} "
                        f"dimensions, {label['queries']} have {queries.shape[1]}; "
                        "expected the same")
    if base.shape[1] == 0:
        raise DataError(f"{name}: {label['base']} has 0 dimensions; expected at least 1")
    if len(base) == 0 or len(queries) == 0:
        raise DataError(f"{name}: expected at least one base vector and one query, "
                        f"got {len(base)} and {len(queries)}")
    base, queries = as_float32(base), as_float32(queries)
    if train is None:
        train = sample_rows(base, DEFAULT_TRAIN_SIZE, seed)
    else:
        check_vectors(name, label["train"], train)
        if train.shape[1] != base.shape[1]:
            raise DataError(f"{name}: dimension mismatch: {label['train']} has "
                            f"{train.shape[1]} dimensions, "
                            f"base has {base.shape[1]}; expected the same")
        train = as_float32(train)
    if metric == "cos":
        base, queries, train = unit_rows(base), unit_rows(queries), unit_rows(train)
    return Dataset(name=name, base=base, queries=queries, metric=metric, train=train, **extra)


def as_float32(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.float32 and x.flags.c_contiguous:
        return x
    return np.ascontiguousarray(x, dtype=np.float32)


def sample_rows(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    """At most ``n`` rows of ``x`` drawn without replacement, in row order (seeded)."""
    if len(x) <= n:
        return x
    rows = np.sort(np.random.default_rng(seed).choice(len(x), size=n, replace=False))
    return np.ascontiguousarray(x[rows])
