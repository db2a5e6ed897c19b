"""The one interface every index adapter satisfies, and the report its build returns.

The runner (``vecbench.run.stages``), the experiment loader and the pytest plugin use an index only
through :class:`Index`; nothing probes for optional attributes. ``tests/conformance/test_index_protocol.py``
checks every registered index against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

#: What an index may support natively beyond build and search (workloads of ``run/`` check
#: ``capabilities`` before they ask for one).
CAPABILITIES = frozenset({"filter", "insert", "delete"})

#: ``search(rows, k) -> (ids, distances or None)``: what :meth:`Index.searcher` returns.
Searcher = Callable[..., tuple]


@dataclass(frozen=True)
class BuildReport:
    """What a build did and what the index stores, read from the index itself."""

    threads: int                   # threads the build really used
    deterministic: bool            # same input, order, seed and threads -> same index
    code_bytes_per_vector: float   # bytes of vector codes stored per vector
    graph_bytes_per_vector: float = 0.0  # links / list ids / padding beyond the codes
    compresses: bool = False       # the index quantized the float32 it was given
    details: dict = field(default_factory=dict)  # engine facts worth recording


@dataclass(frozen=True)
class Conformance:
    """The small parameters the conformance suites exercise an index with, declared on the
    index so that adding one touches only its module and its own tests.

    At ``build`` and ``search`` recall@10 must be >= 0.99 on 2000 seeded vectors; at
    ``stingy`` (build, search), where given, clearly lower (the engine searched its index, not
    the whole table). ``needs``: modules that must be importable, else the cases are skipped
    naming them. ``variants``: (label, Conformance) cases of other configurations (an engine's
    other method), run as ``NAME_label``."""

    build: dict = field(default_factory=dict)
    search: dict = field(default_factory=dict)
    stingy: tuple[dict, dict] | None = None
    needs: tuple[str, ...] = ()
    variants: tuple[tuple[str, Conformance], ...] = ()


@runtime_checkable
class Index(Protocol):
    """An index adapter: constructed from its build parameters (validated without data), built
    once, searched many times, closed.

    - ``accepts``: code kinds it indexes natively (``float32``, ``fp16``, ``binary``...), decided
      by its parameters; the runner hands it codes of those kinds, decoded float32 otherwise.
    - ``capabilities``: which of :data:`CAPABILITIES` it supports natively. ``filter``:
      ``attach_filters(filters)`` before build, then ``filtered_searcher(queries, k, params,
      place)`` searches with the library's own filter (``vecbench.run.filtered`` uses them).
      ``insert`` / ``delete``: a runbook (:mod:`vecbench.run.runbook`) asks them only of an
      index declaring them.
    - ``build``: rows get ids 0..n-1 in the order given (``threads`` governs the build only).
    - ``searcher(queries, k, params)``: queries and parameters checked once; the returned
      ``search(rows, k=k)`` answers ``queries[rows]`` as ``(ids (n, k) int64 -1 padded,
      distances or None)``. It is what the runner times, and ``search`` goes through it.
    - ``nbytes()``: serialized size, counted without a serialized copy.
    - ``insert(x, ids)``: adds rows of ``x`` (as given to build) under the int64 ``ids`` (never
      in use) to the built index; ``delete(ids)`` removes ids present; both only with the
      capability declared, else ConfigError. ``compact()`` runs the engine's own upkeep after
      changes (pgvector VACUUM, LanceDB optimize) and says whether there was any.
    - ``close()`` (also ``with index:``) releases what the build acquired; idempotent.
    """

    name: str
    accepts: frozenset
    capabilities: frozenset
    params: tuple      # build parameter declarations (vecbench.core.params.Param)
    search_params: tuple
    conformance: Conformance

    @classmethod
    def check_search(cls, params: dict) -> dict: ...

    def check_search_for(self, params: dict) -> dict: ...

    def build(self, x: Any, metric: str, *, train: Any = None,
              threads: int | None = None) -> BuildReport: ...

    def searcher(self, queries: Any, k: int, params: dict) -> Searcher: ...

    def search(self, q: Any, k: int, **search_params: Any) -> tuple: ...

    def nbytes(self) -> int: ...

    def insert(self, x: Any, ids: Any) -> None: ...

    def delete(self, ids: Any) -> None: ...

    def compact(self) -> bool: ...

    def close(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: Any) -> None: ...
