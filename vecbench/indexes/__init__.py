"""Index adapters. Importing this module registers the built-in indexes (lazily).

The interface every index implements (a protocol, not a base class):

    class SomeIndex:
        accepts: frozenset[str]        # code kinds indexed natively ("float32", "binary", "fp16", ...)
        honours_order: bool            # True where insertion order is preserved (graph indexes)
        def __init__(self, *, threads=None, seed=0, **build_params)   # validates, needs no data
        @classmethod
        def check_search(cls, params: dict) -> dict                   # validates search params
        def build(self, x, metric, *, train=None, threads=None) -> BuildReport   # l2 | ip | cos
        def search(self, q, k, **search_params) -> tuple[ids, distances | None]
        def nbytes(self) -> int                                        # serialized size in bytes

``BuildReport`` (``vecbench.indexes.base``, frozen) is what the build did and what the index
stores, read from the built index itself (never from a hand-kept list):

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

``search`` returns ``(ids, distances)``: ids (nq, k) int64, -1 padded; distances (nq, k) float32
in the index's own space (squared l2, inner product, Hamming, ...; inf where padded), or None
where the engine gives none. The single-query path is kept cheap: latency is measured through it.
Optional: ``bind_queries(queries, **search_params) -> search(rows, k)`` checks a query set and
its parameters once; the runner then times ``search(slice(i, i + 1), k)``, which returns the
tuple ``(ids, distances or None)`` (without it, the runner calls
``search(queries[rows], k, **search_params)``). ``IndexBase`` provides it.

Rows of ``x`` get ids 0..n-1 in the order given: the runner applies insertion orderings and maps
ids back, so an index never reorders and never sees an ordering. Search parameters are
arguments, never hidden state: a parameter left out of a call takes the library's default,
whatever an earlier call used.

Details the built-in adapters share (``vecbench.indexes.base``):

- ``metric``: ``l2``; ``ip`` (inner product, larger is nearer); ``cos`` (inner product of unit
  vectors: rows already unit-norm, as the loaders give them, are used as they are, checked with
  one pass over their norms; others are normalized as a copy, so the caller's arrays are never
  modified).
- ``search`` accepts any 2-D array of the built dimension (converted to float32) and any
  ``k >= 1``; when fewer than k results exist (k > n, or an approximate index finds fewer), rows
  are padded with -1 at the end.
- ``check_search`` returns the validated parameters, without adding defaults, so results record
  what was asked; unknown names raise ConfigError with a did-you-mean.
- ``honours_order`` may be set per instance where a build parameter decides it
  (``faiss_hnsw`` with ``keep_order: false``). Order holds exactly only in a single-threaded
  build (hnswlib inserts concurrently with more threads).
- ``seed`` seeds what the library lets one seed: HNSW level generators, k-means of IVF and PQ.
- ``nbytes()`` is the size of the serialized index, counted without holding a serialized copy
  (faiss ``write_index`` into a writer that only counts, hnswlib's ``index_file_size()``,
  USearch's ``serialized_length``), never a memory measurement.
- Every faiss-backed float index is a factory string plus its parameters through one builder
  (``vecbench.indexes.faiss_build``); its bytes come from ``vecbench.indexes.faiss_storage``.
"""

from vecbench.registry import indexes

indexes.register("flat", "vecbench.indexes.flat:FlatIndex")
indexes.register("hnswlib", "vecbench.indexes.hnswlib_index:HnswlibIndex")
indexes.register("faiss_hnsw", "vecbench.indexes.faiss_index:FaissHNSW")
indexes.register("faiss_ivf", "vecbench.indexes.faiss_index:FaissIVF")
indexes.register("faiss_ivfpq", "vecbench.indexes.faiss_index:FaissIVFPQ")
indexes.register("faiss_factory", "vecbench.indexes.faiss_factory:FaissFactory")
indexes.register("faiss_sq", "vecbench.indexes.faiss_sq:FaissSQ")
indexes.register("faiss_hnsw_sq", "vecbench.indexes.faiss_sq:FaissHNSWSQ")
indexes.register("faiss_binary_flat", "vecbench.indexes.binary:FaissBinaryFlat")
indexes.register("faiss_binary_hnsw", "vecbench.indexes.binary:FaissBinaryHNSW")
indexes.register("faiss_binary_ivf", "vecbench.indexes.binary:FaissBinaryIVF")
indexes.register("usearch", "vecbench.indexes.usearch_index:USearchIndex")  # optional dependency
indexes.register("pgvector", "vecbench.indexes.pgvector_index:PgvectorIndex")  # optional: engines
indexes.register("lancedb", "vecbench.indexes.lancedb_index:LanceDBIndex")  # optional: engines
indexes.register("chroma", "vecbench.indexes.chroma_index:ChromaIndex")  # optional: engines
indexes.register("faiss_rabitq", "vecbench.indexes.faiss_compressed:FaissRaBitQ")
indexes.register("faiss_pq", "vecbench.indexes.faiss_compressed:FaissPQ")
indexes.register("scann", "vecbench.indexes.scann_index:ScannIndex")  # optional dependency
