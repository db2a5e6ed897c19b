"""LanceDB (embedded): IVF_PQ or IVF_HNSW_SQ indexes over a Lance table in a temporary folder.

The table (``id int64, vector fixed_size_list<float32>[d]``) is written in the order given (ids
0..n-1), then indexed with ``create_index``. Queries go one at a time through LanceDB's query
builder, as an application issues them (``table.search(q).distance_type(..).nprobes(..)``).
After the build, vecbench checks that every row is indexed and that the query plan uses the index
(LanceDB silently searches unindexed rows by brute force: IVF_PQ with 8-bit codes indexes
nothing below 256 rows), and refuses the build otherwise.

Metrics: ``l2`` -> ``l2`` (squared L2 distances), ``ip`` -> ``dot`` (negated inner products),
``cos`` -> ``cosine``. ``nbytes()`` is the on-disk size of the index files (``_indices``); the
table's data files (which ``refine_factor`` re-reads to re-rank) are ``data_bytes`` in the build
report. The folder is removed on ``close()``.

Threads: Lance sizes its compute pool once per process, from ``LANCE_CPU_THREADS`` if set when it
starts (else the CPU count less its I/O reservation). vecbench sets it from the first build's
``threads`` when the user has not, and records the value; later builds in the same process cannot
change it (nor can this one if Lance computed anything in this process before vecbench's build).
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vecbench.core.errors import ConfigError, DataError
from vecbench.core.params import Param
from vecbench.indexes.base import COMMON_PARAMS, available_cores, BuildReport, Conformance
from vecbench.indexes.engine_base import EngineIndex, check_folder, folder_size

if TYPE_CHECKING:
    import numpy as np

#: the names this module registers (read by vecbench.indexes without importing it)
REGISTER = {"lancedb": "LanceDBIndex"}

INDEX_TYPES = ("IVF_PQ", "IVF_HNSW_SQ")
DISTANCES = {"l2": "l2", "ip": "dot", "cos": "cosine"}
_PQ_ONLY, _HNSW_ONLY = ("num_sub_vectors", "num_bits"), ("m", "ef_construction")
_TYPE_PARAMS = (*_PQ_ONLY, *_HNSW_ONLY)
_threads_in_effect: int | None = None  # Lance's compute pool size, fixed at its first use


def check_installed() -> None:
    """Without importing it: importing starts nothing, but Lance's thread pool size must be set
    before its first use (see :func:`_lance_threads`)."""
    if importlib.util.find_spec("lancedb") is None:
        raise ConfigError("lancedb adapter needs `pip install 'vecbench[engines]'` (lancedb)")


class LanceDBIndex(EngineIndex):
    """LanceDB. Build: ``index_type`` (IVF_PQ | IVF_HNSW_SQ), ``num_partitions`` (default
    LanceDB's, about sqrt(n)), ``num_sub_vectors`` (IVF_PQ; must divide d; default LanceDB's) and
    ``num_bits`` (IVF_PQ, 4 or 8), ``m`` and ``ef_construction`` (IVF_HNSW_SQ; defaults 20, 300),
    ``folder`` (parent of the temporary folder). Search: ``nprobes`` (>= 1), ``refine_factor``
    (>= 1: re-rank k x refine_factor candidates with the stored float32 vectors), ``ef``
    (IVF_HNSW_SQ beam; ``max(ef, k x refine_factor)`` is used, as LanceDB refuses less). Parameters left out take LanceDB's defaults."""

    name = "lancedb"
    # table.add / table.delete; where(sql, prefilter=...) on attribute columns
    capabilities = frozenset({"filter", "insert", "delete"})
    params = (
        Param("index_type", "choice", "IVF_PQ", choices=INDEX_TYPES, doc="LanceDB index type"),
        Param("num_partitions", "int", None, low=1, nullable=True,
              doc="IVF partitions (null: LanceDB's default, about sqrt(n))"),
        Param("num_sub_vectors", "int", None, low=1, nullable=True,
              doc="IVF_PQ only: PQ sub-vectors, a divisor of the dimension (null: LanceDB's "
                  "default)"),
        Param("num_bits", "choice", None, choices=(4, 8), nullable=True,
              doc="IVF_PQ only: bits a PQ code (null: LanceDB's 8)"),
        Param("m", "int", None, low=2, nullable=True,
              doc="IVF_HNSW_SQ only: HNSW links per node (null: LanceDB's 20)"),
        Param("ef_construction", "int", None, low=1, nullable=True,
              doc="IVF_HNSW_SQ only: HNSW beam width while inserting (null: LanceDB's 300)"),
        Param("folder", "str", None, nullable=True,
              doc="existing folder the temporary table folder goes in (null: the system's "
                  "temporary folder)"),
    ) + COMMON_PARAMS
    search_params = (
        Param("nprobes", "int", None, low=1, nullable=True,
              doc="IVF partitions searched (null: LanceDB's default, 20)"),
        Param("refine_factor", "int", None, low=1, nullable=True,
              doc="re-rank k x refine_factor candidates with the stored float32 vectors "
                  "(null: no re-ranking)"),
        Param("ef", "int", None, low=1, nullable=True,
              doc="IVF_HNSW_SQ only: HNSW beam width; max(ef, k x refine_factor) is used "
                  "(null: LanceDB's 1.5 k)"),
        Param("prefilter", "bool", None, nullable=True,
              doc="with a filter: apply the where before the vector search (true) or to its "
                  "k results after it (false) (null: LanceDB's default, true)"),
    )

    @classmethod
    def check_search(cls, params: dict) -> dict:
        """A null search parameter means LanceDB's default: it is left out of the query."""
        return super().check_search({name: value for name, value in params.items()
                                     if value is not None})

    conformance = Conformance(
        {"num_partitions": 4, "num_sub_vectors": 16}, {"nprobes": 4, "refine_factor": 40},
        stingy=({"num_partitions": 32, "num_sub_vectors": 4}, {"nprobes": 1}), needs=("lancedb",),
        variants=(("hnsw_sq", Conformance(
            {"index_type": "IVF_HNSW_SQ", "num_partitions": 1}, {"ef": 200, "refine_factor": 5},
            stingy=({"index_type": "IVF_HNSW_SQ", "num_partitions": 8, "m": 4,
                     "ef_construction": 10}, {"ef": 10, "nprobes": 1}))),))

    def check(self, values: dict) -> None:
        """A parameter of the other index_type is refused (not silently ignored)."""
        wrong = _HNSW_ONLY if values["index_type"] == "IVF_PQ" else _PQ_ONLY
        for param in wrong:
            if values[param] is not None:
                raise ConfigError(f"a build parameter of the other index_type; "
                                  f"{values['index_type']} takes num_partitions, "
                                  f"{', '.join(p for p in _TYPE_PARAMS if p not in wrong)}", param)
        check_folder(values["folder"])

    def __init__(self, **params: Any):
        super().__init__(**params)
        check_installed()

    def _explain(self, exc: BaseException) -> BaseException | None:
        return self._storage_error(exc, self.folder)

    def _build(self, x: Any, metric: str, threads: int) -> BuildReport:
        import numpy as np
        import pyarrow as pa

        x = self._start_build(x, metric)
        if self.index_type == "IVF_PQ" and self.num_sub_vectors and self.dim_ % self.num_sub_vectors:
            raise ConfigError(f"expected a divisor of the dimension {self.dim_}, got "
                              f"{self.num_sub_vectors}", "num_sub_vectors")
        in_effect = _lance_threads(threads)
        import lancedb
        from lancedb.index import HnswSq, IvfPq

        folder = self._temporary_folder(self.folder)
        db = lancedb.connect(folder)
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), self.dim_)
        data = {"id": pa.array(np.arange(len(x)), pa.int64()), "vector": vectors}
        for j, row_filter in enumerate(self.filters_):  # one attribute pair per filter
            data[f"f{j}_a"] = pa.array(row_filter.attr, pa.int32())
            data[f"f{j}_s"] = pa.array(row_filter.sub, pa.int32())
        data = pa.table(data)
        started = time.perf_counter()
        table = db.create_table("vecbench", data)
        load_s = time.perf_counter() - started
        self._distance = DISTANCES[self.metric_]
        common = {"distance_type": self._distance}
        if self.num_partitions is not None:
            common["num_partitions"] = self.num_partitions
        if self.index_type == "IVF_PQ":
            config = IvfPq(**common, **_given(num_sub_vectors=self.num_sub_vectors,
                                              num_bits=self.num_bits))
        else:
            config = HnswSq(**common, **_given(m=self.m, ef_construction=self.ef_construction))
        started = time.perf_counter()
        table.create_index("vector", config=config)
        index_s = time.perf_counter() - started
        info = table.list_indices()[0]
        if info.num_indexed_rows != len(x):
            raise DataError(f"{self.name}: {self.index_type} indexed {info.num_indexed_rows} of "
                            f"{len(x)} vectors (with 8-bit PQ codes LanceDB trains only on 256 "
                            "vectors or more); the rest would be searched by brute force")
        self.index_ = table
        plan = self._query(x[0], 10, {}).explain_plan(True)
        if "ANNSubIndex" not in plan:
            raise RuntimeError(f"{self.name}: the query plan does not use the index: {plan}")
        root = Path(folder) / "vecbench.lance"
        self._index_bytes = folder_size(root / "_indices")
        stats = table.index_stats(info.name)
        index_details = dict(info.index_details or {})
        index_details.pop("runtime_hints", None)
        code_bytes = self._code_bytes_per_vector(index_details)
        details = {
            "lancedb_version": lancedb.__version__, "index_type": self.index_type,
            "distance_type": self._distance, "index_details": index_details,
            "num_indices": stats.num_indices, "load_s": load_s, "index_s": index_s,
            "index_bytes": self._index_bytes, "data_bytes": folder_size(root / "data"),
            "lance_cpu_threads": in_effect,
        }
        return BuildReport(threads=in_effect, deterministic=False,  # unseeded k-means sampling
                           code_bytes_per_vector=code_bytes,
                           graph_bytes_per_vector=self._index_bytes / len(x) - code_bytes,
                           compresses=True, details=details)

    def _code_bytes_per_vector(self, index_details: dict) -> float:
        """PQ: num_sub_vectors x num_bits / 8, as the index reports them; SQ: one byte a
        dimension (LanceDB's 8-bit scalar quantizer)."""
        compression = index_details.get("compression") or {}
        if self.index_type == "IVF_PQ" and "num_sub_vectors" in compression:
            return compression["num_sub_vectors"] * compression.get("num_bits", 8) / 8
        if self.index_type == "IVF_PQ":
            raise RuntimeError(f"{self.name}: index details lack the PQ layout: {index_details}")
        return float(self.dim_ * compression.get("num_bits", 8) / 8)

    def _query(self, row: np.ndarray, k: int, params: dict) -> Any:
        query = self.index_.search(row).distance_type(self._distance).limit(k)
        if "nprobes" in params:
            query = query.nprobes(params["nprobes"])
        if "refine_factor" in params:
            query = query.refine_factor(params["refine_factor"])
        if "ef" in params:  # LanceDB refuses a beam below the candidates it must return
            query = query.ef(max(params["ef"], k * params.get("refine_factor", 1)))
        return query.select(["id", "_distance"])

    def _searching(self, params: dict) -> Any:
        import numpy as np

        if "ef" in params and self.index_type != "IVF_HNSW_SQ":
            raise ConfigError("a search parameter of index_type IVF_HNSW_SQ; IVF_PQ takes "
                              "nprobes, refine_factor", "ef")

        def run(q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            ids = np.full((len(q), k), -1, dtype=np.int64)
            distances = np.full((len(q), k), np.inf, dtype=np.float32)
            for i, row in enumerate(q):
                found = self._query(row, k, params).to_arrow()
                n = found.num_rows
                ids[i, :n] = found.column("id").to_numpy()
                distances[i, :n] = found.column("_distance").to_numpy()
            return ids, distances
        return run

    def filtered_searcher(self, queries: Any, k: int, params: dict, place: int) -> Any:
        """LanceDB's own filter: ``where(sql, prefilter=...)`` on filter ``place``'s columns
        (``a IN (...) OR (a = value AND s < limit)``), one query at a time."""
        import numpy as np

        q, k, _ = self._start_search(queries, k, params)  # checked queries and k
        params = self.check_search(params)
        prefilter = params.get("prefilter")
        row_filter = self.filters_[place]
        where = [_lance_where(place, row_filter.whole[i], *row_filter.partial[i])
                 for i in range(len(q))]

        def search_rows(rows: slice = slice(None), k: int = k) -> tuple[np.ndarray, Any]:
            chosen = range(len(q))[rows]
            ids = np.full((len(chosen), k), -1, dtype=np.int64)
            distances = np.full((len(chosen), k), np.inf, dtype=np.float32)
            for out, i in enumerate(chosen):
                query = self._query(q[i], k, params)
                query = (query.where(where[i]) if prefilter is None
                         else query.where(where[i], prefilter=prefilter))
                found = query.to_arrow()
                n = found.num_rows
                ids[out, :n] = found.column("id").to_numpy()
                distances[out, :n] = found.column("_distance").to_numpy()
            return ids, distances
        return search_rows

    def insert(self, x: Any, ids: Any) -> None:
        """``table.add``: LanceDB searches rows added after the index by brute force (merged
        with the index's results) until ``compact`` (``table.optimize``) indexes them."""
        import numpy as np

        import pyarrow as pa

        x, ids = self._mutation_rows(x, ids)
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), self.dim_)
        self.index_.add(pa.table({"id": pa.array(ids, pa.int64()), "vector": vectors}))
        self.ntotal_ += len(x)

    def delete(self, ids: Any) -> None:
        """``table.delete`` with an id list predicate."""
        import numpy as np

        ids = np.asarray(ids, dtype=np.int64)
        self.index_.delete(f"id IN ({', '.join(map(str, ids.tolist()))})")
        self.ntotal_ -= len(ids)
        self._nbytes = None

    def compact(self) -> bool:
        """``table.optimize()``: compacts files, drops deleted rows, indexes added rows."""
        self.index_.optimize()
        return True

    def _serialized_size(self) -> int:
        return self._index_bytes


def _lance_where(place: int, whole: Any, value: int, limit: int) -> str:
    """The SQL predicate of one query's filter on columns ``f{place}_a`` / ``f{place}_s``."""
    terms = []
    if len(whole):
        terms.append(f"f{place}_a IN ({', '.join(str(int(v)) for v in whole)})")
    if value >= 0:
        terms.append(f"(f{place}_a = {int(value)} AND f{place}_s < {int(limit)})")
    return " OR ".join(terms) or "false"


def _lance_threads(threads: int) -> int:
    """Set Lance's compute pool size before its first use (unless the user set it); return the
    size in effect for this process."""
    global _threads_in_effect
    if _threads_in_effect is None:
        if "LANCE_CPU_THREADS" not in os.environ:  # read when Lance first computes
            os.environ["LANCE_CPU_THREADS"] = str(threads)
        value = os.environ.get("LANCE_CPU_THREADS")
        _threads_in_effect = int(value) if value and value.isascii() and value.isdigit() \
            and 0 < int(value) <= 4096 else _default_threads()
    return _threads_in_effect


def _default_threads() -> int:
    return available_cores()


def _given(**params: Any) -> dict:
    return {name: value for name, value in params.items() if value is not None}
