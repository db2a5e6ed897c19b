"""``search: {arrival: {...}}``: the open-loop load of one search setting, checked without data.

    arrival:
      rate: [100, 500, 2000]   # queries per second offered, Poisson arrivals (a list: one row each)
      seconds: 10              # how long queries arrive at each rate
      clients: [1, 4]          # client processes sending them (0: the bare loop, no processes)
      p99_ms_max: 20           # the bound a sustainable rate keeps its p99 response time under
      drain_seconds: 2         # after the arrivals, how long answers are still awaited

Stdlib only: ``vecbench validate`` checks these without numpy. The load itself is
:mod:`vecbench.run.arrival`.
"""

from __future__ import annotations

import os
from typing import Any

from vecbench.core.errors import ConfigError
from vecbench.core.params import check_float, check_int, check_no_extra

KEYS = ("rate", "seconds", "clients", "p99_ms_max", "drain_seconds")
#: Queries per second one setting may be offered: above it Python's own clock and pipes are the
#: measurement, not the index.
MAX_RATE = 1_000_000.0
#: Seconds of arrivals (and of draining) per rate: longer measures nothing a minute does not,
#: and an infinite one would hang the run.
MAX_SECONDS = 3600.0
DEFAULT_P99_MS_MAX = 100.0
DEFAULT_DRAIN_SECONDS = 2.0
#: Memory a client process takes (a Python interpreter with the stdlib client loaded).
CLIENT_BYTES = 30 * 2**20


def max_client_processes() -> int:
    """How many client processes this machine can start: the user's process limit less the
    processes it already runs, and the memory available at ~30 MiB each."""
    limits = [256]
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NPROC)[0]
        if soft != resource.RLIM_INFINITY:
            limits.append(max(0, soft - _user_processes()))
    except (ImportError, OSError, ValueError):
        pass
    available = _mem_available()
    if available is not None:
        limits.append(available // CLIENT_BYTES)
    return max(0, min(limits))


def _user_processes() -> int:
    """This user's processes and threads (what RLIMIT_NPROC counts), from /proc."""
    uid, count = os.getuid(), 0
    try:
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    if os.stat(f"/proc/{name}").st_uid == uid:
                        count += 1
                except OSError:
                    continue
    except OSError:
        return 0
    return count


def _mem_available() -> int | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check(value: Any) -> dict:
    """One expanded ``arrival:`` mapping, checked; ConfigError paths are relative to it."""
    if not isinstance(value, dict):
        raise ConfigError(f"expected a mapping with keys {', '.join(KEYS)}, got {value!r}", "")
    check_no_extra("arrival", value, KEYS)
    for key in ("rate", "seconds"):
        if key not in value:
            raise ConfigError(f"expected a value (arrival needs {key}), got nothing", key)
    out = {"rate": check_float("rate", value["rate"], 0.0, MAX_RATE, low_open=True),
           "seconds": check_float("seconds", value["seconds"], 0.0, MAX_SECONDS, low_open=True),
           "clients": check_int("clients", value.get("clients", 1), 0, 256),
           "p99_ms_max": check_float("p99_ms_max", value.get("p99_ms_max", DEFAULT_P99_MS_MAX),
                                     0.0, 1e6, low_open=True),
           "drain_seconds": check_float("drain_seconds",
                                        value.get("drain_seconds", DEFAULT_DRAIN_SECONDS),
                                        0.0, MAX_SECONDS)}
    if out["clients"] > 0:
        most = max_client_processes()
        if out["clients"] > most:
            raise ConfigError(f"expected at most the {most} client processes this machine can "
                              f"start (process limit and available memory), got "
                              f"{out['clients']}", "clients")
    return out
