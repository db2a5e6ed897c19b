"""HNSW graphs built with hnswlib, inserted in the order given."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vecbench.indexes.base import (COMMON_PARAMS, BuildReport, Conformance, IndexBase, Searcher,
                                   check_k, pad_distances, pad_ids)
from vecbench.core.params import Param

if TYPE_CHECKING:
    import numpy as np

#: the names this module registers (read by vecbench.indexes without importing it)
REGISTER = {"hnswlib": "HnswlibIndex"}

#: hnswlib's own default for the search beam width.
DEFAULT_EF = 10


class HnswlibIndex(IndexBase):
    """hnswlib HNSW. Build: ``M`` (>= 2), ``ef_construction`` (>= 1); search: ``ef`` (>= 1).

    Rows are added with ids 0..n-1 in the order given. With ``threads=1`` the build is
    deterministic for a given ``seed`` (hnswlib's level RNG) and the order holds exactly; with
    more threads hnswlib inserts rows concurrently, so neighbouring rows may swap. ``cos``
    indexes normalized copies in hnswlib's ``ip`` space. The effective beam is ``max(ef, k)``;
    ``ef`` defaults to hnswlib's 10.
    """

    name = "hnswlib"
    honours_order = True
    # mark_deleted, and inserts that reuse the deleted slots (replace_deleted)
    # knn_query(filter=callback); mark_deleted, and add(replace_deleted=True) reuses their slots
    capabilities = frozenset({"filter", "insert", "delete"})
    params = (
        # hnswlib would silently cap a larger M at 10000, and the row would record a lie
        Param("M", "int", 16, low=2, high=10_000,
              doc="links per node (2*M on the bottom layer; hnswlib caps it at 10000)"),
        Param("ef_construction", "int", 200, low=1, doc="beam width while inserting"),
    ) + COMMON_PARAMS
    search_params = (Param("ef", "int", DEFAULT_EF, low=1,
                           doc="beam width of a search; the effective beam is max(ef, k)"),)

    conformance = Conformance({"M": 16, "ef_construction": 200}, {"ef": 200})

    def build(self, x: Any, metric: str, *, train: Any = None,
              threads: int | None = None) -> BuildReport:
        import hnswlib
        import numpy as np

        threads = self._build_threads(threads)
        x = self._start_build(x, metric)
        index = hnswlib.Index(space="l2" if self.metric_ == "l2" else "ip", dim=self.dim_)
        # allow_replace_deleted: an insert may reuse a deleted element's slot (runbooks)
        index.init_index(max_elements=len(x), M=self.M, ef_construction=self.ef_construction,
                         random_seed=self.seed, allow_replace_deleted=True)
        self._deleted = 0
        index.add_items(x, np.arange(len(x), dtype=np.int64), num_threads=threads)
        self.index_, self._ef = index, index.ef
        # hnswlib stores each vector as float32 beside its links, label and level: the graph
        # bytes are what its saved file holds beyond the vectors (its small header included)
        code = 4.0 * index.dim
        return BuildReport(threads=threads, deterministic=threads == 1,
                           code_bytes_per_vector=code,
                           graph_bytes_per_vector=self.nbytes() / len(x) - code,
                           details={"space": index.space})

    def _searching(self, params: dict) -> Any:
        # The runner's timed calls: k within ef and the graph, ef already set (every call of a
        # setting after its first) go to knn_query directly; a few hundred ns matter against a
        # 30 us search. Any other call is _search's.
        import numpy as np

        ef, threads = params.get("ef", DEFAULT_EF), self.n_threads
        knn_query, ntotal, search = self.index_.knn_query, self.ntotal_, self._search
        int64 = np.dtype(np.int64)  # a dtype object: view() resolves it faster than the type

        def run(q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            if k <= ef and k <= ntotal and self._ef == ef:
                try:
                    labels, distances = knn_query(q, k=k, num_threads=threads)
                    return labels.view(int64), distances
                except RuntimeError:
                    pass  # fewer than k found somewhere: _search fills row by row
            return search(q, k, ef, threads)
        return run

    def _search(self, q: np.ndarray, k: int, ef: int,
                threads: int) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        k_found = min(k, self.ntotal_)  # hnswlib refuses k > number of elements
        # ef is hnswlib state, which only this adapter sets: it is set whenever this call's
        # differs from the last one set, so no earlier call's value leaks in
        ef = max(ef, k_found)
        if ef != self._ef:
            self.index_.set_ef(ef)
            self._ef = ef
        try:
            labels, distances = self.index_.knn_query(q, k=k_found, num_threads=threads)
        except RuntimeError:
            # hnswlib raises for the whole batch when any query finds fewer than k results
            # (a small ef on a poorly connected graph, e.g. with many duplicate vectors)
            ids, distances = self._search_one_by_one(q, k_found)
            return pad_ids(ids, k), pad_distances(distances, k)
        ids = labels.view(np.int64)  # ids < 2**63: the uint64 -> int64 view is exact
        if k_found == k:
            return ids, distances
        return pad_ids(ids, k), pad_distances(distances, k)

    def _search_one_by_one(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        ids = np.full((len(q), k), -1, dtype=np.int64)
        distances = np.full((len(q), k), np.inf, dtype=np.float32)
        for row in range(len(q)):
            found, found_distances = self._most_results(q[row:row + 1], k)
            ids[row, :len(found)] = found
            distances[row, :len(found)] = found_distances
        return ids, distances

    def _most_results(self, query: np.ndarray, k: int,
                      allowed: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """The longest result list hnswlib can return for one query, by bisection on k.

        With ef fixed (>= k), hnswlib's candidate set does not depend on the k asked for, so
        "k results can be returned" is monotone in k.
        """
        import numpy as np

        try:
            labels, distances = self.index_.knn_query(query, k=k, num_threads=1, filter=allowed)
            return labels[0].view(np.int64), distances[0]
        except RuntimeError:
            pass
        best = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))
        possible, impossible = 0, k
        while impossible - possible > 1:
            middle = (possible + impossible) // 2
            try:
                labels, distances = self.index_.knn_query(query, k=middle, num_threads=1,
                                                          filter=allowed)
                best, possible = (labels[0].view(np.int64), distances[0]), middle
            except RuntimeError:
                impossible = middle
        return best

    def filtered_searcher(self, queries: Any, k: int, params: dict, place: int) -> Searcher:
        """hnswlib's own filter: ``knn_query(filter=callback)``, the callback answering for a
        label whether the query may see it (a Python call per visited node: hnswlib's API).
        One thread (the callback holds the GIL). A query that finds fewer than k allowed
        rows gets the most hnswlib can return (it refuses a short answer for the batch)."""
        import numpy as np

        q, k, _ = self._start_search(queries, k, params)  # checked queries and k
        params = self.check_search(params)
        masks, shared = self._filter_masks(place, len(q))
        allowed = [row.tolist().__getitem__ for row in masks]  # list lookups: the cheapest callback
        ef = params.get("ef", DEFAULT_EF)

        def search_rows(rows: slice = slice(None), k: int = k) -> tuple[np.ndarray, Any]:
            k = check_k(k)
            k_found = min(k, self.ntotal_)
            wanted = max(ef, k_found)
            if wanted != self._ef:
                self.index_.set_ef(wanted)
                self._ef = wanted
            chosen = range(len(q))[rows]
            if shared:
                try:
                    labels, distances = self.index_.knn_query(q[rows], k=k_found, num_threads=1,
                                                              filter=allowed[0])
                    return pad_ids(labels.view(np.int64), k), pad_distances(distances, k)
                except RuntimeError:
                    pass  # some query found fewer than k: row by row below
            ids = np.full((len(chosen), k), -1, dtype=np.int64)
            distances = np.full((len(chosen), k), np.inf, dtype=np.float32)
            for out, row in enumerate(chosen):
                found, found_d = self._most_results(q[row:row + 1], k_found,
                                                    allowed[0 if shared else row])
                ids[out, :len(found)], distances[out, :len(found)] = found, found_d
            return ids, distances
        return search_rows

    def _serialized_size(self) -> int:
        return self.index_.index_file_size()

    def insert(self, x: Any, ids: Any) -> None:
        """New elements fill the slots of deleted ones first (``replace_deleted``), then
        new slots, the capacity grown (doubled at least) when they run out."""
        x, ids = self._mutation_rows(x, ids)
        index = self.index_
        reused = min(self._deleted, len(x))
        needed = index.get_current_count() + len(x) - reused
        if needed > index.get_max_elements():
            index.resize_index(max(needed, 2 * index.get_max_elements()))
        if reused:  # hnswlib refuses more replacements than deleted slots: two calls
            index.add_items(x[:reused], ids[:reused], num_threads=self.n_threads,
                            replace_deleted=True)
        if reused < len(x):
            index.add_items(x[reused:], ids[reused:], num_threads=self.n_threads)
        self._deleted -= reused
        self.ntotal_ += len(x)

    def delete(self, ids: Any) -> None:
        """``mark_deleted``: the elements stay in the graph as waypoints, never returned."""
        import numpy as np

        for label in np.asarray(ids, dtype=np.int64).tolist():
            self.index_.mark_deleted(label)
        self._deleted += len(ids)
        self.ntotal_ -= len(ids)
        self._nbytes = None
