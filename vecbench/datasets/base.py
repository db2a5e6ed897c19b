"""The Dataset record and what every loader shares: path resolution, checks, train sampling."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from vecbench.core.errors import DataError
from vecbench.core.vectors import (BLOCK_BYTES, as_float32, available_memory, check_vectors,
                                   hash_array, is_mapped, is_unit_norm, normalize_rows,
                                   row_blocks, unit_rows)
from vecbench.datasets.paths import PathResolver  # noqa: F401 (re-exported)

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


def finish(name: str, base: np.ndarray, queries: np.ndarray, metric: str,
           train: np.ndarray | None = None, seed: int = 0, **extra: Any) -> Dataset:
    """Check, convert and normalize loaded arrays, and build the Dataset.

    A base read from a file through a memory map (.npy, .fbin/.u8bin/.i8bin, .fvecs/.bvecs,
    contiguous HDF5) stays that memory map, in the file's element type and layout: consumers
    convert it to float32 block by block (ground truth, fingerprint, checks) or once where an
    in-memory copy is unavoidable (encoding for an index). An in-memory base, the queries and the
    train set become float32 C-contiguous (memory maps of float32 stay memory maps). A missing
    train set is a seeded sample of base. ``cos`` normalizes rows that are not unit-norm
    already (see :func:`cos_base` and :func:`unit_rows`).
    """
    sources = extra.pop("sources", None) or {}
    label = {what: f"{what} ({sources[what]})" if sources.get(what) else what
             for what in ("base", "queries", "train", *SIDE_ARRAYS)}
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
    base = base if is_mapped(base) else as_float32(base)
    queries = as_float32(queries)
    if train is None:
        train = as_float32(sample_rows(base, DEFAULT_TRAIN_SIZE, seed))
    else:
        check_vectors(name, label["train"], train)
        if train.shape[1] != base.shape[1]:
            raise DataError(f"{name}: dimension mismatch: {label['train']} has "
                            f"{train.shape[1]} dimensions, "
                            f"base has {base.shape[1]}; expected the same")
        train = as_float32(train)
    check_side_arrays(name, len(base), len(queries), extra, label)
    if metric == "cos":
        base = cos_base(name, label["base"], base)
        queries, train = unit_rows(queries), unit_rows(train)
    return Dataset(name=name, base=base, queries=queries, metric=metric, train=train, **extra)


#: Arrays beside the vectors, each with one row per base vector or per query.
SIDE_ARRAYS = {"labels": "base", "base_ids": "base", "query_labels": "queries",
               "query_ids": "queries", "neighbors": "queries"}


def check_side_arrays(name: str, n_base: int, n_queries: int, extra: dict,
                      label: dict) -> None:
    """Every array beside the vectors fits them, checked here once for every loader: a labels
    file of 10 rows for a 2,000-row base would otherwise crash a unit (or, indexed past its
    end by a permutation, mislabel rows) long after the load."""
    rows = {"base": n_base, "queries": n_queries}
    for what, of in SIDE_ARRAYS.items():
        value = extra.get(what)
        if value is None:
            continue
        shape = np.shape(value)
        wanted = "(n_queries, k)" if what == "neighbors" else f"({rows[of]},)"
        if len(shape) != (2 if what == "neighbors" else 1) or shape[0] != rows[of]:
            raise DataError(f"{name}: {label[what]} has shape {shape}; expected {wanted}, one "
                            f"row per {'base vector' if of == 'base' else 'query'} "
                            f"({rows[of]} {of} rows)")
    neighbors = extra.get("neighbors")
    if neighbors is not None and np.size(neighbors):
        bad = (np.asarray(neighbors) < -1) | (np.asarray(neighbors) >= n_base)
        if bad.any():
            raise DataError(f"{name}: {label['neighbors']}: neighbour id "
                            f"{int(np.asarray(neighbors)[bad][0])} is out of range; expected -1 "
                            f"or a base row in [0, {n_base})")
    qrels, query_ids = extra.get("qrels"), extra.get("query_ids")
    if qrels is not None:
        if query_ids is None or extra.get("base_ids") is None:
            raise DataError(f"{name}: qrels without query and document ids; expected both, to "
                            "tie judgments to rows")
        unknown = set(map(str, qrels)) - set(map(str, query_ids))
        if unknown:
            raise DataError(f"{name}: qrels judge {len(unknown)} queries not among the "
                            f"dataset's queries (first: {sorted(unknown)[0]!r}); expected "
                            "judgments of its queries only")


def cos_base(name: str, what: str, base: np.ndarray) -> np.ndarray:
    """The base normalized for ``cos``.

    Already unit-norm (checked block by block): kept as it is, mapped or not. In memory:
    normalized. Memory-mapped and not unit-norm: normalized block by block into memory when the
    float32 copy fits in half the available memory, else refused. Normalizing lazily in each
    consumer (ground truth, index build, true distances, LID, orderings, rescoring) instead would
    let one that forgets compute on unnormalized vectors: wrong results, no error.
    """
    if is_unit_norm(base):
        return base
    if not is_mapped(base):
        return normalize_rows(base)
    need = 4 * base.shape[0] * base.shape[1]
    available = available_memory()
    if available is not None and need > available // 2:
        raise DataError(
            f"{name}: {what}: metric cos needs the {len(base)} x {base.shape[1]} base "
            f"normalized, a {need / 2**30:.1f} GiB float32 copy, more than half the "
            f"{available / 2**30:.1f} GiB of available memory; expected unit-norm vectors in "
            "the file (normalize them once and write them back), or metric ip")
    out = np.empty(base.shape, dtype=np.float32)
    for start, block in row_blocks(base, BLOCK_BYTES // (4 * base.shape[1])):
        out[start:start + len(block)] = normalize_rows(block)
    return out


def sample_rows(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    """At most ``n`` rows of ``x`` drawn without replacement, in row order (seeded).

    A memory map is gathered block by block with its pages released after each, because each
    sampled row faults in (and keeps resident) the pages around it: 50,000 rows spread over a
    file can make most of the file resident.
    """
    if len(x) <= n:
        return x
    rows = np.sort(np.random.default_rng(seed).choice(len(x), size=n, replace=False))
    if not is_mapped(x):
        return np.ascontiguousarray(x[rows])
    out = np.empty((n, *x.shape[1:]), dtype=x.dtype)
    for start, block in row_blocks(x, BLOCK_BYTES // max(1, x.strides[0])):
        lo, hi = np.searchsorted(rows, [start, start + len(block)])
        out[lo:hi] = block[rows[lo:hi] - start]
    return out

