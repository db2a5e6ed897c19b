"""Per-unit claims (issue: reliability 13b, 13c, 7b): a claim names host, boot id, pid and process
start time; one left by a dead process, a reused pid or a restarted host is taken over; one of
another host that cannot be checked is one line with --steal-claims; waiting says what it
waits for; two real concurrent runs compute every unit exactly once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from vecbench.run import claims

from vecbench.cli import commands as cli

from vecbench.run import records

from vecbench.run import runner
from cli_checks import TINY
from helpers import write


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """A results folder whose two units are complete (computed once per module)."""
    tmp = tmp_path_factory.mktemp("done")
    exp = write(tmp, TINY)
    assert cli.main(["run", str(exp), "--results", str(tmp / "r"), "--quiet"]) == 0
    return exp, tmp / "r"


@pytest.fixture
def one_missing(done, tmp_path):
    """A copy of the folder with one record removed: (experiment, folder, its key)."""
    import shutil

    exp, source = done
    shutil.copytree(source, tmp_path / "r")
    record = sorted((tmp_path / "r" / "runs").glob("*.json"))[0]
    record.unlink()
    return exp, tmp_path / "r", record.stem


def claim_file(folder, key, **holder) -> os.PathLike:
    """A claim as another run would have left it, with ``holder``'s fields over ours."""
    path = records.claim_path(folder, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**claims.identity(), **holder}))
    return path


def run(capsys, exp, folder, *options) -> tuple[int, str, str]:
    code = cli.main(["run", str(exp), "--results", str(folder), "--quiet", *options])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_claim_names_host_boot_pid_and_start_time(tmp_path):
    assert records.claim(tmp_path, "k1")
    holder = json.loads(records.claim_path(tmp_path, "k1").read_text())
    assert holder["host"] == socket.gethostname() and holder["pid"] == os.getpid()
    assert holder["boot_id"] == claims.boot_id() != ""
    assert holder["start"] == claims.start_time(os.getpid()) != ""
    assert claims.judge(records.claim_path(tmp_path, "k1")).state == "held"
    assert not records.claim(tmp_path, "k1")   # another run would be refused
    records.release(tmp_path, "k1")
    assert not records.claim_path(tmp_path, "k1").exists()


def test_a_claim_of_a_live_unrelated_pid_is_taken_over(capsys, one_missing):
    exp, folder, key = one_missing
    # pid 1 runs, but it is not the process that took the claim (pid reuse)
    path = claim_file(folder, key, pid=1, start="99999999")
    assert claims.judge(path).why == "pid 1 now belongs to another process"
    code, out, err = run(capsys, exp, folder)
    assert code == 0 and "ran 1 build units" in out, err
    assert records.is_done(folder, key) and not path.exists()


def test_a_claim_from_before_a_restart_of_this_host_is_taken_over(capsys, one_missing):
    exp, folder, key = one_missing
    path = claim_file(folder, key, boot_id="an-earlier-boot")
    assert claims.judge(path).why == "this host restarted since"
    code, out, err = run(capsys, exp, folder)
    assert code == 0 and "ran 1 build units" in out, err
    assert records.is_done(folder, key) and not path.exists()


def test_an_abandoned_claim_of_another_host_is_one_line_then_stolen(capsys, one_missing):
    exp, folder, key = one_missing
    path = claim_file(folder, key, host="old-container-7f3a", pid=4242)
    old = time.time() - claims.STALE_S - 60
    os.utime(path, (old, old))
    before = {p.name: p.stat().st_mtime_ns for p in (folder / "runs").glob("*.json")}
    start = time.monotonic()
    code, out, err = run(capsys, exp, folder)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert time.monotonic() - start < 30
    for named in (str(path), "host old-container-7f3a pid 4242", "--steal-claims"):
        assert named in lines[0], lines[0]
    assert {p.name: p.stat().st_mtime_ns for p in (folder / "runs").glob("*.json")} == before
    code, out, err = run(capsys, exp, folder, "--steal-claims")
    assert code == 0 and "ran 1 build units" in out, err
    assert records.is_done(folder, key) and not path.exists()


def test_waiting_on_a_live_claim_says_what_it_waits_for(capsys, one_missing, monkeypatch):
    exp, folder, key = one_missing
    path = claim_file(folder, key, host="other-host", pid=4242)   # fresh: its run goes on
    monkeypatch.setattr(runner, "WAIT_REPORT_S", 0.5)
    # the other host's run ends without a record after ~2 s: this run then takes the unit
    threading.Timer(2.0, path.unlink).start()
    code, out, err = run(capsys, exp, folder)
    waits = [line for line in err.splitlines() if line.startswith("vecbench: waiting for")]
    assert code == 0 and "ran 1 build units" in out, err
    assert len(waits) >= 2, err
    assert "1 units claimed by other runs (host other-host pid 4242)" in waits[0]
    assert str(path) in waits[0]


def test_held_claims_are_refreshed(tmp_path):
    assert records.claim(tmp_path, "k1")
    path = records.claim_path(tmp_path, "k1")
    os.utime(path, (1, 1))
    with claims.Keeper(tmp_path, ["k1"], every=0.1):
        time.sleep(0.5)
    assert time.time() - path.stat().st_mtime < 5
    records.release(tmp_path, "k1")


def test_racing_takeovers_of_one_stale_claim_leave_one_holder(tmp_path):
    """Eight processes take over the same stale claim at once: exactly one gets it."""
    claim_file(tmp_path, "k1", pid=2 ** 22 + 7)   # no such process
    script = textwrap.dedent("""
        import sys, time
        from vecbench.run import records
        time.sleep(float(sys.argv[2]) - time.time())  # all at once
        got = records.claim(sys.argv[1], "k1")
        print(got, flush=True)
        time.sleep(1.0)   # hold it while the others try
        """)
    at = str(time.time() + 1.5)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), at],
                              stdout=subprocess.PIPE, text=True) for _ in range(8)]
    got = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert sorted(got) == ["False"] * 7 + ["True"], got


MANY = """
name: many
k: 5
datasets:
  - synthetic: {n_base: 400, n_queries: 10, dim: 8}
indexes:
  - flat: {}
  - hnswlib: {build: {M: [4, 6, 8, 10, 12, 16]}, search: {ef: [10]}}
  - faiss_ivf: {build: {nlist: [2, 4, 8, 16, 32, 1000]}, search: {nprobe: [1]}}
orderings: [original, reverse]
"""
#: Units of MANY, of which these fail (more lists than vectors): a failure is not rerun either.
N_MANY, N_FAILING = 26, 2


def test_two_concurrent_runs_compute_each_unit_exactly_once(tmp_path):
    exp = write(tmp_path, MANY)
    results = tmp_path / "r"
    argv = [sys.executable, "-m", "vecbench", "run", str(exp), "--results", str(results),
            "--threads", "1", "--quiet"]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [1, 1] or sorted(p.returncode for p in procs) \
        == [0, 1], outs   # 1: the failing units, reported by whichever run ran them
    ran = [int(out.split("ran ")[1].split(" build")[0]) for out, _ in outs]
    assert sum(ran) == N_MANY, outs   # every unit computed once: none twice, none lost
    failed = [line for _, err in outs for line in err.splitlines()
              if line.startswith("failed: ")]
    assert len(failed) == N_FAILING, outs
    stored = [json.loads(p.read_text()) for p in (results / "runs").glob("*.json")]
    workers = [record["worker"] for record in stored]
    assert len(workers) == len(set(workers)) == N_MANY   # one worker process per computation
    assert not list(results.rglob("*.claim"))
