"""Nothing stale (issue 29): `make figures` on the committed tables, into a temporary folder,
redraws every committed figure and rewrites every table its scripts write; a committed figure or
table that differs from what its command makes now fails here. And each README number comes from
a table the study's script prints: every difference with its interval quoted in a study's README
("+3.94 [+1.33, +6.49]", bold or with a Unicode minus alike) must appear in what the study's
committed scripts print now. Run by `make test`."""

from __future__ import annotations

import os
import re
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
UNMADE: dict[str, str] = {}
#: Committed script tables that `make figures` does not rewrite, with the reason.
UNMADE_TABLES: dict[str, str] = {}
#: Committed measurements a study's tables are made from (not made from its results table):
#: rerunning their command measures again, so `make figures` reads them and never rewrites them.
MEASURED = {
    "results/streaming/truth_once.csv": "one exact kNN over all the data, timed by "
                                        "`experiments/streaming/tables.py --time-truth`",
}

#: The scripts that print each study's tables, run from the repository root ("make figures":
#: what `make figures` printed, which runs the table scripts of mpad_authors, hnsw_ordering_map
#: and filtered_rag).
SCRIPTS = {
    "engines": [["sh", "experiments/engines/tables.sh"]],
    "scifact_indexes": [["sh", "experiments/scifact_indexes/tables.sh"]],
    "nn_preserving": [["sh", "experiments/nn_preserving/tables.sh"],
                      ["sh", "experiments/nn_preserving/seeds.sh"]],
    "rag_storage": [["sh", "experiments/rag_storage/tables.sh"],
                    ["{python}", "experiments/rag_storage/budgets.py"],
                    ["{python}", "experiments/rag_storage/seed_summary.py"]],
    "mpad_authors": ["make figures"],
    "filtered_rag": ["make figures"],
    "hnsw_ordering_map": ["make figures"],
}
# streaming quotes no interval (its numbers are in summary.csv and truth_cost.csv, checked above).
# hnsw_ordering quotes counts and shifts, no difference with an interval: nothing of its README
# is checked here (its tables and figures are, above).
INTERVAL = re.compile(r"[+-]?\d+\.\d+ \[[+-]?\d+\.\d+, [+-]?\d+\.\d+\]")

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


def environment(data: str) -> dict:
    return {**os.environ, "VECBENCH_DATA": data, "MPLBACKEND": "Agg",
            "VECBENCH": f"{sys.executable} -m vecbench", "PYTHON": sys.executable,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                        os.environ.get("PYTHONPATH")]))}


def committed(pattern: str) -> list[str]:
    listed = subprocess.run(["git", "ls-files", pattern], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.split()
    return sorted(listed)


@pytest.fixture(scope="module")
def data() -> str:
    data = os.environ.get("VECBENCH_DATA") or str(ROOT.parent / "shared" / "datasets")
    if not Path(data).is_dir():
        pytest.skip(f"hnsw_ordering/lid.png needs the shared datasets ({data})")
    return data


@pytest.fixture(scope="module")
def made(tmp_path_factory, data):
    """``(folder, printed)``: `make figures` into a temporary folder, and what it printed."""
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    out = tmp_path_factory.mktemp("figures")
    for study in {Path(p).parts[1] for p in committed("results/*.png")}:
        (out / study).mkdir(exist_ok=True)
    # -o: take the venv as installed (this interpreter's); BIN: run this interpreter's vecbench
    done = subprocess.run(["make", "-s", "-o", ".venv/.installed", "figures", f"OUT={out}",
                           f"BIN={Path(sys.executable).parent}"], cwd=ROOT,
                          env=environment(data), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, normalized(done.stdout)


@pytest.fixture(scope="module")
def regenerated(made):
    return made[0]


def test_every_committed_figure_is_made_by_make_figures(regenerated):
    made = {f"results/{p.relative_to(regenerated)}" for p in regenerated.rglob("*.png")}
    missing = [p for p in committed("results/*.png") if p not in made and p not in UNMADE]
    assert not missing, f"committed figures no `make figures` command draws: {missing}"


@pytest.mark.parametrize("figure", [p for p in committed("results/*.png") if p not in UNMADE])
def test_committed_figure_matches_its_redraw(regenerated, figure):
    from matplotlib.testing.compare import compare_images
    from matplotlib.testing.exceptions import ImageComparisonFailure

    redrawn = regenerated / Path(figure).relative_to("results")
    assert redrawn.exists(), f"{figure}: not redrawn"
    try:
        verdict = compare_images(str(ROOT / figure), str(redrawn), tol=TOLERANCE)
    except ImageComparisonFailure as exc:  # a different size
        verdict = str(exc)
    assert verdict is None, f"{figure} is stale (rerun `make figures`): {verdict}"


@pytest.mark.parametrize("table", [p for p in committed("results/*.csv")
                                   if not p.endswith("/results.csv") and p not in UNMADE_TABLES
                                   and p not in MEASURED])
def test_committed_table_matches_what_its_script_writes(regenerated, table):
    rewritten = regenerated / Path(table).relative_to("results")
    assert rewritten.exists(), f"{table}: no script of `make figures` writes it"
    pd.testing.assert_frame_equal(pd.read_csv(ROOT / table), pd.read_csv(rewritten),
                                  check_exact=False, rtol=1e-9, atol=1e-12)


def test_measured_inputs_are_committed():
    # a measurement left out of git would let `make figures` pass here and fail on a checkout
    assert [p for p in MEASURED if p not in committed(p)] == []


def normalized(text: str) -> str:
    return text.replace("\u2212", "-").replace("**", "")


@pytest.mark.parametrize("study", sorted(SCRIPTS))
def test_readme_intervals_are_printed_by_the_study_scripts(study, made, data, tmp_path):
    readme = ROOT / "results" / study / "README.md"
    quoted = INTERVAL.findall(normalized(readme.read_text(encoding="utf-8")))
    assert quoted, f"{readme}: no interval quoted (update SCRIPTS)"
    printed = []
    for command in SCRIPTS[study]:
        if command == "make figures":
            printed.append(made[1])
            continue
        argv = [a.format(python=sys.executable) for a in command]
        done = subprocess.run(argv, cwd=ROOT, env=environment(data), capture_output=True,
                              text=True)
        assert done.returncode == 0, f"{' '.join(command)}: {done.stderr[-2000:]}"
        printed.append(normalized(done.stdout))
    output = "\n".join(printed)
    missing = sorted({number for number in quoted if number not in output})
    assert not missing, (f"{readme.relative_to(ROOT)} quotes {len(missing)} interval(s) its "
                         f"scripts no longer print: {missing[:20]}")
