"""Columns over groups of rows: the sustainable rate of a load, operating points, cost.

- ``sustainable_rate``: over the rates of one setting (every ``search.arrival.rate`` of a
  configuration), the highest whose p99 response time stays within its ``p99_ms_max``; 0 when
  none does. ``sustained`` says it of each row.
- ``recall_at_latency(B)``: over an index's search settings (ef, nprobe, rescoring, and every
  rate of a load), the best recall@k whose p99_ms <= B ms.
- ``qps_at_recall(F)``: over the same settings, the best sustainable rate among those with
  recall@k >= F (where the rows ran an arrival load; else the best qps).

Where no setting meets the budget or the floor, or none held a rate, the value is 0 (not
blank), so that a gate sees a lost operating point as a drop to 0.
- ``usd_per_million_queries``: with ``cost: {usd_per_hour: X}``, the machine's price of a million
  queries at the sustainable rate.

A group is a configuration without its search settings: dataset, pipeline, index, build
parameters, ordering, repeat, and the shape of the load (clients, seconds, bound). Every row of
a group carries the group's value, so ``compare`` matches it setting by setting; the rows that
attain it are marked in ``<name>.at`` (what ``best`` picks from).
"""

from __future__ import annotations

import re

from vecbench.core.errors import ConfigError
from vecbench.core.params import check_float
from vecbench.evaluate.load_metrics import sustainable_rate

_POINT = re.compile(r"^\s*(recall_at_latency|qps_at_recall)\(\s*([0-9.eE+-]+)\s*\)\s*$")
RATE, BOUND = "search.arrival.rate", "search.arrival.p99_ms_max"
#: Search columns that shape the load rather than choose an index setting: kept in a group.
LOAD_SHAPE = ("search.clients", "search.arrival.clients", "search.arrival.seconds",
              BOUND, "search.arrival.drain_seconds")


def parse(text: str) -> tuple[str, float] | None:
    """``qps_at_recall(0.95)`` -> ("qps_at_recall", 0.95); None if not an operating point; a
    ConfigError for one with a bad number (recall floors in [0, 1], budgets > 0)."""
    match = _POINT.match(str(text))
    if not match:
        return None
    kind, number = match.groups()
    try:
        value = float(number)
    except ValueError:
        raise ConfigError(f"expected a number in {kind}(...), got {number!r}", text) from None
    if kind == "qps_at_recall":
        return kind, check_float(text, value, 0.0, 1.0)
    return kind, check_float(text, value, 0.0, 1e6, low_open=True)


def is_point(text: str) -> bool:
    return _POINT.match(str(text)) is not None


def _group_keys(frame, drop_search: bool) -> list[str]:
    keys = [c for c in frame.columns if c in ("dataset", "pipeline", "index", "ordering",
                                              "repeat", "k")
            or c.startswith(("build.", "search.", "rescore."))]
    if drop_search:
        return [c for c in keys if not c.startswith(("search.", "rescore.")) or c in LOAD_SHAPE]
    return [c for c in keys if c != RATE]


def _recall_column(frame) -> str:
    k = int(frame["k"].dropna().iloc[0]) if "k" in frame and frame["k"].notna().any() else 10
    return f"recall@{k}"


def add_group_columns(frame, requested: list[str]):
    """``sustained``, ``sustainable_rate`` and cost where the rows ran a load; each requested
    operating point (a column named as asked, and ``<name>.at``)."""
    import numpy as np
    import pandas as pd

    ok = frame["status"].fillna("ok") == "ok" if "status" in frame else \
        pd.Series(True, index=frame.index)
    if RATE in frame.columns and "p99_ms" in frame.columns:
        load = ok & frame[RATE].notna()
        p99 = pd.to_numeric(frame["p99_ms"], errors="coerce")
        bound = pd.to_numeric(frame[BOUND], errors="coerce")
        frame["sustained"] = (p99 <= bound).where(load)
        frame["sustainable_rate"] = np.nan
        part = frame[load]
        for _, rows in part.groupby(_group_keys(part, False), sort=False, dropna=False):
            frame.loc[rows.index, "sustainable_rate"] = sustainable_rate(
                rows[RATE], p99[rows.index], float(bound[rows.index].iloc[0]))
        if "cost.usd_per_hour" in frame.columns:
            per_second = pd.to_numeric(frame["cost.usd_per_hour"], errors="coerce") / 3600.0
            rate = frame["sustainable_rate"].where(frame["sustainable_rate"] > 0)
            frame["usd_per_million_queries"] = per_second / rate * 1e6
    for name in requested:
        point = parse(name)
        if point is not None:
            _add_point(frame, name, *point, ok)
    return frame


def _add_point(frame, name: str, kind: str, value: float, ok) -> None:
    import numpy as np
    import pandas as pd

    recall = _recall_column(frame)
    for column in (recall, "p99_ms"):
        if column not in frame.columns:
            raise ConfigError(f"{name} needs column {column!r}, which the results lack", name)
    frame[name], frame[f"{name}.at"] = np.nan, False
    recalls = pd.to_numeric(frame[recall], errors="coerce")
    if kind == "recall_at_latency":
        score = recalls.where(pd.to_numeric(frame["p99_ms"], errors="coerce") <= value)
    else:
        speed = pd.to_numeric(frame["qps"], errors="coerce") if "qps" in frame else \
            pd.Series(np.nan, index=frame.index)
        if "sustainable_rate" in frame.columns:
            # a load's row counts where its own rate was held, at the group's sustainable rate
            loaded = frame["sustainable_rate"].notna()
            held = frame[RATE].astype(float) == frame["sustainable_rate"]
            speed = speed.where(~loaded, frame["sustainable_rate"].where(held))
        score = speed.where(recalls >= value)
    score = score.where(ok)
    part = frame[ok]
    for _, rows in part.groupby(_group_keys(part, True), sort=False, dropna=False):
        if recalls[rows.index].isna().all():
            continue   # nothing to judge by: the value stays NaN
        best = score[rows.index].max()
        if pd.isna(best) or best <= 0:
            # no setting meets the floor or the budget (or none held a rate): 0, so that a
            # gate sees a configuration that lost its operating point as a drop, not a blank
            frame.loc[rows.index, name] = 0.0
            continue
        frame.loc[rows.index, name] = best
        frame.loc[rows.index[score[rows.index] == best], f"{name}.at"] = True
