"""Bases read from files stay memory-mapped; ground truth reads them block by block."""

from __future__ import annotations

import numpy as np
import pytest

from vecbench.compute import groundtruth
from vecbench.datasets import base as dataset_base
from vecbench.datasets import formats
from vecbench.datasets.base import PathResolver, sample_rows
from vecbench.core.vectors import is_mapped, release_rows, row_blocks
from vecbench.datasets.builtin import Npy
from vecbench.datasets.loaders import Fbin, Vecs
from vecbench.core.errors import DataError
from vecbench.compute.groundtruth import exact_knn


def _faiss_knn(base, queries, k, metric):
    import faiss

    base = np.ascontiguousarray(base, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    search = faiss.knn if metric == "l2" else \
        (lambda q, b, k: faiss.knn(q, b, k, metric=faiss.METRIC_INNER_PRODUCT))
    return search(queries, base, k)


def _write(tmp_path, fmt: str, base: np.ndarray, queries: np.ndarray):
    """Write base and queries in ``fmt``; return the loader spec reading them."""
    if fmt == "npy":
        np.save(tmp_path / "b.npy", base)
        np.save(tmp_path / "q.npy", queries)
        return Npy(base="b.npy", queries="q.npy")
    if fmt == "fvecs":
        formats.write_vecs(tmp_path / "b.fvecs", base)
        formats.write_vecs(tmp_path / "q.fvecs", queries)
        return Vecs(base="b.fvecs", queries="q.fvecs", metric="l2")
    suffix = {"u8bin": ".u8bin", "i8bin": ".i8bin", "fbin": ".fbin"}[fmt]
    formats.write_bin(tmp_path / f"b{suffix}", base)
    formats.write_bin(tmp_path / f"q{suffix}", queries)
    return Fbin(base=f"b{suffix}", queries=f"q{suffix}", metric="l2")


def _data(fmt: str, n: int = 3000, d: int = 12, nq: int = 25):
    rng = np.random.default_rng(7)
    if fmt == "u8bin":
        return (rng.integers(0, 256, (n, d)).astype(np.uint8),
                rng.integers(0, 256, (nq, d)).astype(np.uint8))
    if fmt == "i8bin":
        return (rng.integers(-128, 128, (n, d)).astype(np.int8),
                rng.integers(-128, 128, (nq, d)).astype(np.int8))
    return (rng.standard_normal((n, d)).astype(np.float32),
            rng.standard_normal((nq, d)).astype(np.float32))


@pytest.mark.parametrize("fmt", ["npy", "fvecs", "fbin", "u8bin", "i8bin"])
def test_file_base_stays_mapped_and_gives_the_in_memory_ground_truth(tmp_path, fmt, monkeypatch):
    base, queries = _data(fmt)
    dataset = _write(tmp_path, fmt, base, queries).load(PathResolver(tmp_path))
    # no whole copy at load: the base is the file's memory map, in the file's element type
    assert is_mapped(dataset.base) and dataset.base.dtype == base.dtype
    assert dataset.queries.dtype == np.float32 and dataset.train.dtype == np.float32
    np.testing.assert_array_equal(dataset.base, base)
    expected_d, expected_i = _faiss_knn(base, queries, 50, "l2")
    monkeypatch.setattr(groundtruth, "BASE_BLOCK_BYTES", 700 * 12 * 4)  # 5 uneven blocks
    truth = exact_knn(dataset.base, dataset.queries, 50, "l2")
    np.testing.assert_array_equal(truth.ids, expected_i)
    np.testing.assert_allclose(truth.distances, expected_d, rtol=1e-5)
    # the in-memory float32 dataset has the same fingerprint's content and ground truth
    whole = exact_knn(base.astype(np.float32), queries.astype(np.float32), 50, "l2")
    np.testing.assert_array_equal(truth.ids, whole.ids)


@pytest.mark.parametrize("metric", ["l2", "ip"])
@pytest.mark.parametrize("block_rows, query_rows", [(64, 1000), (1000, 7), (33, 5)])
def test_blockwise_equals_faiss_knn_on_the_whole_data(tmp_path, monkeypatch, metric, block_rows,
                                                       query_rows):
    """k = 100 larger than a block of 33 or 64 rows; uint8 base; queries in blocks too."""
    base, queries = _data("u8bin", n=2000, d=8, nq=40)
    formats.write_bin(tmp_path / "b.u8bin", base)
    mapped = formats.read_bin(tmp_path / "b.u8bin")
    monkeypatch.setattr(groundtruth, "QUERY_BLOCK_ROWS", query_rows)
    truth = exact_knn(mapped, queries, 100, metric, block_rows=block_rows)
    expected_d, expected_i = _faiss_knn(base, queries, 100, metric)
    np.testing.assert_allclose(truth.distances, expected_d, rtol=1e-5)
    # uint8 data has exact ties; ids must agree wherever the distance is not tied
    untied = np.diff(expected_d, axis=1, prepend=np.nan, append=np.nan)
    untied = (untied[:, :-1] != 0) & (untied[:, 1:] != 0)
    np.testing.assert_array_equal(truth.ids[untied], expected_i[untied])
    assert untied.mean() > 0.3


def _rss_file_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssFile:"))


def test_a_pass_over_a_memory_map_releases_its_pages(tmp_path):
    """Mapped pages count in RSS; a blockwise pass keeps about one block resident."""
    path = tmp_path / "big.fbin"
    formats.write_bin(path, np.ones((64 * 1024, 128), dtype=np.float32))  # 32 MiB
    mapped = formats.read_bin(path)
    before = _rss_file_kib()
    total = sum(float(block[:, 0].sum()) for _, block in row_blocks(mapped, 2048))
    released = _rss_file_kib() - before
    assert total == 64 * 1024
    assert released < 8 * 1024, f"{released} KiB of a 32 MiB file still resident"
    held = float(np.asarray(mapped).sum())  # a whole read without releasing: all of it resident
    assert _rss_file_kib() - before > 24 * 1024 and held == 64 * 1024 * 128
    release_rows(mapped)
    assert _rss_file_kib() - before < 8 * 1024


def test_sample_of_a_memory_map_is_the_in_memory_sample(tmp_path):
    x = np.arange(40_000 * 3, dtype=np.float32).reshape(-1, 3)
    np.save(tmp_path / "x.npy", x)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    drawn = sample_rows(mapped, 1000, seed=3)
    np.testing.assert_array_equal(drawn, sample_rows(x, 1000, seed=3))
    assert not is_mapped(drawn)


def test_cos_keeps_a_unit_norm_map_and_copies_one_that_is_not(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    raw = rng.standard_normal((500, 6)).astype(np.float32)
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    queries = rng.standard_normal((5, 6)).astype(np.float32)
    for name, base in (("unit", unit), ("raw", raw)):
        np.save(tmp_path / f"{name}.npy", base)
    np.save(tmp_path / "q.npy", queries)
    paths = PathResolver(tmp_path)

    kept = Npy(base="unit.npy", queries="q.npy", metric="cos").load(paths)
    assert is_mapped(kept.base)
    np.testing.assert_allclose(np.linalg.norm(kept.queries, axis=1), 1, rtol=1e-6)

    copied = Npy(base="raw.npy", queries="q.npy", metric="cos").load(paths)
    assert not is_mapped(copied.base)
    np.testing.assert_allclose(copied.base, unit, rtol=1e-6)

    monkeypatch.setattr(dataset_base, "available_memory", lambda: 1000)
    with pytest.raises(DataError, match=r"raw: base \(.*raw.npy\): metric cos needs the 500 x 6 "
                                        r"base normalized.*expected unit-norm vectors"):
        Npy(base="raw.npy", queries="q.npy", metric="cos").load(paths)
    assert is_mapped(Npy(base="unit.npy", queries="q.npy", metric="cos").load(paths).base)


def test_uint8_file_runs_like_its_float32_copy(tmp_path):
    """End to end: a mapped uint8 base gives the float32 file's guards and results."""
    import csv

    from vecbench.cli.commands import main
    from vecbench.datasets import guards

    base, queries = _data("u8bin", n=1500, d=16, nq=20)
    queries[3] = base[42]                      # a query that is in the base: the guards see it
    for suffix, dtype in ((".u8bin", np.uint8), (".fbin", np.float32)):
        formats.write_bin(tmp_path / f"b{suffix}", base.astype(dtype))
        formats.write_bin(tmp_path / f"q{suffix}", queries.astype(dtype))
    paths = PathResolver(tmp_path)
    mapped = Fbin(base="b.u8bin", queries="q.u8bin", metric="l2").load(paths)
    floats = Fbin(base="b.fbin", queries="q.fbin", metric="l2").load(paths)
    assert mapped.base.dtype == np.uint8
    stats, _ = guards.inspect(mapped)
    assert stats == guards.inspect(floats)[0] and stats["queries_in_base"] == 1

    recalls = {}
    for suffix in (".u8bin", ".fbin"):
        experiment = tmp_path / f"e{suffix}.yaml"
        experiment.write_text(
            f"name: e\nk: 10\ndatasets: [{{fbin: {{base: b{suffix}, queries: q{suffix}, "
            "metric: l2, name: same}}]\npipelines: [[], [pca: {n_components: 8}]]\n"
            "indexes: [flat, {faiss_ivf: {build: {nlist: 8}, search: {nprobe: 2}}}]\n")
        results = tmp_path / f"r{suffix}"
        assert main(["run", str(experiment), "--results", str(results), "--quiet"]) == 0
        with open(results / "results.csv", newline="") as f:
            recalls[suffix] = sorted((row["pipeline"], row["index"], row["recall@10"])
                                     for row in csv.DictReader(f))
    assert len(recalls[".fbin"]) == 4 and recalls[".u8bin"] == recalls[".fbin"]


# -- a mapped .fbin truncated while a unit reads it (issue: reliability 12b): the record names
# the file and says it changed size mid-run, whether the unit sees it between passes or its
# worker dies of SIGBUS reading past the end

TRUNCATED = """
name: cut
timing: {min_seconds: 2.0, latency_seconds: 0.5}
k: 10
datasets: [{fbin: {base: b.fbin, queries: q.fbin, metric: l2}}]
indexes: [flat]
"""


def _searching_worker(run, tmp) -> int | None:
    """The pid of the unit's worker once it is in its search stage."""
    import psutil

    if not any(p.read_text().startswith("search") for p in tmp.glob("vecbench-workers-*/*/stage")
               if p.is_file()):
        return None
    for child in psutil.Process(run.pid).children(recursive=True):
        try:
            if child.parent().pid != run.pid:   # the fork server's child
                return child.pid
        except psutil.NoSuchProcess:
            pass
    return None


def _cut_while_searching(tmp_path, then=None):
    """Run TRUNCATED; truncate b.fbin while the unit searches (then call ``then(pid)``);
    return (exit code, stderr, the unit's record, the base path)."""
    import json
    import os
    import subprocess
    import sys
    import time

    rng = np.random.default_rng(0)
    formats.write_bin(tmp_path / "b.fbin", rng.standard_normal((20000, 32)).astype(np.float32))
    formats.write_bin(tmp_path / "q.fbin", rng.standard_normal((100, 32)).astype(np.float32))
    (tmp_path / "x.yaml").write_text(TRUNCATED)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    run = subprocess.Popen([sys.executable, "-m", "vecbench", "run", str(tmp_path / "x.yaml"),
                            "--results", str(tmp_path / "r"), "--quiet", "--threads", "1"],
                           env={**os.environ, "TMPDIR": str(tmp)}, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    pid, deadline = None, time.monotonic() + 120
    while pid is None and run.poll() is None and time.monotonic() < deadline:
        pid = _searching_worker(run, tmp)
        time.sleep(0.02)
    assert pid is not None, "the unit was never caught searching"
    os.truncate(tmp_path / "b.fbin", 8 + 100 * 32 * 4)   # 100 of its 20000 rows left
    if then is not None:
        then(pid)
    _, err = run.communicate(timeout=120)
    [record] = [json.loads(p.read_text()) for p in (tmp_path / "r" / "runs").glob("*.json")]
    return run.returncode, err, record, tmp_path / "b.fbin"


def test_a_base_cut_between_passes_is_a_crash_naming_the_file(tmp_path):
    code, err, record, path = _cut_while_searching(tmp_path)
    assert record["status"] == "crash" and record["stage"] == "search", record.get("reason")
    assert record["reason"].startswith(f"{path} changed size mid-run (2560008 bytes mapped, "
                                       "12808 now): truncated or rewritten"), record["reason"]
    # and the run ends in one line saying the data changed (the record is kept)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "changed while the sweep ran" in lines[0], err


def test_a_sigbus_after_a_base_was_cut_names_the_file(tmp_path):
    import os
    import signal

    code, err, record, path = _cut_while_searching(
        tmp_path, then=lambda pid: os.kill(pid, signal.SIGBUS))
    assert record["status"] == "crash", record.get("reason")
    assert record["reason"].startswith(f"SIGBUS: bus error reading a mapped file: {path} "
                                       "changed size mid-run (2560008 bytes mapped, 12808 now)"
                                       ), record["reason"]
    assert code == 2 and "Traceback" not in err, err
