"""float8 encoding of 1M x 384 float32: vecbench's codec must be >= 3x the ml_dtypes cast.

Both run in this process on the same array. The values are unit-norm rows scaled per row by
10^U(-3, 5.5), so the array holds float8 subnormals, normals and values that overflow both
formats (vecbench saturates them, ml_dtypes gives NaN or inf); elsewhere the codes must agree.
"""

import time

import numpy as np
import pytest

from vecbench.transforms import float8

N, D = 1_000_000, 384
REQUIRED_SPEEDUP = 3.0


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, D), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x *= (10.0 ** rng.uniform(-3, 5.5, N)).astype(np.float32)[:, None]
    return x


@pytest.mark.parametrize("fmt", ["e4m3", "e5m2"])
def test_float8_encode_speed_vs_ml_dtypes(benchmark, vectors, fmt):
    dtype = float8.FORMATS[fmt].dtype
    float8.encode(vectors[:1000], fmt)  # compile (or load the cached kernel) before timing

    def cast():
        with np.errstate(invalid="ignore", over="ignore"):
            return vectors.astype(dtype)

    reference = min(_timed(cast) for _ in range(3))
    codes, saturated = benchmark.pedantic(lambda: float8.encode(vectors, fmt), rounds=5,
                                          warmup_rounds=1)
    ours = benchmark.stats.stats.min
    gigabytes = vectors.nbytes / 1e9
    speedup = reference / ours
    benchmark.extra_info.update(ml_dtypes_s=reference, vecbench_s=ours, speedup=speedup,
                                ml_dtypes_gb_s=gigabytes / reference,
                                vecbench_gb_s=gigabytes / ours)
    print(f"\nfloat8 {fmt} encode of {N} x {D} float32 ({gigabytes:.2f} GB): ml_dtypes "
          f"{reference:.3f} s ({gigabytes / reference:.2f} GB/s), vecbench {ours:.3f} s "
          f"({gigabytes / ours:.2f} GB/s), speedup {speedup:.1f}x; {saturated} values saturated")

    overflowed = 0
    for start in range(0, N, 100_000):  # blockwise, to keep the check's memory small
        with np.errstate(invalid="ignore", over="ignore"):
            expected = vectors[start:start + 100_000].astype(dtype)
        finite = np.isfinite(expected.astype(np.float32))
        overflowed += np.count_nonzero(~finite)
        np.testing.assert_array_equal(codes[start:start + 100_000][finite],
                                      expected.view(np.uint8)[finite])
    assert saturated == overflowed > 0
    assert speedup >= REQUIRED_SPEEDUP


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start
