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
arguments, never hidden state. ``threads`` (None = all cores) governs build and search.
"""

from vecbench.registry import indexes

indexes.register("flat", "vecbench.indexes.flat:FlatIndex")
indexes.register("hnswlib", "vecbench.indexes.hnswlib_index:HnswlibIndex")
indexes.register("faiss_hnsw", "vecbench.indexes.faiss_index:FaissHNSW")
indexes.register("faiss_ivf", "vecbench.indexes.faiss_index:FaissIVF")
indexes.register("faiss_ivfpq", "vecbench.indexes.faiss_index:FaissIVFPQ")
indexes.register("faiss_factory", "vecbench.indexes.faiss_index:FaissFactory")
