"""How searches are timed: what a QPS or a latency in a row means.

- Batch: a warm-up search over the whole query set (whose ids are the row's results), then timed
  passes until ``min_seconds`` of measured time and at least ``min_passes`` passes; every pass is
  kept, QPS is the query count over the median pass, its spread (max - min) / median.
- Single queries: one query per call, over at most ``latency_queries`` queries and
  ``latency_seconds``; p50/p95/p99 from every call.
  The single-query loop runs on one thread (:func:`one_query_threads`).
- Concurrent clients (``search: {clients: N}``): N threads issue single queries for
  ``client_seconds``; QPS is what they completed over the wall time, latencies every call's.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Timing:
    """How long timings run: see the module docstring. From the experiment's ``timing:``."""

    min_seconds: float = 1.0
    min_passes: int = 5
    latency_queries: int = 1000
    latency_seconds: float = 2.0
    client_seconds: float = 2.0   # how long N concurrent clients issue queries


def time_batch(search: Callable[[], np.ndarray], timing: Timing) -> tuple[Any, np.ndarray]:
    """The warm-up call's result, then every timed pass (seconds)."""
    result = search()
    passes: list[float] = []
    while len(passes) < timing.min_passes or sum(passes) < timing.min_seconds:
        start = time.perf_counter()
        search()
        passes.append(time.perf_counter() - start)
    return result, np.asarray(passes)


def time_single_queries(search: Callable, n_queries: int, k: int, timing: Timing) -> np.ndarray:
    """Seconds per query, one query per call, over at most ``latency_queries`` queries and
    ``latency_seconds`` (at least one query)."""
    n = min(n_queries, timing.latency_queries)
    seconds = np.empty(n)
    deadline = time.perf_counter() + timing.latency_seconds
    for i in range(n):
        start = time.perf_counter()
        search(slice(i, i + 1), k)
        seconds[i] = time.perf_counter() - start
        if start > deadline:
            return seconds[:i + 1]
    return seconds


def time_clients(search: Callable, n_queries: int, k: int, clients: int,
                 seconds: float) -> tuple[np.ndarray, float]:
    """``clients`` threads each issue single queries (cycling through the query set) for
    ``seconds``, as the users of a service do; returns every query's latency and the wall time.
    Threads, not processes: faiss, hnswlib and database clients release the GIL while they
    search, so the threads overlap as separate client processes would."""
    import threading

    latencies: list[list[float]] = [[] for _ in range(clients)]
    start_barrier = threading.Barrier(clients + 1)
    stop = threading.Event()
    failures: list[BaseException] = []  # a client's error ends the run and is raised here

    def client(i: int) -> None:
        start_barrier.wait()
        j = i
        try:
            while not stop.is_set():
                row = j % n_queries
                t0 = time.perf_counter()
                search(slice(row, row + 1), k)
                latencies[i].append(time.perf_counter() - t0)
                j += clients
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            failures.append(exc)
            stop.set()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    start_barrier.wait()
    begin = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - begin
    if failures:
        raise failures[0]
    return np.asarray([t for per_client in latencies for t in per_client]), wall


@contextmanager
def one_query_threads(index, threads: int | None):
    """Searchers made inside run a single query on one thread: faiss's OpenMP, BLAS and the
    index's own ``threads`` (hnswlib and usearch start that many threads even for one row, and
    on a busy machine a parallel region waits for a descheduled thread: a 2 ms query read
    48 ms). One thread is what helps one query in every built-in index; engines behind a server
    (pgvector) decide their own. ``threads`` (the unit's) is restored after."""
    from vecbench.core import environment

    declared = getattr(index, "threads", None)
    pinned = "threads" in getattr(index, "get_params", lambda: {})()
    environment.set_threads(1)
    if pinned:
        index.threads = 1
    try:
        yield
    finally:
        if pinned:
            index.threads = declared
        if threads is not None:
            environment.set_threads(threads)
