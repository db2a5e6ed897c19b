"""Local and global intrinsic dimensionality (ID) of a set of vectors.

Pointwise (local) ID is estimated from each base vector's k nearest neighbours within base (itself
excluded); global ID by TwoNN, the aggregate of pointwise MLE, and PCA explained variance.

Conventions, shared by every estimator here:

- Distances are Euclidean (not squared: a squared distance halves every log-ratio estimate). For
  ``cos`` the vectors are normalized first; ``ip`` has no distance, so ``ip`` data are measured
  with L2 on the vectors as given.
- Copies (duplicate vectors) are one point: by default the kNN graph is built over the distinct
  vectors, so a vector's neighbours are the k nearest *other* distinct vectors and all its copies
  get the same LID. Copies would otherwise give zero distances (``log(r_i / r_k)`` infinite)
  and, as neighbours, runs of equal distances (a point whose k neighbours are copies of one
  vector gets r_1 = r_k, an infinite MLE).
- Precomputed distances may still hold zeros: they are dropped, and the estimate uses the m
  non-zero distances among the k. Fewer than 2 non-zero distances: a degenerate neighbourhood,
  LID 0. Non-zero distances that all equal r_k: inf, the MLE's limit.
- Exact-graph distances are recomputed from the vectors (faiss's BLAS path computes
  ``|x|^2 + |y|^2 - 2xy``, which leaves copies at a small non-zero distance instead of 0);
  hnswlib's are direct sums of squared differences and are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from vecbench.core.errors import ConfigError, DataError
from vecbench.core.params import check_choice, check_float, check_int, check_no_extra
from vecbench.compute.groundtruth import exact_knn
from vecbench.core.cache import read_verified, write_verified
from vecbench.core.paths import cache_dir as default_cache_dir
from vecbench.core.vectors import check_vectors, normalize_rows

ESTIMATORS = ("mle", "tle", "mada", "mom")
LID_METRICS = ("l2", "cos", "ip")
DEFAULT_K = 20
#: Above this many vectors the kNN graph comes from HNSW. Set by measurement
#: (benchmarks/bench_lid_switch.py, benchmarks/RESULTS.md): at 10k-40k x 384 exact self-kNN
#: (faiss brute force) cost 0.43-0.68x the HNSW graph (build, search and recall check); exact
#: grows as n^2, HNSW about as n^1.3, so they cross between ~70k and ~170k. Exact is exact, so
#: it is kept up to 100k.
DEFAULT_EXACT_LIMIT = 100_000
DEFAULT_HNSW = {"M": 16, "ef_construction": 200, "ef": 100}
#: Points whose HNSW neighbours are checked against exact search (500 x 20 neighbour checks:
#: recall to about +-0.003, for 500/n of the exact graph's cost).
DEFAULT_RECALL_SAMPLE = 500
#: Bump when an estimator's output changes, so cached values are recomputed.
CACHE_VERSION = "1"
_ROW_BLOCK = 64  # rows per block of gathered neighbour vectors: cache-sized


def _check_k(k: Any) -> int:
    return check_int("k", k, 2)


def _l2_space(x: np.ndarray, metric: str) -> np.ndarray:
    """Vectors as float32 C-contiguous, in the space where Euclidean distance is the metric."""
    check_choice("metric", metric, LID_METRICS)
    x = np.asarray(x)
    check_vectors("lid", "x", x)
    x = np.ascontiguousarray(x, dtype=np.float32)
    return normalize_rows(x) if metric == "cos" else x


# --- kNN graph -------------------------------------------------------------------------------

def _hnsw_params(params: dict | None) -> dict:
    given = dict(params or {})
    check_no_extra("hnsw_params", given, DEFAULT_HNSW)
    merged = {**DEFAULT_HNSW, **given}
    for name, low in (("M", 2), ("ef_construction", 1), ("ef", 1)):
        check_int(f"hnsw_params.{name}", merged[name], low)
    return merged


def knn_graph(x: np.ndarray, k: int = DEFAULT_K, metric: str = "l2", *, distinct: bool = True,
              exact_limit: int = DEFAULT_EXACT_LIMIT, hnsw_params: dict | None = None,
              recall_sample: int = DEFAULT_RECALL_SAMPLE, seed: int = 0,
              num_threads: int | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """The k nearest neighbours of every vector of ``x`` within ``x``, itself excluded.

    Returns ``(distances, ids, info)``: Euclidean distances (n x k float64, ascending), ids
    (n x k int64) and ``info``. ``distinct`` builds the graph over distinct vectors (copies are
    not each other's neighbours; a neighbour with copies is reported by its first row).
    ``info["method"]`` is ``exact`` (faiss flat) up to ``exact_limit`` vectors, else ``hnsw``,
    which adds ``sample_recall`` (tie-tolerant recall@k of ``recall_sample`` seeded points
    against exact search), ``sample_lid_rel_diff`` (mean relative difference of their MLE LID
    from the LID on exact neighbours) and ``check_seconds``.
    """
    k = _check_k(k)
    exact_limit = check_int("exact_limit", exact_limit, 0)
    recall_sample = check_int("recall_sample", recall_sample, 1)
    params = _hnsw_params(hnsw_params)
    x = _l2_space(x, metric)
    start = time.perf_counter()
    reps, inverse = _distinct_rows(x) if distinct else (None, None)
    points = x if reps is None else x[reps]
    if len(points) < k + 1:
        raise DataError(f"lid: x has {len(points)} distinct vectors; a {k}-NN graph needs at "
                        f"least {k + 1}")
    method = "exact" if len(x) <= exact_limit else "hnsw"
    if method == "exact":
        rows = np.arange(len(points))
        ids = _drop_self(exact_knn(points, points, k + 1, "l2").ids, rows)
        distances, ids = _sorted_distances(points, rows, ids)
    else:
        distances, ids = _hnsw_neighbours(points, k, params, seed, num_threads)
    info: dict[str, Any] = {"method": method, "k": k, "n": len(x), "n_distinct": len(points),
                            "metric": metric, "distance": "l2"}
    if method == "hnsw":
        check_start = time.perf_counter()
        info.update(hnsw_params=params, seed=seed,
                    **_sample_check(points, distances, k, recall_sample, seed),
                    check_seconds=time.perf_counter() - check_start)
    if reps is not None:
        distances, ids = distances[inverse], reps[ids][inverse]
    info["seconds"] = time.perf_counter() - start
    return distances, ids, info


def _distinct_rows(x: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """First row of each distinct vector (in row order) and each row's index among them; (None,
    None) when all rows are distinct."""
    # distinct hashes prove distinct rows (the common case, fast); otherwise compare bytes exactly
    hashes = np.fromiter((hash(row.tobytes()) for row in x), dtype=np.int64, count=len(x))
    if len(np.unique(hashes)) == len(x):
        return None, None
    rows_as_bytes = x.view(np.dtype((np.void, x.dtype.itemsize * x.shape[1]))).ravel()
    _, first, inverse = np.unique(rows_as_bytes, return_index=True, return_inverse=True)
    if len(first) == len(x):
        return None, None
    order = np.argsort(first)
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    return first[order], position[inverse.ravel()]


def _hnsw_neighbours(x: np.ndarray, k: int, params: dict, seed: int,
                     num_threads: int | None) -> tuple[np.ndarray, np.ndarray]:
    """HNSW k+1 neighbours, self dropped; hnswlib's distances are direct sums of squared
    differences (copies give exactly 0), so they are used as they are."""
    import hnswlib

    threads = -1 if num_threads is None else num_threads
    index = hnswlib.Index(space="l2", dim=x.shape[1])
    index.init_index(max_elements=len(x), M=params["M"],
                     ef_construction=params["ef_construction"], random_seed=seed)
    index.add_items(x, np.arange(len(x)), num_threads=threads)
    index.set_ef(max(params["ef"], k + 1))
    try:
        labels, squared = index.knn_query(x, k=k + 1, num_threads=threads)
    except RuntimeError as error:  # a too sparse graph cannot reach k+1 neighbours of some point
        raise ConfigError(f"the HNSW graph could not return {k + 1} neighbours of every vector "
                          f"({error}); expected larger M, ef_construction or ef, got {params}",
                          "hnsw_params") from None
    rows = np.arange(len(x))
    keep = _not_self(labels.astype(np.int64), rows)
    ids = labels[keep].reshape(len(x), k).astype(np.int64)
    return _sort_rows(np.sqrt(squared[keep].reshape(len(x), k).astype(np.float64)), ids)


def _not_self(ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Mask of the k+1 neighbours to keep: all but each row's own id, wherever it sits.

    With copies of a point, self may be at any position among the zero distances, or missing
    (more than k copies, or an HNSW miss): then the farthest of the k+1 is dropped instead.
    """
    is_self = ids == rows[:, None]
    is_self[~is_self.any(axis=1), -1] = True
    return ~is_self


def _drop_self(ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return ids[_not_self(ids, rows)].reshape(len(ids), ids.shape[1] - 1)


def _sort_rows(d: np.ndarray, ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    order = np.argsort(d, axis=1, kind="stable")
    return (np.take_along_axis(d, order, axis=1),
            None if ids is None else np.take_along_axis(ids, order, axis=1))


def _sorted_distances(x: np.ndarray, rows: np.ndarray,
                      ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance of ``x[rows[i]]`` to ``x[ids[i, j]]`` by differences (copies give 0),
    rows sorted ascending."""
    out = np.empty(ids.shape, dtype=np.float64)
    for start in range(0, len(ids), _ROW_BLOCK):
        block = slice(start, start + _ROW_BLOCK)
        diff = x[ids[block]] - x[rows[block]][:, None, :]
        out[block] = np.einsum("ijd,ijd->ij", diff, diff)
    return _sort_rows(np.sqrt(out, out=out), ids)


def _sample_check(x: np.ndarray, graph_distances: np.ndarray, k: int, sample: int,
                  seed: int) -> dict:
    """Recall and LID error of an approximate graph on a seeded sample of points."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(x), size=min(sample, len(x)), replace=False))
    exact_ids = _drop_self(exact_knn(x, x[rows], k + 1, "l2").ids, rows)
    exact, _ = _sorted_distances(x, rows, exact_ids)
    # 1e-5: graph and exact distances are float32 sums taken in different orders
    kth = exact[:, -1:] * (1 + 1e-5) + 1e-9
    # a returned neighbour within the exact k-th distance is a hit, so ties never miss
    recall = float(np.mean(np.sum(graph_distances[rows] <= kth, axis=1) / k))
    approx_lid, exact_lid = _mle(graph_distances[rows], k), _mle(exact, k)
    usable = np.isfinite(exact_lid) & (exact_lid > 0) & np.isfinite(approx_lid)
    rel = np.abs(approx_lid[usable] - exact_lid[usable]) / exact_lid[usable]
    return {"sample_recall": recall, "recall_sample": len(rows),
            "sample_lid_rel_diff": float(rel.mean()) if usable.any() else float("nan")}


# --- pointwise estimators ----------------------------------------------------------------------

def _check_distances(distances: Any, k: int, squared: bool, ids: Any = None,
                     keep_all: bool = False):
    """Validated distances (and ids) sorted ascending per row, cut to k columns unless keep_all."""
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] < k:
        raise DataError(f"lid: distances: expected an n x k array with k >= {k} columns, "
                        f"got shape {d.shape}")
    if not np.isfinite(d).all() or (d < 0).any():
        raise DataError("lid: distances: expected finite, non-negative distances")
    if squared:
        d = np.sqrt(d)
    if ids is not None:
        ids = np.asarray(ids)
        if ids.shape != d.shape:
            raise DataError(f"lid: ids: expected shape {d.shape} like distances, got {ids.shape}")
    if (np.diff(d, axis=1) < 0).any():
        d, ids = _sort_rows(d, ids)
    if keep_all:
        return d, ids
    return d[:, :k], (None if ids is None else ids[:, :k])


def _mle_inverse(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: mean of log(r_k / r_i) over the non-zero r_i < r_k, and the count of non-zero r_i.

    Written by hand (vectorized): skdim's MLE loops over points in Python, and the formula is
    one line on the kNN distances.
    """
    positive = d > 0
    m = positive.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(positive, np.log(d[:, -1:] / np.where(positive, d, 1.0)), 0.0)
        return logs.sum(axis=1) / (m - 1), m


def _mle(d: np.ndarray, k: int) -> np.ndarray:
    """Levina-Bickel MLE, (m-1) form: (m-1) / sum_{i<m} log(r_k / r_i), as skdim's MLE computes
    it (with m = k when there are no copies)."""
    inverse, m = _mle_inverse(d[:, :k])
    with np.errstate(divide="ignore"):
        return np.where(m >= 2, 1.0 / inverse, 0.0)


def _mada(d: np.ndarray, k: int) -> np.ndarray:
    """MADA (Farahmand et al. 2007): log 2 / log(r_k / r_{m//2}) over the non-zero distances.

    By hand: skdim's MADA ignores precomputed neighbours and builds an n x n distance matrix.
    """
    d = d[:, :k]
    zeros = (d == 0).sum(axis=1)
    m = k - zeros
    half = np.clip(zeros + m // 2 - 1, 0, k - 1)
    r_half = np.take_along_axis(d, half[:, None], axis=1)[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        lid = np.log(2.0) / np.log(d[:, -1] / r_half)
    return np.where(m >= 2, lid, 0.0)


def _mom(d: np.ndarray, k: int) -> np.ndarray:
    """Method of moments (Amsaleg et al. 2018): mu / (r_k - mu), mu the mean non-zero distance.

    By hand, as skdim's MOM formula but averaging only the non-zero distances (copies dropped).
    """
    d = d[:, :k]
    m = (d > 0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = d.sum(axis=1) / m
        lid = mean / (d[:, -1] - mean)
    return np.where(m >= 2, lid, 0.0)


def _tle(x: np.ndarray, d: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """TLE (Amsaleg et al. 2019) by scikit-dimension on our neighbours (its formula is long)."""
    import skdim

    degenerate = d[:, -1] == 0  # skdim raises on an all-zero neighbourhood
    d = np.where(degenerate[:, None], 1.0, d)
    with np.errstate(all="ignore"):  # skdim drops its 0/0 measurements itself
        estimator = skdim.id.TLE().fit(x, precomputed_knn_arrays=(d, ids), n_neighbors=k)
    return np.where(degenerate, 0.0, estimator.dimension_pw_)


def _graph_distances(x: Any, distances: Any, k: int, metric: str, graph_kwargs: dict,
                     ids: Any = None) -> tuple[Any, Any]:
    if distances is not None:
        return distances, ids
    if x is None:
        raise ConfigError("expected the vectors x or precomputed distances, got neither",
                          "distances")
    distances, ids, _ = knn_graph(x, k, metric, **graph_kwargs)
    return distances, ids


def pointwise_lid(x: np.ndarray | None = None, k: int = DEFAULT_K, *, estimator: str = "mle",
                  distances: np.ndarray | None = None, ids: np.ndarray | None = None,
                  metric: str = "l2", squared: bool = False, **graph_kwargs: Any) -> np.ndarray:
    """Local intrinsic dimension of every vector of ``x`` (float64, length n).

    Either ``x`` (the kNN graph is built by :func:`knn_graph`, which takes ``graph_kwargs``) or
    precomputed ``distances`` (n x >=k, Euclidean, self excluded; ``squared=True`` if they are
    squared L2). ``estimator``: ``mle`` (Levina-Bickel, default), ``tle`` (needs ``x`` and ``ids``
    when distances are given), ``mada``, ``mom``. See the module docstring for copies.
    """
    k = _check_k(k)
    estimator = check_choice("estimator", estimator, ESTIMATORS)
    distances, ids = _graph_distances(x, distances, k, metric, graph_kwargs, ids)
    distances, ids = _check_distances(distances, k, squared, ids)
    if estimator == "tle":
        if x is None or ids is None:
            raise ConfigError("tle needs the vectors x and the neighbour ids, got "
                              f"x={'given' if x is not None else None}, "
                              f"ids={'given' if ids is not None else None}", "estimator")
        return _tle(_l2_space(x, metric), distances, ids, k)
    return {"mle": _mle, "mada": _mada, "mom": _mom}[estimator](distances, k)


# --- global estimators -------------------------------------------------------------------------

def mle_aggregate(distances: np.ndarray, k: int = DEFAULT_K) -> float:
    """Global MLE: the inverse of the mean inverse pointwise MLE (MacKay & Ghahramani 2005, as
    skdim's ``comb='mle'``), over points with >= 2 non-zero distances; averaging the inverses
    avoids the upward bias of a plain mean of pointwise estimates."""
    inverse, m = _mle_inverse(_check_distances(distances, _check_k(k), False)[0])
    usable = m >= 2
    if not usable.any():
        return 0.0
    with np.errstate(divide="ignore"):
        return float(1.0 / inverse[usable].mean())


def twonn(x: np.ndarray | None = None, *, distances: np.ndarray | None = None,
          metric: str = "l2", discard_fraction: float = 0.1, **graph_kwargs: Any) -> float:
    """TwoNN global ID (Facco et al. 2017) by scikit-dimension, fed our first two neighbours.

    Per point, r1 and r2 are its first two non-zero neighbour distances (copies dropped as
    everywhere here); points with fewer are left out.
    """
    import skdim

    discard_fraction = check_float("discard_fraction", discard_fraction, 0.0, 1.0)
    distances, _ = _graph_distances(x, distances, DEFAULT_K, metric, graph_kwargs)
    d, _ = _check_distances(distances, 2, False, keep_all=True)
    zeros = (d == 0).sum(axis=1)
    rows = np.flatnonzero(zeros + 2 <= d.shape[1])
    if len(rows) < 3:
        raise DataError(f"lid: twonn: expected at least 3 points with two non-zero neighbour "
                        f"distances, got {len(rows)}")
    estimator = skdim.id.TwoNN(discard_fraction=discard_fraction, dist=True)
    first_two = np.column_stack([d[rows, zeros[rows]], d[rows, zeros[rows] + 1]])
    return float(estimator.fit(first_two).dimension_)


def pca_dimension(x: np.ndarray, variance: float = 0.9, metric: str = "l2") -> int:
    """Fewest principal components that explain at least ``variance`` of the total variance."""
    variance = check_float("variance", variance, 0.0, 1.0, low_open=True)
    return _components_for(_explained_variance_ratio(_l2_space(x, metric)), variance)


def _explained_variance_ratio(x: np.ndarray) -> np.ndarray:
    from sklearn.decomposition import PCA

    # covariance_eigh: one d x d eigendecomposition, fast for n >> d
    return PCA(svd_solver="covariance_eigh" if len(x) > x.shape[1] else "full").fit(
        x).explained_variance_ratio_


def _components_for(ratios: np.ndarray, variance: float) -> int:
    cumulative = np.cumsum(ratios)
    return int(min(np.searchsorted(cumulative, variance - 1e-12) + 1, len(ratios)))


def global_estimates(x: np.ndarray, k: int = DEFAULT_K, *, metric: str = "l2",
                     distances: np.ndarray | None = None, **graph_kwargs: Any) -> dict:
    """``{"twonn", "mle", "pca90", "pca95"}`` of ``x``, sharing one kNN graph."""
    k = _check_k(k)
    if distances is None:
        distances, _, _ = knn_graph(x, k, metric, **graph_kwargs)
    ratios = _explained_variance_ratio(_l2_space(x, metric))
    return {"twonn": twonn(distances=distances), "mle": mle_aggregate(distances, k),
            "pca90": _components_for(ratios, 0.9), "pca95": _components_for(ratios, 0.95)}


# --- per query ---------------------------------------------------------------------------------

def query_lid(query_distances: np.ndarray, k: int = DEFAULT_K, *,
              squared: bool = False) -> np.ndarray:
    """MLE LID of each query from its distances to its k nearest base vectors (nq x >=k).

    Queries are not in base, so nothing is dropped as self; zero distances count as copies.
    """
    k = _check_k(k)
    return _mle(_check_distances(query_distances, k, squared)[0], k)


def mean_distance_to_base(queries: np.ndarray, base: np.ndarray, *, sample: int = 1000,
                          seed: int = 0, metric: str = "l2") -> np.ndarray:
    """Each query's mean Euclidean distance to a seeded sample of ``sample`` base vectors."""
    from sklearn.metrics import pairwise_distances_chunked

    sample = check_int("sample", sample, 1)
    q, b = _l2_space(queries, metric), _l2_space(base, metric)
    if len(b) > sample:
        b = b[np.sort(np.random.default_rng(seed).choice(len(b), sample, replace=False))]
    # sklearn computes float32 Euclidean distances with float64 accumulation, in bounded chunks
    return np.concatenate([chunk.mean(axis=1) for chunk in pairwise_distances_chunked(q, b)])


def relative_contrast(query_distances_to_knn: np.ndarray, mean_distance: np.ndarray | float, *,
                      squared: bool = False) -> np.ndarray:
    """Relative contrast of each query, He, Kumar & Chang (ICML 2012): D_mean / D_min.

    D_min is the distance to the query's nearest base vector (the smallest of its kNN
    distances); D_mean its mean distance to base (:func:`mean_distance_to_base`). Near 1 means
    the nearest neighbour barely stands out (hard); a query equal to a base vector gives inf.
    """
    d, _ = _check_distances(query_distances_to_knn, 1, squared)
    mean = np.asarray(mean_distance, dtype=np.float64)
    if mean.ndim and mean.shape != (len(d),):
        raise DataError(f"lid: mean_distance: expected a number or {len(d)} values, one per "
                        f"query, got shape {mean.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d[:, 0] > 0, mean / np.where(d[:, 0] > 0, d[:, 0], 1.0), np.inf)


# --- cache -------------------------------------------------------------------------------------

def lid_cache_key(dataset_fingerprint: str, k: int, estimator: str, method: str,
                  metric: str = "l2", hnsw_params: dict | None = None, seed: int = 0,
                  distinct: bool = True) -> str:
    """Content key of a pointwise LID array: data, k, estimator and how the graph was made."""
    spec = {"v": CACHE_VERSION, "data": dataset_fingerprint, "k": k, "estimator": estimator,
            "graph": method, "metric": metric, "distinct": distinct}
    if method == "hnsw":
        spec.update(hnsw=_hnsw_params(hnsw_params), seed=seed)
    return hashlib.blake2b(json.dumps(spec, sort_keys=True).encode(), digest_size=16).hexdigest()


def cached_pointwise_lid(dataset_fingerprint: str, x: np.ndarray, k: int = DEFAULT_K,
                         estimator: str = "mle", cache_dir: str | os.PathLike | None = None, *,
                         metric: str = "l2", return_info: bool = False,
                         **graph_kwargs: Any) -> np.ndarray | tuple[np.ndarray, dict]:
    """:func:`pointwise_lid` of ``x``, stored as ``<cache>/lid/<key>.npz`` and verified on read.

    ``cache_dir`` defaults to ``$VECBENCH_CACHE`` (``~/.cache/vecbench``). A cached array whose
    shape or content digest does not match (:mod:`vecbench.core.cache`) is reported and recomputed.
    With ``return_info``, also returns the graph's info plus ``cache`` (``hit`` or ``miss``).
    """
    k = _check_k(k)
    estimator = check_choice("estimator", estimator, ESTIMATORS)
    limit = check_int("exact_limit", graph_kwargs.get("exact_limit", DEFAULT_EXACT_LIMIT), 0)
    method = "exact" if len(x) <= limit else "hnsw"
    key = lid_cache_key(dataset_fingerprint, k, estimator, method, metric,
                        graph_kwargs.get("hnsw_params"), graph_kwargs.get("seed", 0),
                        graph_kwargs.get("distinct", True))
    folder = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "lid"
    path = folder / f"{key}.npz"
    stored = read_verified(
        path, "pointwise LID",
        lambda arrays: None if arrays.get("values") is not None
        and arrays["values"].shape == (len(x),) and "info" in arrays
        else f"expected values of shape ({len(x)},)")
    if stored is not None:
        info = json.loads(str(stored["info"]))
        values = stored["values"]
        return (values, {**info, "cache": "hit"}) if return_info else values
    distances, ids, info = knn_graph(x, k, metric, **graph_kwargs)
    values = pointwise_lid(x, k, estimator=estimator, distances=distances, ids=ids,
                           metric=metric)
    write_verified(path, {"values": values,
                          "info": np.array(json.dumps(info, default=str))})
    return (values, {**info, "cache": "miss"}) if return_info else values
