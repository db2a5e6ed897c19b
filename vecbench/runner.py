"""Run build units: load, ground truth, fit and encode, order, build, sweep searches, measure.

Timing protocol: QPS is the whole query batch over measured wall time (one warm-up, then the
best of ``TIMED_REPEATS``), never 1/mean latency; latencies come from a separate single-query
loop. Thread counts are set explicitly and recorded; ordered builds are single-threaded so that
the insertion order is the only thing that differs between them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from vecbench import rescore, store
from vecbench.datasets.base import Dataset, PathResolver
from vecbench.errors import ConfigError
from vecbench.experiment import BuildUnit, Component, Experiment
from vecbench.registry import datasets, indexes, transforms

#: Bump a stage's version when its results change meaning: units keyed with it rerun.
STAGE_VERSIONS = {"runner": 1, "groundtruth": 1, "metrics": 1}
TIMED_REPEATS = 3
#: Latency percentiles come from a single-query loop over at most this many queries.
LATENCY_QUERIES = 1000
#: Per-query values are kept in run files with this many decimals (enough for recall@k, k<=10^4).
PER_QUERY_DECIMALS = 5


@dataclass
class Encoded:
    """A dataset after the pipeline: what the index gets, and what it cost."""

    base: np.ndarray          # codes or float32, as handed to the index
    queries: np.ndarray
    train: np.ndarray
    decoded_base: np.ndarray  # float32 view of base in the transformed space
    decoded_queries: np.ndarray
    quantization: str         # none | native | simulated
    bytes_per_vector: float
    model_bytes: int
    fit_s: float
    encode_s: float
    notes: dict
    #: trustworthiness by (k, seed): units sharing a cached encoding compute it once
    trustworthiness: dict = field(default_factory=dict)


_DATASET_CACHE: dict[str, Dataset] = {}
#: The last few encodings, so that units sharing a dataset and pipeline (flat and HNSW over the
#: same UMAP output, say) fit it once per process. Small: each entry holds the encoded corpus.
_ENCODE_CACHE: dict[str, "Encoded"] = {}
ENCODE_CACHE_SIZE = 2


def load_dataset(component: Component, base_dir: str) -> Dataset:
    """Load (once per process) the dataset a unit names."""
    key = json.dumps([component.name, component.params, base_dir], sort_keys=True, default=str)
    if key not in _DATASET_CACHE:
        loader = datasets.get(component.name)(**component.params)
        _DATASET_CACHE[key] = loader.load(PathResolver(base_dir, component.where))
    return _DATASET_CACHE[key]


def _make_transform(step: Component, metric: str):
    params = dict(step.params)
    transform_cls = transforms.get(step.name)
    transform = transform_cls(**params)
    # reductions re-normalize under cos unless told otherwise (normalize: None = "runner decides")
    if getattr(transform, "normalize", False) is None:
        transform.normalize = metric == "cos"
    return transform


def encode(dataset: Dataset, steps: tuple[Component, ...], index_accepts: frozenset) -> Encoded:
    """Fit the pipeline on ``train`` (never on queries), encode base and queries.

    Repeated calls with the same dataset, steps and accepted code kinds reuse the last result
    (arrays read-only); fit_s and encode_s are those of the fit that produced it.
    """
    key = json.dumps([dataset.fingerprint(), _train_digest(dataset),
                      [[s.name, s.params] for s in steps], sorted(index_accepts)],
                     sort_keys=True, default=str)
    if key not in _ENCODE_CACHE:
        encoded = _encode(dataset, steps, index_accepts)
        for array in (encoded.base, encoded.queries, encoded.decoded_base,
                      encoded.decoded_queries):
            array.setflags(write=False)
        while len(_ENCODE_CACHE) >= ENCODE_CACHE_SIZE:
            _ENCODE_CACHE.pop(next(iter(_ENCODE_CACHE)))
        _ENCODE_CACHE[key] = encoded
    return _ENCODE_CACHE[key]


def _trustworthiness(dataset: Dataset, encoded: Encoded, k: int, seed: int) -> float:
    from vecbench import metrics

    if (k, seed) not in encoded.trustworthiness:
        encoded.trustworthiness[(k, seed)] = metrics.trustworthiness_sample(
            dataset.base, encoded.decoded_base, dataset.metric, k, seed=seed)
    return encoded.trustworthiness[(k, seed)]


def _train_digest(dataset: Dataset) -> str:
    """Content hash of the fitting set, memoized like Dataset.fingerprint."""
    cached = dataset.info.get("_train_digest")
    if cached is None:
        import hashlib

        from vecbench.datasets.base import hash_array

        h = hashlib.blake2b(digest_size=16)
        h.update(str(dataset.train.shape).encode())
        hash_array(h, dataset.train)
        cached = dataset.info["_train_digest"] = h.hexdigest()  # type: ignore[index]
    return cached


def _encode(dataset: Dataset, steps: tuple[Component, ...], index_accepts: frozenset) -> Encoded:
    base, queries, train = dataset.base, dataset.queries, dataset.train
    fit_s = encode_s = 0.0
    clipped: dict = {}
    quantizer = None
    for i, step in enumerate(steps):
        transform = _make_transform(step, dataset.metric)
        start = time.perf_counter()
        transform.fit(train)
        fit_s += time.perf_counter() - start
        start = time.perf_counter()
        base = transform.transform(base)
        clipped_base = getattr(transform, "last_clipped_fraction_", None)
        queries = transform.transform(queries)
        clipped_queries = getattr(transform, "last_clipped_fraction_", None)
        encode_s += time.perf_counter() - start
        if clipped_base is not None:  # int quantizers report what calibration clipped
            clipped[step.name] = {"base": clipped_base, "queries": clipped_queries}
        if hasattr(transform, "code_kind"):
            if i != len(steps) - 1:
                raise ConfigError(f"a quantizer must be the last step of a pipeline; "
                                  f"{step.name} is followed by {steps[i + 1].name}", step.where)
            quantizer = transform
        else:
            train = transform.transform(train)
    notes = {"clipped_fraction": clipped} if clipped else {}
    if quantizer is None:
        base = np.ascontiguousarray(base, dtype=np.float32)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        return Encoded(base, queries, train, base, queries,
                       "none", 4.0 * base.shape[1], 0, fit_s, encode_s, notes)
    decoded_base = quantizer.inverse_transform(base).astype(np.float32, copy=False)
    decoded_queries = quantizer.inverse_transform(queries).astype(np.float32, copy=False)
    if quantizer.code_kind in index_accepts:
        return Encoded(base, queries, train, decoded_base, decoded_queries, "native",
                       float(quantizer.bytes_per_vector_), int(quantizer.model_bytes_),
                       fit_s, encode_s, notes)
    # simulated: the index stores decoded float32, but storage is counted as the codes
    return Encoded(decoded_base, decoded_queries, train, decoded_base, decoded_queries,
                   "simulated", float(quantizer.bytes_per_vector_), int(quantizer.model_bytes_),
                   fit_s, encode_s, notes)


def time_batch(search: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    """One warm-up call (whose result is returned), then the best of TIMED_REPEATS timings."""
    ids = search()
    best = float("inf")
    for _ in range(TIMED_REPEATS):
        start = time.perf_counter()
        search()
        best = min(best, time.perf_counter() - start)
    return ids, best


def time_single_queries(search: Callable, n_queries: int, k: int) -> np.ndarray:
    """Seconds per query, one query per call (what a service answering one user sees)."""
    n = min(n_queries, LATENCY_QUERIES)
    seconds = np.empty(n)
    for i in range(n):
        start = time.perf_counter()
        search(slice(i, i + 1), k)
        seconds[i] = time.perf_counter() - start
    return seconds


def run_unit(unit: BuildUnit, threads: int, contended: bool = False) -> dict:
    """Run one build unit and return its record (the caller writes it)."""
    from vecbench import environment, groundtruth, metrics, ordering

    thread_info = environment.set_threads(threads)
    dataset = load_dataset(unit.dataset, unit.base_dir)
    from vecbench.datasets import guards
    guard_stats, warnings = guards.inspect(dataset)  # duplicates, zero vectors, queries in base
    truth = groundtruth.ground_truth(dataset.base, dataset.queries, dataset.metric,
                                     dataset.fingerprint(), unit.k)
    if dataset.neighbors is not None:
        sample = min(len(dataset.queries), 1000)
        wrong = groundtruth.shipped_mismatch(dataset.neighbors[:sample], _head(truth, sample),
                                             dataset.base, dataset.queries[:sample], unit.k)
        if wrong > 0:
            warnings.append(f"shipped neighbors mismatch: {wrong:.1%} of {sample} sampled "
                            "queries disagree with exact search; using recomputed ground truth")
    # query difficulty from the original vectors: the same quartiles for every pipeline and index
    query_lid = metrics.query_lid_from_truth(dataset.base, dataset.queries, dataset.metric,
                                             truth, dataset.fingerprint())
    lid_quartiles = metrics.quartile_groups(query_lid)

    context = ordering.OrderingContext(metric=dataset.metric, labels=dataset.labels,
                                       fingerprint=dataset.fingerprint())
    order_seed = unit.seed * 1_000_003 + unit.repeat
    perm = ordering.apply(unit.ordering.name, unit.ordering.params, dataset.base, order_seed,
                          context)
    ordered = unit.ordering.name != "original"
    build_params = dict(unit.index.build)
    build_params["seed"] = int(build_params.get("seed", unit.seed)) + unit.repeat
    build_threads = 1 if ordered else int(build_params.pop("threads", threads) or threads)
    build_params.pop("threads", None)
    # the constructor's threads serve searches; the build gets its own count
    index = indexes.get(unit.index.name)(threads=threads, **build_params)
    # the instance says which code kinds it takes natively (e.g. faiss_sq by its qtype)
    encoded = encode(dataset, unit.pipeline, frozenset(index.accepts))
    truth_index = truth
    if encoded.quantization != "none" or unit.pipeline:
        truth_index = groundtruth.exact_knn(encoded.decoded_base, encoded.decoded_queries,
                                            unit.k, dataset.metric)

    codes = encoded.base if not ordered else np.ascontiguousarray(encoded.base[perm])
    start = time.perf_counter()
    report = index.build(codes, dataset.metric, train=encoded.train, threads=build_threads)
    build_s = time.perf_counter() - start
    build_threads = report.threads  # what the build really used
    index_bytes = int(index.nbytes())
    bytes_per_vector, quantization = encoded.bytes_per_vector, encoded.quantization
    if quantization == "none" and report.compresses:
        # the index quantizes float32 itself (e.g. faiss_sq 8bit): count what it stores
        bytes_per_vector, quantization = report.code_bytes_per_vector, "index"

    base_row = {
        "experiment": unit.experiment, "dataset": dataset.name,
        "pipeline": pipeline_label(unit.pipeline), "index": unit.index.name,
        **{f"build.{name}": value for name, value in unit.index.build.items()},
        "ordering": component_label(unit.ordering), "repeat": unit.repeat, "k": unit.k,
        "build_s": build_s, "fit_s": encoded.fit_s, "encode_s": encoded.encode_s,
        "bytes_per_vector": bytes_per_vector, "index_bytes": index_bytes,
        "compression_ratio": 4.0 * dataset.dim / bytes_per_vector,
        "quantization": quantization, "threads": threads,
        # how many of each point's neighbours in the transformed space are false (sampled)
        f"trustworthiness@{unit.k}": (
            _trustworthiness(dataset, encoded, unit.k, unit.seed) if unit.pipeline else None),
        "build_threads": build_threads, "contended": contended, "status": "ok", "reason": "",
    }
    k = unit.k
    rows = []
    finer: dict = {}
    for params in unit.index.search_grid:
        for rescoring in unit.index.rescore_grid:
            if rescoring and rescoring["with"] not in finer:
                finer[rescoring["with"]] = rescore.FinerVectors(rescoring["with"], dataset.base,
                                                                dataset.train)
            search = _searcher(index, params, perm if ordered else None, rescoring,
                               finer.get(rescoring.get("with")), encoded.queries,
                               dataset.queries, dataset.metric)
            ids, best = time_batch(lambda: search(slice(None), k))
            latencies = time_single_queries(search, len(encoded.queries), k)
            recall = metrics.recall_per_query(ids, truth.ids, k)
            recall_index = metrics.recall_per_query(ids, truth_index.ids, k)
            recall_eps = metrics.recall_eps_per_query(ids, truth, dataset.base, dataset.queries,
                                                      k)
            row = {**base_row, **{f"search.{name}": value for name, value in params.items()},
                   **{f"rescore.{name}": value for name, value in rescoring.items()},
                   f"recall@{k}": float(recall.mean()),
                   f"recall_index@{k}": float(recall_index.mean()),
                   f"recall_eps@{k}": float(recall_eps.mean()),
                   **{f"recall@{k}_q{i}": value for i, value in
                      enumerate(metrics.recall_by_quartile(recall, lid_quartiles), start=1)},
                   "qps": len(encoded.queries) / best, **metrics.latency_percentiles(latencies)}
            if rescoring:
                row["rescore_bytes_per_vector"] = finer[rescoring["with"]].bytes_per_vector
            row["per_query"] = {f"recall@{k}": np.round(recall, PER_QUERY_DECIMALS).tolist()}
            if dataset.qrels is not None:
                row.update(_relevance(search, dataset, ids, row["per_query"]))
            rows.append(row)

    return {
        "spec": unit.spec(), "experiment": unit.experiment, "status": "ok",
        "dataset": {"name": dataset.name, "n_base": len(dataset.base),
                    "n_queries": len(dataset.queries), "dim": dataset.dim,
                    "metric": dataset.metric, "fingerprint": dataset.fingerprint()},
        "environment": environment.describe(thread_info), "warnings": warnings,
        "guards": guard_stats,
        "notes": encoded.notes, "model_bytes": encoded.model_bytes,
        "query_lid": {"k": metrics.query_lid_k(len(dataset.base)), "estimator": "mle",
                      "values": np.round(query_lid, PER_QUERY_DECIMALS).tolist()},
        "rows": rows,
    }


def _searcher(index, params: dict, perm: np.ndarray | None, rescoring: dict, finer,
              queries: np.ndarray, original_queries: np.ndarray, metric: str) -> Callable:
    """``search(rows, depth) -> ids`` in dataset row ids: index search, order mapped back,
    and (when rescoring) k × oversample candidates re-ranked with the finer vectors. All of it is
    inside the timed call: it is what a query costs."""
    def search(rows: slice, depth: int) -> np.ndarray:
        fetch = depth * rescoring["oversample"] if rescoring else depth
        ids, _ = index.search(queries[rows], fetch, **params)
        if perm is not None:
            ids = np.where(ids >= 0, perm[np.maximum(ids, 0)], -1)
        if rescoring:
            ids = rescore.rerank(ids, original_queries[rows], finer, metric, depth)
        return ids
    return search


def _relevance(search: Callable, dataset: Dataset, ids: np.ndarray, per_query: dict) -> dict:
    """nDCG@10 and MRR@10 from the measured search's top 10; recall@100 from a search 100 deep.

    nDCG@10 must come from the search as configured: a deeper search would raise an HNSW's
    effective ef (max(ef, depth)) and flatter it. Only recall@100 needs depth 100 (untimed).
    """
    from vecbench import relevance

    top = ids if ids.shape[1] >= 10 else search(slice(None), 10)
    scores = {"ndcg@10": relevance.ndcg_at_k(top, dataset, 10),
              "recall@100": relevance.recall_at_k(search(slice(None), 100), dataset, 100),
              "mrr@10": relevance.mrr_at_k(top, dataset, 10)}
    judged = ~np.isnan(scores["ndcg@10"])  # queries without a relevant judgment have no score
    for name, values in scores.items():
        per_query[name] = np.round(values, PER_QUERY_DECIMALS).tolist()
    return {name: float(values[judged].mean()) for name, values in scores.items()}


def _head(truth, n: int):
    from vecbench.groundtruth import GroundTruth

    return GroundTruth(truth.ids[:n], truth.distances[:n], truth.metric)


def component_label(component: Component) -> str:
    if not component.params:
        return component.name
    inner = ",".join(f"{key}={value}" for key, value in sorted(component.params.items()))
    return f"{component.name}({inner})"


def pipeline_label(steps: tuple[Component, ...]) -> str:
    return "|".join(component_label(step) for step in steps) or "float32"


# ---------------------------------------------------------------------------------------------

def _worker(args: tuple) -> tuple[str, list[str]]:
    unit, threads, results, key = args
    record = run_unit(unit, threads, contended=True)
    record["key"] = key
    store.write_run(results, key, record)
    return key, record["warnings"]


def run_experiment(experiment: Experiment, results: str | Path, *, force: bool = False,
                   jobs: int = 1, threads: int | None = None,
                   progress: bool = False, log: Callable[[str], None] = print) -> dict:
    """Run every unit not already complete; return counts of run and skipped units."""
    from vecbench import environment

    versions = STAGE_VERSIONS
    todo = []
    skipped = 0
    for unit in experiment.units:
        key = unit.key(versions)
        if not force and store.is_complete(results, key):
            skipped += 1
        else:
            todo.append((unit, key))
    total_threads = threads or experiment.units[0].threads or environment.cpu_count()
    warnings: list[str] = []
    if jobs <= 1:
        bar = _progress(len(todo), progress)
        for unit, key in todo:
            record = run_unit(unit, unit.threads or total_threads)
            record["key"] = key
            store.write_run(results, key, record)
            warnings.extend(record["warnings"])
            bar.update(1)
        bar.close()
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        per_job = max(1, total_threads // jobs)
        # spawn, not fork: OpenMP in the parent (faiss) can deadlock a forked child
        context = multiprocessing.get_context("spawn")
        bar = _progress(len(todo), progress)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = [pool.submit(_worker, (unit, unit.threads or per_job, str(results), key))
                       for unit, key in todo]
            for future in as_completed(futures):
                warnings.extend(future.result()[1])
                bar.update(1)
        bar.close()
    for warning in dict.fromkeys(warnings):
        log(f"warning: {warning}")
    return {"run": len(todo), "skipped": skipped, "warnings": warnings}


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool):
    if not enabled or total == 0:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="unit", desc="vecbench")
