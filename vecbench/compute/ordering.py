"""Insertion orders: registered functions ``(vectors, *, seed, context, **params) -> permutation``.

The runner inserts ``vectors[perm]`` and maps the ids the index returns back through ``perm``;
indexes never see orderings. An ordering's parameters are keyword-only arguments, so the
experiment loader can check their names without data.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from vecbench.core.errors import ConfigError
from vecbench.core.params import check_no_extra, Param, validate
from vecbench.core.registry import orderings

if TYPE_CHECKING:  # numpy is imported where vectors are ordered: validate stays numpy-free
    import numpy as np


@dataclass(frozen=True)
class OrderingContext:
    """What an ordering may use besides the vectors: labels, queries, metric, a cache key."""

    metric: str = "l2"
    labels: np.ndarray | None = None
    queries: np.ndarray | None = None
    fingerprint: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def check_params(name: str, function: Callable, params: dict) -> dict:
    """Check ``params`` against the ordering's declaration (``function.params``; an undeclared
    third-party ordering: its keyword-only argument names). Returns what was given, checked,
    without defaults (run keys hash it)."""
    if hasattr(function, "params"):
        return validate(_Named(f"ordering {name}", function.params), params, defaults=False)
    signature = inspect.signature(function)
    accepted = [p.name for p in signature.parameters.values()
                if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in ("seed", "context")]
    check_no_extra(f"ordering {name}", params, accepted)
    return dict(params)


@dataclass(frozen=True)
class _Named:
    name: str
    params: tuple


def declare(*params: Any) -> Callable:
    """Decorator: attach a parameter declaration (``vecbench.core.params.Param``) to an ordering."""
    def decorator(function: Callable) -> Callable:
        function.params = tuple(params)
        return function
    return decorator


def apply(name: str, params: dict, vectors: np.ndarray, seed: int,
          context: OrderingContext) -> np.ndarray:
    """Run a registered ordering and check that it returned a permutation of the rows."""
    import numpy as np

    function = orderings.get(name)
    perm = np.asarray(function(vectors, seed=seed, context=context, **params))
    n = len(vectors)
    if perm.shape != (n,) or not np.array_equal(np.sort(perm), np.arange(n)):
        raise AssertionError(f"ordering {name} did not return a permutation of {n} rows")
    return perm.astype(np.int64)


@orderings.register("original")
@declare()
def original(vectors: np.ndarray, *, seed: int = 0,
             context: OrderingContext | None = None) -> np.ndarray:
    """The dataset's own row order."""
    import numpy as np

    return np.arange(len(vectors))


@orderings.register("random")
@declare()
def random(vectors: np.ndarray, *, seed: int = 0,
           context: OrderingContext | None = None) -> np.ndarray:
    """A uniformly random order, seeded per repeat by the runner."""
    import numpy as np

    return np.random.default_rng(seed).permutation(len(vectors))


@orderings.register("reverse")
@declare()
def reverse(vectors: np.ndarray, *, seed: int = 0,
            context: OrderingContext | None = None) -> np.ndarray:
    """The dataset's row order backwards."""
    import numpy as np

    return np.arange(len(vectors))[::-1].copy()


def require_labels(name: str, context: OrderingContext | None) -> np.ndarray:
    if context is None or context.labels is None:
        raise ConfigError(f"ordering {name} needs dataset labels, and this dataset has none")
    return context.labels


# --- orderings informed by the data: LID, clusters, categories --------------------------------

def _lid(vectors: np.ndarray, context: OrderingContext, k: int, estimator: str) -> np.ndarray:
    from vecbench.compute.lid import cached_pointwise_lid  # numpy: validate stays light

    return cached_pointwise_lid(context.fingerprint, vectors, k=k, estimator=estimator,
                                metric=context.metric)


def _lid_params() -> tuple:
    return (Param("k", "int", 20, low=2, doc="neighbours per point for the LID estimate"),
            Param("estimator", "choice", "mle", choices=("mle", "tle", "mada", "mom"),
                  doc="pointwise LID estimator (scikit-dimension's names)"))


@orderings.register("lid_asc")
def lid_asc(vectors: np.ndarray, *, seed: int = 0, context: OrderingContext,
            k: int = 20, estimator: str = "mle") -> np.ndarray:
    """Lowest pointwise LID first (ties keep row order). LID is cached per dataset."""
    import numpy as np

    return np.argsort(_lid(vectors, context, k, estimator), kind="stable")


@orderings.register("lid_desc")
def lid_desc(vectors: np.ndarray, *, seed: int = 0, context: OrderingContext,
             k: int = 20, estimator: str = "mle") -> np.ndarray:
    """Highest pointwise LID first: the hardest points shape the graph's upper layers."""
    import numpy as np

    return np.argsort(-_lid(vectors, context, k, estimator), kind="stable")


lid_asc.params = lid_desc.params = _lid_params()


def _kmeans_labels(vectors: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    import faiss
    import numpy as np

    if n_clusters > len(vectors):
        raise ConfigError(f"expected at most {len(vectors)} (the number of vectors ordered), "
                          f"got {n_clusters}", "n_clusters")
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    kmeans = faiss.Kmeans(x.shape[1], n_clusters, niter=20, seed=seed % (2**31 - 1),
                          verbose=False)
    kmeans.train(x)
    return kmeans.index.search(x, 1)[1][:, 0]


def _contiguous(labels: np.ndarray, seed: int) -> np.ndarray:
    """Groups one after another (group order shuffled by seed), rows in order within a group."""
    import numpy as np

    groups = np.unique(labels)
    order = np.random.default_rng(seed).permutation(len(groups))
    rank = np.empty(len(groups), dtype=np.int64)
    rank[order] = np.arange(len(groups))
    return np.argsort(rank[np.searchsorted(groups, labels)], kind="stable")


def _interleaved(labels: np.ndarray, seed: int) -> np.ndarray:
    """Round robin over groups: one row of each group in turn, until every group is used up."""
    import numpy as np

    contiguous = _contiguous(labels, seed)
    sorted_labels = labels[contiguous]
    # position of each row within its group, then sort by (position, group turn)
    starts = np.r_[0, np.flatnonzero(sorted_labels[1:] != sorted_labels[:-1]) + 1]
    within = np.arange(len(labels)) - np.repeat(starts, np.diff(np.r_[starts, len(labels)]))
    turn = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(labels)]))
    return contiguous[np.lexsort((turn, within))]


def cluster_blocks(vectors: np.ndarray, n_clusters: int, seed: int) -> tuple[np.ndarray, list]:
    """(permutation putting k-means clusters one after another, the clusters' sizes in that
    order): the arrival order of a clustered runbook."""
    import numpy as np

    labels = _kmeans_labels(vectors, n_clusters, seed)
    perm = _contiguous(labels, seed)
    ordered = labels[perm]
    bounds = np.r_[0, np.flatnonzero(ordered[1:] != ordered[:-1]) + 1, len(ordered)]
    return perm, np.diff(bounds).tolist()


@orderings.register("cluster")
def cluster(vectors: np.ndarray, *, seed: int = 0, context: OrderingContext | None = None,
            n_clusters: int = 32) -> np.ndarray:
    """k-means clusters (faiss, seeded) inserted one after another."""
    return _contiguous(_kmeans_labels(vectors, n_clusters, seed), seed)


@orderings.register("cluster_interleaved")
def cluster_interleaved(vectors: np.ndarray, *, seed: int = 0,
                        context: OrderingContext | None = None, n_clusters: int = 32) -> np.ndarray:
    """Round robin over k-means clusters."""
    return _interleaved(_kmeans_labels(vectors, n_clusters, seed), seed)


def _cluster_params() -> tuple:
    return (Param("n_clusters", "int", 32, low=1, doc="k-means clusters (faiss, seeded)"),)


cluster.params = cluster_interleaved.params = _cluster_params()


@orderings.register("category")
@declare()
def category(vectors: np.ndarray, *, seed: int = 0,
             context: OrderingContext | None = None) -> np.ndarray:
    """The dataset's label categories inserted one after another."""
    import numpy as np

    return _contiguous(np.asarray(require_labels("category", context)), seed)


@orderings.register("category_interleaved")
@declare()
def category_interleaved(vectors: np.ndarray, *, seed: int = 0,
                         context: OrderingContext | None = None) -> np.ndarray:
    """Round robin over the dataset's label categories."""
    import numpy as np

    return _interleaved(np.asarray(require_labels("category_interleaved", context)), seed)


# --- query-correlated orders: the base vectors nearest the query distribution first or last ----

def query_distance(vectors: np.ndarray, context: OrderingContext | None, name: str,
                   held_out: bool = False, split_seed: int = 0) -> np.ndarray:
    """Each base vector's distance to its nearest query (for ``cos``/``ip``: minus the best
    inner product), exact, by faiss. Small = near the query distribution. ``held_out``: only
    the selection half of the queries (``vecbench.compute.query_split.split(n, split_seed)``)
    informs the order, so the report half can score it without the order having seen them."""
    import faiss
    import numpy as np

    if context is None or context.queries is None or len(context.queries) == 0:
        raise ConfigError(f"ordering {name} needs the dataset's queries, and none were given")
    queries = np.ascontiguousarray(context.queries, dtype=np.float32)
    if held_out:
        from vecbench.compute.query_split import split

        if len(queries) < 2:
            raise ConfigError(f"ordering {name} with held_out needs at least 2 queries to "
                              f"split, the dataset has {len(queries)}", "held_out")
        queries = np.ascontiguousarray(queries[split(len(queries), split_seed).select])
    base = np.ascontiguousarray(vectors, dtype=np.float32)
    if context.metric == "cos":
        queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-30)
        base = base / np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-30)
    if context.metric == "l2":
        index = faiss.IndexFlatL2(queries.shape[1])
        index.add(queries)
        return index.search(base, 1)[0][:, 0]
    index = faiss.IndexFlatIP(queries.shape[1])
    index.add(queries)
    return -index.search(base, 1)[0][:, 0]


def _query_params() -> tuple:
    return (Param("held_out", "bool", False,
                  doc="order by the selection half of the queries only; score on the other"),
            Param("split_seed", "int", 0, low=0,
                  doc="seed of the query split (vecbench.compute.query_split), with held_out"))


@orderings.register("query_near_first")
@declare(*_query_params())
def query_near_first(vectors: np.ndarray, *, seed: int = 0,
                     context: OrderingContext | None = None, held_out: bool = False,
                     split_seed: int = 0) -> np.ndarray:
    """Base vectors nearest the queries first (by distance to their nearest query)."""
    import numpy as np

    return np.argsort(query_distance(vectors, context, "query_near_first", held_out,
                                     split_seed), kind="stable")


@orderings.register("query_near_last")
@declare(*_query_params())
def query_near_last(vectors: np.ndarray, *, seed: int = 0,
                    context: OrderingContext | None = None, held_out: bool = False,
                    split_seed: int = 0) -> np.ndarray:
    """Base vectors nearest the queries last: the far ones build the graph first."""
    import numpy as np

    return np.argsort(-query_distance(vectors, context, "query_near_last", held_out,
                                      split_seed), kind="stable")
