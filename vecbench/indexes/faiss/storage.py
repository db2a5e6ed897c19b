"""What a faiss index stores per vector, read from the built index's own structure.

Every faiss-backed adapter reports its bytes through :func:`faiss_storage`, whatever its factory
string, so an index that compresses float32 itself (PQ, OPQ, RaBitQ, SQ, fast-scan, refine...)
is counted from what faiss holds, not from a hand-kept list:

- code bytes per vector: ``code_size`` of the codes faiss keeps (RaBitQ's include its per-vector
  factors; an IVF's exclude the list number, which is implicit in the list); a refine index adds
  its refinement copy's codes to the base codes.
- graph bytes per vector: HNSW links (``neighbors``, 4 B each), levels (4 B) and offsets (8 B);
  IVF list ids (8 B); an IDMap's ids (8 B); the padding of fast-scan blocks (codes are stored
  in blocks of 32 vectors). Codebooks, centroids and headers are per index, not per vector:
  they show in ``nbytes()`` only.
- compresses: the codes searched first are smaller than the float32 vectors given (4 B per input
  dimension).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Storage:
    code: float            # bytes of codes stored per vector (all copies)
    graph: float = 0.0     # bytes per vector beyond the codes
    searched: float = 0.0  # bytes per vector of the codes the search scans first
    classes: list = field(default_factory=list)  # faiss classes, outermost first
    graph_batch_add: bool = False  # holds an HNSW graph (a multi-threaded add is not repeatable)


def faiss_storage(index: Any) -> Storage:
    """Bytes per vector of a built faiss index (float or binary), see the module docstring."""
    import faiss

    index = _downcast(faiss, index)
    n = max(int(index.ntotal), 1)
    name = type(index).__name__
    if isinstance(index, faiss.IndexPreTransform):
        inner = faiss_storage(index.index)
        return _wrapped(inner, name)
    if isinstance(index, (faiss.IndexIDMap, faiss.IndexIDMap2, faiss.IndexBinaryIDMap)):
        inner = faiss_storage(index.index)
        inner.graph += 8.0
        return _wrapped(inner, name)
    if isinstance(index, faiss.IndexRefine):
        base, refine = faiss_storage(index.base_index), faiss_storage(index.refine_index)
        return Storage(base.code + refine.code, base.graph + refine.graph, base.searched,
                       [name, *base.classes, *refine.classes], base.graph_batch_add)
    if isinstance(index, (faiss.IndexHNSW, faiss.IndexBinaryHNSW)):
        inner = faiss_storage(index.storage)
        hnsw = index.hnsw
        links = 4 * hnsw.neighbors.size() + 4 * hnsw.levels.size() + 8 * hnsw.offsets.size()
        inner.graph += links / n
        inner.graph_batch_add = True
        return _wrapped(inner, name)
    if isinstance(index, (faiss.IndexIVF, faiss.IndexBinaryIVF)):
        code = float(index.code_size)
        return Storage(code, 8.0 + _block_padding(faiss, index.invlists, code, n), code, [name])
    if isinstance(index, faiss.IndexFastScan):
        code = float(index.code_size)
        padding = (int(index.codes.size()) - int(index.ntotal) * code) / n
        return Storage(code, padding, code, [name])
    if hasattr(index, "code_size"):  # flat codes: IndexFlat, SQ, PQ, RaBitQ, IndexBinaryFlat...
        code = float(index.code_size)
        return Storage(code, 0.0, code, [name])
    code = float(index.sa_code_size())
    return Storage(code, 0.0, code, [name])


def _wrapped(inner: Storage, name: str) -> Storage:
    inner.classes.insert(0, name)
    return inner


def _downcast(faiss: Any, index: Any) -> Any:
    if isinstance(index, faiss.IndexBinary):
        return faiss.downcast_IndexBinary(index)
    return faiss.downcast_index(index)


def _block_padding(faiss: Any, invlists: Any, code_size: float, n: int) -> float:
    """Bytes per vector that fast-scan lists spend rounding each list up to whole blocks."""
    lists = faiss.downcast_InvertedLists(invlists)
    if not isinstance(lists, faiss.BlockInvertedLists):
        return 0.0
    per_block, block_bytes = int(lists.n_per_block), int(lists.block_size)
    stored = sum(-(-int(lists.list_size(i)) // per_block) * block_bytes
                 for i in range(int(lists.nlist)))
    return (stored - n * code_size) / n
