"""The runbook workload: a unit whose index changes while it serves.

Steps (:mod:`vecbench.run.runbook`) run in order over the Index protocol: the first insert
builds the index, later ones call ``index.insert``; deletes ``index.delete``; a replace is a
delete and an insert; ``rebuild`` builds afresh over the active set; ``compact`` is the engine's
upkeep (pgvector VACUUM). With ``apply: rebuild`` no mutation reaches the index: it is rebuilt
before each search that follows a change (the baseline of a fresh build of the same active set).

At each search step, before any timed search: the points inserted since the last search are
searched for themselves (``searchable@k``), and the exact kNN of the queries among the active
points is computed (blockwise, :func:`vecbench.compute.groundtruth.exact_knn`) or read from the
cache, keyed by the active set's content: every unit over the same runbook and data shares it.
Then every search setting is timed as in a plain unit. What each step did and took is kept raw
(:class:`~vecbench.run.schema.RawResults` ``runbook``); metrics are computed at collect.

The index sees its own ids (0, 1, 2... in the order vectors reach it, as a build gives them);
searches are mapped back to tags here, outside the timed calls.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from vecbench.compute import groundtruth, ordering, recall
from vecbench.core.cache import read_verified, write_verified
from vecbench.core.errors import ConfigError
from vecbench.core.paths import cache_dir
from vecbench.run import shared_work
from vecbench.run.runbook import Runbook
from vecbench.run.schema import RawSearch, SettingInfo
from vecbench.run.timing import Timing, time_batch, time_single_queries


@dataclass
class StreamOutcome:
    """What the runbook did: the first build (for the record), settings and raw results."""

    report: Any = None            # BuildReport of the first build
    build_s: float = 0.0
    index_bytes: int = 0
    settings: list = field(default_factory=list)
    searches: list = field(default_factory=list)
    arrays: dict = field(default_factory=dict)   # RawResults.runbook


class _State:
    """Tags active, the data row each points at, and the index's own id of each."""

    def __init__(self, order: np.ndarray):
        n = len(order)
        self.order = order                            # data id -> dataset row
        self.row_of_tag = order.copy()                # tag -> dataset row (replace moves it)
        self.active = np.zeros(n, dtype=bool)
        self.internal_of_tag = np.full(n, -1, dtype=np.int64)
        self.tag_of_internal = np.empty(0, dtype=np.int64)

    def assign(self, tags: np.ndarray) -> np.ndarray:
        """New index ids for ``tags`` (the next ones after every id used so far)."""
        start = len(self.tag_of_internal)
        ids = np.arange(start, start + len(tags), dtype=np.int64)
        self.tag_of_internal = np.concatenate([self.tag_of_internal, tags])
        self.internal_of_tag[tags] = ids
        return ids

    def reset(self) -> np.ndarray:
        """A fresh build over the active tags: ids 0..m-1; returns the tags in that order."""
        tags = np.flatnonzero(self.active)
        self.internal_of_tag[:] = -1
        self.tag_of_internal = np.empty(0, dtype=np.int64)
        self.assign(tags)
        return tags

    def tags_of(self, ids: np.ndarray) -> np.ndarray:
        known = (ids >= 0) & (ids < len(self.tag_of_internal))
        return np.where(known, self.tag_of_internal[np.where(known, ids, 0)], -1)


def arrival_order(runbook: Runbook, dataset: Any, perm: np.ndarray | None,
                  seed: int) -> tuple[np.ndarray, list | None]:
    """Data id -> dataset row, and for a clustered runbook its clusters' sizes."""
    if runbook.generator and runbook.generator[0] == "clustered":
        params = dict(runbook.generator[1])
        n = params.get("n") or len(dataset.base)
        with shared_work.lock(f"order-{dataset.fingerprint()}"):
            order, sizes = ordering.cluster_blocks(dataset.base[:n], params["n_clusters"], seed)
        return order.astype(np.int64), sizes
    order = np.arange(len(dataset.base), dtype=np.int64) if perm is None else perm
    return np.asarray(order, dtype=np.int64), None


def run(unit: Any, runbook: Runbook, dataset: Any, encoded: Any, index: Any,
        perm: np.ndarray | None, timing: Timing,
        tell: Callable[[str], None] = lambda step: None) -> StreamOutcome:
    """Every step of ``runbook`` on ``index``; ConfigError naming the step on bad input."""
    seed = unit.seed * 1_000_003 + unit.repeat
    order, sizes = arrival_order(runbook, dataset, perm, seed)
    steps = runbook.expand(len(order), sizes)
    state, out, k = _State(order), StreamOutcome(), unit.k
    log = {name: [] for name in ("op", "seconds", "count", "active", "prepare_seconds",
                                 "truth_seconds")}
    probes: dict[str, list] = {"step": [], "tags": [], "ids": []}
    truths: list[np.ndarray] = []
    truth_distances: list[np.ndarray] = []
    pending: list[np.ndarray] = []   # tags inserted since the last search, to probe
    built, dirty = False, False
    native = runbook.apply == "native"
    base = encoded.base

    def build() -> float:
        tags = state.reset()
        rows = state.row_of_tag[tags]
        started = time.perf_counter()
        # trained (IVF k-means) on the vectors it is built with, as a live index would be
        report = index.build(np.ascontiguousarray(base[rows]), dataset.metric)
        seconds = time.perf_counter() - started
        if out.report is None:
            out.report, out.build_s, out.index_bytes = report, seconds, int(index.nbytes())
        return seconds

    for number, step in enumerate(steps, 1):
        tell(f"runbook step {number}/{len(steps)} {step.operation}")
        prepare, count, truth_s, name = 0.0, 0, 0.0, step.operation
        started = time.perf_counter()
        try:
            if step.operation == "insert":
                tags = np.arange(step.start, step.end, dtype=np.int64)
                state.active[tags] = True
                count = len(tags)
                if not built:  # logged as "build": its time is the build's, not an insert's
                    seconds, built, name = build(), True, "build"
                elif native:
                    ids = state.assign(tags)
                    rows = state.row_of_tag[tags]
                    started = time.perf_counter()
                    index.insert(np.ascontiguousarray(base[rows]), ids)
                    seconds = time.perf_counter() - started
                else:
                    seconds, dirty = 0.0, True
                pending.append(tags)
            elif step.operation in ("delete", "replace"):
                if step.operation == "delete":
                    tags = np.arange(step.start, step.end, dtype=np.int64)
                else:
                    tags = np.arange(step.tags_start, step.tags_end, dtype=np.int64)
                count = len(tags)
                seconds = 0.0
                if native:
                    started = time.perf_counter()
                    index.delete(state.internal_of_tag[tags])
                    seconds = time.perf_counter() - started
                state.internal_of_tag[tags] = -1
                if step.operation == "delete":
                    state.active[tags] = False
                else:
                    state.row_of_tag[tags] = state.order[step.ids_start:step.ids_start + count]
                    pending.append(tags)
                    if native:
                        ids = state.assign(tags)
                        rows = state.row_of_tag[tags]
                        started = time.perf_counter()
                        index.insert(np.ascontiguousarray(base[rows]), ids)
                        seconds += time.perf_counter() - started
                dirty = dirty or not native
            elif step.operation == "rebuild":
                seconds, dirty, count = build(), False, int(state.active.sum())
            elif step.operation == "compact":
                started = time.perf_counter()
                index.compact()
                seconds = time.perf_counter() - started
            else:  # search
                if dirty:
                    prepare, dirty = build(), False
                _probe(index, unit, runbook, state, base, pending, len(truths), probes)
                pending = []
                started = time.perf_counter()
                truth_ids, distances = active_truth(dataset, state, k)
                truth_s = time.perf_counter() - started
                truths.append(truth_ids)
                truth_distances.append(distances)
                seconds = _search_step(unit, index, encoded, dataset, state, timing, number,
                                       len(truths) - 1, out, tell)
        except ConfigError as exc:
            raise ConfigError(f"step {step.label()}: {exc.message}",
                              step.where or runbook.where) from None
        log["op"].append(name)
        log["seconds"].append(seconds)
        log["count"].append(count)
        log["active"].append(int(state.active.sum()))
        log["prepare_seconds"].append(prepare)
        log["truth_seconds"].append(truth_s)
    out.arrays = _arrays(log, probes, truths, truth_distances, k)
    return out


def _arrays(log: dict, probes: dict, truths: list, truth_distances: list, k: int) -> dict:
    arrays = {"op": np.asarray(log["op"], dtype="U8"),
              "seconds": np.asarray(log["seconds"], dtype=np.float64),
              "count": np.asarray(log["count"], dtype=np.int64),
              "active": np.asarray(log["active"], dtype=np.int64),
              "prepare_seconds": np.asarray(log["prepare_seconds"], dtype=np.float64),
              "truth_seconds": np.asarray(log["truth_seconds"], dtype=np.float64),
              "truth_ids": np.stack(truths), "truth_distances": np.stack(truth_distances),
              "probe_step": np.asarray(probes["step"], dtype=np.int64),
              "probe_tags": np.asarray(probes["tags"], dtype=np.int64)}
    arrays["probe_ids"] = (np.concatenate(probes["ids"]) if probes["ids"]
                           else np.empty((0, k), dtype=np.int64))
    return arrays


def _search_step(unit: Any, index: Any, encoded: Any, dataset: Any, state: _State,
                 timing: Timing, number: int, place: int, out: StreamOutcome,
                 tell: Callable[[str], None]) -> float:
    """Every search setting timed at this step; returns the step's wall time."""
    started = time.perf_counter()
    k = unit.k
    active = int(state.active.sum())
    for params in unit.index.search_grid:
        try:
            run_search = index.searcher(encoded.queries, k, dict(params))
            (ids, distances), passes = time_batch(lambda: run_search(slice(None), k), timing)
            latencies = time_single_queries(run_search, len(encoded.queries), k, timing)
        except ConfigError as exc:
            raise exc.within(f"{unit.index.where}.search") from None
        tags = state.tags_of(np.asarray(ids, dtype=np.int64))
        rows = np.where(tags >= 0, state.row_of_tag[np.maximum(tags, 0)], -1)
        out.searches.append(RawSearch(
            {k: tags}, passes, latencies,
            true_distances=recall.true_distances(dataset.base, dataset.queries, rows,
                                                  dataset.metric),
            distances=None if distances is None else np.asarray(distances, np.float32)))
        out.settings.append(SettingInfo(dict(params), {}, [k],
                                        step={"step": number, "search": place,
                                              "active": active}))
    return time.perf_counter() - started


def _probe(index: Any, unit: Any, runbook: Runbook, state: _State, base: np.ndarray,
           pending: list, place: int, probes: dict) -> None:
    """Search for up to ``probe`` points inserted since the last search (evenly spread over
    them), with the first search setting: are they found in their own top k?"""
    if not runbook.probe or not pending:
        return
    tags = np.concatenate(pending)
    tags = tags[state.active[tags]]
    if not len(tags):
        return
    chosen = tags[np.unique(np.linspace(0, len(tags) - 1, min(runbook.probe, len(tags)))
                            .astype(np.int64))]
    queries = np.ascontiguousarray(base[state.row_of_tag[chosen]])
    params = dict(unit.index.search_grid[0]) if unit.index.search_grid else {}
    ids, _ = index.searcher(queries, unit.k, params)(slice(None), unit.k)
    probes["step"].extend([place] * len(chosen))
    probes["tags"].extend(chosen.tolist())
    probes["ids"].append(state.tags_of(np.asarray(ids, dtype=np.int64)))


def active_truth(dataset: Any, state: _State, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact kNN tags of the queries among the active points and their true distances, cached
    by the active set's content (the data's fingerprint, each active tag and its row)."""
    tags = np.flatnonzero(state.active)
    rows = state.row_of_tag[tags]
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{dataset.fingerprint()}|{dataset.metric}|{k}|".encode())
    digest.update(tags.tobytes())
    digest.update(rows.tobytes())
    depth = min(k, len(tags))
    path = cache_dir() / "groundtruth" / f"active-{digest.hexdigest()}.npz"
    shape = (len(dataset.queries), k)

    def fits(arrays: dict) -> str | None:
        if arrays.get("ids") is None or arrays["ids"].shape != shape:
            return f"expected ids of shape {shape}"
        return None

    with shared_work.lock(f"truth-active-{digest.hexdigest()}"):
        stored = read_verified(path, "ground truth of an active set", fits)
        if stored is not None:
            ids = stored["ids"]
        else:
            whole = len(rows) == len(dataset.base) and np.array_equal(rows, np.arange(len(rows)))
            found = groundtruth.exact_knn(dataset.base if whole else dataset.base[rows],
                                          dataset.queries, depth, dataset.metric).ids
            ids = np.full(shape, -1, dtype=np.int64)
            ids[:, :depth] = np.where(found >= 0, tags[np.maximum(found, 0)], -1)
            write_verified(path, {"ids": ids})
    truth_rows = np.where(ids >= 0, state.row_of_tag[np.maximum(ids, 0)], -1)
    distances = recall.true_distances(dataset.base, dataset.queries, truth_rows, dataset.metric)
    return ids, distances
