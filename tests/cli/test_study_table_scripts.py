"""The table scripts `make figures` runs for filtered_rag and streaming: a wrong folder or a
missing measurement is one line and exit 2 (no traceback, nothing written), and the output folder
argument writes there, never into the committed results/ folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
STREAMING = ROOT / "experiments" / "streaming" / "tables.py"
FILTERED = ROOT / "experiments" / "filtered_rag" / "table.py"


def script(*argv) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, *map(str, argv)], cwd=ROOT, env=env,
                          capture_output=True, text=True)


def refused(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert all(word in last for word in words), last


def test_streaming_tables_refuse_a_missing_results_folder(tmp_path):
    out = tmp_path / "out"
    refused(script(STREAMING, tmp_path / "nowhere", out), str(tmp_path / "nowhere"),
            "no such results folder")
    assert not out.exists()


def test_streaming_tables_refuse_a_missing_truth_timing(tmp_path):
    missing = tmp_path / "truth_once.csv"
    refused(script(STREAMING, ROOT / "results" / "streaming", tmp_path / "out",
                   "--truth-once", missing), "--truth-once", str(missing), "--time-truth")


def test_filtered_rag_table_refuses_a_source_without_a_folder(tmp_path):
    refused(script(FILTERED, "scifact", "--out", tmp_path), "'scifact'", "NAME=DIR")
    refused(script(FILTERED, f"scifact={tmp_path / 'nowhere'}", "--out", tmp_path),
            str(tmp_path / "nowhere"), "per_query.parquet")
    assert not list(tmp_path.iterdir())


def test_streaming_tables_write_into_the_output_folder(tmp_path):
    committed = ROOT / "results" / "streaming"
    before = {p.name: p.stat().st_mtime_ns for p in committed.iterdir()}
    done = script(STREAMING, committed, tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "recall_steps.png", "steps.csv", "summary.csv", "truth_cost.csv"]
    assert {p.name: p.stat().st_mtime_ns for p in committed.iterdir()} == before
    # every search step of the committed results table is a row of steps.csv
    results = pd.read_parquet(committed / "results.parquet")
    assert len(pd.read_csv(tmp_path / "steps.csv")) == (results["status"] == "ok").sum()
