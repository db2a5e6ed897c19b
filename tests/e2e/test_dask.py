"""Dask executor on a REAL LocalCluster: same answers as a serial run, worker kill, Ctrl-C,
failures as data, work shared once (fits, ground truth), progress and dashboard lines."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from vecbench.run import executors, records, runner, shared_work  # noqa: E402
from vecbench.evaluate import results as vbresults  # noqa: E402
from vecbench.run.dask_executor import DaskExecutor  # noqa: E402
from vecbench.core.errors import ConfigError  # noqa: E402
from vecbench.run.experiment import load_experiment  # noqa: E402
from helpers import write  # noqa: E402

SWEEP = """
name: sweep
k: 10
datasets:
  - digits: {n_queries: 40}
  - synthetic: {n_base: 1200, n_queries: 30, dim: 24, intrinsic_dim: 6}
pipelines:
  - []
  - [pca: {n_components: 12}]
indexes:
  - flat: {}
  - hnswlib: {build: {M: 8, ef_construction: 48}, search: {ef: [10, 60]}}
  - faiss_ivf: {build: {nlist: 8}, search: {nprobe: [1, 8]}}
orderings: [original, reverse]
"""
#: Columns that measure time or memory or say where a unit ran: everything else must match.
TIMING = {"qps", "qps_spread", "p50_ms", "p95_ms", "p99_ms", "p50_ms_spread", "p95_ms_spread",
          "p99_ms_spread", "build_s", "fit_s", "encode_s", "host", "worker", "contended",
          "peak_rss_bytes", "cpu_per_wall", *vbresults.CONTENTION_COLUMNS}  # measured


def on(cluster, lines=None) -> DaskExecutor:
    return DaskExecutor(cluster.scheduler_address,
                        log=(lines.append if lines is not None else lambda line: None))


def worker_addresses(cluster) -> set:
    with distributed.Client(cluster.scheduler_address) as client:
        return set(client.scheduler_info()["workers"])


def test_dask_sweep_gives_the_serial_answers(tmp_path, cluster):
    exp = load_experiment(write(tmp_path, SWEEP))
    runner.run_experiment(exp, tmp_path / "serial", threads=1, log=lambda line: None)
    lines: list = []
    summary = runner.run_experiment(exp, tmp_path / "dask", threads=1, jobs=2,
                                    executor=on(cluster, lines), log=lambda line: None)
    assert summary.run == len(exp.units) == 24 and not summary.failed
    serial = vbresults.table(tmp_path / "serial")
    dask = vbresults.table(tmp_path / "dask")
    assert len(serial) == len(dask) == exp.n_rows
    columns = [c for c in serial.columns if c not in TIMING]
    assert set(columns) == set(dask.columns) - TIMING
    keys = [c for c in columns if c.startswith(("dataset", "pipeline", "index", "build.",
                                                "search.", "ordering", "repeat"))]
    a = serial[columns].sort_values(keys).reset_index(drop=True)
    b = dask[columns].sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert not serial["worker"].str.startswith("tcp://").any()  # host:pid of its own worker
    assert set(dask["worker"]) <= worker_addresses(cluster)
    assert all(w.startswith("tcp://") for w in dask["worker"])
    assert dask["contended"].all()
    assert sum("dashboard http" in line for line in lines) == 1


def fits_of(results: Path) -> list[bool]:
    return [r["encode"]["fitted_here"] for r in map(json.loads, (
        p.read_text() for p in (results / "runs").glob("*.json")))]


FIT_ONCE = """
name: fitonce
datasets: [{synthetic: {n_base: 1500, n_queries: 30, dim: 32, intrinsic_dim: 8}}]
pipelines: [[pca: {n_components: NCOMP}]]
indexes:
  - flat: {}
  - hnswlib: {build: {M: [6, 8, 10]}, search: {ef: [20]}}
orderings: [original, reverse, random]
"""


def test_a_pipeline_is_fitted_once_across_the_cluster(tmp_path, cluster):
    exp = load_experiment(write(tmp_path, FIT_ONCE.replace("NCOMP", "13")))
    summary = runner.run_experiment(exp, tmp_path / "r", threads=1, jobs=2,
                                    executor=on(cluster), log=lambda line: None)
    assert summary.run == 12 and not summary.failed
    fits = fits_of(tmp_path / "r")
    assert len(fits) == 12 and sum(fits) == 1, fits
    frame = vbresults.table(tmp_path / "r")
    assert frame["worker"].nunique() == 2  # both workers ran units, one fitted for both
    assert frame["fit_s"].nunique() == 1 and frame["fit_s"].iloc[0] > 0


def test_a_pipeline_is_fitted_once_across_local_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("VECBENCH_CACHE", str(tmp_path / "cache"))  # fresh: no fit stored
    exp = load_experiment(write(tmp_path, FIT_ONCE.replace("NCOMP", "11")))
    runner.run_experiment(exp, tmp_path / "r", threads=1, jobs=2, log=lambda line: None)
    fits = fits_of(tmp_path / "r")
    assert len(fits) == 12 and sum(fits) == 1, fits


def test_a_corrupt_cached_fit_is_refitted_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("VECBENCH_CACHE", str(tmp_path))
    calls = []

    def fit():
        calls.append(1)
        return {"weights": [1.0, 2.0]}

    assert shared_work.once("k1", fit) == ({"weights": [1.0, 2.0]}, True)
    assert shared_work.once("k1", fit) == ({"weights": [1.0, 2.0]}, False)
    path = tmp_path / "fits" / "k1.pkl"
    data = bytearray(path.read_bytes())
    data[-2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="checksum mismatch"):
        assert shared_work.once("k1", fit) == ({"weights": [1.0, 2.0]}, True)
    assert len(calls) == 2
    assert shared_work.once("k1", fit)[1] is False


@contextlib.contextmanager
def _own_cache(cache: str):
    """On a worker: use this cache folder meanwhile, as on a machine of its own."""
    before = os.environ.get("VECBENCH_CACHE")
    os.environ["VECBENCH_CACHE"] = cache
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("VECBENCH_CACHE", None)
        else:
            os.environ["VECBENCH_CACHE"] = before


def _fit_with_cache(cache: str, value: str):
    """On a worker: shared_work.once with this cache folder."""
    with _own_cache(cache):
        return shared_work.once("cross-machine", lambda: value)


def test_a_fit_reaches_workers_whose_cache_is_not_shared(tmp_path, cluster):
    with distributed.Client(cluster.scheduler_address) as client:
        first = client.submit(_fit_with_cache, str(tmp_path / "a"), "fitted on a",
                              pure=False).result()
        second = client.submit(_fit_with_cache, str(tmp_path / "b"), "fitted on b",
                               pure=False).result()
    assert first == ("fitted on a", True)
    assert second == ("fitted on a", False)  # from the scheduler, not refitted
    assert (tmp_path / "b" / "fits").is_dir()  # and now in that machine's cache too


def test_concurrent_processes_wait_on_one_lock(tmp_path):
    """Four processes ask for the same key at once; exactly one computes it."""
    script = textwrap.dedent("""
        import sys, time
        from vecbench.run import shared_work
        def fit():
            time.sleep(0.5)
            return sys.argv[1]
        print(shared_work.once("same", fit)[1])
        """)
    env = {**os.environ, "VECBENCH_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(i)], env=env,
                              stdout=subprocess.PIPE, text=True) for i in range(4)]
    computed = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert sorted(computed) == ["False", "False", "False", "True"]


def test_ground_truth_and_lid_are_computed_once_by_concurrent_units(tmp_path):
    """Three processes run a unit's reference and LID-order stages at once on a fresh cache:
    exact kNN of the dataset and its pointwise LID are each computed by one of them."""
    path = write(tmp_path, """
        datasets: [{synthetic: {n_base: 3000, n_queries: 50, dim: 24}}]
        indexes: [flat]
        orderings: [lid_desc]
        """)
    script = textwrap.dedent("""
        import sys, time
        from vecbench.compute import groundtruth, lid
        from vecbench.run import stages
        from vecbench.run.experiment import load_experiment
        def counted(name, function):
            def wrapper(*args, **kwargs):
                with open(sys.argv[2], "a") as log:
                    log.write(f"{name}:{args[2] if name == 'truth' else ''}\\n")
                time.sleep(0.3)  # long enough for the others to arrive meanwhile
                return function(*args, **kwargs)
            return wrapper
        groundtruth.exact_knn = counted("truth", groundtruth.exact_knn)
        lid.knn_graph = counted("lid", lid.knn_graph)
        unit = load_experiment(sys.argv[1]).units[0]
        dataset = stages.load(unit.dataset, unit.base_dir)
        stages.reference(dataset, unit.k)
        stages.insertion_order(unit, dataset)
        """)
    env = {**os.environ, "VECBENCH_CACHE": str(tmp_path / "cache")}
    log = tmp_path / "computed.log"
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), str(log)], env=env,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    computed = log.read_text().split()
    # depth 100: the reference; LID's own exact neighbour graph also calls exact_knn, once
    assert computed.count("truth:100") == 1 and computed.count("lid:") == 1, computed


SLOW = """
name: slow
timing: {min_seconds: 0.3, latency_seconds: 0.2}
datasets: [{synthetic: {n_base: 4000, n_queries: 200, dim: 32}}]
indexes:
  - hnswlib: {build: {M: [4, 6, 8, 10, 12, 14, 16, 20], ef_construction: 100},
              search: {ef: [10, 40]}}
"""


def test_killing_a_worker_loses_only_its_unit(tmp_path, cluster):
    exp = load_experiment(write(tmp_path, SLOW))
    results = tmp_path / "r"
    executor = on(cluster)
    killed = {}

    def kill_a_busy_worker():
        client = executor.client
        deadline = time.time() + 120
        while time.time() < deadline:
            done = list((results / "runs").glob("*.json")) if (results / "runs").exists() \
                else []
            busy = [w for w, keys in client.processing().items() if keys]
            if len(done) >= 1 and busy:
                pids = client.run(os.getpid, workers=[busy[0]])
                killed["worker"], killed["done"] = busy[0], len(done)
                os.kill(pids[busy[0]], signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    summary = runner.run_experiment(exp, results, threads=1, jobs=2, executor=executor,
                                    log=lambda line: None)
    killer.join()
    assert "worker" in killed and killed["done"] < 8, "no worker was killed mid-sweep"
    assert summary.run == 8 and not summary.failed
    frame = vbresults.table(results)
    assert len(frame) == 16 and frame[["build.M", "search.ef"]].drop_duplicates().shape[0] == 16
    assert (frame["status"] == "ok").all()
    # the record of the unit that ran again says so, and the run warns of it
    stored = [json.loads(p.read_text()) for p in (results / "runs").glob("*.json")]
    retried = [r for r in stored if r.get("lost_workers")]
    lost = [r.get("lost_workers") for r in stored]
    # the unit it was running, and any the scheduler had queued on it
    named = [r["lost_workers"] == [killed["worker"]] and r["worker"] != killed["worker"]
             for r in retried]
    assert 1 <= len(retried) <= 2 and all(named), (killed, lost)
    said = [killed["worker"] in w and "lost with this unit assigned to it; run again on" in w
            for w in summary.warnings]
    assert any(said), summary.warnings
    # the cluster heals: the nanny restarts the killed worker
    deadline = time.time() + 60
    while len(worker_addresses(cluster)) < 2 and time.time() < deadline:
        time.sleep(0.2)


def test_a_failing_unit_is_recorded_as_an_error(tmp_path, cluster):
    exp = load_experiment(write(tmp_path, """
        name: bad
        datasets: [{synthetic: {n_base: 500, n_queries: 10, dim: 8}}]
        indexes: [flat, {faiss_ivf: {build: {nlist: 1000}}}]   # more lists than rows: fails
        """))
    summary = runner.run_experiment(exp, tmp_path / "r", threads=1, executor=on(cluster),
                                    log=lambda line: None)
    assert summary.run == 2 and len(summary.failed) == 1
    statuses = sorted(r["status"] for r in map(json.loads, (
        p.read_text() for p in (tmp_path / "r" / "runs").glob("*.json"))))
    assert statuses == ["error", "ok"]
    assert "exp.yaml: " in summary.failed[0] and "nlist=1000" in summary.failed[0]


def test_cli_runs_on_an_existing_scheduler_with_progress(tmp_path, cluster):
    path = write(tmp_path, """
        name: cli
        datasets: [{synthetic: {n_base: 600, n_queries: 20, dim: 16}}]
        indexes: [flat, {hnswlib: {search: {ef: [20]}}}]
        """)
    env = {**os.environ, "VECBENCH_SCHEDULER": cluster.scheduler_address}
    proc = subprocess.run([sys.executable, "-m", "vecbench", "run", str(path), "--results",
                           str(tmp_path / "r")], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("dashboard http") == 1
    assert f"dask: scheduler {cluster.scheduler_address}, 2 workers" in proc.stderr
    assert "[2/2] ok" in proc.stderr and "failures 0" in proc.stderr
    frame = pd.read_csv(tmp_path / "r" / "results.csv")
    assert len(frame) == 2 and frame["worker"].str.startswith("tcp://").all()


def test_ctrl_c_cancels_pending_units_and_keeps_completed_ones(tmp_path):
    path = write(tmp_path, SLOW.replace("[4, 6, 8, 10, 12, 14, 16, 20]",
                                        "[4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]"))
    results = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "vecbench", "run", str(path), "--results",
                             str(results), "--executor", "dask", "--jobs", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None and \
            len(list((results / "runs").glob("*.json")) if (results / "runs").exists()
                else []) < 2:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    start = time.time()
    _, stderr = proc.communicate(timeout=60)
    assert time.time() - start < 20, "Ctrl-C took too long"
    assert proc.returncode == 130, stderr
    assert "interrupted; completed units are saved" in stderr
    done = [p for p in (results / "runs").glob("*.json")]
    assert 2 <= len(done) < 13
    assert all(records.is_done(results, p.stem) for p in done)


def test_bad_executor_options_are_one_line_errors(monkeypatch):
    monkeypatch.delenv("VECBENCH_SCHEDULER", raising=False)
    with pytest.raises(ConfigError, match="--scheduler tcp://h:1: .*expected --executor dask"):
        executors.choose("processes", "tcp://h:1", 2, None)
    with pytest.raises(ConfigError, match="--jobs 2: --executor local"):
        executors.choose("local", None, 2, None)
    with pytest.raises(ConfigError, match="--scheduler tcp://127.0.0.1:9: cannot connect"):
        DaskExecutor("tcp://127.0.0.1:9", connect_timeout="2s", log=lambda line: None)


def test_timings_from_different_hosts_get_a_note():
    from vecbench.evaluate.compare import hosts_note

    one = pd.DataFrame({"host": ["a", "a"], "qps": [1.0, 2.0]})
    two = pd.DataFrame({"host": ["b"], "qps": [3.0]})
    assert hosts_note(one) is None
    note = hosts_note(one, two)
    assert note.startswith("note: QPS and latency") and "2 different hosts (a, b)" in note
    assert hosts_note(pd.DataFrame({"host": ["a", "b"], "recall@10": [1.0, 1.0]})) is None


def test_a_unit_the_cluster_cannot_run_is_a_crash_record(tmp_path):
    from types import SimpleNamespace

    from distributed.scheduler import KilledWorker

    from vecbench.run.dask_executor import _lost

    unit = load_experiment(write(tmp_path, """
        datasets: [{synthetic: {n_base: 100, n_queries: 5, dim: 8}}]
        indexes: [flat]
        """)).units[0]
    outcome = _lost(executors.Task(unit, "abc", 1), KilledWorker("unit-abc", SimpleNamespace(address="tcp://w:1"), 3))
    assert outcome.status == "crash" and outcome.record.key == "abc"
    assert outcome.record.reason.startswith("the Dask cluster could not run this unit: "
                                               "KilledWorker")
    records.store_unit(tmp_path / "r", outcome)
    assert not records.is_done(tmp_path / "r", "abc")  # a rerun tries it again


def _ground_truth_with_cache(cache: str):
    """On a worker: the reference ground truth of a small dataset with this cache folder (as on
    a machine of its own); returns whether exact kNN was computed here."""
    import numpy as np

    from vecbench.compute import groundtruth

    calls = []
    exact = groundtruth.exact_knn
    groundtruth.exact_knn = lambda *a, **kw: calls.append(1) or exact(*a, **kw)
    try:
        with _own_cache(cache):
            rng = np.random.default_rng(0)
            base = rng.random((500, 8), dtype=np.float32)
            queries = rng.random((20, 8), dtype=np.float32)
            truth = groundtruth.ground_truth(base, queries, "l2", "cross-machine-truth", 10)
        return bool(calls), truth.ids.tolist()
    finally:
        groundtruth.exact_knn = exact


def test_ground_truth_reaches_workers_whose_cache_is_not_shared(tmp_path, cluster):
    with distributed.Client(cluster.scheduler_address) as client:
        first = client.submit(_ground_truth_with_cache, str(tmp_path / "a"), pure=False).result()
        second = client.submit(_ground_truth_with_cache, str(tmp_path / "b"),
                               pure=False).result()
    assert first[0] is True and second[0] is False  # computed once, on the cluster
    assert first[1] == second[1]
    assert list((tmp_path / "b" / "groundtruth").glob("*.npz"))  # now in b's cache too


# ---------------------------------------------------------------------------------------------
# A failing cluster: bounded waits, one line, records kept, a rerun resumes (issue: reliability
# 12c, 13a). The cluster is a real `dask scheduler` and `dask worker`, as on a real cluster.

DASK = str(Path(sys.executable).with_name("dask"))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _external_cluster(port: int | None = None):
    """A `dask scheduler` and a one-process `dask worker` (its own process group: nanny and
    worker die together); yields (address, scheduler, worker) and stops what is left."""
    port = port or _free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--dashboard-address", ":0"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    worker = None
    try:
        worker = _start_worker(address)
        yield address, scheduler, worker
    finally:
        for process in (worker, scheduler):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL) if process is worker else process.kill()
                process.wait(timeout=30)


def _start_worker(address: str) -> subprocess.Popen:
    worker = subprocess.Popen([DASK, "worker", address, "--nworkers", "1", "--nthreads", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:   # wait until the scheduler knows it
        try:
            with distributed.Client(address, timeout="5s") as client:
                if client.scheduler_info()["workers"]:
                    return worker
        except (OSError, TimeoutError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"no dask worker joined {address} in 60 s")


def _run_cli(path: Path, results: Path, address: str, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vecbench", "run", str(path), "--results",
                             str(results), "--scheduler", address, "--threads", "1", "--quiet"],
                            env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _records_when(results: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> dict:
    """Wait for ``n`` records while the run goes on; then what they are (name: mtime)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        found = list((results / "runs").glob("*.json")) if (results / "runs").exists() else []
        if len(found) >= n:
            return {p.name: p.stat().st_mtime_ns for p in found}
        time.sleep(0.05)
    raise AssertionError(f"the run never wrote {n} records: {proc.communicate(timeout=60)}")


def _kept(before: dict, results: Path) -> None:
    after = {p.name: p.stat().st_mtime_ns for p in (results / "runs").glob("*.json")}
    assert all(after.get(name) == mtime for name, mtime in before.items()), "a record was lost"


def _error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("vecbench: error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def _resumes(path: Path, results: Path, address: str, n_units: int, done: int) -> None:
    proc = _run_cli(path, results, address)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    ran, skipped = (int(x) for x in out.split("ran ")[1].split(" already")[0]
                    .replace(" build units,", "").split())
    assert ran + skipped == n_units and skipped >= done, out


def test_a_killed_scheduler_is_one_line_and_a_rerun_resumes(tmp_path):
    path, results = write(tmp_path, SLOW), tmp_path / "r"
    with _external_cluster() as (address, scheduler, worker):
        proc = _run_cli(path, results, address)
        before = _records_when(results, 2, proc)
        scheduler.kill()
        start = time.time()
        _, err = proc.communicate(timeout=120)
        assert time.time() - start < 30, err
    line = _error_line(err)
    assert proc.returncode == 2
    assert f"dask: scheduler {address}: the connection to it was lost" in line
    assert "run again to resume" in line
    _kept(before, results)
    with _external_cluster() as (address, _, _):
        _resumes(path, results, address, 8, len(before))


def test_a_cluster_without_workers_stops_with_one_line(tmp_path):
    path, results = write(tmp_path, SLOW), tmp_path / "r"
    with _external_cluster() as (address, _, worker):
        proc = _run_cli(path, results, address, VECBENCH_DASK_NO_WORKER_S="5")
        before = _records_when(results, 2, proc)
        os.killpg(worker.pid, signal.SIGKILL)   # nanny and worker: nothing restarts it
        worker.wait(timeout=30)
        start = time.time()
        _, err = proc.communicate(timeout=120)
        assert time.time() - start < 40, err
        line = _error_line(err)
        assert proc.returncode == 2
        assert f"dask: scheduler {address}: no worker connected for 5 s" in line
        waiting = [x for x in err.splitlines() if x.startswith("dask: no worker connected")]
        assert len(waiting) == 1 and "waiting up to 5 s" in waiting[0], err
        _kept(before, results)
        _start_worker(address)
        _resumes(path, results, address, 8, len(before))
