"""Paired differences over queries: how much does a configuration lose against a baseline?

Two configurations run on the same queries of the same dataset are compared query by query
(computed at collect from the run records' raw results), and the mean difference gets a percentile
bootstrap interval over queries (scipy.stats.bootstrap). Pairing removes the between-query
spread, which dwarfs the differences between indexes or codecs on one query set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vecbench.evaluate import compare, results
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
    from scipy.stats import bootstrap

    delta = np.asarray(delta, dtype=np.float64)
    mean = float(delta.mean())
    if len(delta) < 2 or np.ptp(delta) == 0:  # every resample has the same mean
        return mean, mean, mean
    result = bootstrap((delta,), np.mean, n_resamples=resamples, confidence_level=confidence,
                       method="percentile", random_state=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return mean, float(low), float(high)


def paired_table(frame, baseline: str, metric: str, *, resamples: int = 10_000,
                 seed: int = 0, confidence: float = 0.95, extra: tuple | list = (),
                 within: tuple | list = ("dataset",)):
    """One row per configuration: metric, baseline's metric, mean difference and interval.

    The baseline is chosen per group of ``within`` columns (per dataset by default) by
    ``baseline``, a pandas query like ``--where`` ("pipeline == 'float32' and index ==
    'flat'"), and must match exactly one row of each group. ``within=("dataset",
    "bytes_per_vector")`` compares each reduction with PCA at the same size, for instance.
    ``extra`` columns are copied beside.
    """
    import pandas as pd

    for column in extra:
        if column not in frame.columns:
            raise ConfigError(f"unknown column {column!r}", "--show")
    within = list(within)
    for column in within:
        if column not in frame.columns:
            raise ConfigError(f"unknown column {column!r}; expected one of: "
                              f"{', '.join(c for c in frame.columns if c != 'per_query')}",
                              "--within")
    if metric not in frame.columns:
        raise ConfigError(f"unknown metric {metric!r}; expected one of: "
                          f"{', '.join(c for c in frame.columns if '@' in c)}", "--metric")
    compare.select_rows(frame, baseline, "--baseline")  # a bad query fails here, once
    out = []
    for key, rows in frame.groupby(within, sort=False, dropna=False):
        group = ", ".join(f"{c} {v!r}" for c, v in zip(within, key))
        base = rows.query(baseline)
        if len(base) != 1:
            raise ConfigError(f"{baseline!r} matches {len(base)} rows of {group}; "
                              "expected exactly one (add conditions, e.g. index == 'flat')",
                              "--baseline")
        reference = np.asarray(base.iloc[0]["per_query"].get(metric, []), dtype=np.float64)
        if reference.size == 0:
            raise ConfigError(f"the baseline of {group} has no per-query {metric!r}",
                              "--metric")
        for _, row in rows.iterrows():
            values = np.asarray(row["per_query"].get(metric, []), dtype=np.float64)
            if values.shape != reference.shape:
                continue  # a row without this metric (e.g. no judgments) has nothing to pair
            delta = values - reference
            mean, low, high = bootstrap_mean(delta, resamples, seed, confidence)
            entry = {c: row[c] for c in SHOWN if c in row.index}
            entry.update({c: row[c] for c in row.index
                          if c.startswith(("build.", "search.", "rescore.")) and pd.notna(row[c])
                          and c not in entry})
            entry.update({c: row[c] for c in extra if c in row.index})
            entry.update({metric: float(values.mean()), "baseline": float(reference.mean()),
                          "delta": mean, "ci_low": low, "ci_high": high,
                          "worse": int((delta < -CHANGED).sum()),
                          "better": int((delta > CHANGED).sum()), "queries": len(delta)})
            out.append(entry)
    table = pd.DataFrame(out)
    # a column that is the same in every row (ordering "original", repeat 0) says nothing here
    constant = [c for c in ("ordering", "repeat", "quantization", "queries")
                if c in table and table[c].nunique(dropna=False) == 1 and len(table) > 1]
    return table.drop(columns=constant)


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
    shown = shown.drop(columns=["delta", "ci_low", "ci_high"]
                       + [c for c in drop if c in shown.columns])
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
    if column in ("bytes_per_vector", "repeat") or value.is_integer():
        return f"{value:g}"
    return f"{value:.{digits}f}"
