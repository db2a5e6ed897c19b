"""The streaming study's tables and figure, from its committed results table.

    python experiments/streaming/tables.py [RESULTS] [OUT] [--time-truth]

RESULTS: results/streaming (default; its committed results.parquet), a results.csv or parquet,
or the folder `vecbench run` wrote (run records). Writes, into OUT (default results/streaming;
`make figures OUT=...` writes elsewhere):

- OUT/summary.csv: per dataset, runbook and index: recall@10 at the first and last search step
  and its mean over the steps, the fresh build of the same active set at the last step, the
  recall lost, what the changes and the rebuilds cost;
- OUT/steps.csv: every search step;
- OUT/truth_cost.csv: exact kNN per step against one ground truth over all the data used;
- OUT/recall_steps.png (vecbench plot --kind steps).

The one ground truth over all the data is a timing, not something the results hold: with
--time-truth it is measured here (needs VECBENCH_DATA) and written to OUT/truth_once.csv;
without, it is read from results/streaming/truth_once.csv (the committed measurement, or
--truth-once FILE), so the tables are remade from committed files alone.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from vecbench.compute.groundtruth import exact_knn
from vecbench.core.errors import ConfigError, DataError
from vecbench.evaluate.results import table, write_table
from vecbench.present import plots
from vecbench.run.experiment import load_experiment
from vecbench.run.stages import load

EXPERIMENT = Path(__file__).with_name("experiment.yaml")
COMMITTED = Path(__file__).resolve().parents[2] / "results" / "streaming"


def variant(label: str) -> str:
    """How the index was kept: native changes, with periodic re-training or VACUUM, or a fresh
    build before every search (the baseline)."""
    if label.endswith(" rebuild"):
        return "fresh build"
    if "rebuild_every=5" in label:
        return "native + re-train every 5 rounds"
    if "compact_every=5" in label:
        return "native + VACUUM every 5 rounds"
    return "native"


def with_labels(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[frame["status"] == "ok"].copy()
    frame["shape"] = frame["runbook"].str.split("(").str[0]
    frame["variant"] = frame["runbook"].map(variant)
    frame["dataset"] = frame["dataset"].str.split("-d64").str[0]
    return frame


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (dataset, shape, index), part in frame.groupby(["dataset", "shape", "index"]):
        fresh = part[part["variant"] == "fresh build"].sort_values("search_step")
        fresh_last = fresh["recall@10"].iloc[-1] if len(fresh) else np.nan
        rebuilds = max(len(fresh), 1)
        for name, runs in part.groupby("variant"):
            runs = runs.sort_values("search_step")
            last = runs.iloc[-1]
            changes = (last["insert_per_s"], last["delete_per_s"])
            rows.append({
                "dataset": dataset, "runbook": shape, "index": index, "variant": name,
                "search_steps": len(runs),
                "recall@10_first": runs["recall@10"].iloc[0],
                "recall@10_last": last["recall@10"],
                "mean_recall@10": last["mean_recall@10"],
                "fresh_recall@10_last": fresh_last,
                "lost_vs_fresh_last": fresh_last - last["recall@10"],
                "searchable@10_mean": runs["searchable@10"].mean(),
                "insert_per_s": changes[0], "delete_per_s": changes[1],
                "rebuild_s_total": last["rebuild_s"],
                "rebuild_s_each": (last["rebuild_s"] / rebuilds if name == "fresh build"
                                   else np.nan),
                "compact_s_total": last["compact_s"],
                "p50_ms_last": last["p50_ms"], "p99_ms_last": last["p99_ms"],
            })
    return pd.DataFrame(rows).round(4)


def time_truth(frame: pd.DataFrame) -> pd.DataFrame:
    """Seconds of one exact kNN over all the data each runbook uses (what a static benchmark
    computes once), timed here the same way the units time a step's."""
    experiment = load_experiment(EXPERIMENT)
    rows = []
    for (dataset, shape), part in frame.groupby(["dataset", "shape"]):
        unit = next(u for u in experiment.units
                    if u.dataset.name == part["dataset_entry"].iloc[0].split("(")[0]
                    and u.runbook.label().startswith(shape))
        data = load(unit.dataset, unit.base_dir)
        n = dict(unit.runbook.generator[1])["n"]
        started = time.perf_counter()
        exact_knn(data.base[:n], data.queries, 10, data.metric)
        rows.append({"dataset": dataset, "runbook": shape, "all_data": n,
                     "one_off_truth_s_all_data": time.perf_counter() - started})
    return pd.DataFrame(rows)


def truth_cost(frame: pd.DataFrame, once: pd.DataFrame) -> pd.DataFrame:
    """Seconds of exact kNN per search step (the unit that computed it: the slowest of the
    units sharing it, the others read it from the cache) against one exact kNN over all the
    data the runbook uses (``once``, from :func:`time_truth`)."""
    once = once.set_index(["dataset", "runbook"])
    rows = []
    for (dataset, shape), part in frame.groupby(["dataset", "shape"]):
        per_step = part.groupby("search_step")["truth_s"].max()
        timed = once.loc[(dataset, shape)]
        rows.append({"dataset": dataset, "runbook": shape, "search_steps": len(per_step),
                     "active_mean": float(part["active"].mean()),
                     "truth_s_per_step_mean": float(per_step.mean()),
                     "truth_s_all_steps": float(per_step.sum()),
                     "one_off_truth_s_all_data": float(timed["one_off_truth_s_all_data"]),
                     "all_data": int(timed["all_data"]),
                     "ratio_all_steps_to_one_off":
                         float(per_step.sum()) / float(timed["one_off_truth_s_all_data"])})
    return pd.DataFrame(rows).round(4)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default=str(COMMITTED),
                        help="results folder or table (default: results/streaming)")
    parser.add_argument("out", nargs="?", type=Path, default=COMMITTED,
                        help="folder written to (default: results/streaming)")
    parser.add_argument("--time-truth", action="store_true",
                        help="time the one-off ground truth now and write OUT/truth_once.csv")
    parser.add_argument("--truth-once", type=Path, default=COMMITTED / "truth_once.csv",
                        help="the timed one-off ground truth (default: the committed one)")
    args = parser.parse_args(argv)
    try:
        frame = table(args.results)
    except DataError as exc:  # a wrong path or table: one line, exit 2
        parser.error(str(exc))
    args.out.mkdir(parents=True, exist_ok=True)
    frame["dataset_entry"] = frame["dataset"].map(
        lambda name: "beir" if "scifact" in name else "synthetic")
    frame = with_labels(frame)
    if args.time_truth:
        once = time_truth(frame)
        write_table(once.round(4), args.out / "truth_once.csv")
    elif args.truth_once.is_file():
        once = pd.read_csv(args.truth_once)
    else:
        parser.error(f"--truth-once {args.truth_once}: no such file (expected the timed one-off "
                     "ground truth; run with --time-truth to measure it)")
    steps = frame[["dataset", "shape", "index", "variant", "search_step", "step", "active",
                   "recall@10",
                   "searchable@10", "truth_s", "qps", "p50_ms", "p99_ms"]]
    write_table(steps.round(4), args.out / "steps.csv")
    write_table(summary(frame), args.out / "summary.csv")
    write_table(truth_cost(frame, once), args.out / "truth_cost.csv")
    native = frame[frame["variant"] != "fresh build"].assign(
        index=lambda f: f["index"] + np.where(f["variant"] == "native", "",
                                              " (" + f["variant"].str[9:] + ")"))
    try:
        figure = plots.plot("steps", native.drop(columns=["runbook"]).assign(
            runbook=native["shape"]), hue="index")
        plots.save(figure, args.out / "recall_steps.png")
    except ConfigError as exc:
        print(f"no figure: {exc}")


if __name__ == "__main__":
    main()
