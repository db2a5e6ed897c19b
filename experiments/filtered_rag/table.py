"""Tables and figure of results/filtered_rag/README.md, from the study's results folders.

    python experiments/filtered_rag/table.py [--out OUT] [scifact=DIR[,DIR...] synthetic=DIR]

A (configuration, filter) that two folders of one name both hold is taken from the first. A DIR
is what ``vecbench run experiments/filtered_rag/<name>.yaml --results DIR`` wrote
(run records), or results/filtered_rag/<name>/ (the committed tables, so the README is rebuilt
without the runs; the default). With run records, the slimmed tables are written to
OUT/<name>/ first. Prints the README's tables (Markdown) and writes, OUT being
results/filtered_rag unless --out says otherwise (`make figures OUT=...` writes elsewhere):

- OUT/<name>/summary.csv: one row per (configuration, filter): recall@10 with a
  95% percentile-bootstrap interval over queries (10,000 resamples), short@10, returned@10,
  violations@10, achieved selectivity, QPS, p50 latency;
- OUT/<name>/recall_vs_selectivity.png: recall@10 against selectivity, one line
  per index configuration, one panel per correlation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from vecbench.core import atomic
from vecbench.core.errors import DataError
from vecbench.evaluate.paired import bootstrap_mean
from vecbench.evaluate.results import per_query, write_table

OUT = Path(__file__).resolve().parents[2] / "results" / "filtered_rag"
KEEP = ["dataset", "index", "filter", "filter.selectivity", "filter.correlation", "k",
        "recall@10", "recall@10_ci95_low", "short@10", "returned@10", "violations@10",
        "selectivity", "qps", "p50_ms", "p95_ms", "build_s", "filter_truth_s",
        "bytes_per_vector", "status", "reason"]
PER_QUERY = ["recall@10", "short@10", "returned@10", "violations@10"]
#: one line per index in the figure: the configuration that tries hardest with the index's own
#: filter, pgvector without its iterative scan, and post-filtering
FIGURE = {
    "flat": "flat",
    "hnswlib ef=200 native": "hnswlib (ef 200)",
    "hnswlib ef=200 post x100": "hnswlib post-filter (ef 200, x100)",
    "faiss_hnsw ef=200": "faiss HNSW (ef 200)",
    "faiss_ivf nprobe=32": "faiss IVF (nprobe 32)",
    "pgvector ef_search=40 iterative_scan=off": "pgvector (ef_search 40, iterative off)",
    "pgvector ef_search=40 iterative_scan=relaxed_order": "pgvector (ef_search 40, relaxed_order)",
    "lancedb nprobes=20 prefilter=True refine_factor=10": "LanceDB IVF_PQ (prefilter)",
    "lancedb nprobes=20 prefilter=False refine_factor=10": "LanceDB IVF_PQ (postfilter)",
    "chroma search_ef=100": "Chroma (search_ef 100)",
}


def configuration(row) -> str:
    """``hnswlib ef=200 post x10``: the index and its search settings (filter mode last)."""
    parts = [str(row["index"])]
    for column in sorted(c for c in row.index if c.startswith("search.")):
        name, value = column[len("search."):], row[column]
        if name in ("filter_mode", "oversample", "max_scan_tuples") or pd.isna(value):
            continue
        parts.append(f"{name}={int(value) if isinstance(value, float) and value.is_integer() else value}")
    tuples = row.get("search.max_scan_tuples")
    if tuples is not None and pd.notna(tuples) and int(tuples) != 20000:
        parts.append(f"max_scan_tuples={int(tuples)}")
    if row.get("search.filter_mode") == "post":
        parts.append(f"post x{int(row['search.oversample'])}")
    elif row["index"] == "hnswlib":  # its unfiltered row belongs to the native line
        parts.append("native")
    return " ".join(parts)


def load(name: str, sources: list[Path], out: Path = OUT) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table, per-query table), slimmed; written to OUT/<name>/ when read from run records
    (several folders: the parts of one study, joined)."""
    frames, per_queries = [], []
    for source in sources:
        frame, queries = per_query(source)
        if "row" in queries:
            queries = queries.assign(row=queries["row"] + sum(len(f) for f in frames))
        frames.append(frame)
        per_queries.append(queries)
    frame = pd.concat(frames, ignore_index=True)
    queries = pd.concat(per_queries, ignore_index=True)
    if "configuration" not in frame:  # the committed tables carry it already
        frame["configuration"] = [configuration(row) for _, row in frame.iterrows()]
    # a (configuration, filter) that two parts both ran is taken from the first part given
    first = ~frame.duplicated(["configuration", "filter"])
    if "row" in queries:
        queries = queries[queries["row"].isin(frame.index[first])]
    frame = frame[first]
    if "row" in queries:  # from run records: attach the configuration, slim and save
        queries = queries.assign(configuration=frame.loc[queries["row"], "configuration"].to_numpy(),
                                 filter=frame.loc[queries["row"], "filter"].to_numpy())
        queries = queries[["configuration", "filter", "query", *PER_QUERY]]
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        slim = frame[["configuration", *[c for c in KEEP if c in frame]]]
        write_table(slim, folder / "results.csv")
        write_table(slim, folder / "results.parquet")
        write_table(queries, folder / "per_query.parquet")
        frame = slim
    return frame, queries


def summary(frame: pd.DataFrame, queries: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (config, filt), part in queries.groupby(["configuration", "filter"], sort=False):
        values = part["recall@10"].dropna().to_numpy()
        mean, low, high = bootstrap_mean(values) if len(values) else (np.nan,) * 3
        row = frame[(frame["configuration"] == config) & (frame["filter"] == filt)].iloc[0]
        rows.append({"configuration": config, "index": row["index"], "filter": filt,
                     "correlation": row.get("filter.correlation", "none"),
                     "selectivity_asked": row.get("filter.selectivity", 1.0),
                     "selectivity": row["selectivity"], "recall@10": mean,
                     "recall@10_low": low, "recall@10_high": high,
                     "short@10": part["short@10"].mean(),
                     "returned@10": part["returned@10"].mean(),
                     "violations@10": part["violations@10"].mean(),
                     "qps": row["qps"], "p50_ms": row["p50_ms"], "build_s": row["build_s"]})
    out = pd.DataFrame(rows)
    out["correlation"] = out["correlation"].fillna("none")
    out["selectivity_asked"] = out["selectivity_asked"].fillna(1.0)
    return out


def markdown(frame: pd.DataFrame, columns: list[str], digits: int = 3) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in frame.iterrows():
        cells = []
        for column in columns:
            value = row[column]
            cells.append(f"{value:.{digits}f}" if isinstance(value, float) else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def matrix(table: pd.DataFrame) -> str:
    """recall@10 (short@10) with configurations as rows and filters as columns."""
    order = ["none"] + [f"{c}@{s:g}" for c in ("random", "positive", "negative")
                        for s in (0.001, 0.01, 0.1, 0.5)]
    filters = [f for f in order if f in set(table["filter"])]
    lines = ["| configuration | " + " | ".join(filters) + " |", "|---|" + "---|" * len(filters)]
    for config, part in table.groupby("configuration", sort=True):
        cells = part.set_index("filter")
        row = []
        for f in filters:
            if f not in cells.index:
                row.append("")
                continue
            cell = cells.loc[f]
            row.append(f"{cell['recall@10']:.2f} ({cell['short@10']:.2f})")
        lines.append(f"| {config} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def interval(row) -> str:
    return f"{row['recall@10']:.3f} [{row['recall@10_low']:.3f}, {row['recall@10_high']:.3f}]"


def answer(table: pd.DataFrame) -> str:
    """Per filter: the fastest configuration whose recall@10 interval lies at or above 0.95,
    and the configurations whose interval lies below it."""
    lines = ["| filter | fastest with recall@10 >= 0.95 (lower bound) | its recall@10 [95% CI] "
             "| QPS | below 0.95 (upper bound) |", "|---|---|---|---|---|"]
    for filt, part in table.groupby("filter", sort=False):
        good = part[part["recall@10_low"] >= 0.95].sort_values("qps", ascending=False)
        bad = part[part["recall@10_high"] < 0.95]["configuration"].tolist()
        best = good.iloc[0] if len(good) else None
        lines.append(f"| {filt} | {best['configuration'] if best is not None else 'none'} | "
                     f"{interval(best) if best is not None else ''} | "
                     f"{best['qps']:.0f} | {', '.join(bad) or 'none'} |" if best is not None
                     else f"| {filt} | none | | | {', '.join(bad) or 'none'} |")
    return "\n".join(lines)


def figure(table: pd.DataFrame, name: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    correlations = ["random", "positive", "negative"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.6), sharey=True)
    for ax, correlation in zip(axes, correlations):
        part = table[table["correlation"] == correlation]
        for config, label in FIGURE.items():
            line = part[part["configuration"] == config].sort_values("selectivity")
            if len(line):
                ax.errorbar(line["selectivity"], line["recall@10"],
                            yerr=[line["recall@10"] - line["recall@10_low"],
                                  line["recall@10_high"] - line["recall@10"]],
                            marker="o", capsize=2, label=label)
        ax.set_xscale("log")
        ax.set_title(f"{name}: {correlation} filter")
        ax.set_xlabel("achieved selectivity (share of rows a query may see)")
        ax.axhline(0.95, color="grey", linestyle=":", linewidth=1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("recall@10 vs exact filtered top 10 (95% CI)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=5)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    atomic.write_with(path, lambda handle: fig.savefig(handle, format="png", dpi=110))
    plt.close(fig)


def source(text: str) -> tuple[str, str]:
    name, _, folders = text.partition("=")
    if not name or not folders:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=DIR[,DIR...]")
    return name, folders


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="*", type=source, metavar="NAME=DIR[,DIR...]",
                        help="default: the committed tables, scifact and synthetic")
    parser.add_argument("--out", type=Path, default=OUT,
                        help="folder written to (default: results/filtered_rag)")
    args = parser.parse_args(argv)
    sources = dict(args.sources) or {name: str(OUT / name) for name in ("scifact", "synthetic")}
    for name, source_dirs in sources.items():
        try:
            frame, queries = load(name, [Path(p) for p in source_dirs.split(",")], args.out)
        except DataError as exc:  # a wrong folder: one line, exit 2
            parser.error(str(exc))
        table = summary(frame, queries)
        (args.out / name).mkdir(parents=True, exist_ok=True)
        write_table(table, args.out / name / "summary.csv")
        figure(table, name, args.out / name / "recall_vs_selectivity.png")
        filtered = table[table["filter"] != "none"]
        print(f"### {name}: which configuration keeps recall@10 >= 0.95, at what QPS\n")
        print(answer(filtered) + "\n")
        print(f"### {name}: pgvector, random filters, iterative scan off and on\n")
        pg = table[(table["index"] == "pgvector") & (table["correlation"].isin(["random", "none"]))]
        pg = pg.assign(**{"recall@10 [95% CI]": [interval(r) for _, r in pg.iterrows()]})
        print(markdown(pg.sort_values(["selectivity_asked", "configuration"]),
                       ["configuration", "filter", "returned@10", "short@10",
                        "recall@10 [95% CI]", "qps"]) + "\n")
        print(f"### {name}: recall@10 (short@10) by configuration and filter\n")
        print(matrix(table) + "\n")
        print(f"### {name}: every configuration and filter\n")
        table = table.assign(**{"recall@10 [95% CI]": [interval(r) for _, r in table.iterrows()]})
        print(markdown(table.sort_values(["configuration", "correlation", "selectivity_asked"]),
                       ["configuration", "filter", "selectivity", "recall@10 [95% CI]",
                        "short@10", "violations@10", "qps", "p50_ms"]) + "\n")


if __name__ == "__main__":
    main()
