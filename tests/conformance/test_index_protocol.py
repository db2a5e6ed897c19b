"""Every registered index satisfies ``vecbench.indexes.protocol.Index`` fully: the runtime
check (names present) and the signatures the runner and the experiment loader call."""

from __future__ import annotations

import importlib.util
import inspect

import numpy as np
import pytest

from vecbench.indexes.protocol import CAPABILITIES, BuildReport, Conformance, Index
from vecbench.core.registry import indexes

NAMES = indexes.names()


def made(name: str):
    cls = indexes.get(name)
    missing = [m for m in cls.conformance.needs if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{name} needs {', '.join(missing)}, which is not installed")
    return cls(**{"threads": 1, **cls.conformance.build})


def parameters(function) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("name", NAMES)
def test_satisfies_the_protocol(name):
    index = made(name)
    assert isinstance(index, Index)
    assert isinstance(index.accepts, frozenset) and isinstance(index.conformance, Conformance)
    assert isinstance(index.capabilities, frozenset) and index.capabilities <= CAPABILITIES
    for method in ("build", "searcher", "search", "close", "check_search_for", "nbytes"):
        ours = parameters(getattr(index, method))
        assert ours == parameters(getattr(Index, method))[1:], (name, method)  # less self
    assert parameters(type(index).check_search) == parameters(Index.check_search)


def test_flat_through_the_protocol_alone():
    """Build, searcher, search, close and ``with``: what the runner does, nothing else."""
    rng = np.random.default_rng(0)
    x, q = rng.standard_normal((50, 8), dtype=np.float32), rng.standard_normal((3, 8),
                                                                            dtype=np.float32)
    with indexes.get("flat")(threads=1) as index:
        assert isinstance(index.build(x, "l2"), BuildReport)
        run = index.searcher(q, 5, {})
        assert np.array_equal(run()[0], index.search(q, 5)[0])
        assert np.array_equal(run(slice(1, 2), 2)[0], index.search(q[1:2], 2)[0])
    index.close()  # idempotent


def test_an_index_registers_from_its_own_module_without_being_imported(tmp_path):
    """Adding an index is its module (a REGISTER literal) and its test: no central table, and
    listing names imports nothing."""
    import sys
    from pathlib import Path

    from vecbench.core.registry import Registry, register_declared

    folder = tmp_path / "mypkg"
    (folder / "sub").mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "sub" / "ann.py").write_text(
        'raise ImportError("never imported")\nREGISTER = {"my_ann": "MyAnn", "my_ann2": "B"}\n')
    registry = Registry("index")
    register_declared(registry, "mypkg", folder)
    assert registry.names() == ["my_ann", "my_ann2"] and "mypkg.sub.ann" not in sys.modules
    assert registry._entries["my_ann"] == "mypkg.sub.ann:MyAnn"
    import vecbench.indexes

    assert "indexes.register(" not in Path(vecbench.indexes.__file__).read_text()  # no table
    assert set(indexes.names()) >= {"flat", "hnswlib", "faiss_pq", "pgvector", "scann"}
