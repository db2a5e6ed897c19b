"""What exact filtered ground truth costs against unfiltered, on the study's data.

    VECBENCH_DATA=../shared/datasets python experiments/filtered_rag/truth_cost.py

For each filter of the study: the seconds to make the filter (k-means for the correlated ones),
and the seconds of exact filtered top-10 (vecbench.compute.filtered_knn, not cached) against
exact unfiltered top-10 (vecbench.compute.groundtruth.exact_knn, faiss), the median of 3 runs
each, on one thread (faiss and BLAS), as the study runs; and the per-query masked kernel with a
filter that lets every row through (so the kernel's own speed is told apart from the filter's
effect). A filter that shows every query the same rows (random) is answered by faiss on those
rows; a per-query one (positive, negative, labels) by the masked kernel. Prints a Markdown table.
"""

from __future__ import annotations

import time

import numpy as np

from vecbench.compute import filtered_knn, filters, groundtruth
from vecbench.core.components import Component
from vecbench.core.environment import set_threads
from vecbench.run.stages import load

DATASETS = {
    "scifact": Component("beir", {"path": "scifact-sentences", "embeddings": "minilm-l6"}),
    "synthetic": Component("synthetic", {"n_base": 20000, "n_queries": 100, "dim": 64,
                                         "intrinsic_dim": 16, "n_clusters": 16}),
}
SELECTIVITIES = (0.001, 0.01, 0.1, 0.5)
CORRELATIONS = ("random", "positive", "negative")


def median_seconds(call, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    set_threads(1)
    print("| dataset | filter | make filter (s) | filtered truth (s) | unfiltered truth (s) "
          "| ratio |")
    print("|---|---|---|---|---|---|")
    for name, component in DATASETS.items():
        data = load(component, ".")
        base, queries = np.ascontiguousarray(data.base, dtype=np.float32), data.queries
        plain = median_seconds(lambda: groundtruth.exact_knn(base, queries, 10, data.metric))
        # the per-query (masked, blockwise) kernel with a filter that lets every row through:
        # what the correlated filters' truth costs beyond the kernel itself
        everything = filters.RowFilter(
            np.ones(len(base), np.int32), np.zeros(len(base), np.int32),
            tuple(np.array([1], np.int32) for _ in range(len(queries))),
            np.array([[2, 0]] + [[-1, 0]] * (len(queries) - 1), dtype=np.int32))
        kernel = median_seconds(lambda: filtered_knn.filtered_knn(base, queries, 10, data.metric,
                                                                  everything))
        print(f"| {name} ({len(base)} x {base.shape[1]}, {len(queries)} queries) | none "
              f"(per-query kernel, every row) | 0 | {kernel:.3f} | {plain:.3f} | "
              f"{kernel / plain:.1f}x |")
        for correlation in CORRELATIONS:
            for selectivity in SELECTIVITIES:
                start = time.perf_counter()
                row_filter = filters.generated(base, queries, data.metric, selectivity,
                                               correlation, seed=0)
                made = time.perf_counter() - start
                cost = median_seconds(lambda: filtered_knn.filtered_knn(
                    base, queries, 10, data.metric, row_filter))
                print(f"| {name} ({len(base)} x {base.shape[1]}, {len(queries)} queries) | "
                      f"{correlation}@{selectivity:g} | {made:.3f} | {cost:.3f} | {plain:.3f} | "
                      f"{cost / plain:.1f}x |")


if __name__ == "__main__":
    main()
