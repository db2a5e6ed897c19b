"""Runbook parsing, generators and the checks ``vecbench validate`` runs on them (no data)."""

from __future__ import annotations

import pytest

from vecbench.core.errors import ConfigError
from vecbench.run import runbook as rb
from vecbench.run.experiment import build_experiment

from helpers import write

BIG_ANN = """\
tiny-set:
  max_pts: 10
  1:
    operation: "insert"
    start: 0
    end: 6
  2:
    operation: "search"
  3:
    operation: "replace"
    tags_start: 0
    tags_end: 2
    ids_start: 6
    ids_end: 8
  4:
    operation: "delete"
    start: 2
    end: 4
  5:
    operation: "search"
  gt_url: "none"
"""


def labels(steps) -> list[str]:
    return [step.label() for step in steps]


def test_big_ann_file_read_unchanged(tmp_path):
    write(tmp_path, BIG_ANN, "book.yaml")
    book = rb.parse("book.yaml", str(tmp_path))
    assert book.max_pts == 10
    assert labels(book.steps) == ["insert [0, 6)", "search",
                                  "replace tags [0, 2) with ids from 6", "delete [2, 4)",
                                  "search"]
    # the spec holds the steps, not the file's name: an edited file is a new unit
    assert book.canonical()["steps"][2] == {"operation": "replace", "tags_start": 0,
                                            "tags_end": 2, "ids_start": 6}
    assert book.needs() == {"insert", "delete"}  # the first insert builds: no insert needed


def test_file_with_several_datasets_needs_one_named(tmp_path):
    write(tmp_path, BIG_ANN + BIG_ANN.replace("tiny-set", "other-set"), "book.yaml")
    with pytest.raises(ConfigError, match="dataset: one of them"):
        rb.parse("book.yaml", str(tmp_path))
    book = rb.parse({"file": "book.yaml", "dataset": "other-set"}, str(tmp_path))
    assert len(book.steps) == 5
    assert book.label() == "book.yaml:other-set(5 steps)"


def test_max_pts_bounds_the_active_points_not_the_ids(tmp_path):
    # big-ann's max_pts is how many points are active at once: ids may go past it
    write(tmp_path, BIG_ANN.replace("max_pts: 10", "max_pts: 6"), "book.yaml")
    assert rb.parse("book.yaml", str(tmp_path)).max_pts == 6  # ids up to 7, 6 active at most
    write(tmp_path, BIG_ANN.replace("max_pts: 10", "max_pts: 5"), "small.yaml")
    with pytest.raises(ConfigError, match=r"step 1\): step insert \[0, 6\): 6 points active; "
                                          r"expected at most max_pts 5"):
        rb.parse("small.yaml", str(tmp_path))


def test_replace_ids_end_must_agree(tmp_path):
    write(tmp_path, BIG_ANN.replace("ids_end: 8", "ids_end: 9"), "book.yaml")
    with pytest.raises(ConfigError, match=r"step 3\): ids_end 9 does not match its 2 tags; "
                                          r"expected ids_start \+ tags_end - tags_start = 8"):
        rb.parse("book.yaml", str(tmp_path))


def test_sliding_window_steps():
    book = rb.parse({"sliding_window": {"window": 4, "step": 2, "n": 8}})
    # 4 in; then each round 2 in, the 2 oldest out, a search
    assert labels(book.expand(8)) == [
        "insert [0, 4)", "search", "insert [4, 6)", "delete [0, 2)", "search",
        "insert [6, 8)", "delete [2, 4)", "search"]


def test_expiration_lifetimes():
    book = rb.parse({"expiration": {"batch": 4, "lifetimes": [1, 2], "n": 12}})
    # each batch of 4: its first half lives 1 step, its second half 2 steps
    assert labels(book.expand(12)) == [
        "insert [0, 4)", "search",
        "insert [4, 8)", "delete [0, 2)", "search",
        "insert [8, 12)", "delete [2, 4)", "delete [4, 6)", "search"]


def test_clustered_with_deletes_and_rebuilds():
    book = rb.parse({"clustered": {"n_clusters": 3, "delete_after": 1, "rebuild_every": 2}})
    assert labels(book.expand(10, [3, 3, 4])) == [
        "insert [0, 3)", "search", "insert [3, 6)", "delete [0, 3)", "search",
        "insert [6, 10)", "delete [3, 6)", "rebuild", "search"]


@pytest.mark.parametrize("steps, message", [
    ([{"operation": "insert", "start": 0, "end": 3}, {"operation": "delete", "start": 2,
                                                      "end": 5}, {"operation": "search"}],
     "runbook[1]: step delete [2, 5): deletes id 3, which is not present"),
    ([{"operation": "insert", "start": 0, "end": 3}, {"operation": "insert", "start": 2,
                                                      "end": 4}, {"operation": "search"}],
     "runbook[1]: step insert [2, 4): inserts id 2, which is already present"),
    ([{"operation": "search"}], "runbook[0]: step search: the index is empty here"),
    ([{"operation": "insert", "start": 0, "end": 3}], "expected at least one search step"),
    ([{"operation": "insert", "start": 0}], "runbook[0]: a insert step needs start, end"),
    ([{"operation": "upsert", "start": 0, "end": 3}], "runbook[0]: expected operation one of"),
    ([{"operation": "search", "k": 3}], "runbook[0]: unknown parameter of a search step"),
    ([{"operation": "insert", "start": 0, "end": 3},
      {"operation": "replace", "tags_start": 2, "tags_end": 5, "ids_start": 3},
      {"operation": "search"}], "runbook[1]: step replace tags [2, 5) with ids from 3: "
                                "replaces tag 3, which is not present"),
])
def test_bad_steps_name_the_step(steps, message):
    with pytest.raises(ConfigError) as caught:
        rb.parse(steps)
    assert message in str(caught.value)


def test_inserting_past_the_data_is_refused_at_validate(tmp_path):
    experiment = {"datasets": [{"synthetic": {"n_base": 50, "n_queries": 5, "dim": 4, "intrinsic_dim": 2}}],
                  "indexes": [{"hnswlib": {}}],
                  "runbook": [{"operation": "insert", "start": 0, "end": 40},
                              {"operation": "insert", "start": 40, "end": 60},
                              {"operation": "search"}]}
    with pytest.raises(ConfigError) as caught:
        build_experiment(experiment)
    assert "runbook[1]: step insert [40, 60): inserts past the data: ids must be < 50" \
        in str(caught.value)


def test_index_without_deletes_is_refused_unless_rebuilt():
    experiment = {"datasets": [{"synthetic": {"n_base": 50, "n_queries": 5, "dim": 4, "intrinsic_dim": 2}}],
                  "indexes": [{"faiss_hnsw": {}}],
                  "runbook": {"sliding_window": {"window": 20, "step": 10}}}
    with pytest.raises(ConfigError) as caught:
        build_experiment(experiment)
    assert str(caught.value).startswith("indexes[0].faiss_hnsw: faiss_hnsw cannot delete or "
                                        "insert natively (its capabilities: filter)")
    experiment["runbook"]["apply"] = "rebuild"
    units = build_experiment(experiment).units
    assert units[0].runbook.label() == "sliding_window(step=10,window=20) rebuild"
    assert units[0].spec()["runbook"]["apply"] == "rebuild"


def test_a_case_carries_its_own_runbook():
    experiment = {"datasets": [{"synthetic": {"n_base": 50, "n_queries": 5, "dim": 4, "intrinsic_dim": 2}}],
                  "cases": [{"index": {"hnswlib": {}}},
                            {"index": {"hnswlib": {}},
                             "runbook": {"sliding_window": {"window": 20, "step": 10}}}]}
    plain, streamed = build_experiment(experiment).units
    assert plain.runbook is None and "runbook" not in plain.spec()
    assert streamed.runbook.label() == "sliding_window(step=10,window=20)"
    assert plain.spec_digest() != streamed.spec_digest()


def test_validate_counts_a_row_per_search_step_and_setting():
    experiment = {"datasets": [{"synthetic": {"n_base": 50, "n_queries": 5, "dim": 4,
                                              "intrinsic_dim": 2}}],
                  "indexes": [{"hnswlib": {"search": {"ef": [10, 20]}}}],
                  "runbook": {"sliding_window": {"window": 20, "step": 10, "n": 50}}}
    # searches after the first 20 points, then after rounds at 20, 30 and 40: 4 steps x 2 ef
    assert build_experiment(experiment).n_rows == 8
