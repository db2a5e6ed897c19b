"""Bad runbooks at ``vecbench validate`` (and ``run``): one line naming the file and the step,
exit 2, nothing run."""

from __future__ import annotations

import pytest

from cli_checks import one_line
from helpers import write

HEAD = """
name: rb
k: 5
datasets:
  - synthetic: {n_base: 300, n_queries: 10, dim: 8}
indexes:
  - INDEX: {}
runbook:
"""

CASES = {
    "delete of ids not present": (
        "hnswlib", "  - {operation: insert, start: 0, end: 100}\n"
                   "  - {operation: delete, start: 50, end: 150}\n  - {operation: search}\n",
        ["exp.yaml: runbook[1]", "step delete [50, 150)", "deletes id 100, which is not present"]),
    "insert past the data": (
        "hnswlib", "  - {operation: insert, start: 0, end: 100}\n"
                   "  - {operation: insert, start: 100, end: 301}\n  - {operation: search}\n",
        ["exp.yaml: runbook[1]", "inserts past the data: ids must be < 300, got end 301"]),
    "malformed step": (
        "hnswlib", "  - {operation: insert, start: 0, end: 100}\n"
                   "  - {operation: delete, start: 0}\n  - {operation: search}\n",
        ["exp.yaml: runbook[1]", "a delete step needs start, end; end is missing"]),
    "end before start": (
        "hnswlib", "  - {operation: insert, start: 10, end: 5}\n  - {operation: search}\n",
        ["exp.yaml: runbook[0]", "expected end > start"]),
    "index without deletes": (
        "faiss_hnsw", "  sliding_window: {window: 100, step: 50}\n",
        ["exp.yaml: indexes[0].faiss_hnsw", "cannot delete or insert natively",
         "apply: rebuild"]),
    "generator past the data": (
        "hnswlib", "  sliding_window: {window: 100, step: 50, n: 400}\n",
        ["exp.yaml: runbook.sliding_window.n", "expected n <= the 300 data vectors, got 400"]),
    "generator parameter": (
        "hnswlib", "  sliding_window: {window: 100, step: 0}\n",
        ["exp.yaml: runbook.sliding_window.step", "expected an integer >= 1, got 0"]),
    "unknown runbook key": (
        "hnswlib", "  sliding: {window: 100}\n", ["exp.yaml: runbook", "sliding"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_runbook_is_one_line(capsys, tmp_path, case, command):
    index, runbook, named = CASES[case]
    path = write(tmp_path, HEAD.replace("INDEX", index) + runbook)
    one_line(capsys, [command, path, "--results", tmp_path / "out"] if command == "run"
             else [command, path], *named)
    assert not (tmp_path / "out").exists()


def test_missing_runbook_file(capsys, tmp_path):
    path = write(tmp_path, HEAD.replace("INDEX", "hnswlib") + "  file: nowhere.yaml\n")
    one_line(capsys, ["validate", path], "nowhere.yaml")


def test_validating_a_runbook_stays_numpy_free(tmp_path):
    import subprocess
    import sys

    path = write(tmp_path, HEAD.replace("INDEX", "faiss_ivf")
                 + "  sliding_window: {window: 100, step: 50, rebuild_every: 2}\n")
    code = ("import sys; from vecbench.cli.commands import main; "
            f"assert main(['validate', {str(path)!r}]) == 0; "
            "assert 'numpy' not in sys.modules, 'numpy imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
