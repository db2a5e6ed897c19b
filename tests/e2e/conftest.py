"""Fixtures the end-to-end Dask tests share."""

import os

import pytest


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A REAL Dask ``LocalCluster`` of two single-threaded worker processes, as
    ``--executor dask --jobs 2`` starts them, with a cache of its own (fresh: fit counts start
    from zero); one per test module."""
    distributed = pytest.importorskip("distributed")
    before = os.environ.get("VECBENCH_CACHE")
    os.environ["VECBENCH_CACHE"] = str(tmp_path_factory.mktemp("cluster-cache"))
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=":0") as local:
            yield local
    finally:
        if before is None:
            os.environ.pop("VECBENCH_CACHE", None)
        else:
            os.environ["VECBENCH_CACHE"] = before
