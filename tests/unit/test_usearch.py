"""The usearch adapter: what each storage dtype stores, its recall against exact search, the
bytes it reports, native code hand-off, insertion order, and its errors.

The protocol itself (ids, padding, metrics, seeds, parameter errors) is checked by the index
conformance suite, which runs every registered index.
"""

from __future__ import annotations

import sys
import types

import ml_dtypes
import numpy as np
import pytest

pytest.importorskip("usearch")

from vecbench.core.errors import ConfigError, DataError  # noqa: E402
from vecbench.indexes.usearch_index import USearchIndex  # noqa: E402
from vecbench.core.registry import indexes  # noqa: E402
from vecbench.transforms.quantize import BFloat16, Binary, Float16  # noqa: E402
from helpers import run_frame  # noqa: E402

K = 10
FLOAT_DTYPES = ("f32", "f16", "bf16", "e4m3", "e5m2", "i8")
#: dtype -> recall@10 it must reach at ef=200 on the data below (measured: 1.0, 1.0, 1.0,
#: 0.97, 0.94, 0.97 under cos); the loss is the storage's, the graph search is near exact.
MIN_RECALL = {"f32": 0.99, "f16": 0.99, "bf16": 0.98, "e4m3": 0.92, "e5m2": 0.88, "i8": 0.92}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """Points near a 12-d subspace of 48-d (embedding-like: neighbours are meaningful)."""
    rng = np.random.default_rng(5)
    basis = rng.standard_normal((12, 48))
    x = rng.standard_normal((3000, 12)) @ basis + 0.3 * rng.standard_normal((3000, 48))
    q = rng.standard_normal((100, 12)) @ basis + 0.3 * rng.standard_normal((100, 48))
    return x.astype(np.float32), q.astype(np.float32)


def flat_truth(x: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    flat = indexes.get("flat")()
    flat.build(x, metric)
    return flat.search(q, K)[0]


def recall(ids: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(ids, truth)]))


def built(dtype: str, x: np.ndarray, metric: str = "cos", **params) -> USearchIndex:
    index = USearchIndex(dtype=dtype, threads=1, ef_construction=200, **params)
    index.report = index.build(x, metric)
    return index


def stored(index: USearchIndex, dtype: str | None = None) -> np.ndarray:
    """The vectors USearch holds, as its raw storage type (or decoded to ``dtype``)."""
    return np.stack(index.index_.get(np.arange(index.ntotal_), dtype=dtype))


# -- recall ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_recall_against_flat(dtype, data):
    x, q = data
    truth = flat_truth(x, q, "cos")
    ids = built(dtype, x).search(q, K, ef=200)[0]
    assert recall(ids, truth) >= MIN_RECALL[dtype]


@pytest.mark.parametrize("metric", ["l2", "ip"])
@pytest.mark.parametrize("dtype", ["f16", "e4m3"])
def test_float_storage_follows_l2_and_ip(dtype, metric, data):
    x, q = data
    ids = built(dtype, x, metric).search(q, K, ef=200)[0]
    assert recall(ids, flat_truth(x, q, metric)) >= MIN_RECALL[dtype]


def test_fewer_bits_lose_recall(data):
    """The index really quantizes: 1-byte storage loses recall that 4 bytes do not."""
    x, q = data
    truth = flat_truth(x, q, "cos")
    full = recall(built("f32", x).search(q, K, ef=200)[0], truth)
    assert recall(built("i8", x).search(q, K, ef=200)[0], truth) < full
    assert recall(built("e5m2", x).search(q, K, ef=200)[0], truth) < full


def test_b1_ranks_by_hamming_distance(data):
    x, q = data
    x_bits = np.unpackbits(np.packbits(x > 0, axis=1), axis=1).astype(np.int32)
    q_bits = np.unpackbits(np.packbits(q > 0, axis=1), axis=1).astype(np.int32)
    dist = q_bits.sum(1)[:, None] + x_bits.sum(1)[None, :] - 2 * q_bits @ x_bits.T
    ids = built("b1", x, "l2").search(q, K, ef=200)[0]
    kth = np.sort(dist, axis=1)[:, K - 1]  # ties are frequent: any vector within the k-th counts
    hits = [np.count_nonzero(dist[i, ids[i]] <= kth[i]) for i in range(len(q))]
    assert np.mean(hits) / K >= 0.99


# -- what is stored, and the bytes reported ---------------------------------------------------


def test_float_input_is_cast_like_numpy_and_ml_dtypes(data):
    x, _ = data
    casts = {"f16": np.float16, "bf16": ml_dtypes.bfloat16, "e4m3": ml_dtypes.float8_e4m3fn,
             "e5m2": ml_dtypes.float8_e5m2}
    for dtype, cast in casts.items():
        index = built(dtype, x, "l2", M=4)
        assert np.array_equal(stored(index, "f32"), x.astype(cast).astype(np.float32)), dtype


def test_i8_stores_unit_vectors_times_127_truncated(data):
    """Why i8 is cosine-only: USearch drops the norm before casting (and truncates)."""
    x, _ = data
    index = built("i8", x, "cos", M=4)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    expected = np.trunc(unit * 127).astype(np.int8)
    assert np.mean(stored(index) != expected) < 1e-3  # float rounding at exact integers only
    assert np.abs(stored(index).astype(int) - expected).max() <= 1


@pytest.mark.parametrize("dtype, per_dim", [("f16", 2), ("bf16", 2), ("e4m3", 1), ("e5m2", 1),
                                            ("i8", 1)])
def test_bytes_per_vector(dtype, per_dim, data):
    x = data[0][:500]
    index = built(dtype, x, M=8)
    assert index.report.code_bytes_per_vector == per_dim * x.shape[1]
    assert index.report.compresses and index.report.details["dtype"] == dtype
    f32 = built("f32", x, M=8)
    assert f32.report.code_bytes_per_vector == 4 * x.shape[1]
    assert not f32.report.compresses  # no quantization: the runner reports "none"
    # the serialized index shrinks by exactly the vector bytes saved
    assert f32.nbytes() - index.nbytes() == len(x) * (4 - per_dim) * x.shape[1]
    # and the graph bytes are the same (the links do not depend on the storage type)
    assert f32.report.graph_bytes_per_vector == pytest.approx(index.report.graph_bytes_per_vector)
    assert index.report.graph_bytes_per_vector > 8 * 2  # at least M links of 4 bytes


@pytest.mark.parametrize("d", [48, 45])
def test_b1_bytes_per_vector(d, data):
    x = np.ascontiguousarray(data[0][:500, :d])
    index = built("b1", x, M=8)
    assert index.report.code_bytes_per_vector == (d + 7) // 8
    assert index.report.compresses  # floats binarized by the adapter
    assert index.accepts == {"binary"}
    codes = built("b1", np.packbits(x > 0, axis=1), M=8)
    assert codes.report.code_bytes_per_vector == (d + 7) // 8 and not codes.report.compresses
    assert index.nbytes() < built("i8", x, M=8).nbytes()


def test_accepts_follows_dtype():
    assert USearchIndex(dtype="f16").accepts == {"float32", "fp16"}
    assert USearchIndex(dtype="bf16").accepts == {"float32", "bf16"}
    assert USearchIndex(dtype="i8").accepts == {"float32"}  # vecbench's int8 codes carry scales
    assert USearchIndex(dtype="e4m3").accepts == {"float32"}  # and float8's may be scaled
    assert USearchIndex.accepts == {"float32", "fp16", "bf16", "binary"}


@pytest.mark.parametrize("metric", ["l2", "cos"])
@pytest.mark.parametrize("quantizer_cls, dtype", [(Float16, "f16"), (BFloat16, "bf16"),
                                                  (Binary, "b1")])
def test_native_codes_are_stored_bit_for_bit(quantizer_cls, dtype, metric, data):
    x, q = data
    quantizer = quantizer_cls().fit(x)
    codes, q_codes = quantizer.transform(x), quantizer.transform(q)
    index = built(dtype, codes, metric)
    assert quantizer.code_kind in index.accepts
    raw = stored(index)
    if dtype == "bf16":  # USearch hands bf16 back as float32: compare the decoded values
        assert np.array_equal(stored(index, "f32"), codes.astype(np.float32))
    else:
        assert np.array_equal(raw.view(np.uint8), codes.view(np.uint8))
    if dtype != "b1":  # query codes and their decoded floats give the same answer
        decoded = quantizer.inverse_transform(q_codes)
        assert np.array_equal(index.search(q_codes, K, ef=64)[0], index.search(decoded, K, ef=64)[0])
        truth = flat_truth(quantizer.inverse_transform(codes), decoded, metric)
        assert recall(index.search(q_codes, K, ef=200)[0], truth) >= 0.99


# -- order, determinism ---------------------------------------------------------------------


def test_single_threaded_build_inserts_in_the_order_given(data):
    """add_many with one thread builds byte for byte what adding rows one by one builds."""
    from usearch.index import Index

    x = data[0][:1000]
    index = built("f32", x, "l2", M=8)
    by_hand = Index(ndim=x.shape[1], metric="l2sq", dtype="f32", connectivity=8,
                    expansion_add=200)
    for row in range(len(x)):
        by_hand.add(row, x[row], threads=1)
    assert USearchIndex.honours_order
    assert bytes(index.index_.save()) == bytes(by_hand.save())
    reversed_order = built("f32", x[::-1].copy(), "l2", M=8)  # the order matters at all
    assert bytes(reversed_order.index_.save()) != bytes(index.index_.save())


def test_search_ef_is_not_sticky(data):
    x, q = data
    index = built("f32", x, "l2", M=4)
    default = index.search(q, K)[0]
    index.search(q, K, ef=500)[0]
    assert np.array_equal(index.search(q, K)[0], default)  # ef left out: USearch's default again


# -- errors ---------------------------------------------------------------------------------


def test_bad_dtype_is_a_config_error():
    with pytest.raises(ConfigError, match="dtype: expected one of f32, f16, bf16") as info:
        USearchIndex(dtype="int8")
    assert info.value.path == "dtype"


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_i8_refuses_metrics_that_need_norms(metric, data):
    with pytest.raises(ConfigError, match=f"cosine only; got metric {metric}") as info:
        USearchIndex(dtype="i8").build(data[0], metric)
    assert info.value.path == "dtype"


def test_float8_missing_from_an_older_usearch_is_a_config_error(monkeypatch):
    import usearch.index

    old_kinds = types.SimpleNamespace(F32=1, F16=2, BF16=3, I8=4, B1=5)
    monkeypatch.setattr(usearch.index, "ScalarKind", old_kinds)
    with pytest.raises(ConfigError, match="has no e4m3") as info:
        USearchIndex(dtype="e4m3")
    assert info.value.path == "dtype"
    assert USearchIndex(dtype="f16").dtype == "f16"


def test_missing_usearch_is_a_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "usearch", None)  # import usearch now fails
    monkeypatch.delitem(sys.modules, "usearch.index", raising=False)
    cls = indexes.get("usearch")  # the registry entry itself resolves without usearch
    with pytest.raises(ConfigError, match=r"usearch adapter needs `pip install usearch`"):
        cls()


def test_b1_input_errors(data):
    x, q = data
    index = built("b1", np.packbits(x > 0, axis=1), "l2", M=4)
    with pytest.raises(DataError, match="expected packed codes of 6 bytes, got 5"):
        index.search(np.packbits(q[:, :40] > 0, axis=1), K)[0]
    assert index.search(q, K)[0].shape == (len(q), K)  # 48 float dims give 6-byte codes
    with pytest.raises(DataError, match="at least one base vector"):
        USearchIndex(dtype="b1").build(np.empty((0, 6), np.uint8), "l2")


# -- through the runner -----------------------------------------------------------------------

EXPERIMENT = """
name: usearch
k: 10
datasets:
  - synthetic: {n_base: 1200, n_queries: 30, dim: 40, intrinsic_dim: 8, metric: cos}
pipelines:
  - []
  - [float16: {}]
indexes:
  - usearch: {build: {M: 8, ef_construction: 64, dtype: [f32, f16, i8]}, search: {ef: 64}}
orderings: [original]
"""


def test_runner_reports_index_quantization_and_native_codes(tmp_path):
    frame = run_frame(tmp_path, EXPERIMENT, "usearch.yaml")
    rows = frame.set_index([frame["build.dtype"], frame["pipeline"].str.contains("float16")])
    assert len(frame) == 6
    assert rows.loc[("f32", False)]["quantization"] == "none"
    assert rows.loc[("f16", False)][["quantization", "bytes_per_vector"]].tolist() == ["index", 80]
    assert rows.loc[("i8", False)][["quantization", "bytes_per_vector"]].tolist() == ["index", 40]
    assert rows.loc[("f16", True)]["quantization"] == "native"
    assert rows.loc[("f16", True)]["recall_index@10"] >= 0.99
    # float16 codes decoded and stored by usearch as i8: the index's bytes count
    assert rows.loc[("i8", True)][["quantization", "bytes_per_vector"]].tolist() == ["index", 40]
