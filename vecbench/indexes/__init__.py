"""Index adapters. Importing this module registers the built-in indexes (lazily).

The interface every index implements (a protocol, not a base class):

    class SomeIndex:
        accepts: frozenset[str]        # code kinds indexed natively ("float32", "binary", "fp16", ...)
        honours_order: bool            # True where insertion order is preserved (graph indexes)
        def __init__(self, *, threads=None, seed=0, **build_params)   # validates, needs no data
        @classmethod
        def check_search(cls, params: dict) -> dict                   # validates search params
        def build(self, x, metric, *, train=None) -> None              # metric: l2 | ip | cos
        def search(self, q, k, **search_params) -> np.ndarray          # (nq, k) int64, -1 padded
        def nbytes(self) -> int                                        # serialized size in bytes

Rows of ``x`` get ids 0..n-1 in the order given: the runner applies insertion orderings and maps
ids back, so an index never reorders and never sees an ordering. Search parameters are
arguments, never hidden state: a parameter left out of a call takes the library's default,
whatever an earlier call used. ``threads`` (None = all cores) governs build and search; it is
read at each call, so it may be reassigned between build and search.

Details the built-in adapters share (``vecbench.indexes.base``):

- ``metric``: ``l2``; ``ip`` (inner product, larger is nearer); ``cos`` (inner product of
  normalized copies: the caller's arrays are never modified).
- ``search`` accepts any 2-D array of the built dimension (converted to float32) and any
  ``k >= 1``; when fewer than k results exist (k > n, or an approximate index finds fewer), rows
  are padded with -1 at the end.
- ``check_search`` returns the validated parameters, without adding defaults, so results record
  what was asked; unknown names raise ConfigError with a did-you-mean.
- ``honours_order`` may be set per instance where a build parameter decides it
  (``faiss_hnsw`` with ``keep_order: false``). Order holds exactly only in a single-threaded
  build (hnswlib inserts concurrently with more threads).
- ``build_threads_`` (after build) is the thread count the build really used: 1 for
  ``faiss_hnsw`` with ``keep_order`` (one vector per add call), whatever ``threads`` says.
- ``seed`` seeds what the library lets one seed: HNSW level generators, k-means of IVF and PQ.
- ``nbytes()`` is the size of the serialized index (faiss ``serialize_index``, hnswlib's saved
  file), never a memory measurement.
"""

from vecbench.registry import indexes

indexes.register("flat", "vecbench.indexes.flat:FlatIndex")
indexes.register("hnswlib", "vecbench.indexes.hnswlib_index:HnswlibIndex")
indexes.register("faiss_hnsw", "vecbench.indexes.faiss_index:FaissHNSW")
indexes.register("faiss_ivf", "vecbench.indexes.faiss_index:FaissIVF")
indexes.register("faiss_ivfpq", "vecbench.indexes.faiss_index:FaissIVFPQ")
indexes.register("faiss_factory", "vecbench.indexes.faiss_index:FaissFactory")
indexes.register("faiss_sq", "vecbench.indexes.faiss_sq:FaissSQ")
indexes.register("faiss_hnsw_sq", "vecbench.indexes.faiss_sq:FaissHNSWSQ")
indexes.register("faiss_binary_flat", "vecbench.indexes.binary:FaissBinaryFlat")
indexes.register("faiss_binary_hnsw", "vecbench.indexes.binary:FaissBinaryHNSW")
indexes.register("faiss_binary_ivf", "vecbench.indexes.binary:FaissBinaryIVF")
indexes.register("usearch", "vecbench.indexes.usearch_index:USearchIndex")  # optional dependency
indexes.register("pgvector", "vecbench.indexes.pgvector_index:PgvectorIndex")  # optional: engines
indexes.register("lancedb", "vecbench.indexes.lancedb_index:LanceDBIndex")  # optional: engines
indexes.register("chroma", "vecbench.indexes.chroma_index:ChromaIndex")  # optional: engines
