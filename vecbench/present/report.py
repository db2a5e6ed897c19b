"""A self-contained report of a results folder: ``report.html`` (plots embedded, sortable table)
and ``report.md`` (plots written beside it as PNG files).

Both open with a summary per dataset (:mod:`vecbench.evaluate.summary`): the Pareto configurations, the
best configuration under each storage budget and the fastest at each recall target; then the
plots, the full table, warnings, the experiment and the environment."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from vecbench.core import atomic
from vecbench.core.errors import DataError
from vecbench.evaluate import results as results_module
from vecbench.evaluate.compare import hosts_note, load_table
from vecbench.evaluate.frontier import value_text
from vecbench.evaluate.results import memory_column
from vecbench.evaluate.summary import summarize
from vecbench.present import plots
from vecbench.present.plots import recall_column
from vecbench.run import records

#: Experiment files looked for in the results folder, first found wins.
EXPERIMENT_FILES = ("experiment.yaml", "experiment.yml")

# A few lines of inline JS so the report needs no network: click a header to sort by it.
SORT_JS = """
document.querySelectorAll('table.results th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var asc = th.dataset.order !== 'asc'; th.dataset.order = asc ? 'asc' : 'desc';
    var rows = Array.from(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].textContent, y = b.cells[col].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1200px; }
table.results, table.summary { border-collapse: collapse; font-size: 12px; }
table.summary { margin-bottom: 1em; }
table.summary td, table.summary th { border: 1px solid #ccc; padding: 2px 8px; }
table.summary th { background: #eee; text-align: left; }
table.summary td.num { text-align: right; font-variant-numeric: tabular-nums; }
p.none { color: #666; font-style: italic; }
h3 { margin: 1.2em 0 0.3em; } h4 { font-size: 14px; margin: 0.8em 0 0.3em; }
table.results th { cursor: pointer; background: #eee; position: sticky; top: 0; }
table.results td, table.results th { border: 1px solid #ccc; padding: 2px 6px; }
img.plot { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
.warning { color: #a40; }
"""


def _figures(frame, lid_frame=None) -> list[tuple[str, object]]:
    """The plots that the table supports, by title (a plot with nothing to show is left out)."""
    wanted = []
    if "qps" in frame.columns:
        wanted.append(("Recall vs QPS (Pareto)", lambda: plots.pareto(frame)))
    if "bytes_per_vector" in frame.columns:  # x: resident bytes where the table has them
        wanted.append(("Memory vs quality", lambda: plots.tradeoff(frame)))
    if "ordering" in frame.columns and frame["ordering"].nunique() > 1:
        wanted.append(("Recall by insertion ordering", lambda: plots.ordering(frame)))
    if lid_frame is not None:
        wanted.append(("Local intrinsic dimension", lambda: plots.lid(lid_frame)))
    figures = []
    for title, draw in wanted:
        try:
            figures.append((title, draw()))
        except DataError:  # e.g. no row with a QPS: no empty figure
            continue
    return figures


#: ``{bytes}`` in a header: which bytes the summary counts (see MEMORY_HEADERS).
SUMMARY_TABLES = (
    ("pareto", "Pareto configurations (recall vs QPS; vs bytes where QPS is missing)",
     (("configuration", "configuration"), ("recall", "recall"), ("qps", "QPS"),
      ("bytes", "{bytes}/vector"))),
    ("budgets", "Best recall under each memory budget",
     (("budget", "budget ({bytes}/vector)"), ("configuration", "configuration"),
      ("recall", "recall"), ("qps", "QPS"), ("bytes", "{bytes}/vector"))),
    ("targets", "Fastest configuration at each recall target",
     (("target", "recall target"), ("configuration", "configuration"), ("recall", "recall"),
      ("qps", "QPS"), ("bytes", "{bytes}/vector"))),
)
MEMORY_HEADERS = {"resident_bytes_per_vector": "resident bytes",
                  "bytes_per_vector": "code bytes"}
MEMORY_NOTES = {
    "resident_bytes_per_vector": "Bytes are resident_bytes_per_vector: what a configuration "
    "keeps in memory per vector (codes, graph links, copies kept for rescoring or held by the "
    "index, and per-dataset parameters such as codebooks, rotations and scales, amortized over "
    "the base vectors).",
    "bytes_per_vector": "Bytes are bytes_per_vector, the codes alone: this table was collected "
    "before resident_bytes_per_vector existed (links, rescoring copies and per-dataset "
    "parameters are not counted)."}


def _summary_cell(key: str, row: dict) -> str:
    value = row.get(key)
    if key == "configuration" and value is None:
        return f"none reaches it (best recall {row.get('recall', float('nan')):.3f})"
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if key in ("recall", "target"):
        return f"{value:.3f}" if key == "recall" else f"≥ {value:g}"
    if key == "qps":
        return f"{value:,.0f}"
    if key in ("bytes", "budget"):
        return f"≤ {value:g}" if key == "budget" else f"{value:g}"
    return value_text(value)


def _summary_sections(frame) -> list[tuple[str, list[tuple[str, list[str], list[list[str]]]]]]:
    """[(dataset, [(table title, headers, rows of cell texts)])] for the report's summary."""
    try:
        recall = recall_column(frame)
    except DataError:
        return []
    sections = []
    for dataset, found in summarize(frame, recall).items():
        tables = []
        memory = MEMORY_HEADERS[found["memory"]]
        for key, title, columns in SUMMARY_TABLES:
            rows = [[_summary_cell(c, row) for c, _ in columns] for row in found[key]]
            if key == "targets" and all(r.get("configuration") is None for r in found[key]):
                rows = []
            tables.append((f"{title} ({recall})" if key != "pareto" else title,
                           [h.format(bytes=memory) for _, h in columns], rows))
        sections.append((dataset, tables))
    return sections


def _summary_html(sections) -> str:
    if not sections:
        return "<p class='none'>No recall column: nothing to summarize.</p>"
    parts = []
    for dataset, tables in sections:
        parts.append(f"<h3>{html.escape(dataset)}</h3>")
        for title, headers, rows in tables:
            parts.append(f"<h4>{html.escape(title)}</h4>")
            if not rows:
                parts.append("<p class='none'>Not measured in these results.</p>")
                continue
            head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
            body = "".join(
                "<tr>" + "".join(
                    ("<td>" if h == "configuration" else "<td class='num'>")
                    + f"{html.escape(cell)}</td>" for h, cell in zip(headers, row)) + "</tr>"
                for row in rows)
            parts.append(f"<table class='summary'><thead><tr>{head}</tr></thead>"
                         f"<tbody>{body}</tbody></table>")
    return "\n".join(parts)


def _summary_md(sections) -> list[str]:
    if not sections:
        return ["No recall column: nothing to summarize.", ""]
    lines = []
    for dataset, tables in sections:
        lines += [f"### {dataset}", ""]
        for title, headers, rows in tables:
            lines += [f"**{title}**", ""]
            if not rows:
                lines += ["Not measured in these results.", ""]
                continue
            lines += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                      for row in rows]
            lines.append("")
    return lines


def contended_note(frame) -> str | None:
    """One line when rows were timed on a contended machine, with the figures measured."""
    if "contended" not in frame.columns:
        return None
    flagged = frame[frame["contended"].fillna(False).astype(str).isin(["True", "true", "1"])]
    if flagged.empty:
        return None
    figures = []
    for column, text in (("runnable_max", "runnable threads up to {:g}"),
                         ("load_1m", "load average up to {:g}"),
                         ("steal_share", "CPU steal up to {:.1%}")):
        if column in flagged.columns and flagged[column].notna().any():
            figures.append(text.format(float(flagged[column].max())))
    return (f"CONTENDED: {len(flagged)} of {len(frame)} rows were timed while more threads were "
            f"ready to run than the machine has cores, or beside other units (--jobs > 1)"
            f"{': ' + ', '.join(figures) if figures else ''}; their QPS and latencies "
            "include time spent waiting for a core")


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _run_records(results: Path) -> list:
    return [record for _, record, _ in records.iter_records(results) if record is not None]


def _experiment_yaml(results: Path) -> str | None:
    for name in EXPERIMENT_FILES:
        path = results / name
        if path.is_file():
            return path.read_text()
    return None


def _lid_table(results: Path):
    for name in ("lid.parquet", "lid.csv"):
        if (results / name).is_file():
            return load_table(results / name)
    return None


def _visible_columns(frame) -> list[str]:
    """Drop columns that are empty everywhere (e.g. build.nlist in an hnswlib-only table)."""
    return [c for c in frame.columns if not c.startswith("_") and frame[c].notna().any()
            and not (frame[c].astype(str) == "").all()]


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.4g}"
    return str(value)


def _html_table(frame) -> str:
    columns = _visible_columns(frame)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(_cell(row[c]))}</td>" for c in columns)
                     + "</tr>" for _, row in frame.iterrows())
    return (f'<table class="results" id="results"><thead><tr>{head}</tr></thead>'
            f"<tbody>\n{body}\n</tbody></table>")


def _md_table(frame) -> str:
    # hand-written: pandas' to_markdown needs the optional tabulate package
    columns = _visible_columns(frame)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_cell(row[c]).replace("|", "\\|") for c in columns)
                     + " |")
    return "\n".join(lines)


def build_report(results: str | Path, out_dir: str | Path | None = None,
                 lid_frame=None) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` (and ``report_plots/*.png``) for a results dir."""
    results = Path(results)
    out = Path(out_dir) if out_dir else results
    frame = results_module.table(results)
    if frame.empty:
        raise DataError(f"{results}: the run files hold no result rows")
    unit_records = _run_records(results)
    name = str(frame["experiment"].iloc[0]) if "experiment" in frame.columns else results.name
    environment = next((r.environment for r in unit_records if r.environment), {})
    warnings = list(dict.fromkeys(w for r in unit_records for w in r.warnings))
    if (note := hosts_note(frame)) is not None:
        warnings.append(note)
    if (note := contended_note(frame)) is not None:
        warnings.append(note)
    experiment = _experiment_yaml(results)
    if lid_frame is None:  # pointwise LID saved beside the results (by whoever computed it)
        lid_frame = _lid_table(results)

    out.mkdir(parents=True, exist_ok=True)
    plot_dir = out / "report_plots"
    if plot_dir.is_symlink():  # a folder name vecbench chose: a link there was planted
        raise DataError(f"{plot_dir}: a symbolic link; expected a folder (or nothing) where "
                        "the report writes its plots")
    plot_dir.mkdir(exist_ok=True)
    images = []
    for i, (title, fig) in enumerate(_figures(frame, lid_frame)):
        data = _png(fig)
        file = atomic.write_bytes(plot_dir / f"plot{i}.png", data)
        images.append((title, data, file))

    summary = (f"{len(unit_records)} build units, {len(frame)} result rows, "
               f"{frame['dataset'].nunique() if 'dataset' in frame else 0} datasets")
    missing_yaml = ("The experiment YAML was not saved in this results folder "
                    f"(looked for {', '.join(EXPERIMENT_FILES)}).")

    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
             f"<title>vecbench report: {html.escape(name)}</title><style>{STYLE}</style></head>"
             f"<body><h1>vecbench report: {html.escape(name)}</h1><p>{summary}</p>"]
    sections = _summary_sections(frame)
    memory_note = MEMORY_NOTES[memory_column(frame)]
    parts.append(f"<h2>Summary</h2><p>{html.escape(memory_note)}</p>" + _summary_html(sections))
    parts.append("<h2>Plots</h2>")
    for title, data, _ in images:
        encoded = base64.b64encode(data).decode()
        parts.append(f"<h3>{html.escape(title)}</h3>"
                     f"<img class='plot' alt='{html.escape(title)}' "
                     f"src='data:image/png;base64,{encoded}'>")
    parts.append("<h2>Results</h2><p>Click a column header to sort.</p>" + _html_table(frame))
    parts.append("<h2>Warnings</h2>")
    parts.append("<ul>" + "".join(f"<li class='warning'>{html.escape(w)}</li>" for w in warnings)
                 + "</ul>" if warnings else "<p>None.</p>")
    parts.append("<h2>Experiment</h2>")
    parts.append(f"<pre>{html.escape(experiment)}</pre>" if experiment
                 else f"<p>{missing_yaml}</p>")
    parts.append("<h2>Environment</h2>"
                 f"<pre>{html.escape(json.dumps(environment, indent=2, default=str))}</pre>")
    parts.append(f"<script>{SORT_JS}</script></body></html>")
    html_path = out / "report.html"
    atomic.write_text(html_path, "\n".join(parts))

    md = [f"# vecbench report: {name}", "", summary, "", "## Summary", "",
          memory_note, "", *_summary_md(sections), "## Plots", ""]
    md += [f"![{title}]({file.relative_to(out).as_posix()})\n" for title, _, file in images]
    md += ["## Results", "", _md_table(frame), "", "## Warnings", ""]
    md += [f"- {w}" for w in warnings] or ["None."]
    md += ["", "## Experiment", ""]
    md += ["```yaml", experiment.rstrip(), "```"] if experiment else [missing_yaml]
    md += ["", "## Environment", "", "```json", json.dumps(environment, indent=2, default=str),
           "```", ""]
    md_path = out / "report.md"
    atomic.write_text(md_path, "\n".join(md))
    return html_path, md_path
