"""What test files in every folder (unit/, conformance/, cli/, e2e/) share: writing an
experiment file, running the ``vecbench`` command (in-process or as a subprocess), running a
small experiment to its results table and installing a plugin into a site folder. The bad-input
suites' own checks are in cli_checks.py, cache damage in cache_damage.py; tests/ is on
sys.path (tests/conftest.py's folder), so a test file anywhere below imports them by name."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def write(folder: Path, content: str | bytes, name: str = "exp.yaml") -> Path:
    """``content`` (text, dedented; or bytes as they are) as ``folder / name``."""
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(textwrap.dedent(content))
    return path


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """``vecbench *argv`` in this process: exit code, stdout and stderr."""
    from vecbench.cli.commands import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def vecbench(*args, cwd=None) -> subprocess.CompletedProcess:
    """``python -m vecbench *args`` in a subprocess, output captured as text."""
    return subprocess.run([sys.executable, "-m", "vecbench", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def install_plugin(site: Path, name: str, groups: dict[str, dict[str, str]],
                   modules: dict[str, str] | None = None) -> None:
    """Write distribution ``name`` 0.1.0 into ``site`` as pip would (its ``*.dist-info`` with
    entry points, and its modules), so a process with ``site`` on its path finds its plugins."""
    info = site / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in points.items()) + "\n"
        for group, points in groups.items()))
    for module, text in (modules or {}).items():
        (site / f"{module}.py").write_text(text)


def run_frame(folder: Path, experiment: str, name: str = "exp.yaml"):
    """Run ``experiment`` (YAML text) in-process with one thread; its collected results table,
    every row checked ``ok``."""
    import pandas as pd

    from vecbench.evaluate import results as vbresults
    from vecbench.run import runner
    from vecbench.run.experiment import load_experiment

    path = write(folder, experiment, name)
    results = folder / "results"
    runner.run_experiment(load_experiment(path), results, threads=1, log=lambda line: None)
    vbresults.collect(results)
    frame = pd.read_parquet(results / "results.parquet")
    assert (frame["status"] == "ok").all(), frame["reason"].tolist()
    return frame


def unit_processes(pid: int) -> list[int]:
    """The units' worker processes under ``pid`` (a `vecbench run`, or a Dask worker): the
    children of its fork server, not the fork server itself."""
    import psutil

    try:
        below = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    out = []
    for child in below:
        try:
            if child.ppid() != pid:
                out.append(child.pid)
        except psutil.NoSuchProcess:
            pass
    return out
