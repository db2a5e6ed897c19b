"""What a result table says, per dataset, in three small tables (the report opens with them).

* **Pareto configurations**: the configurations no other one beats on both recall and QPS
  (on recall and bytes per vector where QPS was not measured), best recall first.
* **Best under each storage budget**: for each budget (bytes per vector), the configuration
  with the highest recall among those that fit; the budgets are the storage levels the table
  holds (powers of two across its range when it holds more than eight).

Bytes are ``resident_bytes_per_vector`` (codes, graph links, copies kept for rescoring or held
by the index, per-dataset parameters) where the table has that column, else the codes alone
(``bytes_per_vector``, tables collected before it); the ``bytes`` of each row and the
summary's ``memory`` say which.
* **Fastest at each recall target**: for recall 0.8, 0.9, 0.95 and 0.99, the configuration
  with the highest QPS among those that reach it, or the best recall there is when none does.

A configuration is a configuration family (index, build parameters, pipeline; see
:mod:`vecbench.evaluate.frontier`) with its search parameters and ordering; repeats of it are averaged.
Recall is ``recall@k`` against exact kNN of the original vectors.
"""

from __future__ import annotations

import math

import numpy as np

from vecbench.evaluate.frontier import config_label, family_columns, pareto_front, value_text, varying
from vecbench.evaluate.results import memory_column

RECALL_TARGETS = (0.8, 0.9, 0.95, 0.99)
MAX_BUDGETS = 8
COLUMNS = ("configuration", "recall", "qps", "bytes")


def configurations(frame, recall: str, size: str = "bytes_per_vector"):
    """One row per configuration (repeats averaged), with a ``configuration`` label; ``size``
    (a bytes column) becomes ``bytes``."""
    import pandas as pd

    keys = family_columns(frame) + sorted(c for c in frame.columns if c.startswith("search."))
    keys += [c for c in ("ordering",) if c in frame.columns]
    keys = [c for c in keys if frame[c].notna().any()]
    named = [c for c in keys if c == "index" or c in varying(frame, keys)]
    metrics = [c for c in dict.fromkeys((recall, "qps", size)) if c in frame.columns]
    table = frame[keys + metrics].copy()
    for column in metrics:
        table[column] = pd.to_numeric(table[column], errors="coerce")
    table["_key"] = ["\x1f".join(value_text(v) for v in row)
                     for row in table[keys].itertuples(index=False)]
    grouped = table.groupby("_key", sort=False)
    out = grouped[metrics].mean()
    first = grouped.head(1).set_index("_key")
    out["configuration"] = [config_label(first.loc[key], named) or "(one configuration)"
                            for key in out.index]
    return out.reset_index(drop=True).rename(columns={recall: "recall", size: "bytes"})


def storage_budgets(sizes) -> list[float]:
    """The storage levels present, or powers of two across their range if there are many."""
    levels = sorted({float(b) for b in sizes if np.isfinite(b) and b > 0})
    if len(levels) <= MAX_BUDGETS:
        return levels
    low, high = math.ceil(math.log2(levels[0])), math.floor(math.log2(levels[-1]))
    budgets = [2.0 ** e for e in range(low, high + 1)]
    return sorted(set(budgets + [levels[-1]]))


def _pick(table, rows, by: str) -> dict:
    best = table.loc[rows].sort_values([by, "recall"], ascending=False).iloc[0]
    return {c: best.get(c, np.nan) for c in COLUMNS}


def dataset_summary(frame, recall: str) -> dict:
    """{"pareto": rows, "budgets": rows, "targets": rows, "memory": the bytes column used}:
    lists of dicts (see module doc)."""
    size = memory_column(frame)
    table = configurations(frame, recall, size)
    has_qps = "qps" in table and table["qps"].notna().any()
    has_bytes = "bytes" in table and table["bytes"].notna().any()
    for column in ("qps", "bytes"):
        if column not in table:
            table[column] = np.nan
    summary = {"pareto": [], "budgets": [], "targets": [], "memory": size}
    other, higher = ("qps", True) if has_qps else ("bytes", False)
    if has_qps or has_bytes:
        front = pareto_front(table["recall"].to_numpy(float), table[other].to_numpy(float),
                             True, higher)
        rows = table.iloc[front].sort_values("recall", ascending=False)
        summary["pareto"] = [{c: row[c] for c in COLUMNS} for _, row in rows.iterrows()]
    if has_bytes:
        for budget in storage_budgets(table["bytes"]):
            fits = table.index[(table["bytes"] <= budget) & table["recall"].notna()]
            if len(fits):
                summary["budgets"].append({"budget": budget, **_pick(table, fits, "recall")})
    if has_qps:
        for target in RECALL_TARGETS:
            reach = table.index[(table["recall"] >= target) & table["qps"].notna()]
            if len(reach):
                summary["targets"].append({"target": target, **_pick(table, reach, "qps")})
            else:
                summary["targets"].append({"target": target, "configuration": None,
                                           "recall": table["recall"].max()})
    return summary


def summarize(frame, recall: str) -> dict[str, dict]:
    """{dataset: dataset_summary} over the table's ok rows, datasets in table order."""
    if "status" in frame.columns:
        frame = frame[frame["status"].fillna("ok") == "ok"]
    if recall not in frame.columns:
        return {}
    groups = frame.groupby("dataset", sort=False) if "dataset" in frame.columns else [("", frame)]
    return {str(name): dataset_summary(part, recall) for name, part in groups}
