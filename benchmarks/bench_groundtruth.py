"""(a) Ground truth for 100k×384 and 1k queries at >= 0.9× the speed of a bare faiss.IndexFlat."""

import time

import numpy as np

from vecbench.groundtruth import MIN_DEPTH, exact_knn


def test_ground_truth_speed_vs_bare_faiss(benchmark):
    import faiss

    rng = np.random.default_rng(0)
    base = rng.standard_normal((100_000, 384), dtype=np.float32)
    queries = rng.standard_normal((1_000, 384), dtype=np.float32)

    def bare():
        index = faiss.IndexFlatL2(base.shape[1])
        index.add(base)
        return index.search(queries, MIN_DEPTH)

    bare()  # warm-up
    reference = min(_timed(bare) for _ in range(3))
    ours = benchmark.pedantic(lambda: exact_knn(base, queries, MIN_DEPTH, "l2"), rounds=3,
                              warmup_rounds=1)
    speed_ratio = reference / benchmark.stats.stats.min
    benchmark.extra_info.update(bare_s=reference, ours_s=benchmark.stats.stats.min,
                                speed_ratio=speed_ratio)
    print(f"\nground truth 100k x 384, 1k queries, depth 100: bare faiss {reference:.3f} s, "
          f"vecbench {benchmark.stats.stats.min:.3f} s, speed ratio {speed_ratio:.3f}")
    np.testing.assert_array_equal(ours.ids[:, :10], bare()[1][:, :10])
    assert speed_ratio >= 0.9


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start
