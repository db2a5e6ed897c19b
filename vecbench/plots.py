"""Trade-off plots: a DataFrame in, a matplotlib Figure out.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas, never through pyplot, so
no global figure state leaks between calls (and no display is needed). Directions ("better")
come from :data:`vecbench.metrics.METRICS`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from vecbench.compare import check_column
from vecbench.errors import ConfigError, DataError
from vecbench.metrics import mean_ci95, metric_info

KINDS = ("pareto", "tradeoff", "ordering", "lid")


def recall_column(frame) -> str:
    """``recall@k`` for the table's k (the first recall@ column present)."""
    if "k" in frame.columns and len(frame):
        name = f"recall@{int(frame['k'].iloc[0])}"
        if name in frame.columns:
            return name
    for column in frame.columns:
        if column.startswith("recall@"):
            return column
    raise DataError("the results have no recall@k column")


def _new_figure(n_panels: int = 1, width: float = 6.4, height: float = 4.6):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = min(n_panels, 3)
    rows = math.ceil(n_panels / cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for extra in axes[n_panels:]:
        extra.set_visible(False)
    return fig, list(axes[:n_panels])


def _label(column: str) -> str:
    info = metric_info(column)
    return f"{column} ({info.label})" if info else column


def _higher_better(column: str) -> bool | None:
    info = metric_info(column)
    return None if info is None else info.higher_is_better


def pareto_front(x: np.ndarray, y: np.ndarray, x_higher: bool = True,
                 y_higher: bool = True) -> np.ndarray:
    """Indices of the non-dominated points, sorted by x.

    Written by hand (a sort and one sweep) because numpy, pandas and scikit-learn have no Pareto
    front; a point is kept when no other point is at least as good on both axes and better on one.
    """
    x = np.asarray(x, float) * (1 if x_higher else -1)
    y = np.asarray(y, float) * (1 if y_higher else -1)
    valid = np.flatnonzero(~(np.isnan(x) | np.isnan(y)))
    order = valid[np.lexsort((-y[valid], -x[valid]))]  # best x first, best y first among ties
    front, best_y = [], -np.inf
    for i in order:
        if y[i] > best_y:
            front.append(i)
            best_y = y[i]
    front = np.array(front, dtype=int)
    return front[np.argsort(x[front] * (1 if x_higher else -1))] if len(front) else front


def _better_note(ax, x: str, y: str) -> None:
    """Write which way is better in the corner, from the metrics' directions."""
    arrows = []
    hx, hy = _higher_better(x), _higher_better(y)
    if hx is not None:
        arrows.append("→" if hx else "←")
    if hy is not None:
        arrows.append("↑" if hy else "↓")
    if arrows:
        corner_x = 0.98 if hx in (True, None) else 0.02
        corner_y = 0.02 if hy is False else 0.98
        ax.text(corner_x, corner_y, "better " + " ".join(arrows), transform=ax.transAxes,
                ha="right" if corner_x > 0.5 else "left",
                va="top" if corner_y > 0.5 else "bottom", fontsize=9, color="0.3",
                bbox={"boxstyle": "round", "fc": "white", "ec": "0.7", "alpha": 0.8})


def _panels(frame, facet: str | None):
    if facet and facet in frame.columns and frame[facet].nunique() > 1:
        return [(f"{facet}={value}", part) for value, part in frame.groupby(facet, sort=True)]
    title = f"{facet}={frame[facet].iloc[0]}" if facet and facet in frame.columns else ""
    return [(title, frame)]


def _numeric(frame, column: str) -> np.ndarray:
    import pandas as pd
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)


def _ok_rows(frame):
    if "status" in frame.columns:
        return frame[frame["status"].fillna("ok") == "ok"]
    return frame


def _check(frame, **columns) -> None:
    for option, column in columns.items():
        if column is not None:
            check_column(frame, column, f"--{option}")
    if frame.empty:
        raise DataError("no result rows to plot")


MARKERS = "os^Dv<>PXph*"


def _scatter_with_front(ax, part, x: str, y: str, hue: str, line_between: bool) -> None:
    import matplotlib

    colors = matplotlib.colormaps["tab20"].colors
    for i, (name, group) in enumerate(part.groupby(hue, sort=True)):
        gx, gy = _numeric(group, x), _numeric(group, y)
        order = np.argsort(gx)
        # colour and marker both cycle, so that 20+ series stay distinguishable
        ax.plot(gx[order], gy[order], linestyle="-" if line_between else "none",
                marker=MARKERS[i % len(MARKERS)], color=colors[(2 * i) % 20 + (i // 10) % 2],
                label=str(name), alpha=0.8, markersize=5)
    hx, hy = _higher_better(x), _higher_better(y)
    if hx is not None and hy is not None:
        px, py = _numeric(part, x), _numeric(part, y)
        front = pareto_front(px, py, hx, hy)
        if len(front):
            ax.step(px[front], py[front], where="post", color="black", linewidth=1.2,
                    linestyle="--", label="Pareto front", zorder=0)


def pareto(frame, x: str | None = None, y: str = "qps", hue: str = "index",
           facet: str = "dataset"):
    """Recall (x) vs QPS (y, log), one series per index family, Pareto front; a panel per dataset."""
    frame = _ok_rows(frame)
    x = x or recall_column(frame)
    _check(frame, x=x, y=y, hue=hue, facet=facet)
    panels = _panels(frame, facet)
    fig, axes = _new_figure(len(panels))
    for ax, (title, part) in zip(axes, panels):
        _scatter_with_front(ax, part, x, y, hue, line_between=True)
        if y in ("qps", "index_bytes") or y.endswith("_ms"):
            ax.set_yscale("log")
        ax.set(xlabel=_label(x), ylabel=_label(y), title=title)
        ax.grid(True, alpha=0.3)
        _better_note(ax, x, y)
        ax.legend(fontsize=8, loc="lower left")
    return fig


def tradeoff(frame, x: str = "bytes_per_vector", y: str | None = None, hue: str = "pipeline",
             budgets: list[float] | None = None, facet: str = "dataset"):
    """Bytes per vector (x, log) vs recall or nDCG (y), one marker per pipeline, Pareto front;
    a vertical line per budget with the best configuration under it annotated."""
    frame = _ok_rows(frame)
    y = y or ("ndcg@10" if "ndcg@10" in frame.columns and frame["ndcg@10"].notna().any()
              else recall_column(frame))
    _check(frame, x=x, y=y, hue=hue, facet=facet)
    panels = _panels(frame, facet)
    fig, axes = _new_figure(len(panels))
    hy = _higher_better(y)
    for ax, (title, part) in zip(axes, panels):
        _scatter_with_front(ax, part, x, y, hue, line_between=False)
        px, py = _numeric(part, x), _numeric(part, y)
        if np.nanmin(px) > 0:
            ax.set_xscale("log")
        for budget in budgets or []:
            ax.axvline(budget, color="tab:red", linewidth=1, alpha=0.6)
            inside = np.flatnonzero((px <= budget) & ~np.isnan(py))
            if len(inside) == 0:
                continue
            best = inside[np.argmax(py[inside] if hy is not False else -py[inside])]
            row = part.iloc[best]
            ax.annotate(f"≤{budget:g}: {row[hue]} {y}={py[best]:.3f}", (px[best], py[best]),
                        xytext=(5, -14), textcoords="offset points", fontsize=7,
                        color="tab:red", arrowprops={"arrowstyle": "-", "color": "tab:red"})
        ax.set(xlabel=_label(x), ylabel=_label(y), title=title)
        ax.grid(True, alpha=0.3)
        _better_note(ax, x, y)
        ax.legend(fontsize=7, loc="best")
    return fig


def ordering(frame, y: str | None = None, hue: str = "index", x: str = "ordering",
             facet: str = "dataset"):
    """Mean of ``y`` by ordering with 95% confidence intervals across repeats.

    Within one repeat, rows of other settings (search sweep, pipelines) are averaged first, so
    each repeat contributes one value per (facet, hue, ordering) and the interval is over builds.
    """
    frame = _ok_rows(frame)
    y = y or recall_column(frame)
    _check(frame, y=y, hue=hue, x=x, facet=facet)
    panels = _panels(frame, facet)
    fig, axes = _new_figure(len(panels))
    for ax, (title, part) in zip(axes, panels):
        part = part.assign(_y=_numeric(part, y))
        repeat = "repeat" if "repeat" in part.columns else None
        per_build = part.groupby([hue, x] + ([repeat] if repeat else []), sort=True)["_y"].mean()
        categories = sorted(part[x].astype(str).unique())
        groups = sorted(part[hue].astype(str).unique())
        width = 0.8 / max(len(groups), 1)
        levels = [per_build.index.get_level_values(i).astype(str) for i in (0, 1)]
        for j, group in enumerate(groups):
            builds = [per_build[(levels[0] == group) & (levels[1] == category)].to_numpy()
                      for category in categories]
            means, lows, highs = [], [], []
            for values in builds:
                mean, low, high = mean_ci95(values) if len(values) else (np.nan,) * 3
                means.append(mean), lows.append(mean - low), highs.append(high - mean)
            positions = np.arange(len(categories)) + (j - (len(groups) - 1) / 2) * width
            bars = ax.errorbar(positions, means, yerr=[lows, highs], fmt="o", capsize=4,
                               label=group)
            # each build as a faint dot: an interval over 10 builds and a single build beside
            # it are not the same kind of thing, and the dots show both spreads
            for position, values in zip(positions, builds):
                ax.plot(np.full(len(values), position + width / 4), values, ".", alpha=0.4,
                        color=bars.lines[0].get_color(), markersize=4)
        ax.set_xticks(np.arange(len(categories)), categories, rotation=30, ha="right")
        ax.set(xlabel=x, ylabel=f"{_label(y)}, mean ± 95% CI", title=title)
        ax.grid(True, axis="y", alpha=0.3)
        _better_note(ax, x, y)
        ax.legend(fontsize=8)
    return fig


def lid(data, column: str = "lid", hue: str = "dataset", bins: int = 50):
    """Histogram of pointwise LID estimates, one per dataset.

    ``data`` is a DataFrame with columns ``dataset`` and ``lid`` (or ``hue``/``column``), or a
    mapping {dataset name: array of estimates}.
    """
    import pandas as pd

    if isinstance(data, dict):
        data = pd.concat([pd.DataFrame({hue: name, column: np.asarray(values, float).ravel()})
                          for name, values in data.items()], ignore_index=True)
    _check(data, x=column, hue=hue)
    fig, axes = _new_figure(1)
    ax = axes[0]
    values = _numeric(data, column)
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        raise DataError(f"column {column!r} has no finite LID values")
    edges = np.histogram_bin_edges(finite, bins=bins)
    for name, group in data.groupby(hue, sort=True):
        v = _numeric(group, column)
        v = v[np.isfinite(v)]
        # density, not counts: datasets of 9k and 46k points share one axis
        ax.hist(v, bins=edges, alpha=0.5, density=True,
                label=f"{name} (n {len(v):,}, median {np.median(v):.1f})")
    ax.set(xlabel="pointwise LID", ylabel="density", title="Local intrinsic dimension")
    ax.legend(fontsize=8)
    return fig


def plot(kind: str, frame, **options):
    """Dispatch by kind name; options are the function's keyword arguments (None = default)."""
    functions = {"pareto": pareto, "tradeoff": tradeoff, "ordering": ordering, "lid": lid}
    if kind not in functions:
        raise ConfigError(f"expected one of {', '.join(KINDS)}, got {kind!r}", "--kind")
    options = {key: value for key, value in options.items() if value is not None}
    return functions[kind](frame, **options)


def check_output(path: str | Path) -> Path:
    """``path`` as a Path if it names a PNG or SVG file (checked before any work is done)."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise ConfigError(f"expected a .png or .svg file name, got {str(path)!r}", "-o")
    return path


def save(fig, path: str | Path) -> Path:
    path = check_output(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
