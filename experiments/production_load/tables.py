"""Tables of results/production_load/README.md, from the study's collected results.csv:

    vecbench collect RESULTS --metrics "qps_at_recall(0.95),recall_at_latency(10)"
    python experiments/production_load/tables.py RESULTS/results.csv results/production_load

writes sustainable.csv, qps_at_recall.csv, bottleneck.csv and contention.csv into the second
folder and prints them as Markdown. Intervals are Student's t 95% over the repeats (independent
builds; with 2 repeats t = 12.7, so they are wide).

- sustainable: per index, search setting and client count, the sustainable rate (p99 <= 10 ms),
  and its ratio to the bare loop's (clients 0: same library, same arrivals, no processes).
- qps_at_recall: the best sustainable rate at recall@10 >= 0.95 over an index's two settings.
- bottleneck: per index, client count and rate, where a query's time went (send lag: the client
  behind its schedule; queue: waiting for the server thread; service: the search), and which
  side held the rate back.
- contention: what the machine was doing while the timings ran.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from vecbench.core import atomic
from vecbench.evaluate.metrics import mean_ci95

SETTING = ("search.ef", "search.nprobe", "search.ef_search")
POINT = "qps_at_recall(0.95)"


def setting_of(row) -> str:
    for column in SETTING:
        if column in row and pd.notna(row[column]):
            return f"{column.split('.')[1]}={int(row[column])}"
    return ""


def interval(values) -> tuple[float, float, float]:
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    return mean_ci95(values) if len(values) else (np.nan, np.nan, np.nan)


def sustainable(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    keys = ["index", "setting", "search.arrival.clients"]
    per_build = frame.groupby(keys + ["repeat"], sort=False).agg(
        rate=("sustainable_rate", "first"), recall=("recall@10", "first")).reset_index()
    for (index, setting, clients), group in per_build.groupby(keys, sort=False):
        mean, low, high = interval(group["rate"])
        rows.append({"index": index, "setting": setting, "clients": int(clients),
                     "recall@10": group["recall"].mean(), "sustainable_rate": mean,
                     "ci95_low": low, "ci95_high": high, "repeats": len(group)})
    out = pd.DataFrame(rows)
    bare = out[out["clients"] == 0].set_index(["index", "setting"])["sustainable_rate"]
    out["ratio_to_bare_loop"] = [
        row.sustainable_rate / bare.get((row.index, row.setting), np.nan)
        if bare.get((row.index, row.setting), 0) else np.nan for row in out.itertuples()]
    return out


def qps_at_recall(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (index, clients), group in frame.groupby(["index", "search.arrival.clients"], sort=False):
        per_build = group.groupby("repeat")[POINT].first()
        mean, low, high = interval(per_build.fillna(0.0))  # no qualifying setting: 0
        attained = group[group[f"{POINT}.at"].astype(str) == "True"]
        rows.append({"index": index, "clients": int(clients), POINT: mean, "ci95_low": low,
                     "ci95_high": high,
                     "at": ", ".join(sorted(set(attained["setting"]))) or "none"})
    return pd.DataFrame(rows)


def bottleneck(frame: pd.DataFrame) -> pd.DataFrame:
    keys = ["index", "setting", "search.arrival.clients", "search.arrival.rate"]
    columns = ["p50_ms", "p99_ms", "send_lag_p99_ms", "queue_p99_ms", "service_p50_ms",
               "dropped_share", "offered_qps", "achieved_qps"]
    out = frame.groupby(keys, sort=False)[columns].median().reset_index()
    out["sustained"] = frame.groupby(keys, sort=False)["sustained"].apply(
        lambda s: f"{int(s.astype(str).eq('True').sum())}/{len(s)}").to_numpy()

    def side(row) -> str:
        if row["sustained"].startswith(str(len(frame["repeat"].unique()))):
            return "-"
        if row["search.arrival.clients"] == 0:
            return "index"   # the bare loop has no client: its lag is its own queue
        return "client" if row["send_lag_p99_ms"] > row["queue_p99_ms"] else "index"
    out["held_back_by"] = out.apply(side, axis=1)
    return out.rename(columns={"search.arrival.clients": "clients",
                               "search.arrival.rate": "rate"})


def contention(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.groupby("index", sort=False).agg(
        rows=("contended", "size"),
        contended=("contended", lambda s: int(s.astype(str).eq("True").sum())),
        load_1m_median=("load_1m", "median"), load_1m_max=("load_1m", "max"),
        runnable_median=("runnable_max", "median"), runnable_max=("runnable_max", "max"),
        steal_share_max=("steal_share", "max"),
        cpu_per_wall_median=("cpu_per_wall", "median")).reset_index()


def markdown(frame: pd.DataFrame) -> str:
    def cell(value) -> str:
        if isinstance(value, (float, np.floating)):
            return "" if np.isnan(value) else ("inf" if np.isinf(value) else f"{value:.3g}")
        return str(value)
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main(source: str, out: str) -> None:
    frame = pd.read_csv(source)
    frame = frame[frame["status"] == "ok"].copy()
    frame["setting"] = frame.apply(setting_of, axis=1)
    for name, table in (("sustainable", sustainable(frame)),
                        ("qps_at_recall", qps_at_recall(frame)),
                        ("bottleneck", bottleneck(frame)),
                        ("contention", contention(frame))):
        atomic.write_text(Path(out) / f"{name}.csv", table.to_csv(index=False))
        print(f"### {name}\n\n{markdown(table)}\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
