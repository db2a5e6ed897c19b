"""Recall over a runbook's steps: one line per index configuration, a panel per dataset and
runbook (``vecbench plot --kind steps``)."""

from __future__ import annotations

from vecbench.core.errors import DataError
from vecbench.evaluate.frontier import natural_key, value_text
from vecbench.present.figure import check, figure_legend, new_figure, numeric


def series_label(row) -> str:
    """``hnswlib ef=32``: the index and its search setting (what a line follows)."""
    settings = " ".join(f"{name.split('.', 1)[1]}={value_text(value)}"
                        for name, value in row.items()
                        if name.startswith("search.") and value_text(value) != "")
    return f"{row['index']} {settings}".strip()


def steps(frame, y: str | None = None, x: str = "search_step", hue: str | None = None,
          facet: str | None = None):
    """``y`` (default recall@k) against the runbook's search steps (``x``: ``search_step``, the
    n-th search, or ``step``, the step's number in the runbook); lines by ``hue`` (default the
    index and its search setting), panels by ``facet`` (default dataset and runbook)."""
    if "step" not in frame.columns or frame["step"].isna().all():
        raise DataError("the results have no runbook steps (no 'step' column); expected the "
                        "results of an experiment with a runbook:")
    frame = frame[frame["step"].notna()]
    if "status" in frame.columns:
        frame = frame[frame["status"] == "ok"]
    y = y or f"recall@{int(frame['k'].iloc[0])}"
    check(frame, y=y, x=x, hue=hue, facet=facet)
    searches = [c for c in frame.columns if c.startswith("search.")]
    if hue is None:
        hue = "_series"
        frame = frame.assign(_series=frame[["index", *searches]].apply(series_label, axis=1))
    if facet is None:
        facet = "_panel"
        frame = frame.assign(_panel=frame["dataset"].map(value_text) + "\n"
                             + frame["runbook"].map(value_text))
    panels = sorted(frame[facet].map(value_text).unique(), key=natural_key)
    fig, axes = new_figure(len(panels))
    for ax, panel in zip(axes, panels):
        part = frame[frame[facet].map(value_text) == panel]
        for label in sorted(part[hue].map(value_text).unique(), key=natural_key):
            line = part[part[hue].map(value_text) == label].sort_values(x)
            ax.plot(numeric(line, x), numeric(line, y), marker=".", label=label)
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.grid(True, alpha=0.3)
    figure_legend(fig, axes)
    return fig
