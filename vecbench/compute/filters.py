"""Filters as every engine can express them, and the generated ones of the ``filters:`` axis.

A :class:`RowFilter` is one predicate form that a SQL ``WHERE``, a LanceDB ``where``, a Chroma
``where`` and a faiss/hnswlib id mask all express: each base row has an integer attribute
``attr`` and a sub-bucket ``sub``; query ``q`` may see the rows whose ``attr`` is one of
``whole[q]``, plus the rows whose ``attr`` is ``partial[q, 0]`` and whose ``sub`` is below
``partial[q, 1]`` (a cluster filled part way). Labels, ranges and random filters use ``attr``
alone; the correlated filters need the partial cluster to reach their selectivity.

Generated filters (seeded, their achieved selectivity measured by :meth:`RowFilter.selectivity`):

- ``random``: each base row matches with probability S, the same rows for every query;
- ``positive``: for each query, the k-means clusters nearest it, whole, then part of the next
  one, until round(S n) rows;
- ``negative``: the same from the farthest clusters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vecbench.core.errors import DataError

#: Bump when generation changes: cached filters are keyed with it.
VERSION = 2
CORRELATIONS = ("random", "positive", "negative")


@dataclass(frozen=True)
class RowFilter:
    """Which base rows each query may see (see the module docstring)."""

    attr: np.ndarray          # (nb,) int32: each row's attribute
    sub: np.ndarray           # (nb,) int32: each row's sub-bucket (a seeded permutation of rows)
    whole: tuple              # per query: int32 array of attribute values matched whole
    partial: np.ndarray       # (nq, 2) int32: (attribute value, sub limit); (-1, 0) for none

    @property
    def n_queries(self) -> int:
        return len(self.whole)

    @property
    def shared(self) -> bool:
        """Every query sees the same rows (a random filter, a range, one label)."""
        first = self.whole[0]
        return bool((self.partial[:, 0] < 0).all()) and all(
            np.array_equal(first, values) for values in self.whole[1:])

    def mask(self, q: int) -> np.ndarray:
        """(nb,) bool: the rows query ``q`` may see."""
        mask = np.isin(self.attr, self.whole[q])
        value, limit = self.partial[q]
        if value >= 0:
            mask |= (self.attr == value) & (self.sub < limit)
        return mask

    def masks(self, rows: range | None = None) -> np.ndarray:
        """(len(rows), nb) bool masks."""
        rows = range(self.n_queries) if rows is None else rows
        return np.stack([self.mask(q) for q in rows]) if len(rows) else \
            np.zeros((0, len(self.attr)), dtype=bool)

    def n_matching(self) -> np.ndarray:
        """(nq,) rows each query may see."""
        counts = np.bincount(self.attr, minlength=int(self.attr.max()) + 1 if len(self.attr) else 1)
        out = np.empty(self.n_queries, dtype=np.int64)
        for q, values in enumerate(self.whole):
            values = values[(values >= 0) & (values < len(counts))]
            total = int(counts[values].sum())
            value, limit = self.partial[q]
            if value >= 0:
                total += int(((self.attr == value) & (self.sub < limit)).sum())
            out[q] = total
        return out

    def selectivity(self) -> np.ndarray:
        """(nq,) achieved share of base rows each query may see (measured, not assumed)."""
        return self.n_matching() / float(max(len(self.attr), 1))

    def permuted(self, perm: np.ndarray | None) -> "RowFilter":
        """The same filter over the rows in index order ``perm`` (row i of the index is base
        row perm[i])."""
        if perm is None:
            return self
        return RowFilter(self.attr[perm], self.sub[perm], self.whole, self.partial)

    def to_arrays(self, prefix: str) -> dict:
        lengths = np.array([len(values) for values in self.whole], dtype=np.int64)
        flat = (np.concatenate(self.whole) if len(self.whole) else np.zeros(0)).astype(np.int32)
        return {f"{prefix}attr": self.attr, f"{prefix}sub": self.sub,
                f"{prefix}whole": flat, f"{prefix}whole_lengths": lengths,
                f"{prefix}partial": self.partial}

    @classmethod
    def from_arrays(cls, arrays: dict, prefix: str) -> "RowFilter":
        lengths = arrays[f"{prefix}whole_lengths"]
        whole = tuple(np.split(arrays[f"{prefix}whole"], np.cumsum(lengths)[:-1])) \
            if len(lengths) else ()
        return cls(arrays[f"{prefix}attr"], arrays[f"{prefix}sub"], whole,
                   arrays[f"{prefix}partial"])


def _shared(matching: np.ndarray, n_queries: int, seed: int) -> RowFilter:
    """A filter of the same rows for every query: attr 1 on the matching rows."""
    rng = np.random.default_rng(seed)
    sub = rng.permutation(len(matching)).astype(np.int32)
    whole = tuple(np.array([1], dtype=np.int32) for _ in range(n_queries))
    return RowFilter(matching.astype(np.int32), sub, whole,
                     np.tile(np.array([-1, 0], dtype=np.int32), (n_queries, 1)))


def random_filter(n_base: int, n_queries: int, selectivity: float, seed: int) -> RowFilter:
    """Each base row matches with probability ``selectivity``, independently of the query."""
    rng = np.random.default_rng([seed, 1])
    return _shared(rng.random(n_base) < selectivity, n_queries, seed)


def range_filter(values: np.ndarray, n_queries: int, low: float, high: float,
                 seed: int) -> RowFilter:
    """The rows whose ``values`` lie in [low, high]."""
    values = np.asarray(values, dtype=np.float64)
    return _shared((values >= low) & (values <= high), n_queries, seed)


def label_filter(labels: np.ndarray, query_labels: np.ndarray, seed: int,
                 what: str = "query_labels") -> RowFilter:
    """A query sees the base rows carrying its label; a query label no base row carries is a
    DataError (its filtered answer would be empty by construction, not by the index)."""
    labels, query_labels = np.asarray(labels), np.asarray(query_labels)
    if labels.dtype.kind != query_labels.dtype.kind:  # a .npy of ints beside a text file
        labels, query_labels = labels.astype(str), query_labels.astype(str)
    names, attr = np.unique(labels, return_inverse=True)
    where = np.searchsorted(names, query_labels)
    where = np.minimum(where, len(names) - 1)
    unseen = names[where] != query_labels
    if unseen.any():
        first = int(np.flatnonzero(unseen)[0])
        raise DataError(f"{what}: query {first} has label {query_labels[first].item()!r}, which no "
                        f"base row carries; expected one of the {len(names)} base labels")
    rng = np.random.default_rng(seed)
    sub = rng.permutation(len(labels)).astype(np.int32)
    whole = tuple(np.array([value], dtype=np.int32) for value in where)
    return RowFilter(attr.astype(np.int32), sub, whole,
                     np.tile(np.array([-1, 0], dtype=np.int32), (len(query_labels), 1)))


def n_clusters(n_base: int) -> int:
    """Clusters of the correlated filters: about sqrt(n), 8 to 256 (finer would leave k-means
    too few rows a centroid; coarser, a 0.1% filter far larger than asked)."""
    return int(min(256, max(8, round(np.sqrt(n_base))), n_base))


def correlated_filter(base: np.ndarray, queries: np.ndarray, metric: str, selectivity: float,
                      nearest: bool, seed: int) -> RowFilter:
    """Per query, the k-means clusters nearest (``nearest``) or farthest from it, filled to
    round(selectivity n) rows: whole clusters, then the part of the next one whose sub-bucket
    is lowest."""
    import faiss

    x = np.ascontiguousarray(base, dtype=np.float32)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    inner = metric in ("ip", "cos")
    k = n_clusters(len(x))
    kmeans = faiss.Kmeans(x.shape[1], k, niter=10, seed=int(seed) % (2**31),
                          spherical=inner, verbose=False)
    kmeans.train(x)
    index = faiss.IndexFlatIP(x.shape[1]) if inner else faiss.IndexFlatL2(x.shape[1])
    index.add(kmeans.centroids)
    attr = index.search(x, 1)[1][:, 0].astype(np.int32)
    # every cluster ranked for every query, nearest first (similarity descending for ip/cos)
    scores, order = index.search(q, k)
    if not nearest:
        order = order[:, ::-1]
    rng = np.random.default_rng([seed, 2])
    sub = rng.permutation(len(x)).astype(np.int32)  # distinct: a partial fill is exact
    sizes = np.bincount(attr, minlength=k)
    target = max(1, int(round(selectivity * len(x))))
    whole, partial = [], np.tile(np.array([-1, 0], dtype=np.int32), (len(q), 1))
    sorted_subs = {}
    for row, clusters in enumerate(order):
        counts = np.cumsum(sizes[clusters])
        taken = int(np.searchsorted(counts, target, side="right"))  # clusters that fit whole
        whole.append(clusters[:taken].astype(np.int32))
        have = int(counts[taken - 1]) if taken else 0
        if have < target and taken < k:
            cluster = int(clusters[taken])
            if cluster not in sorted_subs:
                sorted_subs[cluster] = np.sort(sub[attr == cluster])
            need = target - have
            partial[row] = (cluster, int(sorted_subs[cluster][need - 1]) + 1)
    return RowFilter(attr, sub, tuple(whole), partial)


def generated(base: np.ndarray, queries: np.ndarray, metric: str, selectivity: float,
              correlation: str, seed: int) -> RowFilter:
    """The ``{selectivity, correlation}`` filter of the axis."""
    if correlation == "random":
        return random_filter(len(base), len(queries), selectivity, seed)
    if correlation not in CORRELATIONS:
        raise DataError(f"correlation {correlation!r}; expected one of {', '.join(CORRELATIONS)}")
    return correlated_filter(base, queries, metric, selectivity, correlation == "positive", seed)
