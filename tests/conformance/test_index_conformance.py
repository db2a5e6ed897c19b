"""Every registered index honours the protocol in ``vecbench.indexes.protocol``.

``test_conformance`` runs the checks of ``vecbench.conformance.indexes`` (what ``vecbench check
NAME`` runs, for a plugin's index too) on every registered index; the other tests add what the
built-in adapters promise beyond them.

Each index declares the parameters it is exercised with on its own class (``conformance``: build
and search parameters at which it must be (nearly) exact on small data, and the modules it
needs), so a newly registered index needs no entry here.
"""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest

from vecbench.conformance import Skip
from vecbench.conformance import indexes as conformance
from vecbench.core.errors import ConfigError, DataError
from vecbench.indexes.base import as_vectors
from vecbench.indexes.engine_base import EngineIndex
from vecbench.indexes.protocol import BuildReport
from vecbench.core.registry import indexes

#: Binary indexes: they index sign bits (float input is binarized) and rank by Hamming distance,
#: so they accept "binary" codes rather than float32 and cannot follow l2/ip/cos; their recall
#: is judged against exact Hamming kNN (ties included) in tests/unit/test_native_indexes.py.
HAMMING = ("faiss_binary_flat", "faiss_binary_hnsw", "faiss_binary_ivf")
#: Indexes whose build takes an HNSW ``M``.
WITH_M = ("hnswlib", "faiss_hnsw", "usearch")
METRICS = ("l2", "ip", "cos")
#: Database engines: their suite is tests/conformance/test_engines_conformance.py (the build-report protocol)
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


exact_knn = conformance.exact_knn  # numpy alone: no code shared with the indexes
recall = conformance.recall


@pytest.fixture(scope="module")
def subjects():
    """One conformance subject per index: its builds are shared by the tests of this module."""
    cache: dict[str, conformance.Subject] = {}

    def get(name: str) -> conformance.Subject:
        generous(name)  # skips, naming what is missing
        if name not in cache:
            cache[name] = conformance.subjects(name)[0][1]
        return cache[name]
    yield get
    for subject in cache.values():
        subject.close()


@pytest.fixture(scope="module")
def built(subjects):
    """Indexes built with generous params on ``data``, shared by the tests (read-only)."""
    return lambda name, metric="l2": subjects(name).built(metric)


@pytest.mark.parametrize("check", list(conformance.CHECKS))
@pytest.mark.parametrize("name", NAMES)
def test_conformance(name, check, subjects):
    """The checks ``vecbench check NAME`` runs."""
    try:
        conformance.CHECKS[check](subjects(name))
    except Skip as skip:
        pytest.skip(str(skip))


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
    # hnswlib's declaration bounds M by the 10000 hnswlib would silently cap it at
    bounds = "in [2, 10000]" if name == "hnswlib" else ">= 2"
    assert str(info.value) == f"M: expected an integer {bounds}, got 'sixteen'"
    with pytest.raises(ConfigError, match=re.escape(f"M: expected an integer {bounds}, got 1")):
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
