"""Insertion orderings: permutations, their parameters, and that each does what it says."""

import numpy as np
import pytest

from vecbench.compute import ordering
from vecbench.core.errors import ConfigError
from vecbench.run.experiment import build_experiment
from vecbench.compute.ordering import OrderingContext
from vecbench.core.registry import datasets


@pytest.fixture(scope="module")
def clustered():
    return datasets.get("synthetic")(n_base=1200, n_queries=10, dim=16, intrinsic_dim=4,
                                     n_clusters=6, cluster_std=0.1).load()


def _ctx(ds):
    return OrderingContext(metric=ds.metric, labels=ds.labels, fingerprint=ds.fingerprint())


def test_lid_orders_sort_by_pointwise_lid(clustered):
    from vecbench.compute.lid import cached_pointwise_lid

    lid = cached_pointwise_lid(clustered.fingerprint(), clustered.base, k=10)
    up = ordering.apply("lid_asc", {"k": 10}, clustered.base, 0, _ctx(clustered))
    down = ordering.apply("lid_desc", {"k": 10}, clustered.base, 0, _ctx(clustered))
    assert (np.diff(lid[up]) >= 0).all() and (np.diff(lid[down]) <= 0).all()
    assert lid[up[0]] < lid[down[0]]


def test_category_orders_are_contiguous_or_round_robin(clustered):
    labels = clustered.labels
    perm = ordering.apply("category", {}, clustered.base, 3, _ctx(clustered))
    runs = (np.diff(labels[perm]) != 0).sum() + 1
    assert runs == len(np.unique(labels))  # each category in one contiguous block
    inter = ordering.apply("category_interleaved", {}, clustered.base, 3, _ctx(clustered))
    first = labels[inter[:len(np.unique(labels))]]
    assert sorted(first) == sorted(np.unique(labels))  # one of each category first


def test_cluster_orders_group_nearby_points(clustered):
    perm = ordering.apply("cluster", {"n_clusters": 6}, clustered.base, 0, _ctx(clustered))
    inter = ordering.apply("cluster_interleaved", {"n_clusters": 6}, clustered.base, 0,
                           _ctx(clustered))
    step = lambda p: np.linalg.norm(np.diff(clustered.base[p], axis=0), axis=1).mean()
    # consecutive insertions are close in a clustered order, far apart when interleaved
    assert step(perm) < 0.5 * step(inter)


def test_category_without_labels_is_a_clear_error():
    ds = datasets.get("synthetic")(n_base=50, n_queries=2, dim=4, intrinsic_dim=2).load()
    with pytest.raises(ConfigError, match="ordering category needs dataset labels"):
        ordering.apply("category", {}, ds.base, 0, _ctx(ds))


def test_ordering_parameters_are_checked_without_data():
    with pytest.raises(ConfigError, match=r"orderings\[0\]\.lid_desc\.k: expected an integer"):
        build_experiment({"datasets": ["digits"], "indexes": ["flat"],
                          "orderings": [{"lid_desc": {"k": "twenty"}}]})
    with pytest.raises(ConfigError, match=r"orderings\[0\]\.cluster\.n_cluster.*did you mean"):
        build_experiment({"datasets": ["digits"], "indexes": ["flat"],
                          "orderings": [{"cluster": {"n_cluster": 8}}]})


@pytest.mark.parametrize("metric", ["l2", "cos"])
def test_query_near_orders_put_the_queried_region_first_or_last(metric):
    rng = np.random.default_rng(0)
    near = rng.normal(size=(100, 8)).astype(np.float32) + 5.0   # where the queries are
    far = rng.normal(size=(300, 8)).astype(np.float32) - 5.0
    base = np.vstack([far, near])
    queries = rng.normal(size=(20, 8)).astype(np.float32) + 5.0
    ctx = OrderingContext(metric=metric, queries=queries)
    first = ordering.apply("query_near_first", {}, base, 0, ctx)
    last = ordering.apply("query_near_last", {}, base, 0, ctx)
    assert set(first[:100]) == set(range(300, 400))  # the near block, in any order
    assert set(last[-100:]) == set(range(300, 400))
    assert set(last[:300]) == set(range(300))


def test_query_near_without_queries_is_a_clear_error(clustered):
    with pytest.raises(ConfigError, match="ordering query_near_first needs the dataset's queries"):
        ordering.apply("query_near_first", {}, clustered.base, 0, _ctx(clustered))


def test_the_runner_passes_the_queries_to_orderings(clustered):
    from vecbench.run.stages import insertion_order

    spec = build_experiment({"datasets": ["digits"], "indexes": ["flat"],
                             "orderings": ["query_near_first"]}, "t.yaml")
    unit = spec.units[0]
    ds = datasets.get("digits")().load()
    perm = insertion_order(unit, ds)
    direct = ordering.apply("query_near_first", {}, ds.base, 0,
                            OrderingContext(metric=ds.metric, queries=ds.queries))
    assert np.array_equal(perm, direct)


def test_held_out_query_orders_see_only_the_selection_half():
    """With held_out, the order is informed by the split's selection half alone: moving a
    report-half query changes nothing, moving a selection-half query changes the order."""
    from vecbench.compute.query_split import split

    rng = np.random.default_rng(1)
    base = rng.normal(size=(300, 8)).astype(np.float32)
    queries = rng.normal(size=(40, 8)).astype(np.float32)
    halves = split(len(queries), seed=3)
    params = {"held_out": True, "split_seed": 3}
    before = ordering.apply("query_near_first", params, base, 0,
                            OrderingContext(queries=queries))
    only_selected = OrderingContext(queries=queries[halves.select])
    assert np.array_equal(before, ordering.apply("query_near_first", {}, base, 0, only_selected))
    moved = queries.copy()
    moved[halves.report] += 100.0                       # the held-out queries move far away
    assert np.array_equal(before, ordering.apply("query_near_first", params, base, 0,
                                                 OrderingContext(queries=moved)))
    moved = queries.copy()
    moved[halves.select] += 100.0
    assert not np.array_equal(before, ordering.apply("query_near_first", params, base, 0,
                                                     OrderingContext(queries=moved)))
    last = ordering.apply("query_near_last", params, base, 0, OrderingContext(queries=queries))
    assert np.array_equal(last, ordering.apply("query_near_last", {}, base, 0, only_selected))


def test_held_out_is_checked_without_data():
    with pytest.raises(ConfigError, match=r"orderings\[0\]\.query_near_first\.held_out"):
        build_experiment({"datasets": ["digits"], "indexes": ["flat"],
                          "orderings": [{"query_near_first": {"held_out": "yes"}}]})
