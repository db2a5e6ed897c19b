"""Where units run: each in a worker process of its own (the default, :mod:`vecbench.run.workers`),
in this process, or in a pool of long-lived local processes (``--in-process``).

An executor takes tasks and yields ``(task, outcome)`` as units finish, in any order; it never
writes anything: the caller (the runner) writes each record as it arrives, so workers need no
shared results folder and a distributed engine plugs in by implementing the same two methods.
Interrupting the iteration (Ctrl-C) cancels what has not started.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Iterator, Protocol

from vecbench.core.errors import ConfigError
from vecbench.run.dask_executor import DaskExecutor, scheduler_address
from vecbench.run.records import Outcome
from vecbench.run.tasks import Task, _exit_with_parent, execute  # noqa: F401 (Task: the executors' unit)
from vecbench.run.workers import Isolated


class Executor(Protocol):
    name: str

    def map(self, tasks: list[Task]) -> Iterator[tuple[Task, Outcome]]: ...

    def close(self) -> None: ...


class InProcess:
    """One unit after another in this process (caches shared by every unit)."""

    name = "in-process"

    def __init__(self) -> None:
        self._current: tuple | None = None   # (task, start time, stage) of the running unit

    def map(self, tasks: list[Task]) -> Iterator[tuple[Task, Outcome]]:
        for task in tasks:
            started = time.time()
            self._current = (task, started, "start")

            def on_stage(name: str, task=task, started=started) -> None:
                self._current = (task, started, name)

            # fd 2 captured: this process runs one unit at a time, and the terminal stays clean
            outcome = execute(task, worker="local", on_stage=on_stage, capture_fd=True)
            self._current = None
            yield task, outcome

    def running(self) -> list[tuple]:
        """``(task, start time, stage)`` of the unit running now, for the progress lines."""
        current = self._current
        return [current] if current else []

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

        # one unit at a time per pool process: its fd 2 is the unit's while it runs
        futures = {self._pool.submit(execute, task, capture_fd=True): task for task in tasks}
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


def make(jobs: int = 1, isolated: bool = True) -> Executor:
    """Isolated workers (a crash is a record), or, for debugging, this process (``jobs`` 1) or
    a pool of long-lived processes."""
    if isolated:
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
    process) asks otherwise; on Dask, ``--in-process`` runs them in the Dask worker's process.
    """
    if name is not None and name not in EXECUTORS:
        raise ConfigError(f"--executor: expected one of {', '.join(EXECUTORS)}, got {name!r}")
    if scheduler and name not in (None, "dask"):
        raise ConfigError(f"--scheduler {scheduler}: a scheduler address runs units on Dask; "
                          f"expected --executor dask or no --executor, got --executor {name}")
    address = scheduler_address(scheduler) if name in (None, "dask") else None
    if name == "dask" or address:
        executor = DaskExecutor(address, workers=jobs if jobs > 1 else None,
                                threads=threads or 1, log=log, isolated=not in_process)
        return Choice(executor, executor.workers_per_host, threads or 1, not in_process)
    if name == "local" and jobs > 1:
        raise ConfigError(f"--jobs {jobs}: --executor local runs one unit at a time; expected "
                          "--executor processes (or no --executor) for parallel units")
    return Choice(None, jobs, threads, isolated=not in_process and name != "local")
