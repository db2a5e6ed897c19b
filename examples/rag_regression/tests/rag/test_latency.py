"""Query latency of the shipped configuration, with pytest-benchmark, beside the quality gates
that pytest collects from prod.vecbench.yaml."""

from pathlib import Path

import pytest

from vecbench.pytest_plugin import prepare

SPEC = Path(__file__).with_name("prod.vecbench.yaml")


@pytest.fixture(scope="module")
def prod_index():
    return prepare(SPEC)  # the spec's dataset, pipeline and index, built once


def test_single_query_latency(benchmark, prod_index):
    one = prod_index.queries[:1]
    ids = benchmark(prod_index.query, one)
    assert ids.shape == (1, prod_index.k)


def test_batch_query_latency(benchmark, prod_index):
    ids = benchmark(prod_index.query)
    assert ids.shape == (len(prod_index.queries), prod_index.k)


def test_spec_quality_from_python(vecbench):
    """The same gates from Python: the fixture runs a spec and returns its result rows."""
    rows = vecbench(SPEC)
    assert rows[0]["recall@10"] >= 0.9
