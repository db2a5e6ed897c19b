"""A self-contained report of a results folder: ``report.html`` (plots embedded, sortable table)
and ``report.md`` (plots written beside it as PNG files)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from vecbench.errors import DataError

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
body { font-family: sans-serif; margin: 2em; color: #222; }
table.results { border-collapse: collapse; font-size: 12px; }
table.results th { cursor: pointer; background: #eee; position: sticky; top: 0; }
table.results td, table.results th { border: 1px solid #ccc; padding: 2px 6px; }
img.plot { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
.warning { color: #a40; }
"""


def _figures(frame, lid_frame=None) -> list[tuple[str, object]]:
    """The plots that the table supports, by title."""
    from vecbench import plots

    figures = []
    if "qps" in frame.columns:
        figures.append(("Recall vs QPS (Pareto)", plots.pareto(frame)))
    if "bytes_per_vector" in frame.columns:
        figures.append(("Storage vs quality", plots.tradeoff(frame)))
    if "ordering" in frame.columns and frame["ordering"].nunique() > 1:
        figures.append(("Recall by insertion ordering", plots.ordering(frame)))
    if lid_frame is not None:
        figures.append(("Local intrinsic dimension", plots.lid(lid_frame)))
    return figures


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _run_records(results: Path) -> list[dict]:
    from vecbench import records

    return [record for _, record, _ in records.iter_records(results) if record is not None]


def _experiment_yaml(results: Path) -> str | None:
    for name in EXPERIMENT_FILES:
        path = results / name
        if path.is_file():
            return path.read_text()
    return None


def _lid_table(results: Path):
    from vecbench.compare import load_table

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
    from vecbench import results as results_module

    results = Path(results)
    out = Path(out_dir) if out_dir else results
    frame = results_module.table(results)
    if frame.empty:
        raise DataError(f"{results}: the run files hold no result rows")
    records = _run_records(results)
    name = str(frame["experiment"].iloc[0]) if "experiment" in frame.columns else results.name
    environment = next((r.get("environment") for r in records if r.get("environment")), {})
    warnings = list(dict.fromkeys(w for r in records for w in r.get("warnings", [])))
    from vecbench.compare import hosts_note
    if (note := hosts_note(frame)) is not None:
        warnings.append(note)
    experiment = _experiment_yaml(results)
    if lid_frame is None:  # pointwise LID saved beside the results (by whoever computed it)
        lid_frame = _lid_table(results)

    out.mkdir(parents=True, exist_ok=True)
    plot_dir = out / "report_plots"
    plot_dir.mkdir(exist_ok=True)
    images = []
    for i, (title, fig) in enumerate(_figures(frame, lid_frame)):
        data = _png(fig)
        file = plot_dir / f"plot{i}.png"
        file.write_bytes(data)
        images.append((title, data, file))

    summary = (f"{len(records)} build units, {len(frame)} result rows, "
               f"{frame['dataset'].nunique() if 'dataset' in frame else 0} datasets")
    missing_yaml = ("The experiment YAML was not saved in this results folder "
                    f"(looked for {', '.join(EXPERIMENT_FILES)}).")

    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
             f"<title>vecbench report: {html.escape(name)}</title><style>{STYLE}</style></head>"
             f"<body><h1>vecbench report: {html.escape(name)}</h1><p>{summary}</p>"]
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
    html_path.write_text("\n".join(parts))

    md = [f"# vecbench report: {name}", "", summary, "", "## Plots", ""]
    md += [f"![{title}]({file.relative_to(out).as_posix()})\n" for title, _, file in images]
    md += ["## Results", "", _md_table(frame), "", "## Warnings", ""]
    md += [f"- {w}" for w in warnings] or ["None."]
    md += ["", "## Experiment", ""]
    md += ["```yaml", experiment.rstrip(), "```"] if experiment else [missing_yaml]
    md += ["", "## Environment", "", "```json", json.dumps(environment, indent=2, default=str),
           "```", ""]
    md_path = out / "report.md"
    md_path.write_text("\n".join(md))
    return html_path, md_path
