"""MPAD speed: fit 10k × 384 → 64 in <= 60 s on 2 cores; transform within 1.5× of ``x @ W.T``.

Run: ``.venv/bin/pytest benchmarks/bench_mpad.py -s`` (pytest-benchmark). With ``VECBENCH_DATA``
set, also fits a 10k sample of the scifact-sentences MiniLM embeddings and reports recall@10
(exact L2 search in the reduced space vs exact kNN of the original vectors) of MPAD, per-axis
MPAD and PCA at 64 and 32 dimensions, on held-out corpus sentences and on the claims.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from vecbench.datasets.builtin import Synthetic
from vecbench.transforms.mpad import MPAD, MPADAxiswise

FIT_LIMIT_S = 60.0
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


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / truth.shape[1] for f, t in zip(found, truth)]))


def test_fit_speed_synthetic(benchmark):
    # intrinsic dimension above 64: PCA cannot keep every neighbour, so L-BFGS does real work
    x = Synthetic(n_base=10_000, n_queries=1, dim=384, intrinsic_dim=160, noise=0.02,
                  n_clusters=50, metric="cos", seed=0).load().base
    est = MPAD(64)
    benchmark.pedantic(lambda: est.fit(x), rounds=1, iterations=1)
    fit_s = benchmark.stats.stats.min
    benchmark.extra_info.update(fit_s=fit_s, n_iter=est.n_iter_, loss=est.loss_,
                                initial_loss=est.initial_loss_)
    print(f"\nMPAD fit 10k x 384 -> 64 (synthetic): {fit_s:.1f} s, {est.n_iter_} iterations, "
          f"loss {est.initial_loss_:.3g} -> {est.loss_:.3g}")
    assert fit_s <= FIT_LIMIT_S


def test_transform_speed_vs_plain_matmul(benchmark):
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
    assert ratio <= TRANSFORM_RATIO_LIMIT


@needs_minilm
def test_fit_speed_and_neighbour_preservation_minilm(benchmark):
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
    benchmark.pedantic(lambda: est.fit(fit_rows), rounds=1, iterations=1)
    fit_s = benchmark.stats.stats.min
    rows = []
    for dims in (64, 32):
        for name, reducer in [("pca", PCA(dims, random_state=0)),
                              ("mpad", est if dims == 64 else MPAD(dims)),
                              ("mpad_axiswise", MPADAxiswise(dims))]:
            seconds = fit_s if reducer is est else _timed(lambda: reducer.fit(fit_rows))
            reduced = reducer.transform(base)
            for what, q in queries.items():
                recall = _recall(_knn(reduced, reducer.transform(q)), truths[what])
                rows.append((dims, name, what, recall, seconds))
    benchmark.extra_info.update(fit_s=fit_s, recall={f"{d}/{n}/{w}": r for d, n, w, r, _ in rows})
    print(f"\nMPAD fit on 10k MiniLM sentences -> 64: {fit_s:.1f} s ({est.n_iter_} iterations)")
    print("dims  method          queries              recall@10   fit s")
    for dims, name, what, recall, seconds in rows:
        print(f"{dims:4d}  {name:14s}  {what:19s}  {recall:9.4f}  {seconds:6.1f}")
    assert fit_s <= FIT_LIMIT_S
