"""A unit as a task: what an executor runs (:class:`Task`) and how it runs it (:func:`execute`),
wherever that is: this process, a worker process, a Dask worker.

Also what every worker process does first: end with the process that started it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from vecbench.core import environment
from vecbench.run import library_output, stages
from vecbench.run.experiment import BuildUnit
from vecbench.run.records import Outcome


@dataclass(frozen=True)
class Task:
    unit: BuildUnit
    key: str
    threads: int
    contended: bool = False


def execute(task: Task, worker: str | None = None, on_stage=None,
            capture_fd: bool = False) -> Outcome:
    """Run one unit wherever this is called; the outcome carries its key, the unit's peak
    RSS (in a shared process, the peak since the unit started, which may include memory
    earlier units left behind) and its libraries' warnings (``library_output``; with
    ``capture_fd``, what they wrote to fd 2 too: for a process running one unit at a time)."""
    worker = worker or f"{socket.gethostname()}:{os.getpid()}"
    environment.reset_peak_rss()
    with library_output.heard(capture_fd) as heard:
        outcome = stages.run_unit(task.unit, task.threads, contended=task.contended,
                                  worker=worker, on_stage=on_stage)
    outcome.record.unit.key = task.key
    outcome.record.library_output = heard.lines
    outcome.record.peak_rss_bytes = environment.peak_rss_bytes()
    return outcome


def _exit_with_parent(parent: int | None = None) -> None:
    """A worker ends by itself when the process that started it is gone (killed, not only
    stopped cleanly): a daemon thread watches the parent's pid."""
    import signal
    import threading
    import time

    # the pid is passed in: a worker that starts after its parent died would read pid 1 here
    parent = parent or os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # SIGKILL from the kernel when the parent dies, even while blocked in C holding the GIL
    environment.signal_when_parent_dies(signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
