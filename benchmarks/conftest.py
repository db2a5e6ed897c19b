import os
import platform
import statistics
import time

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


def machine() -> str:
    """CPU model, core count and load: recorded with each result (the machine is shared)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{model}, {os.cpu_count()} cores, load {load:.1f}"
