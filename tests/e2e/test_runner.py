"""End-to-end: experiment -> runs -> table, resume after SIGKILL, jobs, timing columns."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vecbench.run import records, runner
from vecbench.evaluate import results as vbresults
from vecbench.run.experiment import load_experiment
from helpers import write

SMALL = """
name: small
k: 10
datasets:
  - digits: {n_queries: 50}
  - synthetic: {n_base: 1500, n_queries: 40, dim: 32, intrinsic_dim: 6}
indexes:
  - flat: {}
  - hnswlib: {build: {M: 8, ef_construction: 64}, search: {ef: [10, 80]}}
  - faiss_ivf: {build: {nlist: 16}, search: {nprobe: [1, 16]}}
orderings: [original, reverse]
"""


@pytest.fixture(scope="module")
def small_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("small")
    exp = load_experiment(write(tmp, SMALL))
    results = tmp / "results"
    summary = runner.run_experiment(exp, results, threads=2, log=lambda line: None)
    vbresults.collect(results)
    return exp, results, summary


def test_table_has_the_contract_columns(small_results):
    exp, results, summary = small_results
    frame = pd.read_parquet(results / "results.parquet")
    assert summary["run"] == len(exp.units) == 12
    assert len(frame) == exp.n_rows == 2 * (1 + 2 + 2) * 2
    for column in ["experiment", "dataset", "pipeline", "index", "build.M", "search.ef",
                   "search.nprobe", "ordering", "repeat", "k", "recall@10", "recall_index@10",
                   "recall_eps@10", "qps", "p50_ms", "p95_ms", "p99_ms", "build_s", "fit_s",
                   "encode_s", "bytes_per_vector", "index_bytes", "quantization", "status",
                   "reason"]:
        assert column in frame.columns, column
    csv = pd.read_csv(results / "results.csv")
    assert list(csv.columns) == list(frame.columns) and len(csv) == len(frame)


def test_flat_is_exact_and_ann_sweeps_are_monotone(small_results):
    _, results, _ = small_results
    frame = pd.read_parquet(results / "results.parquet")
    flat = frame[frame["index"] == "flat"]
    # digits has exactly tied distances: a reordered flat index may return another of the tied
    # ids, which recall@10 counts as a miss and recall_eps@10 (rightly) does not
    assert (flat["recall_eps@10"] == 1.0).all()
    assert (flat[flat["ordering"] == "original"]["recall@10"] == 1.0).all()
    ivf = frame[frame["index"] == "faiss_ivf"].sort_values("search.nprobe")
    for _, group in ivf.groupby(["dataset", "ordering"]):
        assert group["recall@10"].iloc[-1] >= group["recall@10"].iloc[0]
        assert group["recall_eps@10"].iloc[-1] == pytest.approx(1.0)  # nprobe = nlist: exhaustive
    assert (frame["recall_eps@10"] >= frame["recall@10"] - 1e-12).all()
    assert (frame["qps"] > 0).all() and (frame["p99_ms"] >= frame["p50_ms"]).all()
    assert (frame["bytes_per_vector"] == 4 * np.where(frame["dataset"] == "digits", 64, 32)).all()
    assert (frame["quantization"] == "none").all()


def test_reverse_order_maps_ids_back(small_results):
    """A flat index built in reverse order must still return the right (original) ids."""
    _, results, _ = small_results
    frame = pd.read_parquet(results / "results.parquet")
    rev = frame[(frame["ordering"] == "reverse") & (frame["index"] == "flat")]
    assert len(rev) == 2 and (rev["recall_eps@10"] == 1.0).all()
    assert (rev["recall@10"] >= 0.99).all()


def test_run_records_environment_and_per_query_recall(small_results):
    _, results, _ = small_results
    record = records.read_record(next((results / "runs").glob("*.json")))
    env = record.environment
    assert env["versions"]["numpy"] and env["versions"]["faiss-cpu"] and env["cpu"]
    assert env["threads"]["faiss_omp"] >= 1
    raw = records.load_raw(results, record)
    ids = raw.searches[0].ids[10]
    assert ids.shape == (record.dataset.n_queries, 10)
    assert len(raw.searches[0].batch_seconds) >= 5
    per_query = pd.read_parquet(results / "per_query.parquet")
    assert per_query.groupby("row").size().isin([40, 50]).all()


def test_rerun_skips_and_force_reruns(small_results):
    exp, results, _ = small_results
    again = runner.run_experiment(exp, results, threads=2, log=lambda line: None)
    assert (again.run, again.skipped, again.failed) == (0, len(exp.units), [])


def test_jobs_mark_contention(tmp_path):
    exp = load_experiment(write(tmp_path, """
        datasets: [{synthetic: {n_base: 800, n_queries: 20, dim: 16}}]
        indexes: [flat, {hnswlib: {search: {ef: [20]}}}]
        """))
    runner.run_experiment(exp, tmp_path / "r", jobs=2, threads=2, log=lambda line: None)
    frame = vbresults.table(tmp_path / "r")
    assert len(frame) == 2 and frame["contended"].all()


def test_sigkill_loses_at_most_the_unit_in_flight(tmp_path):
    """Kill a real run mid-sweep; a rerun completes it with every row exactly once."""
    path = write(tmp_path, """
        name: killme
        datasets: [{synthetic: {n_base: 3000, n_queries: 100, dim: 32}}]
        indexes:
          - hnswlib: {build: {M: [4, 6, 8, 10, 12, 14, 16, 20]}, search: {ef: [10, 40]}}
        orderings: [original, random]
        """)
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "vecbench", "run", str(path), "--results", str(results),
           "--threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((results / "runs").glob("*.json"))
                                         if (results / "runs").exists() else []) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list((results / "runs").glob("*.json")))
    assert 3 <= done_before < 16, "the run finished before it could be killed"
    finished = subprocess.run(cmd, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert f"ran {16 - done_before} build units, {done_before} already done" in finished.stdout
    frame = pd.read_csv(results / "results.csv")
    keys = frame[["build.M", "search.ef", "ordering"]].astype(str).agg("|".join, axis=1)
    assert len(frame) == 32 and keys.is_unique
    assert not list((results / "runs").glob(".*.tmp"))


def test_repeats_get_mean_and_confidence_interval(tmp_path):
    exp = load_experiment(write(tmp_path, """
        repeat: 3
        datasets: [{synthetic: {n_base: 2000, n_queries: 50, dim: 32, intrinsic_dim: 16}}]
        indexes: [{hnswlib: {build: {M: 4, ef_construction: 16}, search: {ef: [10]}}}]
        orderings: [random]
        """))
    runner.run_experiment(exp, tmp_path / "r", threads=1, log=lambda line: None)
    frame = vbresults.table(tmp_path / "r")
    assert len(frame) == 3 and sorted(frame["repeat"]) == [0, 1, 2]
    values = frame["recall@10"].to_numpy()
    assert values.std() > 0, "random orders and re-seeded builds should differ"
    assert frame["recall@10_mean"].iloc[0] == pytest.approx(values.mean())
    low, high = frame["recall@10_ci95_low"].iloc[0], frame["recall@10_ci95_high"].iloc[0]
    assert low < values.mean() < high
    # t with 2 degrees of freedom: half width = 4.303 * s / sqrt(3)
    assert high - values.mean() == pytest.approx(4.303 * values.std(ddof=1) / np.sqrt(3), rel=1e-3)


def test_index_that_quantizes_itself_counts_its_own_bytes(tmp_path):
    exp = load_experiment(write(tmp_path, """
        datasets: [{synthetic: {n_base: 1000, n_queries: 20, dim: 32}}]
        indexes: [{faiss_sq: {build: {qtype: 8bit}}}, {faiss_sq: {build: {qtype: 4bit}}}, flat]
        """))
    runner.run_experiment(exp, tmp_path / "r", threads=1, log=lambda line: None)
    frame = vbresults.table(tmp_path / "r").set_index("build.qtype", drop=False)
    assert frame.loc["8bit", "bytes_per_vector"] == 32 and frame.loc["4bit", "bytes_per_vector"] == 16
    assert (frame.loc[["8bit", "4bit"], "quantization"] == "index").all()
    flat = frame[frame["index"] == "flat"]
    assert flat["quantization"].iloc[0] == "none" and flat["bytes_per_vector"].iloc[0] == 128


def test_rescoring_recovers_recall_of_binary_codes(tmp_path):
    exp = load_experiment(write(tmp_path, """
        datasets: [{synthetic: {n_base: 2000, n_queries: 50, dim: 64, intrinsic_dim: 32,
                                metric: cos}}]
        pipelines: [[binary: {}]]
        indexes:
          - faiss_binary_flat: {rescore: {oversample: [1, 4, 10], with: [float32, int8]}}
        """))
    assert exp.n_rows == 6
    runner.run_experiment(exp, tmp_path / "r", threads=1, log=lambda line: None)
    frame = vbresults.table(tmp_path / "r")
    f32 = frame[frame["rescore.with"] == "float32"].sort_values("rescore.oversample")
    recalls = f32["recall@10"].to_numpy()
    assert recalls[0] < recalls[1] < recalls[2] and recalls[2] > recalls[0] + 0.15
    assert (f32["rescore_bytes_per_vector"] == 4 * 64).all()
    assert (frame[frame["rescore.with"] == "int8"]["rescore_bytes_per_vector"] >= 64).all()
    assert (frame["bytes_per_vector"] == 8).all() and (frame["quantization"] == "native").all()


def test_bad_rescore_value_names_its_path(tmp_path):
    from vecbench.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"indexes\[0\]\.flat\.rescore\.oversample: expected an "
                                          r"integer in \[1, 1000\], got 0"):
        load_experiment(write(tmp_path, """
            datasets: [digits]
            indexes: [{flat: {rescore: {oversample: 0}}}]
            """))


def test_trustworthiness_is_reported_for_pipelines_and_orders_reductions(tmp_path):
    exp = load_experiment(write(tmp_path, """
        datasets: [{digits: {n_queries: 30}}]
        pipelines: [[], [pca: {n_components: 32}], [pca: {n_components: 2}]]
        indexes: [flat]
        """))
    runner.run_experiment(exp, tmp_path / "r", threads=1, log=lambda line: None)
    frame = vbresults.table(tmp_path / "r").set_index("pipeline")
    column = frame["trustworthiness@10"]
    assert np.isnan(column.loc["float32"])  # nothing was transformed
    wide, narrow = column.loc["pca(n_components=32)"], column.loc["pca(n_components=2)"]
    assert 0.5 < narrow < wide <= 1.0 and wide > 0.98


def test_trustworthiness_of_an_isometry_is_one():
    from vecbench.compute import recall

    x = np.random.default_rng(0).normal(size=(300, 16))
    rotation, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(16, 16)))
    assert recall.trustworthiness_sample(x, x @ rotation, "l2", 10) == pytest.approx(1.0)
    assert recall.trustworthiness_sample(x, x[:, :2], "l2", 10) < 0.9


def test_total_bytes_add_the_rescoring_copy(tmp_path):
    exp = load_experiment(write(tmp_path, """
        datasets: [{synthetic: {n_base: 500, n_queries: 10, dim: 32, metric: cos}}]
        pipelines: [[binary: {}]]
        indexes: [flat, {flat: {rescore: {oversample: 4, with: float32}}}]
        """))
    runner.run_experiment(exp, tmp_path / "r", threads=1, log=lambda line: None)
    frame = vbresults.table(tmp_path / "r")
    assert sorted(frame["total_bytes_per_vector"]) == [4, 4 + 4 * 32]
    assert sorted(frame["pipeline_kind"]) == ["binary", "binary"]
