"""Peak memory of a 1M x 128 unit through vecbench against a bare script (issue 19 point 2).

Target: the peak resident memory of ``vecbench run`` on one unit is at most 1.2x that of a bare
script doing the same work on the same memory-mapped file: ``np.load(mmap_mode="r")``, faiss
``IndexFlat`` add + search of 1,000 queries (and, for the second case, an hnswlib graph built and
searched after the flat index is freed, as vecbench's two units run one after the other).

Each side runs in a fresh subprocess and reports its own peak (``VmHWM`` of /proc/self/status,
which counts the touched pages of the memory map as the bare script's do). The data file is
written once, seeded, block by block, under ``$VECBENCH_BENCH_DATA`` (else a temporary folder):
a 32-d subspace of 128-d space plus noise, and a normalized copy for the ``cos`` case, where the
loader must not make a second full-size copy of a base that is already unit-norm.

The hnswlib graph uses M 16 and ef_construction 40 (not the default 200) to keep the two
builds of a million vectors to minutes on two cores; memory does not depend on ef_construction.

Run: ``.venv/bin/pytest benchmarks/bench_memory.py`` (about 10 minutes on two loaded cores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

N_BASE, N_QUERIES, DIM, K = 1_000_000, 1_000, 128, 10
HNSW_BUILD = {"M": 16, "ef_construction": 40}
TARGET = 1.2
BLOCK = 100_000

#: Reads this process's peak resident set; appended to each measured script.
REPORT_PEAK = """
import json as _json
def _peak_bytes():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) * 1024
print("PEAK " + _json.dumps({"peak_bytes": _peak_bytes()}))
"""

BARE = """
import sys
import numpy as np
import faiss

base_path, queries_path, metric, with_hnsw = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
threads = 2
faiss.omp_set_num_threads(threads)
base = np.load(base_path, mmap_mode="r")
queries = np.load(queries_path)
index = faiss.IndexFlatL2(base.shape[1]) if metric == "l2" else faiss.IndexFlatIP(base.shape[1])
index.add(base)
index.search(queries, {k})
del index
if with_hnsw == "1":
    import hnswlib
    graph = hnswlib.Index(space="l2" if metric == "l2" else "ip", dim=base.shape[1])
    graph.init_index(max_elements=len(base), M={M}, ef_construction={ef_construction})
    graph.add_items(base, np.arange(len(base)), num_threads=threads)
    graph.set_ef(20)
    graph.knn_query(queries, k={k}, num_threads=threads)
""".format(k=K, **HNSW_BUILD)

VECBENCH = """
import sys
from vecbench.cli.commands import main
rc = main(["run", sys.argv[1], "--jobs", "1", "--threads", "2", "--quiet"])
if rc:
    sys.exit(rc)
"""


def write_npy(path: Path, n: int, seed: int, normalize: bool) -> None:
    """Seeded rows in a 32-d subspace plus noise, written block by block (never all in RAM)."""
    if path.exists():
        return
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(np.random.default_rng(0).standard_normal((DIM, 32)))[0].astype(np.float32)
    tmp = path.with_suffix(".tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, DIM))
    for start in range(0, n, BLOCK):
        rows = min(BLOCK, n - start)
        block = rng.standard_normal((rows, 32), dtype=np.float32) @ basis.T
        block += 0.05 * rng.standard_normal((rows, DIM), dtype=np.float32)
        if normalize:
            block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:start + rows] = block
    out.flush()
    del out
    tmp.replace(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    folder = os.environ.get("VECBENCH_BENCH_DATA")
    folder = Path(folder) if folder else tmp_path_factory.mktemp("bench_memory")
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for metric in ("l2", "cos"):
        base, queries = folder / f"base-1m-{metric}.npy", folder / f"queries-{metric}.npy"
        write_npy(base, N_BASE, 1, normalize=metric == "cos")
        write_npy(queries, N_QUERIES, 2, normalize=metric == "cos")
        made[metric] = (base, queries)
    return made


def peak_of(args: list[str], cwd: Path, env: dict | None = None) -> int:
    """Run ``python -c`` with ``args`` in a fresh process; its own peak RSS in bytes."""
    done = subprocess.run([sys.executable, "-c", *args], cwd=cwd, capture_output=True,
                          text=True, env=env)
    if done.returncode:
        raise AssertionError(f"exit {done.returncode}: {done.stderr[-3000:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("PEAK "))
    return int(json.loads(line[5:])["peak_bytes"])


def experiment(folder: Path, base: Path, queries: Path, metric: str, with_hnsw: bool) -> Path:
    indexes = ["  - flat: {}"]
    if with_hnsw:
        build = ", ".join(f"{k}: {v}" for k, v in HNSW_BUILD.items())
        indexes.append(f"  - hnswlib: {{build: {{{build}}}, search: {{ef: 20}}}}")
    text = textwrap.dedent(f"""\
        name: memory
        seed: 0
        k: {K}
        datasets:
          - npy: {{base: {base}, queries: {queries}, metric: {metric}}}
        pipelines:
          - []
        indexes:
        {{indexes}}
        orderings: [original]
        timing: {{min_seconds: 0, min_passes: 1, latency_queries: 20, latency_seconds: 1}}
        """).replace("{indexes}", "\n".join(indexes))
    path = folder / f"memory-{metric}-{int(with_hnsw)}.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("metric, with_hnsw", [("l2", False), ("cos", False), ("l2", True)],
                         ids=["flat-l2", "flat-cos", "flat+hnswlib-l2"])
def test_peak_memory_against_bare_script(metric, with_hnsw, files, tmp_path, record):
    base, queries = files[metric]
    env = {**os.environ, "VECBENCH_CACHE": str(tmp_path / "cache")}
    bare = peak_of([BARE + REPORT_PEAK, str(base), str(queries), metric,
                    "1" if with_hnsw else "0"], tmp_path)
    yaml = experiment(tmp_path, base, queries, metric, with_hnsw)
    ours = peak_of([VECBENCH + REPORT_PEAK, str(yaml)], tmp_path, env)
    ratio = ours / bare
    data_bytes = N_BASE * DIM * 4
    what = "flat + hnswlib" if with_hnsw else "flat"
    record(measured=f"peak ×{ratio:.3f} ({ours / 2**30:.2f} vs {bare / 2**30:.2f} GiB; data "
                    f"{data_bytes / 2**30:.2f} GiB), {what}, {metric}",
           target=f"≤ {TARGET}× the bare script", met=ratio <= TARGET,
           ratio=ratio, vecbench_peak_bytes=ours, bare_peak_bytes=bare, data_bytes=data_bytes,
           n_base=N_BASE, dim=DIM, n_queries=N_QUERIES, metric=metric, hnswlib=with_hnsw,
           hnsw_build=HNSW_BUILD if with_hnsw else None)
    assert ratio <= TARGET, f"peak ×{ratio:.3f}"
