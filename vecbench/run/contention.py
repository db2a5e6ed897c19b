"""Is the machine busy while a timing is taken? Measured, not guessed.

A sampler thread reads ``/proc/stat`` (runnable threads, CPU steal) and the load average every
:data:`PERIOD` seconds while a timing runs; with this process's CPU time against the wall time
that gives the figures a record keeps beside the timing:

    cores            CPUs of the machine
    load_1m          load average at the start, and its largest value while sampling
    runnable_median  threads ready to run, machine-wide (this sampler left out), median and max
    runnable_max
    over_share       share of samples with more runnable threads than cores
    steal_share      CPU time the hypervisor gave to other guests, of all CPU time
    cpu_s, wall_s    this process's CPU seconds (every thread) and the wall seconds
    contended        over_share >= CONTENDED_SHARE: a queue for the cores during the timing,
                     so latencies include time spent waiting for a core

Linux only; elsewhere the figures are empty and nothing is flagged. Hand-written: psutil would
add a dependency for two /proc reads.
"""

from __future__ import annotations

import os
import statistics
import threading
import time

PERIOD = 0.1
#: A timing with more runnable threads than cores in this share of its samples is contended.
CONTENDED_SHARE = 0.25


def snapshot() -> dict | None:
    """Runnable threads (this one left out), CPU jiffies (total, steal) and load averages now."""
    try:
        with open("/proc/stat") as handle:
            text = handle.read()
        load = os.getloadavg()
    except OSError:
        return None
    runnable, total, steal = 0, 0, 0
    for line in text.splitlines():
        if line.startswith("cpu "):
            fields = [int(v) for v in line.split()[1:]]
            total = sum(fields[:8])   # guest time is counted in user already
            steal = fields[7] if len(fields) > 7 else 0
        elif line.startswith("procs_running"):
            runnable = int(line.split()[1]) - 1
    return {"runnable": runnable, "total": total, "steal": steal, "load_1m": load[0],
            "load_5m": load[1], "at": time.perf_counter(), "cpu": time.process_time()}


class Sampler:
    """``with Sampler() as sampler: ...`` then ``sampler.figures()``."""

    def __init__(self, period: float = PERIOD):
        self.period, self._samples = period, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            sample = snapshot()
            if sample is not None:
                self._samples.append(sample)
            if self._stop.wait(self.period):
                return

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        last = snapshot()
        if last is not None:
            self._samples.append(last)

    def figures(self) -> dict:
        return figures(self._samples)


def figures(samples: list[dict]) -> dict:
    """The figures of the module docstring from a list of snapshots (empty without two)."""
    if len(samples) < 2:
        return {}
    cores = os.cpu_count() or 1
    first, last = samples[0], samples[-1]
    runnable = [s["runnable"] for s in samples]
    jiffies = last["total"] - first["total"]
    over = sum(r > cores for r in runnable) / len(runnable)
    wall = last["at"] - first["at"]
    return {"cores": cores, "load_1m": round(first["load_1m"], 2),
            "load_1m_max": round(max(s["load_1m"] for s in samples), 2),
            "runnable_median": float(statistics.median(runnable)),
            "runnable_max": int(max(runnable)), "over_share": round(over, 3),
            "steal_share": round((last["steal"] - first["steal"]) / jiffies, 4) if jiffies
            else 0.0,
            "cpu_s": round(last["cpu"] - first["cpu"], 4), "wall_s": round(wall, 4),
            "contended": over >= CONTENDED_SHARE}


def before() -> dict:
    """The machine as a unit starts: load averages, runnable threads, memory."""
    sample = snapshot()
    if sample is None:
        return {}
    return {"cores": os.cpu_count() or 1, "load_1m": round(sample["load_1m"], 2),
            "load_5m": round(sample["load_5m"], 2), "runnable": sample["runnable"],
            "memory_bytes": _mem_total()}


def _mem_total() -> int | None:
    """The machine's memory (MemTotal), for the price of a GB of it."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
