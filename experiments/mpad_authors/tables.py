"""Tables and figure of results/mpad_authors/README.md, from the committed parquet files:

    .venv/bin/python experiments/mpad_authors/tables.py > /tmp/tables.md

The query file of each dataset holds the 600 reported (test) queries, then the validation
queries (make_data.py). MPAD's (b, alpha) is chosen per dataset, target dimension and k on the
validation queries (honest) and on the test queries (as the authors did); both choices, and the
baselines, are then scored on the test queries only. Paired intervals: vecbench's paired table
(percentile bootstrap over the test queries) against PCA at the same dimension.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vecbench.paired import paired_table

RESULTS = Path(__file__).resolve().parents[2] / "results" / "mpad_authors"
N_TEST = 600
KS = (1, 3, 6, 10, 15)
METHODS = ("pca", "random_projection", "kernel_pca", "umap", "mpad_axiswise")


def markdown(frame: pd.DataFrame) -> str:
    def cell(value) -> str:
        return format(value, ".3f") if isinstance(value, float) else str(value)
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def load() -> tuple[pd.DataFrame, pd.DataFrame]:
    table = pd.read_parquet(RESULTS / "results.parquet").reset_index(drop=True)
    table = table[table["status"] == "ok"]
    table["method"] = table["pipeline"].str.extract(r"^(\w+)")[0].replace({"float32": "none"})
    ratio = pd.Series(np.nan, index=table.index)
    for method in METHODS:
        column = f"pipeline.{method}.n_components"
        if column in table:
            ratio = ratio.fillna(table[column])
    table["ratio"] = ratio
    long = pd.read_parquet(RESULTS / "per_query.parquet")
    return table, long


def split_values(long: pd.DataFrame, row: int, metric: str, split: str) -> np.ndarray:
    part = long[long["row"] == row].sort_values("query")
    keep = part["query"] < N_TEST if split == "test" else part["query"] >= N_TEST
    return part.loc[keep, metric].to_numpy(dtype=np.float64)


def selections(table: pd.DataFrame, long: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, ratio and k: MPAD's (b, alpha) picked on validation and on test queries."""
    out = []
    mpad = table[table["method"] == "mpad_axiswise"]
    for (dataset, ratio), part in mpad.groupby(["dataset", "ratio"]):
        for k in KS:
            metric = f"recall@{k}"
            scores = [(row, split_values(long, row, metric, "validation").mean(),
                       split_values(long, row, metric, "test").mean()) for row in part.index]
            by_val = max(scores, key=lambda s: s[1])
            by_test = max(scores, key=lambda s: s[2])
            out.append({"dataset": dataset, "ratio": ratio, "k": k, "grid": len(scores),
                        "val_row": by_val[0], "test_row": by_test[0],
                        "b (val)": table.at[by_val[0], "pipeline.mpad_axiswise.b"],
                        "alpha (val)": table.at[by_val[0], "pipeline.mpad_axiswise.alpha"],
                        "b (test)": table.at[by_test[0], "pipeline.mpad_axiswise.b"],
                        "alpha (test)": table.at[by_test[0], "pipeline.mpad_axiswise.alpha"],
                        "test recall, val-picked": by_val[2], "test recall, test-picked": by_test[2],
                        "selection gain (points)": 100 * (by_test[2] - by_val[2])})
    return pd.DataFrame(out)


def paired_frame(table, long, chosen: pd.DataFrame, k: int) -> pd.DataFrame:
    """Test-query rows: every baseline, and MPAD as picked on validation and on test."""
    metric = f"recall@{k}"
    rows = []
    base = table[table["method"].isin(METHODS[:-1])]
    for index, row in base.iterrows():
        rows.append({"dataset": row["dataset"], "ratio": row["ratio"], "method": row["method"],
                     "per_query": {metric: split_values(long, index, metric, "test")}})
    for _, pick in chosen[chosen["k"] == k].iterrows():
        for label, column in (("mpad (val-picked)", "val_row"), ("mpad (test-picked)", "test_row")):
            rows.append({"dataset": pick["dataset"], "ratio": pick["ratio"], "method": label,
                         "per_query": {metric: split_values(long, pick[column], metric, "test")}})
    frame = pd.DataFrame(rows)
    frame[metric] = [v[metric].mean() for v in frame["per_query"]]
    # keep only (dataset, ratio) groups that have a PCA row (the baseline)
    has_pca = frame[frame["method"] == "pca"][["dataset", "ratio"]].drop_duplicates()
    return frame.merge(has_pca, on=["dataset", "ratio"])


def figure(table, long, chosen) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted(table["dataset"].unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.6), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        part = table[(table["dataset"] == dataset) & table["method"].isin(METHODS[:-1])]
        for method, rows in part.groupby("method"):
            rows = rows.sort_values("ratio")
            test = [split_values(long, i, "recall@10", "test").mean() for i in rows.index]
            ax.plot(100 * rows["ratio"], test, marker="o", label=method)
        pick = chosen[(chosen["dataset"] == dataset) & (chosen["k"] == 10)].sort_values("ratio")
        if len(pick):
            ax.plot(100 * pick["ratio"], pick["test recall, val-picked"], marker="s", lw=2,
                    color="k", label="MPAD, b/alpha on validation")
            ax.plot(100 * pick["ratio"], pick["test recall, test-picked"], marker="^", ls="--",
                    color="k", label="MPAD, b/alpha on test (authors)")
        ax.set_title(dataset)
        ax.set_xlabel("target dimension (% of original)")
        ax.set_ylabel("recall@10 on the 600 test queries")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "mpad_authors.png", dpi=120)


def main() -> None:
    table, long = load()
    chosen = selections(table, long)
    chosen.drop(columns=["val_row", "test_row"]).to_csv(RESULTS / "selection.csv", index=False)
    print("## MPAD's (b, alpha) picked on validation vs on test queries (test recall)\n")
    print(markdown(chosen.drop(columns=["val_row", "test_row"])))
    summary = []
    for k in KS:
        frame = paired_frame(table, long, chosen, k)
        if frame.empty:
            continue
        paired = paired_table(frame, "method == 'pca'", f"recall@{k}",
                              within=("dataset", "ratio"), extra=("method", "ratio"))
        paired.to_csv(RESULTS / f"paired_recall@{k}.csv", index=False)
        paired = paired[paired["method"] != "pca"].sort_values(["dataset", "ratio", "method"])
        for column in ("delta", "ci_low", "ci_high"):
            paired[column] = 100 * paired[column]
        if k == 10:
            print("\n## recall@10 on the test queries, paired against PCA at the same dimension "
                  "(points, 95% bootstrap)\n")
            print(markdown(paired[["dataset", "ratio", "method", "recall@10", "baseline",
                                   "delta", "ci_low", "ci_high", "worse", "better"]]))
        mp = paired[paired["method"] == "mpad (val-picked)"]
        best_base = frame[~frame["method"].str.startswith("mpad")].groupby(
            ["dataset", "ratio"])[f"recall@{k}"].max()
        for _, row in mp.iterrows():
            summary.append({"k": k, "dataset": row["dataset"], "ratio": row["ratio"],
                            "mpad-pca": row["delta"], "ci": f"[{row['ci_low']:.1f}, "
                            f"{row['ci_high']:.1f}]",
                            "beats pca": row["ci_low"] > 0,
                            "beats best baseline": row[f"recall@{k}"]
                            > best_base[(row["dataset"], row["ratio"])]})
    summary = pd.DataFrame(summary)
    print("\n## MPAD (validation-picked) minus PCA, every k (points, 95% paired bootstrap)\n")
    print(markdown(summary))
    if len(summary):
        print(f"\nMPAD ahead of PCA (interval above 0) in {int(summary['beats pca'].sum())} of "
              f"{len(summary)} cells; ahead of the best baseline in "
              f"{int(summary['beats best baseline'].sum())}.")
    print(f"\nmean selection gain (test-picked minus val-picked, points): "
          f"{chosen['selection gain (points)'].mean():.2f}; max "
          f"{chosen['selection gain (points)'].max():.2f}")
    figure(table, long, chosen)


if __name__ == "__main__":
    main()
