"""What the built-in adapters share: parameter checks, metric handling, threads, -1 padding.

Adapters subclass :class:`IndexBase` for these helpers; the interface itself is the protocol
:class:`vecbench.indexes.protocol.Index` (a base class is not required of third-party indexes).
numpy is imported by the functions that take data, so that ``vecbench validate`` reads the
declarations and runs the checks of every index without it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable

from vecbench.core.errors import DataError
from vecbench.core.vectors import (  # noqa: F401  (is_unit_norm: also imported from here)
    METRICS, UNIT_NORM_TOLERANCE, is_unit_norm, normalize_rows)
from vecbench.indexes.protocol import BuildReport, Conformance, Searcher  # noqa: F401
from vecbench.core.environment import cpu_count
from vecbench.core.params import Param, check_choice, check_int, declared, signature, validate

if TYPE_CHECKING:
    import numpy as np

#: Seeds are stored by the libraries as 64-bit integers.
MAX_SEED = 2**63 - 1
#: Build parameters every index takes (the runner sets them; an experiment may override).
COMMON_PARAMS = (
    Param("threads", "int", None, low=1, nullable=True,
          doc="threads for build and search (null: all cores; ordered builds use 1)"),
    Param("seed", "int", 0, low=0, high=MAX_SEED,
          doc="seeds what the library lets one seed (HNSW levels, k-means); the runner adds "
              "the repeat number"),
)


@functools.lru_cache(maxsize=1)
def available_cores() -> int:
    """Cores this process may run on (cached: it is read on every search call)."""
    return cpu_count()


def check_threads(threads: Any) -> int | None:
    """``None`` (all cores) or a positive thread count."""
    return None if threads is None else check_int("threads", threads, 1)


def check_k(k: Any) -> int:
    return check_int("k", k, 1)


def check_metric(metric: Any) -> str:
    return check_choice("metric", metric, METRICS)


class omp_threads:  # noqa: N801  (used like a function: ``with omp_threads(n):``)
    """Run faiss (and the OpenMP BLAS it ships with) on ``n`` threads, then restore the setting.

    faiss's thread count is process-global OpenMP state, so it is set around each call rather
    than once: another index in the same process may want a different count. A class rather
    than a generator context manager: this wraps every single-query search, so it must be cheap.
    """

    def __init__(self, n: int):
        import faiss

        self._faiss, self._n, self._previous = faiss, n, None

    def __enter__(self) -> None:
        previous = self._faiss.omp_get_max_threads()
        if previous != self._n:
            self._previous = previous
            self._faiss.omp_set_num_threads(self._n)

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            self._faiss.omp_set_num_threads(self._previous)


def pad_ids(ids: np.ndarray, k: int) -> np.ndarray:
    """Widen (nq, k') ids to (nq, k) int64, C-contiguous, filling the missing columns with -1."""
    import numpy as np

    if ids.shape[1] == k and ids.dtype == np.int64 and ids.flags.c_contiguous:
        return ids
    out = np.full((ids.shape[0], k), -1, dtype=np.int64)
    out[:, :ids.shape[1]] = ids
    return out


def pad_distances(distances: np.ndarray, k: int) -> np.ndarray:
    """Widen (nq, k') distances to (nq, k) float32, filling the missing columns with inf."""
    import numpy as np

    if distances.shape[1] == k and distances.dtype == np.float32:
        return distances
    out = np.full((distances.shape[0], k), np.inf, dtype=np.float32)
    out[:, :distances.shape[1]] = distances
    return out


def as_vectors(x: Any, what: str, metric: str, dim: int | None = None) -> np.ndarray:
    """float32 C-contiguous rows, shape checked; for ``cos``, rows normalized as a new array
    unless they already are unit-norm (the caller's vectors are never modified)."""
    import numpy as np

    x = np.asarray(x)
    if x.ndim != 2:
        raise DataError(f"{what}: expected a 2-D array of vectors, got shape {x.shape}")
    if dim is not None and x.shape[1] != dim:
        raise DataError(f"{what}: expected vectors of dimension {dim}, got {x.shape[1]}")
    if not (x.dtype == np.float32 and x.flags.c_contiguous):
        x = np.ascontiguousarray(x, dtype=np.float32)
    if metric == "cos" and not is_unit_norm(x):
        return normalize_rows(x)
    return x


def faiss_serialized_size(index: Any, binary: bool = False) -> int:
    """Bytes ``faiss.write_index`` writes for ``index``, counted as they stream past (a writer
    that keeps nothing), so no serialized copy of the index is ever held in memory."""
    import faiss

    total = 0

    def count(chunk: bytes) -> None:
        nonlocal total
        total += len(chunk)

    writer = faiss.PyCallbackIOWriter(count)
    (faiss.write_index_binary if binary else faiss.write_index)(index, writer)
    del writer  # flushes anything still buffered
    return total


class IndexBase:
    """Shared state and checks of the built-in adapters (one level: adapters subclass it, and
    nothing subclasses an adapter).

    Subclasses set ``name`` (the registry name, used in messages) and declare their parameters
    once, as :class:`~vecbench.core.params.Param` tuples: ``params`` (build, ending with
    ``COMMON_PARAMS``) and ``search_params``. The declaration is all there is: the constructor
    validates the keywords against it (:func:`vecbench.core.params.validate`, the path ``vecbench
    validate`` takes), stores each as an attribute of its name, and ``get_params``,
    ``check_search``, the constructor's signature, ``describe`` and the docs are read from it.
    Rules tying parameters together go in :meth:`check`; an adapter writes ``__init__`` only
    for derived state (calling ``super().__init__(**params)`` first). Adapters implement
    ``build``, ``_serialized_size`` and ``_searching`` (or ``searcher`` itself). Learned state
    (set by ``build``) lives in attributes ending in ``_``.
    """

    name = "index"
    index_: Any = None  # the library's index, set when build() succeeds
    accepts = frozenset({"float32"})
    capabilities: frozenset = frozenset()  # of protocol.CAPABILITIES ("filter": see below)
    filters_: tuple = ()  # the unit's filters in index row order (attach_filters)
    honours_order = False
    params = COMMON_PARAMS    # declarations (vecbench.core.params): build parameters
    search_params: tuple = ()  # and search parameters
    conformance = Conformance()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # the constructor's keywords, as a hand-written __init__ would spell them
        cls.__signature__ = signature(declared(cls))

    def __init__(self, **params: Any):
        if isinstance(params.get("extra"), dict) and "extra" not in self._param_names():
            # the form adapters written before the declarations were the constructor used:
            # super().__init__(threads=threads, seed=seed, extra=extra)
            params = {**params.pop("extra"), **params}
        values = validate(type(self), params)
        for name, value in values.items():
            setattr(self, name, value)
        self.check(values)
        self.metric_: str | None = None
        self.dim_: int | None = None
        self.ntotal_ = 0
        self._nbytes: int | None = None
        #: checked parameters and run(q, k) of each search setting, made for this build and
        #: thread count (``_start_search``)
        self._searches: dict[tuple, list] = {}
        self._searches_for: Any = None
        self._searches_threads: int | None = None

    @classmethod
    def _param_names(cls) -> tuple[str, ...]:
        return tuple(param.name for param in declared(cls))

    def check(self, values: dict[str, Any]) -> None:
        """Rules tying build parameters together, on the checked ``values`` (also stored as
        attributes by then); raise ConfigError naming the parameter. None by default."""

    @property
    def n_threads(self) -> int:
        """The thread count actually used: ``threads``, or all available cores when None."""
        return self.threads if self.threads is not None else available_cores()

    def get_params(self) -> dict[str, Any]:
        """Build parameters as given to the constructor (with defaults), threads and seed
        included: every declared name, in declaration order."""
        return {name: getattr(self, name) for name in self._param_names()}

    @classmethod
    def check_search(cls, params: dict) -> dict:
        """Validate search parameters against ``search_params`` without data; return them
        normalized (no defaults added)."""
        return validate(cls, params, which="search_params", defaults=False)

    def check_search_for(self, params: dict) -> dict:
        """Validate search parameters for this configured index, without data (what the YAML
        alone decides); by default the same as :meth:`check_search`."""
        return self.check_search(params)

    def nbytes(self) -> int:
        """Serialized size of the built index in bytes (never process memory)."""
        if self.index_ is None:
            raise RuntimeError(f"{self.name}: nbytes() called before build()")
        if self._nbytes is None:
            self._nbytes = int(self._serialized_size())
        return self._nbytes

    def _serialized_size(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the build acquired: for an in-process library only the settings'
        searches (they refer back to the index, so without this its memory would wait for the
        cycle collector); engines release tables, folders and servers too."""
        self._forget_searches()

    # -- mutations (runbooks); adapters declaring the capability override them ----------------

    def insert(self, x: Any, ids: Any) -> None:
        """Add ``x`` under ``ids`` to the built index (capability ``insert``)."""
        self._refuse("insert")

    def delete(self, ids: Any) -> None:
        """Remove ``ids`` from the built index (capability ``delete``)."""
        self._refuse("delete")

    def compact(self) -> bool:
        """The engine's own upkeep after changes; False: this index has none."""
        return False

    def _refuse(self, what: str) -> None:
        from vecbench.core.errors import ConfigError

        raise ConfigError(f"{self.name} cannot {what} natively (its capabilities: "
                          f"{', '.join(sorted(self.capabilities)) or 'none'})")

    def _mutation_rows(self, x: Any, ids: Any) -> tuple[np.ndarray, np.ndarray]:
        """Rows as the build checked them (cos: unit-norm) and their ids, for insert."""
        import numpy as np

        if self.index_ is None:
            raise RuntimeError(f"{self.name}: insert() called before build()")
        x = as_vectors(x, f"{self.name}: inserted vectors", self.metric_, self.dim_)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) != len(x):
            raise DataError(f"{self.name}: {len(x)} vectors inserted with {len(ids)} ids")
        self._nbytes = None
        return x, ids

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- helpers for build --------------------------------------------------------------------

    def _build_threads(self, threads: Any) -> int:
        """Threads a build runs on: ``threads`` given to build(), else the index's own."""
        threads = check_threads(threads)
        return threads if threads is not None else self.n_threads

    def _start_build(self, x: Any, metric: Any) -> np.ndarray:
        self.index_ = None  # a failed build leaves no half-built index behind
        self._forget_searches()
        metric = check_metric(metric)
        x = as_vectors(x, f"{self.name}: base vectors", metric)
        if len(x) == 0:
            raise DataError(f"{self.name}: expected at least one base vector, got 0")
        self.metric_, self.dim_, self.ntotal_ = metric, int(x.shape[1]), int(len(x))
        self._nbytes = None
        return x

    def _train_set(self, train: Any, x: np.ndarray) -> np.ndarray:
        """The vectors to fit quantizers on: ``train`` when given, else the base vectors."""
        if train is None:
            return x
        return as_vectors(train, f"{self.name}: train vectors", self.metric_, self.dim_)

    # -- filtered search (capability "filter") ---------------------------------------------------

    def attach_filters(self, filters: Any) -> None:
        """The filters the unit will search with (vecbench.compute.filters.RowFilter, over the
        rows in the order build gets them), given before ``build``: an engine that filters on
        stored attributes loads them with the rows; an in-process library reads their masks."""
        self.filters_ = tuple(filters)

    def filtered_searcher(self, queries: Any, k: int, params: dict, place: int) -> Searcher:
        """``search(rows, k=k)`` answering ``queries[rows]`` among the rows that filter
        ``filters_[place]`` lets each query see, with the library's own filter (indexes whose
        ``capabilities`` hold ``filter``)."""
        raise NotImplementedError(f"{self.name}: no native filtered search")

    def _filter_masks(self, place: int, n_queries: int) -> tuple[np.ndarray, bool]:
        """((1 or nq, ntotal) bool masks of filter ``place``, shared), made once per filter:
        the bitmap a deployment keeps for its metadata, built outside the timed calls."""
        cache = self.__dict__.setdefault("_masks", {})
        if place not in cache:
            row_filter = self.filters_[place]
            if row_filter.n_queries != n_queries:
                raise DataError(f"{self.name}: filter {place} is for {row_filter.n_queries} "
                                f"queries, got {n_queries}")
            shared = row_filter.shared
            cache[place] = (row_filter.masks(range(1) if shared else None), shared)
        return cache[place]

    # -- search -------------------------------------------------------------------------------

    def search(self, q: Any, k: int, **search_params: Any) -> tuple[np.ndarray, Any]:
        """ids (and distances) of the ``k`` nearest base vectors to each query row: the
        searcher's path (the same checks, then the same per-setting search the runner's timed
        calls reach), so a call costs what a timed call costs plus one check of ``q``."""
        q, k, run = self._start_search(q, k, search_params)
        return run(q, k)

    def searcher(self, queries: Any, k: int, params: dict) -> Searcher:
        """``search(rows, k=k) -> (ids, distances or None)`` for ``queries[rows]``, with
        ``queries``, ``k`` and ``params`` checked (and, under ``cos``, normalized) once here
        rather than on every call (``queries`` must not change while it is in use). The
        runner times single queries through it, so a call costs a slice and the library's own
        search."""
        q, k, run = self._start_search(queries, k, params)

        def search_rows(rows: slice = slice(None), k: int = k) -> tuple[np.ndarray, Any]:
            if type(k) is not int or k < 1:
                k = check_k(k)
            return run(q[rows], k)
        return search_rows

    def _searching(self, params: dict) -> Callable[[np.ndarray, int], tuple[np.ndarray, Any]]:
        """``run(q, k)`` on checked queries and k, for checked ``params``: made once per
        setting, built index and thread count (it may keep what they decide)."""
        raise NotImplementedError(f"{self.name}: implement searcher or _searching")

    def _queries(self, q: Any) -> np.ndarray:
        """Queries as the library searches them (float32 rows of the built dimension,
        normalized under cos); the common case costs a few attribute checks (and under cos
        one pass over the norms: a dot product for a single query)."""
        import numpy as np

        if type(q) is np.ndarray and q.ndim == 2 and q.shape[1] == self.dim_ \
                and q.dtype == np.float32 and q.flags.c_contiguous \
                and (self.metric_ != "cos" or is_unit_norm(q)):
            return q
        return as_vectors(q, f"{self.name}: queries", self.metric_, self.dim_)

    def _forget_searches(self) -> None:
        """Drop the settings' searches (and the index they hold): a build starts."""
        self._searches.clear()
        self._searches_for = self._searches_threads = None

    def _start_search(self, q: Any, k: Any, params: dict) -> tuple[np.ndarray, int, Callable]:
        """Checked queries and k, and the setting's ``run(q, k)`` (checked and made once per
        setting: a public search() of one query costs no more than a timed call and the
        check of its query)."""
        if self.index_ is None:
            raise RuntimeError(f"{self.name}: search() called before build()")
        if type(k) is not int or k < 1:
            k = check_k(k)
        if self._searches_for is not self.index_ or self._searches_threads != self.threads:
            self._forget_searches()  # made for another build or thread count
            self._searches_for, self._searches_threads = self.index_, self.threads
        try:
            # the items and their types: ef=1, ef=True and ef=1.0 hash equal, but each is
            # checked on its own (a check may refuse one and take another)
            key = (*params.items(), *map(type, params.values()))
            checked, run = self._searches[key]
        except KeyError:
            checked, run = self.check_search(params), None
            self._searches[key] = [checked, run]
        except TypeError:  # unhashable values: checked every time, not kept
            key, checked, run = None, self.check_search(params), None
        q = self._queries(q)
        if run is None:
            run = self._searching(checked)
            if key is not None:
                self._searches[key][1] = run
        return q, k, run
