"""The run record: raw results kept, metrics at collect, failure as data, resume by content."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from vecbench.evaluate import metrics

from vecbench.run import executors, records, runner
from vecbench.evaluate import results as vbresults
from vecbench.run.experiment import load_experiment

GRID = """
name: rec
k: 10
datasets:
  - npy: {base: b.npy, queries: q.npy, metric: l2}
indexes:
  - flat: {}
  - hnswlib: {build: {M: 8, ef_construction: 32}, search: {ef: [10, 40]}}
"""


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "vecbench", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def make_data(folder, seed=0, n=600):
    rng = np.random.default_rng(seed)
    np.save(folder / "b.npy", rng.standard_normal((n, 16)).astype(np.float32))
    np.save(folder / "q.npy", rng.standard_normal((30, 16)).astype(np.float32))


@pytest.fixture
def grid(tmp_path):
    make_data(tmp_path)
    path = tmp_path / "exp.yaml"
    path.write_text(textwrap.dedent(GRID))
    return path


def run(path, results, **options):
    return runner.run_experiment(load_experiment(path), results, threads=1, **options)


def mtimes(results):
    return {p.name: p.stat().st_mtime_ns for p in (results / "runs").iterdir()}


def test_raw_results_are_kept_beside_a_record_written_last(grid, tmp_path):
    results = tmp_path / "r"
    summary = run(grid, results)
    assert summary.run == 2 and not summary.failed
    for _, record, why in records.iter_records(results):
        assert why is None and record.status == "ok"
        raw = records.load_raw(results, record)
        assert len(raw.searches) == len(record.settings)
        for search in raw.searches:
            assert search.ids[10].shape == (30, 10)
            assert search.true_distances.shape == (30, 10)
            assert len(search.batch_seconds) >= 5      # every timed pass
            assert len(search.latency_seconds) == 30    # every single query
        assert record.build.threads == 1 and record.build.deterministic in (True, False)
        assert record.raw.bytes == (results / "runs" / record.raw.file).stat().st_size


def test_collect_computes_metrics_never_asked_for_without_running_a_unit(grid, tmp_path):
    results = tmp_path / "r"
    run(grid, results)
    before = mtimes(results)
    done = cli("collect", results, "--metrics", "recall@1,recall@5,recall_eps@5")
    assert done.returncode == 0, done.stderr
    assert mtimes(results) == before
    frame = pd.read_parquet(results / "results.parquet")
    flat = frame[frame["index"] == "flat"].iloc[0]
    assert flat["recall@1"] == flat["recall@5"] == flat["recall@10"] == 1.0
    hnsw = frame[frame["index"] == "hnswlib"].sort_values("search.ef")
    assert hnsw["recall@1"].between(0, 1).all() and hnsw["recall@5"].iloc[-1] >= hnsw[
        "recall@5"].iloc[0]
    bad = cli("collect", results, "--metrics", "recal@5")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "--metrics" in bad.stderr and "recal@5" in bad.stderr


def test_a_new_metric_is_one_registration(grid, tmp_path):
    """Registering a metric is all it takes for collect to compute it over old runs."""
    results = tmp_path / "r"
    run(grid, results)

    def first_hit(setting, depth):  # the exact nearest neighbour is among the first `depth`
        return (setting.returned(depth) == setting.truth(1)).any(axis=1).astype(float)

    metrics.register(metrics.Metric("nn_found", True, "nearest neighbour found", first_hit,
                                    ("truth",)))
    try:
        frame = vbresults.build_tables(results, ["nn_found@3"]).frame
    finally:
        del metrics.METRICS["nn_found"]
    assert (frame[frame["index"] == "flat"]["nn_found@3"] == 1.0).all()
    assert frame["nn_found@3"].between(0, 1).all()


def test_parameters_are_typed_columns(grid, tmp_path):
    results = tmp_path / "r"
    run(grid, results)
    vbresults.collect(results)
    frame = pd.read_parquet(results / "results.parquet")
    assert str(frame["build.M"].dtype) == "Int64" and str(frame["search.ef"].dtype) == "Int64"
    assert frame.loc[frame["index"] == "hnswlib", "build.M"].tolist() == [8, 8]


FAILING = """
name: failing
datasets:
  - npy: {base: b.npy, queries: q.npy, metric: l2}
indexes:
  - flat: {}
  - faiss_ivfpq: {build: {nlist: 4, m: 5}, search: {nprobe: [1]}}
  - hnswlib: {build: {M: 8}, search: {ef: [10]}}
"""


def test_a_failing_unit_is_recorded_and_the_sweep_goes_on(tmp_path):
    make_data(tmp_path)
    path = tmp_path / "exp.yaml"
    path.write_text(textwrap.dedent(FAILING))
    results = tmp_path / "r"
    done = cli("run", path, "--results", results, "--threads", "1", "--quiet")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    failed = [line for line in done.stderr.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and "exp.yaml" in failed[0] and "indexes[1].faiss_ivfpq" in failed[0]
    frame = pd.read_parquet(results / "results.parquet")
    assert sorted(frame["status"]) == ["error", "ok", "ok"]
    bad = frame[frame["status"] == "error"].iloc[0]
    assert "indexes[1].faiss_ivfpq" in bad["reason"] and "\n" not in bad["reason"]
    assert np.isnan(bad["recall@10"])
    # the failed unit is not done: a rerun tries it again, the others are kept
    again = cli("run", path, "--results", results, "--threads", "1", "--quiet")
    assert again.returncode == 1 and "ran 1 build units, 2 already done" in again.stdout


def test_a_bug_is_a_crash_with_its_traceback_and_fail_fast_stops(tmp_path, monkeypatch):
    make_data(tmp_path)
    path = tmp_path / "exp.yaml"
    path.write_text(textwrap.dedent(GRID))
    from vecbench.indexes.faiss.families import FlatIndex

    def broken(self, *args, **kwargs):
        raise ZeroDivisionError("a bug in an adapter")

    monkeypatch.setattr(FlatIndex, "build", broken)
    # in this process: a worker forked from the fork server would not see the patch
    summary = run(path, tmp_path / "r", isolated=False)
    assert summary.run == 2 and summary.crashed == 1
    crash = [r for _, r, _ in records.iter_records(tmp_path / "r") if r.status == "crash"][0]
    assert "ZeroDivisionError" in crash.traceback and "Traceback" in crash.traceback
    assert crash.reason == "ZeroDivisionError: a bug in an adapter"
    stopped = run(path, tmp_path / "r2", fail_fast=True, isolated=False)
    assert stopped.stopped_early and stopped.run == 1


def test_resume_is_by_content(grid, tmp_path):
    results = tmp_path / "r"
    run(grid, results)
    assert run(grid, results).run == 0
    # a record that is empty, {}, truncated or another unit's is not done
    paths = sorted((results / "runs").glob("*.json"))
    paths[0].write_text("{}")
    assert run(grid, results).run == 1
    text = paths[0].read_text()
    paths[0].write_text(text[:len(text) // 2])
    assert run(grid, results).run == 1
    paths[0].write_text(paths[1].read_text())
    assert run(grid, results).run == 1
    # altered raw results
    raw = next((results / "runs").glob("*.npz"))
    raw.write_bytes(raw.read_bytes()[:-10])
    assert run(grid, results).run == 1
    # another thread count is another unit
    summary = runner.run_experiment(load_experiment(grid), results, threads=2)
    assert summary.run == 2
    # new data under the same path reruns every unit over it
    make_data(tmp_path, seed=1)
    assert run(grid, results).run == 2


def test_collect_keeps_the_current_grid_only(grid, tmp_path):
    results = tmp_path / "r"
    run(grid, results)
    smaller = tmp_path / "small.yaml"
    smaller.write_text(textwrap.dedent(GRID).replace("search: {ef: [10, 40]}",
                                                     "search: {ef: [10]}"))
    run(smaller, results)
    lines = []
    vbresults.collect(results, log=lines.append)
    frame = pd.read_parquet(results / "results.parquet")
    assert len(frame) == 2 and len(frame.drop_duplicates(vbresults.config_columns(frame))) == 2
    assert any("left out 1 records of other grids" in line for line in lines)
    everything = vbresults.build_tables(results, include_all=True).frame
    assert len(everything) == 4


def test_k_larger_than_the_base_is_one_line(tmp_path):
    make_data(tmp_path, n=8)
    path = tmp_path / "exp.yaml"
    path.write_text(textwrap.dedent(GRID))
    done = cli("run", path, "--results", tmp_path / "r", "--quiet")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "k = 10" in done.stderr and "8 base vectors" in done.stderr
    assert "exp.yaml" in done.stderr


def test_any_executor_plugs_in(grid, tmp_path):
    """An executor is two methods: map(tasks) yielding (task, outcome), and close()."""
    class Backwards:
        name = "backwards"
        closed = False

        def map(self, tasks):
            for task in reversed(tasks):
                yield task, executors.execute(task, worker="backwards")

        def close(self):
            Backwards.closed = True

    summary = runner.run_experiment(load_experiment(grid), tmp_path / "r", threads=1,
                                    executor=Backwards())
    assert summary.run == 2 and Backwards.closed
    frame = vbresults.table(tmp_path / "r")
    assert set(frame["worker"]) == {"backwards"}


def test_progress_is_a_line_per_unit_in_a_log(grid, tmp_path):
    done = cli("run", grid, "--results", tmp_path / "r", "--threads", "1")
    lines = [line for line in done.stderr.splitlines() if line.startswith("[")]
    assert len(lines) == 2 and lines[-1].startswith("[2/2] ok ")
    assert "ETA" in lines[0] and "failures 0" in lines[0] and "hnswlib" in done.stderr
    quiet = cli("run", grid, "--results", tmp_path / "q", "--threads", "1", "--quiet")
    assert not [line for line in quiet.stderr.splitlines() if line.startswith("[")]


@pytest.mark.parametrize("index, expected", [
    ('faiss_factory: {build: {factory: "IVF16,Flaat"}}',
     "indexes[0].faiss_factory.build.factory: faiss cannot parse the factory string 'IVF16,Flaat'"),
    ('faiss_factory: {build: {factory: "HNSW32,Flat"}, search: {nprobe: [4]}}',
     "indexes[0].faiss_factory.search.nprobe: faiss index 'HNSW32,Flat' does not take search "
     "parameter 'nprobe'"),
])
def test_validate_rejects_what_the_yaml_alone_decides(tmp_path, index, expected):
    path = tmp_path / "exp.yaml"
    path.write_text(f"datasets: [digits]\nindexes:\n  - {index}\n")
    done = cli("validate", path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith(f"vecbench: error: exp.yaml: {expected}")


def test_validate_accepts_a_factory_string_whose_parameters_fit(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text('datasets: [digits]\nindexes:\n  - faiss_factory: {build: {factory: '
                    '"IVF16,PQ8x4fs"}, search: {nprobe: [1, 4]}}\n')
    done = cli("validate", path)
    assert done.returncode == 0 and "1 build units, 2 result rows" in done.stdout


def test_concurrent_clients_give_qps_and_latency_at_each_count(grid, tmp_path):
    path = tmp_path / "clients.yaml"
    path.write_text(textwrap.dedent("""
        name: clients
        timing: {client_seconds: 0.3}
        datasets: [{npy: {base: b.npy, queries: q.npy, metric: l2}}]
        indexes:
          - hnswlib: {build: {M: 8, ef_construction: 32}, search: {ef: [40], clients: [1, 4]}}
          - flat: {search: {clients: [2]}}
        """))
    summary = run(path, tmp_path / "r")
    assert summary.run == 2 and not summary.failed, summary.failed
    frame = vbresults.table(tmp_path / "r").sort_values(["index", "search.clients"])
    assert frame["search.clients"].tolist() == [2, 1, 4]
    assert (frame["qps"] > 0).all() and (frame["p99_ms"] >= frame["p50_ms"]).all()
    hnsw = frame[frame["index"] == "hnswlib"]
    assert hnsw["recall@10"].nunique() == 1  # the clients change the timing, not the answers
    record = next(r for _, r, _ in records.iter_records(tmp_path / "r")
                  if r.unit.labels["index"] == "hnswlib")
    raw = records.load_raw(tmp_path / "r", record)
    four = next(i for i, s in enumerate(record.settings) if s.search.get("clients") == 4)
    latencies = raw.searches[four].latency_seconds
    wall = raw.searches[four].client_wall_seconds
    # QPS is what the clients completed over the time they ran, not 1 / mean latency
    assert hnsw[hnsw["search.clients"] == 4]["qps"].iloc[0] == pytest.approx(len(latencies) / wall)
    bad = tmp_path / "bad.yaml"
    bad.write_text(path.read_text().replace("clients: [2]", "clients: [0]"))
    done = cli("validate", bad)
    assert done.returncode == 2 and "indexes[1].flat.search.clients: expected an integer in " \
        "[1, 256], got 0" in done.stderr
