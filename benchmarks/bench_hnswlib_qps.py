"""The hnswlib adapter must cost nothing measurable: its batch QPS is within 5% of a bare
``knn_query`` on the same hnswlib index, in the same process.

Run: ``.venv/bin/pytest benchmarks/bench_hnswlib_qps.py`` (pytest-benchmark). QPS is timed as the
runner times it: one ``search`` call over the whole query batch, all threads.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from vecbench.indexes.hnswlib_index import HnswlibIndex

N_BASE, N_QUERIES, DIM, K, EF = 20_000, 2_000, 128, 10, 64
ROUNDS = 15


@pytest.fixture(scope="module")
def built() -> tuple[HnswlibIndex, np.ndarray]:
    rng = np.random.default_rng(0)
    # data in a 32-d subspace, like embeddings: a realistic graph, not iid noise
    basis = np.linalg.qr(rng.standard_normal((DIM, 32)))[0]
    points = rng.standard_normal((N_BASE + N_QUERIES, 32)) @ basis.T
    points = points.astype(np.float32)
    index = HnswlibIndex(M=16, ef_construction=100, seed=0)
    index.build(points[:N_BASE], "l2")
    return index, np.ascontiguousarray(points[N_BASE:])


def elapsed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def test_adapter_qps_within_5_percent_of_bare_hnswlib(benchmark, built):
    index, queries = built
    raw, threads = index.index_, index.n_threads

    def adapter():
        return index.search(queries, K, ef=EF)[0]

    def bare():
        raw.set_ef(EF)
        return raw.knn_query(queries, k=K, num_threads=threads)[0]

    assert np.array_equal(adapter(), bare().astype(np.int64))  # same work, same answer
    # interleaved rounds, best of each: background load hits both sides alike
    adapter_s, bare_s = [], []
    for _ in range(ROUNDS):
        adapter_s.append(elapsed(adapter))
        bare_s.append(elapsed(bare))
    adapter_qps, bare_qps = N_QUERIES / min(adapter_s), N_QUERIES / min(bare_s)
    benchmark.extra_info.update(adapter_qps=round(adapter_qps), bare_qps=round(bare_qps),
                                ratio=round(adapter_qps / bare_qps, 4), threads=threads)
    benchmark.pedantic(adapter, rounds=5, warmup_rounds=1)
    print(f"\nadapter {adapter_qps:.0f} QPS, bare knn_query {bare_qps:.0f} QPS, "
          f"ratio {adapter_qps / bare_qps:.3f} ({threads} threads)")
    assert adapter_qps >= 0.95 * bare_qps
