"""Each unit in a worker process of its own: a signal is a crash record and the sweep goes on,
engines load only in their workers (usearch and faiss in one experiment), Ctrl-C stops a run at
once and leaves nothing behind, peak RSS per unit. Real runs, real signals."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pandas as pd
import psutil
import pytest

from vecbench.run import records, runner
from vecbench.evaluate import results as vbresults
from vecbench.run.experiment import load_experiment
from vecbench.run.workers import Isolated
from helpers import unit_processes, write

#: Units of about a second each on one thread: long enough to be caught running.
SLOW = """
name: slow
timing: {min_seconds: 0.3, latency_seconds: 0.2}
datasets: [{synthetic: {n_base: 4000, n_queries: 200, dim: 32}}]
indexes:
  - hnswlib: {build: {M: [4, 6, 8, 10], ef_construction: 100}, search: {ef: [10, 40]}}
"""


def command(path, results, *options):
    return [sys.executable, "-m", "vecbench", "run", str(path), "--results", str(results),
            "--threads", "1", *options]


def n_records(results) -> int:
    runs = results / "runs"
    return len(list(runs.glob("*.json"))) if runs.is_dir() else 0


def inside_a_unit(pid: int, scratch) -> bool:
    """The worker has entered its unit's stages: a stage file written since it started (a
    signal before that would find no stage to name, nor a Python stack in stages.py)."""
    try:
        born = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return False
    return any(stage.stat().st_mtime >= born
               for stage in scratch.glob("vecbench-workers-*/*/stage") if stage.is_file())


def test_a_segfault_in_a_worker_is_a_crash_record_and_the_sweep_goes_on(tmp_path):
    path, results, scratch = write(tmp_path, SLOW), tmp_path / "r", tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.Popen(command(path, results), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(scratch)})
    victim, deadline = None, time.time() + 120
    while victim is None and proc.poll() is None and time.time() < deadline:
        pids = unit_processes(proc.pid) if n_records(results) >= 1 else []
        if pids and inside_a_unit(pids[0], scratch):
            try:
                os.kill(pids[0], signal.SIGSEGV)
                victim = pids[0]
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    out, err = proc.communicate(timeout=180)
    assert victim is not None, "no worker was caught running"
    assert proc.returncode == 1, err
    found = [json.loads(p.read_text()) for p in (results / "runs").glob("*.json")]
    crashed = [r for r in found if r["status"] == "crash"]
    assert len(found) == 4 and len(crashed) == 1, [r["status"] for r in found]
    record = crashed[0]
    assert record["reason"] == f"SIGSEGV: segmentation fault (worker pid {victim})"
    assert record["exit_code"] == -signal.SIGSEGV and record["worker"].endswith(f":{victim}")
    # faulthandler's Python stack, kept from the worker's stderr, says where it died
    assert any("stages.py" in line for line in record["stderr_tail"]), record["stderr_tail"]
    assert record["stage"] in ("load", "reference", "encode", "build", "search")
    assert "failed: crash: " in err and "SIGSEGV: segmentation fault" in err
    # the rerun reruns the crashed unit alone
    again = subprocess.run(command(path, results), capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    assert "ran 1 build units, 3 already done" in again.stdout
    frame = pd.read_csv(results / "results.csv")
    assert len(frame) == 8 and (frame["status"] == "ok").all()


def test_abort_illegal_instruction_and_oom_kill_are_named(tmp_path):
    """Three units, each worker ended by a different signal while it runs."""
    exp = load_experiment(write(tmp_path, SLOW.replace("[4, 6, 8, 10]", "[4, 6, 8]")))
    executor, sent = Isolated(1), {}
    queue = [signal.SIGABRT, signal.SIGILL, signal.SIGKILL]

    def kill_each_worker():
        deadline = time.time() + 120
        while queue and time.time() < deadline:
            for pid in executor.pids:
                if pid not in sent:
                    time.sleep(0.3)  # inside the unit, not at its start
                    try:
                        os.kill(pid, queue[0])
                        sent[pid] = queue.pop(0)
                    except ProcessLookupError:
                        pass
            time.sleep(0.02)

    killer = threading.Thread(target=kill_each_worker)
    killer.start()
    summary = runner.run_experiment(exp, tmp_path / "r", threads=1, executor=executor,
                                    log=lambda line: None)
    killer.join()
    assert len(sent) == 3 and summary.crashed == 3, summary.failed
    reasons = {r["reason"] for r in map(json.loads, (
        p.read_text() for p in (tmp_path / "r" / "runs").glob("*.json")))}
    assert reasons == {"SIGABRT: aborted (worker pid %d)" % pid for pid, s in sent.items()
                       if s == signal.SIGABRT} | \
        {"SIGILL: illegal instruction (worker pid %d)" % pid for pid, s in sent.items()
         if s == signal.SIGILL} | \
        {"SIGKILL: killed (out of memory?) (worker pid %d)" % pid for pid, s in sent.items()
         if s == signal.SIGKILL}


def test_usearch_and_faiss_run_in_one_experiment_loaded_only_in_workers(tmp_path):
    """In one process, usearch then faiss segfaults (exit 139, no message); in workers of
    their own both rows are ok, and the runner process never imports an engine."""
    pytest.importorskip("usearch")
    path = write(tmp_path, """
        name: both
        k: 10
        datasets: [{digits: {n_queries: 50}}]
        indexes: [usearch, flat, {hnswlib: {search: {ef: [40]}}}]
        """)
    script = textwrap.dedent("""
        import sys
        from vecbench.cli import commands as cli
        code = cli.main(["run", sys.argv[1], "--results", sys.argv[2], "--quiet"])
        engines = [m for m in ("faiss", "usearch", "hnswlib") if m in sys.modules]
        print("exit", code, "engines", engines)
        """)
    results = tmp_path / "r"
    proc = subprocess.run([sys.executable, "-c", script, str(path), str(results)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "exit 0 engines []" in proc.stdout, proc.stdout + proc.stderr
    frame = pd.read_csv(results / "results.csv")
    assert sorted(frame["index"]) == ["flat", "hnswlib", "usearch"]
    assert (frame["status"] == "ok").all() and (frame["recall@10"] > 0.9).all()
    # one process per unit, each measured alone: the interpreter and the data, not gigabytes
    assert frame["worker"].is_unique
    assert frame["peak_rss_bytes"].between(20e6, 4e9).all(), frame["peak_rss_bytes"]


def test_in_process_keeps_units_in_the_run_process(tmp_path):
    path = write(tmp_path, """
        datasets: [{synthetic: {n_base: 500, n_queries: 10, dim: 8}}]
        indexes: [flat, {hnswlib: {search: {ef: [20]}}}]
        """)
    proc = subprocess.run(command(path, tmp_path / "r", "--in-process"), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_csv(tmp_path / "r" / "results.csv")
    assert (frame["worker"] == "local").all() and (frame["peak_rss_bytes"] > 20e6).all()


def _ignore_sigint() -> None:
    # a job that a script puts in the background starts with SIGINT ignored
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _session_processes(sid: int) -> list[int]:
    out = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == sid and process.status() != psutil.STATUS_ZOMBIE:
                out.append(process.pid)
        except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
            pass
    return out


@pytest.mark.parametrize("target,jobs", [("group", 1), ("parent", 2)])
def test_ctrl_c_stops_at_once_leaves_no_worker_and_a_rerun_resumes(tmp_path, target, jobs):
    path = write(tmp_path, SLOW.replace("[4, 6, 8, 10]", "[4, 5, 6, 7, 8, 9, 10, 11]"))
    results = tmp_path / "r"
    proc = subprocess.Popen(command(path, results, "--jobs", str(jobs)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_ignore_sigint)
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline and \
            not (n_records(results) >= 1 and unit_processes(proc.pid)):
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    if target == "group":  # Ctrl-C at a terminal: the whole foreground group
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    start = time.time()
    _, err = proc.communicate(timeout=60)
    assert time.time() - start < 8, f"Ctrl-C took {time.time() - start:.1f} s"
    assert proc.returncode == 130, err
    assert "interrupted; completed units are saved" in err
    deadline = time.time() + 10   # the fork server ends as it sees its parent gone
    while _session_processes(proc.pid) and time.time() < deadline:
        time.sleep(0.1)
    assert _session_processes(proc.pid) == [], "a worker outlived the run"
    runs = results / "runs"
    done = n_records(results)
    assert 1 <= done < 8 and not list(runs.glob("*.claim"))
    assert all(records.is_done(results, p.stem) for p in runs.glob("*.json"))
    again = subprocess.run(command(path, results), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"ran {8 - done} build units, {done} already done" in again.stdout
    frame = vbresults.table(results)
    assert len(frame) == 16 and (frame["status"] == "ok").all()
