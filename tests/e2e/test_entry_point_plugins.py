"""Third-party components through entry points: a real dist-info on sys.path, read by
importlib.metadata in a fresh ``vecbench`` process, as after ``pip install`` of a plugin.

The example plugin (tests/plugin_example: an exact numpy index and a hit-rate metric) is
installed by writing its ``*.dist-info`` (METADATA and entry_points.txt, the latter generated
from its pyproject.toml) beside its module: what pip would write, without a venv.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from helpers import install_plugin as install

EXAMPLE = Path(__file__).resolve().parents[1] / "plugin_example"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def site(tmp_path) -> Path:
    """A site folder holding the example plugin, installed from its own pyproject.toml."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    folder = tmp_path / "site"
    install(folder, project["name"], project["entry-points"],
            {"vecbench_example": (EXAMPLE / "vecbench_example.py").read_text()})
    return folder


def vecbench(site: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m vecbench ARGS`` in a new process that sees ``site`` (and this vecbench)."""
    paths = [str(site), str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    return subprocess.run([sys.executable, "-m", "vecbench", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


def test_check_runs_the_conformance_suite_on_a_plugin_index_and_metric(site):
    index = vecbench(site, "check", "numpy_brute")
    assert index.returncode == 0, index.stdout + index.stderr
    lines = index.stdout.splitlines()
    assert "ok   protocol" in lines and "ok   recall_cos" in lines and "ok   close" in lines
    assert all(line.startswith(("ok ", "skip ")) for line in lines)
    metric = vecbench(site, "check", "hit_rate", "--kind", "metrics")
    assert metric.returncode == 0, metric.stderr
    assert metric.stdout.splitlines() == ["ok   declaration", "ok   computes"]
    listed = vecbench(site, "list", "indexes")
    assert "numpy_brute" in listed.stdout.split(": ", 1)[1].split(", ")


def test_run_and_collect_with_a_plugin_index_and_metric(site, tmp_path):
    (tmp_path / "exp.yaml").write_text(
        "name: plugin\nseed: 0\nk: 10\ndatasets:\n  - digits: {n_queries: 40}\n"
        "pipelines:\n  - []\nindexes:\n  - numpy_brute: {}\n  - flat: {}\n"
        "orderings: [original]\n")
    run = vecbench(site, "run", "exp.yaml", "--results", "out", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    collect = vecbench(site, "collect", "out", "--metrics", "recall@10,hit_rate@10,hit_rate@1",
                       cwd=tmp_path)
    assert collect.returncode == 0, collect.stderr
    table = pd.read_csv(tmp_path / "out" / "results.csv").set_index("index")
    assert table.loc["numpy_brute", "recall@10"] == 1.0  # exact, as flat is
    assert table.loc["numpy_brute", "hit_rate@10"] == 1.0
    assert table.loc["flat", "hit_rate@1"] == 1.0


def test_a_failing_check_is_a_FAIL_line_and_exit_1(site):
    install(site, "vecbench-sloppy", {"vecbench.indexes": {"int32_ids": "sloppy:Int32Ids"}},
            {"sloppy": "from vecbench_example import NumpyBrute\n\n"
                       "class Int32Ids(NumpyBrute):\n"
                       "    def _searching(self, params):\n"
                       "        run = super()._searching(params)\n"
                       "        return lambda q, k: (run(q, k)[0].astype('int32'), None)\n"})
    result = vecbench(site, "check", "int32_ids")
    assert result.returncode == 1
    assert "FAIL ids: ids int32, expected int64" in result.stdout.splitlines()
    assert "ok   recall_l2" in result.stdout.splitlines()  # the other checks still ran


def test_a_name_clashing_with_a_builtin_is_refused_naming_both(site):
    install(site, "vecbench-clash", {"vecbench.indexes": {"flat": "vecbench_example:NumpyBrute"}})
    result = vecbench(site, "check", "flat")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "vecbench: error: index 'flat' is registered twice: by vecbench (built-in) and by "
        "vecbench-clash 0.1.0 (entry point group vecbench.indexes); refused: one of them must "
        "rename it"]
    assert vecbench(site, "check", "numpy_brute").returncode == 0  # the others still work


def test_a_plugin_clashing_with_another_plugin_is_refused(site):
    install(site, "vecbench-second",
            {"vecbench.metrics": {"hit_rate": "vecbench_example:HIT_RATE"}})
    result = vecbench(site, "collect", "nowhere", "--metrics", "hit_rate@10")
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "metric 'hit_rate' is registered twice" in line
    assert "vecbench-example-plugin 0.1.0" in line and "vecbench-second 0.1.0" in line


def test_a_broken_plugin_fails_when_used_not_when_vecbench_is_imported(site):
    install(site, "vecbench-broken", {"vecbench.indexes": {"broken": "broken_plugin:Index"}},
            {"broken_plugin": "import no_such_module_anywhere\n"})
    listed = vecbench(site, "list", "indexes")  # listing imports no plugin
    assert listed.returncode == 0 and "broken" in listed.stdout
    assert vecbench(site, "check", "numpy_brute").returncode == 0
    result = vecbench(site, "check", "broken")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "vecbench: error: index 'broken' of vecbench-broken 0.1.0 failed to load "
        "(broken_plugin:Index): ModuleNotFoundError: No module named 'no_such_module_anywhere'"]


def test_unknown_name_is_exit_2_with_a_suggestion(site):
    result = vecbench(site, "check", "numpy_brut")
    assert result.returncode == 2 and result.stdout == ""
    assert "unknown component 'numpy_brut' (did you mean 'numpy_brute'?)" in result.stderr
    wrong_kind = vecbench(site, "check", "numpy_brute", "--kind", "metrics")
    assert wrong_kind.returncode == 2 and "unknown metric 'numpy_brute'" in wrong_kind.stderr


def test_the_example_is_installable_as_declared():
    """The pyproject names the module it ships and the targets exist in it."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    module = project["tool"]["setuptools"]["py-modules"][0]
    text = (EXAMPLE / f"{module}.py").read_text()
    for points in project["project"]["entry-points"].values():
        for target in points.values():
            name, attr = target.split(":")
            assert name == module and (f"class {attr}(" in text or f"\n{attr} = " in text)
