r"""MPAD: linear reductions that keep nearest neighbours (Fu & Zhao, arXiv 2504.16335).

Both transforms are linear maps fitted on a seeded sample of at most ``fit_size`` rows, centred
with their mean and, with ``normalize`` (default, as the authors do), L2-normalized first::

    transform(x) = (x − mean_) @ components_.T        float32, components_: (m, d)

computed as ``x @ components_.T − mean_ @ components_.T``: one matrix product. ``transform`` does
not re-normalize rows (an extra pass over x would cost about as much as the product): vecbench's
loaders already normalize ``cos`` datasets, and L2 distances ignore the centring. For L2 data
whose norms matter, fit with ``normalize=False``. The outputs are for L2 search (or cosine after
re-normalizing).

``mpad`` (:class:`MPAD`): the paper's margin between k-NNs and non-k-NNs, made to scale.
    x_1..x_N are the prepared fit rows, W ∈ R^{m×d}. For sampled anchors a ∈ A, N_k(a) are the k
    exact nearest neighbours of x_a within the sample (faiss, computed once) and S(a) are J
    sampled non-neighbours. With squared projected distances

        p_ai = ‖W(x_a − x_i)‖²  (i ∈ N_k(a)),        n_aj = ‖W(x_a − x_j)‖²  (j ∈ S(a)),

    MPAD minimizes over W

        L(W) = 1/|T| Σ_{(a,i,j) ∈ T} τ·softplus((p_ai − n_aj)/τ)  +  λ‖W Wᵀ − I_m‖_F²,

    T = all (a, i, j). The first term is a smooth hinge on every margin n_aj − p_ai (it tends to
    max(0, p_ai − n_aj) as τ → 0): it pays for each non-neighbour that comes closer than a true
    neighbour, i.e. for what costs recall@k. The choices the paper leaves open:

    * squared L2 in the reduced space: the distance the downstream index ranks by, and its
      gradient is a matrix product (the paper's own per-axis differences are ``mpad_axiswise``);
    * a per-triplet soft hinge, not mean(non-neighbour distance) − mean(neighbour distance): the
      latter is linear in WᵀW, so its optimum is an eigenproblem (the LPP/ANMM family) that weighs
      far, harmless pairs as much as confused ones;
    * τ = ``temperature`` × mean |p_ai − n_aj| at the initial W, then fixed: the loss has the
      data's scale and stays one function during the optimization (exact gradients for L-BFGS);
    * non-neighbours: half near misses drawn from ranks k+1..``negative_rank`` of the anchor's
      exact list (the only points a mild distortion can swap with a neighbour), half uniform over
      the sample (they keep the global layout); uniform draws that are neighbours are masked;
    * soft orthogonality λ‖WWᵀ − I‖_F² (``penalty``): without it, scaling W up inflates every
      margin, and rows could collapse onto one direction;
    * k = 10, vecbench's default recall@10; ``init="pca"`` starts from the principal axes.

    Gradient: ∂p/∂W = 2 W δ δᵀ, so ∂L/∂W = 2 Σ_pairs c_ab (y_a − y_b)(x_a − x_b)ᵀ + 4λ(WWᵀ − I)W,
    c = ∂L/∂distance, accumulated on the points by compiled kernels (k + J exps per anchor, not
    one per triplet: :func:`~vecbench.transforms.margin.margin_terms`). One evaluation costs
    O(|U| m d) in two BLAS products for the |U| ≤ |A|(1 + k + J) points the triplets touch plus
    O(|A| k J) for the hinges; the faiss search, once, is O(|A| N d): linear in the fit size.

``mpad_axiswise`` (:class:`MPADAxiswise`): the authors' later per-axis formulation.
    Axes are learned one at a time; axis t solves, over unit vectors w,

        minimize  −μ_b(w) + α Σ_{s<t} ⟨w, w_s⟩²,     μ_b(w) = mean of the b% lower tail of
                                                      { |⟨w, x_i − x_j⟩| : (i, j) ∈ P }

    ("smallest b%" in the paper; ``tail="upper"`` takes the largest instead). P is a fixed sample
    of ``pairs_per_point`` × N random pairs, so one evaluation is O(N d + |P|): project the rows
    once, then differences are scalars. ‖w‖ = 1 by normalization: L-BFGS-B (scipy) optimizes v,
    w = v/‖v‖, and the gradient is projected, (I − wwᵀ)∇_w/‖v‖. The tail selection is piecewise:
    the gradient is that of the currently selected pairs, −1/|B| Σ_B sign(e_ij)(x_i − x_j), which
    is exact wherever a small step does not change the selection (almost everywhere).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
from sklearn.utils.validation import check_is_fitted

from vecbench.core.errors import DataError
from vecbench.transforms import checks
from vecbench.transforms.base import TransformBase
from vecbench.transforms.margin import MarginObjective, exact_neighbours, sample_triplets  # noqa: F401 (re-exported)
from vecbench.transforms.reduce import resolve_components


class _LinearReduction(TransformBase):
    """Shared preparation of the fit sample and the one-matrix-product transform."""

    def _prepare_fit(self, x) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
        """Seeded sample of ``fit_size`` rows, normalized and centred, float32 (what the
        objectives compute in: float64 doubled the cost of the preparation and of PCA); its
        mean, float64."""
        x = self._validate(x, reset=True, finite=False, min_samples=2)  # finite: see below
        rng = np.random.default_rng(self.seed)
        if len(x) > self.fit_size:
            x = x[np.sort(rng.choice(len(x), self.fit_size, replace=False))]
        x = np.array(x, dtype=np.float32)
        if not np.isfinite(x).all():
            raise DataError(f"{type(self).__name__}.fit: x has NaN or Inf values; "
                            "expected finite vectors")
        if self.normalize:
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            x /= np.where(norms > 0, norms, 1.0)
        mean = x.mean(axis=0, dtype=np.float64)
        x -= mean.astype(np.float32)
        return x, mean, rng

    def _n_components_for(self, dim: int) -> int:
        return resolve_components(self.n_components, dim)

    def _set_learned(self, components: np.ndarray, mean: np.ndarray) -> None:
        self.components_ = np.ascontiguousarray(components, dtype=np.float32)
        self.mean_ = mean.astype(np.float32)
        # (x − μ)Wᵀ = xWᵀ − μWᵀ: the centring is applied to the (m/d times smaller) output
        self.offset_ = (mean @ components.T).astype(np.float32)
        self.n_features_in_ = int(components.shape[1])
        self.n_components_ = int(components.shape[0])

    def transform(self, x) -> np.ndarray:
        check_is_fitted(self, "components_")
        x = self._validate(x, reset=False, finite=False)  # NaN/Inf show in y, m/d the size
        y = x @ self.components_.T
        y -= self.offset_
        if not np.isfinite(y).all():
            raise DataError(f"{type(self).__name__}.transform: x has NaN or Inf values; "
                            "expected finite vectors")
        return y

    def _initial_axes(self, x: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
        """(m, d) starting axes: principal axes, or a random orthonormal basis."""
        if self.init == "pca":
            from sklearn.decomposition import PCA
            # in float64: scikit-learn's covariance eigh was 5x slower in float32 (measured)
            pca = PCA(n_components=m, random_state=self.seed).fit(x.astype(np.float64))
            return pca.components_
        q, _ = np.linalg.qr(rng.standard_normal((x.shape[1], m)))
        return q.T.copy()


# ---------------------------------------------------------------------------------------------
# MPAD: soft-margin triplets (the objective and its kernels: vecbench.transforms.margin)

@contextlib.contextmanager
def serial_optimizer(fun):
    """Yield ``fun`` wrapped to keep its BLAS threads, while the optimizer runs on one thread.

    L-BFGS-B's own BLAS calls are on single vectors, where threads only cost (on a busy machine
    they spin: 25x slower in a measurement); the objective's matrix products keep every thread.
    """
    import scipy.optimize  # noqa: F401  (loads scipy's BLAS before the controller looks)
    from threadpoolctl import ThreadpoolController
    controller = ThreadpoolController()
    threads = max([lib["num_threads"] for lib in controller.info() if lib["user_api"] == "blas"],
                  default=1)

    def wrapped(v):
        with controller.limit(limits=threads, user_api="blas"):
            return fun(v)

    with controller.limit(limits=1, user_api="blas"):
        yield wrapped


#: MPAD stops when the loss fell by less than ``tol`` (relative) over this many iterations.
STALL_WINDOW = 10


def stalled(losses: list, tol: float, window: int = STALL_WINDOW) -> bool:
    """Whether the last ``window`` iterations lowered the loss by less than ``tol`` of it.

    Not before ``2 * window`` iterations: L-BFGS's first steps can be short while it learns the
    curvature (10 iterations lowered a synthetic fit's loss by 3.5%, the next ones by more).
    """
    if len(losses) <= 2 * window:
        return False
    before, now = losses[-window - 1], losses[-1]
    return before - now < tol * abs(before)


def lbfgs(fun, x0: np.ndarray, scale: float, max_iter: int, tol: float,
          window: int | None = None):
    """scipy's L-BFGS-B on ``fun / scale``; the result's ``fun`` is unscaled.

    Without ``window``: L-BFGS-B's own test, a decrease below ``tol · max(|f|, 1)`` in one
    iteration (dividing by the loss's own scale makes ``tol`` relative). With ``window``: stop
    when the loss fell by less than ``tol`` (relative) over the last ``window`` iterations, a
    test that tolerates the slow, steady tail in which MPAD's neighbour preservation no longer
    moves (measured on scifact-sentences MiniLM, benchmarks/RESULTS.md).
    """
    from scipy.optimize import minimize as scipy_minimize
    scale = max(scale, 1e-300)
    losses = [1.0]

    def scaled(v):
        loss, grad = fun(v)
        return loss / scale, grad / scale

    def callback(intermediate_result):
        losses.append(float(intermediate_result.fun))
        if window is not None and stalled(losses, tol, window):
            raise StopIteration

    with serial_optimizer(scaled) as objective:
        res = scipy_minimize(objective, x0, jac=True, method="L-BFGS-B",
                             tol=tol if window is None else 0.0, callback=callback,
                             options={"maxiter": max_iter})
    res.fun = float(res.fun) * scale
    return res


def minimize(fun, w0: np.ndarray, optimizer: str, max_iter: int, tol: float,
             learning_rate: float, initial_loss: float) -> tuple[np.ndarray, float, int]:
    """Minimize ``fun(flat) -> (loss, grad)`` from ``w0`` (where it is ``initial_loss``) until
    the loss stalls (:func:`stalled`); returns (solution, loss, iterations)."""
    if optimizer == "lbfgs":
        res = lbfgs(fun, w0.ravel(), abs(initial_loss), max_iter, tol, STALL_WINDOW)
        return res.x.reshape(w0.shape), float(res.fun), int(res.nit)
    # Adam written out (a few lines): scipy has none and torch is no dependency of vecbench
    w, m1, m2 = w0.ravel().copy(), np.zeros(w0.size), np.zeros(w0.size)
    best, best_loss, losses, step = w.copy(), np.inf, [], 0
    for step in range(1, max_iter + 1):
        loss, grad = fun(w)
        if loss < best_loss:
            best, best_loss = w.copy(), loss
        losses.append(loss)
        if stalled(losses, tol):
            break
        m1 = 0.9 * m1 + 0.1 * grad
        m2 = 0.999 * m2 + 0.001 * grad ** 2
        w -= learning_rate * (m1 / (1 - 0.9 ** step)) / (np.sqrt(m2 / (1 - 0.999 ** step)) + 1e-12)
    return best.reshape(w0.shape), float(best_loss), step


class MPAD(_LinearReduction):
    """Linear reduction with a soft margin between k-NNs and non-neighbours (module docstring).

    ``n_components``: dimensions kept, or a fraction of the input's; ``fit_size``: rows sampled
    to fit on; ``k``, ``n_anchors``, ``n_negatives``, ``negative_rank``: the triplets;
    ``penalty``: λ; ``temperature``: τ over the initial mean gap; ``optimizer``: ``lbfgs``
    (scipy L-BFGS-B) or ``adam`` (full batch, ``learning_rate``); ``max_iter``: at most that
    many iterations; ``tol``: stop once the last 10 iterations lowered the loss by less than this
    fraction of it (:func:`stalled`); ``init``: ``pca`` or ``random``; ``normalize``: fit on L2-normalized rows. Learned:
    ``components_``, ``mean_``, ``offset_``, ``loss_``, ``initial_loss_``, ``n_iter_``.
    """

    name = "mpad"
    params = checks.mpad.params

    def __init__(self, n_components=0.5, *, k=10, fit_size=10_000, n_anchors=5000,
                 n_negatives=20, negative_rank=100, penalty=1.0, temperature=0.03,
                 optimizer="lbfgs", max_iter=100, tol=0.05, learning_rate=1e-3, init="pca",
                 normalize=True, seed=0):
        # scikit-learn's contract: every parameter stored unchanged under its own name
        vars(self).update((name, value) for name, value in locals().items() if name != "self")

    def _neighbours_for(self, n: int) -> int:
        """``k``, or n − 2 on a fit sample too small for it (with a warning), as umap-learn
        truncates its ``n_neighbors`` (and ``n_anchors``, ``negative_rank`` are clipped to the
        sample): each anchor needs k neighbours and one point beyond them."""
        if n - 2 >= self.k or n < 3:  # fewer than 3 rows: sample_triplets says why
            return self.k
        warnings.warn(f"mpad: k={self.k} neighbours need at least {self.k + 2} fit vectors; "
                      f"the fit sample has {n}, so k = {n - 2}", UserWarning, stacklevel=3)
        return n - 2

    def fit(self, x, y=None) -> "MPAD":
        self._check_params()
        x, mean, rng = self._prepare_fit(x)
        m = self._n_components_for(x.shape[1])
        triplets = sample_triplets(x, self._neighbours_for(len(x)), self.n_anchors,
                                   self.n_negatives, self.negative_rank, rng)
        w0 = self._initial_axes(x, m, rng)
        objective = MarginObjective(x, *triplets, penalty=self.penalty, dtype=np.float32)
        objective.tau = objective.initial_tau(w0, self.temperature)
        self.initial_loss_ = objective(w0.ravel())[0]
        from threadpoolctl import threadpool_limits
        # one BLAS thread for the products too: measured interleaved on the shared 2-core
        # machine, the fit took 0.6-0.7x the wall time of BLAS's two threads (which spin between
        # the products while the compiled kernels run)
        with threadpool_limits(1, user_api="blas"):
            w, self.loss_, self.n_iter_ = minimize(objective, w0, self.optimizer, self.max_iter,
                                                   self.tol, self.learning_rate,
                                                   self.initial_loss_)
        self._set_learned(w, mean)
        return self


# ---------------------------------------------------------------------------------------------
# MPAD axis by axis: the tail mean of 1-D pairwise absolute differences

class AxisObjective:
    """−μ_b(v/‖v‖) + α Σ_s ⟨v/‖v‖, w_s⟩² and its gradient in v, for fixed pairs."""

    def __init__(self, x, left, right, b: float, alpha: float, tail: str = "lower",
                 dtype=np.float64):
        # float32 halves the memory traffic of the two matrix-vector products
        self.x, self.left, self.right = np.ascontiguousarray(x, dtype=dtype), left, right
        self.n_select = max(1, int(round(b / 100.0 * len(left))))
        self.alpha, self.side = alpha, tail
        self.previous = np.zeros((0, x.shape[1]))

    def tail(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit w, the pair differences ⟨w, x_i − x_j⟩ and the indices of the selected tail."""
        w = v / np.linalg.norm(v)
        z = (self.x @ w.astype(self.x.dtype)).astype(np.float64)
        diffs = z[self.left] - z[self.right]
        gaps, n_select = np.abs(diffs), self.n_select
        # argpartition: the tail in linear time, no sort
        if self.side == "lower":
            return w, diffs, np.argpartition(gaps, n_select - 1)[:n_select]
        return w, diffs, np.argpartition(gaps, len(gaps) - n_select)[len(gaps) - n_select:]

    def tail_mean(self, v: np.ndarray) -> float:
        """μ_b(v/‖v‖), the utility alone."""
        _, diffs, chosen = self.tail(v)
        return float(np.abs(diffs[chosen]).mean())

    def __call__(self, v: np.ndarray) -> tuple[float, np.ndarray]:
        w, diffs, chosen = self.tail(v)
        signs = np.sign(diffs[chosen])
        n = len(self.x)
        weights = (np.bincount(self.left[chosen], signs, minlength=n)
                   - np.bincount(self.right[chosen], signs, minlength=n))
        overlap = self.previous @ w
        loss = -float(np.abs(diffs[chosen]).mean()) + self.alpha * float(overlap @ overlap)
        grad_w = (2.0 * self.alpha * (overlap @ self.previous)
                  - (weights.astype(self.x.dtype) @ self.x) / self.n_select)
        return loss, (grad_w - (grad_w @ w) * w) / np.linalg.norm(v)


class MPADAxiswise(_LinearReduction):
    """Per-axis MPAD: tail mean of 1-D pairwise absolute differences (module docstring).

    ``b``: tail size in percent of the sampled pairs; ``alpha``: α; ``pairs_per_point``: |P|/N;
    ``tail``: ``lower`` (the paper) or ``upper``; ``max_iter``, ``tol``: per axis; ``init``:
    ``random`` (the paper's random unit starts) or ``pca`` (axis t starts at principal axis t).
    """

    name = "mpad_axiswise"
    params = checks.mpad_axiswise.params

    def __init__(self, n_components=0.5, *, fit_size=10_000, b=1.0, alpha=0.1,
                 pairs_per_point=20, tail="lower", max_iter=50, tol=1e-7, init="random",
                 normalize=True, seed=0):
        # scikit-learn's contract: every parameter stored unchanged under its own name
        vars(self).update((name, value) for name, value in locals().items() if name != "self")

    def fit(self, x, y=None) -> "MPADAxiswise":
        self._check_params()
        x, mean, rng = self._prepare_fit(x)
        m = self._n_components_for(x.shape[1])
        n = len(x)
        left = rng.integers(0, n, self.pairs_per_point * n)
        right = (left + rng.integers(1, n, len(left))) % n  # never a point with itself
        objective = AxisObjective(x, left, right, self.b, self.alpha, self.tail, np.float32)
        starts = self._initial_axes(x, m, rng)
        axes, self.n_iter_ = np.zeros((m, x.shape[1])), 0
        for t in range(m):
            objective.previous = axes[:t]
            res = lbfgs(objective, starts[t], objective.tail_mean(starts[t]), self.max_iter,
                        self.tol)
            axes[t] = res.x / np.linalg.norm(res.x)
            self.n_iter_ += int(res.nit)
        self._set_learned(axes, mean)
        return self
