"""Trade-off plots: a DataFrame in, a matplotlib Figure out.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas, never through pyplot, so
no global figure state leaks between calls (and no display is needed). Directions ("better")
come from :data:`vecbench.evaluate.metrics.METRICS`.

What keeps them readable past the quickstart:

* a line joins the points of one *configuration family* only: one index with one set of build
  parameters over one pipeline (and one ordering and repeat: one build), the search sweep along
  the line; colour follows ``hue``, marker and dash tell the families of one colour apart;
* labels are placed by :func:`vecbench.present.plot_labels.place_labels`, which never overprints;
* a facet without a single plottable point gets no panel; legends sit below the panels, once,
  in as many columns as fit the figure's width as measured (long labels wrap), so no legend
  is cut off at the figure's edges;
* the trade-off plot's x axis is ``resident_bytes_per_vector`` (everything kept in memory)
  where the table has it, and its colours are index family and quantizer together
  (``index_quantizer``: ``faiss_pq``, ``flat + float8``), so compressing indexes over float32
  input are not all one "float32" colour;
* panels wrap at two columns of 4.4 inches (1056 pixels at 120 dpi), so a figure shown at a
  README's width (about 880 pixels) keeps its 9-point labels at about 7.5 points.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from vecbench.core import atomic
from vecbench.core.errors import ConfigError, DataError
from vecbench.evaluate.frontier import (config_label, family_columns, natural_key, pareto_front,
                               value_text, varying)
from vecbench.evaluate.metrics import mean_ci95, metric_info
from vecbench.evaluate.results import CODES, RESIDENT, memory_column, memory_label
from vecbench.present.figure import check, figure_legend, new_figure, numeric
from vecbench.present.plot_lid import lid_figure, lid_table as read_lid_table
from vecbench.present.plot_labels import place_labels
from vecbench.present.plot_steps import steps

KINDS = ("pareto", "tradeoff", "ordering", "lid", "steps")
#: Output formats, chosen by the -o file's suffix.
FORMATS = (".png", ".svg", ".pdf")
LABEL_WIDTH = 36  # characters per line of a point label


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


def _label(column: str) -> str:
    if column in (RESIDENT, CODES):  # say what the bytes count, in words
        return memory_label(column)
    info = metric_info(column)
    return f"{column} ({info.label})" if info else column


#: The trade-off plot's default colours: index family and quantizer together.
COMBINED_HUE = "index_quantizer"


def index_quantizer(frame):
    """Per row, the index family and what quantizes: ``faiss_pq`` (an index that compresses
    float32 itself), ``faiss_factory IVF64,RaBitQ``, ``flat + float8``, ``hnswlib + pca|int8``
    (a pipeline's codes)."""
    import pandas as pd

    index = frame["index"].map(value_text) if "index" in frame.columns else \
        pd.Series("", index=frame.index)
    if "build.factory" in frame.columns:
        factory = frame["build.factory"].map(value_text)
        index = index.where(factory == "", index + " " + factory)
    kind = frame["pipeline_kind"] if "pipeline_kind" in frame.columns else \
        frame.get("pipeline", pd.Series("float32", index=frame.index)).astype(str).str.replace(
            r"\([^)]*\)", "", regex=True)
    kind = kind.map(value_text)
    return index.where(kind.isin(["", "float32"]), index + " + " + kind)


def _with_hue(frame, hue: str):
    """``frame`` with the derived hue column when that is the one asked for."""
    if hue == COMBINED_HUE and hue not in frame.columns:
        return frame.assign(**{COMBINED_HUE: index_quantizer(frame)})
    return frame


def _higher_better(column: str) -> bool | None:
    info = metric_info(column)
    return None if info is None else info.higher_is_better


def _better_note(ax, x: str, y: str) -> None:
    """Which way is better, from the metrics' directions, as the panel's right-hand title."""
    arrows = []
    hx, hy = _higher_better(x), _higher_better(y)
    if hx is not None:
        arrows.append("→" if hx else "←")
    if hy is not None:
        arrows.append("↑" if hy else "↓")
    if arrows:
        ax.set_title("better " + " ".join(arrows), loc="right", fontsize=8, color="0.35")


def _panels(frame, facet: str | None, columns=()):
    """(title, rows) per facet value, leaving out facets with no row where every one of
    ``columns`` is a number (an empty panel says nothing)."""
    if facet and facet in frame.columns and frame[facet].nunique() > 1:
        panels = [(f"{facet}={value}", part) for value, part in frame.groupby(facet, sort=True)]
    else:
        title = f"{facet}={frame[facet].iloc[0]}" if facet and facet in frame.columns else ""
        panels = [(title, frame)]
    panels = [(title, part) for title, part in panels
              if np.isfinite(np.column_stack([numeric(part, c) for c in columns])).all(axis=1)
              .any()] if columns else panels
    if not panels:
        raise DataError(f"no result row has numbers in all of {', '.join(columns)}; nothing to "
                        "plot")
    return panels


def _ok_rows(frame):
    if "status" in frame.columns:
        return frame[frame["status"].fillna("ok") == "ok"]
    return frame


MARKERS = "os^Dv<>PXph*"
DASHES = ("-", "--", "-.", ":")


def _palette(n: int) -> list:
    import matplotlib
    colors = matplotlib.colormaps["tab10" if n <= 10 else "tab20"].colors
    return [colors[i % len(colors)] for i in range(n)]


def _series_label(row, hue: str, shown) -> str:
    colour_key = value_text(row[hue])
    return " ".join(t for t in (colour_key, config_label(row, shown)) if t) or colour_key


def _styles(frame, hue: str, line_between: bool) -> tuple[dict, list]:
    """({series label: line style}, family columns named in labels), over the whole figure's
    rows, so that a series looks the same in every panel and once in the shared legend.

    With ``line_between`` a series is a configuration family (a line joins its search sweep),
    coloured by ``hue``, marker and dash telling apart the families of one colour; else a
    series is a ``hue`` value."""
    hues = sorted(frame[hue].map(value_text).unique(), key=natural_key)
    colors = dict(zip(hues, _palette(len(hues))))
    if not line_between:
        return {name: {"color": colors[name], "marker": MARKERS[i % len(MARKERS)],
                       "linestyle": "none"} for i, name in enumerate(hues)}, []
    families = family_columns(frame)
    shown = varying(frame, [c for c in families if c != hue])
    styles: dict[str, dict] = {}
    per_hue: dict[str, int] = {}
    groups = frame.groupby(list(dict.fromkeys([hue, *families])), sort=True, dropna=False)
    for _, part in sorted(groups, key=lambda group: natural_key(group[1][hue].iloc[0])):
        row = part.iloc[0]
        label, colour_key = _series_label(row, hue, shown), value_text(row[hue])
        if label not in styles:
            i = per_hue[colour_key] = per_hue.get(colour_key, -1) + 1
            styles[label] = {"color": colors[colour_key], "marker": MARKERS[i % len(MARKERS)],
                             "linestyle": DASHES[(i // len(MARKERS)) % len(DASHES)]}
    return styles, shown


def _series(part, hue: str, line_between: bool, styles: dict, shown):
    """(label, style, rows) per series of one panel; with ``line_between`` one per family and
    build (ordering, repeat: a line is one build's sweep), the family labelled once."""
    if not line_between:
        names = part[hue].map(value_text)
        for name, style in styles.items():
            if (names == name).any():
                yield name, style, part[names == name]
        return
    builds = [c for c in ("ordering", "repeat") if c in part.columns]
    keys = list(dict.fromkeys([hue, *family_columns(part), *builds]))
    labelled = set()
    groups = part.groupby(keys, sort=True, dropna=False)
    for _, group in sorted(groups, key=lambda group: natural_key(group[1][hue].iloc[0])):
        label = _series_label(group.iloc[0], hue, shown)
        yield (label if label not in labelled else "_nolegend_"), styles[label], group
        labelled.add(label)


def _scatter_with_front(ax, part, x: str, y: str, hue: str, line_between: bool,
                        styles: tuple[dict, list]) -> None:
    for label, style, group in _series(part, hue, line_between, *styles):
        gx, gy = numeric(group, x), numeric(group, y)
        keep = np.isfinite(gx) & np.isfinite(gy)
        order = np.argsort(gx[keep], kind="stable")
        ax.plot(gx[keep][order], gy[keep][order], label=label, alpha=0.85, markersize=4.5,
                linewidth=1.2, **style)
    hx, hy = _higher_better(x), _higher_better(y)
    if hx is not None and hy is not None:
        px, py = numeric(part, x), numeric(part, y)
        front = pareto_front(px, py, hx, hy)
        if len(front):
            ax.step(px[front], py[front], where="post", color="black", linewidth=1.0,
                    linestyle="--", label="Pareto front", zorder=0)


def _finish(ax, title: str, x: str, y: str, ylabel: str | None = None) -> None:
    ax.set_xlabel(textwrap.fill(_label(x), 60), fontsize=9)  # a long label wraps, never
    ax.set_ylabel(textwrap.fill(ylabel or _label(y), 40), fontsize=9)  # runs off the panel
    ax.set_title(title, loc="left", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, alpha=0.3)
    _better_note(ax, x, y)


def pareto(frame, x: str | None = None, y: str = "qps", hue: str = "index",
           facet: str = "dataset"):
    """Recall (x) vs QPS (y, log): a line per configuration family (index, build parameters,
    pipeline) tracing its search sweep, coloured by ``hue``; the Pareto front dashed; a panel
    per dataset."""
    frame = _with_hue(_ok_rows(frame), hue)
    x = x or recall_column(frame)
    check(frame, x=x, y=y, hue=hue, facet=facet)
    panels = _panels(frame, facet, (x, y))
    fig, axes = new_figure(len(panels))
    styles = _styles(frame, hue, line_between=True)
    for ax, (title, part) in zip(axes, panels):
        _scatter_with_front(ax, part, x, y, hue, True, styles)
        if y in ("qps", "index_bytes") or y.endswith("_ms"):
            ax.set_yscale("log")
        _finish(ax, title, x, y)
    figure_legend(fig, axes)
    return fig


def _log_x(ax, base: int) -> None:
    """A log x axis labelled in plain numbers (64, 128, 256 bytes rather than 6x10^1)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log", base=base)
    ax.xaxis.set_major_locator(LogLocator(base=base))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _budget_notes(part, x: str, y: str, hue: str, budgets) -> list[tuple[float, float, str]]:
    """(x, y, text) of the best row under each budget; budgets sharing a best row share a note."""
    px, py = numeric(part, x), numeric(part, y)
    higher = _higher_better(y) is not False
    best: dict[int, list[float]] = {}
    for budget in sorted(budgets or []):
        inside = np.flatnonzero((px <= budget) & np.isfinite(py))
        if len(inside):
            pick = inside[np.argmax(py[inside] if higher else -py[inside])]
            best.setdefault(int(pick), []).append(budget)
    notes = []
    shown = varying(part, family_columns(part))  # the configuration, not just its colour
    for pick, under in best.items():
        row = part.iloc[pick]
        limits = ", ".join(f"≤{b:g}" for b in under)
        name = (config_label(row, shown) or value_text(row[hue])).replace("|", "| ").replace(
            ",", ", ")
        notes.append((px[pick], py[pick], f"{limits}: {y}={py[pick]:.3f}\n"
                      + textwrap.fill(name, LABEL_WIDTH, break_long_words=False)))
    return notes


def tradeoff(frame, x: str | None = None, y: str | None = None, hue: str = COMBINED_HUE,
             budgets: list[float] | None = None, facet: str = "dataset"):
    """Bytes per vector (x, log; by default resident bytes, everything kept in memory) vs
    recall or nDCG (y), one marker per index family and quantizer, Pareto front; a vertical
    line per budget and, placed where it overprints nothing, the best configuration under
    it."""
    frame = _with_hue(_ok_rows(frame), hue)
    x = x or memory_column(frame)
    y = y or ("ndcg@10" if "ndcg@10" in frame.columns and frame["ndcg@10"].notna().any()
              else recall_column(frame))
    check(frame, x=x, y=y, hue=hue, facet=facet)
    panels = _panels(frame, facet, (x, y))
    fig, axes = new_figure(len(panels))
    styles = _styles(frame, hue, line_between=False)
    for ax, (title, part) in zip(axes, panels):
        _scatter_with_front(ax, part, x, y, hue, False, styles)
        px = numeric(part, x)
        if np.nanmin(px) > 0:
            _log_x(ax, base=2 if "bytes" in x else 10)
        for budget in budgets or []:
            ax.axvline(budget, color="tab:red", linewidth=0.8, alpha=0.5)
        _finish(ax, title, x, y)
    figure_legend(fig, axes)
    for ax, (_, part) in zip(axes, panels):  # after the layout is final: measured placement
        points = np.column_stack([numeric(part, x), numeric(part, y)])
        place_labels(ax, _budget_notes(part, x, y, hue, budgets), avoid_points=points)
    return fig


def ordering(frame, y: str | None = None, hue: str = "index", x: str = "ordering",
             facet: str = "dataset"):
    """Mean of ``y`` by ordering with 95% confidence intervals across repeats.

    Within one repeat, rows of other settings (search sweep, pipelines) are averaged first, so
    each repeat contributes one value per (facet, hue, ordering) and the interval is over builds.
    """
    frame = _ok_rows(frame)
    y = y or recall_column(frame)
    check(frame, y=y, hue=hue, x=x, facet=facet)
    panels = _panels(frame, facet, (y,))
    fig, axes = new_figure(len(panels))
    for ax, (title, part) in zip(axes, panels):
        part = part.assign(_y=numeric(part, y))
        repeat = "repeat" if "repeat" in part.columns else None
        per_build = part.groupby([hue, x] + ([repeat] if repeat else []), sort=True)["_y"].mean()
        part = part.assign(**{x: part[x].map(value_text), hue: part[hue].map(value_text)})
        categories = sorted(part[x].unique(), key=natural_key)
        groups = sorted(part[hue].unique(), key=natural_key)
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
        _finish(ax, title, x, y, ylabel=f"{y}, mean ± 95% CI")
        ax.grid(False, axis="x")
    figure_legend(fig, axes)
    return fig


def lid_table(results: str | Path):
    """Pointwise LID of a results folder as a table (see :func:`vecbench.present.plot_lid.lid_table`)."""
    return read_lid_table(results)


def lid(data, column: str = "lid", hue: str = "dataset", bins: int = 50):
    """Distribution of pointwise LID per dataset (see :func:`vecbench.present.plot_lid.lid_figure`)."""
    return lid_figure(data, column, hue, bins)


def plot(kind: str, frame, **options):
    """Dispatch by kind name; options are the function's keyword arguments (None = default)."""
    functions = {"pareto": pareto, "tradeoff": tradeoff, "ordering": ordering, "lid": lid,
                 "steps": steps}
    if kind not in functions:
        raise ConfigError(f"expected one of {', '.join(KINDS)}, got {kind!r}", "--kind")
    options = {key: value for key, value in options.items() if value is not None}
    return functions[kind](frame, **options)


def check_output(path: str | Path) -> Path:
    """``path`` as a Path if it names a PNG, SVG or PDF file (checked before any work)."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ConfigError(f"expected a file name ending in {', '.join(FORMATS)}, got "
                          f"{str(path)!r}", "-o")
    return path


def save(fig, path: str | Path) -> Path:
    """Write ``fig`` in the format the suffix names (PNG at 120 dpi; SVG and PDF are vector)."""
    path = check_output(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_with(path, lambda handle: fig.savefig(handle, dpi=120,
                                                        format=path.suffix.lower()[1:]))
    return path
