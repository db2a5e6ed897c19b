"""Data guards: exact counts of duplicates, zero vectors and queries in base, blockwise and memoized."""

from __future__ import annotations

import os

import numpy as np
import pytest

from vecbench.datasets import guards
from vecbench.datasets.base import PathResolver, finish
from vecbench.core.errors import DataError
from vecbench.core.registry import datasets

DATA = os.environ.get("VECBENCH_DATA")  # CI sets VECBENCH_DATA=../shared/datasets
needs_data = pytest.mark.skipif(
    not DATA or not os.path.isdir(os.path.join(DATA, "scifact-sentences")),
    reason="VECBENCH_DATA not set or has no scifact-sentences folder (real data)")


def distinct_rows(x: np.ndarray) -> int:
    return len(np.unique(np.asarray(x) + 0.0, axis=0))


def with_duplicates(n=500, dim=16, copies=((3, 400), (3, 401), (10, 499), (7, 250)), seed=0):
    """Random rows, then rows overwritten with copies of earlier ones (source, destination)."""
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    for source, destination in copies:
        x[destination] = x[source]
    return x


def test_duplicates_are_counted_exactly_across_blocks():
    x = with_duplicates()
    expected = len(x) - distinct_rows(x)
    # rows 3 (x3), 10 and 7 repeated: 4 extra rows, 3 distinct vectors repeated
    assert expected == 4
    hashes = guards.row_hashes(x, rows_per_block=7)  # copies land in other blocks
    assert np.array_equal(hashes, guards.row_hashes(x))
    assert guards.count_duplicates(x, hashes) == (expected, 3)


def test_duplicates_survive_hash_collisions(monkeypatch):
    x = with_duplicates()
    # every row hashing alike forces the exact comparison to do all the work
    monkeypatch.setattr(guards, "row_hashes", lambda a, rows_per_block=0: np.zeros(len(a),
                                                                                      np.uint64))
    assert guards.count_duplicates(x) == (len(x) - distinct_rows(x), 3)
    assert guards.queries_in_base(x[:100], x[400:402] + 1.0)[0] == 0


def test_negative_zero_equals_zero():
    x = np.zeros((3, 4), np.float32)
    x[1, 2] = -0.0
    x[2, 0] = 1.0
    assert guards.count_duplicates(x) == (1, 1)


def test_no_duplicates_no_warning():
    ds = datasets.get("synthetic")(n_base=800, n_queries=30, dim=16).load()
    stats, warnings = guards.inspect(ds)
    assert stats["duplicate_base"] == 0 and stats["queries_in_base"] == 0
    assert warnings == []


def test_memory_mapped_base_with_zero_rows_under_cos(tmp_path):
    base = with_duplicates()
    base[[5, 17, 230]] = 0.0
    queries = np.random.default_rng(1).standard_normal((20, 16)).astype(np.float32)
    queries[4] = 0.0
    # the same direction, scaled by powers of two (exact in float): equal after normalization
    queries[[7, 8]] = base[[100, 101]] * np.float32([[2.0], [0.25]])
    np.save(tmp_path / "b.npy", base)
    np.save(tmp_path / "q.npy", queries)
    loader = datasets.get("npy")(base="b.npy", queries="q.npy", metric="cos")
    ds = loader.load(PathResolver(tmp_path))
    stats, warnings = guards.inspect(ds)
    assert stats["zero_base"] == 3 and stats["zero_queries"] == 1
    # the three zero rows are duplicates of each other too
    assert stats["duplicate_base"] == len(ds.base) - distinct_rows(ds.base)
    assert stats["queries_in_base"] == 3  # the two scaled copies, and the zero query
    assert any("zero under the cos metric" in w for w in warnings)
    assert any("3 of 20 queries also appear in base" in w for w in warnings)
    assert stats["base_norm"]["min"] == 0.0
    assert stats["base_norm"]["max"] == pytest.approx(1.0, abs=1e-6)

    # the same data under l2: zero vectors are counted but are not a warning there
    ds_l2 = datasets.get("npy")(base="b.npy", queries="q.npy").load(PathResolver(tmp_path))
    stats_l2, warnings_l2 = guards.inspect(ds_l2)
    assert stats_l2["zero_base"] == 3
    assert stats_l2["queries_in_base"] == 1  # only the zero query: scaled copies differ in l2
    assert not any("zero" in w for w in warnings_l2)


def test_inspect_is_memoized_and_returns_copies(monkeypatch):
    ds = datasets.get("digits")().load()
    stats, warnings = guards.inspect(ds)
    stats["duplicate_base"] = -1
    warnings.append("mine")
    monkeypatch.setattr(guards, "_inspect", lambda d: pytest.fail("recomputed"))
    again, again_warnings = guards.inspect(ds)
    assert again["duplicate_base"] != -1 and "mine" not in again_warnings
    assert again["n_base"] == len(ds.base)


def test_nan_is_an_error_before_any_guard():
    x = np.ones((5, 3), np.float32)
    x[2, 1] = np.nan
    with pytest.raises(DataError, match="row 2 has NaN"):
        finish("bad", x, np.ones((1, 3), np.float32), "l2")


def test_runner_records_guards_and_warnings(tmp_path):
    from vecbench.run import stages
    from vecbench.run.experiment import build_experiment

    base = with_duplicates()
    np.save(tmp_path / "b.npy", base)
    np.save(tmp_path / "q.npy", base[:5].copy())  # every query is also in base
    experiment = build_experiment({
        "name": "guarded", "datasets": [{"npy": {"base": "b.npy", "queries": "q.npy"}}],
        "indexes": [{"flat": {}}]}, base_dir=str(tmp_path))
    record = stages.run_unit(experiment.units[0], threads=1).record
    assert record.guards["duplicate_base"] == len(base) - distinct_rows(base)
    assert record.guards["queries_in_base"] == 5
    assert any("duplicate an earlier row" in w for w in record.warnings)
    assert any("5 of 5 queries also appear in base" in w for w in record.warnings)


def test_describe_reports_counts_and_judgments():
    ds = datasets.get("digits")(n_queries=100).load()
    text = "\n".join(guards.describe(ds))
    assert f"base:            {len(ds.base)} x 64 float32" in text
    assert "qrels:           none" in text
    assert f"labels:          {len(np.unique(ds.labels))} classes" in text


@pytest.mark.realdata
@needs_data
def test_scifact_sentences_duplicates_match_numpy():
    ds = datasets.get("recipe")(name="scifact-sentences").load()
    stats, warnings = guards.inspect(ds)
    assert stats["duplicate_base"] == len(ds.base) - distinct_rows(ds.base)
    assert stats["duplicate_base"] > 0  # repeated sentences ("Results", boilerplate) exist
    assert any("duplicate an earlier row" in w for w in warnings)
