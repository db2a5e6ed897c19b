"""A build unit as stages: load -> reference -> encode -> build -> search -> record.

Each stage is a function with typed input and output; components say what they did through
return values (an index's :class:`~vecbench.indexes.protocol.BuildReport`, a quantizer's clipped
fractions), never through attributes probed afterwards. :func:`run_unit` chains the stages and
turns a failure into data: a user error becomes ``status: error`` with a one-line reason naming
the experiment file and YAML path, anything else ``status: crash`` with its traceback.

Timings follow :mod:`vecbench.run.timing`. Thread counts are set explicitly and recorded; ordered
builds are single-threaded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import socket
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from vecbench.compute import groundtruth, ordering, recall
from vecbench.core import environment
from vecbench.core.cache import cache_problem
from vecbench.core.errors import ConfigError, DataError, MachineFailure, VecbenchError
from vecbench.core.registry import datasets, indexes
from vecbench.datasets import guards
from vecbench.datasets import mapped as datasets_mapped
from vecbench.datasets.base import Dataset, PathResolver
from vecbench.datasets.identity import stamp
from vecbench.run import contention, filter_axis, filtered, rescore, shared_work, streaming
from vecbench.run.arrival import Pools, arrival_outcome
from vecbench.run.experiment import RUNNER_SEARCH_KEYS, BuildUnit, Component, component_label
from vecbench.run.encode import Encoded, encode, forget_encoded, trustworthiness
from vecbench.run.records import Outcome
from vecbench.run.schema import (BuildInfo, DatasetInfo, RawResults, RawSearch,
                                 Reference, SettingInfo, UnitRecord, UnitSpec)
from vecbench.run.timing import (Timing, one_query_threads, time_batch, time_clients,
                                 time_single_queries)
from vecbench.compute.relevance import judgments_of

#: Bump a stage's version when its results change meaning: units keyed with it rerun.
STAGE_VERSIONS = {"stages": 3, "groundtruth": 1}  # 3: single queries on one thread
#: Judged datasets also keep an untimed search this deep (judged_recall@100).
JUDGED_DEPTH = 100


# ---------------------------------------------------------------------------------------------
# load

_DATASETS: dict[str, Dataset] = {}
#: Inside a run of this process (``in_run``): each dataset entry's files as the run first saw
#: them, so a folder dataset's files are listed once per run, not once per unit (the run
#: refuses data that change under it). Outside one (a Dask worker, the pytest plugin): None,
#: and every load looks at the files.
_STAMPS: dict[str, list] | None = None


def load(component: Component, base_dir: str) -> Dataset:
    """The dataset a unit names, loaded once per process (again when its files changed)."""
    entry = json.dumps([component.name, component.params, base_dir], sort_keys=True,
                       default=str)
    files = None if _STAMPS is None else _STAMPS.get(entry)
    if files is None:
        files = stamp(component.name, component.params, base_dir, component.where)
        if _STAMPS is not None:
            _STAMPS[entry] = files
    key = json.dumps([entry, files], default=str)
    if key not in _DATASETS:
        loader = datasets.get(component.name)(**component.params)
        _DATASETS[key] = loader.load(PathResolver(base_dir, component.where))
    return _DATASETS[key]


@contextlib.contextmanager
def in_run():
    """The units of one run load here: their datasets' files are looked at once."""
    global _STAMPS
    _STAMPS = {}
    try:
        yield
    finally:
        _STAMPS = None


def forget_loaded() -> None:
    """Drop the datasets and encodings this process holds (its units run elsewhere)."""
    _DATASETS.clear()
    forget_encoded()


# ---------------------------------------------------------------------------------------------
# reference: exact answers in the original space

@dataclass
class ReferenceStage:
    truth: Any                      # groundtruth.GroundTruth, depth >= max(k, 100)
    answers: Reference              # what collect scores against, saved once per dataset
    name: str                       # the reference file name (content-addressed)
    guards: dict
    warnings: list


def check_k(k: int, dataset: Dataset, where: str = "") -> None:
    """k within the base: the run's preflight checks it (naming the dataset's YAML path) before
    any unit runs, and each unit's reference stage again."""
    if k > len(dataset.base):
        at = f" ({where})" if where else ""
        raise ConfigError(f"k = {k} is larger than the {len(dataset.base)} base vectors of "
                          f"{dataset.name}{at}; expected k <= {len(dataset.base)}", "k")


def reference(dataset: Dataset, k: int) -> ReferenceStage:
    """Exact kNN (cached by content), exact distances to depth k, query LID, judgments."""
    check_k(k, dataset)
    stats, warnings = guards.inspect(dataset)
    if cache_problem() is not None:  # said in the record too: this unit ran without the cache
        warnings.append(cache_problem())
    fingerprint = dataset.fingerprint()
    with shared_work.lock(f"truth-{fingerprint}"):  # computed once, then read from the cache
        truth = groundtruth.ground_truth(dataset.base, dataset.queries, dataset.metric,
                                         fingerprint, k)
    if dataset.neighbors is not None:
        sample = min(len(dataset.queries), 1000)
        head = groundtruth.GroundTruth(truth.ids[:sample], truth.distances[:sample], truth.metric)
        wrong = recall.shipped_mismatch(dataset.neighbors[:sample], head, dataset.base,
                                             dataset.queries[:sample], k)
        if wrong > 0:
            warnings.append(f"shipped neighbors mismatch: {wrong:.1%} of {sample} sampled "
                            "queries disagree with exact search; using recomputed ground truth")
    # recomputed with the arithmetic used for the returned ids, so exact ties compare equal
    truth_distances = recall.true_distances(dataset.base, dataset.queries, truth.ids[:, :k],
                                             dataset.metric)
    with shared_work.lock(f"truth-{fingerprint}"):
        query_lid = recall.query_lid_from_truth(dataset.base, dataset.queries, dataset.metric,
                                                 truth, fingerprint)
    judgments = None
    if dataset.qrels is not None:
        judgments = judgments_of(dataset)
    answers = Reference.computed(truth.ids, truth_distances, query_lid, judgments,
                                 len(dataset.base), fingerprint)
    # named by the data and its judgments: edited qrels get a reference file of their own
    key = hashlib.blake2b(answers.binding.encode(), digest_size=8).hexdigest()
    name = f"{dataset.name}-{key}-k{k}-d{truth.depth}.npz"
    return ReferenceStage(truth, answers, name.replace("/", "_"), stats, warnings)


# ---------------------------------------------------------------------------------------------
# build

@dataclass
class Built:
    index: Any
    report: Any               # indexes.protocol.BuildReport
    build_s: float
    index_bytes: int
    perm: np.ndarray | None   # insertion order (None: the dataset's own)


def build(unit: BuildUnit, encoded: Encoded, index: Any, perm: np.ndarray | None,
          metric: str) -> Built:
    codes = encoded.base if perm is None else np.ascontiguousarray(encoded.base[perm])
    # ordered builds are single-threaded so that the order is the only thing that differs
    threads = 1 if perm is not None else None
    start = time.perf_counter()
    try:
        report = index.build(codes, metric, train=encoded.train, threads=threads)
    except ConfigError as exc:
        raise exc.within(f"{unit.index.where}.build") from None
    build_s = time.perf_counter() - start
    return Built(index, report, build_s, int(index.nbytes()), perm)


def insertion_order(unit: BuildUnit, dataset: Dataset) -> np.ndarray | None:
    if unit.ordering.name == "original":
        return None
    context = ordering.OrderingContext(metric=dataset.metric, labels=dataset.labels,
                                       queries=dataset.queries, fingerprint=dataset.fingerprint())
    seed = unit.seed * 1_000_003 + unit.repeat
    # pointwise LID (cached by content) is computed by the first unit; the others wait for it
    with shared_work.lock(f"order-{dataset.fingerprint()}"):
        return ordering.apply(unit.ordering.name, unit.ordering.params, dataset.base, seed,
                              context)


# ---------------------------------------------------------------------------------------------
# search

@dataclass(frozen=True)
class Rerank:
    """A rescore setting bound to the queries in the original space: it re-ranks
    ``cascade.oversample`` × depth candidates of ``rows`` down to depth."""

    cascade: rescore.Cascade
    queries: np.ndarray       # the dataset's own (original space), not the encoded ones
    metric: str

    def __call__(self, ids: np.ndarray, rows: slice, depth: int) -> np.ndarray:
        return self.cascade.rerank(ids, self.queries[rows], self.metric, depth)


def searcher(index: Any, params: dict, queries: np.ndarray, k: int = 10, *,
             perm: np.ndarray | None = None, rerank: Rerank | None = None) -> Callable:
    """``search(rows, depth) -> (ids, distances)`` in dataset row ids: index search, order
    mapped back, and (when rescoring) k × oversample candidates re-ranked with the finer
    vectors. All of it is inside the timed call: it is what a query costs."""
    params = {name: value for name, value in params.items()
              if name not in RUNNER_SEARCH_KEYS and name not in filter_axis.SEARCH_KEYS}
    index_search = index.searcher(queries, k, params)  # queries and parameters checked once
    if perm is None and rerank is None:  # the common case: nothing between timer and index
        return index_search

    def search(rows: slice, depth: int):
        fetch = depth * rerank.cascade.oversample if rerank else depth
        ids, distances = index_search(rows, fetch)
        if perm is not None:
            ids = np.where(ids >= 0, perm[np.maximum(ids, 0)], -1)
        if rerank:
            ids, distances = rerank(ids, rows, depth), None
        return ids, distances
    return search


def unfiltered_grid(unit: BuildUnit) -> list[dict]:
    """The search settings run without a filter: the grid without the filter keys (a setting
    that differs only in them is run once)."""
    grid: list[dict] = []
    for params in unit.index.search_grid:
        own = {name: value for name, value in params.items()
               if name not in filter_axis.SEARCH_KEYS}
        if own not in grid:
            grid.append(own)
    return grid


def search(unit: BuildUnit, built: Built, encoded: Encoded, dataset: Dataset,
           timing: Timing, tell: Callable[[str], None] = lambda step: None,
           threads: int | None = None) -> tuple[list[SettingInfo], list[RawSearch]]:
    """Every unfiltered search setting of the unit: (settings for the record, their raw
    results); ``tell`` hears of each setting as its timing starts (``search ef=64 (2/4)``)."""
    with Pools() as pools:
        return _search(unit, built, encoded, dataset, timing, tell, threads, pools)


def _search(unit: BuildUnit, built: Built, encoded: Encoded, dataset: Dataset,
            timing: Timing, tell: Callable[[str], None], threads: int | None,
            pools) -> tuple[list[SettingInfo], list[RawSearch]]:
    k = unit.k
    settings: list[SettingInfo] = []
    raw: list[RawSearch] = []
    finer: dict = {}
    n_base_ids = np.int32 if len(dataset.base) < 2**31 else np.int64
    grid = unfiltered_grid(unit)
    total = len(grid) * len(unit.index.rescore_grid)
    mapped = datasets_mapped.files(dataset)
    for params in grid:
        for rescoring in unit.index.rescore_grid:
            tell(f"search {setting_label(params, rescoring)} ({len(settings) + 1}/{total})")
            datasets_mapped.check(mapped)   # a file cut under its map reads past its end
            cascade = (rescore.Cascade(rescoring, dataset.base, dataset.train, finer)
                       if rescoring else None)
            try:
                rerank = Rerank(cascade, dataset.queries, dataset.metric) if cascade else None
                run = searcher(built.index, params, encoded.queries, k, perm=built.perm,
                               rerank=rerank)

                def one_query_searcher():  # single queries: on the threads that help one
                    return searcher(built.index, params, encoded.queries, k, perm=built.perm,
                                    rerank=rerank)
                wall = arrival = arrival_wall = None
                sampler = contention.Sampler()
                with sampler:
                    if "arrival" in params:  # queries arriving at a rate, open loop
                        ids, distances = run(slice(None), k)
                        with one_query_threads(built.index, threads):
                            arrival, arrival_wall = pools.run(
                                one_query_searcher(), k, params["arrival"],
                                len(encoded.queries), unit.seed + unit.repeat)
                        passes, latencies = np.empty(0), np.empty(0)
                    elif "clients" in params:  # N users at once: throughput, latency under load
                        ids, distances = run(slice(None), k)
                        latencies, wall = time_clients(run, len(encoded.queries), k,
                                                       params["clients"], timing.client_seconds)
                        passes = np.empty(0)
                    else:
                        (ids, distances), passes = time_batch(lambda: run(slice(None), k),
                                                              timing)
                        with one_query_threads(built.index, threads):
                            latencies = time_single_queries(one_query_searcher(),
                                                            len(encoded.queries), k, timing)
                deeper = {}
                if dataset.qrels is not None:  # untimed: relevance metrics at their depth
                    for depth in sorted({10, JUDGED_DEPTH} - {k}):
                        if depth > k:
                            deeper[depth] = run(slice(None), min(depth, len(dataset.base)))[0]
            except ConfigError as exc:
                raise exc.within(f"{unit.index.where}.search") from None
            datasets_mapped.check(mapped)   # the ids are read against the base next
            returned = {k: ids.astype(n_base_ids),
                        **{depth: deep.astype(n_base_ids) for depth, deep in deeper.items()}}
            raw.append(RawSearch(
                returned, passes, latencies,
                true_distances=recall.true_distances(dataset.base, dataset.queries, ids,
                                                      dataset.metric),
                distances=None if distances is None else np.asarray(distances, np.float32),
                client_wall_seconds=wall, arrival=arrival, arrival_wall_seconds=arrival_wall))
            settings.append(SettingInfo(
                params, rescoring, sorted(returned),
                cascade.bytes_per_vector if cascade else None,
                cascade.model_bytes if cascade else None,
                contention=sampler.figures() or None,
                load=None if arrival is None else arrival_outcome(arrival, arrival_wall)))
    return settings, raw


def setting_label(params: dict, rescoring: dict) -> str:
    """``ef=64``, ``nprobe=4 rescore(oversample=10,with=float32)``: one search setting."""
    text = " ".join(component_label(Component(name, value)) if isinstance(value, dict)
                    else f"{name}={value}" for name, value in params.items()) or "default"
    return f"{text} {component_label(Component('rescore', rescoring))}" if rescoring else text


# ---------------------------------------------------------------------------------------------
# the unit

def run_unit(unit: BuildUnit, threads: int, *, contended: bool = False,
             worker: str = "local", on_stage: Callable[[str], None] | None = None) -> Outcome:
    """Run every stage of one unit; a failure is returned as a record, never raised.
    ``on_stage(name)`` hears of each stage as it starts (a worker's parent learns where a
    native crash happened), then of the steps within it as ``stage detail`` (the pipeline
    step fitted, the search setting timed): a few calls per unit, never one per query."""
    started = time.time()
    on_stage = on_stage or (lambda name: None)

    def enter(name: str) -> str:
        on_stage(name)
        return name

    stage = enter("load")
    index = dataset = None
    machine_before = contention.before()
    try:
        thread_info = environment.set_threads(threads)
        try:
            dataset = load(unit.dataset, unit.base_dir)
        except ConfigError as exc:
            raise exc.within(unit.dataset.where) from None
        mapped = datasets_mapped.files(dataset)
        datasets_mapped.note(mapped)   # a SIGBUS in this worker is then explained
        stage = enter("reference")
        ref = reference(dataset, unit.k)
        stage = enter("encode")
        build_params = dict(unit.index.build)
        build_params["seed"] = int(build_params.get("seed", unit.seed)) + unit.repeat
        try:
            index = indexes.get(unit.index.name)(**{"threads": threads, **build_params})
        except ConfigError as exc:
            raise exc.within(f"{unit.index.where}.build") from None
        encoded = encode(dataset, unit.fitted_pipeline(), frozenset(index.accepts), on_stage)
        raw = RawResults()
        if unit.pipeline:  # exact kNN of what the index stores: the index's own loss
            raw.index_truth = groundtruth.exact_knn(
                encoded.decoded.base, encoded.decoded.queries, unit.k, dataset.metric).ids
        trust = (trustworthiness(dataset, encoded, unit.k, unit.seed) if unit.pipeline
                 else None)
        stage = enter("build")
        datasets_mapped.check(mapped)
        with contention.Sampler(period=0.5) as during:
            if unit.runbook is not None:  # the index changes while it serves: steps
                stage = enter("runbook")
                streamed = streaming.run(unit, unit.runbook, dataset, encoded, index,
                                         insertion_order(unit, dataset), unit_timing(unit),
                                         on_stage)
                built = Built(index, streamed.report, streamed.build_s, streamed.index_bytes,
                              None)
                settings, raw.searches, raw.runbook = (streamed.settings, streamed.searches,
                                                       streamed.arrays)
            else:
                perm = insertion_order(unit, dataset)
                # the filters, their exact answers, and (native) the filters the index loads
                prepared = filtered.prepare(unit, dataset, index, perm)
                built = build(unit, encoded, index, perm, dataset.metric)
                stage = enter("search")
                settings, raw.searches = (search(unit, built, encoded, dataset,
                                                 unit_timing(unit), on_stage, threads)
                                          if prepared.include_none else ([], []))
                if prepared.filters:
                    more, more_raw = filtered.search(unit, built, encoded, dataset,
                                                     unit_timing(unit), prepared, on_stage)
                    settings, raw.searches = settings + more, raw.searches + more_raw
                    raw.filters = prepared.answers
    except VecbenchError as exc:
        outcome = _failed(unit, threads, "error", failure_reason(unit, exc), stage, started,
                          worker, dataset)
        outcome.record.error_type = type(exc).__name__
        return outcome
    except Exception as exc:  # a bug (or a failing machine): kept whole, in the record
        outcome = _failed(unit, threads, "crash", traceback.format_exc(), stage, started,
                          worker, dataset)
        if isinstance(exc, MachineFailure):   # its message is the reason: what failed, how
            outcome.record.reason = " ".join(str(exc).split())
        return outcome
    finally:  # an engine's server or folder goes with its unit, whatever happened
        if index is not None:
            index.close()
    report = built.report
    record = _head(unit, threads, "ok", started, worker)
    # contended: units sharing the host by the runner's choice (jobs > 1), or measured busy
    record.contention = {"before": machine_before, "during": during.figures()}
    record.contended = contended or bool(during.figures().get("contended"))
    record.dataset = DatasetInfo(dataset.name, len(dataset.base), len(dataset.queries),
                                 dataset.dim, dataset.metric, dataset.fingerprint(),
                                 dataset.qrels is not None)
    record.encode = dataclasses.replace(encoded.report, trustworthiness=trust)
    record.build = BuildInfo(built.build_s, built.index_bytes, report.threads,
                             report.deterministic, report.code_bytes_per_vector,
                             report.graph_bytes_per_vector, report.compresses, report.details)
    record.search_threads, record.settings = threads, settings
    record.guards, record.warnings = ref.guards, ref.warnings
    record.environment = environment.describe(thread_info)
    record.finished = time.time()
    return Outcome(record, raw, ref.answers, ref.name)


def unit_timing(unit: BuildUnit) -> Timing:
    return Timing(**dict(unit.timing))


def failure_reason(unit: BuildUnit, exc: VecbenchError) -> str:
    """One line: the experiment file, the YAML path, the message."""
    if isinstance(exc, ConfigError):
        exc = exc.in_file(unit.source) if unit.source else exc
        text = str(exc)
    else:
        where = f"{unit.dataset.where}: " if isinstance(exc, DataError) else ""
        text = f"{unit.source}: {where}{exc}" if unit.source else f"{where}{exc}"
    return " ".join(text.split())


def _head(unit: BuildUnit, threads: int, status: str, started: float,
          worker: str) -> UnitRecord:
    """What every record says: the unit (its key is the caller's to set), where and when."""
    spec = UnitSpec(unit.experiment, unit.spec(), unit.spec_digest(), unit.labels())
    return UnitRecord(spec, status, threads=threads, host=socket.gethostname(), worker=worker,
                      started=started)


def _failed(unit: BuildUnit, threads: int, status: str, reason: str, stage: str,
            started: float, worker: str, dataset=None) -> Outcome:
    record = _head(unit, threads, status, started, worker)
    if dataset is not None:  # its name labels the rows, so a gate matches them with BASE's
        record.dataset = DatasetInfo(dataset.name)
    if status == "crash":
        record.traceback = reason
        reason = reason.strip().splitlines()[-1]
    record.reason, record.stage, record.finished = reason, stage, time.time()
    return Outcome(record)
