"""Index adapters. Importing this module registers the built-in indexes (lazily).

The interface every index satisfies is :class:`vecbench.indexes.protocol.Index` (a
``typing.Protocol``: a base class is not required of third-party indexes); its build returns a
:class:`~vecbench.indexes.protocol.BuildReport`, read from the built index itself:

- ``threads``: threads the build really used (1 for ``faiss_hnsw`` with ``keep_order``, which
  adds one vector per call, whatever it was given).
- ``deterministic``: the same input, order, seed and thread count give the same index (hnswlib
  and USearch only single-threaded; a faiss HNSW only when added on one thread).
- ``code_bytes_per_vector``: bytes of vector codes stored per vector: 4 d for float32 flat and
  HNSW, faiss's ``code_size`` (PQ, SQ, RaBitQ with its per-vector factors; a refine index adds
  its refinement copy), the USearch storage type, d / 8 for binary codes.
- ``graph_bytes_per_vector``: what each vector costs beyond its codes: HNSW links and levels,
  IVF list ids, fast-scan block padding (0 where none).
- ``compresses``: the index quantized the float32 it was given (the runner then reports
  ``quantization: index`` and the index's code bytes); False when it was handed codes.
- ``details``: engine facts worth recording (factory string, faiss classes, dtype, qtype, ...).

``build``'s ``threads`` (None = the index's own ``threads``) governs the build only; the
constructor's ``threads`` (None = all cores) is the search thread count, so a caller that builds
in insertion order passes ``threads=1`` to build and still searches on every core.

``searcher(queries, k, params)`` checks a query set and its parameters once and returns
``search(rows, k=k) -> (ids, distances or None)``: ids (n, k) int64, -1 padded; distances
(n, k) float32 in the index's own space (squared l2, inner product, Hamming, ...; inf where
padded), or None where the engine gives none. The runner times ``search(slice(i, i + 1), k)``;
``search(q, k, **params)`` takes the same path: the same checks (``q``'s on every call), then the
same per-setting search function, made once per (parameters, build, threads), so a public call
of one query costs a timed call plus the check of its query.

Rows of ``x`` get ids 0..n-1 in the order given: the runner applies insertion orderings and maps
ids back, so an index never reorders and never sees an ordering. Search parameters are
arguments, never hidden state: a parameter left out of a call takes the library's default,
whatever an earlier call used.

Details the built-in adapters share (``vecbench.indexes.base``):

- ``metric``: ``l2``; ``ip`` (inner product, larger is nearer); ``cos`` (inner product of unit
  vectors: rows already unit-norm, as the loaders give them, are used as they are, checked with
  one pass over their norms; others are normalized as a copy, so the caller's arrays are never
  modified).
- queries may be any 2-D array of the built dimension (converted to float32) and ``k >= 1``;
  when fewer than k results exist (k > n, or an approximate index finds fewer), rows are padded
  with -1 at the end.
- ``check_search`` returns the validated parameters, without adding defaults, so results record
  what was asked; unknown names raise ConfigError with a did-you-mean.
- ``honours_order`` (True where insertion order is preserved) may be set per instance where a
  build parameter decides it (``faiss_hnsw`` with ``keep_order: false``). Order holds exactly
  only in a single-threaded build (hnswlib inserts concurrently with more threads).
- ``seed`` seeds what the library lets one seed: HNSW level generators, k-means of IVF and PQ.
- ``nbytes()`` is the size of the serialized index, counted without holding a serialized copy
  (faiss ``write_index`` into a writer that only counts, hnswlib's ``index_file_size()``,
  USearch's ``serialized_length``), never a memory measurement.
- ``conformance``: the small parameters the conformance suites exercise the index with.
- Every faiss-backed index is one adapter over a table of families
  (``vecbench.indexes.faiss``); its bytes come from ``vecbench.indexes.faiss.storage``.
"""

from pathlib import Path

from vecbench.core.registry import indexes, register_declared

# each adapter module declares its names (``REGISTER = {"name": "Class"}``); read, not imported
register_declared(indexes, __name__, Path(__file__).parent)
