"""What a run shows while it runs: a line per finished unit with a learned ETA, and a heartbeat
naming each running unit's step (``[3/16] running scifact float32 hnswlib(M=16) original r0 |
search ef=64 (2/4) | 2:10``) at least every 30 s, rewritten in place on a terminal.

The running units' steps come from the executor's ``running()`` (a worker reports each stage
and each search setting through ``run_unit``'s ``on_stage``; see :mod:`vecbench.run.workers`).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable, TextIO

from vecbench.core.params import parse_number
from vecbench.run.experiment import BuildUnit, Component, component_label

#: Seconds between heartbeats in a log (a terminal's line is redrawn every TERMINAL_SECONDS).
HEARTBEAT_SECONDS = 30.0
TERMINAL_SECONDS = 2.0
#: Set to change both (tests use a fraction of a second); bounded to these.
HEARTBEAT_ENV = "VECBENCH_HEARTBEAT_SECONDS"
HEARTBEAT_RANGE = (0.05, 3600.0)


def heartbeat_seconds(terminal: bool = False) -> float:
    """Seconds between heartbeats: ``$VECBENCH_HEARTBEAT_SECONDS`` when set, else the
    default for a terminal or a log; a value that is not a number in range is a ConfigError."""
    text = os.environ.get(HEARTBEAT_ENV, "").strip()
    if not text:
        return TERMINAL_SECONDS if terminal else HEARTBEAT_SECONDS
    return parse_number(HEARTBEAT_ENV, text, "number", *HEARTBEAT_RANGE)


def unit_label(unit: BuildUnit) -> str:
    """``digits pca(n_components=16) hnswlib(M=16) rescore(oversample=10,with=float32)
    original r0``: what tells a unit from the others of its experiment."""
    labels = unit.labels()
    build = ",".join(f"{k}={v}" for k, v in unit.index.build.items())
    index = f"{labels['index']}({build})" if build else labels["index"]
    parts = [component_label(unit.dataset), labels["pipeline"], index]
    if unit.index.rescore_grid != ({},):
        parts.append(rescore_label(unit.index.rescore_grid))
    return " ".join([*parts, labels["ordering"], f"r{unit.repeat}"])


def rescore_label(grid: tuple) -> str:
    """One rescoring, ``rescore(oversample=10,with=float32)``, or a sweep of them,
    ``rescore[none|oversample=10,with=float32]``."""
    labels = [component_label(Component("rescore", r)) if r else "none" for r in grid]
    if len(grid) == 1:
        return labels[0]
    return "rescore[" + "|".join(label.removeprefix("rescore(").removesuffix(")")
                                 for label in labels) + "]"


class Eta:
    """Seconds left in a run, learned from the units finished so far.

    A unit is described by a *kind*, ``(dataset entry, index, pipeline)``, and a *weight*, its
    number of search settings (search grid × rescorings): every setting is timed for about the
    same while, so within a kind a unit's time is taken as proportional to its weight. A unit
    is estimated at its weight times the *rate* (the finished units' seconds summed over their
    weights summed) of the finished units closest to it: those of its kind, else those of its
    dataset and index, its index and pipeline, its index, its dataset, else every finished unit.
    So a sweep of fast flat units and slow HNSW ones is not priced at their average, and
    a kind seen once is priced from then on. The time left is the sum of the estimates of the
    units not finished, less the time each running one has run (never below 0), shared over
    ``jobs`` units at once but never less than the longest single unit left. Before any unit
    finished it is unknown (None).
    """

    #: Which parts of the kind (dataset, index, pipeline) must match, closest first.
    TIERS = ((0, 1, 2), (0, 1), (1, 2), (1,), (0,), ())

    def __init__(self, jobs: int = 1):
        self.jobs = max(1, jobs)
        self._seconds: dict[tuple, float] = {}
        self._weights: dict[tuple, float] = {}

    @staticmethod
    def describe(unit: BuildUnit) -> tuple[tuple, float]:
        """A unit's kind and weight."""
        kind = (unit.dataset.name, unit.index.name, unit.labels()["pipeline"])
        return kind, float(len(unit.index.search_grid) * len(unit.index.rescore_grid))

    def finished(self, kind: tuple, weight: float, seconds: float) -> None:
        for tier in self.TIERS:
            part = (tier, tuple(kind[i] for i in tier))
            self._seconds[part] = self._seconds.get(part, 0.0) + seconds
            self._weights[part] = self._weights.get(part, 0.0) + max(weight, 1.0)

    def estimate(self, kind: tuple, weight: float) -> float | None:
        """Seconds a unit of this kind and weight takes, or None before any unit finished."""
        for tier in self.TIERS:
            part = (tier, tuple(kind[i] for i in tier))
            if part in self._weights:
                return self._seconds[part] / self._weights[part] * max(weight, 1.0)
        return None

    def left(self, units: list[tuple[tuple, float, float]]) -> float | None:
        """Seconds left for ``(kind, weight, seconds run so far)`` of each unit not finished."""
        if not units:
            return 0.0
        estimates = [self.estimate(kind, weight) for kind, weight, _ in units]
        if None in estimates:
            return None
        rest = [max(est - ran, 0.0) for est, (_, _, ran) in zip(estimates, units)]
        return max(sum(rest) / self.jobs, max(rest))


class Progress:
    """Unit i/N with its label, elapsed time, ETA and failures as each unit finishes, and a
    heartbeat of the running units: one rewritten block on a terminal, lines in a log or a
    pipe. ``running()`` gives ``(task, start time, step)`` of each running unit."""

    def __init__(self, tasks: list, skipped: int, stream: TextIO, enabled: bool = True,
                 jobs: int = 1, running: Callable[[], list] | None = None):
        self.total, self.done, self.failed = len(tasks), 0, 0
        self.enabled = enabled
        self.stream, self._own = _own_stream(stream) if enabled else (stream, False)
        self.terminal = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self.eta = Eta(jobs)
        self._pending = {id(task): task for task in tasks}
        self._running = running or (lambda: [])
        self._status = ""    # the last finished line: the first line of a terminal's block
        self._shown = 0      # lines of the block on the terminal now
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        if not enabled:
            return
        self._write([f"vecbench: {self.total} units to run"
                     + (f" ({skipped} already done)" if skipped else "")], keep=True)
        self._thread = threading.Thread(target=self._beat, name="vecbench-progress",
                                        args=(heartbeat_seconds(self.terminal),), daemon=True)
        self._thread.start()

    def update(self, task, status: str, seconds: float | None = None) -> None:
        """A unit finished after ``seconds`` (its record's; else since it was started)."""
        self.done += 1
        self.failed += status != "ok"
        self._pending.pop(id(task), None)
        kind, weight = Eta.describe(task.unit)
        if seconds is not None:
            self.eta.finished(kind, weight, seconds)
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        line = (f"[{self.done}/{self.total}] {status} {unit_label(task.unit)} | elapsed "
                f"{clock(elapsed)} ETA {self._eta_text()} | failures {self.failed}")
        with self._lock:
            self._status = line
            self._write([line], keep=not self.terminal)

    def heartbeat(self) -> None:
        """Say what each running unit is doing now."""
        now = time.time()
        rows = sorted(self._running(), key=lambda row: row[1])
        lines = [f"[{self.done + i}/{self.total}] running {unit_label(task.unit)} | {step} | "
                 f"{clock(now - started)}" for i, (task, started, step) in enumerate(rows, 1)]
        if not lines:
            return
        with self._lock:
            if self.terminal:
                self._write([self._status, *lines] if self._status else lines, keep=False)
            else:
                self._write(lines, keep=True)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.enabled and self.terminal:
            self._write([self._status] if self._status else [], keep=True)
        if self._own:
            self.stream.close()

    def _beat(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.heartbeat()
            except Exception:  # noqa: BLE001 - a progress line is never worth a failed run
                pass

    def _eta_text(self) -> str:
        now = time.time()
        running = {id(task): now - started for task, started, _ in self._running()}
        left = self.eta.left([(*Eta.describe(task.unit), running.get(key, 0.0))
                              for key, task in self._pending.items()])
        return "?" if left is None else clock(left)

    def _write(self, lines: list[str], keep: bool) -> None:
        """On a terminal, replace the block shown (``keep``: then leave it and start a new
        one); elsewhere, append the lines."""
        if self.terminal:
            width = _columns() - 1  # a wrapped line would throw the count of lines off
            clear = "\r\x1b[2K" + "\x1b[1A\x1b[2K" * max(self._shown - 1, 0)
            text = "\n".join(line[:width] for line in lines)
            self.stream.write(clear + text + ("\n" if keep and lines else ""))
            self._shown = 0 if keep else len(lines)
        else:
            self.stream.write("".join(line + "\n" for line in lines))
        self.stream.flush()


def _own_stream(stream: TextIO) -> tuple[TextIO, bool]:
    """A stream on fd 2 is reopened on a copy of it: a unit running in this process has fd 2
    pointed at a file meanwhile (:mod:`vecbench.run.library_output`), and the progress lines must
    still reach the terminal."""
    try:
        if stream.fileno() != 2:
            return stream, False
        stream.flush()
        return os.fdopen(os.dup(2), "w", buffering=1), True
    except (AttributeError, OSError, ValueError):
        return stream, False


def _columns() -> int:
    import shutil

    return shutil.get_terminal_size((200, 24)).columns


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else \
        f"{rest // 60}:{rest % 60:02d}"
