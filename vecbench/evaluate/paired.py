"""Paired differences over queries: how much does a configuration lose against a baseline?

Two configurations run on the same queries of the same dataset are compared query by query
(computed at collect from the run records' raw results), and the mean difference gets a percentile
bootstrap interval over queries (scipy.stats.bootstrap). Pairing removes the between-query
spread, which dwarfs the differences between indexes or codecs on one query set. Repeats of a
configuration (fit, training and build seeds) are one configuration whose interval resamples
seeds, then queries; a winner can be picked on held-out queries; verdicts carry
Benjamini-Hochberg and TOST error rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vecbench.evaluate import bootstrap, compare, holdout, metrics, results, verdicts
from vecbench.core.errors import ConfigError

#: Columns shown beside the difference, when present.
SHOWN = ["dataset", "pipeline", "index", "ordering", "repeat", "quantization",
         "bytes_per_vector"]
#: |difference| below this counts a query as unchanged (per-query values keep 5 decimals).
CHANGED = 1e-4


def per_query_frame(source: str | Path):
    """The result table with each row's per-query values as a mapping ``per_query`` (metric ->
    array), from run records or from a study's results.parquet + per_query.parquet."""
    frame, long = results.per_query(source)
    if frame.empty or long.empty:
        raise ConfigError(f"{source}: no rows with per-query values", "DIR")
    metrics = [c for c in long.columns if "@" in c]
    by_row = {row: {m: part[m].to_numpy() for m in metrics if part[m].notna().any()}
              for row, part in long.groupby("row", sort=False)}
    frame = frame.reset_index(drop=True)
    frame["per_query"] = [by_row.get(i, {}) for i in range(len(frame))]
    return frame


def bootstrap_mean(delta: np.ndarray, resamples: int = 10_000, seed: int = 0,
                   confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``delta`` and its percentile bootstrap interval over the entries."""
    interval = bootstrap.queries(delta, resamples, seed, confidence)
    return interval.mean, interval.low, interval.high


@dataclass
class _Config:
    """One configuration of a group: its rows (one per seed) and its seeds x queries matrices."""

    row: object                 # the first row, for the columns shown beside
    values: np.ndarray          # seeds x queries, the metric
    deltas: np.ndarray          # seeds x queries, the metric minus the same seed's baseline
    reference: np.ndarray       # seeds x queries, the baseline


def paired_table(frame, baseline: str, metric: str, *, resamples: int = 10_000,
                 seed: int = 0, confidence: float = 0.95, extra: tuple | list = (),
                 within: tuple | list = ("dataset",), seeds: str | None = "repeat",
                 select_on: tuple | list | None = None, split_seed: int = 0,
                 margin: float | None = None, verdicts_: bool = False,
                 alpha: float = verdicts.ALPHA, scale: float = 1.0):
    """One row per configuration: metric, baseline's metric, mean difference and interval.

    The baseline is chosen per group of ``within`` columns (per dataset by default) by
    ``baseline``, a pandas query like ``--where`` ("pipeline == 'float32' and index ==
    'flat'"), and must match exactly one row of each group, or one row per seed. ``within=
    ("dataset", "bytes_per_vector")`` compares each reduction with PCA at the same size, for
    instance. ``extra`` columns are copied beside.

    ``seeds`` (default ``repeat``): the column of the seed axis. The rows of a configuration
    that differ only in it are one configuration; each is paired with the baseline of the same
    seed (or the one baseline row), and the interval resamples seeds, then queries
    (:func:`vecbench.evaluate.bootstrap.seeds_and_queries`); ``ci_queries_*`` is then the
    interval over queries alone, of the seed-averaged differences. None: each row on its own.

    ``select_on``: columns whose groups keep only their winner, picked by the mean metric on a
    seeded half of the queries (``split_seed``) and reported on the other half
    (:mod:`vecbench.evaluate.holdout`). ``margin`` (metric units) and ``verdicts_`` add
    Benjamini-Hochberg verdicts across the table's rows (:mod:`vecbench.evaluate.verdicts`);
    ``scale`` only writes the margin in the verdicts (100: points).
    """
    import pandas as pd

    for column in extra:
        if column not in frame.columns:
            raise ConfigError(f"unknown column {column!r}", "--show")
    within = list(within)
    if seeds == "repeat" and seeds not in frame.columns:  # a table without repeats
        seeds = None
    for column, option in [(c, "--within") for c in within] + \
            [(c, "--select-on") for c in (select_on or ())] + [(seeds, "--seeds")]:
        if column is not None and column not in frame.columns:
            raise ConfigError(f"unknown column {column!r}; expected one of: "
                              f"{', '.join(c for c in frame.columns if c != 'per_query')}",
                              option)
    if metric not in frame.columns:
        raise ConfigError(f"unknown metric {metric!r}; expected one of: "
                          f"{', '.join(c for c in frame.columns if '@' in c)}", "--metric")
    if margin is not None and not margin > 0:
        raise ConfigError(f"the equivalence margin must be > 0, got {margin!r}", "--margin")
    compare.select_rows(frame, baseline, "--baseline")  # a bad query fails here, once
    info = metrics.metric_info(metric)
    higher = info.higher_is_better if info else True
    identity = [c for c in results.config_columns(frame, repeat=seeds != "repeat")
                if c != seeds and c not in within]
    out = []
    for key, rows in frame.groupby(within, sort=False, dropna=False):
        group = ", ".join(f"{c} {v!r}" for c, v in zip(within, key))
        configs = _configurations(rows, baseline, metric, group, identity, seeds)
        baseline_rows = set(rows.query(baseline).index)
        if select_on:
            first = next(iter(configs.values())).values
            chosen = holdout.split(first.shape[1], split_seed)
            picked = {}
            for _, members in rows.groupby(list(select_on), sort=False, dropna=False):
                keys = [k for k in configs if configs[k].row.name in set(members.index)]
                if keys:
                    best = holdout.winners({k: configs[k].values[:, chosen.select].mean()
                                            for k in keys}, higher)
                    picked[best] = configs[best]
            configs = {k: c for k, c in configs.items() if k in picked}
        for config in configs.values():
            entry = _entry(config, metric, extra, seeds, resamples, seed, confidence, margin,
                           chosen.report if select_on else None)
            entry["_baseline"] = config.row.name in baseline_rows
            if select_on:
                entry.update({"selected_on": len(chosen.select), "split_seed": split_seed})
            out.append(entry)
    table = pd.DataFrame(out)
    if table.empty:
        return table
    if margin is not None or verdicts_:  # the baseline against itself is no comparison
        compared = table[~table["_baseline"]]
        words, q_diff, q_equiv = verdicts.verdicts(
            compared["delta"], compared["_p"], compared["_p_equiv"] if margin else None,
            margin=margin, alpha=alpha, higher_is_better=higher, scale=scale)
        table.loc[compared.index, "q"] = q_diff
        if q_equiv is not None:
            table.loc[compared.index, "q_equivalent"] = q_equiv
        table["verdict"] = "baseline"
        table.loc[compared.index, "verdict"] = words
    table = table.drop(columns=[c for c in ("_p", "_p_equiv", "_baseline") if c in table])
    # a column that is the same in every row (ordering "original", repeat 0) says nothing here
    constant = [c for c in ("ordering", "repeat", "quantization", "queries")
                if c in table and table[c].nunique(dropna=False) == 1 and len(table) > 1
                and not (select_on and c == "queries")]  # a split names both halves
    if "seeds" in table and (table["seeds"] == 1).all():
        constant.append("seeds")
    return table.drop(columns=sorted(set(constant)))


def _configurations(rows, baseline: str, metric: str, group: str, identity: list,
                    seeds: str | None) -> dict:
    """The group's configurations (identity -> _Config), each paired seed by seed."""
    base = rows.query(baseline)
    by_seed = seeds is not None and len(base) > 1
    if (len(base) != 1 and not by_seed) or (by_seed and base[seeds].duplicated().any()):
        raise ConfigError(f"{baseline!r} matches {len(base)} rows of {group}; "
                          "expected exactly one, or one per seed (add conditions, e.g. index "
                          "== 'flat')", "--baseline")
    references = {}
    for _, row in base.iterrows():
        reference = np.asarray(row["per_query"].get(metric, []), dtype=np.float64)
        if reference.size == 0:
            raise ConfigError(f"the baseline of {group} has no per-query {metric!r}",
                              "--metric")
        references[row[seeds] if by_seed else None] = reference
    grouped: dict = {}
    for _, row in rows.iterrows():
        ident = tuple(_key(row.get(c)) for c in identity) + \
            (() if seeds is not None else (row.name,))
        grouped.setdefault(ident, []).append(row)
    configs = {}
    for ident, members in grouped.items():
        if seeds is not None:
            members = sorted(members, key=lambda r: _key(r[seeds]))
        values, refs = [], []
        for row in members:
            reference = references.get(row[seeds] if by_seed else None)
            if reference is None:
                raise ConfigError(f"the baseline of {group} has no {seeds} {row[seeds]!r}; "
                                  "expected one baseline row per seed of the rows compared",
                                  "--baseline")
            value = np.asarray(row["per_query"].get(metric, []), dtype=np.float64)
            if value.shape == reference.shape:  # a row without this metric has nothing to pair
                values.append(value)
                refs.append(reference)
        if values:
            values, refs = np.vstack(values), np.vstack(refs)
            configs[ident] = _Config(members[0], values, values - refs, refs)
    return configs


def _key(value):
    """A hashable, sortable key of a cell (NaN and None are one key)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return value


def _entry(config: _Config, metric: str, extra, seeds, resamples: int, seed: int, confidence: float,
           margin: float | None, report: np.ndarray | None) -> dict:
    import pandas as pd

    row = config.row
    values, deltas, reference = config.values, config.deltas, config.reference
    if report is not None:
        values, deltas, reference = values[:, report], deltas[:, report], reference[:, report]
    interval = bootstrap.seeds_and_queries(deltas, resamples, seed, confidence)
    mean_delta = deltas.mean(axis=0)   # per query, over the seeds
    entry = {c: row[c] for c in SHOWN if c in row.index and c != seeds}
    entry.update({c: row[c] for c in row.index
                  if c.startswith(("build.", "search.", "rescore.")) and pd.notna(row[c])
                  and c not in entry and c != seeds})
    entry.update({c: row[c] for c in extra if c in row.index})
    entry.update({metric: float(values.mean()), "baseline": float(reference.mean()),
                  "delta": interval.mean, "ci_low": interval.low, "ci_high": interval.high})
    if len(deltas) > 1:  # the interval over queries alone, to show what the seeds add
        alone = bootstrap.queries(mean_delta, resamples, seed, confidence)
        entry.update({"ci_queries_low": alone.low, "ci_queries_high": alone.high})
    entry.update({"worse": int((mean_delta < -CHANGED).sum()),
                  "better": int((mean_delta > CHANGED).sum()), "queries": deltas.shape[1],
                  "seeds": len(deltas), "_p": interval.p_value()})
    if margin is not None:
        entry["_p_equiv"] = interval.equivalence_p(margin)
    return entry


def format_markdown(table, scale: float = 1.0, digits: int = 4, relative: bool = False,
                    drop: tuple | list = ()) -> str:
    """A Markdown table; ``scale`` multiplies the difference and its interval (100 = points);
    ``relative`` adds the difference as a percentage of the baseline."""
    if table.empty:
        return "(no rows)\n"
    shown = table.copy()
    for column in ("delta", "ci_low", "ci_high"):
        shown[column] = shown[column] * scale
    shown["difference [95% CI]"] = [
        f"{d:+.{max(digits - 2, 1)}f} [{lo:+.{max(digits - 2, 1)}f}, {hi:+.{max(digits - 2, 1)}f}]"
        for d, lo, hi in zip(shown["delta"], shown["ci_low"], shown["ci_high"])]
    if relative:  # the difference as a percentage of the baseline's mean
        base = table["baseline"].where(table["baseline"] != 0)
        shown["relative % [95% CI]"] = [
            "" if np.isnan(b) else f"{100 * d / b:+.2f} [{100 * lo / b:+.2f}, {100 * hi / b:+.2f}]"
            for d, lo, hi, b in zip(table["delta"], table["ci_low"], table["ci_high"], base)]
    if "ci_queries_low" in shown:  # the same difference's interval without the seeds' spread
        shown["queries only [95% CI]"] = [
            "" if np.isnan(lo) else f"[{lo * scale:+.{max(digits - 2, 1)}f}, "
                                    f"{hi * scale:+.{max(digits - 2, 1)}f}]"
            for lo, hi in zip(shown["ci_queries_low"], shown["ci_queries_high"])]
    shown = shown.drop(columns=["delta", "ci_low", "ci_high", "ci_queries_low",
                                "ci_queries_high"] + [c for c in drop if c in shown.columns],
                       errors="ignore")
    columns = list(shown.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in shown.iterrows():
        lines.append("| " + " | ".join(_cell(row[c], c, digits) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _cell(value, column: str, digits: int) -> str:
    if not isinstance(value, float):
        return str(value)
    if np.isnan(value):
        return ""
    if column in ("bytes_per_vector", "repeat", "seeds") or value.is_integer():
        return f"{value:g}"
    return f"{value:.{digits}f}"
