"""Where pointwise LID's kNN graph should switch from exact search to HNSW: measured.

At a few sizes of 384-d embeddings-like data, in this process and interleaved, the whole graph
step of each path is timed: ``lid.knn_graph`` exact (faiss brute-force self-kNN) and HNSW
(hnswlib build + search with ``lid.DEFAULT_HNSW``, plus its 500-point recall check). Exact costs
grow as n^2, HNSW about as n log n; the two fitted power laws give the size where they cross,
and ``lid.DEFAULT_EXACT_LIMIT`` must lie within a factor 2 of it. Measured at 20k, 50k and
100k, so the crossing is bracketed by measurements rather than extrapolated (about 15 minutes
on 2 cores). ``VECBENCH_BENCH_LID_SIZES`` (comma-separated) changes the sizes.
"""

from __future__ import annotations

import os

import numpy as np
from bench_lid import K, embeddings_like
from conftest import interleaved, machine

from vecbench.compute import lid

SIZES = [int(v) for v in os.environ.get("VECBENCH_BENCH_LID_SIZES", "20000,50000,100000").split(",")]


def test_exact_hnsw_switch_is_set_by_measurement(benchmark, record):
    rows = []

    def measure():
        for n in SIZES:
            x = embeddings_like(n, seed=2)
            timing = interleaved(lambda: lid.knn_graph(x, K, exact_limit=10**12),
                                 lambda: lid.knn_graph(x, K, exact_limit=0), rounds=2)
            rows.append((n, timing["reference_median_s"], timing["ours_median_s"]))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    n, exact_s, hnsw_s = (np.array(v, dtype=float) for v in zip(*rows))
    exact_fit = np.polyfit(np.log(n), np.log(exact_s), 1)  # log t = a log n + b
    hnsw_fit = np.polyfit(np.log(n), np.log(hnsw_s), 1)
    slope = exact_fit[0] - hnsw_fit[0]
    crossing = float(np.exp((hnsw_fit[1] - exact_fit[1]) / slope)) if slope > 0 else float("inf")
    benchmark.extra_info.update(sizes=SIZES, exact_s=exact_s.tolist(), hnsw_s=hnsw_s.tolist(),
                                exact_exponent=exact_fit[0], hnsw_exponent=hnsw_fit[0],
                                crossing=crossing, limit=lid.DEFAULT_EXACT_LIMIT,
                                machine=machine())
    print(f"\nLID kNN graph, 384-d, k={K} ({machine()}):")
    for size, e, h in rows:
        print(f"  n={size:>7}: exact {e:6.1f} s, hnsw {h:6.1f} s (exact/hnsw {e / h:.2f})")
    print(f"  fits: exact ~ n^{exact_fit[0]:.2f}, hnsw ~ n^{hnsw_fit[0]:.2f}; they cross at "
          f"n ~ {crossing:,.0f}; DEFAULT_EXACT_LIMIT = {lid.DEFAULT_EXACT_LIMIT:,}")
    within = crossing / 2 <= lid.DEFAULT_EXACT_LIMIT <= crossing * 2
    sizes = ", ".join(f"{size // 1000}k: exact {e:.1f} s / hnsw {h:.1f} s" for size, e, h in rows)
    record(measured=f"crossing at n ~ {crossing:,.0f} (fits: exact ~ n^{exact_fit[0]:.2f}, "
                    f"hnsw ~ n^{hnsw_fit[0]:.2f}; {sizes}); DEFAULT_EXACT_LIMIT "
                    f"{lid.DEFAULT_EXACT_LIMIT:,}",
           target="DEFAULT_EXACT_LIMIT within 2x of the crossing", met=within,
           crossing=crossing, limit=lid.DEFAULT_EXACT_LIMIT, sizes=SIZES,
           exact_s=exact_s.tolist(), hnsw_s=hnsw_s.tolist())
    assert within
