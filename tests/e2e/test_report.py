"""The HTML/Markdown report, checked in a real headless browser where one is installed."""

import json
import shutil
import subprocess

import pytest

from vecbench.present.report import build_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    from vecbench.run.experiment import build_experiment
    from vecbench.run.runner import run_experiment

    folder = tmp_path_factory.mktemp("results")
    experiment = build_experiment({
        "name": "tiny-report", "k": 10, "datasets": [{"digits": {"n_queries": 60}}],
        "orderings": ["original", "random"],
        "indexes": [{"hnswlib": {"build": {"M": 8, "ef_construction": 40},
                                 "search": {"ef": [10, 40]}}}]})
    run_experiment(experiment, folder, threads=1, log=lambda line: None)
    path = next((folder / "runs").glob("*.json"))
    from vecbench.run import records
    record = records.read_record(path)
    record.warnings.append("a <warning> to show")
    records.write_record(folder, record)   # re-signed: a hand edit alone is refused
    return folder


def test_report_files_hold_plots_table_environment_and_warnings(results, tmp_path):
    html_path, md_path = build_report(results, tmp_path)
    html = html_path.read_text()
    assert html.count("src='data:image/png;base64,") == 3   # pareto, tradeoff, ordering
    results_table = html[html.index('<table class="results"'):]
    assert results_table[:results_table.index("</table>")].count("<tr>") == 1 + 4
    assert "a &lt;warning&gt; to show" in html             # escaped
    assert "was not saved" in html and "cpu" in html.lower()
    md = md_path.read_text()
    assert md.count("![") == 3 and "| dataset |" in md
    for line in md.splitlines():
        if line.startswith("!["):
            assert (tmp_path / line.split("](")[1].rstrip(")")).is_file()


def test_report_includes_saved_experiment_yaml(results, tmp_path):
    folder = tmp_path / "r"
    shutil.copytree(results, folder)
    (folder / "experiment.yaml").write_text("name: tiny-report\nk: 10  # <the yaml>\n")
    html_path, md_path = build_report(folder)
    assert "k: 10  # &lt;the yaml&gt;" in html_path.read_text()
    assert "```yaml\nname: tiny-report" in md_path.read_text()


PROBE = """<script>window.addEventListener('load', function () {
  var images = Array.from(document.images).map(function (i) {
    return i.complete && i.naturalWidth > 0; });
  var table = document.querySelector('table.results');
  var heads = Array.from(table.tHead.rows[0].cells).map(function (c) { return c.textContent; });
  var col = heads.indexOf('recall@10');
  function column() { return Array.from(table.tBodies[0].rows).map(function (r) {
    return parseFloat(r.cells[col].textContent); }); }
  table.tHead.rows[0].cells[col].click();
  var values = column();
  table.tHead.rows[0].cells[col].click();
  var descending = column();
  var out = document.createElement('pre'); out.id = 'probe';
  out.textContent = JSON.stringify({images: images, rows: values.length, sorted: values,
                                    descending: descending});
  document.body.appendChild(out);
});</script></body>"""


def find_browser():
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def test_report_renders_in_headless_browser(results, tmp_path):
    browser = find_browser()
    if browser is None:
        pytest.skip("no headless browser found (install Debian's chromium: "
                    "apt-get install -y chromium)")
    html_path, _ = build_report(results, tmp_path)
    probe = tmp_path / "probe.html"
    probe.write_text(html_path.read_text().replace("</body>", PROBE))
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000",
         "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    start = done.stdout.index('<pre id="probe">') + len('<pre id="probe">')
    found = json.loads(done.stdout[start:done.stdout.index("</pre>", start)])
    assert found["images"] == [True, True, True]           # every plot decoded and rendered
    assert found["rows"] == 4
    # a click sorts the column ascending, a second click descending
    assert found["sorted"] == sorted(found["sorted"])
    assert found["descending"] == sorted(found["sorted"], reverse=True)
    assert found["sorted"] != found["descending"]


def test_report_opens_with_a_summary_before_the_plots(results, tmp_path):
    from vecbench.evaluate.compare import load_table

    html_path, md_path = build_report(results, tmp_path)
    html, md = html_path.read_text(), md_path.read_text()
    assert html.index("<h2>Summary</h2>") < html.index("<h2>Plots</h2>")
    assert md.index("## Summary") < md.index("## Plots") < md.index("## Results")
    frame = load_table(results)
    # computed here independently of vecbench.evaluate.summary: repeats/orderings averaged per setting
    per_setting = frame.groupby(["index", "search.ef", "ordering"])[
        ["recall@10", "qps", "resident_bytes_per_vector"]].mean().reset_index()
    best = per_setting.sort_values(["recall@10", "qps"], ascending=False).iloc[0]
    # budgets are resident bytes (codes + links + parameters), and the report says so
    assert "| budget (resident bytes/vector) |" in md
    assert "Bytes are resident_bytes_per_vector" in md and "resident_bytes_per_vector" in html
    assert best["resident_bytes_per_vector"] > frame["bytes_per_vector"].max()  # HNSW links
    budget_row = (f"| ≤ {best['resident_bytes_per_vector']:g} | hnswlib ef={int(best['search.ef'])} "
                  f"ordering={best['ordering']} | {best['recall@10']:.3f} | {best['qps']:,.0f} |")
    assert budget_row in md
    for target in (0.8, 0.9, 0.95, 0.99):
        reach = per_setting[per_setting["recall@10"] >= target]
        line = next(line for line in md.splitlines() if line.startswith(f"| ≥ {target:g} |"))
        if len(reach):
            fastest = reach.sort_values("qps", ascending=False).iloc[0]
            assert f"| {fastest['qps']:,.0f} |" in line
        else:
            assert "none reaches it" in line
    assert "<table class='summary'>" in html


def test_summary_tables_pick_pareto_budget_and_target_configurations():
    import pandas as pd

    from vecbench.evaluate.summary import summarize

    rows = []
    for pipeline, nbytes, penalty in (("float32", 1536.0, 0.0), ("pca|float8", 192.0, 0.05),
                                      ("binary", 48.0, 0.3)):
        for ef, recall, qps in ((16, 0.85, 9000.0), (64, 0.95, 4000.0), (256, 0.99, 1000.0)):
            for repeat in (0, 1):  # repeats are averaged
                rows.append({"dataset": "d", "index": "hnswlib", "build.M": 16,
                             "pipeline": pipeline, "search.ef": ef, "repeat": repeat,
                             "recall@10": recall - penalty + 0.002 * repeat,
                             "qps": qps * (1 + nbytes / 1e4), "bytes_per_vector": nbytes,
                             "status": "ok"})
    rows.append({**rows[0], "status": "error", "recall@10": 1.0, "qps": 1e9})  # ignored
    found = summarize(pd.DataFrame(rows), "recall@10")["d"]
    assert [r["configuration"] for r in found["pareto"]][:3] == [
        "hnswlib float32 ef=256", "hnswlib float32 ef=64", "hnswlib float32 ef=16"]
    budgets = {r["budget"]: (r["configuration"][8:], round(r["recall"], 3))
               for r in found["budgets"]}
    assert budgets == {48.0: ("binary ef=256", 0.691), 192.0: ("pca|float8 ef=256", 0.941),
                       1536.0: ("float32 ef=256", 0.991)}
    targets = {r["target"]: r["configuration"][8:] for r in found["targets"]}
    assert targets == {0.8: "float32 ef=16", 0.9: "float32 ef=64", 0.95: "float32 ef=64",
                       0.99: "float32 ef=256"}
