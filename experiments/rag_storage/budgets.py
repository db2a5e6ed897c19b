"""The 2026 question of results/rag_storage/README.md: the best configuration of every family at
<= 48, 96, 192 and 384 bytes per vector, paired against float32 exact search.

    .venv/bin/python experiments/rag_storage/budgets.py > /tmp/budgets.md

Bytes are the index's codes plus its per-vector overhead (``bytes_per_vector`` +
``graph_bytes_per_vector``); "with the copy" adds a rescoring copy (``rescore_bytes_per_vector``).
The judged queries are split in two (seeded): the best row of a family, and the winning family,
are the ones with the highest nDCG@10 on the select half; the winner's difference against
float32 exact search is scored on the other half, with a 95% percentile-bootstrap interval
(10,000 resamples), a Benjamini-Hochberg verdict across the winners and a TOST against ±1 point.
The fits were not repeated with other seeds: the intervals are over queries only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vecbench.evaluate import bootstrap, holdout, verdicts
from vecbench.evaluate.results import per_query

RESULTS = Path(__file__).resolve().parents[2] / "results" / "rag_storage"
BUDGETS = (48, 96, 192, 384)
#: the seed of the query split: the winners are picked on one half, reported on the other
SPLIT_SEED = 0
#: the equivalence margin of the verdicts: one nDCG@10 point
MARGIN = 0.01


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


def judged_values(long, row: int, queries: np.ndarray) -> np.ndarray:
    """nDCG@10 of ``row`` on the judged ``queries``, in query order."""
    values = long[long["row"] == row].sort_values("query")["ndcg@10"].to_numpy()
    return values[queries]


def index_on_top(frame: pd.DataFrame) -> None:
    """hnswlib's nDCG@10 minus exact search's, same pipeline (no re-ranking), per ef."""
    plain = frame[frame["rescore.with"].isna()] if "rescore.with" in frame else frame
    exact = plain[plain["index"] == "flat"].groupby(["dataset", "pipeline"])["ndcg@10"].first()
    print("### hnswlib (M 16, ef_construction 200) minus exact search, same pipeline, nDCG@10 "
          "points\n")
    print("| ef | pairs | within 0.01 | mean | largest loss | next largest loss | largest gain |")
    print("|---:|---:|---:|---:|---|---|---|")
    for ef in (64, 256):
        graph = plain[(plain["index"] == "hnswlib") & (plain["search.ef"] == ef)]
        delta = (100 * (graph.groupby(["dataset", "pipeline"])["ndcg@10"].first() - exact)) \
            .dropna().sort_values()
        name = lambda i: f"{delta.index[i][1]} on {delta.index[i][0]}: {delta.iloc[i]:+.2f}"
        print(f"| {ef} | {len(delta)} | {(delta.abs() <= 0.01).sum()} | {delta.mean():+.2f} | "
              f"{name(0)} | {name(1)} | {name(-1)} |")
    print()


def main() -> None:
    frame, long = per_query(RESULTS)
    index_on_top(frame[frame["status"] == "ok"])
    winners = []
    frame = frame[frame["status"] == "ok"].copy()
    frame["family"] = [family(row) for _, row in frame.iterrows()]
    frame["stored"] = frame["bytes_per_vector"] + frame["graph_bytes_per_vector"].fillna(0)
    frame["with_copy"] = frame["stored"] + frame["rescore_bytes_per_vector"].fillna(0)
    for dataset, rows in frame.groupby("dataset", sort=False):
        baseline = rows[(rows["pipeline"] == "float32") & (rows["index"] == "flat")].index[0]
        base_all = long[long["row"] == baseline].sort_values("query")["ndcg@10"].to_numpy()
        judged = np.flatnonzero(~np.isnan(base_all))
        # the winners are picked on one half of the judged queries and scored on the other
        chosen = holdout.split(len(judged), SPLIT_SEED)
        pick, report = judged[chosen.select], judged[chosen.report]
        base = base_all[report]
        print(f"### {dataset}: best nDCG@10 of each family per budget, against float32 exact "
              f"({base.mean():.4f} on the report half); {chosen.describe()}\n")
        print("| budget | counted | family | configuration | bytes | nDCG@10 (select half) | "
              "nDCG@10 (report half) | difference, points [95% CI] |")
        print("|---|---|---|---|---:|---:|---:|---|")
        for budget in BUDGETS:
            for counted in ("stored", "with_copy"):
                within = rows[rows[counted] <= budget]
                ranked = []
                for fam, group in within.groupby("family"):
                    scores = {i: np.nanmean(judged_values(long, i, pick)) for i in group.index}
                    best = holdout.winners(scores)
                    ranked.append((scores[best], fam, best))
                    values = judged_values(long, best, report)
                    interval = bootstrap.queries(values - base)
                    row = rows.loc[best]
                    print(f"| {budget} | {'codes' if counted == 'stored' else 'codes + copy'} | "
                          f"{fam} | {label(row)} | {row[counted]:g} | {scores[best]:.4f} | "
                          f"{values.mean():.4f} | {100 * interval.mean:+.2f} "
                          f"[{100 * interval.low:+.2f}, {100 * interval.high:+.2f}] |")
                ranked.sort(key=lambda entry: entry[0], reverse=True)
                if ranked:
                    (top, fam, best), runner = ranked[0], ranked[1] if len(ranked) > 1 else None
                    in_sample = bootstrap.queries(judged_values(long, best, judged)
                                                  - base_all[judged])
                    interval = bootstrap.queries(judged_values(long, best, report) - base)
                    margin = f"{100 * (top - runner[0]):.2f} over {runner[1]}" if runner else ""
                    winners.append((dataset, budget, counted, fam, label(rows.loc[best]),
                                    interval, in_sample, margin))
        print()
    words, q_diff, q_equiv = verdicts.verdicts(
        [w[5].mean for w in winners], [w[5].p_value() for w in winners],
        [w[5].equivalence_p(MARGIN) for w in winners], margin=MARGIN, scale=100)
    print("### Which family wins each budget: picked on the select half, scored on the report "
          "half (nDCG@10 points against float32 exact; the lead over the next family on the "
          f"select half; verdicts: Benjamini-Hochberg across the {len(winners)} rows, TOST "
          f"against ±{100 * MARGIN:g} point, alpha 0.05; the old in-sample numbers beside)\n")
    print("| dataset | budget | counted | winner | configuration | vs float32 [95% CI] | "
          "verdict | lead | picked and scored on all queries |")
    print("|---|---:|---|---|---|---|---|---|---|")
    for (dataset, budget, counted, fam, config, interval, in_sample, margin), word in \
            zip(winners, words):
        print(f"| {dataset} | {budget} | {'codes' if counted == 'stored' else 'codes + copy'} | "
              f"{fam} | {config} | {100 * interval.mean:+.2f} [{100 * interval.low:+.2f}, "
              f"{100 * interval.high:+.2f}] | {word} | {margin} | {100 * in_sample.mean:+.2f} "
              f"[{100 * in_sample.low:+.2f}, {100 * in_sample.high:+.2f}] |")


if __name__ == "__main__":
    main()
