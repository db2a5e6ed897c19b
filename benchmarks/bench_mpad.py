"""MPAD speed: fit 10k × 384 → 64 in <= 5 s on 2 cores; transform within 1.5× of ``x @ W.T``.

Run: ``.venv/bin/pytest benchmarks/bench_mpad.py -s`` (pytest-benchmark). The fit is timed
beside scikit-learn's PCA fit of the same rows (the machine is shared: the PCA time shows the
load). With ``VECBENCH_DATA`` set, also fits a 10k sample of the scifact-sentences MiniLM
embeddings and reports recall@10 (exact L2 search in the reduced space vs exact kNN of the
original vectors) of PCA and MPAD at 64 and 32 dimensions, on held-out corpus sentences and on
the claims; MPAD stopped by its tolerance is compared query by query with MPAD run for all 100
iterations (``tol=0``): the 95% bootstrap interval of the difference must reach 0 or above.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from vecbench.datasets.builtin import Synthetic
from vecbench.transforms.mpad import MPAD

FIT_LIMIT_S = 5.0
TRANSFORM_RATIO_LIMIT = 1.5
DATA = os.environ.get("VECBENCH_DATA")  # CI sets VECBENCH_DATA=../shared/datasets
MINILM = os.path.join(DATA or "", "scifact-sentences", "embeddings", "minilm-l6")
needs_minilm = pytest.mark.skipif(
    not DATA or not os.path.isfile(os.path.join(MINILM, "corpus.npy")),
    reason="VECBENCH_DATA not set or has no scifact-sentences MiniLM embeddings")


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _knn(base: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    import faiss
    index = faiss.IndexFlatL2(base.shape[1])
    index.add(np.ascontiguousarray(base, dtype=np.float32))
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k)[1]


def _recalls(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-query recall@k."""
    return np.array([len(set(f) & set(t)) / truth.shape[1] for f, t in zip(found, truth)])


def _paired_interval(diff: np.ndarray, rounds: int = 2000) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of per-query differences."""
    rng = np.random.default_rng(0)
    means = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(rounds)]
    return tuple(float(v) for v in np.percentile(means, [2.5, 97.5]))


def test_fit_speed_synthetic(benchmark, record):
    from sklearn.decomposition import PCA
    from conftest import machine
    # intrinsic dimension above 64: PCA cannot keep every neighbour, so L-BFGS does real work
    x = Synthetic(n_base=10_000, n_queries=1, dim=384, intrinsic_dim=160, noise=0.02,
                  n_clusters=50, metric="cos", seed=0).load().base
    MPAD(8, n_anchors=50, max_iter=2).fit(x[:500])  # compile (or load) the kernels first
    est = MPAD(64)
    pca_s = min(_timed(lambda: PCA(64, random_state=0).fit(x)) for _ in range(2))
    cpu_start = time.process_time()
    benchmark.pedantic(lambda: est.fit(x), rounds=1, iterations=1)
    cpu_s = time.process_time() - cpu_start  # all threads' CPU time: what the load does not add
    fit_s = benchmark.stats.stats.min
    benchmark.extra_info.update(fit_s=fit_s, n_iter=est.n_iter_, loss=est.loss_,
                                initial_loss=est.initial_loss_, pca_s=pca_s, machine=machine())
    print(f"\nMPAD fit 10k x 384 -> 64 (synthetic, {machine()}): {fit_s:.1f} s, {est.n_iter_} "
          f"iterations, loss {est.initial_loss_:.3g} -> {est.loss_:.3g}; PCA fit {pca_s:.2f} s "
          f"({fit_s / pca_s:.0f}x); CPU time {cpu_s:.1f} s")
    record(measured=f"{fit_s:.1f} s wall ({cpu_s:.1f} s CPU, all threads), {est.n_iter_} "
                    f"iterations; PCA fit {pca_s:.2f} s ({fit_s / pca_s:.1f}x)",
           target=f"≤ {FIT_LIMIT_S:.0f} s on 2 cores", met=fit_s <= FIT_LIMIT_S, fit_s=fit_s,
           cpu_s=cpu_s, n_iter=est.n_iter_, loss=est.loss_, initial_loss=est.initial_loss_,
           pca_s=pca_s)
    assert fit_s <= FIT_LIMIT_S


def test_transform_speed_vs_plain_matmul(benchmark, record):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100_000, 384), dtype=np.float32)
    est = MPAD(64, n_anchors=200, max_iter=5).fit(x[:2000])  # W's quality is irrelevant here
    w = est.components_.copy()
    reference = min(_timed(lambda: x @ w.T) for _ in range(7))
    benchmark.pedantic(lambda: est.transform(x), rounds=7, warmup_rounds=1)
    ratio = benchmark.stats.stats.min / reference
    benchmark.extra_info.update(matmul_s=reference, transform_s=benchmark.stats.stats.min,
                                ratio=ratio)
    print(f"\ntransform 100k x 384 -> 64: plain x @ W.T {reference * 1e3:.1f} ms, "
          f"MPAD.transform {benchmark.stats.stats.min * 1e3:.1f} ms, ratio {ratio:.2f}")
    record(measured=f"{ratio:.2f}x (best of 7: x @ W.T {reference * 1e3:.1f} ms, transform "
                    f"{benchmark.stats.stats.min * 1e3:.1f} ms), 100k x 384 -> 64",
           target=f"≤ {TRANSFORM_RATIO_LIMIT}x x @ W.T", met=ratio <= TRANSFORM_RATIO_LIMIT,
           ratio=ratio, matmul_s=reference, transform_s=benchmark.stats.stats.min)
    assert ratio <= TRANSFORM_RATIO_LIMIT


@needs_minilm
def test_fit_speed_and_neighbour_preservation_minilm(benchmark, record):
    from sklearn.decomposition import PCA
    corpus = np.load(os.path.join(MINILM, "corpus.npy"), mmap_mode="r")
    claims = np.load(os.path.join(MINILM, "queries.npy"))
    order = np.random.default_rng(7).permutation(len(corpus))
    base = np.asarray(corpus[np.sort(order[:20_000])])
    held_out = np.asarray(corpus[np.sort(order[20_000:21_000])])
    fit_rows = base[np.sort(np.random.default_rng(8).choice(len(base), 10_000, replace=False))]
    truths = {"held-out sentences": _knn(base, held_out), "claims": _knn(base, claims)}
    queries = {"held-out sentences": held_out, "claims": claims}

    est = MPAD(64)
    cpu_start = time.process_time()
    benchmark.pedantic(lambda: est.fit(fit_rows), rounds=1, iterations=1)
    cpu_s = time.process_time() - cpu_start
    fit_s = benchmark.stats.stats.min
    rows, per_query = [], {}
    for dims in (64, 32):
        for name, reducer in [("pca", PCA(dims, random_state=0)),
                              ("mpad", est if dims == 64 else MPAD(dims)),
                              ("mpad 100 iterations", MPAD(dims, tol=0.0))]:
            seconds = fit_s if reducer is est else _timed(lambda: reducer.fit(fit_rows))
            reduced = reducer.transform(base)
            iters = getattr(reducer, "n_iter_", "")
            for what, q in queries.items():
                recalls = _recalls(_knn(reduced, reducer.transform(q)), truths[what])
                per_query[dims, name, what] = recalls
                rows.append((dims, name, what, recalls.mean(), seconds, iters))
    print(f"\nMPAD fit on 10k MiniLM sentences -> 64: {fit_s:.1f} s ({est.n_iter_} iterations)")
    print("dims  method               queries              recall@10   fit s  iterations")
    for dims, name, what, recall, seconds, iters in rows:
        print(f"{dims:4d}  {name:19s}  {what:19s}  {recall:9.4f}  {seconds:6.1f}  {iters}")
    intervals = {}
    for dims in (64, 32):
        for what in queries:
            diff = per_query[dims, "mpad", what] - per_query[dims, "mpad 100 iterations", what]
            intervals[f"{dims}/{what}"] = (float(diff.mean()), *_paired_interval(diff))
            print(f"{dims} d, {what}: tolerance stop - 100 iterations = {diff.mean():+.4f}, "
                  f"95% interval [{intervals[f'{dims}/{what}'][1]:+.4f}, "
                  f"{intervals[f'{dims}/{what}'][2]:+.4f}]")
    recall = {f"{d}/{n}/{w}": r for d, n, w, r, _, _ in rows}
    benchmark.extra_info.update(fit_s=fit_s, intervals=intervals, recall=recall)
    unchanged = all(high >= 0.0 for _, _, high in intervals.values())
    shown = "; ".join(
        f"{dims} d {what}: {recall[f'{dims}/mpad/{what}']:.4f} vs "
        f"{recall[f'{dims}/mpad 100 iterations/{what}']:.4f} "
        f"({intervals[f'{dims}/{what}'][0]:+.4f} [{intervals[f'{dims}/{what}'][1]:+.4f}, "
        f"{intervals[f'{dims}/{what}'][2]:+.4f}])" for dims in (64, 32) for what in queries)
    record(measured=f"fit {fit_s:.1f} s wall ({cpu_s:.1f} s CPU), {est.n_iter_} iterations; "
                    "recall@10, tolerance stop "
                    f"vs 100 iterations (95% paired interval): {shown}",
           target=f"fit ≤ {FIT_LIMIT_S:.0f} s; every interval reaches 0 or above",
           met=fit_s <= FIT_LIMIT_S and unchanged, fit_s=fit_s, cpu_s=cpu_s, n_iter=est.n_iter_,
           intervals=intervals, recall=recall)
    assert fit_s <= FIT_LIMIT_S
    assert unchanged
