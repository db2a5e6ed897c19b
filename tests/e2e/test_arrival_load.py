"""Open-loop load end to end (issue 27): a real run of hnswlib on digits at low rates from client
processes and the bare loop, while busy processes load the machine on purpose; its table, the
contended flag and the report's mark, operating points in collect, best and compare --fail."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import run_cli, run_frame, write

QUICK = """
name: quick
datasets: [digits: {}]
indexes:
  - hnswlib: {build: {M: 8, ef_construction: 40},
              search: {ef: 10, arrival: {rate: 40, seconds: 0.3, clients: 1, drain_seconds: 0.3}}}
"""


def test_a_small_load_from_one_client_process(tmp_path):
    frame = run_frame(tmp_path, QUICK)
    row = frame.iloc[0]
    assert row["search.arrival.rate"] == 40.0 and row["search.arrival.clients"] == 1
    assert row["dropped_share"] == 0 and 0 < row["service_p50_ms"] <= row["p50_ms"]
    assert row["offered_qps"] > 0 and row["achieved_qps"] > 0
    assert row["load_1m"] >= 0 and row["cpu_per_wall"] >= 0
    import json

    record = json.loads(next((tmp_path / "results" / "runs").glob("*.json")).read_text())
    load = record["settings"][0]["load"]
    assert load["arrivals"] == load["answered"] > 0 and load["dropped"] == 0
    assert record["contention"]["before"]["cores"] >= 1 and record["contention"]["during"]

EXPERIMENT = """
name: load
k: 10
datasets: [digits: {}]
indexes:
  - hnswlib: {build: {M: 8, ef_construction: 40},
              search: {ef: [10, 40], arrival: {rate: [40, 120], seconds: 0.4, clients: [0, 2],
                                               p99_ms_max: 50, drain_seconds: 0.5}}}
cost: {usd_per_hour: 0.36, memory_gb: 4}
"""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """The experiment run while 2 x cores + 1 processes spin: (results folder, table)."""
    import pandas as pd

    from vecbench.cli.commands import main

    folder = tmp_path_factory.mktemp("load")
    path = write(folder, EXPERIMENT)
    cores = os.cpu_count() or 1
    spin = "import time\nend = time.time() + 60\nwhile time.time() < end: pass"
    busy = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(2 * cores + 1)]
    try:
        assert main(["run", str(path), "--results", str(folder / "results"), "--quiet",
                     "--threads", "1"]) == 0
    finally:
        for process in busy:
            process.kill()
            process.wait()
    return folder / "results", pd.read_csv(folder / "results" / "results.csv")


@pytest.mark.slow  # a run beside 2 x cores + 1 busy processes
def test_rows_of_a_load(loaded):
    _, frame = loaded
    assert len(frame) == 8 and (frame["status"] == "ok").all()
    assert set(frame["search.arrival.clients"]) == {0, 2}
    assert set(frame["search.arrival.rate"]) == {40.0, 120.0}
    # low rates on a small index: everything answered, about what was offered
    assert (frame["dropped_share"] == 0).all()
    assert np.allclose(frame["achieved_qps"], frame["offered_qps"], rtol=0.25)
    # a response includes the search: p50 of response >= p50 of the search alone
    assert (frame["p50_ms"] >= frame["service_p50_ms"] * 0.99).all()
    assert frame["recall@10"].between(0.5, 1.0).all()
    # the sustainable rate is one of the rates asked for, or 0
    assert set(frame["sustainable_rate"]) <= {0.0, 40.0, 120.0}
    held = frame[frame["sustained"].astype(bool)]
    assert (held["p99_ms"] <= 50).all()
    assert frame["usd_per_gb_month"].gt(0).all()


@pytest.mark.slow  # a run beside 2 x cores + 1 busy processes
def test_a_deliberately_loaded_run_is_flagged_contended(loaded):
    folder, frame = loaded
    assert frame["contended"].astype(bool).all()
    assert (frame["runnable_max"] > (os.cpu_count() or 1)).all()
    from vecbench.cli.commands import main

    assert main(["report", str(folder)]) == 0
    report = (folder / "report.md").read_text()
    assert "CONTENDED: 8 of 8 rows" in report


@pytest.mark.slow  # a run beside 2 x cores + 1 busy processes
def test_operating_points_in_collect_best_and_compare(loaded, capsys):
    folder, _ = loaded
    code, out, err = run_cli(capsys, "collect", folder, "--metrics",
                             "qps_at_recall(0.5),recall_at_latency(1000)")
    assert code == 0, err
    import pandas as pd

    frame = pd.read_csv(folder / "results.csv")
    # a 1 s budget: every setting qualifies, so the best recall of each group is its max
    for _, group in frame.groupby("search.arrival.clients"):
        assert group["recall_at_latency(1000)"].iloc[0] == pytest.approx(group["recall@10"].max())
    code, out, err = run_cli(capsys, "best", folder, "--maximize", "qps_at_recall(0.5)")
    assert code == 0, err
    assert "qps_at_recall(0.5):" in out and "arrival:" in out
    code, out, err = run_cli(capsys, "compare", folder, folder, "--fail",
                             "qps_at_recall(0.5):-10%")
    assert code == 0, out + err
    code, out, err = run_cli(capsys, "compare", folder, folder, "--fail",
                             "qps_at_recall(0.5)>=1000000")
    assert code == 1 and "REGRESSION" in out
