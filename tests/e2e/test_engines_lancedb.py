"""LanceDB specifics against the real engine: what it refuses, what its parameters do, where its
files go. The protocol itself is covered in tests/conformance/test_engines_conformance.py."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from vecbench.core.errors import ConfigError, DataError
from vecbench.core.registry import indexes

pytest.importorskip("lancedb", reason="lancedb is not installed (pip install 'vecbench[engines]')")
LanceDB = indexes.get("lancedb")
K = 10


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2000, 32)).astype(np.float32)
    q = rng.standard_normal((50, 32)).astype(np.float32)
    d = (q**2).sum(1)[:, None] - 2 * q @ x.T + (x**2).sum(1)[None, :]
    return x, q, np.argsort(d, axis=1)[:, :K]


def recall(ids, truth):
    return np.mean([len(set(a) & set(b)) for a, b in zip(ids, truth)]) / truth.shape[1]


def test_ivf_pq_below_256_vectors_is_refused_not_brute_forced(data):
    with pytest.raises(DataError, match=r"^lancedb: IVF_PQ indexed 0 of 200 vectors \(with 8-bit "
                                        r"PQ codes LanceDB trains only on 256 vectors or more\)"):
        LanceDB(num_partitions=1, num_sub_vectors=8).build(data[0][:200], "l2")


def test_parameters_of_the_other_index_type_are_refused():
    with pytest.raises(ConfigError, match="^m: a build parameter of the other index_type; "
                                          "IVF_PQ takes num_partitions, num_sub_vectors, num_bits"):
        LanceDB(m=16)
    with pytest.raises(ConfigError, match="^num_sub_vectors: a build parameter of the other"):
        LanceDB(index_type="IVF_HNSW_SQ", num_sub_vectors=8)
    with pytest.raises(ConfigError, match="^index_type: expected one of IVF_PQ, IVF_HNSW_SQ"):
        LanceDB(index_type="IVF_FLAT")
    with pytest.raises(ConfigError, match="^num_bits: expected one of 4, 8, got 6"):
        LanceDB(num_bits=6)
    with pytest.raises(ConfigError, match="^folder: expected an existing folder"):
        LanceDB(folder="/nonexistent/vecbench")


def test_num_sub_vectors_must_divide_the_dimension(data):
    with pytest.raises(ConfigError, match="^num_sub_vectors: expected a divisor of the dimension "
                                          "32, got 5"):
        LanceDB(num_sub_vectors=5).build(data[0], "l2")


def test_ef_is_a_search_parameter_of_hnsw_sq_only(data):
    with LanceDB(num_partitions=2, num_sub_vectors=8) as index:
        index.build(data[0][:500], "l2")
        with pytest.raises(ConfigError, match="^ef: a search parameter of index_type IVF_HNSW_SQ"):
            index.search(data[1], K, ef=50)


def test_pq_layout_refine_factor_and_bytes(data, tmp_path):
    x, q, truth = data
    with LanceDB(num_partitions=4, num_sub_vectors=8, num_bits=4, folder=str(tmp_path),
                 threads=1) as index:
        report = index.build(x, "l2")
        assert Path(index.folder_).parent == tmp_path
        assert report.code_bytes_per_vector == 8 * 4 / 8  # 8 sub-vectors of 4 bits
        assert report.details["index_details"]["compression"] == {
            "type": "pq", "num_bits": 4, "num_sub_vectors": 8}
        assert index.nbytes() < report.details["data_bytes"]  # codes, not the float32 table
        assert report.details["lance_cpu_threads"] == report.threads
        plain, _ = index.search(q, K, nprobes=4)
        refined, _ = index.search(q, K, nprobes=4, refine_factor=20)
    assert recall(refined, truth) > recall(plain, truth) + 0.2
    assert recall(refined, truth) >= 0.85
    assert not any(tmp_path.iterdir())  # the temporary folder went with close()


def test_lance_thread_pool_size_is_recorded(data):
    with LanceDB(num_partitions=2, num_sub_vectors=8) as index:
        report = index.build(data[0][:500], "l2")
    assert report.threads == int(os.environ["LANCE_CPU_THREADS"])
