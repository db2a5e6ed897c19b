"""Tables and figure of results/hnsw_ordering_map/README.md, from the committed results.parquet
of results/hnsw_ordering_map (MNIST, synthetic ID 16 and 32) and results/hnsw_ordering_map_scifact
(scifact-sentences, a separate experiment file):

    .venv/bin/python experiments/hnsw_ordering_map/tables.py > /tmp/tables.md

For each dataset, graph config (M, ef_construction) and ef, the ten random-order builds give the
noise: their mean and the 95% prediction interval of one more random build (Student's t, n - 1
degrees of freedom: mean +- t * sd * sqrt(1 + 1/n)). Each informed order's build is compared with
that mean; it "moves recall" when it falls outside the interval. The figure puts each order's
shift against the random builds' mean recall, with the interval's half-width as a band.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from vecbench.evaluate import verdicts as stated

RESULTS = Path(__file__).resolve().parents[2] / "results" / "hnsw_ordering_map"
#: the study's result folders: the first three datasets, then scifact-sentences
FOLDERS = (RESULTS, RESULTS.parent / "hnsw_ordering_map_scifact")
#: the published effect (arXiv 2405.17813): up to 12 recall points from an informed order
PUBLISHED = 12.0
RECALL = "recall@10"
CONFIG = ["dataset", "build.M", "build.ef_construction", "search.ef"]


def out() -> Path:
    """Where the tables and figure are written: the folder given as the first argument (the
    staleness test regenerates them into a temporary one), else the study's results folder."""
    return Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS


def markdown(frame: pd.DataFrame) -> str:
    def cell(value) -> str:
        if isinstance(value, (float, np.floating)):
            return format(value, ".3f")
        return str(value)
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def shifts(results: pd.DataFrame) -> pd.DataFrame:
    """One row per informed build: its recall, the random builds' mean and interval, the shift."""
    ok = results[(results["status"] == "ok") & (results["index"] == "hnswlib")]
    rows = []
    for key, part in ok.groupby(CONFIG):
        random = part.loc[part["ordering"] == "random", RECALL].to_numpy()
        if len(random) < 10:
            continue  # the noise is not measured yet for this config
        n = len(random)
        half = stats.t.ppf(0.975, n - 1) * random.std(ddof=1) * np.sqrt(1 + 1 / n)
        for _, build in part[part["ordering"] != "random"].iterrows():
            shift = build[RECALL] - random.mean()
            rows.append({**dict(zip(["dataset", "M", "efc", "ef"], key)),
                         "ordering": build["ordering"], RECALL: build[RECALL],
                         "random mean": random.mean(), "random sd": random.std(ddof=1),
                         "PI half": half, "shift (points)": 100 * shift,
                         "relative %": 100 * shift / random.mean(),
                         "outside": abs(shift) > half})
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame) -> str:
    """Per dataset and graph config: the largest |shift| over orders and ef, and where."""
    out = []
    for (dataset, m, efc), part in table.groupby(["dataset", "M", "efc"]):
        top = part.loc[part["shift (points)"].abs().idxmax()]
        at10 = part[part["ef"] == 10]
        out.append({"dataset": dataset, "M": m, "efc": efc,
                    "random recall@10 at ef 10": at10["random mean"].iloc[0] if len(at10) else np.nan,
                    "largest shift (points)": top["shift (points)"],
                    "by": top["ordering"], "at ef": top["ef"],
                    "PI half (points)": 100 * top["PI half"],
                    "orders outside PI (all ef)": f"{int(part['outside'].sum())}/{len(part)}",
                    ">= 5 points, outside PI": int((part["outside"]
                                                   & (part["shift (points)"].abs() >= 5)).sum())})
    return markdown(pd.DataFrame(out))


def by_order(table: pd.DataFrame) -> str:
    """Per dataset and order: mean shift over every config and ef, and how often outside."""
    grouped = table.groupby(["dataset", "ordering"])
    out = grouped.agg(**{"mean shift (points)": ("shift (points)", "mean"),
                         "min": ("shift (points)", "min"), "max": ("shift (points)", "max"),
                         "outside PI": ("outside", "sum"), "cells": ("outside", "size")})
    return markdown(out.reset_index().sort_values(["dataset", "mean shift (points)"]))


def figure(table: pd.DataFrame) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted(table["dataset"].unique())
    columns = min(2, len(datasets))
    n_rows = -(-len(datasets) // columns)
    fig, axes = plt.subplots(n_rows, columns, figsize=(6.5 * columns, 5 * n_rows + 0.8),
                             squeeze=False, sharey=True)
    for ax in axes.flat[len(datasets):]:
        ax.set_visible(False)
    # one colour per order in every panel
    colours = {o: f"C{i}" for i, o in enumerate(sorted(table["ordering"].unique()))}
    for ax, dataset in zip(axes.flat, datasets):
        part = table[table["dataset"] == dataset]
        noise = part.drop_duplicates(["M", "efc", "ef"]).sort_values("random mean")
        ax.errorbar(noise["random mean"], np.zeros(len(noise)), yerr=100 * noise["PI half"],
                    fmt="none", ecolor="0.7", elinewidth=4, alpha=0.6,
                    label="random builds, 95% PI (one bar per M, efc, ef)")
        for ordering, rows in part.groupby("ordering"):
            ax.scatter(rows["random mean"], rows["shift (points)"], s=12, label=ordering,
                       color=colours[ordering])
        ax.axhline(0, color="0.4", lw=0.8)
        for level in (-5, 5):
            ax.axhline(level, color="0.6", lw=0.6, ls=":")
        ax.set_title(f"{dataset}: M x ef_construction x ef")
        ax.set_xlabel("random-order builds' mean recall@10")
        ax.set_ylabel("order's recall@10 minus random mean (points)")
        ax.grid(alpha=0.3)
    # the union of every panel's orders (scifact-sentences has no category orders)
    legend = {}
    for ax in axes.flat[:len(datasets)]:
        legend.update(zip(*reversed(ax.get_legend_handles_labels())))
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=5, fontsize=8)
    fig.tight_layout(rect=(0, 0.8 / (5 * n_rows + 0.8) + 0.02, 1, 1))
    fig.savefig(out() / "ordering_map.png", dpi=120)


def load() -> pd.DataFrame:
    frames = [pd.read_parquet(folder / "results.parquet") for folder in FOLDERS
              if (folder / "results.parquet").is_file()]
    return pd.concat(frames, ignore_index=True)


def answer(table: pd.DataFrame) -> None:
    """The summary lines the README quotes: where order moves recall@10 by 5 points or more
    (outside the random builds' interval), whether the published 12 is reached, which way."""
    moved = table[table["outside"]]
    big = moved[moved["shift (points)"].abs() >= 5]
    cells = table.drop_duplicates(["dataset", "M", "efc", "ef"])
    print("\n## The noise: half-width of the random builds' 95% prediction interval (points)\n")
    for dataset, part in cells.groupby("dataset"):
        print(f"- {dataset}: median {100 * part['PI half'].median():.2f}, "
              f"max {100 * part['PI half'].max():.2f}")
    top = cells[cells["ef"] == cells["ef"].max()]
    print(f"\nrandom builds' mean recall@10 at ef {top['ef'].max()} (saturation), "
          "by M and ef_construction:\n")
    saturation = top.pivot_table(index="dataset", columns=["M", "efc"], values="random mean")
    saturation.columns = [f"M {m} efc {e}" for m, e in saturation.columns]
    print(markdown(saturation.reset_index()))
    print(f"\n## The answer in numbers ({len(table)} informed builds x ef; outside the 95% "
          f"interval by chance alone: about {0.05 * len(table):.0f})\n")
    print(f"outside the interval: {len(moved)}; of them by 5 points or more: {len(big)} "
          f"({int((big['shift (points)'] > 0).sum())} gains, "
          f"{int((big['shift (points)'] < 0).sum())} losses)")
    for dataset, part in table.groupby("dataset"):
        gain = part.loc[part["shift (points)"].idxmax()]
        loss = part.loc[part["shift (points)"].idxmin()]
        n_big = len(big[big["dataset"] == dataset])
        print(f"- {dataset}: {n_big} shifts of >= 5 points outside the interval; largest gain "
              f"{gain['shift (points)']:+.1f} ({gain['ordering']}, M {gain['M']}, efc "
              f"{gain['efc']}, ef {gain['ef']}, random mean {gain['random mean']:.3f}); largest "
              f"loss {loss['shift (points)']:+.1f} ({loss['ordering']}, M {loss['M']}, efc "
              f"{loss['efc']}, ef {loss['ef']}, random mean {loss['random mean']:.3f})")
    print("\nshifts of >= 5 points outside the interval, by ef_construction "
          "(gains / losses):")
    for efc, part in big.groupby("efc"):
        print(f"- ef_construction {efc}: {int((part['shift (points)'] > 0).sum())} / "
              f"{int((part['shift (points)'] < 0).sum())}")
    where = big.assign(sign=np.where(big["shift (points)"] > 0, "gains", "losses"))
    grid = where.pivot_table(index="M", columns="efc", values="sign",
                             aggfunc=lambda v: f"{(v == 'gains').sum()} / {(v == 'losses').sum()}")
    grid = grid.reindex(index=sorted(table["M"].unique()), columns=sorted(table["efc"].unique()))
    print("\nthe same by M (rows) and ef_construction (columns), all datasets (gains / losses):\n")
    print(markdown(grid.fillna("0 / 0").rename_axis(columns=None).reset_index()
                   .rename(columns=lambda c: f"efc {c}" if c != "M" else c)))
    bins = pd.cut(table["random mean"], [0, 0.7, 0.9, 0.99, 1.0001],
                  labels=["< 0.70", "0.70-0.90", "0.90-0.99", ">= 0.99"], right=False)
    print("\nby the random builds' mean recall@10 (the graph's quality at that ef):")
    for label, part in table.groupby(bins, observed=True):
        inside = part[part["outside"]]
        print(f"- {label}: {len(part)} cells; largest |shift| "
              f"{part['shift (points)'].abs().max():.1f}; >= 5 points outside the interval: "
              f"{int((inside['shift (points)'].abs() >= 5).sum())}")
    reach = moved[moved["shift (points)"].abs() >= PUBLISHED]
    print(f"\nshifts of >= {PUBLISHED:.0f} points (the published effect) outside the interval: "
          f"{len(reach)} ({int((reach['shift (points)'] > 0).sum())} gains); largest relative "
          f"gain {moved['relative %'].max():.1f}%")
    if len(reach):
        print(markdown(reach[["dataset", "M", "efc", "ef", "ordering", RECALL, "random mean",
                              "shift (points)"]]))
    print("\ndirection, per dataset and order (cells outside the interval): gains / losses, "
          "of them >= 5 points")
    for (dataset, ordering), part in table.groupby(["dataset", "ordering"]):
        out = part[part["outside"]]
        print(f"- {dataset}, {ordering}: {int((out['shift (points)'] > 0).sum())} / "
              f"{int((out['shift (points)'] < 0).sum())}; >= 5: "
              f"{int((out['shift (points)'] >= 5).sum())} / "
              f"{int((out['shift (points)'] <= -5).sum())} (of {len(part)} cells)")
    default = table[(table["M"] == 16) & (table["efc"] == 200)]
    print(f"\nat M 16, ef_construction 200 (the first study's setting): largest |shift| "
          f"{default['shift (points)'].abs().max():.1f} points")


def multiplicity(table: pd.DataFrame) -> None:
    """The shifts under stated error rates (issue 29): each cell's two-sided p-value from the
    same prediction distribution as the interval (Student's t, n - 1 degrees of freedom, scale
    sd * sqrt(1 + 1/n)), adjusted with Benjamini-Hochberg across all cells, or Bonferroni. Cells of
    one build (its ef values) share the build, so the count of distinct builds is given too;
    BH assumes independent or positively dependent p-values, which cells of a build are."""
    n = 10
    scale = table["random sd"] * np.sqrt(1 + 1 / n)
    shift = table["shift (points)"] / 100
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(scale > 0, shift.abs() / scale, np.where(shift.abs() > 0, np.inf, 0.0))
    p = 2 * stats.t.sf(t, n - 1)
    q = stated.adjust(p)
    big = table["shift (points)"].abs() >= 5
    builds = ["dataset", "M", "efc", "ordering"]
    print(f"\n## Under stated error rates ({len(table)} cells, alpha 0.05)\n")
    print("| rule | cells >= 5 points: gains / losses | distinct builds |")
    print("|---|---|---|")
    for rule, keep in (("outside the 95% prediction interval (no correction)", table["outside"]),
                       ("Benjamini-Hochberg q <= 0.05", q <= 0.05),
                       ("Bonferroni p <= 0.05 / cells", p <= 0.05 / len(table))):
        moved = table[keep & big]
        print(f"| {rule} | {int((moved['shift (points)'] > 0).sum())} / "
              f"{int((moved['shift (points)'] < 0).sum())} | "
              f"{len(moved.drop_duplicates(builds))} |")


def main() -> None:
    results = load()
    table = shifts(results)
    table.to_csv(out() / "shifts.csv", index=False)
    print("## Largest shift per graph config (over orders and ef)\n")
    print(summary(table))
    print("\n## Each order's shift, over all configs and ef\n")
    print(by_order(table))
    big = table[table["shift (points)"].abs() >= 5]
    print(f"\n## Builds shifted by 5 points or more: {len(big)} of {len(table)}\n")
    if len(big):
        print(markdown(big[["dataset", "M", "efc", "ef", "ordering", RECALL, "random mean",
                            "shift (points)", "relative %", "outside"]]))
    answer(table)
    multiplicity(table)
    figure(table)


if __name__ == "__main__":
    main()
