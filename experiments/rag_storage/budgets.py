"""The 2026 question of results/rag_storage/README.md: the best configuration of every family at
<= 48, 96, 192 and 384 bytes per vector, paired against float32 exact search.

    .venv/bin/python experiments/rag_storage/budgets.py > /tmp/budgets.md

Bytes are the index's codes plus its per-vector overhead (``bytes_per_vector`` +
``graph_bytes_per_vector``); "with the copy" adds a rescoring copy (``rescore_bytes_per_vector``).
The best row of a family is the one with the highest nDCG@10; its difference against float32
exact search on the same queries gets a 95% percentile-bootstrap interval (10,000 resamples).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vecbench.evaluate.paired import bootstrap_mean
from vecbench.evaluate.results import per_query

RESULTS = Path(__file__).resolve().parents[2] / "results" / "rag_storage"
BUDGETS = (48, 96, 192, 384)


def family(row) -> str:
    """A configuration's compression family, from its pipeline and index."""
    pipeline, index = str(row["pipeline_kind"]), str(row["index"])
    reduced = any(step in pipeline for step in ("pca", "truncate", "random_projection", "umap",
                                                "kernel_pca", "autoencoder"))
    if index == "faiss_pq":
        return "OPQ" if row.get("build.opq") is True else "PQ"
    if index == "faiss_rabitq":
        return "RaBitQ"
    if index == "scann":
        return "ScaNN"
    if index == "faiss_sq":
        return "faiss SQ"
    if "binary" in pipeline:
        return "binary + rescoring" if pd.notna(row.get("rescore_bytes_per_vector")) else "binary"
    if reduced and pipeline.count("|"):
        return "reduction + codes"
    if reduced:
        return "reduction"
    if "float8" in pipeline:
        return "float8"
    if "int8" in pipeline or "int4" in pipeline:
        return "int8/int4"
    if "float16" in pipeline:
        return "float16/bfloat16"
    return "float32"


def label(row) -> str:
    parts = [str(row["pipeline"]), str(row["index"])]
    for column in row.index:
        if column.startswith(("build.", "search.", "rescore.")) and pd.notna(row[column]) and \
                row[column] is not False:
            parts.append(f"{column.split('.', 1)[1]}={row[column]}")
    return " ".join(parts)


def main() -> None:
    frame, long = per_query(RESULTS)
    winners = []
    frame = frame[frame["status"] == "ok"].copy()
    frame["family"] = [family(row) for _, row in frame.iterrows()]
    frame["stored"] = frame["bytes_per_vector"] + frame["graph_bytes_per_vector"].fillna(0)
    frame["with_copy"] = frame["stored"] + frame["rescore_bytes_per_vector"].fillna(0)
    for dataset, rows in frame.groupby("dataset", sort=False):
        baseline = rows[(rows["pipeline"] == "float32") & (rows["index"] == "flat")].index[0]
        base = long[long["row"] == baseline].sort_values("query")["ndcg@10"].to_numpy()
        print(f"### {dataset}: best nDCG@10 of each family per budget, against float32 exact "
              f"({base[~np.isnan(base)].mean():.4f})\n")
        print("| budget | counted | family | configuration | bytes | recall@10 | nDCG@10 | "
              "difference, points [95% CI] |")
        print("|---|---|---|---|---:|---:|---:|---|")
        for budget in BUDGETS:
            for counted in ("stored", "with_copy"):
                within = rows[rows[counted] <= budget]
                ranked = []
                for fam, group in within.groupby("family"):
                    best = group.sort_values(["ndcg@10", "recall@10"], ascending=False).index[0]
                    ranked.append((rows.loc[best, "ndcg@10"], fam, best))
                    values = long[long["row"] == best].sort_values("query")["ndcg@10"]
                    delta = values.to_numpy() - base
                    delta = delta[~np.isnan(delta)]
                    mean, low, high = bootstrap_mean(delta)
                    row = rows.loc[best]
                    print(f"| {budget} | {'codes' if counted == 'stored' else 'codes + copy'} | "
                          f"{fam} | {label(row)} | {row[counted]:g} | {row['recall@10']:.4f} | "
                          f"{row['ndcg@10']:.4f} | {100 * mean:+.2f} [{100 * low:+.2f}, "
                          f"{100 * high:+.2f}] |")
                ranked.sort(reverse=True)
                if ranked:
                    (top, fam, best), runner = ranked[0], ranked[1] if len(ranked) > 1 else None
                    delta = long[long["row"] == best].sort_values("query")["ndcg@10"].to_numpy()
                    delta = (delta - base)[~np.isnan(delta - base)]
                    mean, low, high = bootstrap_mean(delta)
                    margin = f"{100 * (top - runner[0]):.2f} over {runner[1]}" if runner else ""
                    winners.append((dataset, budget, counted, fam, label(rows.loc[best]),
                                    f"{100 * mean:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]",
                                    margin))
        print()
    print("### Which family wins each budget (nDCG@10; difference against float32 exact, and "
          "the lead over the next family, in points)\n")
    print("| dataset | budget | counted | winner | configuration | vs float32 [95% CI] | "
          "lead |")
    print("|---|---:|---|---|---|---|---|")
    for dataset, budget, counted, fam, config, versus, margin in winners:
        print(f"| {dataset} | {budget} | {'codes' if counted == 'stored' else 'codes + copy'} | "
              f"{fam} | {config} | {versus} | {margin} |")


if __name__ == "__main__":
    main()
