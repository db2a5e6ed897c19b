"""The one builder every faiss-backed float index goes through: create (a factory string plus its
parameters), seed, train (on ``train``, else the base), add in the order given, search with
per-call ``SearchParameters``, and report threads and bytes from the built index.

A faiss family is a subclass that names its factory string (``_factory``), the fewest training
vectors it needs (``_min_train``) and how its search parameters become a faiss
``SearchParameters`` object (``_search_parameters``): a few lines, not a copy of this code.
"""

from __future__ import annotations

import numbers
import re
from typing import Any

import numpy as np

from vecbench.errors import ConfigError, DataError
from vecbench.indexes.base import BuildReport, IndexBase, faiss_serialized_size, omp_threads
from vecbench.indexes.faiss_storage import faiss_storage
from vecbench.params import check_float

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


def seed_kmeans(index: Any, seed: int) -> None:
    """Seed the k-means of an IVF index's coarse quantizer and, for PQ, of its codebooks."""
    import faiss

    ivf = faiss.extract_index_ivf(index)
    ivf.cp.seed = seed % _INT32
    pq = getattr(faiss.downcast_index(ivf), "pq", None)
    if pq is not None:
        pq.cp.seed = seed % _INT32


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
        seed_kmeans(index, seed)
    except RuntimeError:
        pass  # not an IVF index


class _FaissIndex(IndexBase):
    """Build = create, train when needed (on ``train``, else on the base vectors), add."""

    _parameter_objects: dict

    def _min_train(self) -> tuple[int, str]:
        """The fewest training vectors faiss can fit this index on, and why."""
        return 1, ""

    def _factory(self) -> str:
        """The faiss ``index_factory`` string of this index (for the built dimension)."""
        raise NotImplementedError

    def _factory_error_path(self) -> str:
        """The build parameter a factory string faiss refuses is blamed on."""
        return self._build_param_names[0] if self._build_param_names else "factory"

    def _new_index(self, faiss: Any, metric: int) -> Any:
        factory = self._factory()
        try:
            index = faiss.index_factory(self.dim_, factory, metric)
        except RuntimeError as exc:
            raise ConfigError(f"faiss cannot build {factory!r} for dimension {self.dim_}: "
                              f"{faiss_message(exc)}", self._factory_error_path()) from None
        seed_index(index, self.seed)
        return index

    def _add(self, index: Any, x: np.ndarray) -> None:
        index.add(x)

    def _used_threads(self, threads: int) -> int:
        """Threads the add really ran on (one for a build that adds one vector at a time)."""
        return threads

    def _given_floats(self) -> bool:
        """The build was handed float32 vectors (not codes a quantizer made)."""
        return True

    def _search_parameters(self, faiss: Any, params: dict, k: int) -> Any:
        return None

    def _details(self) -> dict:
        return {"factory": self._factory()}

    def _reuse(self, key: tuple, make: Any) -> Any:
        """A faiss SearchParameters object made once per distinct setting: making one costs
        more than a single-query HNSW search. ``make`` returns (object, *objects it points to),
        all kept alive here because SWIG does not keep nested parameter objects alive."""
        try:
            return self._parameter_objects[key][0]
        except KeyError:
            self._parameter_objects[key] = made = make()
            return made[0]

    def build(self, x: Any, metric: str, *, train: Any = None,
              threads: int | None = None) -> BuildReport:
        import faiss

        threads = self._build_threads(threads)
        x = self._start_build(x, metric)
        self._parameter_objects = {}
        faiss_metric = faiss.METRIC_L2 if self.metric_ == "l2" else faiss.METRIC_INNER_PRODUCT
        with omp_threads(threads):
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
        return self._report(self._used_threads(threads), float_input=self._given_floats())

    def _report(self, threads: int, float_input: bool) -> BuildReport:
        """Threads and bytes of the built index, read from faiss's structures."""
        storage = faiss_storage(self.index_)
        return BuildReport(
            threads=threads, deterministic=threads == 1 or not storage.graph_batch_add,
            code_bytes_per_vector=storage.code, graph_bytes_per_vector=storage.graph,
            compresses=float_input and storage.searched < 4 * self.dim_,
            details={**self._details(), "faiss_classes": "/".join(storage.classes)})

    def _prepare_search(self, params: dict) -> tuple:
        import faiss

        # the faiss SearchParameters by k (it may depend on k: an HNSW beam is max(ef, k))
        return params, self.n_threads, {}, faiss

    def _search_checked(self, q: np.ndarray, k: int,
                        prepared: tuple) -> tuple[np.ndarray, np.ndarray]:
        params, threads, by_k, faiss = prepared
        try:
            faiss_params = by_k[k]
        except KeyError:
            faiss_params = by_k[k] = self._search_parameters(faiss, params, k)
        # omp_threads inlined: a context manager costs ~0.5 us, a tenth of a small HNSW search
        previous = faiss.omp_get_max_threads()
        if previous != threads:
            faiss.omp_set_num_threads(threads)
        try:
            distances, ids = self.index_.search(q, k, params=faiss_params)
        finally:
            if previous != threads:
                faiss.omp_set_num_threads(previous)
        return ids, distances

    def _serialized_size(self) -> int:
        return faiss_serialized_size(self.index_)
