"""The summary table of results/rag_storage/README.md's "Five fit seeds" section (issue 29):

    .venv/bin/python experiments/rag_storage/seed_summary.py > /tmp/summary.md

Per dataset and randomized configuration (trained codes: PQ, PQ fast-scan, OPQ, RaBitQ, ScaNN;
randomized reductions: Gaussian random projection, kernel PCA, the autoencoder, UMAP), nDCG@10
minus float32 exact search, in points:
- "first run": the committed study's row (results/rag_storage, one fit, an earlier environment),
  its interval over queries;
- "rerun, seed 0": results/rag_storage_seeds' first fit alone, interval over queries;
- "five seeds": the five fits, interval over seeds then queries, and the width of the interval
  of the fit-averaged differences over queries alone beside it.
Verdicts: Benjamini-Hochberg across each column's rows of the whole table (FDR 0.05), TOST
within +-1 nDCG point for "equivalent".
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vecbench.evaluate import paired

ROOT = Path(__file__).resolve().parents[2]
FIRST, SEEDS = ROOT / "results" / "rag_storage", ROOT / "results" / "rag_storage_seeds"
BASE = "pipeline == 'float32' and index == 'flat'"
MARGIN = 0.01  # one nDCG point
#: the configurations seeds.yaml reruns, as rows of the first run's table
RERUN = ("index in ['faiss_pq', 'faiss_rabitq', 'scann'] or pipeline_kind in "
         "['random_projection', 'kernel_pca', 'autoencoder', 'umap']")
IDENTITY = ["dataset", "pipeline", "index", "build.m", "build.nbits", "build.fast_scan",
            "build.opq", "build.bits", "build.dims_per_block"]


def table(folder: Path, where: str, seeds: str | None) -> pd.DataFrame:
    frame = paired.per_query_frame(str(folder)).query(f"({BASE}) or (({RERUN}) and {where})")
    out = paired.paired_table(frame, BASE, "ndcg@10", seeds=seeds, margin=MARGIN, scale=100)
    out = out[~((out["pipeline"] == "float32") & (out["index"] == "flat"))]
    return out.reindex(columns=list(dict.fromkeys(IDENTITY + list(out.columns))))


def label(row) -> str:
    """A short name of the configuration (the identity columns are strings here)."""
    def number(column: str) -> int:
        return int(float(row[column]))
    if row["index"] == "flat":
        return row["pipeline"].split("(")[0]
    if row["index"] == "faiss_pq":
        kind = "OPQ" if row["build.opq"] == "True" else \
            "PQ fast-scan" if row["build.fast_scan"] == "True" else "PQ"
        return f"{kind} m={number('build.m')}"
    if row["index"] == "faiss_rabitq":
        return f"RaBitQ {number('build.bits')} bit"
    return f"ScaNN {number('build.dims_per_block')} dims/block"


def interval(row) -> str:
    return f"{100 * row['delta']:+.2f} [{100 * row['ci_low']:+.2f}, {100 * row['ci_high']:+.2f}]"


def main() -> None:
    keys = [c for c in IDENTITY]
    first = table(FIRST, "index != 'hnswlib' and repeat == 0", None)
    seed0 = table(SEEDS, "repeat == 0", None)
    five = table(SEEDS, "repeat >= 0", "repeat")
    for frame in (first, seed0, five):
        frame[keys] = frame[keys].astype(str)
    merged = five.merge(seed0, on=keys, suffixes=("", "_0")).merge(
        first, on=keys, how="left", suffixes=("", "_first"))
    print("| dataset | configuration | bytes | first run | verdict | rerun, seed 0 | verdict | "
          "five seeds | verdict | width: queries only / seeds and queries |")
    print("|---|---|---:|---|---|---|---|---|---|---|")
    merged = merged.sort_values(["dataset", "bytes_per_vector"], ascending=[True, False])
    for _, row in merged.iterrows():
        first_cells = ("| |" if pd.isna(row.get("delta_first")) else
                       f"{interval({k: row[f'{k}_first'] for k in ('delta', 'ci_low', 'ci_high')})}"
                       f" | {row['verdict_first']} |")
        zero = {k: row[f"{k}_0"] for k in ("delta", "ci_low", "ci_high")}
        print(f"| {row['dataset'].replace('-minilm-l6', '')} | {label(row)} | "
              f"{int(float(row['bytes_per_vector']))} | {first_cells} {interval(zero)} | "
              f"{row['verdict_0']} | {interval(row)} | {row['verdict']} | "
              f"{100 * (row['ci_queries_high'] - row['ci_queries_low']):.2f} / "
              f"{100 * (row['ci_high'] - row['ci_low']):.2f} |")


if __name__ == "__main__":
    main()
