"""Chroma specifics against the real engine: the HNSW space per metric, search_ef as a
per-call argument over collection state, parameter errors. The protocol itself is covered in
tests/conformance/test_engines_conformance.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vecbench.core.errors import ConfigError
from vecbench.core.registry import indexes

pytest.importorskip("chromadb", reason="chromadb is not installed (pip install 'vecbench[engines]')")
Chroma = indexes.get("chroma")
K = 10


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(4)
    return (rng.standard_normal((3000, 32)).astype(np.float32),
            rng.standard_normal((100, 32)).astype(np.float32))


@pytest.mark.parametrize("metric,space", [("l2", "l2"), ("ip", "ip"), ("cos", "cosine")])
def test_space_follows_the_metric(data, metric, space):
    with Chroma(threads=1) as index:
        report = index.build(data[0][:300], metric)
    assert report.details["hnsw:space"] == space
    assert report.details["sqlite_bytes"] > 0 and report.code_bytes_per_vector == 4 * 32


def test_search_ef_is_an_argument_not_leftover_state(data):
    x, q = data
    with Chroma(M=4, construction_ef=8, threads=1) as index:
        index.build(x, "l2")
        default, _ = index.search(q, K)
        narrow, _ = index.search(q, K, search_ef=10)
        again, _ = index.search(q, K)  # left out: Chroma's default again, not 10
        explicit, _ = index.search(q, K, search_ef=100)
    assert np.array_equal(default, again) and np.array_equal(default, explicit)
    assert not np.array_equal(default, narrow)


def test_parameters_are_checked_without_data(tmp_path):
    with pytest.raises(ConfigError, match="^M: expected an integer >= 2, got 1"):
        Chroma(M=1)
    with pytest.raises(ConfigError, match="^construction_ef: expected an integer >= 1, got 0"):
        Chroma(construction_ef=0)
    with pytest.raises(ConfigError, match="^search_ef: expected an integer >= 1, got 'wide'"):
        Chroma.check_search({"search_ef": "wide"})
    with pytest.raises(ConfigError, match="^folder: expected an existing folder"):
        Chroma(folder=str(tmp_path / "missing"))


def test_files_go_under_the_given_folder_and_go_away(data, tmp_path):
    with Chroma(folder=str(tmp_path)) as index:
        index.build(data[0][:300], "l2")
        assert Path(index.folder_).parent == tmp_path
        assert (Path(index.folder_) / "chroma.sqlite3").is_file()
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("n", [150, 1001])
def test_every_vector_is_in_the_graph_on_disk(data, n):
    """Chroma's defaults would leave all but whole batches of 100 (below 1,000 vectors) in its
    log, searched by brute force and missing from the files whose size is reported."""
    with Chroma(threads=1) as index:
        report = index.build(data[0][:n], "l2")
        segment = next(p for p in Path(index.folder_).iterdir() if p.is_dir())
        assert (segment / "length.bin").stat().st_size == 4 * n
        assert report.graph_bytes_per_vector > 0
        assert report.details["hnsw:batch_size"] == n
