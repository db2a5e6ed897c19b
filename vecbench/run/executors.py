"""Where units run: each in a worker process of its own (the default, :mod:`vecbench.run.workers`),
in this process, or in a pool of long-lived local processes (``--in-process``).

An executor takes tasks and yields ``(task, outcome)`` as units finish, in any order; it never
writes anything: the caller (the runner) writes each record as it arrives, so workers need no
shared results folder and a distributed engine plugs in by implementing the same two methods.
Interrupting the iteration (Ctrl-C) cancels what has not started.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Iterator, Protocol

from vecbench.run.experiment import BuildUnit
from vecbench.run.records import Outcome


@dataclass(frozen=True)
class Task:
    unit: BuildUnit
    key: str
    threads: int
    contended: bool = False


def execute(task: Task, worker: str | None = None, on_stage=None) -> Outcome:
    """Run one unit wherever this is called; the outcome carries its key and the unit's peak
    RSS (in a shared process, the peak since the unit started, which may include memory
    earlier units left behind)."""
    from vecbench.core import environment
    from vecbench.run import stages

    worker = worker or f"{socket.gethostname()}:{os.getpid()}"
    environment.reset_peak_rss()
    outcome = stages.run_unit(task.unit, task.threads, contended=task.contended, worker=worker,
                              on_stage=on_stage)
    outcome.record["key"] = task.key
    outcome.record["peak_rss_bytes"] = environment.peak_rss_bytes()
    return outcome


class Executor(Protocol):
    name: str

    def map(self, tasks: list[Task]) -> Iterator[tuple[Task, Outcome]]: ...

    def close(self) -> None: ...


class InProcess:
    """One unit after another in this process (caches shared by every unit)."""

    name = "in-process"

    def map(self, tasks: list[Task]) -> Iterator[tuple[Task, Outcome]]:
        for task in tasks:
            yield task, execute(task, worker="local")

    def close(self) -> None:
        pass


class LocalProcesses:
    """``jobs`` worker processes on this machine (spawned: OpenMP in a forked child can hang)."""

    name = "processes"

    def __init__(self, jobs: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.jobs = jobs
        self._pool = ProcessPoolExecutor(max_workers=jobs,
                                         mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_exit_with_parent,
                                         initargs=(os.getpid(),))

    def map(self, tasks: list[Task]) -> Iterator[tuple[Task, Outcome]]:
        from concurrent.futures import as_completed

        futures = {self._pool.submit(execute, task): task for task in tasks}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            for future in futures:
                future.cancel()

    def close(self) -> None:
        """Stop now: pending units are cancelled and running workers terminated."""
        processes = list(getattr(self._pool, "_processes", {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)


def _exit_with_parent(parent: int | None = None) -> None:
    """A worker ends by itself when the process that started it is gone (killed, not only
    stopped cleanly): a daemon thread watches the parent's pid."""
    import signal
    import threading
    import time

    # the pid is passed in: a worker that starts after its parent died would read pid 1 here
    parent = parent or os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _die_with_parent() -> None:
    """On Linux, ask the kernel to SIGKILL this worker when its parent dies: it works even
    while the worker's main thread is blocked in C code holding the GIL (where the watching
    thread of :func:`_exit_with_parent` cannot run). Elsewhere the thread alone does it."""
    import ctypes
    import ctypes.util
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def make(jobs: int = 1, isolated: bool = True) -> Executor:
    """Isolated workers (a crash is a record), or, for debugging, this process (``jobs`` 1) or
    a pool of long-lived processes."""
    if isolated:
        from vecbench.run.workers import Isolated

        return Isolated(jobs)
    return LocalProcesses(jobs) if jobs > 1 else InProcess()


EXECUTORS = ("local", "processes", "dask")


@dataclass
class Choice:
    """The executor a run uses and what the runner needs to know of it."""

    executor: Executor | None   # None: the runner's default for ``jobs`` and ``isolated``
    jobs: int                   # units running at once on one host (timings contended if > 1)
    threads: int | None         # threads per unit (None: the runner splits the cores)
    isolated: bool = True       # each unit in a worker process of its own


def choose(name: str | None, scheduler: str | None, jobs: int, threads: int | None,
           log=print, in_process: bool = False) -> Choice:
    """``--executor``/``--scheduler``/``$VECBENCH_SCHEDULER``/``--jobs``/``--in-process`` as
    an executor.

    An address (option or environment) means Dask unless ``--executor`` says otherwise; Dask
    without an address starts a local cluster of ``--jobs`` workers (default: one per core,
    or cores / ``--threads``). Dask units use ``--threads`` threads, 1 by default. Units run
    in worker processes of their own unless ``--in-process`` or ``--executor local`` (this
    process) asks otherwise; Dask units run in the Dask worker's process.
    """
    from vecbench.run.dask_executor import DaskExecutor, scheduler_address
    from vecbench.core.errors import ConfigError

    if name is not None and name not in EXECUTORS:
        raise ConfigError(f"--executor: expected one of {', '.join(EXECUTORS)}, got {name!r}")
    if scheduler and name not in (None, "dask"):
        raise ConfigError(f"--scheduler {scheduler}: a scheduler address runs units on Dask; "
                          f"expected --executor dask or no --executor, got --executor {name}")
    address = scheduler_address(scheduler) if name in (None, "dask") else None
    if name == "dask" or address:
        executor = DaskExecutor(address, workers=jobs if jobs > 1 else None,
                                threads=threads or 1, log=log)
        return Choice(executor, executor.workers_per_host, threads or 1, False)
    if name == "local" and jobs > 1:
        raise ConfigError(f"--jobs {jobs}: --executor local runs one unit at a time; expected "
                          "--executor processes (or no --executor) for parallel units")
    return Choice(None, jobs, threads, isolated=not in_process and name != "local")
