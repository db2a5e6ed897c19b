import numpy as np

from vecbench.compute import recall
from vecbench.evaluate import metrics
from vecbench.compute.groundtruth import exact_knn


def test_duplicate_returned_ids_count_once():
    truth = np.array([[1, 2, 3, 4]])
    assert recall.recall_per_query(np.array([[1, 1, 1, 1]]), truth, 4)[0] == 0.25
    assert recall.recall_per_query(np.array([[4, 3, 2, 1]]), truth, 4)[0] == 1.0
    assert recall.recall_per_query(np.array([[1, -1, -1, -1]]), truth, 4)[0] == 0.25


def test_recall_eps_counts_ties_as_hits():
    # ids 1 and 2 are equally far from the query: either is a correct 2nd neighbour
    base = np.array([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [3.0, 0.0]], np.float32)
    queries = np.zeros((1, 2), np.float32)
    truth = exact_knn(base, queries, 2, "l2")
    other = 2 if truth.ids[0, 1] == 1 else 1
    returned = np.array([[0, other]])
    assert recall.recall_per_query(returned, truth.ids, 2)[0] == 0.5
    assert recall.recall_eps_per_query(returned, truth, base, queries, 2)[0] == 1.0
    dup = np.array([[0, 0]])
    assert recall.recall_eps_per_query(dup, truth, base, queries, 2)[0] == 0.5
    far = np.array([[0, 3]])
    assert recall.recall_eps_per_query(far, truth, base, queries, 2)[0] == 0.5


def test_recall_eps_with_inner_product():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((100, 8)).astype(np.float32)
    queries = rng.standard_normal((5, 8)).astype(np.float32)
    truth = exact_knn(base, queries, 100, "ip")
    assert (recall.recall_eps_per_query(truth.ids[:, :10], truth, base, queries, 10) == 1).all()
    reversed_ids = truth.ids[:, ::-1][:, :10]  # the 10 farthest of the top 100
    assert recall.recall_eps_per_query(reversed_ids, truth, base, queries, 10).max() == 0


def test_metric_directions():
    assert metrics.metric_info("recall@10").higher_is_better
    assert not metrics.metric_info("p99_ms").higher_is_better
    assert metrics.metric_info("recall@10_q3").higher_is_better
    assert metrics.metric_info("dataset") is None


def test_mean_ci95_is_students_t_over_few_repeats():
    import scipy.stats

    values = np.array([0.91, 0.93, 0.95])
    mean, low, high = metrics.mean_ci95(values)
    expected = scipy.stats.t.interval(0.95, len(values) - 1, loc=values.mean(),
                                      scale=scipy.stats.sem(values))
    assert mean == values.mean()
    assert np.allclose((low, high), expected)
    assert metrics.mean_ci95(np.array([0.5])) == (0.5, 0.5, 0.5)


def test_unique_hits_agrees_with_a_set_count_per_query():
    rng = np.random.default_rng(3)
    returned = rng.integers(-1, 30, size=(200, 12))
    relevant = rng.integers(-1, 30, size=(200, 15))
    expected = [len({i for i in got if i >= 0} & {i for i in want if i >= 0})
                for got, want in zip(returned.tolist(), relevant.tolist())]
    assert recall.unique_hits(returned, relevant).tolist() == expected
