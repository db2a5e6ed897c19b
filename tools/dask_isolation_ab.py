"""What isolating Dask units costs: a small quickstart-like sweep on digits, run with
``vecbench run --executor dask --jobs 2 --threads 1`` in each arm, interleaved (A B C A B C ...)
so that the machine's load falls on every arm alike.

Arms: ``isolated`` (this tree, each unit in a process of its own under its Dask worker),
``in-worker`` (this tree, ``--in-process``: units in the Dask worker's own process, as before),
and, with ``--baseline TREE``, that tree's default (e.g. the main checkout before the change).
Every run starts its own LocalCluster and writes to a fresh results folder; the cache is
warmed first, so the runs time the units, not the exact ground truth.

    python tools/dask_isolation_ab.py --reps 5 [--baseline /work/main]

Prints the median wall time of each arm, its CPU time (user + sys of the run and every
process under it that was waited for: less sensitive than wall time to other load on the
machine), the median of the units' own time (record ``finished - started``) and the median p50
latency of the rows, with the load average. ``--min-seconds 0`` shortens the timing passes
(5 of any length, as the tests run) so that the harness's own cost dominates.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parents[1]
EXPERIMENT = """name: dask_ab
seed: 0
k: 10
datasets:
  - digits: {n_queries: 200}
indexes:
  - flat: {}
  - hnswlib: {build: {M: 16, ef_construction: 200}, search: {ef: [10, 40, 160]}}
  - faiss_ivf: {build: {nlist: 32}, search: {nprobe: [1, 4, 16]}}
orderings: [original, reverse]
"""


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run(tree: Path, experiment: Path, results: Path, cache: Path, extra: list[str],
        min_seconds: str | None = None) -> tuple[float, float]:
    """(wall s, CPU s) of one ``vecbench run``."""
    env = {**os.environ, "PYTHONPATH": str(tree), "VECBENCH_CACHE": str(cache)}
    if min_seconds is not None:
        env["VECBENCH_MIN_SECONDS"] = min_seconds
    cpu = _cpu()
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "vecbench", "run", str(experiment), "--results",
                           str(results), "--executor", "dask", "--jobs", "2", "--threads", "1",
                           "--quiet", *extra], capture_output=True, text=True, env=env,
                          cwd=tree)   # `python -m` puts the working folder first on sys.path
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{tree} {extra}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return elapsed, _cpu() - cpu


def unit_seconds(results: Path) -> float:
    """Median time of a unit inside its process (the record's finished - started)."""
    import json

    spans = [r["finished"] - r["started"] for r in (json.loads(p.read_text()) for p in
                                                    (results / "runs").glob("*.json"))]
    return statistics.median(spans)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another checkout to run as arm 'baseline'")
    parser.add_argument("--min-seconds", help="VECBENCH_MIN_SECONDS for the runs (e.g. 0)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="the experiment's repeat: 6 units each (the per-unit cost's slope)")
    args = parser.parse_args()
    arms = {"isolated": (HERE, []), "in-worker": (HERE, ["--in-process"])}
    if args.baseline:
        arms["baseline"] = (args.baseline.resolve(), [])
    folder = Path(tempfile.mkdtemp(prefix="dask-ab-"))
    experiment = folder / "exp.yaml"
    experiment.write_text(EXPERIMENT + f"repeat: {args.repeat}\n")
    cache = folder / "cache"
    run(HERE, experiment, folder / "warm", cache, [], args.min_seconds)   # ground truth cached
    walls = {arm: [] for arm in arms}
    cpus = {arm: [] for arm in arms}
    units = {arm: [] for arm in arms}
    p50 = {arm: [] for arm in arms}
    print(f"load average before: {os.getloadavg()}")
    for rep in range(args.reps):
        for arm, (tree, extra) in arms.items():
            results = folder / f"{arm}-{rep}"
            wall, cpu = run(tree, experiment, results, cache, extra, args.min_seconds)
            walls[arm].append(wall)
            cpus[arm].append(cpu)
            units[arm].append(unit_seconds(results))
            p50[arm].append(float(pd.read_csv(results / "results.csv")["p50_ms"].median()))
            print(f"rep {rep} {arm:9s} wall {wall:6.2f} s  cpu {cpu:6.2f} s  unit median "
                  f"{units[arm][-1]:.3f} s  p50 {p50[arm][-1]:.4f} ms", flush=True)
    print(f"load average after: {os.getloadavg()}")
    print("arm        wall median (min-max)     CPU median (min-max)     unit median   p50 median")
    for arm in arms:
        print(f"{arm:9s}  {statistics.median(walls[arm]):6.2f} s ({min(walls[arm]):.2f}-"
              f"{max(walls[arm]):.2f})    {statistics.median(cpus[arm]):6.2f} s "
              f"({min(cpus[arm]):.2f}-{max(cpus[arm]):.2f})    "
              f"{statistics.median(units[arm]):.3f} s     {statistics.median(p50[arm]):.4f} ms")


if __name__ == "__main__":
    main()
