"""Runbook metrics, from a unit's raw step log (``RawResults.runbook``) at collect time.

Each function takes the log (a dict of arrays, :mod:`vecbench.run.streaming`), the row's step
(``SettingInfo.step``) and a depth; it returns a number, NaN where the log cannot say. The
metric registry (:mod:`vecbench.evaluate.metrics`) wraps them. ``add_step_means`` adds the
mean over a unit's search steps of its recall, the streaming track's score.
"""

from __future__ import annotations

#: Columns collect adds to a runbook unit's rows (``{k}``: the unit's k).
COLUMNS = ("searchable@{k}", "truth_s", "insert_per_s", "delete_per_s", "replace_per_s",
           "rebuild_s", "compact_s")


def throughput(operation: str):
    """Vectors per second of ``operation`` steps over the whole runbook (the build, and inserts
    that a rebuild applies, excluded: they are no insert's)."""
    def compute(log: dict, step: dict, depth: int | None) -> float:
        chosen = log["op"] == operation
        seconds = float(log["seconds"][chosen].sum())
        return float(log["count"][chosen].sum()) / seconds if seconds > 0 else float("nan")
    return compute


def total_seconds(operation: str):
    """Seconds of every ``operation`` step (rebuild: with those before searches)."""
    def compute(log: dict, step: dict, depth: int | None) -> float:
        seconds = float(log["seconds"][log["op"] == operation].sum())
        if operation == "rebuild":
            seconds += float(log["prepare_seconds"].sum())
        return seconds
    return compute


def searchable(log: dict, step: dict, depth: int | None) -> float:
    """Share of the points inserted before this search step (since the last one) that a
    search for the point itself returns within ``depth``."""
    chosen = log["probe_step"] == step["search"]
    if not chosen.any():
        return float("nan")
    found = (log["probe_ids"][chosen][:, :depth] == log["probe_tags"][chosen][:, None]).any(1)
    return float(found.mean())


def truth_seconds(log: dict, step: dict, depth: int | None) -> float:
    """Seconds this step's exact kNN over the active set took (computed, or read from cache)."""
    import numpy as np

    searches = np.flatnonzero(log["op"] == "search")
    return float(log["truth_seconds"][searches[step["search"]]])


def add_step_means(frame):
    """``mean_recall@K`` (K: each row's k) on runbook rows: the mean of ``recall@K`` over the
    unit's search steps, per search setting."""
    if "step" not in frame or frame["step"].isna().all():
        return frame
    keys = [c for c in frame.columns
            if c in ("experiment", "dataset", "pipeline", "index", "ordering", "repeat", "k",
                     "runbook") or c.startswith(("build.", "search."))]
    for k in sorted(set(frame["k"].dropna().astype(int))):
        column = f"recall@{k}"
        if column not in frame:
            continue
        steps = frame["step"].notna() & (frame["k"] == k)
        means = frame[steps].groupby(keys, sort=False, dropna=False)[column].transform("mean")
        frame.loc[steps, f"mean_recall@{k}"] = means
    return frame
