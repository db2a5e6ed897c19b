"""The layers import only downward and no vecbench module is part of an import cycle.

The layers are declared once, in pyproject.toml (``[tool.importlinter]``), and checked by
import-linter; the cycle check (``tools/import_graph.py``) also counts imports inside functions,
which hide a cycle from the interpreter but not from the design.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import import_graph  # noqa: E402


def test_layers_contract_is_kept():
    pytest.importorskip("importlinter")
    code = ("import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                                   os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_no_import_cycles():
    cycles = import_graph.cycles(import_graph.edges(ROOT))
    assert cycles == [], import_graph.summary(ROOT)


def test_cycle_finder_sees_local_imports(tmp_path):
    """A cycle closed only by an import inside a function is still found."""
    package = tmp_path / "vecbench"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from vecbench import b\n")
    (package / "b.py").write_text("def f():\n    from vecbench import a\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                  "    from vecbench import a\n")
    edges = import_graph.edges(tmp_path)
    assert {(e.source, e.target, e.kind) for e in edges} == {
        ("vecbench.a", "vecbench.b", "module"), ("vecbench.b", "vecbench.a", "local"),
        ("vecbench.c", "vecbench.a", "typing")}
    assert import_graph.cycles(edges) == [["vecbench.a", "vecbench.b"]]
