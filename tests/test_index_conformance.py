"""Every registered index honours the protocol in ``vecbench.indexes.protocol``.

Each index declares the parameters it is exercised with on its own class (``conformance``: build
and search parameters at which it must be (nearly) exact on small data, and the modules it
needs), so a newly registered index needs no entry here.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from vecbench.errors import ConfigError, DataError
from vecbench.indexes.base import as_vectors
from vecbench.indexes.engine_base import EngineIndex
from vecbench.indexes.protocol import BuildReport
from vecbench.registry import indexes

#: Binary indexes: they index sign bits (float input is binarized) and rank by Hamming distance,
#: so they accept "binary" codes rather than float32 and cannot follow l2/ip/cos; their recall
#: is judged against exact Hamming kNN (ties included) in tests/test_native_indexes.py.
HAMMING = ("faiss_binary_flat", "faiss_binary_hnsw", "faiss_binary_ivf")
#: Indexes whose build takes an HNSW ``M``.
WITH_M = ("hnswlib", "faiss_hnsw", "usearch")
METRICS = ("l2", "ip", "cos")
#: Database engines: their suite is tests/test_engines_conformance.py (the build-report protocol)
ENGINES = tuple(name for name in indexes.names() if issubclass(indexes.get(name), EngineIndex))
NAMES = [name for name in indexes.names() if name not in ENGINES]
K = 10


def generous(name: str) -> tuple[dict, dict]:
    """The index's own conformance parameters; its cases skip when a module it needs is
    missing."""
    conformance = indexes.get(name).conformance
    missing = [module for module in conformance.needs if importlib.util.find_spec(module) is None]
    if missing:
        pytest.skip(f"{name} needs {', '.join(missing)}, which is not installed")
    return conformance.build, conformance.search


def build(name: str, x: np.ndarray, metric: str = "l2", **overrides) -> object:
    build_params, _ = generous(name)
    index = indexes.get(name)(**{"threads": 1, **build_params, **overrides})
    index.build(x, metric)
    return index


def exact_knn(x: np.ndarray, q: np.ndarray, metric: str, k: int) -> np.ndarray:
    """Ground truth by numpy alone, so it does not share code with the indexes under test."""
    x, q = x.astype(np.float64), q.astype(np.float64)
    if metric == "cos":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    if metric == "l2":
        score = -((q**2).sum(1)[:, None] - 2 * q @ x.T + (x**2).sum(1)[None, :])
    else:
        score = q @ x.T
    return np.argsort(-score, axis=1, kind="stable")[:, :k]


def recall(ids: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(row) & set(true)) / truth.shape[1]
                          for row, true in zip(ids, truth)]))


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """Gaussian directions with norms spread over 16x, so l2, ip and cos neighbours differ."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2000, 32)) * rng.uniform(0.25, 4.0, (2000, 1))
    q = rng.standard_normal((100, 32))
    return x.astype(np.float32), q.astype(np.float32)


@pytest.fixture(scope="module")
def truth(data) -> dict[str, np.ndarray]:
    x, q = data
    return {metric: exact_knn(x, q, metric, K) for metric in METRICS}


@pytest.fixture(scope="module")
def built(data):
    """Indexes built with generous params, shared by the tests of this module (read-only)."""
    cache: dict[tuple[str, str], object] = {}

    def get(name: str, metric: str = "l2") -> object:
        if (name, metric) not in cache:
            cache[name, metric] = build(name, data[0], metric)
        return cache[name, metric]
    return get


@pytest.mark.parametrize("name", NAMES)
def test_every_registered_index_declares_its_conformance_params(name):
    cls = indexes.get(name)
    assert "conformance" in vars(cls), f"{name}: declare conformance = Conformance(...) on it"
    assert "flat" in NAMES and "hnswlib" in NAMES  # the registry was loaded at all


def test_metrics_disagree_on_this_data(truth):
    """Precondition of the metric test: each metric's neighbours differ from the others'."""
    for a in METRICS:
        for b in METRICS:
            if a != b:
                assert recall(truth[a], truth[b]) < 0.5


@pytest.mark.parametrize("name", NAMES)
def test_protocol_attributes(name):
    cls = indexes.get(name)
    assert isinstance(cls.accepts, frozenset)
    assert ("binary" if name in HAMMING else "float32") in cls.accepts
    assert isinstance(cls.honours_order, bool)
    given = generous(name)[1]
    checked = cls.check_search(dict(given))
    assert checked == given  # normalized, no defaults added: results record what was asked
    assert {key: type(value) for key, value in checked.items()} == \
        {key: type(value) for key, value in given.items()}


@pytest.mark.parametrize("name", NAMES)
def test_search_returns_int64_ids_of_base_rows(name, built, data):
    x, q = data
    ids = built(name).search(q, K, **generous(name)[1])[0]
    assert ids.shape == (len(q), K) and ids.dtype == np.int64 and ids.flags.c_contiguous
    assert ids.min() >= 0 and ids.max() < len(x)
    assert all(len(set(row)) == K for row in ids)
    # one query, float64 and not contiguous: converted, same answer as in the batch
    one = built(name).search(np.asfortranarray(q[3:4].astype(np.float64)), K,
                             **generous(name)[1])[0]
    assert one.shape == (1, K) and set(one[0]) == set(ids[3])


@pytest.mark.parametrize("name", NAMES)
def test_pads_with_minus_one_when_k_exceeds_base(name, data):
    x, q = data
    small = x[:100]
    ids = build(name, small).search(q[:5], 120, **generous(name)[1])[0]
    assert ids.shape == (5, 120) and ids.dtype == np.int64
    assert (ids[:, 100:] == -1).all()
    for row in ids:
        assert sorted(row[:100]) == list(range(100))


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("name", NAMES)
def test_recall_follows_the_metric(name, metric, built, data, truth):
    if name in HAMMING:
        pytest.skip("Hamming distance whatever the metric: judged in tests/test_native_indexes.py")
    ids = built(name, metric).search(data[1], K, **generous(name)[1])[0]
    assert recall(ids, truth[metric]) >= 0.99
    for other in METRICS:
        if other != metric:  # tracks its own metric, not another one
            assert recall(ids, truth[other]) < 0.5


@pytest.mark.parametrize("name", NAMES)
def test_cos_does_not_modify_the_callers_vectors(name, data):
    x, q = data
    x_before, q_before = x[:300].copy(), q.copy()
    x_small = x[:300].copy()
    index = build(name, x_small, "cos")
    index.search(q, K, **generous(name)[1])[0]
    assert np.array_equal(x_small, x_before) and np.array_equal(q, q_before)


@pytest.mark.parametrize("name", NAMES)
def test_searcher_gives_what_search_gives(name, built, data):
    """searcher (what the runner times) answers as search on the same rows does, under cos
    with queries that are not unit-norm (normalized once, by the searcher), at any k."""
    index = built(name, "cos")
    _, q = data
    params = generous(name)[1]
    run = index.searcher(q, K, params)
    assert np.array_equal(run()[0], index.search(q, K, **params)[0])  # k defaults to the given
    for rows, k in ((slice(None), K), (slice(3, 4), K), (slice(10, 30), 3), (slice(7, 8), 25)):
        ids, distances = run(rows, k)
        expected_ids, expected_distances = index.search(q[rows], k, **params)
        assert np.array_equal(ids, expected_ids) and ids.dtype == np.int64
        assert np.allclose(distances, expected_distances, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_searcher_keeps_the_checks(name, built, data):
    index = built(name)
    _, q = data
    with pytest.raises(ConfigError, match="unknown parameter"):  # once, not on every call
        index.searcher(q, K, {"bogus": 1})
    if name not in HAMMING:  # binary indexes binarize any width they are given
        with pytest.raises(DataError, match="dimension"):
            index.searcher(q[:, :5], K, generous(name)[1])
    with pytest.raises(ConfigError, match="k"):
        index.searcher(q, 0, generous(name)[1])
    with pytest.raises(ConfigError, match="k"):
        index.searcher(q, K, generous(name)[1])(slice(0, 1), 0)


@pytest.mark.parametrize("name", NAMES)
def test_nbytes_is_serialized_size(name, built, data):
    small = build(name, data[0][:200])
    assert 0 < small.nbytes() < built(name).nbytes()
    assert isinstance(built(name).nbytes(), int)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_single_threaded_gives_same_results(name, data):
    x, q = data
    # modest search settings, where build noise would show in the results
    first = build(name, x[:1000], seed=7).search(q, K)[0]
    again = build(name, x[:1000], seed=7).search(q, K)[0]
    assert np.array_equal(first, again)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_build_parameter_is_a_config_error(name):
    with pytest.raises(ConfigError, match="unknown parameter") as info:
        indexes.get(name)(bogus_param=1)
    assert info.value.path == "bogus_param"


@pytest.mark.parametrize("name", NAMES)
def test_bad_threads_and_seed_are_config_errors(name):
    with pytest.raises(ConfigError, match="threads: expected an integer >= 1, got 0"):
        indexes.get(name)(threads=0)
    with pytest.raises(ConfigError, match="seed: expected an integer"):
        indexes.get(name)(seed=-1)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_search_parameter_is_a_config_error(name, built, data):
    cls = indexes.get(name)
    with pytest.raises(ConfigError, match="unknown parameter") as info:
        cls.check_search({"bogus": 1})
    assert info.value.path == "bogus"
    with pytest.raises(ConfigError, match="unknown parameter"):
        built(name).search(data[1], K, bogus=1)[0]
    for known in generous(name)[1]:  # a near miss names the real parameter
        with pytest.raises(ConfigError, match=f"did you mean '{known}'"):
            cls.check_search({known + "x": 1})


@pytest.mark.parametrize("name", WITH_M)
def test_hnsw_parameters_are_checked_without_data(name):
    cls = indexes.get(name)
    with pytest.raises(ConfigError) as info:
        cls(M="sixteen")
    assert str(info.value) == "M: expected an integer >= 2, got 'sixteen'"
    with pytest.raises(ConfigError, match="M: expected an integer >= 2, got 1"):
        cls(M=1)
    with pytest.raises(ConfigError, match="ef_construction: expected an integer >= 1"):
        cls(ef_construction=0)
    with pytest.raises(ConfigError, match="ef: expected an integer >= 1, got 0"):
        cls.check_search({"ef": 0})


@pytest.mark.parametrize("name", NAMES)
def test_bad_metric_k_and_dimension(name, built, data):
    x, q = data
    with pytest.raises(ConfigError, match="metric: expected one of l2, ip, cos"):
        indexes.get(name)(**generous(name)[0]).build(x, "euclid")
    with pytest.raises(ConfigError, match="k: expected an integer >= 1"):
        built(name).search(q, 0, **generous(name)[1])[0]
    with pytest.raises(DataError, match="dimension 32, got 31"):
        built(name).search(q[:, :31], K, **generous(name)[1])[0]


# -- the build report and search's (ids, distances) --------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_build_returns_a_report_read_from_the_index(name, data):
    x = data[0][:300]
    index = indexes.get(name)(**{"threads": 1, **generous(name)[0]})
    report = index.build(x, "l2")
    assert isinstance(report, BuildReport)
    assert report.threads == 1 and report.deterministic is True
    assert report.code_bytes_per_vector > 0 and report.graph_bytes_per_vector >= 0
    assert isinstance(report.compresses, bool) and isinstance(report.details, dict)
    # codes and per-vector overhead never exceed what is serialized
    stored = len(x) * (report.code_bytes_per_vector + report.graph_bytes_per_vector)
    assert stored <= index.nbytes() + 1e-6 * stored
    assert not hasattr(index, "build_threads_") and not hasattr(index, "bytes_per_vector_")


@pytest.mark.parametrize("name", NAMES)
def test_search_returns_ids_and_own_space_distances(name, built, data):
    ids, distances = built(name).search(data[1], K, **generous(name)[1])
    assert ids.shape == (len(data[1]), K)
    if distances is not None:  # l2 (and Hamming): smaller is nearer, sorted nearest first
        assert distances.shape == ids.shape and distances.dtype == np.float32
        assert (np.diff(distances, axis=1) >= -1e-4 * np.abs(distances[:, 1:]) - 1e-6).all()


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_builds_repeat_at_two_threads(name, data):
    """A report that says deterministic at 2 threads is checked by building twice."""
    x, q = data
    first_index = indexes.get(name)(**{**generous(name)[0], "threads": 2, "seed": 3})
    report = first_index.build(x[:1000], "l2")
    assert report.threads in (1, 2)
    if not report.deterministic:
        pytest.skip(f"{name} says a {report.threads}-thread build is not repeatable")
    again = indexes.get(name)(**{**generous(name)[0], "threads": 2, "seed": 3})
    again.build(x[:1000], "l2")
    assert np.array_equal(first_index.search(q, K)[0], again.search(q, K)[0])
    assert first_index.nbytes() == again.nbytes()


@pytest.mark.parametrize("name", NAMES)
def test_cos_vectors_already_unit_norm_are_not_copied(name, data):
    """The loader normalizes cos data: an index must not copy it again (build or query)."""
    x, q = data
    unit = x[:300] / np.linalg.norm(x[:300], axis=1, keepdims=True)
    index = indexes.get(name)(**{"threads": 1, **generous(name)[0]})
    index.build(unit, "cos")
    plain = indexes.get(name)(**{"threads": 1, **generous(name)[0]})
    plain.build(x[:300], "cos")  # normalized by the adapter: the same index
    query = q[:1] / np.linalg.norm(q[:1])
    assert np.array_equal(index.search(query, K, **generous(name)[1])[0],
                          plain.search(q[:1], K, **generous(name)[1])[0])


def test_as_vectors_normalizes_only_what_needs_it():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 8)).astype(np.float32)
    unit = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    unit[7] = 0.0  # normalize_rows leaves zero rows zero
    assert as_vectors(unit, "v", "cos") is unit  # no copy
    normalized = as_vectors(x, "v", "cos")
    assert normalized is not x and np.allclose(np.linalg.norm(normalized, axis=1), 1, atol=1e-6)
    almost = unit.copy()
    almost[3] *= 1.01  # one row off by 2% in squared norm: the whole array is normalized
    fixed = as_vectors(almost, "v", "cos")
    assert fixed is not almost and np.isclose(np.linalg.norm(fixed[3]), 1, atol=1e-6)


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith(("faiss", "flat"))])
def test_nbytes_counts_without_a_serialized_copy_and_agrees_with_it(name, built):
    import faiss

    index = built(name)
    binary = isinstance(index.index_, faiss.IndexBinary)
    serialize = faiss.serialize_index_binary if binary else faiss.serialize_index
    assert index.nbytes() == serialize(index.index_).nbytes
