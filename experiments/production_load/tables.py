"""Tables of results/production_load/README.md, from the study's collected results.csv:

    vecbench collect RESULTS --metrics "qps_at_recall(0.95),recall_at_latency(10)"
    python experiments/production_load/tables.py RESULTS/results.csv results/production_load

writes sustainable.csv, qps_at_recall.csv, bottleneck.csv and contention.csv into the second
folder and prints them as Markdown. Intervals are Student's t 95% over the repeats (independent
builds; with 2 repeats t = 12.7, so they are wide).

- sustainable: per index, search setting and client count, the sustainable rate (p99 <= 10 ms,
  as run; and <= 100 ms, from the same p99s), and its ratio to the bare loop's (clients 0:
  same library, same arrivals, no processes).
- p50_vs_bare: median response time per client count against the bare loop at the same rate.
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
from vecbench.evaluate.load_metrics import sustainable_rate
from vecbench.evaluate.metrics import mean_ci95

SETTING = ("search.ef", "search.nprobe", "search.ef_search")
POINT = "qps_at_recall(0.95)"
#: A looser bound, applied at collect time to the same p99s (no rerun): the study's machine was
#: so contended that few rates held 10 ms.
LOOSE_MS = 100.0


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
    per_build = frame.groupby(keys + ["repeat"], sort=False).apply(
        lambda g: pd.Series({"rate": g["sustainable_rate"].iloc[0],
                             "loose": sustainable_rate(g["search.arrival.rate"], g["p99_ms"],
                                                       LOOSE_MS),
                             "recall": g["recall@10"].iloc[0]}),
        include_groups=False).reset_index()
    for (index, setting, clients), group in per_build.groupby(keys, sort=False):
        mean, low, high = interval(group["rate"])
        loose, loose_low, loose_high = interval(group["loose"])
        rows.append({"index": index, "setting": setting, "clients": int(clients),
                     "recall@10": group["recall"].mean(), "sustainable_10ms": mean,
                     "ci95_low": low, "ci95_high": high,
                     "sustainable_100ms": loose, "ci95_low_100ms": loose_low,
                     "ci95_high_100ms": loose_high, "repeats": len(group)})
    out = pd.DataFrame(rows)
    for column in ("sustainable_10ms", "sustainable_100ms"):
        bare = out[out["clients"] == 0].set_index(["index", "setting"])[column]
        out[f"{column}_vs_bare"] = [
            getattr(row, column) / bare.get((row.index, row.setting), np.nan)
            if bare.get((row.index, row.setting), 0) else np.nan for row in out.itertuples()]
    return out


def p50_vs_bare(frame: pd.DataFrame) -> pd.DataFrame:
    """Median response time of each client count against the bare loop's at the same rate
    (medians over repeats): what sending through client processes costs a query."""
    keys = ["index", "setting", "search.arrival.rate"]
    table = frame.groupby(keys + ["search.arrival.clients"], sort=False)["p50_ms"].median()
    table = table.unstack("search.arrival.clients")
    out = table.rename(columns=lambda c: f"p50_ms_clients_{int(c)}").reset_index()
    for clients in (1, 4, 16):
        out[f"ratio_{clients}_to_bare"] = out[f"p50_ms_clients_{clients}"] / \
            out["p50_ms_clients_0"]
    return out.rename(columns={"search.arrival.rate": "rate"})


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
                        ("p50_vs_bare", p50_vs_bare(frame)),
                        ("qps_at_recall", qps_at_recall(frame)),
                        ("bottleneck", bottleneck(frame)),
                        ("contention", contention(frame))):
        atomic.write_text(Path(out) / f"{name}.csv", table.to_csv(index=False))
        print(f"### {name}\n\n{markdown(table)}\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
