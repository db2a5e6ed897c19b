"""`vecbench validate` of the studies' experiments (float8, MPAD, PCA pipelines; faiss and
hnswlib indexes) in <= 0.5 s, and `import vecbench` free of numpy/faiss/sklearn.

Each validate runs in a fresh interpreter, as a user runs it; interleaved with it, the bare
interpreter (``python -c pass``) is timed as the reference, so the record shows how much of the
time is Python's own start on this (shared) machine.
"""

import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import interleaved, machine

ROOT = Path(__file__).resolve().parents[1]
LIMIT_S = 0.5
ROUNDS = 7


@pytest.mark.parametrize("experiment", ["rag_storage", "nn_preserving", "hnsw_ordering"])
def test_validate_time(benchmark, experiment):
    yaml = ROOT / "experiments" / f"{experiment}.yaml"

    def validate():
        subprocess.run([sys.executable, "-m", "vecbench", "validate", str(yaml)], check=True,
                       capture_output=True, cwd=ROOT)

    def bare():
        subprocess.run([sys.executable, "-c", "pass"], check=True)

    timing = benchmark.pedantic(lambda: interleaved(bare, validate, ROUNDS), rounds=1,
                                iterations=1)
    benchmark.extra_info.update(timing, machine=machine())
    print(f"\nvecbench validate {experiment}.yaml ({machine()}): median "
          f"{timing['ours_median_s']:.3f} s (best {min(timing['ours_s']):.3f} s); bare "
          f"interpreter {timing['reference_median_s']:.3f} s")
    assert timing["ours_median_s"] <= LIMIT_S


def test_import_vecbench_is_light():
    code = ("import sys, vecbench, vecbench.registry, vecbench.cli, vecbench.experiment; "
            "print(sorted(m for m in ('numpy', 'faiss', 'sklearn', 'scipy', 'hnswlib', "
            "'ml_dtypes', 'numba', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
    times = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import vecbench"],
                             capture_output=True, text=True).stderr.splitlines()
        times.append(int(out[-1].split("|")[1]) / 1e6)  # cumulative µs of vecbench itself
    print(f"\nimport vecbench: {statistics.median(times) * 1e3:.1f} ms ({machine()})")
