"""Recall by query-LID quartile: the split, the query LID it ranks by, and the result columns."""

import json
import textwrap

import numpy as np
import pandas as pd
import pytest

from vecbench.compute import lid

from vecbench.compute import recall as kernels
from vecbench.evaluate import metrics

from vecbench.run import records, runner
from vecbench.evaluate import results as vbresults
from vecbench.run.experiment import load_experiment
from vecbench.compute.groundtruth import exact_knn

TINY = """
name: quartiles
k: 10
datasets:
  - digits: {n_queries: 50}
  - synthetic: {n_base: 800, n_queries: 30, dim: 16, intrinsic_dim: 4, metric: ip}
pipelines:
  - []
  - [pca: {n_components: 8}]
indexes:
  - flat: {}
  - hnswlib: {build: {M: 4, ef_construction: 16}, search: {ef: [1, 40]}}
"""
QUARTILES = [f"recall@10_q{i}" for i in range(1, 5)]


# --- the split -------------------------------------------------------------------------------

def test_quartile_groups_rank_ties_and_infinities():
    values = np.array([5.0, 1.0, np.inf, 3.0, 3.0, 3.0, 3.0, 0.0, 2.0, 4.0])
    groups = kernels.quartile_groups(values)
    assert [len(g) for g in groups] == [3, 3, 2, 2]
    assert sorted(np.concatenate(groups).tolist()) == list(range(10))  # each query once
    ranked = [values[g] for g in groups]
    for lower, upper in zip(ranked, ranked[1:]):
        assert lower.max() <= upper.min()                             # q1 lowest LID
    assert 2 in groups[3] and 7 in groups[0]                          # inf hardest, 0 easiest
    same = kernels.quartile_groups(np.ones(9))                        # all tied: still split
    assert [len(g) for g in same] == [3, 2, 2, 2]


def test_recall_by_quartile_is_the_group_mean_and_nan_when_empty():
    recall = np.array([1.0, 0.5, 0.0, 0.25, 0.75, 1.0, 0.5, 0.5])
    groups = kernels.quartile_groups(np.arange(8)[::-1])              # reversed ranks
    assert kernels.recall_by_quartile(recall, groups) == [0.5, 0.875, 0.125, 0.75]
    few = kernels.recall_by_quartile(np.array([1.0, 0.0]), kernels.quartile_groups([2.0, 1.0]))
    assert few[:2] == [0.0, 1.0] and np.isnan(few[2:]).all()


# --- the query LID ---------------------------------------------------------------------------

def test_query_lid_from_truth_matches_direct_euclidean_mle():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((400, 6)).astype(np.float32)
    queries = np.vstack([base[:3], rng.standard_normal((7, 6)).astype(np.float32)])
    for metric in ("l2", "ip"):
        truth = exact_knn(base, queries, 100, metric)
        got = kernels.query_lid_from_truth(base, queries, metric, truth, f"test-{metric}")
        # brute force: the 20 Euclidean nearest, whatever the metric, in float64
        d = np.sqrt(((queries[:, None, :].astype(np.float64) - base[None]) ** 2).sum(-1))
        want = lid.query_lid(np.sort(d, axis=1)[:, :lid.DEFAULT_K], lid.DEFAULT_K)
        np.testing.assert_allclose(got, want, rtol=1e-6)
    # a query found in base: its zero distance is dropped as a copy, not an infinite LID
    assert np.isfinite(got[:3]).all() and (got[:3] > 0).all()


def test_query_lid_of_a_tiny_base():
    base = np.zeros((1, 3), np.float32)
    truth = exact_knn(base, np.ones((2, 3), np.float32), 100, "l2")
    assert (kernels.query_lid_from_truth(base, np.ones((2, 3)), "l2", truth, "t") == 0).all()


# --- end to end --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quartiles")
    (tmp / "exp.yaml").write_text(textwrap.dedent(TINY))
    experiment = load_experiment(tmp / "exp.yaml")
    results = tmp / "results"
    runner.run_experiment(experiment, results, threads=1, log=lambda line: None)
    vbresults.collect(results)
    return pd.read_parquet(results / "results.parquet"), results


def test_quartile_columns_follow_recall_and_lie_in_unit_interval(tiny_results):
    frame, _ = tiny_results
    columns = list(frame.columns)
    assert columns[columns.index("recall_eps@10") + 1:][:4] == QUARTILES
    values = frame[QUARTILES].to_numpy()
    assert np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()
    assert metrics.metric_info("recall@10_q4").higher_is_better


def test_query_weighted_quartile_mean_is_recall(tiny_results):
    frame, _ = tiny_results
    for _, row in frame.iterrows():
        n = 50 if row["dataset"].startswith("digits") else 30
        sizes = [len(g) for g in np.array_split(np.arange(n), 4)]
        weighted = np.dot(sizes, row[QUARTILES].to_numpy(float)) / n
        assert weighted == pytest.approx(row["recall@10"], abs=1e-12)
    # the sweep has a setting that misses: the columns are not trivially all 1
    assert (frame[QUARTILES] < 1).any().any()


def test_quartiles_come_from_the_per_query_recall_and_one_lid_per_dataset(tiny_results):
    frame, results = tiny_results
    per_query = pd.read_parquet(results / "per_query.parquet")
    by_dataset: dict = {}
    for _, record, _ in records.iter_records(results):
        values = records.load_reference(results, record).query_lid
        assert len(values) == record.dataset.n_queries and np.isfinite(values).all()
        # every pipeline and index of a dataset ranks its queries by the same LID
        by_dataset.setdefault(record.dataset.fingerprint, values)
        np.testing.assert_array_equal(by_dataset[record.dataset.fingerprint], values)
    assert len(by_dataset) == 2
    for row_id, row in frame.iterrows():
        recall = per_query[per_query["row"] == row_id]["recall@10"].to_numpy()
        lid_values = by_dataset[next(fp for fp in by_dataset
                                     if len(by_dataset[fp]) == len(recall))]
        expected = [recall[g].mean() for g in kernels.quartile_groups(lid_values)]
        np.testing.assert_allclose([row[c] for c in QUARTILES], expected, atol=1e-12)
