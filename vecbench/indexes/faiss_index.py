"""faiss indexes: HNSW (in insertion order), IVF-Flat, IVF-PQ (with optional refinement).

Each is a factory string plus its parameters through the shared builder
(``vecbench.indexes.faiss_build``). Search parameters travel in faiss ``SearchParameters``
objects, so an index holds no search state between calls.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vecbench.errors import ConfigError
from vecbench.indexes.base import COMMON_PARAMS
from vecbench.indexes.faiss_build import MAX_K_FACTOR, _FaissIndex, check_number
from vecbench.params import Param, check_bool, check_choice, check_int, check_str

#: faiss's default efSearch.
DEFAULT_EF_SEARCH = 16


#: How FaissHNSW gives each vector its level (see FaissHNSW).
LEVEL_MODES = ("insertion", "content")


class FaissHNSW(_FaissIndex):
    """faiss ``IndexHNSWFlat``. Build: ``M`` (>= 2), ``ef_construction`` (>= 1), ``keep_order``,
    ``levels``; search: ``ef`` (>= 1, default faiss's 16; the effective beam is ``max(ef, k)``).

    ``seed`` seeds faiss's level generator (``hnsw.rng``, otherwise fixed at 12345).
    ``IndexHNSW.add`` inserts a batch level by level, highest first, shuffled within a level; with
    ``keep_order=True`` (the default) vectors are added one at a time, so they are inserted in
    the order given, as hnswlib does. That build runs on one thread whatever ``threads`` says
    (faiss parallelizes only within a batch) and costs about 1.2-1.3x a single-threaded batch
    build. ``keep_order=False`` adds one batch on all threads; the order is then faiss's, and
    ``honours_order`` is False for that instance.

    ``levels: insertion`` (the default) is faiss's own draw: the i-th vector inserted gets the
    i-th level from ``hnsw.rng``, so permuting the insertion order also reassigns levels.
    ``levels: content`` draws each vector's level from a hash of its bytes keyed by ``seed``,
    with faiss's level distribution, and presets it (faiss uses a preset ``hnsw.levels`` entry
    instead of drawing); a vector then keeps its level under any insertion order, and an
    ordering experiment measures the order alone.
    """

    name = "faiss_hnsw"
    honours_order = True
    _build_param_names = ("M", "ef_construction", "keep_order", "levels")
    _search_param_names = ("ef",)
    params = (
        Param("M", "int", 16, low=2, doc="links per node (2*M on the bottom layer)"),
        Param("ef_construction", "int", 200, low=1, doc="beam width while inserting"),
        Param("keep_order", "bool", True, doc="add one vector at a time so the insertion order "
              "holds (single-threaded build); false: one batch on all threads, faiss's order"),
        Param("levels", "choice", "insertion", choices=LEVEL_MODES, doc="insertion: faiss "
              "draws the i-th inserted vector's level; content: a level hashed from the "
              "vector's bytes and seed, the same under every order"),
    ) + COMMON_PARAMS
    search_params = (Param("ef", "int", DEFAULT_EF_SEARCH, low=1,
                           doc="beam width of a search; the effective beam is max(ef, k)"),)

    def __init__(self, *, M: int = 16, ef_construction: int = 200, keep_order: bool = True,
                 levels: str = "insertion", threads: int | None = None, seed: int = 0,
                 **extra: Any):
        super().__init__(threads=threads, seed=seed, extra=extra)
        self.M = check_int("M", M, 2)
        self.ef_construction = check_int("ef_construction", ef_construction, 1)
        self.keep_order = check_bool("keep_order", keep_order)
        self.levels = check_choice("levels", levels, LEVEL_MODES)
        self.honours_order = self.keep_order

    positive_int_search = ("ef",)

    def _factory(self) -> str:
        return f"HNSW{self.M},Flat"

    def _new_index(self, faiss: Any, metric: int) -> Any:
        index = super()._new_index(faiss, metric)  # seeds hnsw.rng
        index.hnsw.efConstruction = self.ef_construction
        return index

    def _used_threads(self, threads: int) -> int:
        return 1 if self.keep_order else threads

    def _add(self, index: Any, x: np.ndarray) -> None:
        # IndexHNSW::add takes the levels as preset, rather than drawing them, when hnsw.levels
        # already holds an entry (level + 1) for each vector it is given
        preset = content_levels(x, self.seed, index.hnsw) + 1 if self.levels == "content" \
            else np.empty(0, dtype=np.int64)
        if not self.keep_order:
            for level in preset:
                index.hnsw.levels.push_back(int(level))
            index.add(x)
            return
        for row in range(len(x)):  # a batch of one cannot be reordered
            if len(preset):
                index.hnsw.levels.push_back(int(preset[row]))
            index.add(x[row:row + 1])

    def _search_parameters(self, faiss: Any, params: dict, k: int) -> Any:
        ef = max(params.get("ef", DEFAULT_EF_SEARCH), k)
        return self._reuse(("ef", ef), lambda: (faiss.SearchParametersHNSW(efSearch=ef),))


def content_levels(x: np.ndarray, seed: int, hnsw: Any) -> np.ndarray:
    """A level per row of ``x`` (0 = bottom only) from the row's bytes and ``seed`` alone,
    distributed as faiss's ``HNSW::random_level`` (``hnsw.assign_probas``).

    Hand-written: neither faiss nor numpy has a seeded per-row hash. A keyed blake2b of each row
    is a uniform draw in [0, 1), mapped through faiss's level probabilities as faiss maps its own.
    """
    import hashlib

    import faiss

    key = seed.to_bytes(8, "little")
    rows = np.ascontiguousarray(x)
    draws = np.fromiter(
        (int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8, key=key).digest(),
                        "little") >> 11 for row in rows), dtype=np.float64, count=len(rows))
    uniform = draws * 2.0**-53
    cumulative = np.cumsum(faiss.vector_to_array(hnsw.assign_probas))
    levels = np.searchsorted(cumulative, uniform, side="right")
    return np.minimum(levels, len(cumulative) - 1).astype(np.int64)


class FaissIVF(_FaissIndex):
    """faiss ``IndexIVFFlat``. Build: ``nlist`` (>= 1, default 256), k-means seeded by ``seed``
    and fitted on ``train`` (which needs at least ``nlist`` vectors); search: ``nprobe``
    (>= 1, default faiss's 1; ``nprobe >= nlist`` is exhaustive)."""

    name = "faiss_ivf"
    _build_param_names = ("nlist",)
    _search_param_names = ("nprobe",)
    params = (Param("nlist", "int", 256, low=1, doc="IVF lists (k-means centroids, fitted on "
                    "train, which needs at least nlist vectors)"),) + COMMON_PARAMS
    search_params = (Param("nprobe", "int", 1, low=1,
                           doc="lists searched per query (nprobe >= nlist is exhaustive)"),)

    def __init__(self, *, nlist: int = 256, threads: int | None = None, seed: int = 0,
                 **extra: Any):
        super().__init__(threads=threads, seed=seed, extra=extra)
        self.nlist = check_int("nlist", nlist, 1)

    positive_int_search = ("nprobe",)

    def _min_train(self) -> tuple[int, str]:
        return self.nlist, f"one per IVF list, nlist={self.nlist}"

    def _factory(self) -> str:
        return f"IVF{self.nlist},Flat"

    def _search_parameters(self, faiss: Any, params: dict, k: int) -> Any:
        nprobe = params.get("nprobe", 1)
        return self._reuse(("nprobe", nprobe), lambda: (faiss.SearchParametersIVF(nprobe=nprobe),))


class FaissIVFPQ(FaissIVF):
    """faiss ``IndexIVFPQ``. Build: ``nlist``, ``m`` (sub-quantizers; must divide the dimension),
    ``nbits`` (bits per sub-code, 1..16), ``refine`` (False, True = exact re-ranking of the
    candidates with ``IndexRefineFlat``, or a faiss refine type such as ``"SQfp16"``, ``"SQ8"``).
    Search: ``nprobe``, and with ``refine`` ``k_factor`` (>= 1, default 1: re-rank
    ``k * k_factor`` PQ candidates). The train set needs ``max(nlist, 2**nbits)`` vectors.
    """

    name = "faiss_ivfpq"
    _build_param_names = ("nlist", "m", "nbits", "refine")
    _search_param_names = ("nprobe", "k_factor")
    params = (
        FaissIVF.params[0],
        Param("m", "int", 8, low=1, doc="PQ sub-quantizers (must divide the dimension)"),
        Param("nbits", "int", 8, low=1, high=16, doc="bits per sub-code (train needs 2**nbits "
              "vectors)"),
        Param("refine", "bool|str", False, doc="re-rank candidates: true = exact (RFlat), or a "
              "faiss refine type such as SQfp16, SQ8"),
    ) + COMMON_PARAMS
    search_params = FaissIVF.search_params + (
        Param("k_factor", "number", 1, low=1, high=MAX_K_FACTOR,
              doc="with refine: re-rank k * k_factor PQ candidates"),)

    def __init__(self, *, nlist: int = 256, m: int = 8, nbits: int = 8, refine: bool | str = False,
                 threads: int | None = None, seed: int = 0, **extra: Any):
        super().__init__(nlist=nlist, threads=threads, seed=seed, **extra)
        self.m = check_int("m", m, 1)
        self.nbits = check_int("nbits", nbits, 1, 16)
        self.refine = refine if isinstance(refine, bool) else check_str("refine", refine)

    @classmethod
    def check_search(cls, params: dict) -> dict:
        params = super().check_search(params)
        if "k_factor" in params:
            params["k_factor"] = check_number("k_factor", params["k_factor"], 1.0)
        return params

    def _min_train(self) -> tuple[int, str]:
        if 2**self.nbits > self.nlist:
            return 2**self.nbits, f"one per PQ centroid, 2**nbits with nbits={self.nbits}"
        return super()._min_train()

    def _factory(self) -> str:
        # "np": no polysemous training, which the factory otherwise runs (slow, and only
        # useful to Hamming-threshold search, which this adapter does not expose)
        factory = f"IVF{self.nlist},PQ{self.m}x{self.nbits}np"
        if self.refine is True or self.refine == "Flat":
            return factory + ",RFlat"
        return factory + (f",Refine({self.refine})" if self.refine else "")

    def _factory_error_path(self) -> str:
        return "refine" if self.refine else "nbits"

    def _new_index(self, faiss: Any, metric: int) -> Any:
        if self.dim_ % self.m:
            raise ConfigError(f"expected a divisor of the dimension {self.dim_}, got {self.m}", "m")
        return super()._new_index(faiss, metric)

    def _search_parameters(self, faiss: Any, params: dict, k: int) -> Any:
        if not self.refine:
            if "k_factor" in params:
                raise ConfigError("k_factor applies only with refine; build with refine: true",
                                  "k_factor")
            return super()._search_parameters(faiss, params, k)
        nprobe, k_factor = params.get("nprobe", 1), params.get("k_factor", 1)

        def make() -> tuple:
            ivf = faiss.SearchParametersIVF(nprobe=nprobe)
            return faiss.IndexRefineSearchParameters(k_factor=k_factor, base_index_params=ivf), ivf
        return self._reuse(("refine", nprobe, k_factor), make)


