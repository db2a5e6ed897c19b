"""Units on a Dask distributed cluster: an existing one by address, or a local one.

``vecbench run exp.yaml --scheduler tcp://HOST:PORT`` (or ``VECBENCH_SCHEDULER``) connects to a
running scheduler (``dask scheduler`` + ``dask worker``, dask-jobqueue's ``SLURMCluster``,
dask-kubernetes); ``--executor dask`` without an address starts a ``LocalCluster`` of worker
processes, one unit at a time each. Workers read datasets from ``VECBENCH_DATA`` on their own
machine and return each unit's outcome (record and raw arrays) to the client, which alone writes
records. A unit whose worker dies is run again on another worker (the scheduler allows a unit
three lost workers before it gives up, and the unit is then recorded as ``crash``); a task that
raises is retried ``retries`` times. Ctrl-C cancels every pending unit.
"""

from __future__ import annotations

import os
from typing import Callable, Iterator

from vecbench.core.errors import ConfigError
from vecbench.run.tasks import Task, execute
from vecbench.run.records import Outcome

#: Times the scheduler reruns a unit whose worker died or whose task raised.
RETRIES = 3


def _run_on_worker(task: Task) -> Outcome:
    """The task body on a worker: the worker's address is recorded as ``worker``."""
    from distributed import get_worker

    return execute(task, worker=get_worker().address)


def _lost(task: Task, exc: BaseException) -> Outcome:
    """A unit the cluster could not run (its workers kept dying, say) as a ``crash`` record."""
    import time

    from vecbench.run.stages import _failed

    reason = f"the Dask cluster could not run this unit: {type(exc).__name__}: {exc}"
    outcome = _failed(task.unit, task.threads, "crash", " ".join(reason.split()), "dask",
                      time.time(), "dask")
    outcome.record["key"] = task.key
    return outcome


class DaskExecutor:
    """``map`` submits every task to the cluster and yields outcomes as they complete."""

    name = "dask"

    def __init__(self, address: str | None = None, *, workers: int | None = None,
                 threads: int = 1, retries: int = RETRIES, connect_timeout: str = "20s",
                 log: Callable[[str], None] = print):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError("--executor dask needs dask distributed; expected it installed "
                              "(pip install 'dask[distributed]')") from None
        self.retries = retries
        self._cluster = None
        if address:
            try:
                self._client = Client(address, timeout=connect_timeout)
            except (OSError, TimeoutError, ValueError) as exc:
                raise ConfigError(f"--scheduler {address}: cannot connect to a Dask scheduler "
                                  f"({exc}); expected the address of a running one, "
                                  "e.g. tcp://HOST:8786") from None
        else:
            from vecbench.core.environment import cpu_count

            n = workers or max(1, cpu_count() // max(threads, 1))
            # one unit at a time per worker process; the unit sets its own BLAS/index threads
            self._cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                         dashboard_address=":0")
            self._client = Client(self._cluster)
        info = self._client.scheduler_info()
        hosts = [w.get("host") for w in info.get("workers", {}).values()]
        self.workers = max(1, len(hosts))
        #: the most workers sharing one machine: their timings are contended when > 1
        self.workers_per_host = max([hosts.count(h) for h in hosts] or [1])
        where = address or self._cluster.scheduler_address
        log(f"dask: scheduler {where}, {self.workers} workers, "
            f"dashboard {self._client.dashboard_link}")

    @property
    def client(self):
        return self._client

    def map(self, tasks: list[Task]) -> Iterator[tuple[Task, Outcome]]:
        from distributed import as_completed

        futures = {}
        for task in tasks:
            # pure=False: a unit is timed, its result must never be taken from another run
            future = self._client.submit(_run_on_worker, task, key=f"unit-{task.key}",
                                         pure=False, retries=self.retries)
            futures[future] = task
        try:
            for future in as_completed(futures):
                task = futures[future]
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: kept as a record
                    outcome = _lost(task, exc)
                yield task, outcome
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:
                self._client.cancel(pending, force=True)

    def close(self) -> None:
        try:
            self._client.close(timeout=5)
        finally:
            if self._cluster is not None:
                self._cluster.close(timeout=5)


def scheduler_address(option: str | None) -> str | None:
    """``--scheduler``, else ``$VECBENCH_SCHEDULER``, else None (start a local cluster)."""
    return option or os.environ.get("VECBENCH_SCHEDULER") or None
