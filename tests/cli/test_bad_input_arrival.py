"""Bad input of an open-loop load and its operating points (issue 27): one line naming the file,
YAML path or option, the value and what is expected; exit 2; no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cli_checks import one_line
from helpers import write

LOAD = """
name: load
datasets: [digits: {{}}]
indexes:
  - hnswlib: {{build: {{M: 8}}, search: {{ef: 10, arrival: {arrival}}}}}
"""
WHERE = "indexes[0].hnswlib.search.arrival"

CASES = {
    "rate zero": ("{rate: 0, seconds: 1}", "rate", "0"),
    "rate negative": ("{rate: [100, -5], seconds: 1}", "rate", "-5"),
    "rate nan": ("{rate: .nan, seconds: 1}", "rate", "nan"),
    "rate inf": ("{rate: .inf, seconds: 1}", "rate", "inf"),
    "rate text": ("{rate: fast, seconds: 1}", "rate", "'fast'"),
    "seconds inf": ("{rate: 10, seconds: .inf}", "seconds", "inf"),
    "seconds zero": ("{rate: 10, seconds: 0}", "seconds", "0"),
    "no seconds": ("{rate: 10}", "seconds", "nothing"),
    "bound negative": ("{rate: 10, seconds: 1, p99_ms_max: -1}", "p99_ms_max", "-1"),
    "clients negative": ("{rate: 10, seconds: 1, clients: -1}", "clients", "-1"),
    "clients beyond any machine": ("{rate: 10, seconds: 1, clients: 100000}", "clients",
                                   "100000"),
    "unknown key": ("{rate: 10, seconds: 1, qps: 5}", "qps", "rate"),
    "not a mapping": ("[10, 1]", "arrival", "mapping"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_arrival_values(capsys, tmp_path, case):
    arrival, key, value = CASES[case]
    path = write(tmp_path, LOAD.format(arrival=arrival))
    one_line(capsys, ["validate", path], path.name, WHERE, key, value)


def test_more_clients_than_the_machine_can_start(capsys, tmp_path, monkeypatch):
    """A count under the hard cap that this machine cannot start (here: it can start 3)."""
    from vecbench.run import arrival_spec

    monkeypatch.setattr(arrival_spec, "max_client_processes", lambda: 3)
    path = write(tmp_path, LOAD.format(arrival="{rate: 10, seconds: 1, clients: 4}"))
    one_line(capsys, ["validate", path], f"{WHERE}.clients", "at most the 3 client processes",
             "got 4")


def test_the_process_limit_bounds_client_processes():
    """Under a process limit a few above what the user already runs, few clients fit."""
    code = ("import resource; from vecbench.run import arrival_spec as a; "
            "n = a._user_processes(); "
            "resource.setrlimit(resource.RLIMIT_NPROC, (n + 5, resource.getrlimit("
            "resource.RLIMIT_NPROC)[1])); print(a.max_client_processes())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=os.environ)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) <= 5


def test_clients_and_arrival_together(capsys, tmp_path):
    path = write(tmp_path, LOAD.format(arrival="{rate: 10, seconds: 1}").replace(
        "ef: 10,", "ef: 10, clients: 2,"))
    one_line(capsys, ["validate", path], "clients", "either clients")


@pytest.mark.parametrize("option,value", [
    ("--maximize", "qps_at_recall(1.5)"), ("--maximize", "recall_at_latency(0)"),
    ("--maximize", "recall_at_latency(-3)")])
def test_operating_point_numbers(capsys, tmp_path, option, value):
    table = tmp_path / "results.csv"
    table.write_text("dataset,index,k,recall@10,p99_ms,qps,status\nd,flat,10,1.0,1.0,5.0,ok\n")
    one_line(capsys, ["best", table, option, value], value)


def test_cost_values(capsys, tmp_path):
    path = write(tmp_path, LOAD.format(arrival="{rate: 10, seconds: 1}")
                 + "cost: {usd_per_hour: -2}\n")
    one_line(capsys, ["validate", path], "cost.usd_per_hour", "-2")
