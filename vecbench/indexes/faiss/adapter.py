"""The one faiss adapter: create (a family's factory string or constructor), seed, train (on
``train``, else the base), add in the order given, search with per-call ``SearchParameters``,
and report threads and bytes from the built index.

A family is data (:class:`Family`): functions of the configured adapter (its build parameters
are attributes: ``index.M``, ``index.nlist``...), each defaulting to the plain faiss behaviour,
so a new family is a few lines, not a subclass.
"""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from vecbench.core.errors import ConfigError, DataError
from vecbench.indexes.base import (COMMON_PARAMS, BuildReport, Conformance, IndexBase, Searcher,
                                   check_metric, faiss_serialized_size, omp_threads)
from vecbench.indexes.codes import binarize
from vecbench.indexes.faiss import mutations
from vecbench.indexes.faiss.storage import faiss_storage
from vecbench.core.params import check_float

if TYPE_CHECKING:
    import numpy as np

#: faiss's k-means seeds are C ints.
_INT32 = 2**31 - 1


def faiss_message(exc: Exception) -> str:
    """faiss's exception text without the C++ function and file prefix, on one line."""
    text = " ".join(str(exc).split())
    return re.sub(r"^Error in .*? at \S+:\d+: (Error: )?", "", text)


#: The most candidates per result a refine step re-ranks (k x k_factor): beyond it faiss
#: allocates k x k_factor ids per query, or overflows its int on an infinite one.
MAX_K_FACTOR = 1000


def check_number(name: str, value: Any, low: float, high: float | None = None) -> int | float:
    """A number in [low, high], kept an int when given as one (so results record
    ``nprobe: 16``); k_factor-like names get :data:`MAX_K_FACTOR` as their bound."""
    if high is None and name.split("quantizer_")[-1].startswith("k_factor"):
        high = MAX_K_FACTOR
    checked = check_float(name, value, low, high)
    return int(value) if isinstance(value, numbers.Integral) else checked


def seed_index(index: Any, seed: int) -> None:
    """Seed what faiss lets one seed in any factory-built index: HNSW levels, IVF and PQ k-means
    (including an OPQ pre-transform's)."""
    import faiss

    top = faiss.downcast_index(index)
    if isinstance(top, faiss.IndexPreTransform):
        for i in range(top.chain.size()):
            transform = faiss.downcast_VectorTransform(top.chain.at(i))
            if isinstance(transform, faiss.OPQMatrix):
                transform.seed = seed % _INT32
        top = faiss.downcast_index(top.index)
    if isinstance(top, faiss.IndexHNSW):
        top.hnsw.rng = faiss.RandomGenerator(seed)
    pq = getattr(top, "pq", None)
    if pq is not None and not isinstance(top, faiss.IndexIVF):
        pq.cp.seed = seed % _INT32
    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:
        return  # not an IVF index
    ivf.cp.seed = seed % _INT32
    pq = getattr(faiss.downcast_index(ivf), "pq", None)
    if pq is not None:
        pq.cp.seed = seed % _INT32


def factory_index(index: FaissIndex, faiss: Any, metric: int) -> Any:
    """The family's factory string at the built dimension, seeded."""
    factory = index.family.factory(index)
    try:
        made = faiss.index_factory(index.dim_, factory, metric)
    except RuntimeError as exc:
        raise ConfigError(f"faiss cannot build {factory!r} for dimension {index.dim_}: "
                          f"{faiss_message(exc)}", index.family.blame(index)) from None
    seed_index(made, index.seed)
    return made


def search_plain(index: FaissIndex, faiss: Any, q: np.ndarray, k: int, params: dict,
                 faiss_params: Any) -> tuple[np.ndarray, np.ndarray]:
    """One faiss search on the index's search threads."""
    # omp_threads inlined: a context manager costs ~0.5 us, a tenth of a small HNSW search
    threads, previous = index.n_threads, faiss.omp_get_max_threads()
    if previous != threads:
        faiss.omp_set_num_threads(threads)
    try:
        distances, ids = index.index_.search(q, k, params=faiss_params)
    finally:
        if previous != threads:
            faiss.omp_set_num_threads(previous)
    return ids, distances


def _factory_details(index: FaissIndex) -> dict:
    return {"factory": index.family.factory(index)}


@dataclass(frozen=True)
class Family:
    """One faiss index family: its parameters and how it differs from the plain path.

    Every callable takes the configured adapter first (``index``; build parameters are its
    attributes, the built dimension ``index.dim_``).
    """

    name: str                  # the registry name
    doc: str                   # what ``vecbench describe`` shows
    params: tuple = ()         # build parameter declarations (threads and seed are added)
    search_params: tuple = ()
    conformance: Conformance = Conformance()
    #: the faiss index_factory string (used by the default ``make`` and the details)
    factory: Callable[[Any], str] = lambda index: "Flat"
    #: the build parameter a factory string faiss refuses is blamed on
    blame: Callable[[Any], str] = lambda index: "factory"
    #: (index, faiss, metric or bits) -> an empty faiss index
    make: Callable[[Any, Any, int], Any] = factory_index
    #: the fewest training vectors faiss can fit the index on, and why
    min_train: Callable[[Any], tuple[int, str]] = lambda index: (1, "")
    #: (index, faiss index, vectors) adds the base in the order given
    add: Callable[[Any, Any, np.ndarray], None] = lambda index, made, x: made.add(x)
    #: (index, base as given) checks the input kind before the build (scalar quantizers)
    prepare: Callable[[Any, Any], None] = lambda index, x: None
    #: (index, faiss, checked params, k) -> (key, make) of the SearchParameters to reuse;
    #: make() returns (object, *objects it points to); None: nothing to set
    search_parameters: Callable[[Any, Any, dict, int], Any] = lambda index, faiss, p, k: None
    #: (index, faiss, queries, k, params, SearchParameters) -> (ids, distances)
    search: Callable[..., tuple] = search_plain
    #: search parameter validation without data (default: the declarations)
    check_search: Callable[[type, dict], dict] | None = None
    #: what the configured index decides from the YAML alone
    check_search_for: Callable[[Any, dict], dict] | None = None
    #: rules tying build parameters together, at construction
    check: Callable[[Any], None] = lambda index: None
    accepts: frozenset = frozenset({"float32"})  # over all configurations
    accepts_for: Callable[[Any], frozenset] | None = None  # this configuration's
    honours_order: bool = False                  # over all configurations
    honours_order_for: Callable[[Any], bool] | None = None
    #: threads the add really ran on (one for a build that adds one vector at a time)
    used_threads: Callable[[Any, int], int] = lambda index, threads: threads
    details: Callable[[Any], dict] = _factory_details
    binary: bool = False       # packed sign bits, searched by Hamming distance
    #: how a built index takes inserts and deletes ("ivf", "flat"; "": it cannot), see
    #: vecbench.indexes.faiss.mutations
    mutation: str = ""
    extra: dict = field(default_factory=dict)  # family constants (qtypes, ...)


class FaissIndex(IndexBase):
    """A faiss index of one :class:`Family` (the class attribute ``family``)."""

    family: Family
    _parameter_objects: dict

    def __init__(self, **params: Any):
        super().__init__(**params)
        if self.family.accepts_for is not None:
            self.accepts = self.family.accepts_for(self)
        if self.family.honours_order_for is not None:
            self.honours_order = self.family.honours_order_for(self)

    def check(self, values: dict) -> None:
        self.family.check(self)

    @classmethod
    def check_search(cls, params: dict) -> dict:
        if cls.family.check_search is not None:
            return cls.family.check_search(cls, params)
        return super().check_search(params)

    def check_search_for(self, params: dict) -> dict:
        if self.family.check_search_for is not None:
            return self.family.check_search_for(self, params)
        return self.check_search(params)

    def _reuse(self, key: tuple, make: Callable[[], tuple]) -> Any:
        """A faiss object made once per distinct setting: making a SearchParameters costs more
        than a single-query HNSW search. ``make`` returns (object, *objects it points to), all
        kept alive here because SWIG does not keep nested parameter objects alive."""
        try:
            return self._parameter_objects[key][0]
        except KeyError:
            self._parameter_objects[key] = made = make()
            return made[0]

    # -- build ------------------------------------------------------------------------------

    def build(self, x: Any, metric: str, *, train: Any = None,
              threads: int | None = None) -> BuildReport:
        import faiss
        import numpy as np

        family = self.family
        threads = self._build_threads(threads)
        self._native_codes: np.ndarray | None = None
        self.labels_ = None  # the id of each stored row, once a flat index has changed
        self.float_input_ = True  # handed float32 (not codes a quantizer made)
        try:
            family.prepare(self, x)
            x = self._start_binary_build(x, metric) if family.binary else \
                self._start_build(x, metric)
            self._parameter_objects = {}
            with omp_threads(threads):
                what = 8 * self.code_bytes_ if family.binary else \
                    faiss.METRIC_L2 if self.metric_ == "l2" else faiss.METRIC_INNER_PRODUCT
                index = family.make(self, faiss, what)
                if not index.is_trained:
                    self._train(index, self._training_vectors(train, x))
                family.add(self, index, x)
        finally:
            self._native_codes = None
        self.index_ = index
        return self._report(family.used_threads(self, threads))

    def _training_vectors(self, train: Any, x: np.ndarray) -> np.ndarray:
        """``train`` when given (binarized for a binary index), else the base vectors."""
        if self.family.binary:
            return x if train is None else self._codes(train, "train vectors")[0]
        return self._train_set(train, x)

    def _train(self, index: Any, train: np.ndarray) -> None:
        need, why = self.family.min_train(self)
        if len(train) < need:
            raise DataError(f"{self.name}: train set has {len(train)} vectors; "
                            f"expected at least {need} ({why})")
        try:
            index.train(train)
        except RuntimeError as exc:
            raise DataError(f"{self.name}: training on {len(train)} vectors failed: "
                            f"{faiss_message(exc)}") from None

    def _report(self, threads: int) -> BuildReport:
        """Threads and bytes of the built index, read from faiss's structures."""
        storage = faiss_storage(self.index_)
        return BuildReport(
            threads=threads, deterministic=threads == 1 or not storage.graph_batch_add,
            code_bytes_per_vector=storage.code, graph_bytes_per_vector=storage.graph,
            compresses=self.float_input_ and storage.searched < 4 * self.dim_,
            details={**self.family.details(self), "faiss_classes": "/".join(storage.classes)})

    # -- binary codes -------------------------------------------------------------------------

    code_bytes_: int | None = None

    def _start_binary_build(self, x: Any, metric: str) -> np.ndarray:
        self.index_ = None  # a failed build leaves no half-built index behind
        self._forget_searches()
        self.metric_ = check_metric(metric)
        self.dim_ = self.code_bytes_ = None
        codes, float_dim = self._codes(x, "base vectors")
        if len(codes) == 0:
            raise DataError(f"{self.name}: expected at least one base vector, got 0")
        self.dim_, self.code_bytes_, self.ntotal_ = float_dim, codes.shape[1], len(codes)
        self._nbytes = None
        self.float_input_ = float_dim is not None  # floats in: the index binarizes them itself
        return codes

    def _codes(self, x: Any, what: str) -> tuple[np.ndarray, int | None]:
        """Packed codes of ``x`` (codes as given, floats binarized) and its float dimension
        (None for codes), checked against the built index."""
        import numpy as np

        x = np.asarray(x)
        if x.ndim != 2:
            raise DataError(f"{self.name}: {what}: expected a 2-D array, got shape {x.shape}")
        float_dim = None
        if x.dtype == np.uint8:
            codes = x
        else:
            float_dim = int(x.shape[1])
            if self.dim_ is not None and float_dim != self.dim_:
                raise DataError(f"{self.name}: {what}: expected vectors of dimension "
                                f"{self.dim_}, got {float_dim}")
            codes = binarize(x)
        if self.code_bytes_ is not None and codes.shape[1] != self.code_bytes_:
            raise DataError(f"{self.name}: {what}: expected packed codes of {self.code_bytes_} "
                            f"bytes (a {x.dtype} array of shape (n, {self.code_bytes_})), got "
                            f"{codes.shape[1]} bytes from shape {x.shape}")
        return np.ascontiguousarray(codes), float_dim

    # -- search -------------------------------------------------------------------------------

    def _queries(self, q: Any) -> np.ndarray:
        return self._codes(q, "queries")[0] if self.family.binary else super()._queries(q)

    def _searching(self, params: dict) -> Callable[[np.ndarray, int], tuple]:
        import faiss
        import numpy as np

        family, by_k = self.family, {}  # SearchParameters by k (an HNSW beam is max(ef, k))

        def run(q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            try:
                faiss_params = by_k[k]
            except KeyError:
                made = family.search_parameters(self, faiss, params, k)
                faiss_params = by_k[k] = None if made is None else self._reuse(*made)
            ids, distances = family.search(self, faiss, q, k, params, faiss_params)
            if self.labels_ is not None:
                ids = mutations.mapped(self, ids)
            return ids, (distances.astype(np.float32) if family.binary else distances)
        return run

    def filtered_searcher(self, queries: Any, k: int, params: dict, place: int) -> Searcher:
        """faiss's own filter: an ``IDSelectorBitmap`` in the search's ``SearchParameters``
        (``sel``), one for the batch when every query sees the same rows, else one per query
        (searched one at a time: faiss applies one selector to a whole batch)."""
        import faiss
        import numpy as np

        _refuse_flat_fast_scan(self.name, self.index_, faiss)
        q, k, _ = self._start_search(queries, k, params)  # checked queries and k
        params = self.check_search(params)
        masks, shared = self._filter_masks(place, len(q))
        bitmaps = np.packbits(masks, axis=1, bitorder="little")  # faiss reads bit i & 7 of byte i >> 3
        family, ntotal = self.family, self.ntotal_

        def parameters(row: int, depth: int) -> Any:
            selector = faiss.IDSelectorBitmap(ntotal, faiss.swig_ptr(bitmaps[row]))
            made = family.search_parameters(self, faiss, params, depth)
            objects = made[1]() if made is not None else (faiss.SearchParameters(),)
            for obj in objects:  # a refine's base parameters filter too
                obj.sel = selector
            return objects + (selector,)  # kept alive with the parameters that point to it

        by_depth: dict = {}

        def made_for(depth: int) -> list:
            if depth not in by_depth:
                by_depth[depth] = [parameters(row, depth) for row in range(len(bitmaps))]
            return by_depth[depth]

        def search_rows(rows: slice = slice(None), k: int = k) -> tuple[np.ndarray, Any]:
            made = made_for(k)
            if shared:
                return family.search(self, faiss, q[rows], k, params, made[0][0])
            chosen = range(len(q))[rows]
            ids = np.empty((len(chosen), k), dtype=np.int64)
            distances = np.empty((len(chosen), k), dtype=np.float32)
            for out, row in enumerate(chosen):
                found = family.search(self, faiss, q[row:row + 1], k, params, made[row][0])
                ids[out], distances[out] = found[0][0], found[1][0]
            return ids, distances
        made_for(k)
        return search_rows

    # -- mutations (runbooks) -------------------------------------------------------------------

    labels_: Any = None

    def insert(self, x: Any, ids: Any) -> None:
        if "insert" not in self.capabilities:
            self._refuse("insert")
        x, ids = self._mutation_rows(x, ids)
        mutations.insert(self, x, ids)

    def delete(self, ids: Any) -> None:
        import numpy as np

        if "delete" not in self.capabilities:
            self._refuse("delete")
        self._nbytes = None
        mutations.delete(self, np.ascontiguousarray(ids, dtype=np.int64))

    def _serialized_size(self) -> int:
        return faiss_serialized_size(self.index_, binary=self.family.binary)


def faiss_adapter(family: Family, class_name: str, module: str) -> type[FaissIndex]:
    """The registry's class for ``family`` (its declarations are class attributes, so the
    experiment loader, ``describe`` and the docs read them without building anything)."""
    # the constructor's signature comes from the declarations (IndexBase.__init_subclass__)
    return type(class_name, (FaissIndex,), {
        "__module__": module, "__doc__": family.doc, "family": family, "name": family.name,
        "params": family.params + COMMON_PARAMS, "search_params": family.search_params,
        "accepts": family.accepts, "honours_order": family.honours_order,
        # IDSelector filters every float family's search (not the binary indexes' here);
        # the mutations a runbook may ask depend on the family
        "capabilities": mutations.CAPABILITIES[family.mutation]
        | (frozenset() if family.binary else frozenset({"filter"})),
        "conformance": family.conformance})


def _refuse_flat_fast_scan(name: str, index: Any, faiss: Any) -> None:
    """faiss's fast-scan search without IVF lists takes no SearchParameters (1.15: it throws),
    so no IDSelector; IVF fast-scan filters like the other IVF indexes."""
    inner = faiss.downcast_index(index)
    while isinstance(inner, (faiss.IndexRefine, faiss.IndexPreTransform)):
        inner = faiss.downcast_index(inner.base_index if isinstance(inner, faiss.IndexRefine)
                                     else inner.index)
    if isinstance(inner, faiss.IndexFastScan):
        raise ConfigError(f"{name}: faiss cannot filter a fast-scan index without IVF lists "
                          f"({type(inner).__name__}); expected nlist > 0 for a native filter, "
                          "or filter_mode: post", "search.filter_mode")
