"""The filters: axis through the CLI: a small filtered experiment run and collected, and every
bad input the issue lists (one line naming the file, YAML path and value; exit 2 where the YAML
alone decides; where the data decides, the same before any unit runs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cli_checks import one_line
from helpers import run_cli, write

HEAD = """
name: filtered
k: 5
timing: {min_seconds: 0.01, min_passes: 1, latency_queries: 5}
datasets:
  - synthetic: {n_base: 400, n_queries: 12, dim: 8, n_clusters: 4}
"""


def test_a_filtered_experiment_runs_and_collects(tmp_path, capsys):
    np.save(tmp_path / "labels.npy", np.arange(400) % 4)
    (tmp_path / "query_labels.txt").write_text("\n".join(str(i % 4) for i in range(12)))
    path = write(tmp_path, HEAD + """
filters:
  - none
  - {selectivity: 0.05, correlation: [random, negative]}
  - {labels: labels.npy, query_labels: query_labels.txt}
indexes:
  - flat: {}
  - hnswlib: {build: {M: 8}, search: {ef: 20, filter_mode: [native, post], oversample: 1}}
""")
    code, out, _ = run_cli(capsys, "validate", path)
    assert code == 0 and "2 build units, 11 result rows" in out
    code, _, err = run_cli(capsys, "run", path, "--results", tmp_path / "res", "--quiet")
    assert code == 0, err
    frame = pd.read_csv(tmp_path / "res" / "results.csv")
    assert len(frame) == 11 and (frame["status"] == "ok").all()
    assert set(frame["filter"]) == {"none", "random@0.05", "negative@0.05",
                                    "labels(labels.npy)"}
    flat = frame[frame["index"] == "flat"].set_index("filter")
    # exact search under any filter: every true filtered neighbour, nothing that fails it
    assert (flat["recall@5"] == 1).all() and (flat["violations@5"] == 0).all()
    assert (flat["short@5"] == 0).all() and flat.loc["none", "selectivity"] == 1
    assert flat.loc["negative@0.05", "selectivity"] == pytest.approx(20 / 400)
    assert flat.loc["labels(labels.npy)", "selectivity"] == pytest.approx(0.25)
    assert flat.loc["negative@0.05", "filter.correlation"] == "negative"
    post = frame[(frame["index"] == "hnswlib") & (frame["search.filter_mode"] == "post")]
    # post-filtering k results of a 5% filter cannot fill them: short and low recall, counted
    sparse = post.set_index("filter").loc["negative@0.05"]
    assert sparse["short@5"] == 1 and sparse["recall@5"] == 0
    assert frame["filter_truth_s"].notna().sum() == 9  # the filtered rows


@pytest.mark.parametrize("entry, where, shown", [
    ("{selectivity: 0, correlation: random}", "filters[0].selectivity", "0"),
    ("{selectivity: 1.5, correlation: random}", "filters[0].selectivity", "1.5"),
    ("{selectivity: [0.1, -1], correlation: random}", "filters[0].selectivity", "-1"),
    ("{selectivity: 0.1, correlation: sideways}", "filters[0].correlation", "sideways"),
    ("{selectivity: 0.1}", "filters[0].correlation", "missing"),
    ("{labels: nope.npy, query_labels: q.npy}", "filters[0].labels", "nope.npy"),
    ("{range: {column: c.npy, low: 3, high: 1}}", "filters[0].range.high", "low 3.0 > high 1.0"),
    ("sometimes", "filters[0]", "sometimes"),
])
def test_bad_filter_entries_are_one_line(tmp_path, capsys, entry, where, shown):
    np.save(tmp_path / "c.npy", np.arange(400))
    path = write(tmp_path, HEAD + f"filters:\n  - {entry}\nindexes:\n  - flat: {{}}\n")
    one_line(capsys, ["validate", path], path.name, where, shown)


def test_a_filter_on_an_index_without_that_mode_is_refused(tmp_path, capsys):
    path = write(tmp_path, HEAD + """
filters: [{selectivity: 0.1, correlation: random}]
indexes:
  - faiss_binary_flat: {}
""")
    one_line(capsys, ["validate", path], path.name, "indexes[0].faiss_binary_flat.search.filter_mode",
             "no native filter", "filter_mode: post")
    # with post-filtering the same index is fine
    path = write(tmp_path, HEAD + """
filters: [{selectivity: 0.1, correlation: random}]
indexes:
  - faiss_binary_flat: {search: {filter_mode: post, oversample: [1, 4]}}
""")
    code, out, _ = run_cli(capsys, "validate", path)
    assert code == 0, out


def test_oversample_without_post_is_refused(tmp_path, capsys):
    path = write(tmp_path, HEAD + """
filters: [{selectivity: 0.1, correlation: random}]
indexes:
  - flat: {search: {oversample: 4}}
""")
    one_line(capsys, ["validate", path], "indexes[0].flat.search.oversample", "filter_mode: post")


@pytest.mark.parametrize("labels, queries, where, shown", [
    (np.arange(399) % 4, np.arange(12) % 4, "filters[0].labels", "399 values"),
    (np.arange(400) % 4, np.arange(12) % 5, "filters[0].query_labels", "label 4, which no base"),
])
def test_labels_that_do_not_fit_the_data_stop_the_run_in_one_line(tmp_path, capsys, labels,
                                                                  queries, where, shown):
    np.save(tmp_path / "labels.npy", labels)
    np.save(tmp_path / "queries.npy", queries)
    path = write(tmp_path, HEAD + """
filters: [{labels: labels.npy, query_labels: queries.npy}]
indexes:
  - flat: {}
""")
    # checked against the data before any unit runs: exit 2, one line, nothing recorded
    one_line(capsys, ["run", path, "--results", tmp_path / "res", "--quiet"], where, shown,
             path.name)
    assert not list((tmp_path / "res").glob("runs/*.json"))
