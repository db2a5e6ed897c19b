"""Tables and figure of the map's seed rerun (issue 29), results/hnsw_ordering_map/README.md's
"Rerun" section, from the committed tables of results/hnsw_ordering_map_rerun (rerun.yaml) and
the first map's shifts.csv:

    .venv/bin/python experiments/hnsw_ordering_map/rerun_tables.py > /tmp/rerun.md

Every informed build that moved recall@10 by >= 5 points in the first map was built again with
10 seeds, its graph config with 30 random orders. All builds are scored on the report half of
the queries (vecbench.compute.query_split, split seed 0), the half the held-out query_near_*
orders never saw. Per cell (dataset, M, ef_construction, ef, order): the 10 builds' mean minus
the 30 random builds' mean, with a 95% interval that resamples each group's builds, then the
queries (vecbench.evaluate.bootstrap.two_groups_and_queries), and its two-sided p-value;
Benjamini-Hochberg across every cell of the rerun. A cell *moves recall* when q <= 0.05 and the
shift is >= 5 points, the first map's threshold. A config whose builds are not all done is left
out (a partial run reports its finished configs).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from vecbench.compute.query_split import split
from vecbench.evaluate import bootstrap, verdicts as stated

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results" / "hnsw_ordering_map_rerun"
FIRST = ROOT / "results" / "hnsw_ordering_map" / "shifts.csv"
RECALL = "recall@10"
RANDOM_BUILDS, SEEDS, MIN_POINTS, ALPHA = 30, 10, 5.0, 0.05
CELL = ["dataset", "M", "efc", "ef", "ordering"]


def out() -> Path:
    """The folder written to: the first argument (the staleness test), else the results."""
    return Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS


def order_name(label: str) -> str:
    """The first map's name of an order: the held-out query orders drop their parameters."""
    return label.split("(")[0] if label.startswith("query_near") else label


def load() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The results table and recall@10 as rows x queries (pivoted once; a dataset with fewer
    queries than the widest has NaN in the columns it lacks)."""
    table = pd.read_parquet(RESULTS / "results.parquet").reset_index(drop=True)
    long = pd.read_parquet(RESULTS / "per_query.parquet")
    return table, long.pivot(index="row", columns="query", values=RECALL)


def cells(table: pd.DataFrame, wide: pd.DataFrame) -> pd.DataFrame:
    ok = table[table["status"] == "ok"]
    first = pd.read_csv(FIRST).set_index(CELL)
    out_rows = []
    for (dataset, m, efc, ef), part in ok.groupby(
            ["dataset", "build.M", "build.ef_construction", "search.ef"]):
        random_rows = list(part.index[part["ordering"] == "random"])
        informed = part[part["ordering"] != "random"]
        if len(random_rows) < RANDOM_BUILDS:
            continue
        n_queries = int(wide.loc[random_rows[0]].notna().sum())
        report = split(n_queries, 0).report
        control = wide.loc[random_rows, report].to_numpy(dtype=np.float64)
        for label, builds in informed.groupby("ordering"):
            if len(builds) < SEEDS:
                continue
            treated = wide.loc[list(builds.index), report].to_numpy(dtype=np.float64)
            interval = bootstrap.two_groups_and_queries(treated, control)
            name = order_name(label)
            key = (dataset, int(m), int(efc), int(ef), name)
            before = first.loc[key] if key in first.index else None
            per_build = treated.mean(axis=1) - control.mean()
            out_rows.append({
                "dataset": dataset, "M": int(m), "efc": int(efc), "ef": int(ef),
                "ordering": name, "builds": len(builds), "random builds": len(random_rows),
                "report queries": len(report),
                "first shift (points)": None if before is None else
                float(before["shift (points)"]),
                "first outside": None if before is None else bool(before["outside"]),
                "first PI half (points)": None if before is None else
                100 * float(before["PI half"]),
                "random mean": 100 * control.mean(),
                "random build sd (points)": 100 * control.mean(axis=1).std(ddof=1),
                "shift (points)": 100 * interval.mean,
                "ci low": 100 * interval.low, "ci high": 100 * interval.high,
                "seed sd (points)": 100 * per_build.std(ddof=1),
                "p": interval.p_value()})
    frame = pd.DataFrame(out_rows)
    if frame.empty:
        return frame
    frame["q"] = stated.adjust(frame["p"].to_numpy())
    frame["moves"] = (frame["q"] <= ALPHA) & (frame["shift (points)"].abs() >= MIN_POINTS)
    return frame


def counts(frame: pd.DataFrame, first_cells: pd.DataFrame) -> None:
    builds = ["dataset", "M", "efc", "ordering"]
    moved = frame[frame["moves"]]
    sig = frame[frame["q"] <= ALPHA]
    done = frame[builds].drop_duplicates()
    print(f"## Rerun: {len(done)} of the first map's moving builds, {len(frame)} cells "
          f"(10 seeds each against 30 random builds, report-half queries)\n")
    print("| | cells >= 5 points: gains / losses | distinct builds |")
    print("|---|---|---|")
    print(f"| first map, these cells, one build, outside the interval | "
          f"{int(((first_cells['shift (points)'] > 0)).sum())} / "
          f"{int(((first_cells['shift (points)'] < 0)).sum())} | "
          f"{len(first_cells.drop_duplicates(builds))} |")
    print(f"| rerun, BH q <= {ALPHA} and >= 5 points | {int((moved['shift (points)'] > 0).sum())}"
          f" / {int((moved['shift (points)'] < 0).sum())} | "
          f"{len(moved.drop_duplicates(builds))} |")
    print(f"| rerun, BH q <= {ALPHA} at any size | {int((sig['shift (points)'] > 0).sum())} / "
          f"{int((sig['shift (points)'] < 0).sum())} | {len(sig.drop_duplicates(builds))} |")
    halves = (frame["ci high"] - frame["ci low"]) / 2
    print(f"\nHalf-width, median over these cells: the first map's 95% prediction interval of "
          f"one build {frame['first PI half (points)'].median():.2f} points; the rerun's 95% "
          f"interval of the 10-seed mean shift {halves.median():.2f} points. Largest rerun "
          f"shift: {frame['shift (points)'].min():+.2f} / {frame['shift (points)'].max():+.2f} "
          f"points; median seed-to-seed sd of an informed order's build "
          f"{frame['seed sd (points)'].median():.2f} points, of a random build "
          f"{frame['random build sd (points)'].median():.2f}.")


def by_order(frame: pd.DataFrame) -> str:
    rows = []
    for name, part in frame.groupby("ordering"):
        moved = part[part["moves"]]
        rows.append(f"| {name} | {len(part)} | {int((moved['shift (points)'] > 0).sum())} / "
                    f"{int((moved['shift (points)'] < 0).sum())} | "
                    f"{part['first shift (points)'].mean():+.2f} | "
                    f"{part['shift (points)'].mean():+.2f} |")
    return "\n".join(["| order | cells | moves: gains / losses | mean first shift | "
                      "mean rerun shift |", "|---|---|---|---|---|", *rows])


def figure(frame: pd.DataFrame) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    for moves, colour, label in ((False, "#999999", "not a move (q > 0.05 or < 5 points)"),
                                 (True, "#d62728", "moves recall (q <= 0.05, >= 5 points)")):
        part = frame[frame["moves"] == moves]
        ax.errorbar(part["first shift (points)"], part["shift (points)"],
                    yerr=[part["shift (points)"] - part["ci low"],
                          part["ci high"] - part["shift (points)"]],
                    fmt="o", ms=3, lw=0.6, color=colour, label=label)
    lim = max(frame["first shift (points)"].abs().max(), frame["ci high"].abs().max(),
              frame["ci low"].abs().max()) * 1.05
    ax.plot([-lim, lim], [-lim, lim], ":", color="black", lw=0.8, label="rerun = first build")
    for y in (-MIN_POINTS, MIN_POINTS):
        ax.axhline(y, color="black", lw=0.5, ls="--")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlabel("first map: one build's shift (points, all queries)")
    ax.set_ylabel("rerun: 10 seeds vs 30 random builds (points, held-out half)")
    ax.set_title("hnswlib insertion orders that moved recall@10, rerun")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(out() / "rerun_shifts.png", dpi=120)


def main() -> None:
    table, wide = load()
    frame = cells(table, wide)
    frame.to_csv(out() / "rerun_shifts.csv", index=False, float_format="%.6g")
    first = pd.read_csv(FIRST)
    done = frame[["dataset", "M", "efc", "ordering"]].drop_duplicates()
    first_cells = first.merge(done, on=["dataset", "M", "efc", "ordering"])
    first_cells = first_cells[first_cells["outside"]
                              & (first_cells["shift (points)"].abs() >= MIN_POINTS)]
    counts(frame, first_cells)
    print("\n## By order\n")
    print(by_order(frame))
    print("\n## Cells that move recall in the rerun\n")
    moved = frame[frame["moves"]].sort_values("shift (points)")
    print("| dataset | M | efc | ef | order | first shift | rerun shift [95% CI] | q |")
    print("|---|---|---|---|---|---|---|---|")
    for r in moved.to_dict("records"):
        print(f"| {r['dataset']} | {r['M']} | {r['efc']} | {r['ef']} | {r['ordering']} | "
              f"{r['first shift (points)']:+.2f} | {r['shift (points)']:+.2f} "
              f"[{r['ci low']:+.2f}, {r['ci high']:+.2f}] | {r['q']:.3g} |")
    print("\n## The first map's gains of >= 5 points outside its interval, rerun\n")
    gains = frame[(frame["first shift (points)"] >= MIN_POINTS) & frame["first outside"].fillna(False)]
    print("| dataset | M | efc | ef | order | first shift | rerun shift [95% CI] | q | moves |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in gains.sort_values("first shift (points)", ascending=False).to_dict("records"):
        print(f"| {r['dataset']} | {r['M']} | {r['efc']} | {r['ef']} | {r['ordering']} | "
              f"{r['first shift (points)']:+.2f} | {r['shift (points)']:+.2f} "
              f"[{r['ci low']:+.2f}, {r['ci high']:+.2f}] | {r['q']:.3g} | {r['moves']} |")
    figure(frame)


if __name__ == "__main__":
    main()
