"""Each README number comes from a table the study's script prints (issue 29): every difference
with its interval quoted in a study's README ("+3.94 [+1.33, +6.49]", bold or with a Unicode
minus alike) must appear in what the study's committed scripts print now, from the committed
tables. A number edited by hand, or left behind when the tables changed, fails here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The scripts that print each study's tables, run from the repository root.
SCRIPTS = {
    "engines": [["sh", "experiments/engines/tables.sh"]],
    "scifact_indexes": [["sh", "experiments/scifact_indexes/tables.sh"]],
    "nn_preserving": [["sh", "experiments/nn_preserving/tables.sh"],
                      ["sh", "experiments/nn_preserving/seeds.sh"]],
    "rag_storage": [["sh", "experiments/rag_storage/tables.sh"],
                    ["{python}", "experiments/rag_storage/budgets.py"]],
    "hnsw_ordering": [["{python}", "experiments/hnsw_ordering/tables.py"]],
    "hnsw_ordering_map": [["{python}", "experiments/hnsw_ordering_map/tables.py", "{tmp}"]],
    "mpad_authors": [["{python}", "experiments/mpad_authors/tables.py", "{tmp}"]],
}
INTERVAL = re.compile(r"[+-]?\d+\.\d+ \[[+-]?\d+\.\d+, [+-]?\d+\.\d+\]")

pytestmark = pytest.mark.slow


def normalized(text: str) -> str:
    return text.replace("\u2212", "-").replace("**", "")


def printed(study: str, tmp_path: Path) -> str:
    env = {**os.environ, "VECBENCH": f"{sys.executable} -m vecbench", "PYTHON": sys.executable,
           "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out = []
    for command in SCRIPTS[study]:
        argv = [a.format(python=sys.executable, tmp=tmp_path) for a in command]
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(command)}: {done.stderr[-2000:]}"
        out.append(done.stdout)
    return normalized("\n".join(out))


@pytest.mark.parametrize("study", sorted(SCRIPTS))
def test_readme_intervals_are_printed_by_the_study_scripts(study, tmp_path):
    readme = ROOT / "results" / study / "README.md"
    quoted = INTERVAL.findall(normalized(readme.read_text(encoding="utf-8")))
    assert quoted, f"{readme}: no interval quoted (update SCRIPTS)"
    output = printed(study, tmp_path)
    missing = sorted({number for number in quoted if number not in output})
    assert not missing, (f"{readme.relative_to(ROOT)} quotes {len(missing)} interval(s) its "
                         f"scripts no longer print: {missing[:20]}")
