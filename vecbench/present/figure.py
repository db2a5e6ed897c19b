"""What every figure shares: panels in a grid, numeric columns, checked columns, one legend below.

matplotlib and pandas are imported when a figure is drawn, never at import.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np

from vecbench.core.errors import DataError
from vecbench.evaluate.compare import check_column

PANEL_WIDTH, PANEL_HEIGHT, MAX_COLUMNS = 4.4, 3.3, 2


def new_figure(n_panels: int = 1, width: float = PANEL_WIDTH, height: float = PANEL_HEIGHT):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = min(n_panels, MAX_COLUMNS)
    rows = math.ceil(n_panels / cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for extra in axes[n_panels:]:
        extra.set_visible(False)
    return fig, list(axes[:n_panels])

def numeric(frame, column: str) -> np.ndarray:
    import pandas as pd
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)

def check(frame, **columns) -> None:
    for option, column in columns.items():
        if column is not None:
            check_column(frame, column, f"--{option}")
    if frame.empty:
        raise DataError("no result rows to plot")

def wrap(label: str, chars: int) -> str:
    """``label`` in lines of at most ``chars`` characters, broken at spaces, or at a pipeline's
    ``|`` and a parameter list's commas when it has to be."""
    if len(label) <= chars:
        return label
    spaced = label.replace("|", "| ").replace(",", ", ")
    return textwrap.fill(spaced, chars, break_long_words=True, break_on_hyphens=False)

def figure_legend(fig, axes) -> None:
    """One legend below the panels, with each label once (panels share their series), in the
    most columns that fit the figure's width as drawn; a label wider than the figure wraps."""
    handles: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if not handles:
        return
    if "Pareto front" in handles:  # last, not between the series of two panels
        handles["Pareto front"] = handles.pop("Pareto front")
    fontsize = 7.5 if len(handles) <= 20 else 6.5
    width_pt = fig.get_figwidth() * 72
    chars = max(16, int((width_pt - 50) / (0.55 * fontsize)))  # a first guess, then measured
    longest = min(chars, max(len(label) for label in handles))
    ncol = max(1, min(len(handles), int(width_pt // (longest * 0.55 * fontsize + 36))))
    renderer = fig.canvas.get_renderer()
    panels_height = fig.get_figheight()
    while True:  # fewer columns, then narrower lines, until the legend fits the width
        labels = [wrap(label, chars) for label in handles]
        # room for the tallest legend (one column) while measuring: the panels never collapse
        lines = sum(label.count("\n") + 1 for label in labels)
        fig.set_figheight(panels_height + lines * fontsize * 1.5 / 72 + 0.5)
        legend = fig.legend(list(handles.values()), labels, loc="outside lower center",
                            ncol=ncol, fontsize=fontsize, frameon=False)
        fig.draw_without_rendering()
        box = legend.get_window_extent(renderer)
        if (box.x0 >= fig.bbox.x0 and box.x1 <= fig.bbox.x1) or chars <= 16:
            break
        legend.remove()
        if ncol > 1:
            ncol -= 1
        else:
            chars = max(16, int(chars * 0.85))
    # the panels keep their height: the figure grows by the legend's
    fig.set_figheight(panels_height + box.height / fig.dpi + 0.1)
