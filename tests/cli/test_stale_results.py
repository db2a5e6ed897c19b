"""Nothing stale (issue 29): `make figures` on the committed tables, into a temporary folder,
redraws every committed figure and rewrites every table its scripts write; a committed figure or
table that differs from what its command makes now fails here. Run by `make test`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
#: RMS pixel difference allowed (matplotlib.testing.compare); the figures are drawn with the
#: Agg backend and matplotlib's bundled DejaVu fonts, so a redraw differs by antialiasing at most
TOLERANCE = 2.0
#: Committed figures that no committed command draws, with the reason; each is a known gap.
UNMADE = {
    "results/engines/qps_recall.png": "drawn by hand for the engines study; no command in "
                                      "experiments/engines or the Makefile makes it",
}

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


def committed(pattern: str) -> list[str]:
    listed = subprocess.run(["git", "ls-files", pattern], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.split()
    return sorted(listed)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    data = os.environ.get("VECBENCH_DATA") or str(ROOT.parent / "shared" / "datasets")
    if not Path(data).is_dir():
        pytest.skip(f"hnsw_ordering/lid.png needs the shared datasets ({data})")
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    out = tmp_path_factory.mktemp("figures")
    for study in {Path(p).parts[1] for p in committed("results/*.png")}:
        (out / study).mkdir(exist_ok=True)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "VECBENCH_DATA": data, "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    # -o: take the venv as installed (this interpreter's); BIN: run this interpreter's vecbench
    done = subprocess.run(["make", "-s", "-o", ".venv/.installed", "figures", f"OUT={out}",
                           f"BIN={bin_dir}"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_every_committed_figure_is_made_by_make_figures(regenerated):
    made = {f"results/{p.relative_to(regenerated)}" for p in regenerated.rglob("*.png")}
    missing = [p for p in committed("results/*.png") if p not in made and p not in UNMADE]
    assert not missing, f"committed figures no `make figures` command draws: {missing}"


@pytest.mark.parametrize("figure", [p for p in committed("results/*.png") if p not in UNMADE])
def test_committed_figure_matches_its_redraw(regenerated, figure):
    from matplotlib.testing.compare import compare_images

    redrawn = regenerated / Path(figure).relative_to("results")
    assert redrawn.exists(), f"{figure}: not redrawn"
    verdict = compare_images(str(ROOT / figure), str(redrawn), tol=TOLERANCE)
    assert verdict is None, f"{figure} is stale (rerun `make figures`): {verdict}"


@pytest.mark.parametrize("table", [p for p in committed("results/*.csv")
                                   if not p.endswith("/results.csv")])
def test_committed_table_matches_what_its_script_writes(regenerated, table):
    rewritten = regenerated / Path(table).relative_to("results")
    assert rewritten.exists(), f"{table}: no script of `make figures` writes it"
    pd.testing.assert_frame_equal(pd.read_csv(ROOT / table), pd.read_csv(rewritten),
                                  check_exact=False, rtol=1e-9, atol=1e-12)
