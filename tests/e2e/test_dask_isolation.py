"""Dask units in processes of their own, on a REAL LocalCluster: engines load only in the
unit's process (usearch, faiss and hnswlib in one run), a real signal ending a unit is its
crash record while its Dask worker lives on, a rerun runs only that unit, and shared work
(locks, fits, ground truth through the scheduler) reaches the units' processes."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from vecbench.evaluate import results as vbresults  # noqa: E402
from vecbench.run import runner  # noqa: E402
from vecbench.run.dask_executor import DaskExecutor  # noqa: E402
from vecbench.run.experiment import load_experiment  # noqa: E402
from helpers import install_plugin, unit_processes, write  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "tests" / "plugin_example" / "vecbench_example.py"
ENGINES = ("faiss", "hnswlib", "usearch")


def on(cluster, in_process: bool = False) -> DaskExecutor:
    return DaskExecutor(cluster.scheduler_address, log=lambda line: None,
                        isolated=not in_process)


def records_of(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (results / "runs").glob("*.json")]


def _engines_loaded() -> list[str]:
    """On a worker: the engine libraries its own process has imported."""
    return [name for name in ENGINES if name in sys.modules]


def test_usearch_faiss_and_hnswlib_run_in_one_dask_run_loaded_only_in_units(tmp_path, cluster):
    pytest.importorskip("usearch")
    exp = load_experiment(write(tmp_path, """
        name: both
        k: 10
        datasets: [{digits: {n_queries: 50}}]
        indexes: [usearch, flat, {hnswlib: {search: {ef: [40]}}}, faiss_hnsw]
        """))
    summary = runner.run_experiment(exp, tmp_path / "r", threads=1, jobs=2,
                                    executor=on(cluster), log=lambda line: None)
    assert summary.run == 4 and not summary.failed, summary.failed
    frame = vbresults.table(tmp_path / "r")
    assert sorted(frame["index"]) == ["faiss_hnsw", "flat", "hnswlib", "usearch"]
    assert (frame["status"] == "ok").all() and (frame["recall@10"] > 0.9).all()
    assert frame["worker"].str.startswith("tcp://").all()  # the Dask worker that ran it
    # measured in the unit's process: the interpreter and the data, not gigabytes
    assert frame["peak_rss_bytes"].between(20e6, 4e9).all(), frame["peak_rss_bytes"]
    with distributed.Client(cluster.scheduler_address) as client:
        loaded = client.run(_engines_loaded)
    assert len(loaded) == 2 and all(engines == [] for engines in loaded.values()), loaded


#: Units of about a second each on one thread: long enough to be caught running.
SLOW = """
name: slow
timing: {min_seconds: 0.3, latency_seconds: 0.2}
datasets: [{synthetic: {n_base: 4000, n_queries: 200, dim: 32}}]
indexes:
  - hnswlib: {build: {M: [4, 6, 8, 10], ef_construction: 100}, search: {ef: [10, 40]}}
"""


def _unit_processes(worker_pids) -> list[int]:
    """The units' processes under these Dask workers: their fork servers' children."""
    return [unit for pid in worker_pids for unit in unit_processes(pid)]


def test_a_killed_unit_is_a_crash_record_and_its_dask_worker_lives_on(tmp_path, cluster):
    """SIGKILL (what the OOM killer sends) to a unit's process mid-unit: that unit is a crash
    record naming the signal, the other units are ok, no Dask worker is lost, and a rerun runs
    only the crashed unit."""
    exp = load_experiment(write(tmp_path, SLOW))
    results = tmp_path / "r"
    executor = on(cluster)
    before = executor.client.run(os.getpid)
    killed = {}

    def kill_a_unit():
        deadline = time.time() + 120
        while time.time() < deadline:
            done = len(list((results / "runs").glob("*.json"))) if results.is_dir() else 0
            units = _unit_processes(before.values()) if done >= 1 else []
            if units:
                time.sleep(0.3)   # inside the unit, not at its start
                try:
                    os.kill(units[0], signal.SIGKILL)
                    killed["pid"] = units[0]
                    return
                except ProcessLookupError:
                    pass
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_unit)
    killer.start()
    summary = runner.run_experiment(exp, results, threads=1, jobs=2, executor=executor,
                                    log=lambda line: None)
    killer.join()
    assert "pid" in killed, "no unit was caught running"
    assert summary.run == 4 and summary.crashed == 1, summary.failed
    found = records_of(results)
    crashed = [r for r in found if r["status"] == "crash"]
    assert len(crashed) == 1 and sum(r["status"] == "ok" for r in found) == 3
    record = crashed[0]
    assert record["reason"] == f"SIGKILL: killed (out of memory?) (worker pid {killed['pid']})"
    assert record["exit_code"] == -signal.SIGKILL
    assert record["worker"] in before   # the Dask worker's address, not a lost one
    assert not any(r.get("lost_workers") for r in found)
    with distributed.Client(cluster.scheduler_address) as client:
        assert client.run(os.getpid) == before   # the same worker processes, none restarted
    again = runner.run_experiment(exp, results, threads=1, jobs=2, executor=on(cluster),
                                  log=lambda line: None)
    assert again.run == 1 and again.skipped == 3 and not again.failed
    assert (vbresults.table(results)["status"] == "ok").all()


def _set_cache(folder: str) -> None:
    os.environ["VECBENCH_CACHE"] = folder


def test_fits_and_ground_truth_reach_unit_processes_on_workers_that_share_no_cache(tmp_path,
                                                                                   cluster):
    """Each Dask worker with a cache of its own, as on machines of their own: units in their
    own processes fit the pipeline once and compute the reference once for the cluster, the
    others reading them through their worker's connection to the scheduler."""
    exp = load_experiment(write(tmp_path, """
        name: relay
        datasets: [{synthetic: {n_base: 1500, n_queries: 30, dim: 32, intrinsic_dim: 8}}]
        pipelines: [[pca: {n_components: 9}]]
        indexes: [flat, {hnswlib: {build: {M: [6, 8]}, search: {ef: [20]}}}]
        orderings: [original, reverse]
        """))
    executor = on(cluster)
    addresses = sorted(executor.client.run(os.getpid))
    caches = {address: tmp_path / f"cache-{i}" for i, address in enumerate(addresses)}
    previous = os.environ["VECBENCH_CACHE"]
    for address, folder in caches.items():
        executor.client.run(_set_cache, str(folder), workers=[address])
    try:
        summary = runner.run_experiment(exp, tmp_path / "r", threads=1, jobs=2,
                                        executor=executor, log=lambda line: None)
    finally:
        with distributed.Client(cluster.scheduler_address) as client:
            client.run(_set_cache, previous)
    assert summary.run == 6 and not summary.failed, summary.failed
    found = records_of(tmp_path / "r")
    assert len({r["worker"] for r in found}) == 2  # both workers ran units
    assert sum(r["encode"]["fitted_here"] for r in found) == 1
    for folder in caches.values():   # each machine's cache has them now
        assert list((folder / "fits").glob("*.pkl"))
        assert list((folder / "groundtruth").glob("*.npz"))


CRASH_PLUGIN = '''
import os
import signal

from vecbench_example import NumpyBrute


class CrashOnBuild(NumpyBrute):
    """The example's exact index, killed by a real SIGSEGV in build while the file named by
    $CRASH_ON_BUILD exists."""

    name = "crash_on_build"

    def build(self, x, metric, **kwargs):
        if os.path.exists(os.environ["CRASH_ON_BUILD"]):
            os.kill(os.getpid(), signal.SIGSEGV)
        return super().build(x, metric, **kwargs)
'''


@pytest.mark.slow  # two `vecbench run`, each starting a LocalCluster: ~15 s on 2 idle cores
def test_a_segfault_in_a_dask_unit_is_its_crash_record_and_a_rerun_runs_it_alone(tmp_path):
    """``vecbench run --executor dask`` with an index plugin that segfaults in build: that unit
    is a crash record naming SIGSEGV and its stage, the others are ok, the run exits 1 and no
    Dask worker is lost; once it no longer crashes, a rerun runs that unit alone."""
    site = tmp_path / "site"
    install_plugin(site, "vecbench-crash", {"vecbench.indexes": {
        "crash_on_build": "crash_plugin:CrashOnBuild"}},
        {"crash_plugin": CRASH_PLUGIN, "vecbench_example": EXAMPLE.read_text()})
    path = write(tmp_path, """
        name: segv
        k: 10
        datasets: [{digits: {n_queries: 40}}]
        indexes: [flat, crash_on_build, {hnswlib: {search: {ef: [40]}}}]
        """)
    switch = tmp_path / "crash"
    switch.touch()
    paths = [str(site), str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p),
           "CRASH_ON_BUILD": str(switch)}
    command = [sys.executable, "-m", "vecbench", "run", str(path), "--results",
               str(tmp_path / "r"), "--executor", "dask", "--jobs", "2", "--threads", "1"]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    found = records_of(tmp_path / "r")
    crashed = [r for r in found if r["status"] == "crash"]
    assert len(found) == 3 and len(crashed) == 1, [r["status"] for r in found]
    record = crashed[0]
    assert record["reason"].startswith("SIGSEGV: segmentation fault (worker pid ")
    assert record["exit_code"] == -signal.SIGSEGV and record["stage"] == "build"
    assert record["worker"].startswith("tcp://")
    # faulthandler's Python stack, from the unit's stderr, says where it died
    assert any("crash_plugin.py" in line for line in record["stderr_tail"]), record
    # the Dask worker survived: the unit was not run again elsewhere
    assert not any(r.get("lost_workers") for r in found)
    assert "lost with this unit" not in proc.stderr
    assert "failed: crash: " in proc.stderr and "SIGSEGV: segmentation fault" in proc.stderr
    switch.unlink()
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "ran 1 build units, 2 already done" in again.stdout
    frame = pd.read_csv(tmp_path / "r" / "results.csv")
    assert len(frame) == 3 and (frame["status"] == "ok").all()


def _unit_dies_holding_a_lock(connection) -> None:
    """In a unit's process: take a cluster-wide lock through the relay, then die of SIGKILL."""
    from vecbench.core import cluster as carrier

    carrier.use_relay(connection)
    with carrier.lock("held-by-a-dead-unit"):
        os.kill(os.getpid(), signal.SIGKILL)


def _lock_after_a_unit_died_holding_it() -> tuple:
    """On a worker: a unit process dies holding a lock its relay took for it; then whether
    another unit of the cluster can take that lock."""
    import multiprocessing
    from multiprocessing.connection import wait

    from vecbench.core.cluster import Relay
    from vecbench.run.workers import _may_start_children

    relay = Relay()
    process = multiprocessing.get_context("forkserver").Process(
        target=_unit_dies_holding_a_lock, args=(relay.child_end,))
    with _may_start_children():
        process.start()
    relay.child_end.close()
    waiting = [process.sentinel, relay.connection]
    while process.sentinel not in wait(waiting):
        if not relay.answer():
            waiting.remove(relay.connection)
    process.join()
    relay.close()
    lock = distributed.Lock("vecbench-held-by-a-dead-unit")
    taken = lock.acquire(timeout=10)
    if taken:
        lock.release()
    return process.exitcode, taken


def test_a_lock_held_by_a_unit_that_died_is_released_by_its_worker(cluster):
    """Otherwise every unit waiting for that shared work (ground truth, a fit) would hang."""
    with distributed.Client(cluster.scheduler_address) as client:
        code, taken = client.submit(_lock_after_a_unit_died_holding_it, pure=False).result()
    assert code == -signal.SIGKILL and taken
