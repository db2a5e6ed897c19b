"""(c) A rerun of the quickstart with everything cached takes <= 10% of the cold run."""

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(results: Path, cache: Path) -> float:
    env = {"VECBENCH_CACHE": str(cache), "PATH": "/usr/bin:/bin"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "vecbench", "run",
                           str(ROOT / "experiments" / "quickstart.yaml"), "--results",
                           str(results)], capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    return elapsed


def test_cached_rerun_is_cheap(benchmark, tmp_path):
    results, cache = tmp_path / "results", tmp_path / "cache"
    cold = _run(results, cache)
    warm = benchmark.pedantic(lambda: _run(results, cache), rounds=3)
    ratio = benchmark.stats.stats.max / cold
    benchmark.extra_info.update(cold_s=cold, cached_s=benchmark.stats.stats.max, ratio=ratio)
    print(f"\nquickstart cold {cold:.1f} s, cached rerun {benchmark.stats.stats.max:.2f} s "
          f"({ratio:.1%})")
    assert ratio <= 0.10
