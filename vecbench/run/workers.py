"""Each unit in a process of its own, so that a native library's crash is data.

A unit's worker is a fresh process that runs that one unit and ends: a worker that crashed never
runs another unit, and engines that clash in one process (faiss used after usearch segfaults)
never run in the same one. Locally a worker is forked from a fork server that has imported
vecbench's core, scikit-learn and faiss (imports only: no OpenMP region has run there, so
forking is safe), so a unit starts in milliseconds; hnswlib, usearch and the engines load only
in the worker that uses them, and the runner itself imports none of them. On Dask, the Dask
worker's task starts the unit's process the same way, from a fork server of its own, and waits
for it (:func:`run_alone`): the unit's shared work (locks, fits and cache entries handed
through the scheduler) goes through that Dask worker's connection to the cluster
(:class:`vecbench.core.cluster.Relay`), and a unit that crashes leaves the Dask worker
running.

The worker writes its stdout and stderr to a file (faulthandler adds the Python stack of a
native crash there) and its outcome to a pickle. A worker ended by a signal (a segfault, an
abort, an OOM kill) becomes a ``crash`` record naming the signal, with the last stderr lines.
Ctrl-C is the parent's to handle: workers ignore SIGINT and are stopped by the parent (SIGTERM,
which runs the unit's ``finally`` blocks, then SIGKILL); they die with the parent.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from vecbench.core import atomic, cluster
from vecbench.run import library_output
from vecbench.run.tasks import Task, execute
from vecbench.run.records import Outcome
from vecbench.run.tasks import _exit_with_parent
from vecbench.run.stages import _failed
from vecbench.datasets import mapped

#: Lines of a crashed worker's stderr kept in its record, and characters of each (faulthandler
#: lists every extension module on one line).
STDERR_LINES = 20
LINE_CHARS = 300
#: Seconds a worker gets to end after SIGTERM before it is killed.
STOP_GRACE = 1.0
#: What the fork server imports once for every worker: vecbench's core, the thread-free
#: scientific stack (scikit-learn alone takes ~0.9 s to import on a busy core) and faiss, which
#: every unit imports anyway (thread settings, exact kNN: 0.35 s each). Importing runs no
#: OpenMP region, so forking stays safe; hnswlib, usearch and the engines load only in the
#: workers that use them.
PRELOAD = ["vecbench.run.workers", "vecbench.run.stages", "sklearn.datasets", "sklearn.decomposition",
           "faiss"]
#: Why a worker ended, by signal; the record's reason starts with the signal's name.
SIGNALS = {"SIGSEGV": "segmentation fault", "SIGABRT": "aborted", "SIGILL": "illegal instruction",
           "SIGKILL": "killed (out of memory?)", "SIGBUS": "bus error",
           "SIGFPE": "floating-point exception", "SIGTERM": "terminated"}


# ---------------------------------------------------------------------------------------------
# In the worker

def run_in_worker(task: Task, folder: str, env: dict, cwd: str, label: str | None = None,
                  relay=None) -> None:
    """The worker's body: output to ``folder``/stderr, the outcome to ``folder``/outcome.pkl.
    ``env`` and ``cwd`` are the runner's now (a fork server keeps those it started with);
    ``label`` names the worker in the record (a Dask worker's address; default host:pid);
    ``relay`` is the pipe to the Dask worker that reaches the cluster for this unit."""
    import faulthandler


    signal.signal(signal.SIGINT, signal.SIG_IGN)  # first: Ctrl-C is the runner's to handle
    try:
        out = os.open(os.path.join(folder, "stderr"), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                      0o644)
    except OSError:  # the runner stopped and removed its folder before this worker began
        os._exit(1)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    _exit_with_parent()  # dies with its parent, the fork server, which ends with the runner
    # SIGTERM from the parent stopping: unwind, so an engine's server goes with its unit
    signal.signal(signal.SIGTERM, _exit_on_term)
    faulthandler.enable()  # a native crash leaves the Python stack in stderr
    os.environ.clear()
    os.environ.update(env)
    os.environ["VECBENCH_WORKER_FOLDER"] = folder   # a SIGBUS is explained from what it maps
    os.chdir(cwd)
    if relay is not None:
        cluster.use_relay(relay)
    outcome = execute(task, worker=label,
                      on_stage=lambda name: _write(os.path.join(folder, "stage"), name))
    atomic.write_with(os.path.join(folder, "outcome.pkl"),
                      lambda handle: pickle.dump(outcome, handle, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.flush()
    sys.stderr.flush()


def _write(path: str, text: str) -> None:
    """Replace the file whole: the parent reads it while the unit runs."""
    atomic.write_text(path, text)


def _exit_on_term(signum, frame) -> None:
    raise SystemExit(128 + signum)


# ---------------------------------------------------------------------------------------------
# In the parent

@dataclass
class Worker:
    """A started worker: its task, process handle and folder."""

    task: Task
    process: Any          # multiprocessing.Process
    folder: Path
    started: float
    label: str | None = None   # the worker named in the record (default host:pid)

    @property
    def pid(self) -> int:
        return self.process.pid

    def returncode(self) -> int | None:
        return self.process.exitcode

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after :data:`STOP_GRACE` (a unit stuck in C code)."""
        for sig, grace in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, 5.0)):
            if self.returncode() is not None:
                return
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + grace
            while self.returncode() is None and time.monotonic() < deadline:
                time.sleep(0.02)


def _forkserver():
    """The multiprocessing context whose fork server has :data:`PRELOAD` imported."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


_AT_EXIT: list = []


def warm() -> None:
    """Start the fork server now: it imports :data:`PRELOAD` while the runner does its own
    work (keys, data checks) instead of while the first unit waits."""
    import atexit
    from multiprocessing import forkserver

    _forkserver()
    forkserver.ensure_running()
    if stop_server not in _AT_EXIT:  # left alone, it tears down scikit-learn and faiss after
        _AT_EXIT.append(stop_server)  # the runner exits: ~1 s of CPU taken from what runs next
        atexit.register(stop_server)


def stop_server() -> None:
    """End the fork server now (it ends by itself once the runner has exited, but slowly);
    its workers, if any, die with it."""
    from multiprocessing import forkserver

    server = forkserver._forkserver
    pid = getattr(server, "_forkserver_pid", None)
    if pid is None or not hasattr(server, "_stop"):
        return
    try:
        os.kill(pid, signal.SIGKILL)  # a server tearing down scikit-learn and faiss takes ~1 s
        server._stop()                # CPython's own (for its tests): reaps it, forgets it
    except OSError:
        pass


_DAEMON_FLAG = threading.Lock()


@contextmanager
def _may_start_children():
    """Let a daemonic process start workers: Dask's nanny starts its worker as one, and
    multiprocessing refuses children to those (it could not wait for them at exit). Their
    workers are daemonic too (the flag is inherited when the Process is made: terminated at the
    parent's exit) and die with it anyway (``_exit_with_parent``), so the flag is lifted while
    one starts."""
    import multiprocessing

    me = multiprocessing.current_process()
    with _DAEMON_FLAG:
        daemon = me.daemon
        if daemon:
            me.daemon = False
        try:
            yield
        finally:
            if daemon:
                me.daemon = True


def start(task: Task, folder: Path, label: str | None = None, relay=None) -> Worker:
    """Start one unit's worker, forked from the fork server."""
    folder.mkdir(parents=True)
    process = _forkserver().Process(target=run_in_worker, name=f"vecbench-{task.key}",
                                    args=(task, str(folder), dict(os.environ), os.getcwd(),
                                          label, relay))
    with _may_start_children():
        process.start()
    return Worker(task, process, folder, time.time(), label)


def run_alone(task: Task, label: str | None = None, relay: cluster.Relay | None = None) -> Outcome:
    """Run one unit in a worker of its own and wait for it here (a Dask worker's task),
    answering its ``relay`` requests meanwhile; its outcome, or a crash record."""
    from multiprocessing.connection import wait

    folder = Path(tempfile.mkdtemp(prefix="vecbench-workers-"))
    worker = None
    try:
        worker = start(task, folder / "unit", label, relay.child_end if relay else None)
        waiting = [worker.process.sentinel]
        if relay is not None:
            relay.child_end.close()   # the unit holds it now: its end closes when it ends
            waiting.append(relay.connection)
        while worker.process.sentinel not in wait(waiting):
            if not relay.answer():
                waiting.remove(relay.connection)
        worker.process.join()
        return outcome_of(worker)
    finally:
        if worker is not None:
            worker.stop()
        if relay is not None:
            relay.close()
        shutil.rmtree(folder, ignore_errors=True)


def outcome_of(worker: Worker) -> Outcome:
    """The unit's outcome once its worker ended: what it wrote, or a crash record."""
    code = worker.returncode()
    path = worker.folder / "outcome.pkl"
    if code == 0 and path.is_file():
        with open(path, "rb") as handle:
            outcome = pickle.load(handle)
        if outcome.status == "crash":  # a Python exception: what the unit printed may explain it
            outcome.record.stderr_tail = stderr_tail(worker.folder)
        outcome.record.library_output = library_output.merge(
            outcome.record.library_output,
            library_output.lines_of_file(worker.folder / "stderr"))
        return outcome
    return crashed(worker, code)


def crashed(worker: Worker, code: int | None) -> Outcome:
    """The record of a worker that ended without an outcome."""


    tail = stderr_tail(worker.folder)
    why = mapped.explain(worker.folder) if code == -signal.SIGBUS else None
    reason = f"{exit_reason(code)}{' reading a mapped file: ' + why if why else ''} " \
        f"(worker pid {worker.pid})"
    outcome = _failed(worker.task.unit, worker.task.threads, "crash",
                      "\n".join([*tail, reason]), _stage_of(worker.folder), worker.started,
                      worker.label or f"{_host()}:{worker.pid}")
    record = outcome.record
    record.unit.key, record.reason, record.stderr_tail, record.exit_code = \
        worker.task.key, reason, tail, code
    return outcome


def exit_reason(code: int | None) -> str:
    """``SIGSEGV: segmentation fault``, ``exit code 3``, and the like."""
    if code is None:
        return "worker lost"
    if code >= 0:
        return f"worker exited with code {code} before writing its outcome"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        return f"killed by signal {-code}"
    return f"{name}: {SIGNALS.get(name) or signal.strsignal(-code) or 'signal'}"


def _stage_of(folder: Path) -> str:
    """The stage the worker last said it entered."""
    return step_of(folder).split(" ", 1)[0]


def step_of(folder: Path) -> str:
    """What the worker last said it was doing: a stage, with the step within it
    (``search ef=64 (2/4)``)."""
    try:
        return (folder / "stage").read_text().strip() or "start"
    except OSError:
        return "start"


def stderr_tail(folder: Path, lines: int = STDERR_LINES) -> list[str]:
    try:
        with open(folder / "stderr", "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line.rstrip()[:LINE_CHARS] for line in text.splitlines() if line.strip()][-lines:]


def _host() -> str:
    import socket

    return socket.gethostname()


class Isolated:
    """Every unit in its own worker process, ``jobs`` at once; the default executor."""

    name = "isolated"

    def __init__(self, jobs: int = 1):
        self.jobs = max(1, jobs)
        self._folder = Path(tempfile.mkdtemp(prefix="vecbench-workers-"))
        self._running: list[Worker] = []
        self._started = 0

    def map(self, tasks: list[Task]) -> Iterator[tuple[Task, Outcome]]:
        from multiprocessing.connection import wait

        queue = deque(tasks)
        try:
            while queue or self._running:
                while queue and len(self._running) < self.jobs:
                    self._start(queue.popleft())
                ended = wait([w.process.sentinel for w in self._running])
                for worker in [w for w in self._running if w.process.sentinel in ended]:
                    worker.process.join()
                    self._running.remove(worker)
                    outcome = outcome_of(worker)
                    shutil.rmtree(worker.folder, ignore_errors=True)
                    yield worker.task, outcome
        except KeyboardInterrupt:  # nothing may outlive the run: workers, then their server
            self._stop_running()
            stop_server()
            raise
        finally:
            self._stop_running()

    def _start(self, task: Task) -> None:
        """Start a worker and know it: Ctrl-C meanwhile waits, so none starts unknown."""
        self._started += 1
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self._running.append(start(task, self._folder / str(self._started)))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def running(self) -> list[tuple]:
        """``(task, start time, step)`` of each unit running now, for the progress lines."""
        return [(w.task, w.started, step_of(w.folder)) for w in list(self._running)]

    @property
    def pids(self) -> list[int]:
        """The process ids of the workers running now."""
        return [worker.pid for worker in self._running]

    def _stop_running(self) -> None:
        for worker in self._running:  # signal them all first: they end together
            if worker.returncode() is None:
                try:
                    os.kill(worker.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for worker in self._running:
            worker.stop()
        self._running.clear()

    def close(self) -> None:
        self._stop_running()
        shutil.rmtree(self._folder, ignore_errors=True)

