"""Runbooks end to end through the CLI: a 5-step runbook in big-ann-benchmarks' file format,
worked out by hand, run and collected; its plot; a generator's steps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import run_cli, write

# Six points on a line (the second coordinate 0), ids = rows:
#   id:  0    1    2     3     4     5
#   x:   0.0  1.0  10.0  11.0  20.0  21.0
# queries at x = 0.4 and x = 10.6, k = 2.
BASE = np.array([[0.0, 0], [1.0, 0], [10.0, 0], [11.0, 0], [20.0, 0], [21.0, 0]], np.float32)
QUERIES = np.array([[0.4, 0], [10.6, 0]], np.float32)

# The runbook, written in big-ann-benchmarks' layout (dataset name, max_pts, numbered steps,
# gt_url), read as it is:
RUNBOOK = """\
line-6:
  max_pts: 6
  1:
    operation: "insert"
    start: 0
    end: 4
  2:
    operation: "search"
  3:
    operation: "insert"
    start: 4
    end: 6
  4:
    operation: "delete"
    start: 0
    end: 2
  5:
    operation: "search"
  gt_url: "none"
"""

EXPERIMENT = """
name: hand
k: 2
timing: {min_seconds: 0, min_passes: 1, latency_queries: 2}
datasets:
  - npy: {base: base.npy, queries: queries.npy, metric: l2}
cases:
  - index: {faiss_ivf: {build: {nlist: 2}, search: {nprobe: [1]}}}
    runbook: {file: runbook.yaml, apply: native}
  - index: {faiss_ivf: {build: {nlist: 2}, search: {nprobe: [1]}}}
    runbook: {file: runbook.yaml, apply: rebuild}
"""


@pytest.fixture(scope="module")
def hand_frame(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hand")
    np.save(folder / "base.npy", BASE)
    np.save(folder / "queries.npy", QUERIES)
    write(folder, RUNBOOK, "runbook.yaml")
    write(folder, EXPERIMENT)
    from vecbench.cli.commands import main

    assert main(["run", str(folder / "exp.yaml"), "--threads", "1",
                 "--results", str(folder / "results")]) == 0
    frame = pd.read_csv(folder / "results" / "results.csv")
    assert (frame["status"] == "ok").all(), frame["reason"].tolist()
    return frame, folder


def rows(frame, index: str, runbook: str = "runbook.yaml(5 steps)"):
    return frame[(frame["index"] == index) & (frame["runbook"] == runbook)].sort_values("step")


def test_hand_checked_runbook(hand_frame):
    frame, _ = hand_frame
    # Step 2 (search): active {0, 1, 2, 3}. Exact top 2: q0 (0.4) -> {0, 1}; q1 (10.6) -> {3, 2}.
    # The IVF is built on x = 0, 1, 10, 11 with 2 lists: k-means settles on centroids 0.5 and
    # 10.5 whatever its start, lists A = {0, 1}, B = {2, 3}. nprobe 1: q0 scans A, q1 scans B:
    # both exact, recall@2 = 1.
    # Step 3 inserts x = 20, 21: both nearer 10.5 than 0.5, so natively they join B = {2..5}.
    # Step 4 deletes 0 and 1: A is empty. Step 5 (search): active {2, 3, 4, 5}; exact top 2:
    # q0 -> {2, 3} (10 and 11 are nearest 0.4), q1 -> {3, 2}.
    #   native: q0 scans only A (0.5 is its nearest centroid), which is empty: recall 0; q1
    #   scans B: recall 1. recall@2 = 0.5; mean over the two search steps (1 + 0.5) / 2 = 0.75.
    #   rebuild: the IVF is re-trained on x = 10, 11, 20, 21 before step 5: centroids 10.5 and
    #   20.5; q0 scans {2, 3}: recall 1, q1 too: recall@2 = 1, mean 1.
    native = rows(frame, "faiss_ivf")
    rebuilt = rows(frame, "faiss_ivf", "runbook.yaml(5 steps) rebuild")
    assert native["step"].tolist() == [2, 5] == rebuilt["step"].tolist()
    assert native["search_step"].tolist() == [1, 2]
    assert native["active"].tolist() == [4, 4]
    assert native["recall@2"].tolist() == [1.0, 0.5]
    assert native["mean_recall@2"].tolist() == [0.75, 0.75]
    assert rebuilt["recall@2"].tolist() == [1.0, 1.0]
    assert rebuilt["mean_recall@2"].tolist() == [1.0, 1.0]
    # searchable@2 at step 5: the points inserted at step 3 (x = 20, 21) searched for
    # themselves. Natively they sit in B, the list nearest each of them: found. Step 2 follows
    # the build: its 4 points are found too.
    assert native["searchable@2"].tolist() == [1.0, 1.0]
    assert len(frame) == 4


def test_step_metrics_and_plot(hand_frame, capsys):
    frame, folder = hand_frame
    native = rows(frame, "faiss_ivf")
    # inserts after the build (step 3: 2 vectors) and the delete (step 4: 2 vectors) were timed
    assert (native["insert_per_s"] > 0).all() and (native["delete_per_s"] > 0).all()
    assert native["truth_s"].notna().all()
    code, out, err = run_cli(capsys, "plot", folder / "results", "--kind", "steps",
                             "-o", folder / "steps.png")
    assert code == 0, err
    assert (folder / "steps.png").stat().st_size > 0
