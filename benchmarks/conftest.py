import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    os.environ["VECBENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def interleaved(reference, ours, rounds: int) -> dict:
    """Time ``reference`` and ``ours`` alternately (A B, B A, A B, ...) in this process.

    On a shared machine load drifts over seconds; alternating puts both sides under the same
    drift. Returns each side's times, their medians, and ``ratio``: the median of the per-round
    ratios ours / reference (> 1: ours is slower).
    """
    ref_times, our_times = [], []
    for i in range(rounds):
        pair = [(reference, ref_times), (ours, our_times)]
        for function, times in (pair if i % 2 == 0 else pair[::-1]):
            times.append(timed(function))
    ratios = [o / r for o, r in zip(our_times, ref_times)]
    return {"reference_s": ref_times, "ours_s": our_times,
            "reference_median_s": statistics.median(ref_times),
            "ours_median_s": statistics.median(our_times),
            "ratio": statistics.median(ratios), "ratios": ratios}


def cpu() -> str:
    """CPU model and core count."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores"


def machine() -> str:
    """CPU, core count and load: printed with each result (the machine may be shared)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu()}, load {load:.1f}"


RESULTS_DIR = Path(__file__).parent / "results"
#: Libraries whose versions are recorded with every measurement.
VERSIONED = ("numpy", "faiss-cpu", "hnswlib", "scikit-learn", "scipy", "ml_dtypes", "numba",
             "usearch", "pandas")


def versions() -> dict[str, str]:
    from importlib import metadata

    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


@pytest.fixture
def record(request):
    """``record(measured, target, met, **numbers)`` writes this benchmark's outcome.

    One JSON per test under ``benchmarks/results/<file>/``, with the machine, its load, the
    library versions and the date; ``benchmarks/render.py`` (run by ``make bench``) turns them
    into RESULTS.md, so every figure there comes from a run of the committed benchmarks.
    ``met`` is None for a measurement that has no target (context only).
    """
    module = Path(request.node.fspath).stem
    name = request.node.name

    def write(measured: str, target: str = "", met: bool | None = None, **numbers) -> None:
        folder = RESULTS_DIR / module
        folder.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        entry = {"benchmark": module, "test": name, "measured": measured, "target": target,
                 "met": met, "numbers": numbers, "machine": cpu(),
                 "load": round(os.getloadavg()[0], 1), "versions": versions(),
                 "date": datetime.date.today().isoformat()}
        tmp = folder / f".{safe}.json.tmp"
        tmp.write_text(json.dumps(entry, indent=1, default=float) + "\n")
        tmp.replace(folder / f"{safe}.json")

    return write
