"""faiss indexes: HNSW (in insertion order), IVF-Flat, IVF-PQ (with optional refinement), and any
``index_factory`` string.

Search parameters travel in faiss ``SearchParameters`` objects, so an index holds no search state
between calls; ``FaissFactory``, which accepts any factory string, sets ParameterSpace values for
one call and restores the built values afterwards.
"""

from __future__ import annotations

import difflib
import numbers
import re
from typing import Any

import numpy as np

from vecbench.errors import ConfigError, DataError
from vecbench.indexes.base import COMMON_PARAMS, IndexBase, faiss_serialized_size, omp_threads
from vecbench.params import Param, check_bool, check_choice, check_float, check_int, check_str

#: faiss's default efSearch.
DEFAULT_EF_SEARCH = 16
#: faiss's k-means seeds are C ints.
_INT32 = 2**31 - 1


def faiss_message(exc: Exception) -> str:
    """faiss's exception text without the C++ function and file prefix, on one line."""
    text = " ".join(str(exc).split())
    return re.sub(r"^Error in .*? at \S+:\d+: (Error: )?", "", text)


def check_number(name: str, value: Any, low: float) -> int | float:
    """A number >= ``low``, kept an int when given as one (so results record ``nprobe: 16``)."""
    checked = check_float(name, value, low)
    return int(value) if isinstance(value, numbers.Integral) else checked


def seed_kmeans(index: Any, seed: int) -> None:
    """Seed the k-means of an IVF index's coarse quantizer and, for PQ, of its codebooks."""
    import faiss

    ivf = faiss.extract_index_ivf(index)
    ivf.cp.seed = seed % _INT32
    pq = getattr(faiss.downcast_index(ivf), "pq", None)
    if pq is not None:
        pq.cp.seed = seed % _INT32


class _FaissIndex(IndexBase):
    """Build = create, train when needed (on ``train``, else on the base vectors), add."""

    _parameter_objects: dict

    def _min_train(self) -> tuple[int, str]:
        """The fewest training vectors faiss can fit this index on, and why."""
        return 1, ""

    def _new_index(self, faiss: Any, metric: int) -> Any:
        raise NotImplementedError

    def _add(self, index: Any, x: np.ndarray) -> None:
        index.add(x)

    def _search_parameters(self, faiss: Any, params: dict, k: int) -> Any:
        return None

    def _reuse(self, key: tuple, make: Any) -> Any:
        """A faiss SearchParameters object made once per distinct setting: making one costs
        more than a single-query HNSW search. ``make`` returns (object, *objects it points to),
        all kept alive here because SWIG does not keep nested parameter objects alive."""
        try:
            return self._parameter_objects[key][0]
        except KeyError:
            self._parameter_objects[key] = made = make()
            return made[0]

    def build(self, x: Any, metric: str, *, train: Any = None) -> None:
        import faiss

        x = self._start_build(x, metric)
        self._parameter_objects = {}
        faiss_metric = faiss.METRIC_L2 if self.metric_ == "l2" else faiss.METRIC_INNER_PRODUCT
        with omp_threads(self.n_threads):
            index = self._new_index(faiss, faiss_metric)
            if not index.is_trained:
                train_set = self._train_set(train, x)
                need, why = self._min_train()
                if len(train_set) < need:
                    raise DataError(f"{self.name}: train set has {len(train_set)} vectors; "
                                    f"expected at least {need} ({why})")
                try:
                    index.train(train_set)
                except RuntimeError as exc:
                    raise DataError(f"{self.name}: training on {len(train_set)} vectors failed: "
                                    f"{faiss_message(exc)}") from None
            self._add(index, x)
        self.index_ = index

    def search(self, q: Any, k: int, **search_params: Any) -> np.ndarray:
        import faiss

        q, k, params = self._start_search(q, k, search_params)
        faiss_params = self._search_parameters(faiss, params, k)
        with omp_threads(self.n_threads):
            _, ids = self.index_.search(q, k, params=faiss_params)
        return ids

    def _serialized_size(self) -> int:
        return faiss_serialized_size(self.index_)


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

    def _new_index(self, faiss: Any, metric: int) -> Any:
        index = faiss.IndexHNSWFlat(self.dim_, self.M, metric)
        index.hnsw.efConstruction = self.ef_construction
        index.hnsw.rng = faiss.RandomGenerator(self.seed)
        return index

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
        self.build_threads_ = 1
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

    def _new_index(self, faiss: Any, metric: int) -> Any:
        index = faiss.index_factory(self.dim_, f"IVF{self.nlist},Flat", metric)
        seed_kmeans(index, self.seed)
        return index

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
        Param("k_factor", "number", 1, low=1,
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

    def _new_index(self, faiss: Any, metric: int) -> Any:
        if self.dim_ % self.m:
            raise ConfigError(f"expected a divisor of the dimension {self.dim_}, got {self.m}", "m")
        # "np": no polysemous training, which the factory otherwise runs (slow, and only
        # useful to Hamming-threshold search, which this adapter does not expose)
        factory = f"IVF{self.nlist},PQ{self.m}x{self.nbits}np"
        if self.refine is True or self.refine == "Flat":
            factory += ",RFlat"
        elif self.refine:
            factory += f",Refine({self.refine})"
        try:
            index = faiss.index_factory(self.dim_, factory, metric)
        except RuntimeError as exc:
            raise ConfigError(f"faiss cannot build {factory!r}: {faiss_message(exc)}",
                              "refine" if self.refine else "nbits") from None
        seed_kmeans(index, self.seed)
        return index

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


#: Search parameter names vecbench lets through to faiss's ParameterSpace (each may carry any
#: number of ``quantizer_`` prefixes, which faiss applies to an IVF's coarse quantizer).
FACTORY_SEARCH_PARAMS = ("efSearch", "ht", "k_factor", "k_factor_rf", "max_codes", "nprobe")


class FaissFactory(_FaissIndex):
    """Any faiss ``index_factory`` string (build param ``factory``), e.g. ``"IVF1024,PQ32,RFlat"``,
    ``"OPQ16,IVF256,PQ16"``, ``"HNSW32,Flat"``.

    Search parameters are faiss ParameterSpace names (``FACTORY_SEARCH_PARAMS``, optionally with
    ``quantizer_`` prefixes); ``k_factor`` on a refine index means faiss's ``k_factor_rf``. They
    are set for one search call and restored to their built values afterwards. The whole base is
    added as one batch, so insertion order is not guaranteed (HNSW factories reorder a batch).
    """

    name = "faiss_factory"
    _build_param_names = ("factory",)
    _search_param_names = FACTORY_SEARCH_PARAMS
    params = (Param("factory", "str", "Flat", doc="a faiss index_factory string, e.g. "
                    "IVF1024,PQ32,RFlat or HNSW32,Flat"),) + COMMON_PARAMS
    search_params = tuple(
        Param(name, "number", None, low=0, doc="faiss ParameterSpace value (also with "
              "quantizer_ prefixes); unset: the built index's value")
        for name in FACTORY_SEARCH_PARAMS)

    def __init__(self, *, factory: str = "Flat", threads: int | None = None, seed: int = 0,
                 **extra: Any):
        super().__init__(threads=threads, seed=seed, extra=extra)
        self.factory = check_str("factory", factory)

    @classmethod
    def check_search(cls, params: dict) -> dict:
        checked = {}
        for name, value in params.items():
            base = str(name)
            while base.startswith("quantizer_"):
                base = base[len("quantizer_"):]
            if base not in FACTORY_SEARCH_PARAMS:
                close = difflib.get_close_matches(base, FACTORY_SEARCH_PARAMS, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(f"unknown parameter of {cls.name} search{hint}; expected one of: "
                                  f"{', '.join(FACTORY_SEARCH_PARAMS)} (optionally prefixed "
                                  "with quantizer_)", str(name))
            checked[name] = check_number(name, value, 0.0)
        return checked

    def _new_index(self, faiss: Any, metric: int) -> Any:
        try:
            index = faiss.index_factory(self.dim_, self.factory, metric)
        except RuntimeError as exc:
            raise ConfigError(f"faiss cannot build {self.factory!r} for dimension {self.dim_}: "
                              f"{faiss_message(exc)}", "factory") from None
        top = faiss.downcast_index(index)
        if isinstance(top, faiss.IndexHNSW):
            top.hnsw.rng = faiss.RandomGenerator(self.seed)
        try:
            seed_kmeans(index, self.seed)
        except RuntimeError:
            pass  # not an IVF index
        return index

    def search(self, q: Any, k: int, **search_params: Any) -> np.ndarray:
        import faiss

        q, k, params = self._start_search(q, k, search_params)
        space = self._reuse(("space",), lambda: (faiss.ParameterSpace(),))
        saved: list[tuple[Any, str, Any]] = []
        try:
            for name, value in params.items():
                if name == "k_factor" and self._reuse(("refine",), lambda: (
                        isinstance(_unwrap(self.index_), faiss.IndexRefine),)):
                    name = "k_factor_rf"
                slots = self._reuse(("slots", name),
                                    lambda: (_parameter_slots(self.index_, name),))
                if slots is None:
                    raise ConfigError(f"not a search parameter of {self.factory!r}; it takes: "
                                      f"{', '.join(_tunable_names(self.index_)) or '(none)'}",
                                      name)
                saved += [(owner, attr, getattr(owner, attr)) for owner, attr in slots]
                space.set_index_parameter(self.index_, name, value)
            with omp_threads(self.n_threads):
                _, ids = self.index_.search(q, k)
        finally:
            for owner, attr, value in reversed(saved):
                setattr(owner, attr, value)
        return ids


def _unwrap(index: Any) -> Any:
    """The index under IDMap and pre-transform wrappers, downcast to its class."""
    import faiss

    index = faiss.downcast_index(index)
    while isinstance(index, (faiss.IndexPreTransform, faiss.IndexIDMap, faiss.IndexIDMap2)):
        index = faiss.downcast_index(index.index)
    return index


def _tunable_names(index: Any) -> list[str]:
    import faiss

    space = faiss.ParameterSpace()
    space.initialize(index)
    return [space.parameter_ranges.at(i).name for i in range(space.parameter_ranges.size())]


def _parameter_slots(index: Any, name: str) -> list[tuple[Any, str]] | None:
    """The (object, attribute) pairs faiss's ParameterSpace writes for ``name`` on ``index``,
    so their built values can be restored after a search; None where vecbench does not know.

    Mirrors ``ParameterSpace::set_index_parameter`` (faiss/AutoTune.cpp), which has no getter.
    """
    import faiss

    index = _unwrap(index)
    if isinstance(index, faiss.IndexRefine):
        if name == "k_factor_rf":
            return [(index, "k_factor")]
        return _parameter_slots(index.base_index, name)
    if isinstance(index, faiss.IndexHNSW):
        return [(index.hnsw, "efSearch")] if name == "efSearch" else None
    if isinstance(index, faiss.IndexPQ):
        return [(index, "search_type"), (index, "polysemous_ht")] if name == "ht" else None
    if not isinstance(index, faiss.IndexIVF):
        return None
    if name in ("nprobe", "max_codes"):
        return [(index, name)]
    if name == "ht" and isinstance(index, faiss.IndexIVFPQ):
        return [(index, "polysemous_ht")]
    if name == "k_factor" and isinstance(index, faiss.IndexIVFPQR):
        return [(index, "k_factor")]
    quantizer = faiss.downcast_index(index.quantizer)
    if name == "efSearch" and isinstance(quantizer, faiss.IndexHNSW):
        return [(quantizer.hnsw, "efSearch")]
    if name.startswith("quantizer_"):
        return _parameter_slots(quantizer, name[len("quantizer_"):])
    return None
