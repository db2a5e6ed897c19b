"""MPAD's margin objective: triplet sampling, :class:`MarginObjective` and its compiled kernels.

The triplets (anchor a, neighbour i, non-neighbour j) are held as index arrays over the projected
points ``y`` (rows of X Wᵀ): ``anchors`` (A,), ``positives`` (A, k), ``negatives`` (A, J) and a
validity mask (A, J). A pair is (anchor, neighbour) or (anchor, non-neighbour), numbered
``a * k + i`` then ``A * k + a * J + j``. Each kernel runs in parallel over anchors or points, so
no two threads write the same row: the gradient's scatter onto the pairs' far ends goes through
a by-point list of pairs built once (:func:`tail_lists`), not through atomic adds.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from vecbench.errors import DataError


@njit(inline="always", fastmath=True)
def _sq_dist(y, u, v):
    total = y[u, 0] - y[u, 0]  # zero in y's dtype: float32 lanes for float32 y
    for c in range(y.shape[1]):
        diff = y[u, c] - y[v, c]
        total += diff * diff
    return total


@njit(parallel=True, cache=True, fastmath=True)  # fastmath: the sums vectorize
def pair_distances(y, anchors, positives, negatives):
    """Squared distances (A, k) to the neighbours and (A, J) to the non-neighbours."""
    a_count, k, j_count = len(anchors), positives.shape[1], negatives.shape[1]
    pos = np.empty((a_count, k), dtype=y.dtype)
    neg = np.empty((a_count, j_count), dtype=y.dtype)
    for a in prange(a_count):
        for i in range(k):
            pos[a, i] = _sq_dist(y, anchors[a], positives[a, i])
        for j in range(j_count):
            neg[a, j] = _sq_dist(y, anchors[a], negatives[a, j])
    return pos, neg


#: Triplets with z = (p − n)/τ below this add less than e^-40 ≈ 4e-18 to the loss and to the
#: slope: skipped, to save an exp and a log1p on each of the (many) clearly separated triplets.
Z_FLOOR = -40.0


@njit(parallel=True, cache=True)
def margin_terms(pos, neg, valid, tau):
    """Per anchor: Σ softplus((p_i − n_j)/τ) over valid (i, j), and the derivatives of that sum
    by each p_i (Σ_j σ) and each n_j (−Σ_i σ). One exp per triplet serves both."""
    a_count, k = pos.shape
    j_count = neg.shape[1]
    loss = np.zeros(a_count)
    d_pos = np.zeros((a_count, k))
    d_neg = np.zeros((a_count, j_count))
    inv_tau = 1.0 / tau
    for a in prange(a_count):
        total = 0.0
        for j in range(j_count):
            if not valid[a, j]:
                continue
            slope_sum = 0.0
            for i in range(k):
                z = (pos[a, i] - neg[a, j]) * inv_tau
                if z < Z_FLOOR:
                    continue
                e = np.exp(-abs(z))
                total += max(z, 0.0) + np.log1p(e)
                s = 1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)
                d_pos[a, i] += s
                slope_sum += s
            d_neg[a, j] = -slope_sum
        loss[a] = total
    return loss, d_pos, d_neg


def tail_lists(n_points: int, positives: np.ndarray, negatives: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """For each point, the pairs whose far end it is: (pointer (n + 1,), pair numbers)."""
    tails = np.concatenate([positives.ravel(), negatives.ravel()])
    order = np.argsort(tails, kind="stable")
    pointer = np.zeros(n_points + 1, dtype=np.int64)
    np.cumsum(np.bincount(tails, minlength=n_points), out=pointer[1:])
    return pointer, order.astype(np.int64)


@njit(parallel=True, cache=True)
def point_gradient(y, anchors, positives, negatives, coef_pos, coef_neg, pointer, pairs):
    """G (n, m) = Σ_pairs c (y_head − y_tail) (e_head − e_tail)ᵀ: ∂L/∂W is then 2 Gᵀ X."""
    n, m = y.shape
    a_count, k = positives.shape
    j_count = negatives.shape[1]
    g = np.zeros((n, m), dtype=y.dtype)
    for u in prange(n):  # the far ends: each point gathers its own pairs
        for t in range(pointer[u], pointer[u + 1]):
            p = pairs[t]
            if p < a_count * k:
                head, c = anchors[p // k], coef_pos[p // k, p % k]
            else:
                q = p - a_count * k
                head, c = anchors[q // j_count], coef_neg[q // j_count, q % j_count]
            for col in range(m):
                g[u, col] -= c * (y[head, col] - y[u, col])
    for a in prange(a_count):  # the anchors (distinct): their own pairs
        h = anchors[a]
        for i in range(k):
            v, c = positives[a, i], coef_pos[a, i]
            for col in range(m):
                g[h, col] += c * (y[h, col] - y[v, col])
        for j in range(j_count):
            v, c = negatives[a, j], coef_neg[a, j]
            for col in range(m):
                g[h, col] += c * (y[h, col] - y[v, col])
    return g



def exact_neighbours(x: np.ndarray, rows: np.ndarray, count: int) -> np.ndarray:
    """(len(rows), count) ids of the nearest rows of ``x`` to ``x[rows]``, self excluded."""
    import faiss
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    index = faiss.IndexFlatL2(x32.shape[1])
    index.add(x32)
    _, ids = index.search(x32[rows], count + 1)
    # the anchor is usually first but not always (duplicates): drop it wherever it is
    keep_order = np.argsort(ids == rows[:, None], axis=1, kind="stable")
    return np.take_along_axis(ids, keep_order, axis=1)[:, :count]


def sample_triplets(x: np.ndarray, k: int, n_anchors: int, n_negatives: int,
                    negative_rank: int, rng: np.random.Generator):
    """Anchors (A,), their k-NN (A, k), non-neighbours (A, J) and a validity mask (A, J)."""
    n = len(x)
    if n - 1 < k + 1:
        raise DataError(f"MPAD.fit: the fit sample has {n} vectors; expected at least "
                        f"k + 2 = {k + 2}")
    anchors = np.sort(rng.choice(n, min(n_anchors, n), replace=False))
    ranked = exact_neighbours(x, anchors, min(max(k, negative_rank), n - 1))
    positives = ranked[:, :k]
    pool = ranked.shape[1] - k
    n_near = min(n_negatives // 2, pool)
    near_cols = k + np.argsort(rng.random((len(anchors), pool)), axis=1)[:, :n_near]
    near = np.take_along_axis(ranked, near_cols, axis=1)
    far = rng.integers(0, n, size=(len(anchors), n_negatives - n_near))
    far_ok = (far != anchors[:, None]) & ~(far[:, :, None] == positives[:, None, :]).any(axis=2)
    negatives = np.concatenate([near, far], axis=1)
    valid = np.concatenate([np.ones_like(near, dtype=bool), far_ok], axis=1)
    return anchors, positives, negatives, valid


class MarginObjective:
    """L(W) of the module docstring and its gradient, for fixed triplets (W flattened).

    One evaluation: Y = X Wᵀ and ∂L/∂W = 2 Gᵀ X are BLAS products (all threads); the pair
    distances, the soft hinges and G are compiled kernels (:mod:`vecbench.transforms.margin`)
    that run in parallel and never materialize the (A, k, J) triplet arrays.
    """

    def __init__(self, x, anchors, positives, negatives, valid, penalty: float, tau: float = 1.0,
                 dtype=np.float64):
        a, k, j = len(anchors), positives.shape[1], negatives.shape[1]
        used, local = np.unique(np.concatenate([anchors, positives.ravel(), negatives.ravel()]),
                                return_inverse=True)
        # only the points the triplets touch; float32 halves the cost of the two products
        self.x = np.ascontiguousarray(x[used], dtype=dtype)
        self.x_t = np.ascontiguousarray(self.x.T)  # xᵀ @ G splits well across BLAS threads
        self.anchors = np.ascontiguousarray(local[:a], dtype=np.int64)
        self.positives = np.ascontiguousarray(local[a:a + a * k].reshape(a, k), dtype=np.int64)
        self.negatives = np.ascontiguousarray(local[a + a * k:].reshape(a, j), dtype=np.int64)
        self.pointer, self.pairs = tail_lists(len(used), self.positives, self.negatives)
        self.shape = (a, k, j)
        self.valid = np.ascontiguousarray(valid, dtype=np.bool_)
        self.n_triplets = max(float(self.valid.sum()) * k, 1.0)
        self.penalty = penalty
        self.tau = tau

    def distances(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Y = X Wᵀ and the squared distances (A, k) and (A, J) of the pairs."""
        y = np.ascontiguousarray(self.x @ w.T.astype(self.x.dtype))
        pos, neg = pair_distances(y, self.anchors, self.positives, self.negatives)
        return y, pos, neg

    def initial_tau(self, w: np.ndarray, temperature: float) -> float:
        _, pos, neg = self.distances(w)
        gaps = np.abs(pos[:, :, None] - neg[:, None, :]) * self.valid[:, None, :]
        return temperature * max(float(gaps.sum(dtype=np.float64)) / self.n_triplets, 1e-12)

    def __call__(self, flat: np.ndarray) -> tuple[float, np.ndarray]:
        w = flat.reshape(-1, self.x.shape[1])
        y, pos, neg = self.distances(w)
        hinge, d_pos, d_neg = margin_terms(pos, neg, self.valid, float(self.tau))
        loss = self.tau * float(hinge.sum()) / self.n_triplets
        # d(τ·softplus((p − n)/τ))/dp = sigmoid((p − n)/τ); per pair, over the triplets
        scale = 1.0 / self.n_triplets
        g = point_gradient(y, self.anchors, self.positives, self.negatives,
                                        (d_pos * scale).astype(y.dtype),
                                        (d_neg * scale).astype(y.dtype), self.pointer, self.pairs)
        grad = 2.0 * (self.x_t @ g).T.astype(np.float64)
        excess = w @ w.T - np.eye(len(w))
        loss += self.penalty * float((excess ** 2).sum())
        grad += 4.0 * self.penalty * excess @ w
        return loss, grad.ravel()
