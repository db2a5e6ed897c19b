"""HNSW graphs built with hnswlib, inserted in the order given."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vecbench.indexes.base import (COMMON_PARAMS, BuildReport, Conformance, IndexBase,
                                   pad_distances, pad_ids)
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
        index.init_index(max_elements=len(x), M=self.M, ef_construction=self.ef_construction,
                         random_seed=self.seed)
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

    def _most_results(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The longest result list hnswlib can return for one query, by bisection on k.

        With ef fixed (>= k), hnswlib's candidate set does not depend on the k asked for, so
        "k results can be returned" is monotone in k.
        """
        import numpy as np

        try:
            labels, distances = self.index_.knn_query(query, k=k, num_threads=1)
            return labels[0].view(np.int64), distances[0]
        except RuntimeError:
            pass
        best = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))
        possible, impossible = 0, k
        while impossible - possible > 1:
            middle = (possible + impossible) // 2
            try:
                labels, distances = self.index_.knn_query(query, k=middle, num_threads=1)
                best, possible = (labels[0].view(np.int64), distances[0]), middle
            except RuntimeError:
                impossible = middle
        return best

    def _serialized_size(self) -> int:
        return self.index_.index_file_size()
