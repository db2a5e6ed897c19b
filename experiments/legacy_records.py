"""Convert a study's schema-1 run records (derived numbers and per-query values, no raw ids)
into the committed layout: results.csv / results.parquet and per_query.parquet.

    .venv/bin/python experiments/legacy_records.py results/nn_preserving

Used once for the studies run before run records kept raw results (git history has their
runs/*.json); a rerun with `vecbench run` replaces the converted tables. Column names follow
the current table: the judged recall formerly named recall@100 is judged_recall@100.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from vecbench.evaluate import results

RENAMED = {"recall@100": "judged_recall@100"}


def convert(folder: Path) -> tuple[int, int]:
    rows, per_query = [], []
    for path in sorted((folder / "runs").glob("*.json")):
        record = json.loads(path.read_text())
        spec = record["spec"]
        pipeline_columns = {f"pipeline.{name}.{key}": value
                            for step in spec.get("pipeline", [])
                            for name, params in step.items() for key, value in params.items()}
        for row in record["rows"]:
            values = row.pop("per_query", {})
            row = {RENAMED.get(name, name): value for name, value in row.items()}
            row.update(pipeline_columns)
            row["host"], row["worker"] = None, "legacy"
            row_id = len(rows)
            rows.append(row)
            for name, array in values.items():
                per_query.append((row_id, RENAMED.get(name, name), np.asarray(array, float)))
    frame = results.add_repeat_intervals(results.add_derived_columns(pd.DataFrame(rows)))
    frame = results._typed(frame, results._int_columns(rows))
    frame = frame[results._ordered_columns(frame)]
    long = results._per_query_frame(frame, per_query)
    for name, table in (("results.csv", frame), ("results.parquet", frame),
                        ("per_query.parquet", long)):
        results.write_table(table, folder / name)
    return len(frame), len(long)


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        n_rows, n_query_rows = convert(Path(argument))
        print(f"{argument}: {n_rows} rows, {n_query_rows} per-query rows")
