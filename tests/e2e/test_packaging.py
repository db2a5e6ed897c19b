"""A plain (not editable) install carries the recipes and the example experiments: the wheel
built from this checkout holds them, and the version comes from vecbench.__version__."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from vecbench import __version__
from vecbench.data import EXAMPLES, RECIPES

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_holds_recipes_examples_and_version(tmp_path):
    pytest.importorskip("wheel", reason="the test extra (setuptools>=68, wheel) is not installed")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "--quiet", "-w", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    wheel, = tmp_path.glob("vecbench-*.whl")
    assert wheel.name.startswith(f"vecbench-{__version__}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in [*RECIPES.glob("*.yaml"), *EXAMPLES.glob("*.yaml")]:
        assert f"vecbench/data/{path.parent.name}/{path.name}" in names
    assert "vecbench/data/examples/quickstart.yaml" in names
    assert any(name.endswith("entry_points.txt") for name in names)


def test_recipes_and_examples_live_in_the_package():
    assert (EXAMPLES / "quickstart.yaml").is_file()
    assert {p.name for p in RECIPES.glob("*.yaml")} >= {"ann-benchmarks.yaml", "beir.yaml",
                                                         "local.yaml"}
    # the repository's experiments/quickstart.yaml is the packaged example, not a copy (and an
    # installed, not editable, vecbench ships the same file)
    packaged = ROOT / "vecbench" / "data" / "examples" / "quickstart.yaml"
    assert (ROOT / "experiments" / "quickstart.yaml").resolve() == packaged.resolve()
    assert (EXAMPLES / "quickstart.yaml").read_bytes() == packaged.read_bytes()
