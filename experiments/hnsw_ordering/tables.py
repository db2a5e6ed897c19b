"""Print the tables of results/hnsw_ordering/README.md from the committed results.csv:

    .venv/bin/python experiments/hnsw_ordering/tables.py > /tmp/tables.md

Kept beside the study rather than in vecbench: it answers this study's three questions.
Build-to-build noise is judged on the ten random-order builds of each dataset: an ordering's
shift "exceeds noise" when its builds fall outside the 95% prediction interval of one more
random-order build (Student's t, n = 10: mean +- t(9) * sd * sqrt(1 + 1/10)).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

RESULTS = Path(__file__).resolve().parents[2] / "results" / "hnsw_ordering"
RECALL = "recall@10"


def markdown(frame: pd.DataFrame) -> str:
    """A GitHub table (pandas' to_markdown would need tabulate, not a vecbench dependency)."""
    def cell(value) -> str:
        return format(value, ".4g") if isinstance(value, float) else str(value)
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |",
             "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def intrinsic_dim_table(results: pd.DataFrame) -> str:
    sweep = results[results["dataset"].str.match(r"synthetic-d384-id\d+$")].copy()
    sweep["intrinsic_dim"] = sweep["dataset"].str.extract(r"id(\d+)$")[0].astype(int)
    table = sweep.pivot_table(index=["index", "intrinsic_dim"], columns="search.ef",
                              values=RECALL, aggfunc="mean")
    table.columns = [f"ef {int(ef)}" for ef in table.columns]
    return markdown(table.reset_index())


def ordering_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The hnswlib rows of the datasets built in random order too (question 2)."""
    hnswlib = results[results["index"] == "hnswlib"]
    return hnswlib[hnswlib["dataset"].isin(
        hnswlib.loc[hnswlib["ordering"] == "random", "dataset"].unique())]


def ordering_table(results: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """Per dataset and ef: the random-order spread, and each ordering's shift from its mean."""
    ordered = ordering_rows(results)
    rows = []
    for (dataset, ef), part in ordered.groupby(["dataset", "search.ef"]):
        random = part.loc[part["ordering"] == "random", RECALL].to_numpy()
        n = len(random)
        half = stats.t.ppf(0.975, n - 1) * random.std(ddof=1) * np.sqrt(1 + 1 / n)
        low, high = random.mean() - half, random.mean() + half
        for ordering, builds in part.groupby("ordering")[RECALL]:
            values = builds.to_numpy()
            outside = int(((values < low) | (values > high)).sum())
            rows.append({
                "dataset": dataset, "ef": int(ef), "ordering": ordering, "builds": len(values),
                RECALL: values.mean(),
                "shift (points)": 100 * (values.mean() - random.mean()),
                "random 95% range": f"[{low:.4f}, {high:.4f}]",
                "builds outside": f"{outside}/{len(values)}",
            })
    table = pd.DataFrame(rows)
    return markdown(table), table


def largest_shifts(table: pd.DataFrame) -> str:
    """Per dataset: the ordering with the largest |shift| at each ef, and the spread of random."""
    shifted = table[table["ordering"] != "random"]
    index = shifted.groupby(["dataset", "ef"])["shift (points)"].apply(lambda s: s.abs().idxmax())
    return markdown(shifted.loc[index.to_numpy(), ["dataset", "ef", "ordering", RECALL,
                                                   "shift (points)", "random 95% range",
                                                   "builds outside"]])


def quartile_table(results: pd.DataFrame, ef: int) -> str:
    """recall@10 by query-LID quartile (q1 = lowest LID) at one ef, mean over builds."""
    part = ordering_rows(results)
    part = part[part["search.ef"] == ef]
    columns = [f"{RECALL}_q{q}" for q in range(1, 5)]
    return markdown(part.groupby(["dataset", "ordering"])[columns].mean().reset_index())


def rank_shift_table(results: pd.DataFrame) -> str:
    """Embedding configurations of each collection ranked by nDCG@10: exact vs HNSW (ef 10)."""
    part = results[results["dataset"].str.match(r"(scifact|cranfield)-(minilm|lsa)")].copy()
    part["collection"] = part["dataset"].str.split("-").str[0]
    part["configuration"] = np.where(part["pipeline"].fillna("") == "", part["dataset"],
                                     part["dataset"] + " + " + part["pipeline"].fillna(""))
    lines = []
    for collection, rows in part.groupby("collection"):
        table = rows.pivot_table(index="configuration", columns="index", values="ndcg@10")
        table = table.rename(columns={"flat": "nDCG@10 exact", "hnswlib": "nDCG@10 HNSW ef 10"})
        exact, approx = table["nDCG@10 exact"], table["nDCG@10 HNSW ef 10"]
        table["rank exact"] = exact.rank(ascending=False, method="min").astype(int)
        table["rank HNSW"] = approx.rank(ascending=False, method="min").astype(int)
        table["moved"] = table["rank HNSW"] - table["rank exact"]
        recall = rows[rows["index"] == "hnswlib"].set_index("configuration")[RECALL]
        table["HNSW recall@10"] = recall
        table = table.sort_values("rank exact").reset_index()
        moved = int((table["moved"] != 0).sum())
        tau = stats.kendalltau(exact.loc[table["configuration"]], approx.loc[table["configuration"]])
        lines += [f"#### {collection}: {moved} of {len(table)} configurations change rank "
                  f"(Kendall tau {tau.statistic:.3f})", "", markdown(table), ""]
    return "\n".join(lines)


def main() -> int:
    results = pd.read_csv(RESULTS / "results.csv")
    print("### Recall@10 vs intrinsic dimension (synthetic 50k x 384, M 16, ef_construction 200)\n")
    print(intrinsic_dim_table(results), "\n")
    text, table = ordering_table(results)
    print("### Largest shift from the random-order mean, per dataset and ef\n")
    print(largest_shifts(table), "\n")
    print("### Every ordering against random order\n")
    print(text, "\n")
    print("### recall@10 by query-LID quartile at ef 10 (q1 = lowest LID)\n")
    print(quartile_table(results, ef=10), "\n")
    print("### Rank shift: nDCG@10 with exact search vs hnswlib (M 16, ef_construction 200, ef 10)\n")
    print("HNSW recall@10 is against exact kNN of the same vectors before any PCA, so the PCA "
          "rows include the reduction's own loss.\n")
    print(rank_shift_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
