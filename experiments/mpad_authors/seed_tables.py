"""The fit-seed rerun of mpad_authors (issue 29), results/mpad_authors/README.md's "Five fit
seeds" section, from the committed tables of results/mpad_authors_seeds (seeds.yaml) and the
first run's selection.csv and verdicts.csv:

    .venv/bin/python experiments/mpad_authors/seed_tables.py > /tmp/seeds.md

MPAD keeps the (b, alpha) picked on the validation queries with the first fit seed; its five
fits and each baseline's (PCA: one, deterministic; random projection, UMAP, kernel PCA: five)
are scored on the 600 test queries. Per (dataset, ratio, k) and baseline: MPAD's mean minus the
baseline's, with a 95% interval that resamples each method's fits, then the test queries
(vecbench.evaluate.bootstrap.two_groups_and_queries: the two methods' seeds are unrelated, so
they are not paired seed with seed). Verdicts as in tables.py: Benjamini-Hochberg across the
settings of one baseline (FDR 0.05), TOST within +-1 recall point for "equivalent".
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from vecbench.evaluate import bootstrap
from vecbench.evaluate import verdicts as stated

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the study's tables.py, a script
from tables import BASELINES, MARGIN, N_TEST, method_and_ratio  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results" / "mpad_authors_seeds"
FIRST = ROOT / "results" / "mpad_authors"
KINDS = ["better", "equivalent", "inconclusive", "worse"]


def out() -> Path:
    """The folder written to: the first argument (the staleness test), else the results."""
    return Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS


def load() -> tuple[pd.DataFrame, dict]:
    """The results table and, per recall@k, the test queries' values as rows x queries
    (pivoted once per metric)."""
    table = pd.read_parquet(RESULTS / "results.parquet").reset_index(drop=True)
    table = method_and_ratio(table[table["status"] == "ok"])
    long = pd.read_parquet(RESULTS / "per_query.parquet")
    long = long[long["query"] < N_TEST]
    metrics = [c for c in long.columns if c.startswith("recall@")]
    return table, {m: long.pivot(index="row", columns="query", values=m) for m in metrics}


def test_matrix(wide: dict, rows, metric: str) -> np.ndarray:
    """fits x test queries of ``metric``."""
    return wide[metric].loc[list(rows)].to_numpy(dtype=np.float64)


def comparisons(table: pd.DataFrame, wide: dict) -> pd.DataFrame:
    chosen = pd.read_csv(FIRST / "selection.csv")
    out_rows = []
    if "pipeline.mpad_axiswise.b" not in table:
        return pd.DataFrame()  # a partial run: no MPAD fit yet
    for pick in chosen.to_dict("records"):
        metric = f"recall@{pick['k']}"
        same = table[(table["dataset"] == pick["dataset"]) & np.isclose(table["ratio"], pick["ratio"])]
        mpad_rows = same.index[(same["method"] == "mpad_axiswise")
                               & np.isclose(same["pipeline.mpad_axiswise.b"], pick["b (val)"])
                               & np.isclose(same["pipeline.mpad_axiswise.alpha"],
                                            pick["alpha (val)"])]
        if len(mpad_rows) == 0:
            continue  # not run yet
        mpad = test_matrix(wide, mpad_rows, metric)
        for baseline in BASELINES:
            base_rows = same.index[same["method"] == baseline]
            if len(base_rows) == 0:
                continue
            base = test_matrix(wide, base_rows, metric)
            both = bootstrap.two_groups_and_queries(mpad, base)
            # one fit of each, and the fit-averaged curves: intervals over the queries alone
            first = bootstrap.two_groups_and_queries(mpad[:1], base[:1])
            queries_only = bootstrap.two_groups_and_queries(mpad.mean(axis=0, keepdims=True),
                                                            base.mean(axis=0, keepdims=True))
            out_rows.append({
                "dataset": pick["dataset"], "ratio": pick["ratio"], "k": pick["k"],
                "baseline": baseline, "mpad fits": len(mpad), "baseline fits": len(base),
                "mpad fit sd (points)": 100 * mpad.mean(axis=1).std(ddof=1),
                "difference (points)": 100 * both.mean, "ci_low": 100 * both.low,
                "ci_high": 100 * both.high,
                "queries-only width": 100 * (queries_only.high - queries_only.low),
                "seed 0 difference": 100 * first.mean,
                "seed 0 width": 100 * (first.high - first.low),
                "_p": both.p_value(), "_p_equiv": both.equivalence_p(MARGIN),
                "_p0": first.p_value(), "_p0_equiv": first.equivalence_p(MARGIN)})
    frame = pd.DataFrame(out_rows)
    for suffix, label, column in (("", "verdict", "difference (points)"),
                                  ("0", "seed 0 verdict", "seed 0 difference")):
        frame[label] = ""
        for _, part in frame.groupby("baseline"):
            words, q, _ = stated.verdicts(part[column], part[f"_p{suffix}"],
                                          part[f"_p{suffix}_equiv"], margin=MARGIN, scale=100)
            frame.loc[part.index, label] = words
            if not suffix:
                frame.loc[part.index, "q"] = q
    return frame.drop(columns=[c for c in frame.columns if c.startswith("_")])


def kind(words: pd.Series) -> pd.Series:
    return words.str.extract(r"^(better|worse|equivalent|inconclusive)")[0]


def counts_line(words: pd.Series) -> str:
    counted = kind(words).value_counts()
    return " / ".join(str(int(counted.get(k, 0))) for k in KINDS)


def main() -> None:
    table, wide = load()
    frame = comparisons(table, wide)
    if frame.empty:
        print(f"{RESULTS}: no MPAD row yet (run seeds.yaml further)")
        return
    frame.to_csv(out() / "seed_verdicts.csv", index=False, float_format="%.6g")
    before = pd.read_csv(FIRST / "verdicts.csv")
    before = before[before["picked on"] == "validation"]
    done = frame[["dataset", "ratio", "k"]].drop_duplicates()
    before = before.merge(done, on=["dataset", "ratio", "k"])
    print(f"## Five fit seeds: MPAD (validation-picked) against each baseline, {len(done)} "
          f"settings\n")
    print("Verdicts better / equivalent within ±1 / inconclusive / worse (BH across the "
          "settings of each baseline):\n")
    print("| baseline | first run (committed) | rerun, first fit seed | rerun, five fit seeds |"
          " median width: seed 0 / queries only / seeds and queries (points) |")
    print("|---|---|---|---|---|")
    for baseline in BASELINES:
        mine = frame[frame["baseline"] == baseline]
        if mine.empty:
            continue
        widths = (mine["ci_high"] - mine["ci_low"]).median()
        print(f"| {baseline} | {counts_line(before.loc[before['baseline'] == baseline, 'verdict (BH)'])}"
              f" | {counts_line(mine['seed 0 verdict'])} | {counts_line(mine['verdict'])} | "
              f"{mine['seed 0 width'].median():.2f} / {mine['queries-only width'].median():.2f} / "
              f"{widths:.2f} |")
    pca = frame[frame["baseline"] == "pca"]
    wins = before[(before["baseline"] == "pca") & (kind(before["verdict (BH)"]) == "better")]
    print("\n## The first run's wins against PCA, rerun\n")
    print("| dataset | ratio | k | first run [95% CI] | rerun, seed 0 | five seeds [95% CI] | "
          "verdict |")
    print("|---|---|---|---|---|---|---|")
    for win in wins.to_dict("records"):
        r = pca[(pca["dataset"] == win["dataset"]) & np.isclose(pca["ratio"], win["ratio"])
                & (pca["k"] == win["k"])].iloc[0]
        print(f"| {r['dataset']} | {r['ratio']:g} | {r['k']} | "
              f"{win['mpad - baseline (points)']:+.2f} [{win['ci_low']:+.2f}, "
              f"{win['ci_high']:+.2f}] | {r['seed 0 difference']:+.2f} | "
              f"{r['difference (points)']:+.2f} [{r['ci_low']:+.2f}, {r['ci_high']:+.2f}] | "
              f"{r['verdict']} |")
    changed = pca[kind(pca["verdict"]) != kind(pca["seed 0 verdict"])]
    print(f"\n## Against PCA: settings whose verdict the five seeds change ({len(changed)})\n")
    print("| dataset | ratio | k | seed 0: difference | verdict | five seeds: difference "
          "[95% CI] | verdict | MPAD fit sd |")
    print("|---|---|---|---|---|---|---|---|")
    for r in changed.to_dict("records"):
        print(f"| {r['dataset']} | {r['ratio']:g} | {r['k']} | {r['seed 0 difference']:+.2f} | "
              f"{r['seed 0 verdict']} | {r['difference (points)']:+.2f} "
              f"[{r['ci_low']:+.2f}, {r['ci_high']:+.2f}] | {r['verdict']} | "
              f"{r['mpad fit sd (points)']:.2f} |")


if __name__ == "__main__":
    main()
