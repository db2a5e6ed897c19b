"""Run an experiment: key every unit by content, skip the complete ones, dispatch the rest
through an executor, write each record as it arrives, and say what failed.

A unit is done only when its record is complete, valid, ``ok`` and written for the unit's key,
which covers the spec, the content of its data, the thread count and the stage versions
(:meth:`vecbench.run.experiment.BuildUnit.key`). A failed unit is recorded (``error``: bad input,
one line naming the file and YAML path; ``crash``: a bug, with its traceback) and the sweep
goes on, unless ``fail_fast``.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

from vecbench.core.environment import cpu_count
from vecbench.core.errors import ConfigError, DataError, VecbenchError
from vecbench.datasets.identity import DataDigests
from vecbench.run import executors, records, stages
from vecbench.run.experiment import BuildUnit, component_label, Experiment
from vecbench.run.stages import STAGE_VERSIONS


@dataclass
class Summary:
    run: int = 0
    skipped: int = 0
    failed: list = field(default_factory=list)    # one line per failed unit
    crashed: int = 0
    warnings: list = field(default_factory=list)
    stopped_early: bool = False
    waited: int = 0         # units another `run` on the folder computed while this one waited

    def __getitem__(self, name: str):  # summary["run"], as callers read it
        return getattr(self, name)


def unit_threads(unit: BuildUnit, threads: int | None, jobs: int) -> int:
    """Threads a unit runs with: the YAML's, else --threads, else the cores split over jobs."""
    if unit.threads:
        return unit.threads
    total = threads or cpu_count()
    return max(1, total // max(jobs, 1))


def unit_keys(experiment: Experiment, threads: int | None, jobs: int,
              data=None) -> list[tuple]:
    """(unit, key, threads) of every unit; data files are digested once per dataset entry
    (through ``data``, a :class:`~vecbench.datasets.identity.DataDigests`, when given)."""
    data = data if data is not None else DataDigests()
    digests: dict[str, str] = {}
    out = []
    for unit in experiment.units:
        entry = json.dumps([unit.dataset.name, unit.dataset.params, unit.base_dir],
                           sort_keys=True, default=str)
        if entry not in digests:
            digests[entry] = data.of(unit.dataset.name, unit.dataset.params, unit.base_dir,
                                     unit.dataset.where)
        n = unit_threads(unit, threads, jobs)
        out.append((unit, unit.key(STAGE_VERSIONS, n, digests[entry]), n))
    return out


def preflight(todo: list[tuple]) -> None:
    """Load each dataset the units need (loads are cached for in-process units) and check k
    against it: bad data or a k larger than a base stops the run with one line, exit 2, before
    any unit runs, instead of failing every unit over that dataset."""
    seen = set()
    for unit, _, _ in todo:
        entry = json.dumps([unit.dataset.name, unit.dataset.params, unit.base_dir, unit.k],
                           sort_keys=True, default=str)
        if entry in seen:
            continue
        seen.add(entry)
        try:
            dataset = stages.load(unit.dataset, unit.base_dir)
        except ConfigError as exc:
            raise exc.within(unit.dataset.where).in_file(unit.source) if unit.source \
                else exc.within(unit.dataset.where) from None
        except VecbenchError as exc:
            prefix = f"{unit.source}: " if unit.source else ""
            raise DataError(f"{prefix}{exc}") from None
        if unit.k > len(dataset.base):
            raise ConfigError(f"k = {unit.k} is larger than the {len(dataset.base)} base "
                              f"vectors of {dataset.name} ({unit.dataset.where}); expected "
                              f"k <= {len(dataset.base)}", "k", unit.source or None)


def run_experiment(experiment: Experiment, results: str | Path, *, force: bool = False,
                   jobs: int = 1, threads: int | None = None, progress: bool = True,
                   quiet: bool = True, fail_fast: bool = False,
                   executor: executors.Executor | None = None, stream: TextIO | None = None,
                   log: Callable[[str], None] = print, rehash: bool = False,
                   isolated: bool = True) -> Summary:
    """Run every unit not already done; return what ran, what was skipped, what failed.

    Without an ``executor``, each unit runs in a worker process of its own (``jobs`` at once),
    or with ``isolated=False`` in this process (``jobs`` 1) or a pool of processes. ``rehash``
    digests data files in full instead of trusting their size and mtime."""
    data = DataDigests(rehash)
    keyed = unit_keys(experiment, threads, jobs, data)
    summary = Summary()
    todo = []
    for unit, key, n in keyed:
        if not force and records.is_done(results, key):
            summary.skipped += 1
        else:
            todo.append((unit, key, n))
    records.write_manifest(results, [key for _, key, _ in keyed], data.hashing)
    if not todo:
        return summary
    in_workers = isolated if executor is None else executor.name == "isolated"
    if in_workers:
        from vecbench.run import workers

        workers.warm()  # the workers' server starts while the data are checked
    if executor is None or executor.name != "dask":
        preflight(todo)
        if in_workers:
            stages.forget_loaded()  # workers load their own: the parent holds no copy
    # another `run` on this folder may be computing some units: take each unit's claim, run
    # the claimed ones, then wait for the others (or take them over if their process dies)
    while todo:
        mine, others = [], []
        for item in todo:
            (mine if records.claim(results, item[1]) else others).append(item)
        if mine:
            _dispatch(mine, results, summary, jobs, quiet, fail_fast,
                      executor or executors.make(jobs, isolated), stream)
            executor = None   # closed by _dispatch; a takeover round makes a fresh one
            if summary.stopped_early:
                break
        todo = _wait_for_others(others, results, summary)
    inputs_unchanged(data, experiment, summary)
    for warning in dict.fromkeys(summary.warnings):
        log(f"warning: {warning}")
    return summary


def inputs_unchanged(data, experiment: Experiment, summary: Summary) -> None:
    """Refuse a sweep whose data files changed while it ran: its records would mix old and new
    data under keys of the old. The records stay (a rerun recomputes them on the new data)."""
    changed = data.changed()
    if changed:
        where, path = changed[0]
        prefix = f"{experiment.file}: " if experiment.file else ""
        raise DataError(f"{prefix}{where}: {path} changed while the sweep ran ({len(changed)} "
                        f"file(s)); expected the data to stay as it was: the {summary.run} "
                        "units run are recorded but not tabled; run again to recompute them")


def _wait_for_others(others: list[tuple], results, summary: Summary,
                     poll: float = 0.2) -> list[tuple]:
    """Wait while other processes hold claims; return the units left to run here (their
    process died, or they failed there)."""
    while others:
        held, free = [], []
        for item in others:
            if records.is_done(results, item[1]):
                summary.skipped += 1
                summary.waited += 1
            elif records.claim_held(records.claim_path(results, item[1])):
                held.append(item)
            else:
                free.append(item)
        if free:
            return free + held
        others = held
        if others:
            time.sleep(poll)
    return []


def _dispatch(todo: list[tuple], results, summary: Summary, jobs: int, quiet: bool,
              fail_fast: bool, executor, stream) -> None:
    tasks = [executors.Task(unit, key, n, contended=jobs > 1) for unit, key, n in todo]
    bar = Progress(len(tasks), summary.skipped, stream or sys.stderr, enabled=not quiet)
    try:
        for task, outcome in executor.map(tasks):
            records.store_unit(results, outcome)
            records.release(results, task.key)
            summary.run += 1
            summary.warnings.extend(outcome.record.get("warnings", []))
            if outcome.status != "ok":
                summary.failed.append(f"{outcome.status}: {_label(task.unit)}: "
                                      f"{outcome.record['reason']}")
                summary.crashed += outcome.status == "crash"
            bar.update(_label(task.unit), outcome.status)
            if fail_fast and outcome.status != "ok":
                summary.stopped_early = True
                break
    finally:
        executor.close()
        bar.close()
        for _, key, _ in todo:
            records.release(results, key)


def _label(unit: BuildUnit) -> str:
    labels = unit.labels()
    build = ",".join(f"{k}={v}" for k, v in unit.index.build.items())
    index = f"{labels['index']}({build})" if build else labels["index"]
    return (f"{component_label(unit.dataset)} {labels['pipeline']} {index} {labels['ordering']} "
            f"r{unit.repeat}")


class Progress:
    """Unit i/N with its label, elapsed time, ETA and failures: one rewritten line on a
    terminal, one line per unit in a log or a pipe."""

    def __init__(self, total: int, skipped: int, stream: TextIO, enabled: bool = True):
        self.total, self.done, self.failed = total, 0, 0
        self.stream, self.enabled = stream, enabled
        self.terminal = enabled and hasattr(stream, "isatty") and stream.isatty()
        self.start = time.monotonic()
        if enabled:
            self._write(f"vecbench: {total} units to run"
                        + (f" ({skipped} already done)" if skipped else ""), end="\n")

    def update(self, label: str, status: str) -> None:
        self.done += 1
        self.failed += status != "ok"
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * (self.total - self.done)
        line = (f"[{self.done}/{self.total}] {status} {label} | elapsed {_clock(elapsed)} "
                f"ETA {_clock(eta)} | failures {self.failed}")
        if self.terminal:
            self._write("\r\x1b[2K" + line[:200], end="")
        else:
            self._write(line, end="\n")

    def close(self) -> None:
        if self.enabled and self.terminal:
            self._write("", end="\n")

    def _write(self, text: str, end: str) -> None:
        self.stream.write(text + end)
        self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else \
        f"{rest // 60}:{rest % 60:02d}"
