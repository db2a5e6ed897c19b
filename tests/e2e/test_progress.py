"""Progress while units run: heartbeats naming each running unit's step, an ETA learned per
kind of unit, a line per unit that tells it from the others (rescoring included), and library
output kept in the record instead of the terminal. Real `vecbench run` subprocesses."""

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from vecbench.core.errors import ConfigError
from vecbench.run.progress import Eta, heartbeat_seconds

#: faiss_ivf with nlist 64 on digits' ~1600 training vectors: faiss's C++ warns on stderr.
#: Two flat units that differ only in rescoring; hnswlib slow enough to be caught searching.
DIGITS = """
name: talk
timing: {min_seconds: 0.3, latency_seconds: 0.1}
datasets: [{digits: {}}]
indexes:
  - flat: {}
  - flat: {rescore: {oversample: 10, with: float32}}
  - faiss_ivf: {build: {nlist: 64}, search: {nprobe: [1, 4]}}
  - hnswlib: {build: {M: 16}, search: {ef: [16, 64]}}
"""
FAISS_WARNING = "please provide at least"


def run(tmp_path, *options, heartbeat="0.1"):
    path = tmp_path / "exp.yaml"
    path.write_text(textwrap.dedent(DIGITS))
    env = {**os.environ, "VECBENCH_HEARTBEAT_SECONDS": heartbeat}
    return subprocess.run([sys.executable, "-m", "vecbench", "run", str(path), "--results",
                           str(tmp_path / "r"), "--threads", "1", *options],
                          capture_output=True, text=True, env=env, timeout=300)


def records_by_index(results):
    out = {}
    for path in (results / "runs").glob("*.json"):
        record = json.loads(path.read_text())
        out.setdefault(record["labels"]["index"], []).append(record)
    return out


def finished_lines(stderr):
    return [line for line in stderr.splitlines() if re.match(r"\[\d+/4\] ok ", line)]


def running_lines(stderr):
    return [line for line in stderr.splitlines() if re.match(r"\[\d+/4\] running ", line)]


@pytest.mark.parametrize("options", [(), ("--in-process",)], ids=["workers", "in-process"])
def test_library_output_is_recorded_and_the_terminal_stays_clean(tmp_path, options):
    proc = run(tmp_path, *options)
    assert proc.returncode == 0, proc.stderr
    assert FAISS_WARNING not in proc.stderr + proc.stdout
    assert "1 units printed library warnings; see library_output" in proc.stderr
    units = records_by_index(tmp_path / "r")
    [ivf] = units["faiss_ivf"]
    assert any(FAISS_WARNING in line for line in ivf["library_output"]), ivf["library_output"]
    assert all(not r["library_output"] for r in units["flat"] + units["hnswlib"])


def test_every_unit_has_a_line_of_its_own_and_a_heartbeat_with_its_step(tmp_path):
    proc = run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    done = [line.split(" | ")[0] for line in finished_lines(proc.stderr)]
    assert len(done) == 4 and len(set(done)) == 4, proc.stderr  # rescoring tells the flats apart
    assert any("flat rescore(oversample=10,with=float32) original" in line for line in done)
    running = running_lines(proc.stderr)
    # the search setting being timed, with the unit's elapsed time (m:ss)
    assert any(re.search(r"hnswlib\(M=16\) original r0 \| search ef=(16|64) \([12]/2\) \| "
                         r"\d+:\d\d$", line) for line in running), proc.stderr
    assert any("faiss_ivf(nlist=64)" in line and "| search nprobe=" in line for line in running)


def test_with_jobs_each_running_unit_has_its_heartbeat_line(tmp_path):
    proc = run(tmp_path, "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    # one heartbeat names both running units: adjacent running lines of two units, numbered on
    together = [(a, b) for a, b in zip(lines, lines[1:])
                if " running " in a and " running " in b
                and a.split(" | ")[0][a.index("]"):] != b.split(" | ")[0][b.index("]"):]]
    assert together, proc.stderr
    first, second = (int(re.match(r"\[(\d+)/", line).group(1)) for line in together[0])
    assert second == first + 1


@pytest.mark.parametrize("value", ["abc", "nan", "inf", "0", "-1", "1e9"])
def test_heartbeat_interval_is_validated(monkeypatch, value):
    monkeypatch.setenv("VECBENCH_HEARTBEAT_SECONDS", value)
    with pytest.raises(ConfigError, match="VECBENCH_HEARTBEAT_SECONDS"):
        heartbeat_seconds()


def test_a_bad_heartbeat_interval_stops_the_run_before_any_unit(tmp_path):
    proc = run(tmp_path, heartbeat="soon")
    assert proc.returncode == 2
    assert ("VECBENCH_HEARTBEAT_SECONDS: expected a number in [0.05, 3600.0], written in ASCII "
            "digits, got 'soon'") in proc.stderr
    assert not list((tmp_path / "r" / "runs").glob("*.json"))


def test_eta_learns_per_kind_of_unit_from_a_synthetic_sequence():
    """Flat units take 1 s, HNSW units 2 s per search setting (4 settings), in the order a
    grid gives them: once one of each finished, the ETA is the true time left at every step,
    where elapsed/done × left is off by more than the time left itself."""
    flat, hnsw = ("d", "flat", "float32"), ("d", "hnswlib", "float32")
    sequence = [(flat, 1, 1.0), (hnsw, 4, 8.0)] + [(hnsw, 4, 8.0)] * 4 + [(flat, 1, 1.0)] * 4
    eta = Eta(jobs=1)
    assert eta.left([(kind, weight, 0.0) for kind, weight, _ in sequence]) is None
    worst_naive = 0.0
    for done, (kind, weight, seconds) in enumerate(sequence, 1):
        eta.finished(kind, weight, seconds)
        left = sequence[done:]
        truth = sum(s for _, _, s in left)
        if done >= 2:
            assert eta.left([(k, w, 0.0) for k, w, _ in left]) == pytest.approx(truth)
        naive = sum(s for _, _, s in sequence[:done]) / done * len(left)
        worst_naive = max(worst_naive, abs(naive - truth) / max(truth, 1.0))
    assert worst_naive > 1.0
    # a sweep of HNSW units with 2 settings: half the time of one with 4
    assert eta.estimate(hnsw, 2) == pytest.approx(4.0)
    # a new index on the same dataset: priced at the dataset's rate per setting
    assert eta.estimate(("d", "faiss_ivf", "float32"), 1) == pytest.approx(45.0 / 25)
    # a running unit counts what it has left; two jobs share the work, but never below the
    # longest unit
    assert eta.left([(hnsw, 4, 3.0)]) == pytest.approx(5.0)
    assert Eta(jobs=2).left([]) == 0.0
    two = Eta(jobs=2)
    two.finished(hnsw, 4, 8.0)
    assert two.left([(hnsw, 4, 0.0), (hnsw, 4, 0.0)]) == pytest.approx(8.0)
    assert two.left([(hnsw, 4, 0.0), (hnsw, 1, 0.0)]) == pytest.approx(8.0)
    # as more units finish, the rate of the kind follows them (5 flats of 1 s, then 7 s)
    eta.finished(flat, 1, 7.0)
    assert eta.estimate(flat, 1) == pytest.approx(2.0)
