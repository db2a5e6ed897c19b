"""The streaming study's tables and figure, from its results folder (run records).

    python experiments/streaming/tables.py RESULTS_DIR OUT_DIR

writes OUT_DIR/summary.csv (per dataset, runbook and index: recall@10 at the first and last
search step and its mean over the steps, the fresh build of the same active set at the last step,
the recall lost, what the changes and the rebuilds cost), OUT_DIR/steps.csv (every search step),
OUT_DIR/truth_cost.csv (exact kNN per step against one ground truth over all the data used) and
OUT_DIR/recall_steps.png (vecbench plot --kind steps).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from vecbench.compute.groundtruth import exact_knn
from vecbench.core.errors import ConfigError
from vecbench.evaluate.results import table
from vecbench.present import plots
from vecbench.run.experiment import load_experiment
from vecbench.run.stages import load

EXPERIMENT = Path(__file__).with_name("experiment.yaml")


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


def truth_cost(frame: pd.DataFrame) -> pd.DataFrame:
    """Seconds of exact kNN per search step (the unit that computed it: the slowest of the
    units sharing it, the others read it from the cache) against one exact kNN over all the
    data the runbook uses, timed here the same way."""
    experiment = load_experiment(EXPERIMENT)
    rows = []
    for (dataset, shape), part in frame.groupby(["dataset", "shape"]):
        per_step = part.groupby("search_step")["truth_s"].max()
        unit = next(u for u in experiment.units
                    if u.dataset.name == part["dataset_entry"].iloc[0].split("(")[0]
                    and u.runbook.label().startswith(shape))
        data = load(unit.dataset, unit.base_dir)
        n = dict(unit.runbook.generator[1])["n"]
        started = time.perf_counter()
        exact_knn(data.base[:n], data.queries, 10, data.metric)
        once = time.perf_counter() - started
        rows.append({"dataset": dataset, "runbook": shape, "search_steps": len(per_step),
                     "active_mean": float(part["active"].mean()),
                     "truth_s_per_step_mean": float(per_step.mean()),
                     "truth_s_all_steps": float(per_step.sum()),
                     "one_off_truth_s_all_data": once, "all_data": n,
                     "ratio_all_steps_to_one_off": float(per_step.sum()) / once})
    return pd.DataFrame(rows).round(4)


def main(results: str, out: str) -> None:
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = table(results)
    frame["dataset_entry"] = frame["dataset"].map(
        lambda name: "beir" if "scifact" in name else "synthetic")
    frame = with_labels(frame)
    steps = frame[["dataset", "shape", "index", "variant", "search_step", "step", "active",
                   "recall@10",
                   "searchable@10", "truth_s", "qps", "p50_ms", "p99_ms"]]
    steps.round(4).to_csv(out_dir / "steps.csv", index=False)
    summary(frame).to_csv(out_dir / "summary.csv", index=False)
    truth_cost(frame).to_csv(out_dir / "truth_cost.csv", index=False)
    native = frame[frame["variant"] != "fresh build"].assign(
        index=lambda f: f["index"] + np.where(f["variant"] == "native", "",
                                              " (" + f["variant"].str[9:] + ")"))
    try:
        figure = plots.plot("steps", native.drop(columns=["runbook"]).assign(
            runbook=native["shape"]), hue="index")
        plots.save(figure, out_dir / "recall_steps.png")
    except ConfigError as exc:
        print(f"no figure: {exc}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
