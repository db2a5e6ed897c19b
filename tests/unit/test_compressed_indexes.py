"""What every index stores, computed by hand, against what its build report reads from the index;
and the compressing families (faiss_rabitq, faiss_pq, scann) judged without exact re-ranking.

A newly registered index fails here until it has rows in ``EXPECTED``.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from vecbench.core.errors import ConfigError
from vecbench.core.registry import indexes
from helpers import run_frame

D = 384  # a MiniLM-sized dimension, as in issue 14
K = 10
HAVE_SCANN = importlib.util.find_spec("scann") is not None


def rabitq_code(d: int, bits: int) -> float:
    """RaBitQ's code: d sign bits and two float32 factors per vector; with more bits, a third
    (error-bound) float on the sign factors, (bits - 1) * d extra bits and two more floats."""
    sign = math.ceil(d / 8)
    return sign + 8 if bits == 1 else sign + 12 + math.ceil((bits - 1) * d / 8) + 8


#: (name, build params, expected code bytes per vector, compresses, graph bytes: exact or
#: a lower bound written ">=N").
EXPECTED: list[tuple[str, dict, float, bool, float | str]] = [
    ("flat", {}, 4 * D, False, 0.0),
    ("hnswlib", {"M": 8}, 4 * D, False, ">=68"),           # 2M level-0 links + count
    ("faiss_hnsw", {"M": 8}, 4 * D, False, ">=76"),        # 2M links + level + offset
    ("faiss_ivf", {"nlist": 16}, 4 * D, False, 8.0),       # the list's int64 ids
    ("faiss_ivfpq", {"nlist": 16, "m": 48, "nbits": 8}, 48, True, 8.0),
    ("faiss_ivfpq", {"nlist": 16, "m": 48, "nbits": 8, "refine": True}, 48 + 4 * D, True, 8.0),
    ("faiss_ivfpq", {"nlist": 16, "m": 48, "nbits": 8, "refine": "SQfp16"}, 48 + 2 * D, True,
     8.0),
    ("faiss_factory", {"factory": "IVF64,PQ48x4fs"}, 24, True, ">=8"),  # + block padding
    # "np": no polysemous training, which faiss runs by default for PQ96 and is slow
    ("faiss_factory", {"factory": "IVF64,PQ96np"}, 96, True, 8.0),
    ("faiss_factory", {"factory": "RaBitQ"}, rabitq_code(D, 1), True, 0.0),
    ("faiss_factory", {"factory": "IVF64,RaBitQ4"}, rabitq_code(D, 4), True, 8.0),
    ("faiss_factory", {"factory": "IVF64,PQ48x4fs,RFlat"}, 24 + 4 * D, True, ">=8"),
    ("faiss_factory", {"factory": "PCA64,Flat"}, 4 * 64, True, 0.0),
    ("faiss_factory", {"factory": "SQ8"}, D, True, 0.0),
    ("faiss_factory", {"factory": "HNSW16,Flat"}, 4 * D, False, ">=140"),
    ("faiss_sq", {"qtype": "fp16"}, 2 * D, True, 0.0),
    ("faiss_sq", {"qtype": "6bit"}, 3 * D / 4, True, 0.0),
    ("faiss_sq", {"qtype": "4bit"}, D / 2, True, 0.0),
    ("faiss_hnsw_sq", {"qtype": "8bit", "M": 8}, D, True, ">=76"),
    ("faiss_binary_flat", {}, D / 8, True, 0.0),           # floats binarized by the adapter
    ("faiss_binary_hnsw", {"M": 8}, D / 8, True, ">=76"),
    ("faiss_binary_ivf", {"nlist": 16}, D / 8, True, 8.0),
    ("usearch", {"dtype": "f32"}, 4 * D, False, ">=64"),
    ("usearch", {"dtype": "f16"}, 2 * D, True, ">=64"),
    ("usearch", {"dtype": "e4m3"}, D, True, ">=64"),
    ("usearch", {"dtype": "b1"}, D / 8, True, ">=64"),
    ("faiss_rabitq", {}, rabitq_code(D, 1), True, 0.0),
    ("faiss_rabitq", {"bits": 2}, rabitq_code(D, 2), True, 0.0),
    ("faiss_rabitq", {"bits": 9, "nlist": 16}, rabitq_code(D, 9), True, 8.0),
    ("faiss_rabitq", {"bits": 4, "fast_scan": True}, rabitq_code(D, 4), True, ">=0"),
    ("faiss_rabitq", {"fast_scan": True, "nlist": 16, "refine": True},
     rabitq_code(D, 1) + 4 * D, True, ">=8"),
    ("faiss_pq", {"m": 48, "nbits": 8}, 48, True, 0.0),
    ("faiss_pq", {"m": 96, "nbits": 4, "fast_scan": True}, 48, True, ">=0"),
    ("faiss_pq", {"m": 24, "nbits": 6}, 18, True, 0.0),
    ("faiss_pq", {"m": 48, "nbits": 4, "fast_scan": True, "nlist": 16, "refine": "SQ8"},
     24 + D, True, ">=8"),
    # OPQ (slow to fit at 384 dimensions on a small machine) is counted at 64 in the runner
    # test below: OPQ16 + PQ16x8 -> 16 bytes
    ("scann", {"num_leaves": 16, "dims_per_block": 2}, D / 2 * 0.5 + 4 * D, True, 4.0),
    ("scann", {"num_leaves": 16, "dims_per_block": 4, "reorder": "none"}, D / 4 * 0.5, True,
     4.0),
    ("scann", {"num_leaves": 0, "dims_per_block": 2, "reorder": "bfloat16"},
     D / 2 * 0.5 + 2 * D, True, 0.0),
]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """Clustered vectors: 40 centres in 384 dimensions, so IVF lists and codebooks mean
    something."""
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((40, D))
    x = centres[rng.integers(0, 40, 600)] + 0.6 * rng.standard_normal((600, D))
    q = centres[rng.integers(0, 40, 60)] + 0.6 * rng.standard_normal((60, D))
    return x.astype(np.float32), q.astype(np.float32)


@pytest.fixture(scope="module")
def truth(data) -> np.ndarray:
    flat = indexes.get("flat")(threads=1)
    flat.build(data[0], "l2")
    return flat.search(data[1], K)[0]


def recall(ids: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(ids, truth)]))


#: Engines behind a database: their stored bytes (per column type and index kind) are checked
#: against the engine's own size functions in their suites, where the engine runs.
CHECKED_IN_ENGINE_SUITES = {"pgvector": "tests/e2e/test_engines_pgvector.py",
                            "lancedb": "tests/e2e/test_engines_lancedb.py",
                            "chroma": "tests/e2e/test_engines_chroma.py"}


def test_every_registered_index_has_expected_bytes():
    missing = sorted(set(indexes.names()) - {name for name, *_ in EXPECTED}
                     - set(CHECKED_IN_ENGINE_SUITES))
    assert not missing, f"add {missing} to EXPECTED in {__file__}"


@pytest.mark.parametrize("name, params, code, compresses, graph", EXPECTED,
                         ids=[f"{n}-{'-'.join(f'{k}={v}' for k, v in p.items())}"
                              for n, p, *_ in EXPECTED])
def test_code_bytes_are_what_the_hand_says(name, params, code, compresses, graph, data):
    if name == "scann" and not HAVE_SCANN:
        pytest.skip("scann is not installed here (pip install scann; Linux, Python < 3.14)")
    index = indexes.get(name)(threads=1, **params)
    report = index.build(data[0], "l2")
    assert report.code_bytes_per_vector == pytest.approx(code)
    assert report.compresses is compresses
    if isinstance(graph, str):
        assert report.graph_bytes_per_vector >= float(graph[2:])
    else:
        assert report.graph_bytes_per_vector == pytest.approx(graph)
    # the serialized index holds at least the codes and per-vector overhead
    per_vector = report.code_bytes_per_vector + report.graph_bytes_per_vector
    assert index.nbytes() >= len(data[0]) * per_vector * 0.999


# -- the families, without exact re-ranking ------------------------------------------------


def build(name: str, x: np.ndarray, metric: str = "l2", **params):
    index = indexes.get(name)(threads=1, **params)
    index.build(x, metric)
    return index


def test_rabitq_more_bits_and_probes_find_more(data, truth):
    x, q = data
    one, four = build("faiss_rabitq", x), build("faiss_rabitq", x, bits=4)
    r1, r4 = recall(one.search(q, K)[0], truth), recall(four.search(q, K)[0], truth)
    assert 0.2 < r1 < r4 and r4 >= 0.85
    ivf = build("faiss_rabitq", x, bits=4, nlist=16)
    few, every = (recall(ivf.search(q, K, nprobe=p)[0], truth) for p in (1, 16))
    assert few < every and every == pytest.approx(r4, abs=0.05)
    # fast-scan: the same codes in a SIMD layout, about the same recall at qb 8
    fast = build("faiss_rabitq", x, bits=4, fast_scan=True)
    assert recall(fast.search(q, K, qb=8)[0], truth) == pytest.approx(r4, abs=0.05)
    # a query quantized to 1 bit ranks worse than one kept in float (qb 0)
    assert recall(four.search(q, K, qb=1)[0], truth) < recall(four.search(q, K, qb=0)[0], truth)


def test_rabitq_search_parameters_are_per_call(data, truth):
    x, q = data
    index = build("faiss_rabitq", x, nlist=16, refine=True)
    default = index.search(q, K)[0]
    deep = index.search(q, K, nprobe=16, k_factor=20)[0]
    assert recall(deep, truth) > recall(default, truth) and recall(deep, truth) >= 0.95
    assert np.array_equal(index.search(q, K)[0], default)  # nothing left behind
    fast = build("faiss_rabitq", x, fast_scan=True)
    built_qb = fast.search(q, K)[0]
    fast.search(q, K, qb=1)
    assert np.array_equal(fast.search(q, K)[0], built_qb)


def test_rabitq_default_qb_is_8_and_is_what_is_searched_and_recorded(data, truth):
    """A search without qb runs qb 8 (faiss alone would run 4), the checked parameters say so
    (what a unit's key and table hold), and 8 keeps float queries' recall (qb 0)."""
    from vecbench.indexes.faiss.compressed import DEFAULT_QB
    x, q = data
    cls = indexes.get("faiss_rabitq")
    assert DEFAULT_QB == 8 and cls.check_search({}) == {"qb": 8}
    assert cls.check_search({"qb": 0, "nprobe": 2}) == {"qb": 0, "nprobe": 2}
    one = build("faiss_rabitq", x)
    unset, eight, four = (one.search(q, K, **p)[1] for p in ({}, {"qb": 8}, {"qb": 4}))
    assert np.array_equal(unset, eight) and not np.array_equal(unset, four)
    float_recall = recall(one.search(q, K, qb=0)[0], truth)
    assert recall(one.search(q, K)[0], truth) == pytest.approx(float_recall, abs=0.02)


def test_pq_opq_fast_scan_and_ivf(data, truth):
    x, q = data
    plain = recall(build("faiss_pq", x, m=48, nbits=8).search(q, K)[0], truth)
    assert plain >= 0.5
    fast = recall(build("faiss_pq", x, m=96, nbits=4, fast_scan=True).search(q, K)[0], truth)
    assert fast >= 0.5  # same 48 bytes, 4-bit codes
    ivf = build("faiss_pq", x, m=48, nbits=4, fast_scan=True, nlist=16)
    few, every = (recall(ivf.search(q, K, nprobe=p)[0], truth) for p in (1, 16))
    assert few < every


@pytest.mark.skipif(not HAVE_SCANN, reason="scann is not installed (pip install scann)")
def test_scann_leaves_and_reordering(data, truth):
    x, q = data
    index = build("scann", x, num_leaves=16)
    one, every = (recall(index.search(q, K, leaves_to_search=n)[0], truth) for n in (1, 16))
    assert one < every and every >= 0.95
    no_reorder = build("scann", x, num_leaves=16, reorder="none")
    assert recall(no_reorder.search(q, K, leaves_to_search=16)[0], truth) < every
    shallow = recall(index.search(q, K, leaves_to_search=16, reorder_depth=K)[0], truth)
    assert shallow < every
    # ip: anisotropic quantization (threshold 0.2 by default) works on dot products
    flat = indexes.get("flat")(threads=1)
    flat.build(x, "ip")
    ip_truth = flat.search(q, K)[0]
    ip = build("scann", x, "ip", num_leaves=16)
    assert recall(ip.search(q, K, leaves_to_search=16)[0], ip_truth) >= 0.9
    one_query = ip.search(q[:1], K, leaves_to_search=16)[0]
    assert np.array_equal(one_query[0], ip.search(q, K, leaves_to_search=16)[0][0])


# -- errors: one line, the parameter named ----------------------------------------------------


@pytest.mark.parametrize("name, params, path, message", [
    ("faiss_rabitq", {"bits": 10}, "bits", r"expected an integer in \[1, 9\], got 10"),
    ("faiss_rabitq", {"fast_scan": "yes"}, "fast_scan", "expected true or false"),
    ("faiss_pq", {"fast_scan": True, "nbits": 8}, "nbits", "expected 4 with fast_scan"),
    ("faiss_pq", {"m": 0}, "m", "expected an integer >= 1"),
    ("scann", {"reorder": "int4"}, "reorder", "expected one of"),
    ("scann", {"dims_per_block": 0}, "dims_per_block", "expected an integer >= 1"),
])
def test_bad_build_parameters(name, params, path, message):
    if name == "scann" and not HAVE_SCANN:
        pytest.skip("scann is not installed")
    with pytest.raises(ConfigError, match=message) as info:
        indexes.get(name)(**params)
    assert info.value.path == path and "\n" not in str(info.value)


def test_parameters_that_do_not_apply_are_named(data):
    x, q = data
    flat_pq = build("faiss_pq", x[:400], m=48, nbits=4)
    with pytest.raises(ConfigError, match="nprobe applies only to an IVF index") as info:
        flat_pq.search(q, K, nprobe=4)
    assert info.value.path == "nprobe"
    with pytest.raises(ConfigError, match="k_factor applies only with refine") as info:
        flat_pq.search(q, K, k_factor=4)
    assert info.value.path == "k_factor"
    fast = build("faiss_rabitq", x[:400], fast_scan=True)
    with pytest.raises(ConfigError, match="expected 1..8 with fast_scan") as info:
        fast.search(q, K, qb=0)
    assert info.value.path == "qb"
    with pytest.raises(ConfigError, match=r"qb: expected an integer in \[0, 8\], got 9"):
        fast.search(q, K, qb=9)
    with pytest.raises(ConfigError, match="expected a divisor of the dimension 384") as info:
        build("faiss_pq", x[:400], m=50, nbits=4)
    assert info.value.path == "m"


# -- through the runner: the storage column is the index's ------------------------------------

EXPERIMENT = """
name: storage
k: 10
datasets:
  - synthetic: {n_base: 1500, n_queries: 30, dim: 64, intrinsic_dim: 12}
pipelines:
  - []
indexes:
  - faiss_factory: {build: {factory: ["IVF16,PQ32x4fs", "RaBitQ", "IVF16,Flat"]}}
  - faiss_rabitq: {build: {bits: 4}}
  - faiss_pq: {build: {m: 16, nbits: 8, opq: true, nlist: 16}, search: {nprobe: 16}}
orderings: [original]
"""


def test_runner_reports_what_the_index_stores(tmp_path):
    frame = run_frame(tmp_path, EXPERIMENT, "storage.yaml")
    expected = {("faiss_factory", "IVF16,PQ32x4fs"): (16, "index"),
                ("faiss_factory", "RaBitQ"): (rabitq_code(64, 1), "index"),
                ("faiss_factory", "IVF16,Flat"): (4 * 64, "none"),
                ("faiss_rabitq", None): (rabitq_code(64, 4), "index"),
                ("faiss_pq", None): (16, "index")}
    for (name, factory), (code, quantization) in expected.items():
        row = next(row for _, row in frame.iterrows() if row["index"] == name
                   and (factory is None or row["build.factory"] == factory))
        assert row["bytes_per_vector"] == pytest.approx(code), (name, factory)
        assert row["quantization"] == quantization, (name, factory)
