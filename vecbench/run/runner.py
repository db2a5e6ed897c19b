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
from vecbench.run import executors, filtered, records, stages
from vecbench.run.experiment import BuildUnit, Experiment
from vecbench.run.stages import STAGE_VERSIONS
from vecbench.run import claims, workers
from vecbench.run.claims import Keeper
from vecbench.run.progress import Progress, heartbeat_seconds, unit_label


@dataclass
class Summary:
    run: int = 0
    skipped: int = 0
    failed: list = field(default_factory=list)    # one line per failed unit
    crashed: int = 0
    warnings: list = field(default_factory=list)
    stopped_early: bool = False
    waited: int = 0         # units another `run` on the folder computed while this one waited
    library_output: int = 0  # units whose libraries printed or warned (kept in their records)

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
        entry = json.dumps([unit.dataset.name, unit.dataset.params, unit.base_dir, unit.k,
                            [f.canonical() for f in unit.filters if f.name in filtered.FILE_FILTERS]],
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
        try:
            stages.check_k(unit.k, dataset, unit.dataset.where)
            filtered.check_files(unit, dataset)
        except ConfigError as exc:
            raise exc.in_file(unit.source) if unit.source else exc from None


def run_experiment(experiment: Experiment, results: str | Path, *, force: bool = False,
                   jobs: int = 1, threads: int | None = None, progress: bool = True,
                   quiet: bool = True, fail_fast: bool = False,
                   executor: executors.Executor | None = None, stream: TextIO | None = None,
                   log: Callable[[str], None] = print, rehash: bool = False,
                   isolated: bool = True, steal_claims: bool = False) -> Summary:
    """Run every unit not already done; return what ran, what was skipped, what failed.

    Without an ``executor``, each unit runs in a worker process of its own (``jobs`` at once),
    or with ``isolated=False`` in this process (``jobs`` 1) or a pool of processes. ``rehash``
    digests data files in full instead of trusting their size and mtime; ``steal_claims``
    takes over claims of other hosts' runs that cannot be checked (see :mod:`vecbench.run.claims`)."""

    heartbeat_seconds()  # a bad $VECBENCH_HEARTBEAT_SECONDS stops the run before any unit
    started = time.time()   # records other runs write from now on are theirs, not older ones
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
        workers.warm()  # the workers' server starts while the data are checked
    if executor is None or executor.name != "dask":
        preflight(todo)
        if in_workers:
            stages.forget_loaded()  # workers load their own: the parent holds no copy
    # another `run` on this folder may be computing some units: take each unit's claim, run
    # the claimed ones, then wait for the others (or take them over if their process dies)
    try:
        while todo:
            mine, others = _claim(todo, results, summary, force, steal_claims)
            if mine:
                with Keeper(results, [key for _, key, _ in mine]), stages.in_run():
                    _dispatch(mine, results, summary, jobs, quiet, fail_fast,
                              executor or executors.make(jobs, isolated), stream)
                executor = None   # closed by _dispatch; a takeover round makes a fresh one
                if summary.stopped_early:
                    break
            todo = _wait_for_others(others, results, summary, log, started)
    finally:
        if executor is not None:   # given, but every unit was claimed by others
            executor.close()
    inputs_unchanged(data, experiment, summary)
    for warning in dict.fromkeys(summary.warnings):
        log(f"warning: {warning}")
    if summary.library_output:
        log(f"{summary.library_output} units printed library warnings; see library_output in "
            f"their records ({records.runs_dir(results)})")
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


def _claim(todo: list[tuple], results, summary: Summary, force: bool,
           steal: bool) -> tuple[list, list]:
    """(units claimed here, units other runs hold). A unit done while this run was starting
    (another run wrote it, then let go of its claim) is checked again once claimed: skipped."""
    mine, others = [], []
    for item in todo:
        if not records.claim(results, item[1], steal):
            others.append(item)
        elif not force and records.is_done(results, item[1]):
            records.release(results, item[1])
            summary.skipped += 1
            summary.waited += 1
        else:
            mine.append(item)
    return mine, others


#: Seconds between the lines saying what this run waits for.
WAIT_REPORT_S = 30.0


def _wait_for_others(others: list[tuple], results, summary: Summary, log, started: float,
                     poll: float = 0.2) -> list[tuple]:
    """Wait while other processes hold claims, saying every :data:`WAIT_REPORT_S` seconds
    which units and whose claims; return the units left to run here (their process died, or
    they failed there). Claims that cannot be checked end the wait with one line."""

    reported = time.monotonic()
    while others:
        held, free = [], []
        for item in others:
            judged = claims.judge(records.claim_path(results, item[1]))
            if judged.state == "free" and _finished_since(results, item[1], started, summary):
                continue
            (free if judged.state in ("free", "stale") else held).append((item, judged))
        if free:
            return [item for item, _ in free + held]
        if held and all(j.state == "unknown" for _, j in held):
            raise _unknown_claims([j for _, j in held])
        others = [item for item, _ in held]
        if others and time.monotonic() - reported >= WAIT_REPORT_S:
            log(_waiting_line([j for _, j in held], summary))
            reported = time.monotonic()
        if others:
            time.sleep(poll)
    return []


def _finished_since(results, key: str, started: float, summary: Summary) -> bool:
    """True when another run recorded the unit since this one started (done, or failed there:
    it is not run twice); counted as waited for."""
    path = records.record_path(results, key)
    if records.is_done(results, key) or (path.is_file() and path.stat().st_mtime >= started
                                         and _valid(path)):
        summary.skipped += 1
        summary.waited += 1
        return True
    return False


def _valid(path) -> bool:
    try:
        records.read_record(path)
        return True
    except DataError:
        return False


def _waiting_line(held: list, summary: Summary) -> str:
    holders = sorted({j.holder for j in held})
    return (f"vecbench: waiting for {len(held)} units claimed by other runs "
            f"({'; '.join(holders[:3])}{'; ...' if len(holders) > 3 else ''}), e.g. "
            f"{held[0].line()}; {summary.run} run here so far")


def _unknown_claims(held: list):
    first = held[0]
    return VecbenchError(f"{first.line()}: {len(held)} units are claimed by runs that cannot "
                         f"be checked from here ({first.why}); expected their run to go on "
                         "or be gone: if it is gone, rerun with --steal-claims to take them "
                         "over (records already written are kept)")


def _dispatch(todo: list[tuple], results, summary: Summary, jobs: int, quiet: bool,
              fail_fast: bool, executor, stream) -> None:
    tasks = [executors.Task(unit, key, n, contended=jobs > 1) for unit, key, n in todo]
    bar = Progress(tasks, summary.skipped, stream or sys.stderr, enabled=not quiet,
                   jobs=jobs, running=getattr(executor, "running", None))
    try:
        for task, outcome in executor.map(tasks):
            records.store_unit(results, outcome)
            records.release(results, task.key)
            summary.run += 1
            summary.warnings.extend(outcome.record.warnings)
            summary.library_output += bool(outcome.record.library_output)
            if outcome.status != "ok":
                summary.failed.append(f"{outcome.status}: {_label(task.unit)}: "
                                      f"{outcome.record.reason}")
                summary.crashed += outcome.status == "crash"
            bar.update(task, outcome.status, _seconds(outcome.record))
            if fail_fast and outcome.status != "ok":
                summary.stopped_early = True
                break
    finally:
        executor.close()
        bar.close()
        for _, key, _ in todo:
            records.release(results, key)


def _label(unit: BuildUnit) -> str:
    return unit_label(unit)


def _seconds(record) -> float | None:
    """How long a unit ran, by its record."""
    if record.finished is None or record.started is None:
        return None
    return max(0.0, float(record.finished) - float(record.started))
