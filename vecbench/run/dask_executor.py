"""Units on a Dask distributed cluster: an existing one by address, or a local one.

``vecbench run exp.yaml --scheduler tcp://HOST:PORT`` (or ``VECBENCH_SCHEDULER``) connects to a
running scheduler (``dask scheduler`` + ``dask worker``, dask-jobqueue's ``SLURMCluster``,
dask-kubernetes); ``--executor dask`` without an address starts a ``LocalCluster`` of worker
processes, one unit at a time each. Workers read datasets from ``VECBENCH_DATA`` on their own
machine and return each unit's outcome (record and raw arrays) to the client, which alone writes
records.

Each unit runs in a process of its own that its Dask worker starts and waits for
(:func:`vecbench.run.workers.run_alone`, as units run locally): a segfault, an abort or an OOM
kill is that unit's ``crash`` record naming the signal, and the Dask worker goes on with the
next unit; engines load only in the unit's process. ``--in-process`` runs units in the Dask
worker's own process instead. A unit whose Dask worker dies is run again on another worker
(the scheduler allows a unit three lost workers before it gives up, and the unit is then
recorded as ``crash``); a task that raises is retried ``retries`` times; the record of a unit
that ran again names the workers lost while it was assigned to them, running or queued
(``lost_workers``). Ctrl-C cancels every pending unit.

Waits are bounded: a scheduler that goes away, or a cluster left without a worker for
:data:`NO_WORKER_S` seconds (``$VECBENCH_DASK_NO_WORKER_S``), ends the run with one line naming
the scheduler (records already written are kept; the next run resumes), and a run without a
worker says so every :data:`REPORT_S` seconds meanwhile.
"""

from __future__ import annotations

import os
from typing import Callable, Iterator

from vecbench.core.cluster import Relay
from vecbench.core.errors import ConfigError, VecbenchError
from vecbench.core.params import parse_number
from vecbench.run.tasks import Task, execute
from vecbench.run.records import Outcome
from vecbench.core.environment import cpu_count
from vecbench.run.stages import _failed
from vecbench.run import workers as unit_workers

#: Times the scheduler reruns a unit whose worker died or whose task raised.
RETRIES = 3
#: Seconds a run waits for a cluster without any worker before it stops.
NO_WORKER_S = 120.0
#: Seconds between the checks of the cluster, and between lines while it has no worker.
POLL_S = 0.5
REPORT_S = 30.0


class ClusterLost(VecbenchError):
    """The cluster cannot go on (scheduler gone, no worker): one line, records kept."""


def _run_on_worker(task: Task, isolated: bool = True) -> Outcome:
    """The task body on a worker: the unit in a process of its own (or, not ``isolated``,
    here); the worker's address is recorded as ``worker``."""
    from distributed import get_worker

    address = get_worker().address
    if not isolated:
        return execute(task, worker=address)
    return unit_workers.run_alone(task, address, Relay())


def _lost(task: Task, exc: BaseException) -> Outcome:
    """A unit the cluster could not run (its workers kept dying, say) as a ``crash`` record."""
    import time


    reason = f"the Dask cluster could not run this unit: {type(exc).__name__}: {exc}"
    outcome = _failed(task.unit, task.threads, "crash", " ".join(reason.split()), "dask",
                      time.time(), "dask")
    outcome.record.unit.key = task.key
    return outcome


class DaskExecutor:
    """``map`` submits every task to the cluster and yields outcomes as they complete."""

    name = "dask"

    def __init__(self, address: str | None = None, *, workers: int | None = None,
                 threads: int = 1, retries: int = RETRIES, connect_timeout: str = "20s",
                 log: Callable[[str], None] = print, isolated: bool = True):
        wait = os.environ.get("VECBENCH_DASK_NO_WORKER_S")  # checked before a cluster starts
        self.no_worker_s = (parse_number("VECBENCH_DASK_NO_WORKER_S", wait, "number", 1.0, 86400.0)
                            if wait else NO_WORKER_S)
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError("--executor dask needs dask distributed; expected it installed "
                              "(pip install 'dask[distributed]')") from None
        self.retries = retries
        self.isolated = isolated   # each unit in a process of its own under its Dask worker
        self._cluster = None
        if address:
            try:
                self._client = Client(address, timeout=connect_timeout)
            except (OSError, TimeoutError, ValueError) as exc:
                raise ConfigError(f"--scheduler {address}: cannot connect to a Dask scheduler "
                                  f"({exc}); expected the address of a running one, "
                                  "e.g. tcp://HOST:8786") from None
        else:
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
        self.address = address or self._cluster.scheduler_address
        self.log = log
        #: unit key -> addresses of the workers that were lost while running it
        self.lost: dict[str, list[str]] = {}
        self._client.subscribe_topic("all", self._on_event)
        log(f"dask: scheduler {self.address}, {self.workers} workers, "
            f"dashboard {self._client.dashboard_link}")

    def _on_event(self, event) -> None:
        """The scheduler removed a worker: note the units it was running or had queued (they
        run again elsewhere)."""
        _, message = event
        if isinstance(message, dict) and message.get("action") == "remove-worker":
            for key in message.get("processing-tasks", ()):
                self.lost.setdefault(str(key), []).append(str(message.get("worker")))

    @property
    def client(self):
        return self._client

    def map(self, tasks: list[Task]) -> Iterator[tuple[Task, Outcome]]:
        if self.isolated and tasks:   # the workers' fork servers import while units are sent
            self._client.run(unit_workers.warm)   # (not on a rerun with nothing to run)
        futures = {}
        for task in tasks:
            # pure=False: a unit is timed, its result must never be taken from another run
            future = self._client.submit(_run_on_worker, task, self.isolated,
                                         key=f"unit-{task.key}", pure=False,
                                         retries=self.retries)
            futures[future] = task
        pending = set(futures)
        watch = _NoWorkerWatch(self)
        try:
            while pending:
                for future in self._next_done(pending, watch):
                    pending.discard(future)
                    yield futures[future], self._outcome(future, futures[future])
        finally:
            if pending and self._client.status == "running":
                self._client.cancel(list(pending), force=True)

    def _next_done(self, pending: set, watch: "_NoWorkerWatch") -> set:
        """The futures done within :data:`POLL_S` seconds; a lost scheduler or a cluster
        without workers for too long is :class:`ClusterLost`."""
        from concurrent.futures import CancelledError   # distributed's are of this kind

        from distributed import wait

        lost = False
        try:
            done = wait(list(pending), timeout=POLL_S, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            done = set()
        except CancelledError as exc:   # every future cancelled at once: the scheduler went
            done, lost = set(), "connection-lost" in str(exc)
        lost = lost or any(f.cancelled() and "connection-lost" in _cancel_reason(f)
                           for f in done)
        if lost or self._client.status != "running":
            raise self._gone(len(pending), "the connection to it was lost (scheduler stopped "
                             "or killed?)")
        if not done:
            watch.check(len(pending))
        return done

    def _outcome(self, future, task: Task) -> Outcome:
        try:
            outcome = future.result()
        except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: kept as a record
            outcome = _lost(task, exc)
        lost = self.lost.get(future.key)
        if lost:
            outcome.record.lost_workers = lost
            then = f"run again on {outcome.record.worker}" if outcome.status == "ok" \
                else f"recorded as {outcome.status}"
            outcome.record.warnings.append(
                f"unit {task.key}: Dask worker(s) {', '.join(lost)} lost with this unit assigned "
                f"to it; {then}")
        return outcome

    def _gone(self, pending: int, what: str) -> ClusterLost:
        import logging

        # its attempts to reconnect would print tracebacks after the one line
        logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
        return ClusterLost(f"dask: scheduler {self.address}: {what}; {pending} units not run "
                           "(records already written are kept; run again to resume them)")

    def close(self) -> None:
        try:
            self._client.close(timeout=5)
        finally:
            if self._cluster is not None:
                self._cluster.close(timeout=5)


class _NoWorkerWatch:
    """How long the cluster has had no worker: a line every :data:`REPORT_S` seconds, and
    :class:`ClusterLost` after ``no_worker_s``."""

    def __init__(self, executor: DaskExecutor):
        import time

        self.executor, self.clock = executor, time.monotonic
        self.since: float | None = None
        self.reported = 0.0

    def check(self, pending: int) -> None:
        executor = self.executor
        try:
            workers = len(executor.client.scheduler_info()["workers"])
        except (OSError, TimeoutError) as exc:
            raise executor._gone(pending, f"unreachable ({type(exc).__name__})") from None
        if workers:
            self.since = None
            return
        now = self.clock()
        if self.since is None:
            self.since = self.reported = now
            executor.log(f"dask: no worker connected to scheduler {executor.address}; "
                         f"waiting up to {executor.no_worker_s:.0f} s for one "
                         f"({pending} units to run)")
        elif now - self.since > executor.no_worker_s:
            raise executor._gone(pending, f"no worker connected for "
                                 f"{executor.no_worker_s:.0f} s (all workers gone?)")
        elif now - self.reported >= REPORT_S:
            self.reported = now
            executor.log(f"dask: still no worker connected to scheduler {executor.address} "
                         f"after {now - self.since:.0f} s ({pending} units to run)")


def _cancel_reason(future) -> str:
    try:
        future.result(timeout=0)
    except Exception as exc:  # noqa: BLE001 - FutureCancelledError names its reason
        return str(exc)
    return ""


def scheduler_address(option: str | None) -> str | None:
    """``--scheduler``, else ``$VECBENCH_SCHEDULER``, else None (start a local cluster)."""
    return option or os.environ.get("VECBENCH_SCHEDULER") or None
