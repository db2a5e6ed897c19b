"""`vecbench validate` of every committed experiment in <= 0.5 s, and `import vecbench` free of
numpy/faiss/sklearn.

Each validate runs in a fresh interpreter, as a user runs it (bytecode compiled once, by a
warm-up run, as an installed package has it); interleaved with it, the bare interpreter
(``python -c pass``) is timed as the reference, so the record shows how much of the time is
Python's own start on this (shared) machine.
"""

import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import interleaved, machine

ROOT = Path(__file__).resolve().parents[1]
LIMIT_S = 0.5
ROUNDS = 7
EXPERIMENTS = sorted(p.relative_to(ROOT).as_posix()
                     for p in [*ROOT.glob("experiments/*/experiment.yaml"),
                               *ROOT.glob("experiments/*.yaml")])
HEAVY = ("numpy", "faiss", "sklearn", "scipy", "hnswlib", "ml_dtypes", "numba", "pandas")
#: as a user runs it: bytecode written and reused (a test runner may switch that off)
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_validate_time(benchmark, record, experiment):
    def validate():
        subprocess.run([sys.executable, "-m", "vecbench", "validate", experiment], check=True,
                       capture_output=True, cwd=ROOT, env=ENV)

    def bare():
        subprocess.run([sys.executable, "-c", "pass"], check=True, env=ENV)

    validate()  # warm-up: writes the bytecode, as any installed package has it
    timing = benchmark.pedantic(lambda: interleaved(bare, validate, ROUNDS), rounds=1,
                                iterations=1)
    benchmark.extra_info.update(timing, machine=machine())
    median = timing["ours_median_s"]
    print(f"\nvecbench validate {experiment} ({machine()}): median {median:.3f} s "
          f"(best {min(timing['ours_s']):.3f} s); bare interpreter "
          f"{timing['reference_median_s']:.3f} s")
    record(measured=f"median {median:.2f} s (best {min(timing['ours_s']):.2f} s); bare "
                    f"interpreter {timing['reference_median_s']:.2f} s",
           target=f"≤ {LIMIT_S} s", met=median <= LIMIT_S, median_s=median,
           best_s=min(timing["ours_s"]), bare_median_s=timing["reference_median_s"],
           rounds=ROUNDS)
    assert median <= LIMIT_S


def test_import_vecbench_is_light(record):
    code = ("import sys, vecbench, vecbench.core.registry, vecbench.cli.commands, vecbench.run.experiment; "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=ENV)
    imported = done.stdout.strip()
    times = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import vecbench"],
                             capture_output=True, text=True, env=ENV).stderr.splitlines()
        times.append(int(out[-1].split("|")[1]) / 1e6)  # cumulative µs of vecbench itself
    ms = statistics.median(times) * 1e3
    print(f"\nimport vecbench: {ms:.1f} ms ({machine()}); heavy modules imported: {imported}")
    record(measured=f"{ms:.0f} ms; heavy modules imported: {imported}",
           target=f"none of {', '.join(HEAVY)}", met=imported == "[]", import_ms=ms)
    assert imported == "[]"
