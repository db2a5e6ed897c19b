"""Results on disk: one JSON per build unit, written atomically; collected into a flat table.

A unit's JSON exists only once it is complete (written to a temporary file, then renamed), so
its existence is the resume check and a run killed at any moment loses at most the unit in
flight.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

from vecbench.errors import DataError

FIRST_COLUMNS = ["experiment", "dataset", "pipeline", "pipeline_kind", "index"]
MIDDLE_COLUMNS = ["ordering", "repeat", "k"]
#: ``recall@{k}_q1`` .. ``_q4``: recall within each query-LID quartile (q1 = lowest LID).
METRIC_COLUMNS = ["recall@{k}", "recall_index@{k}", "recall_eps@{k}",
                  *(f"recall@{{k}}_q{i}" for i in range(1, 5)), "qps", "p50_ms", "p95_ms",
                  "p99_ms", "build_s", "fit_s", "encode_s", "bytes_per_vector", "index_bytes",
                  "quantization", "status", "reason"]
QRELS_COLUMNS = ["ndcg@10", "recall@100", "mrr@10"]


def runs_dir(results: str | Path) -> Path:
    return Path(results) / "runs"


def run_path(results: str | Path, key: str) -> Path:
    return runs_dir(results) / f"{key}.json"


def is_complete(results: str | Path, key: str) -> bool:
    return run_path(results, key).exists()


def write_run(results: str | Path, key: str, record: dict) -> Path:
    """Write ``record`` atomically: a reader sees either no file or the whole file."""
    path = run_path(results, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as handle:
        json.dump(record, handle, default=_json_default)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def iter_runs(results: str | Path) -> Iterator[dict]:
    folder = runs_dir(results)
    if not folder.is_dir():
        raise DataError(f"{results}: no results here (expected a folder with runs/*.json; "
                        "run `vecbench run` first)")
    for path in sorted(folder.glob("*.json")):
        try:
            yield json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not a valid run file ({exc})") from None


def table(results: str | Path):
    """The flat result table: one row per search setting of every build unit."""
    import pandas as pd

    rows = []
    for record in iter_runs(results):
        for row in record.get("rows", []):
            flat = {key: value for key, value in row.items() if key != "per_query"}
            rows.append(flat)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = add_repeat_intervals(add_derived_columns(frame))
    return frame[_ordered_columns(frame)]


#: Columns across whose repeats a mean and 95% interval are added (``{k}`` = the experiment's k).
REPEATED_METRICS = ("recall@{k}", "recall_eps@{k}", "ndcg@10")


def add_derived_columns(frame):
    """``pipeline_kind``: the pipeline without parameters ("pca|float8"), to group by method;
    ``total_bytes_per_vector``: the index's bytes plus those of a rescoring copy, if any."""
    if "pipeline" in frame:
        frame["pipeline_kind"] = frame["pipeline"].astype(str).str.replace(
            r"\([^)]*\)", "", regex=True)
    if "bytes_per_vector" in frame:
        rescore = frame.get("rescore_bytes_per_vector")
        frame["total_bytes_per_vector"] = frame["bytes_per_vector"] + (
            0 if rescore is None else rescore.fillna(0))
    return frame


def config_columns(frame) -> list[str]:
    """The columns that identify a configuration, repeat excluded."""
    fixed = ["experiment", "dataset", "pipeline", "index", "ordering", "k"]
    params = [c for c in frame.columns if c.startswith(("build.", "search.", "rescore."))]
    return [c for c in fixed + params if c in frame.columns]


def add_repeat_intervals(frame):
    """Add ``<metric>_mean``, ``_ci95_low``, ``_ci95_high`` over the repeats of a configuration.

    The interval is Student's t over the repeats' means (each repeat is an independent build);
    configurations with a single repeat get the mean and no interval (NaN).
    """
    import numpy as np
    from scipy.special import stdtrit  # Student's t quantile; scipy.stats costs 1-2 s to import

    k = int(frame["k"].iloc[0])
    keys = config_columns(frame)
    grouped = frame.groupby(keys, sort=False, dropna=False)
    for template in REPEATED_METRICS:
        column = template.format(k=k)
        if column not in frame:
            continue
        mean = grouped[column].transform("mean")
        std = grouped[column].transform("std")
        count = grouped[column].transform("count")
        half = stdtrit(np.maximum(count - 1, 1), 0.975) * std / np.sqrt(count)
        half = half.where(count > 1)
        frame[f"{column}_mean"] = mean
        frame[f"{column}_ci95_low"] = mean - half
        frame[f"{column}_ci95_high"] = mean + half
    return frame


def _ordered_columns(frame) -> list[str]:
    k = int(frame["k"].iloc[0]) if "k" in frame else 10
    builds = sorted(c for c in frame.columns if c.startswith("build."))
    searches = sorted(c for c in frame.columns if c.startswith("search."))
    wanted = (FIRST_COLUMNS + builds + searches + MIDDLE_COLUMNS
              + [c.format(k=k) for c in METRIC_COLUMNS] + QRELS_COLUMNS)
    present = [c for c in wanted if c in frame.columns]
    rest = [c for c in frame.columns if c not in present]
    return present + rest


def collect(results: str | Path) -> tuple[Path, Path, int]:
    """Write ``results.csv`` and ``results.parquet`` in ``results``; return paths and row count."""
    frame = table(results)
    results = Path(results)
    csv_path, parquet_path = results / "results.csv", results / "results.parquet"
    frame.to_csv(csv_path, index=False)
    frame.to_parquet(parquet_path, index=False)
    return csv_path, parquet_path, len(frame)
