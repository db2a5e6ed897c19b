"""Pointwise LID plots: where the estimates come from, and their distribution per dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vecbench.core.errors import DataError
from vecbench.evaluate.frontier import natural_key
from vecbench.present.figure import PANEL_WIDTH, check, figure_legend, new_figure, numeric
from vecbench.evaluate.compare import load_table
from vecbench.evaluate.results import query_lid_table

#: More datasets than this get box plots instead of overlaid histograms.
MAX_HISTOGRAMS = 5


LID_FILES = ("lid.parquet", "lid.csv")


def lid_table(results: str | Path):
    """Pointwise LID of a results folder, as a table (``dataset``, ``lid``, ``of``).

    From ``lid.parquet`` / ``lid.csv`` in the folder where someone saved one, else from the run
    records' reference answers (every run keeps its queries' LID, estimated against the base):
    one set per dataset. A DataError says why when the folder has neither.
    """
    folder = Path(results)
    for name in LID_FILES:
        if (folder / name).is_file():
            return load_table(folder / name)
    table = query_lid_table(folder)
    if table.empty:
        raise DataError(f"{folder}: no pointwise LID to plot: no {' or '.join(LID_FILES)} "
                        "and no run record with query LID (records of an older vecbench, or "
                        "no run succeeded); `vecbench lid DATASET -o FILE.png` estimates it")
    return table


def lid_figure(data, column: str = "lid", hue: str = "dataset", bins: int = 50):
    """Histogram of pointwise LID estimates, one per dataset.

    ``data`` is a DataFrame with columns ``dataset`` and ``lid`` (or ``hue``/``column``; an
    optional ``of`` says of what: "queries, MLE k=20"), a mapping {dataset name: array of
    estimates}, or a results folder (see :func:`lid_table`).
    """
    import pandas as pd

    if isinstance(data, (str, Path)):
        data = lid_table(data)
    if isinstance(data, dict):
        data = pd.concat([pd.DataFrame({hue: name, column: np.asarray(values, float).ravel()})
                          for name, values in data.items()], ignore_index=True)
    if column not in data.columns and "index" in data.columns:
        raise DataError("a results table holds no pointwise LID; plot the results folder "
                        "itself (its run records hold the queries' LID) or a lid.csv")
    check(data, x=column, hue=hue)
    values = numeric(data, column)
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        raise DataError(f"column {column!r} has no finite LID values")
    groups = []
    for name, group in sorted(data.groupby(hue, sort=False), key=lambda g: natural_key(g[0])):
        v = numeric(group, column)
        of = f"{group['of'].iloc[0]}, " if "of" in group.columns else ""
        groups.append((name, of, v[np.isfinite(v)]))
    if len(groups) > MAX_HISTOGRAMS:
        return _lid_boxes(groups, column)
    fig, axes = new_figure(1)
    ax = axes[0]
    edges = np.histogram_bin_edges(finite, bins=bins)
    for name, of, v in groups:
        # density, not counts: datasets of 9k and 46k points share one axis
        ax.hist(v, bins=edges, alpha=0.5, density=True,
                label=f"{name} ({of}n {len(v):,}, median {np.median(v):.1f})")
    ax.set_xlabel("pointwise LID", fontsize=9)
    ax.set_ylabel("density", fontsize=9)
    ax.set_title("Local intrinsic dimension", loc="left", fontsize=9)
    ax.tick_params(labelsize=8)
    figure_legend(fig, axes)
    return fig


def _lid_boxes(groups, column: str):
    """Many datasets: one horizontal box per dataset (quartiles, whiskers at 5% and 95%),
    sorted by median; overlaid histograms of more than a few sets cannot be read."""
    import inspect

    groups = sorted(groups, key=lambda g: np.median(g[2]))
    about = {of for _, of, _ in groups}
    shared = about.pop().rstrip(", ") if len(about) == 1 else ""
    fig, axes = new_figure(1, width=2 * PANEL_WIDTH, height=1.2 + 0.24 * len(groups))
    ax = axes[0]
    sideways = ({"orientation": "horizontal"}  # matplotlib >= 3.10; vert= before
                if "orientation" in inspect.signature(ax.boxplot).parameters else {"vert": False})
    ax.boxplot([v for _, _, v in groups], whis=(5, 95), showfliers=False,
               medianprops={"color": "tab:red"}, **sideways)
    ax.set_yticks(np.arange(1, len(groups) + 1),
                  [f"{name} ({'' if shared else of}n {len(v):,})" for name, of, v in groups],
                  fontsize=8)
    ax.set_xlabel(f"pointwise LID ({column}); box: quartiles, whiskers: 5% and 95%",
                  fontsize=9)
    ax.set_title("Local intrinsic dimension" + (f" ({shared})" if shared else "")
                 + ", by median", loc="left", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(True, axis="x", alpha=0.3)
    return fig
