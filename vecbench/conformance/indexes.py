"""Index conformance: the protocol of ``vecbench.indexes.protocol`` on small seeded data, at the
parameters the index declares (``conformance``). ``tests/conformance/test_index_conformance.py`` and
``tests/conformance/test_engines_conformance.py`` run these on every registered index; their own tests add
what only the built-ins promise (exact messages, determinism, faiss byte counts).
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any

import numpy as np

from vecbench.conformance import Skip
from vecbench.core.errors import ConfigError, DataError
from vecbench.indexes.protocol import CAPABILITIES, BuildReport, Conformance, Index
from vecbench.core.registry import indexes

METRICS = ("l2", "ip", "cos")
K = 10
#: recall@K the declared (generous) parameters must reach on :func:`data`.
RECALL_FLOOR = 0.99
#: Rows of the small builds (LanceDB's 8-bit PQ trains only on 256 vectors or more).
SMALL = 300


@functools.lru_cache(maxsize=1)
def data() -> tuple[np.ndarray, np.ndarray]:
    """2000 Gaussian directions with norms spread over 16x (so l2, ip and cos neighbours
    differ) and 100 queries, shared by every subject (``cos_leaves_input`` checks that no
    index writes into what it is given)."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2000, 32)) * rng.uniform(0.25, 4.0, (2000, 1))).astype(np.float32)
    q = rng.standard_normal((100, 32)).astype(np.float32)
    return x, q


def exact_knn(x: np.ndarray, q: np.ndarray, metric: str, k: int) -> np.ndarray:
    """Ground truth by numpy alone, so it shares no code with the indexes under test."""
    x, q = x.astype(np.float64), q.astype(np.float64)
    if metric == "cos":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    if metric == "l2":
        score = -((q**2).sum(1)[:, None] - 2 * q @ x.T + (x**2).sum(1)[None, :])
    else:
        score = q @ x.T
    return np.argsort(-score, axis=1, kind="stable")[:, :k]


@functools.lru_cache(maxsize=None)
def truth(metric: str) -> np.ndarray:
    x, q = data()
    return exact_knn(x, q, metric, K)


def recall(ids: np.ndarray, true: np.ndarray) -> float:
    return float(np.mean([len(set(row) & set(true_row)) / true.shape[1]
                          for row, true_row in zip(ids, true)]))


class Subject:
    """One index configuration under test, with its builds on :func:`data` cached by metric
    (read-only: checks that change an index build their own)."""

    def __init__(self, name: str, conformance: Conformance):
        self.name = name
        self.cls = indexes.get(name)
        self.conformance = conformance
        self._built: dict[str, Any] = {}

    @property
    def search_params(self) -> dict:
        return dict(self.conformance.search)

    @property
    def floats(self) -> bool:
        """Whether it indexes float32 (binary indexes binarize what they get, and rank by
        Hamming distance whatever the metric)."""
        return "float32" in self.cls.accepts

    def make(self, **overrides: Any) -> Any:
        return self.cls(**{"threads": 1, **self.conformance.build, **overrides})

    def built(self, metric: str = "l2") -> Any:
        if metric not in self._built:
            index = self.make()
            try:
                index.build(data()[0], metric)
            except ConfigError as exc:
                if metric == "l2":
                    raise
                raise Skip(f"does not accept metric {metric} ({exc})") from None
            self._built[metric] = index
        return self._built[metric]

    def search(self, index: Any, q: np.ndarray, k: int = K) -> tuple:
        return index.search(q, k, **self.search_params)

    def close(self) -> None:
        for index in self._built.values():
            index.close()
        self._built.clear()


def subjects(name: str) -> list[tuple[str, Subject]]:
    """The index at its declared conformance parameters, then each declared variant."""
    declared = indexes.get(name).conformance
    return [("", Subject(name, declared))] + [(label, Subject(name, variant))
                                              for label, variant in declared.variants]


def prepare(subject: Subject) -> None:
    """Skip every check of an index whose modules are not installed."""
    needs = subject.cls.conformance.needs
    missing = [module for module in needs if importlib.util.find_spec(module) is None]
    if missing:
        raise Skip(f"needs {', '.join(missing)}, which is not installed")


def check_protocol(s: Subject) -> None:
    index = s.make()
    assert isinstance(index, Index), "does not satisfy vecbench.indexes.protocol.Index"
    assert isinstance(s.cls.accepts, frozenset) and isinstance(index.accepts, frozenset), \
        "accepts is not a frozenset"
    assert isinstance(index.capabilities, frozenset) and index.capabilities <= CAPABILITIES, \
        f"capabilities {index.capabilities!r} not a frozenset within {sorted(CAPABILITIES)}"
    assert isinstance(s.conformance, Conformance), "conformance is not a Conformance"
    checked = s.cls.check_search(s.search_params)
    assert checked == s.search_params, \
        f"check_search({s.search_params}) gave {checked}: expected them as given, no defaults"


def check_build_report(s: Subject) -> None:
    x = data()[0][:SMALL]
    with s.make() as index:
        report = index.build(x, "l2")
        assert isinstance(report, BuildReport), f"build returned {type(report).__name__}, " \
                                                "expected a BuildReport"
        assert isinstance(report.threads, int) and report.threads >= 1, "threads < 1"
        assert report.code_bytes_per_vector > 0, "code_bytes_per_vector <= 0"
        assert report.graph_bytes_per_vector >= 0, "graph_bytes_per_vector < 0"
        assert isinstance(report.compresses, bool) and isinstance(report.details, dict)
        stored = len(x) * (report.code_bytes_per_vector + report.graph_bytes_per_vector)
        assert stored <= index.nbytes() * (1 + 1e-6), \
            f"codes and links ({stored:.0f} bytes) exceed nbytes() ({index.nbytes()})"


def check_ids(s: Subject) -> None:
    x, q = data()
    ids = s.search(s.built(), q)[0]
    assert ids.shape == (len(q), K), f"ids of shape {ids.shape}, expected {(len(q), K)}"
    assert ids.dtype == np.int64 and ids.flags.c_contiguous, f"ids {ids.dtype}, expected int64"
    assert ids.min() >= 0 and ids.max() < len(x), "ids out of range 0..n-1"
    assert all(len(set(row)) == K for row in ids), "an id repeated within a row"
    # one query, float64 and not contiguous: converted, the same answer as in the batch
    one = s.search(s.built(), np.asfortranarray(q[3:4].astype(np.float64)))[0]
    assert one.shape == (1, K) and set(one[0]) == set(ids[3]), "one query answers differently"


def recall_check(metric: str):
    def check(s: Subject) -> None:
        if not s.floats:
            raise Skip(f"indexes {', '.join(sorted(s.cls.accepts))} codes, not float32")
        ids = s.search(s.built(metric), data()[1])[0]
        found = recall(ids, truth(metric))
        assert found >= RECALL_FLOOR, f"recall@{K} {found:.3f} < {RECALL_FLOOR} at the " \
                                      f"declared conformance parameters"
        for other in METRICS:  # it tracks its own metric, not another one
            if other != metric:
                wrong = recall(ids, truth(other))
                assert wrong < 0.5, f"results follow {other} (recall {wrong:.2f}), not {metric}"
    return check


def check_k_exceeds_base(s: Subject) -> None:
    x, q = data()
    with s.make() as index:
        index.build(x[:SMALL], "l2")
        ids = s.search(index, q[:5], SMALL + 20)[0]
    assert ids.shape == (5, SMALL + 20) and ids.dtype == np.int64, f"ids of shape {ids.shape}"
    assert (ids[:, SMALL:] == -1).all(), f"rows not padded with -1 beyond the {SMALL} vectors"
    assert all(sorted(row[:SMALL]) == list(range(SMALL)) for row in ids), \
        "k > n does not return every vector"


def check_cos_leaves_input(s: Subject) -> None:
    x, q = data()
    x_small, q_copy = x[:SMALL].copy(), q.copy()
    with s.make() as index:
        try:
            index.build(x_small, "cos")
        except ConfigError as exc:
            raise Skip(f"does not accept metric cos ({exc})") from None
        s.search(index, q_copy)
    assert np.array_equal(x_small, x[:SMALL]) and np.array_equal(q_copy, q), \
        "cos modified the caller's vectors"


def check_searcher(s: Subject) -> None:
    """searcher (what the runner times) answers as search does on the same rows, at any k."""
    index, q = s.built(), data()[1]
    run = index.searcher(q, K, s.search_params)
    assert np.array_equal(run()[0], s.search(index, q)[0]), "searcher() differs from search"
    for rows, k in ((slice(None), K), (slice(3, 4), K), (slice(10, 30), 3), (slice(7, 8), 25)):
        ids, distances = run(rows, k)
        expected_ids, expected_distances = s.search(index, q[rows], k)
        assert np.array_equal(ids, expected_ids), f"searcher ids differ at rows {rows}, k={k}"
        if distances is not None:
            assert np.allclose(distances, expected_distances, rtol=1e-5, atol=1e-6), \
                f"searcher distances differ at rows {rows}, k={k}"


def _raises(kind: type, what: str, call) -> None:
    try:
        call()
    except kind:
        return
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"{what}: raised {type(exc).__name__}, expected "
                             f"{kind.__name__}") from None
    raise AssertionError(f"{what}: accepted, expected {kind.__name__}")


def check_bad_params(s: Subject) -> None:
    """Bad parameters and inputs are ConfigError / DataError, never a library's own error."""
    index, (x, q) = s.built(), data()
    _raises(ConfigError, "an unknown build parameter", lambda: s.cls(bogus_param=1))
    _raises(ConfigError, "an unknown search parameter (check_search)",
            lambda: s.cls.check_search({"bogus": 1}))
    _raises(ConfigError, "an unknown search parameter (search)",
            lambda: index.search(q, K, bogus=1))
    _raises(ConfigError, "k = 0", lambda: s.search(index, q, 0))
    _raises(ConfigError, "metric 'euclid'", lambda: s.make().build(x[:50], "euclid"))
    if s.floats:  # binary indexes binarize any width they are given
        _raises(DataError, "queries of another dimension", lambda: s.search(index, q[:, :31]))


def check_nbytes(s: Subject) -> None:
    full = s.built().nbytes()
    assert isinstance(full, int) and full > 0, f"nbytes() = {full!r}, expected an int > 0"
    with s.make() as small:
        small.build(data()[0][:SMALL], "l2")
        assert 0 < small.nbytes() < full, "nbytes() does not grow with the data"


def check_close(s: Subject) -> None:
    with s.make() as index:
        assert index is not None, "__enter__ returned None, expected the index"
        index.build(data()[0][:SMALL], "l2")
        s.search(index, data()[1][:2])
        index.close()
    index.close()  # idempotent: after close and the with block's own


CHECKS = {
    "protocol": check_protocol,
    "build_report": check_build_report,
    "ids": check_ids,
    **{f"recall_{metric}": recall_check(metric) for metric in METRICS},
    "k_exceeds_base": check_k_exceeds_base,
    "cos_leaves_input": check_cos_leaves_input,
    "searcher": check_searcher,
    "bad_params": check_bad_params,
    "nbytes": check_nbytes,
    "close": check_close,
}
