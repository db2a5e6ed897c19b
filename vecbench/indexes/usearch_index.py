"""HNSW graphs built with USearch, storing vectors as f32, f16, bf16, float8, int8 or bits.

USearch casts float32 input to its storage ``dtype`` itself, so with any dtype but ``f32`` the
index quantizes (its build report says ``compresses`` and counts the stored bytes). What each
dtype does with float32 input (measured with usearch 2.26):

- ``f16``, ``bf16``, ``e4m3``, ``e5m2``: round to nearest, bit-identical to numpy / ml_dtypes
  casts (``e4m3`` is ``float8_e4m3fn``). 2, 2, 1, 1 bytes per dimension.
- ``i8``: every vector is scaled to unit norm, multiplied by 127 and truncated toward zero, so
  norms are lost: it ranks by cosine only and is refused for ``l2`` and ``ip``. 1 byte.
- ``b1``: sign bits (x > 0) packed eight per byte, ranked by Hamming distance whatever the metric
  (as the faiss binary indexes; USearch itself takes only packed bits, so floats are binarized
  here exactly as vecbench's ``binary`` quantizer does).

Native codes (stored bit for bit, never re-encoded): float16 arrays with ``f16``, bfloat16 arrays
with ``bf16``, packed ``binary`` codes (uint8) with ``b1``. Under ``cos`` these codes are stored
unchanged and USearch's cosine kernel normalizes; float32 input under ``cos`` is normalized
first. vecbench's int8 and float8 codes are never taken natively: they carry per-dimension
offsets or scales that an index never sees.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import TYPE_CHECKING, Any

from vecbench.core.errors import ConfigError, DataError
from vecbench.core.params import Param
from vecbench.indexes.base import COMMON_PARAMS, BuildReport, check_metric, Conformance, IndexBase
from vecbench.indexes.codes import binarize, code_kind_of

if TYPE_CHECKING:
    import numpy as np

#: the names this module registers (read by vecbench.indexes without importing it)
REGISTER = {"usearch": "USearchIndex"}

#: dtype -> bits USearch stores per dimension of its ``ndim`` (b1: ndim counts bits).
DTYPES = {"f32": 32, "f16": 16, "bf16": 16, "e4m3": 8, "e5m2": 8, "i8": 8, "b1": 1}
#: dtype -> the vecbench code kind it stores bit for bit (and so accepts natively).
NATIVE_KINDS = {"f16": "fp16", "bf16": "bf16", "b1": "binary"}
#: vecbench metric -> USearch metric (b1 always uses hamming).
METRICS = {"l2": "l2sq", "ip": "ip", "cos": "cos"}


def import_usearch() -> Any:
    """The ``usearch.index`` module, or a ConfigError saying how to get it (an optional
    dependency: the registry entry must not fail at vecbench import time)."""
    try:
        from usearch import index
    except ImportError:
        raise ConfigError("usearch adapter needs `pip install usearch`") from None
    return index


def _check_dtype(usearch: Any, dtype: str) -> None:
    if not hasattr(usearch.ScalarKind, dtype.upper()):  # float8 came in usearch 2.2x
        raise ConfigError(f"expected a storage type this usearch has; usearch "
                          f"{_version()} has no {dtype}", "dtype")


class USearchIndex(IndexBase):
    """USearch HNSW. Build: ``M`` (connectivity, >= 2), ``ef_construction`` (expansion_add,
    >= 1), ``dtype`` (f32, f16, bf16, e4m3, e5m2, i8, b1; default f32); search: ``ef``
    (expansion_search, >= 1; default USearch's 64; the beam is ``max(ef, k)``). ``M`` and
    ``ef_construction`` default to USearch's own 16 and 128.

    Rows get keys 0..n-1 in the order given. With ``threads=1`` USearch inserts them one after
    another in that order (the build is byte-identical to adding rows one at a time) and the
    build is deterministic; with more threads rows are inserted concurrently. USearch exposes
    no seed: ``seed`` is accepted and recorded but changes nothing, so repeats of an unordered
    single-threaded build are identical.
    """

    name = "usearch"
    honours_order = True
    capabilities = frozenset({"insert", "delete"})  # Index.add and Index.remove
    accepts = frozenset({"float32", *NATIVE_KINDS.values()})  # over all dtypes; see __init__
    params = (
        # USearch refuses 1 ("the index degenerates into ropes")
        Param("M", "int", 16, low=2, doc="connectivity (USearch refuses 1)"),
        Param("ef_construction", "int", 128, low=1, doc="expansion_add: beam while inserting"),
        Param("dtype", "choice", "f32", choices=tuple(DTYPES), doc="the type USearch stores "
              "vectors in (f16, bf16 and b1 take vecbench's float16, bfloat16 and binary codes "
              "natively; i8 is refused for l2/ip)"),
    ) + COMMON_PARAMS
    search_params = (Param("ef", "int", 64, low=1, doc="expansion_search: beam of a search; "
                           "the effective beam is max(ef, k)"),)

    def __init__(self, **params: Any):
        super().__init__(**params)
        # usearch loads only where an index is built: validating an experiment must not load
        # it (usearch and faiss crash in one process); where it is loaded, check the dtype now
        loaded = sys.modules.get("usearch.index")
        if loaded is not None:
            _check_dtype(loaded, self.dtype)
        elif importlib.util.find_spec("usearch") is None:
            import_usearch()  # the ConfigError saying how to get it
        native = NATIVE_KINDS.get(self.dtype)
        # what this instance takes natively (the class attribute is the union over dtypes)
        self.accepts = frozenset({native} if self.dtype == "b1" else
                                 {"float32"} | ({native} if native else set()))
        self.code_bytes_: int | None = None

    conformance = Conformance({"M": 16, "ef_construction": 200}, {"ef": 200}, needs=("usearch",))

    def build(self, x: Any, metric: str, *, train: Any = None,
              threads: int | None = None) -> BuildReport:
        import numpy as np

        usearch = import_usearch()
        _check_dtype(usearch, self.dtype)
        threads = self._build_threads(threads)
        self.index_ = None  # a failed build leaves no half-built index behind
        self._forget_searches()
        x = np.asarray(x)
        metric = check_metric(metric)
        if self.dtype == "i8" and metric != "cos":
            raise ConfigError("usearch's i8 storage scales every vector to unit norm, so it "
                              f"ranks by cosine only; got metric {metric} (use metric cos, or "
                              "dtype f16, bf16, e4m3 or e5m2)", "dtype")
        if self.dtype == "b1":
            vectors, add_dtype = self._start_binary_build(x, metric), None
            ndim, usearch_metric = 8 * self.code_bytes_, "hamming"
        else:
            vectors = self._start_build(x, metric)  # checks, state, normalized copy for cos
            ndim, usearch_metric, add_dtype = self.dim_, METRICS[self.metric_], None
            kind = code_kind_of(x)
            if kind in self.accepts and kind != "float32":  # codes in, stored bit for bit
                vectors = np.ascontiguousarray(x)
                if kind == "bf16":  # USearch reads bfloat16 as raw 16-bit patterns
                    vectors, add_dtype = vectors.view(np.uint16), "bf16"
        index = usearch.Index(ndim=ndim, metric=usearch_metric, dtype=self.dtype,
                              connectivity=self.M, expansion_add=self.ef_construction)
        index.add(np.arange(len(vectors), dtype=np.uint64), vectors, threads=threads,
                  dtype=add_dtype)
        self._default_ef = index.expansion_search  # USearch's default, for calls without ef
        self.index_ = index
        # the storage type USearch reports, times its dimensions (bits for b1)
        stored = str(index.dtype).rsplit(".", 1)[-1].lower()
        code = -(-DTYPES[stored] * int(index.ndim) // 8)
        float_input = x.dtype != np.uint8 and code_kind_of(x) == "float32"
        return BuildReport(
            threads=threads, deterministic=threads == 1, code_bytes_per_vector=float(code),
            graph_bytes_per_vector=self.nbytes() / len(vectors) - code,
            compresses=float_input and code < 4 * self.dim_,
            details={"dtype": stored, "connectivity": int(index.connectivity)})

    def _queries(self, q: Any) -> np.ndarray:
        return self._binary_codes(q, "queries")[0] if self.dtype == "b1" else super()._queries(q)

    def _searching(self, params: dict) -> Any:
        import numpy as np

        index, threads, ef = self.index_, self.n_threads, params.get("ef", self._default_ef)

        def run(q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            # ef is index state: set on every call so no earlier call's value leaks in
            index.expansion_search = max(ef, k)
            found = index.search(q, k, threads=threads)
            ids = np.full((len(q), k), -1, dtype=np.int64)
            distances = np.full((len(q), k), np.inf, dtype=np.float32)
            if len(q) == 1:  # one query: USearch returns only the keys it found
                ids[0, :len(found.keys)] = found.keys
                distances[0, :len(found.keys)] = found.distances
            else:  # a batch: k columns per query, of which counts[i] are real
                real = np.arange(k)[None, :] < found.counts[:, None]
                ids[real] = found.keys[real]  # keys < 2**63: the uint64 -> int64 cast is exact
                distances[real] = found.distances[real]
            return ids, distances
        return run

    def _start_binary_build(self, x: np.ndarray, metric: str) -> np.ndarray:
        self.index_ = None  # a failed build leaves no half-built index behind
        self._forget_searches()
        self.metric_ = check_metric(metric)
        self.dim_ = self.code_bytes_ = None
        codes, self.dim_ = self._binary_codes(x, "base vectors")
        if len(codes) == 0:
            raise DataError(f"{self.name}: expected at least one base vector, got 0")
        self.code_bytes_, self.ntotal_ = int(codes.shape[1]), len(codes)
        self._nbytes = None
        return codes

    def _binary_codes(self, x: Any, what: str) -> tuple[np.ndarray, int | None]:
        """Packed codes (uint8 as given, floats binarized) and the float dimension (None for
        codes), checked against the built index."""
        import numpy as np

        x = np.asarray(x)
        if x.ndim != 2:
            raise DataError(f"{self.name}: {what}: expected a 2-D array, got shape {x.shape}")
        float_dim = None if x.dtype == np.uint8 else int(x.shape[1])
        if float_dim is not None and self.dim_ is not None and float_dim != self.dim_:
            raise DataError(f"{self.name}: {what}: expected vectors of dimension {self.dim_}, "
                            f"got {float_dim}")
        codes = x if float_dim is None else binarize(x)
        if self.code_bytes_ is not None and codes.shape[1] != self.code_bytes_:
            raise DataError(f"{self.name}: {what}: expected packed codes of {self.code_bytes_} "
                            f"bytes, got {codes.shape[1]} bytes from shape {x.shape}")
        return np.ascontiguousarray(codes), float_dim

    def insert(self, x: Any, ids: Any) -> None:
        """``Index.add`` under the given keys (float32 rows; b1: binarized as at build)."""
        import numpy as np

        if self.dtype == "b1":
            vectors = self._binary_codes(x, "inserted vectors")[0]
            ids = np.asarray(ids, dtype=np.int64)
            self._nbytes = None
        else:
            vectors, ids = self._mutation_rows(x, ids)
        self.index_.add(ids.astype(np.uint64), vectors, threads=self.n_threads)
        self.ntotal_ = len(self.index_)

    def delete(self, ids: Any) -> None:
        """``Index.remove``: the keys are no longer returned."""
        import numpy as np

        removed = self.index_.remove(np.asarray(ids, dtype=np.uint64))
        if int(np.sum(removed)) != len(ids):
            raise RuntimeError(f"{self.name}: removed {int(np.sum(removed))} of {len(ids)} keys")
        self.ntotal_ = len(self.index_)
        self._nbytes = None

    def _serialized_size(self) -> int:
        return int(self.index_.serialized_length)


def _version() -> str:
    import usearch

    return getattr(usearch, "__version__", "?")
