"""Filtered search as a workload of the unit: the ``filters:`` axis over the same index.

Before the build, :func:`prepare` makes each filter of the axis (seeded; generated, labels or a
range), its exact filtered answers (:mod:`vecbench.compute.filtered_knn`, cached and verified)
and, for an index that filters natively, hands it the filters in its row order. After the build,
:func:`search` times every (filter, search setting): ``filter_mode: native`` asks the library
(``filtered_searcher``); ``filter_mode: post`` fetches ``k x oversample`` without the filter
and keeps the first k that pass, inside the timed call (what a post-filter costs is part of
the query). Each setting's raw results name their filter's answers (``RawResults.filters``), so
collect scores filtered recall, ``short@k``, ``violations@k`` and ``selectivity`` from them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vecbench.compute import filters as row_filters
from vecbench.compute import filtered_knn, recall
from vecbench.core.cache import read_verified, write_verified
from vecbench.core.errors import ConfigError, DataError
from vecbench.core.paths import cache_dir
from vecbench.datasets.base import Dataset
from vecbench.run import filter_axis, shared_work
from vecbench.run.experiment import BuildUnit
from vecbench.run.schema import FilterAnswers, RawSearch, SettingInfo
from vecbench.run.timing import Timing, time_batch, time_single_queries


@dataclass
class Prepared:
    """The unit's filters (besides ``none``), in base row order, with their exact answers."""

    components: list = field(default_factory=list)
    filters: list = field(default_factory=list)       # RowFilter per component
    answers: list = field(default_factory=list)       # FilterAnswers per component
    truth_s: list = field(default_factory=list)       # seconds its exact answers took here
    include_none: bool = True                         # none is on the axis (or no axis)


def prepare(unit: BuildUnit, dataset: Dataset, index: Any, perm: np.ndarray | None) -> Prepared:
    """Filters, their exact answers, and (native filtering) the filters handed to the index."""
    prepared = Prepared(include_none=not unit.filters or
                        any(f.name == "none" for f in unit.filters))
    for component in unit.filters:
        if component.name == "none":
            continue
        try:
            row_filter = make_filter(component, dataset, unit.seed, unit.base_dir)
        except ConfigError as exc:
            raise exc.within(component.where) from None
        except DataError as exc:
            raise DataError(f"{component.where}: {exc}") from None
        started = time.perf_counter()
        fingerprint = dataset.fingerprint()
        with shared_work.lock(f"filtered-truth-{fingerprint}"):
            truth = filtered_knn.filtered_truth(dataset.base, dataset.queries, unit.k,
                                                dataset.metric, row_filter, fingerprint)
        prepared.truth_s.append(time.perf_counter() - started)
        prepared.components.append(component)
        prepared.filters.append(row_filter)
        prepared.answers.append(FilterAnswers({
            **row_filter.to_arrays(""), "truth_ids": truth.ids,
            "n_matching": truth.n_matching, "kth": truth.kth}))
    if prepared.filters and "filter" in index.capabilities and any(
            search.get("filter_mode", "native") == "native" for search in unit.index.search_grid):
        index.attach_filters([f.permuted(perm) for f in prepared.filters])
    return prepared


#: Filters read from files: checked against their dataset before any unit runs.
FILE_FILTERS = ("labels", "range")


def check_files(unit: BuildUnit, dataset: Dataset) -> None:
    """The labels and range files of the unit's filters against its dataset (one value per row
    or query; every query label carried by a base row): the runner checks them before any unit
    runs, so a bad file stops the run with one line (exit 2) instead of failing its units."""
    for component in unit.filters:
        if component.name in FILE_FILTERS:
            try:
                make_filter(component, dataset, unit.seed, unit.base_dir)
            except ConfigError as exc:
                raise exc.within(component.where) from None


def make_filter(component: Any, dataset: Dataset, seed: int, base_dir: str):
    """The RowFilter of one entry of the axis (generated ones cached by content)."""
    params = component.params
    nq = len(dataset.queries)
    if component.name == "generated":
        if params["correlation"] == "random":
            return row_filters.random_filter(len(dataset.base), nq, params["selectivity"], seed)
        key = shared_work.key_of(dataset.fingerprint(), dataset.metric, params, seed,
                                 row_filters.VERSION)
        path = cache_dir() / "filters" / f"{key}.npz"
        stored = read_verified(path, "generated filter")
        if stored is not None:
            return row_filters.RowFilter.from_arrays(stored, "")
        with shared_work.lock(f"filter-{key}"):
            made = row_filters.generated(dataset.base, dataset.queries, dataset.metric,
                                         params["selectivity"], params["correlation"], seed)
            write_verified(path, made.to_arrays(""))
        return made
    if component.name == "labels":
        labels = _column(params["labels"], base_dir, "labels", len(dataset.base), "base rows")
        queries = _column(params["query_labels"], base_dir, "query_labels", nq, "queries")
        try:
            return row_filters.label_filter(labels, queries, seed)
        except DataError as exc:
            raise ConfigError(str(exc).split(": ", 1)[1], "query_labels") from None
    values = _column(params["column"], base_dir, "range.column", len(dataset.base), "base rows")
    try:
        values = values.astype(np.float64)
    except ValueError:
        raise ConfigError(f"{params['column']}: expected numbers, got {values[:1].tolist()!r}",
                          "range.column") from None
    return row_filters.range_filter(values, nq, params["low"], params["high"], seed)


def _column(name: str, base_dir: str, key: str, expected: int, of: str) -> np.ndarray:
    """One value per row from ``name`` (.npy, else text with one value a line), its length
    checked against ``expected`` (a one-line ConfigError naming the file otherwise)."""
    path = Path(name) if Path(name).is_absolute() else Path(base_dir) / name
    if not path.is_file():
        raise ConfigError(f"no such file {str(path)!r}; expected one value per {of[:-1]}", key)
    try:
        if path.suffix == ".npy":
            values = np.load(path, allow_pickle=False)
        else:
            values = np.array(path.read_text().splitlines())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc}); expected a .npy array or one value a "
                          "line", key) from None
    values = np.asarray(values).reshape(-1) if np.ndim(values) <= 1 else values
    if values.ndim != 1 or len(values) != expected:
        raise ConfigError(f"{path} has {len(values)} values; expected one per {of[:-1]} "
                          f"({expected})", key)
    return values


# ---------------------------------------------------------------------------------------------
# search

def post_filter(ids: np.ndarray, distances: Any, allowed: np.ndarray, k: int):
    """The first ``k`` ids of each row that pass ``allowed`` (bool, same shape), -1 padded."""
    order = np.argsort(~allowed, axis=1, kind="stable")[:, :k]  # passing ids first, in rank order
    kept = np.take_along_axis(allowed, order, axis=1)
    out = np.where(kept, np.take_along_axis(ids, order, axis=1), -1)
    if distances is not None:
        distances = np.where(kept, np.take_along_axis(np.asarray(distances), order, axis=1),
                             np.inf).astype(np.float32)
    if out.shape[1] < k:
        out = np.pad(out, ((0, 0), (0, k - out.shape[1])), constant_values=-1)
        distances = None
    return out, distances


def filtered_run(index: Any, own: dict, mode: dict, place: int, row_filter: Any,
                 masks: np.ndarray, perm: np.ndarray | None, queries: np.ndarray,
                 k: int) -> Callable:
    """``search(rows, depth) -> (ids, distances)`` in dataset row ids under one filter."""
    shared = len(masks) == 1
    if mode.get("filter_mode", "native") == "native":
        run = index.filtered_searcher(queries, k, own, place)
        fetch = None
    else:
        run = index.searcher(queries, k, own)
        fetch = min(k * mode.get("oversample", 1), len(masks[0]))
    rows_of = np.arange(len(queries))

    def search(rows: slice, depth: int):
        ids, distances = run(rows, depth if fetch is None else max(fetch, depth))
        if perm is not None:
            ids = np.where(ids >= 0, perm[np.maximum(ids, 0)], -1)
        if fetch is None:
            return ids, distances
        which = np.zeros(len(ids), dtype=np.int64) if shared else rows_of[rows]
        allowed = masks[which[:, None], np.maximum(ids, 0)] & (ids >= 0)
        return post_filter(ids, distances, allowed, depth)
    return search


def search(unit: BuildUnit, built: Any, encoded: Any, dataset: Dataset, timing: Timing,
           prepared: Prepared, tell: Callable[[str], None] = lambda step: None
           ) -> tuple[list[SettingInfo], list[RawSearch]]:
    """Every (filter, search setting) of the unit: settings for the record and raw results."""
    k = unit.k
    settings: list[SettingInfo] = []
    raw: list[RawSearch] = []
    n_base_ids = np.int32 if len(dataset.base) < 2**31 else np.int64
    total = len(prepared.filters) * len(unit.index.search_grid)
    for place, (component, row_filter) in enumerate(zip(prepared.components, prepared.filters)):
        masks = row_filter.masks(range(1) if row_filter.shared else None)
        info = {"label": filter_axis.label(component), "kind": component.name,
                "params": dict(component.params), "answers": place,
                "truth_s": prepared.truth_s[place]}
        for params in unit.index.search_grid:
            own = {name: value for name, value in params.items()
                   if name not in filter_axis.SEARCH_KEYS and name != "clients"}
            mode = {"filter_mode": params.get("filter_mode", "native"),
                    **({"oversample": params.get("oversample", 1)}
                       if params.get("filter_mode") == "post" else {})}
            tell(f"search {info['label']} {' '.join(f'{n}={v}' for n, v in own.items())} "
                 f"{mode['filter_mode']} ({len(settings) + 1}/{total})")
            try:
                run = filtered_run(built.index, own, mode, place, row_filter, masks, built.perm,
                                   encoded.queries, k)
                (ids, distances), passes = time_batch(lambda: run(slice(None), k), timing)
                latencies = time_single_queries(run, len(encoded.queries), k, timing)
            except ConfigError as exc:
                raise exc.within(f"{unit.index.where}.search") from None
            raw.append(RawSearch(
                {k: ids.astype(n_base_ids)}, passes, latencies,
                true_distances=recall.true_distances(dataset.base, dataset.queries, ids,
                                                      dataset.metric),
                distances=None if distances is None else np.asarray(distances, np.float32)))
            settings.append(SettingInfo({**own, **mode}, {}, [k], filter=info))
    return settings, raw
