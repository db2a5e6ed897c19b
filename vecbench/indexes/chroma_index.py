"""Chroma (embedded ``PersistentClient`` in a temporary folder): one collection, HNSW.

Rows are added in the order given, as ids "0".."n-1", in batches of Chroma's maximum batch size;
queries go one at a time through ``collection.query`` as an application issues them. The HNSW
space follows the metric (``l2`` -> ``l2``, ``ip`` -> ``ip``, ``cos`` -> ``cosine``); distances
are Chroma's for that space. Telemetry is off; no embedding function is attached (vectors
only). ``search_ef`` is collection state in Chroma: each search call sets it (through
``collection.modify``) when it differs from the value in effect, and a call without it restores
Chroma's default (100). Chroma (1.5) applies a changed ``ef_search`` only to HNSW segments it
loads afterwards, so a change also reopens the client (outside any timing of the queries that
follow, but inside the search call that changes it).

``nbytes()`` is the size of the HNSW segment files (vectors and links, hnswlib's format); the
SQLite file (ids, the write-ahead log of embeddings) is ``sqlite_bytes`` in the build report. The
folder is removed on ``close()``.

Chroma adds embeddings to the HNSW graph ``hnsw:batch_size`` at a time (default 100) and writes
the graph to disk every ``hnsw:sync_threshold`` (default 1000); the rest wait in its log and are
searched by brute force, and the files on disk lag behind. vecbench sets both to the number of
vectors, so the measured index is the whole graph, and checks that the HNSW files hold every
vector (hnswlib's ``length.bin``, 4 bytes an element) before it reports their size.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

from vecbench.core.errors import ConfigError
from vecbench.indexes.base import COMMON_PARAMS, BuildReport, Conformance
from vecbench.indexes.engine_base import EngineIndex, check_folder, folder_size
from vecbench.core.params import Param

#: the names this module registers (read by vecbench.indexes without importing it)
REGISTER = {"chroma": "ChromaIndex"}

SPACES = {"l2": "l2", "ip": "ip", "cos": "cosine"}
DEFAULT_SEARCH_EF = 100  # Chroma's hnsw ef_search default


class ChromaIndex(EngineIndex):
    """Chroma HNSW. Build: ``M`` (hnsw max_neighbors, >= 2; default 16), ``construction_ef``
    (>= 1; default 100), ``folder`` (parent of the temporary folder); the build's threads are
    Chroma's ``num_threads``. Search: ``search_ef`` (>= 1; default 100)."""

    name = "chroma"
    # collection.add / collection.delete; query(where=...) on metadata loaded with the rows
    capabilities = frozenset({"filter", "insert", "delete"})
    _client_box: list | None = None  # [client, folder] of the last build
    params = (
        Param("M", "int", 16, low=2, doc="hnsw:max_neighbors, links per node"),
        Param("construction_ef", "int", 100, low=1, doc="hnsw:construction_ef, beam width "
                                                           "while inserting"),
        Param("folder", "str", None, nullable=True,
              doc="existing folder the temporary client folder goes in (null: the system's "
                  "temporary folder)"),
    ) + COMMON_PARAMS
    search_params = (Param("search_ef", "int", DEFAULT_SEARCH_EF, low=1,
                           doc="hnsw:search_ef, beam width of a search (collection state, set "
                               "per call)"),)

    conformance = Conformance(
        {"M": 16, "construction_ef": 200}, {"search_ef": 200},
        stingy=({"M": 4, "construction_ef": 8}, {"search_ef": 10}), needs=("chromadb",))

    def check(self, values: dict) -> None:
        check_folder(values["folder"])

    def __init__(self, **params: Any):
        super().__init__(**params)
        if importlib.util.find_spec("chromadb") is None:
            raise ConfigError("chroma adapter needs `pip install 'vecbench[engines]'` (chromadb)")

    def _explain(self, exc: BaseException) -> BaseException | None:
        return self._storage_error(exc, self.folder)

    def _build(self, x: Any, metric: str, threads: int) -> BuildReport:
        import chromadb

        x = self._start_build(x, metric)
        folder = self._temporary_folder(self.folder)
        self._client_box = None
        client = self._open_client(folder)
        space = SPACES[self.metric_]
        collection = client.create_collection(
            "vecbench", embedding_function=None,
            configuration={"hnsw": {"space": space, "max_neighbors": self.M,
                                    "ef_construction": self.construction_ef,
                                    "ef_search": DEFAULT_SEARCH_EF, "num_threads": threads,
                                    # every vector in the graph and on disk (see module doc)
                                    "batch_size": len(x), "sync_threshold": len(x)}})
        self._search_ef = DEFAULT_SEARCH_EF
        batch = client.get_max_batch_size()
        started = time.perf_counter()
        # one attribute pair per filter the unit searches with, as row metadata
        columns = [(f"f{j}_{part}", values.tolist()) for j, f in enumerate(self.filters_)
                   for part, values in (("a", f.attr), ("s", f.sub))]
        for start in range(0, len(x), batch):
            stop = min(start + batch, len(x))
            metadatas = ([{name: values[i] for name, values in columns}
                          for i in range(start, stop)] if columns else None)
            collection.add(ids=[str(i) for i in range(start, stop)], embeddings=x[start:stop],
                           metadatas=metadatas)
        add_s = time.perf_counter() - started
        if collection.count() != len(x):
            raise RuntimeError(f"{self.name}: collection holds {collection.count()} of "
                               f"{len(x)} vectors after add")
        self.index_ = collection
        root = Path(folder)
        segments = [path for path in root.iterdir() if path.is_dir()]
        self._index_bytes = sum(folder_size(path) for path in segments)
        lengths = [path / "length.bin" for path in segments if (path / "length.bin").is_file()]
        in_graph = sum(path.stat().st_size for path in lengths) // 4  # 4 bytes an element
        if lengths and in_graph != len(x):
            raise RuntimeError(f"{self.name}: the HNSW files hold {in_graph} of {len(x)} "
                               "vectors; the rest would be searched by brute force")
        code_bytes = 4.0 * self.dim_  # hnswlib keeps float32 vectors
        details = {
            "chromadb_version": chromadb.__version__, "hnsw:space": space,
            "hnsw:M": self.M, "hnsw:construction_ef": self.construction_ef,
            "hnsw:num_threads": threads, "hnsw:batch_size": len(x),
            "hnsw:sync_threshold": len(x), "add_s": add_s, "add_batch": batch,
            "index_bytes": self._index_bytes,
            "sqlite_bytes": folder_size(root) - self._index_bytes,
        }
        return BuildReport(threads=threads, deterministic=False,  # no seed reaches Chroma
                           code_bytes_per_vector=code_bytes,
                           graph_bytes_per_vector=self._index_bytes / len(x) - code_bytes,
                           details=details)

    def _open_client(self, folder: str) -> Any:
        """A client on the folder, closed on close() (through a box: it may be reopened)."""
        import chromadb

        client = chromadb.PersistentClient(
            path=folder, settings=chromadb.Settings(anonymized_telemetry=False))
        if self._client_box is None:
            box = self._client_box = [client, folder]
            self._on_close(lambda: box[0].close())
        else:
            self._client_box[0] = client
        return client

    def _set_search_ef(self, ef: int) -> None:
        self.index_.modify(configuration={"hnsw": {"ef_search": ef}})
        client, folder = self._client_box
        client.close()  # the loaded HNSW segment keeps the old ef: load it again
        self.index_ = self._open_client(folder).get_collection("vecbench")
        self._search_ef = ef

    def _searching(self, params: dict) -> Any:
        import numpy as np

        def run(q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            ef = params.get("search_ef", DEFAULT_SEARCH_EF)
            if ef != self._search_ef:
                self._set_search_ef(ef)
            found_k = min(k, self.ntotal_)  # Chroma refuses more results than vectors
            ids = np.full((len(q), k), -1, dtype=np.int64)
            distances = np.full((len(q), k), np.inf, dtype=np.float32)
            for i in range(len(q)):
                found = self.index_.query(query_embeddings=q[i:i + 1], n_results=found_k,
                                          include=["distances"])
                row = found["ids"][0]
                ids[i, :len(row)] = np.array(row, dtype=np.int64)
                distances[i, :len(row)] = found["distances"][0]
            return ids, distances
        return run

    def filtered_searcher(self, queries: Any, k: int, params: dict, place: int) -> Any:
        """Chroma's own filter: ``query(where=...)`` on filter ``place``'s metadata
        (``$in`` the whole values, or the partial value with the sub-bucket below its limit)."""
        import numpy as np

        q, k, _ = self._start_search(queries, k, params)  # checked queries and k
        params = self.check_search(params)
        row_filter = self.filters_[place]
        wheres = [_chroma_where(place, row_filter.whole[i], *row_filter.partial[i])
                  for i in range(len(q))]

        def search_rows(rows: slice = slice(None), k: int = k) -> tuple[np.ndarray, Any]:
            ef = params.get("search_ef", DEFAULT_SEARCH_EF)
            if ef != self._search_ef:
                self._set_search_ef(ef)
            found_k = min(k, self.ntotal_)
            chosen = range(len(q))[rows]
            ids = np.full((len(chosen), k), -1, dtype=np.int64)
            distances = np.full((len(chosen), k), np.inf, dtype=np.float32)
            for out, i in enumerate(chosen):
                if wheres[i] is None:  # no row can pass: nothing to ask
                    continue
                found = self.index_.query(query_embeddings=q[i:i + 1], n_results=found_k,
                                          where=wheres[i], include=["distances"])
                row = found["ids"][0]
                ids[out, :len(row)] = np.array(row, dtype=np.int64)
                distances[out, :len(row)] = found["distances"][0]
            return ids, distances
        return search_rows

    def insert(self, x: Any, ids: Any) -> None:
        """``collection.add`` in batches of the client's largest."""
        x, ids = self._mutation_rows(x, ids)
        batch = self._client_box[0].get_max_batch_size()
        for start in range(0, len(x), batch):
            self.index_.add(ids=[str(i) for i in ids[start:start + batch].tolist()],
                            embeddings=x[start:start + batch])
        self.ntotal_ += len(x)

    def delete(self, ids: Any) -> None:
        """``collection.delete`` by id."""
        import numpy as np

        ids = np.asarray(ids, dtype=np.int64).tolist()
        batch = self._client_box[0].get_max_batch_size()
        for start in range(0, len(ids), batch):
            self.index_.delete(ids=[str(i) for i in ids[start:start + batch]])
        self.ntotal_ -= len(ids)
        self._nbytes = None

    def _serialized_size(self) -> int:
        return self._index_bytes


def _chroma_where(place: int, whole: Any, value: int, limit: int) -> dict | None:
    """One query's filter as a Chroma ``where`` (None: no row can pass)."""
    terms = []
    if len(whole):
        terms.append({f"f{place}_a": {"$in": [int(v) for v in whole]}})
    if value >= 0:
        terms.append({"$and": [{f"f{place}_a": int(value)}, {f"f{place}_s": {"$lt": int(limit)}}]})
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else {"$or": terms}
