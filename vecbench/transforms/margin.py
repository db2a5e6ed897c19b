"""MPAD's margin objective: triplet sampling, :class:`MarginObjective` and its compiled kernels.

The triplets (anchor a, neighbour i, non-neighbour j) are held as index arrays over the projected
points ``y`` (rows of X Wᵀ): ``anchors`` (A,), ``positives`` (A, k), ``negatives`` (A, J) and a
validity mask (A, J). The kernels run on one thread: each is a few milliseconds, and on a
shared machine a parallel region waits at its barrier for the slowest thread (numba's OpenMP
pool made one evaluation several times slower at load 4 on 2 cores, in a profile); MPAD runs
the two matrix products per evaluation on one BLAS thread as well (:meth:`MPAD.fit`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from vecbench.core.errors import DataError


@njit(inline="always", fastmath=True)
def _sq_dist(y, u, v):
    total = y[u, 0] - y[u, 0]  # zero in y's dtype: float32 lanes for float32 y
    for c in range(y.shape[1]):
        diff = y[u, c] - y[v, c]
        total += diff * diff
    return total


@njit(cache=True, fastmath=True)  # fastmath: the sums vectorize
def pair_distances(y, anchors, positives, negatives):
    """Squared distances (A, k) to the neighbours and (A, J) to the non-neighbours."""
    a_count, k, j_count = len(anchors), positives.shape[1], negatives.shape[1]
    pos = np.empty((a_count, k), dtype=y.dtype)
    neg = np.empty((a_count, j_count), dtype=y.dtype)
    for a in range(a_count):
        for i in range(k):
            pos[a, i] = _sq_dist(y, anchors[a], positives[a, i])
        for j in range(j_count):
            neg[a, j] = _sq_dist(y, anchors[a], negatives[a, j])
    return pos, neg


#: Above this exponent the factored form exp(p/τ)·exp(−n/τ) could overflow float64 (e^709):
#: such an anchor takes one exp per triplet instead.
EXP_SAFE = 600.0
#: fastmath without its no-inf/no-NaN promises: 1/t is inf where t underflows to 0
SAFE_FASTMATH = {"reassoc", "nsz", "arcp", "contract"}


@njit(cache=True, fastmath=SAFE_FASTMATH, error_model="numpy")
def _anchor_terms_direct(pos, neg, valid, inv_tau, a, d_pos, d_neg):
    total = 0.0
    for j in range(neg.shape[1]):
        if not valid[a, j]:
            continue
        slope_sum = 0.0
        for i in range(pos.shape[1]):
            z = (pos[a, i] - neg[a, j]) * inv_tau
            e = np.exp(-abs(z))
            total += max(z, 0.0) + np.log1p(e)
            s = 1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)
            d_pos[a, i] += s
            slope_sum += s
        d_neg[a, j] = -slope_sum
    return total


@njit(cache=True, fastmath=SAFE_FASTMATH, error_model="numpy")
def margin_terms(pos, neg, valid, tau):
    """Per anchor: Σ softplus((p_i − n_j)/τ) over valid (i, j), and the derivatives of that sum
    by each p_i (Σ_j σ) and each n_j (−Σ_i σ).

    No exp or log per triplet: with t = e^z = exp((p_i − top)/τ)·exp((top − n_j)/τ) (k + J
    exps per anchor), σ(z) = t/(1 + t) and softplus(z) = max(z, 0) + log(1 + min(t, 1/t)),
    whose logs over i are summed as the log of a product of factors in [1, 2] (one log per
    non-neighbour; a term below 1e-16 is lost there, an absolute error far below the loss's
    float32 inputs). ``top`` = the anchor's largest p keeps the exponents in range; an anchor
    whose spread could overflow them takes the direct form.
    """
    a_count, k = pos.shape
    j_count = neg.shape[1]
    loss = np.zeros(a_count)
    d_pos = np.zeros((a_count, k))
    d_neg = np.zeros((a_count, j_count))
    inv_tau = 1.0 / tau
    en, mask = np.empty(j_count), np.empty(j_count)
    hinge, prod = np.empty(j_count), np.empty(j_count)
    for a in range(a_count):
        top, low, near = pos[a, 0], pos[a, 0], neg[a, 0]
        for i in range(1, k):
            top, low = max(top, pos[a, i]), min(low, pos[a, i])
        for j in range(1, j_count):
            near = min(near, neg[a, j])
        if (top - low) * inv_tau > EXP_SAFE or (top - near) * inv_tau > EXP_SAFE:
            loss[a] = _anchor_terms_direct(pos, neg, valid, inv_tau, a, d_pos, d_neg)
            continue
        for j in range(j_count):
            mask[j] = 1.0 if valid[a, j] else 0.0
            en[j] = np.exp((top - neg[a, j]) * inv_tau)
            hinge[j], prod[j], d_neg[a, j] = 0.0, 1.0, 0.0
        for i in range(k):
            ep, p = np.exp((pos[a, i] - top) * inv_tau), pos[a, i]
            slope_sum = 0.0
            for j in range(j_count):  # vectorizes: no branch, no transcendental
                t = ep * en[j]
                hinge[j] += mask[j] * max((p - neg[a, j]) * inv_tau, 0.0)
                prod[j] *= 1.0 + mask[j] * min(t, 1.0 / t)
                s = mask[j] * t / (1.0 + t)
                d_neg[a, j] -= s
                slope_sum += s
            d_pos[a, i] = slope_sum
        total = 0.0
        for j in range(j_count):
            total += hinge[j] + np.log(prod[j])
        loss[a] = total
    return loss, d_pos, d_neg


@njit(cache=True, fastmath=True)
def point_gradient(y, anchors, positives, negatives, coef_pos, coef_neg):
    """G (n, m) = Σ_pairs c (y_head − y_tail) (e_head − e_tail)ᵀ: ∂L/∂W is then 2 Gᵀ X."""
    n, m = y.shape
    a_count, k = positives.shape
    g = np.zeros((n, m), dtype=y.dtype)
    head = np.empty(m, dtype=y.dtype)  # the anchor's row, summed here and added once
    for a in range(a_count):
        h = anchors[a]
        head[:] = 0.0
        for i in range(k + negatives.shape[1]):
            v = positives[a, i] if i < k else negatives[a, i - k]
            c = coef_pos[a, i] if i < k else coef_neg[a, i - k]
            for col in range(m):
                step = c * (y[h, col] - y[v, col])
                head[col] += step
                g[v, col] -= step
        for col in range(m):
            g[h, col] += head[col]
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

    One evaluation: Y = X Wᵀ and ∂L/∂W = 2 Gᵀ X are BLAS products; the pair
    distances, the soft hinges and G are compiled kernels (:mod:`vecbench.transforms.margin`)
    that never materialize the (A, k, J) triplet arrays.
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
                           (d_pos * scale).astype(y.dtype), (d_neg * scale).astype(y.dtype))
        grad = 2.0 * (self.x_t @ g).T.astype(np.float64)
        excess = w @ w.T - np.eye(len(w))
        loss += self.penalty * float((excess ** 2).sum())
        grad += 4.0 * self.penalty * excess @ w
        return loss, grad.ravel()
