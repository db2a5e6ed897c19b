"""A rerun of an experiment with pipelines, every unit already done, costs <= 10% of its cold run.

The experiment (written here) has the quickstart's synthetic dataset, four pipelines (none, PCA,
PCA + float8, int8) and two indexes: a cold ``vecbench run`` fits, encodes, builds and searches
everything; the rerun, into the same results folder and cache, must find every unit done. Both
run as a user runs them, in a fresh interpreter (``python -m vecbench run``).
"""

import subprocess
import sys
import time
from pathlib import Path

from conftest import machine

ROOT = Path(__file__).resolve().parents[1]
RATIO_LIMIT = 0.10
EXPERIMENT = """name: rerun
seed: 0
k: 10
datasets:
  - synthetic: {n_base: 20000, n_queries: 500, dim: 128, intrinsic_dim: 16, noise: 0.05}
pipelines:
  - []
  - [pca: {n_components: 32}]
  - [pca: {n_components: 32}, float8: {}]
  - [int8: {}]
indexes:
  - flat: {}
  - hnswlib: {build: {M: 16, ef_construction: 200}, search: {ef: [10, 40]}}
"""


def _run(experiment: Path, results: Path, cache: Path) -> tuple[float, str]:
    env = {"VECBENCH_CACHE": str(cache), "PATH": "/usr/bin:/bin"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "vecbench", "run", str(experiment),
                           "--results", str(results)], capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    return elapsed, done.stdout + done.stderr


def test_rerun_with_every_unit_done_is_cheap(benchmark, tmp_path, record):
    experiment = tmp_path / "rerun.yaml"
    experiment.write_text(EXPERIMENT)
    results, cache = tmp_path / "results", tmp_path / "cache"
    cold, _ = _run(experiment, results, cache)
    reruns = []
    benchmark.pedantic(lambda: reruns.append(_run(experiment, results, cache)), rounds=3)
    rerun = max(seconds for seconds, _ in reruns)  # the worst of three
    ratio = rerun / cold
    benchmark.extra_info.update(cold_s=cold, rerun_s=rerun, ratio=ratio, machine=machine())
    print(f"\nexperiment with 4 pipelines x 2 indexes ({machine()}): cold {cold:.1f} s, "
          f"rerun with every unit done {rerun:.2f} s ({ratio:.1%})\n{reruns[-1][1][-300:]}")
    record(measured=f"rerun {rerun:.2f} s = {ratio:.1%} of the cold run ({cold:.1f} s); "
                    "4 pipelines x 2 indexes, synthetic 20k x 128",
           target="≤ 10% of the cold run", met=ratio <= RATIO_LIMIT,
           cold_s=cold, rerun_s=rerun, ratio=ratio)
    assert ratio <= RATIO_LIMIT
