"""Compiled kernels of MPAD's margin objective (:class:`vecbench.transforms.mpad.MarginObjective`).

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
