"""Indexes that store compressed codes natively: faiss scalar-quantizer and binary indexes.

The index conformance suite runs them too; here: the native code hand-off is exact, the bytes
per vector, Hamming search against a numpy brute force, parameter checks, and runs through the
runner labelled native / simulated.
"""

from __future__ import annotations


import ml_dtypes
import numpy as np
import pytest

from vecbench.core.errors import ConfigError, DataError
from vecbench.indexes.faiss.families import FaissBinaryFlat, FaissBinaryHNSW, FaissBinaryIVF
from vecbench.indexes.faiss.families import FaissHNSWSQ, FaissSQ, stored_codes
from vecbench.core.registry import indexes
from vecbench.transforms.quantize import BFloat16, Binary, Float16
from helpers import run_frame

K = 10
BINARY = (FaissBinaryFlat, FaissBinaryHNSW, FaissBinaryIVF)
GENEROUS_BINARY = {FaissBinaryFlat: ({}, {}),
                   FaissBinaryHNSW: ({"M": 16, "ef_construction": 200}, {"ef": 200}),
                   FaissBinaryIVF: ({"nlist": 16}, {"nprobe": 16})}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1500, 64)) * rng.uniform(0.5, 2.0, (1500, 1))
    return x.astype(np.float32), rng.standard_normal((60, 64)).astype(np.float32)


def hamming(q_codes: np.ndarray, x_codes: np.ndarray) -> np.ndarray:
    """All pairwise Hamming distances by numpy popcount (independent of faiss)."""
    q_bits = np.unpackbits(q_codes, axis=1).astype(np.int32)
    x_bits = np.unpackbits(x_codes, axis=1).astype(np.int32)
    return q_bits.sum(1)[:, None] + x_bits.sum(1)[None, :] - 2 * q_bits @ x_bits.T


def tie_aware_recall(ids: np.ndarray, dist: np.ndarray, k: int) -> float:
    """A returned id is a hit when its distance is within the true k-th smallest distance
    (Hamming distances tie often: which tied vector comes back is the index's choice)."""
    kth = np.sort(dist, axis=1)[:, k - 1]
    hits = [np.count_nonzero(dist[i, np.unique(row[row >= 0])] <= kth[i])
            for i, row in enumerate(ids)]
    return float(np.mean(hits)) / k


# -- scalar quantizer: native hand-off --------------------------------------------------------


def test_every_finite_fp16_value_survives_faiss_qt_fp16():
    """Decode-and-re-encode (the HNSW path) is lossless: all finite fp16 bit patterns."""
    import faiss

    bits = np.arange(2**16, dtype=np.uint16)
    values = bits.view(np.float16).astype(np.float32)
    finite = np.isfinite(values)
    n = finite.sum() // 16 * 16
    x = np.ascontiguousarray(values[finite][:n].reshape(-1, 16))
    sq = faiss.IndexScalarQuantizer(16, faiss.ScalarQuantizer.QT_fp16)
    codes = sq.sa_encode(x)
    assert np.array_equal(codes.view(np.uint16).ravel(), bits[finite][:n])
    assert np.array_equal(sq.sa_decode(codes).view(np.uint32), x.view(np.uint32))


@pytest.mark.parametrize("cls", [FaissSQ, FaissHNSWSQ])
@pytest.mark.parametrize("quantizer_cls, qtype", [(Float16, "fp16"), (BFloat16, "bf16")])
def test_native_codes_are_stored_unchanged(cls, quantizer_cls, qtype, data):
    x, q = data
    quantizer = quantizer_cls().fit(x)
    codes = quantizer.transform(x)
    index = cls(qtype=qtype, threads=1, M=8) if cls is FaissHNSWSQ else cls(qtype=qtype)
    assert quantizer.code_kind in index.accepts
    report = index.build(codes, "l2")
    assert not report.compresses  # given codes, not float32
    assert report.code_bytes_per_vector == codes.itemsize * codes.shape[1]
    stored = stored_codes(index.index_)
    assert np.array_equal(stored, codes.view(np.uint8).ravel())
    # decoded by faiss and by vecbench: the same float32 bits
    import faiss
    storage = faiss.downcast_index(getattr(index.index_, "storage", index.index_))
    faiss_decoded = storage.sa_decode(stored.reshape(len(x), -1))
    assert np.array_equal(faiss_decoded.view(np.uint32),
                          quantizer.inverse_transform(codes).view(np.uint32))
    if cls is FaissHNSWSQ:
        assert report.details["native_mismatch_bytes"] == 0
    # searching with the query codes equals searching with their decoded floats
    q_codes = quantizer.transform(q)
    assert np.array_equal(index.search(q_codes, K, **({"ef": 64} if cls is FaissHNSWSQ else {}))[0],
                          index.search(quantizer.inverse_transform(q_codes), K,
                                       **({"ef": 64} if cls is FaissHNSWSQ else {}))[0])


def test_float_input_is_quantized_by_faiss_itself(data):
    """Mode 1: faiss rounds to the nearest fp16 too, but breaks exact ties away from zero where
    numpy (and so vecbench) rounds half to even: one more reason for the native hand-off."""
    x, _ = data
    own = FaissSQ(qtype="fp16")
    report = own.build(x, "l2")
    assert report.details["input"] == "float32" and report.compresses
    faiss_values = stored_codes(own.index_).view(np.float16).astype(np.float32)
    numpy_values = x.astype(np.float16).astype(np.float32).ravel()
    differ = faiss_values != numpy_values
    assert differ.mean() < 1e-3
    error = np.abs(x.ravel() - faiss_values)
    assert np.array_equal(error[differ], np.abs(x.ravel() - numpy_values)[differ])  # ties only


def test_codes_of_another_format_are_refused(data):
    x, _ = data
    with pytest.raises(ConfigError, match="qtype 8bit cannot store fp16 codes") as info:
        FaissSQ(qtype="8bit").build(x.astype(np.float16), "l2")
    assert info.value.path == "qtype"
    with pytest.raises(ConfigError, match="cannot store bf16 codes"):
        FaissHNSWSQ(qtype="fp16").build(x.astype(ml_dtypes.bfloat16), "l2")
    assert FaissSQ(qtype="8bit").accepts == {"float32"}
    assert FaissSQ(qtype="fp16").accepts == {"float32", "fp16"}
    # the class attribute (what the runner reads) is the union over qtypes; no integer codes
    assert FaissSQ.accepts == {"float32", "fp16", "bf16"} and "int8" not in FaissSQ.accepts


def test_bf16_native_codes_flat_keeps_every_byte_hnsw_reports_what_differs():
    """Native bf16 codes: the flat index copies the code bytes, subnormals included. The HNSW
    index re-encodes decoded floats, and whether faiss keeps a bf16 subnormal then depends on
    the CPU's SIMD path (flushed to zero on some machines, kept on others); what users rely on
    is that it is lossless for normal values and that ``native_mismatch_bytes_`` counts exactly
    the stored bytes that differ, only where a subnormal was."""
    x = np.full((20, 16), 1.0, np.float32)
    x[3, 2] = 1e-39  # a bf16 subnormal
    codes = x.astype(ml_dtypes.bfloat16)
    flat, graph = FaissSQ(qtype="bf16"), FaissHNSWSQ(qtype="bf16", threads=1)
    flat_report = flat.build(codes, "l2")
    report = graph.build(codes, "l2")
    handed = codes.view(np.uint8).ravel()
    assert np.array_equal(stored_codes(flat.index_), handed)
    assert flat_report.details["native_mismatch_bytes"] == 0
    stored = stored_codes(graph.index_)
    differ = np.flatnonzero(stored != handed)
    assert report.details["native_mismatch_bytes"] == len(differ)
    subnormal_bytes = {2 * (3 * 16 + 2), 2 * (3 * 16 + 2) + 1}  # the 2 bytes of x[3, 2]
    assert set(differ.tolist()) <= subnormal_bytes
    decoded = stored.view(ml_dtypes.bfloat16).astype(np.float32).reshape(x.shape)
    assert decoded[3, 2] in (0.0, float(codes[3, 2].astype(np.float32)))  # kept or flushed


def test_faiss_8bit_codes_are_not_vecbench_int8_codes(data):
    """Why int8 codes are never handed over: trained on the same vectors, faiss's 8bit
    quantizer truncates where vecbench rounds, and decodes to the middle of a level."""
    import faiss

    from vecbench.transforms.quantize import Int8

    x, _ = data
    ours = Int8().fit(x)
    sq = faiss.IndexScalarQuantizer(x.shape[1], faiss.ScalarQuantizer.QT_8bit)
    sq.train(x)
    faiss_codes = sq.sa_encode(x)
    assert np.mean(faiss_codes != ours.transform(x)) > 0.2
    decoded = sq.sa_decode(ours.transform(x))  # vecbench's codes read by faiss
    assert not np.allclose(decoded, ours.inverse_transform(ours.transform(x)), atol=1e-4)


@pytest.mark.parametrize("qtype, per_vector", [("fp16", lambda d: 2 * d), ("bf16", lambda d: 2 * d),
                                               ("8bit", lambda d: d), ("4bit", lambda d: d // 2),
                                               ("6bit", lambda d: 3 * d // 4)])
@pytest.mark.parametrize("cls", [FaissSQ, FaissHNSWSQ])
def test_scalar_quantizer_bytes_per_vector(cls, qtype, per_vector, data):
    x, _ = data
    index = cls(qtype=qtype, threads=1)
    report = index.build(x[:300], "l2", train=x)
    d = x.shape[1]
    assert report.code_bytes_per_vector == per_vector(d) and report.compresses
    assert (report.graph_bytes_per_vector > 0) == (cls is FaissHNSWSQ)
    assert index.nbytes() >= 300 * per_vector(d)
    if cls is FaissSQ:  # flat: codes plus a small header (and trained ranges)
        assert index.nbytes() < 300 * per_vector(d) + 2 * 4 * d + 1024


def test_scalar_quantizer_recall_orders_with_bits(data):
    """More bits, better recall (flat search, so the code is the only loss)."""
    x, q = data
    truth = np.argsort(((q[:, None, :] - x[None]) ** 2).sum(-1), axis=1)[:, :K]
    recalls = []
    for qtype in ("4bit", "8bit", "fp16"):
        index = FaissSQ(qtype=qtype)
        index.build(x, "l2")
        ids = index.search(q, K)[0]
        recalls.append(np.mean([len(set(a) & set(b)) for a, b in zip(ids, truth)]) / K)
    assert recalls[0] < recalls[1] <= recalls[2] and recalls[2] >= 0.99


def test_scalar_quantizer_parameters_are_checked_without_data():
    with pytest.raises(ConfigError, match="qtype: expected one of fp16, bf16, 8bit") as info:
        FaissSQ(qtype="int8")
    assert info.value.path == "qtype"
    with pytest.raises(ConfigError, match="qtype"):
        FaissHNSWSQ(qtype="16bit")
    with pytest.raises(ConfigError, match="M: expected an integer >= 2, got 1"):
        FaissHNSWSQ(M=1)
    with pytest.raises(ConfigError, match="ef_construction: expected an integer >= 1"):
        FaissHNSWSQ(ef_construction=0)
    with pytest.raises(ConfigError, match="ef: expected an integer >= 1, got 0"):
        FaissHNSWSQ.check_search({"ef": 0})
    with pytest.raises(ConfigError, match="unknown parameter"):
        FaissSQ.check_search({"ef": 10})
    assert FaissHNSWSQ(qtype="4bit", M=8).get_params()["qtype"] == "4bit"


# -- binary -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", BINARY)
def test_binary_search_matches_numpy_hamming(cls, data):
    x, q = data
    codes = Binary().fit(x).transform(x)
    q_codes = Binary().fit(x).transform(q)
    build_params, search_params = GENEROUS_BINARY[cls]
    index = cls(threads=1, **build_params)
    index.build(codes, "l2", train=x)
    ids = index.search(q_codes, K, **search_params)[0]
    dist = hamming(q_codes, codes)
    assert tie_aware_recall(ids, dist, K) >= 0.99
    if cls is FaissBinaryFlat:  # exact: the returned distances are the k smallest, sorted
        returned = np.take_along_axis(dist, ids, axis=1)
        assert np.array_equal(returned, np.sort(dist, axis=1)[:, :K])


@pytest.mark.parametrize("cls", BINARY)
def test_binary_float_input_is_binarized_like_the_quantizer(cls, data):
    x, q = data
    build_params, search_params = GENEROUS_BINARY[cls]
    from_floats, from_codes = cls(threads=1, **build_params), cls(threads=1, **build_params)
    from_floats.build(x, "cos")
    quantizer = Binary().fit(x)
    from_codes.build(quantizer.transform(x), "l2", train=x)
    assert np.array_equal(stored_binary_codes(from_floats), stored_binary_codes(from_codes))
    assert np.array_equal(from_floats.search(q, K, **search_params)[0],
                          from_codes.search(quantizer.transform(q), K, **search_params)[0])


def stored_binary_codes(index) -> np.ndarray | None:
    """The codes a flat or HNSW binary index stores (None for IVF, whose lists reorder them)."""
    import faiss

    if isinstance(index, FaissBinaryIVF):
        return None
    flat = index.index_ if isinstance(index, FaissBinaryFlat) else \
        faiss.downcast_IndexBinary(index.index_.storage)
    return faiss.vector_to_array(flat.xb)


@pytest.mark.parametrize("d", [64, 61])
@pytest.mark.parametrize("cls", BINARY)
def test_binary_bytes_per_vector(cls, d, data):
    x = data[0][:, :d]
    index = cls(threads=1, **GENEROUS_BINARY[cls][0])
    report = index.build(x, "l2")
    assert report.code_bytes_per_vector == (d + 7) // 8 and report.compresses
    assert index.nbytes() >= len(x) * ((d + 7) // 8)
    if cls is FaissBinaryFlat:
        assert index.nbytes() < len(x) * ((d + 7) // 8) + 1024


def test_binary_ivf_nprobe_trades_recall(data):
    x, q = data
    index = FaissBinaryIVF(nlist=32, threads=1)
    index.build(x, "l2")
    dist = hamming(np.packbits(q > 0, axis=1), np.packbits(x > 0, axis=1))
    low = tie_aware_recall(index.search(q, K, nprobe=1)[0], dist, K)
    high = tie_aware_recall(index.search(q, K, nprobe=32)[0], dist, K)
    assert low < 0.9 and high == 1.0


def test_binary_input_errors(data):
    x, q = data
    index = FaissBinaryFlat()
    index.build(np.packbits(x > 0, axis=1), "l2")
    with pytest.raises(DataError, match="expected packed codes of 8 bytes"):
        index.search(np.packbits(q[:, :40] > 0, axis=1), K)[0]
    assert index.search(q, K)[0].shape == (len(q), K)  # floats of 64 dims give 8-byte codes
    with pytest.raises(DataError, match="at least one base vector"):
        FaissBinaryFlat().build(np.empty((0, 8), np.uint8), "l2")
    with pytest.raises(DataError, match="train set has 10 vectors; expected at least 16"):
        FaissBinaryIVF(nlist=16).build(x, "l2", train=x[:10])
    with pytest.raises(ConfigError, match="metric: expected one of"):
        FaissBinaryFlat().build(x, "hamming")


def test_binary_parameters_are_checked_without_data():
    with pytest.raises(ConfigError, match="nlist: expected an integer >= 1, got 0"):
        FaissBinaryIVF(nlist=0)
    with pytest.raises(ConfigError, match="nprobe: expected an integer >= 1"):
        FaissBinaryIVF.check_search({"nprobe": 0})
    with pytest.raises(ConfigError, match="M: expected an integer >= 2"):
        FaissBinaryHNSW(M="x")
    with pytest.raises(ConfigError, match="did you mean 'ef'"):
        FaissBinaryHNSW.check_search({"efs": 3})
    with pytest.raises(ConfigError, match="unknown parameter"):
        FaissBinaryFlat(nlist=4)
    for cls in BINARY:
        assert cls.accepts == {"binary"}


def test_binary_hnsw_keeps_insertion_order_deterministically(data):
    x, q = data
    first, again = FaissBinaryHNSW(M=8, seed=3), FaissBinaryHNSW(M=8, seed=3)
    report = first.build(x, "l2")
    again.build(x, "l2")
    assert first.honours_order and report.threads == 1 and report.deterministic
    assert np.array_equal(first.search(q, K, ef=20)[0], again.search(q, K, ef=20)[0])


# -- through the runner -----------------------------------------------------------------------

EXPERIMENT = """
name: native
k: 10
datasets:
  - synthetic: {n_base: 1200, n_queries: 30, dim: 40, intrinsic_dim: 8}
pipelines:
  - [float16: {}]
  - [binary: {}]
indexes:
  - faiss_sq: {build: {qtype: fp16}}
  - hnswlib: {build: {M: 8, ef_construction: 64}, search: {ef: 64}}
  - faiss_binary_flat: {}
orderings: [original]
"""


def test_runner_labels_native_and_simulated(tmp_path):
    frame = run_frame(tmp_path, EXPERIMENT, "native.yaml")
    by_index = frame.set_index(["index", frame["pipeline"].str.contains("float16")])
    fp16_sq = by_index.loc[("faiss_sq", True)]
    assert fp16_sq["quantization"] == "native" and fp16_sq["bytes_per_vector"] == 2 * 40
    assert fp16_sq["recall_index@10"] >= 0.99  # exact search over exactly vecbench's codes
    assert by_index.loc[("hnswlib", True)]["quantization"] == "simulated"
    binary_flat = by_index.loc[("faiss_binary_flat", False)]
    assert binary_flat["quantization"] == "native" and binary_flat["bytes_per_vector"] == 40 / 8
    assert binary_flat["index_bytes"] >= 1200 * 40 / 8
    # binary codes decoded to float32 and stored by faiss_sq at its own precision: what the
    # index stores is what counts
    faiss_sq = by_index.loc[("faiss_sq", False)]
    assert faiss_sq["quantization"] == "index" and faiss_sq["bytes_per_vector"] == 2 * 40
    assert len(frame) == 6  # 2 pipelines x 3 indexes, one search setting each
