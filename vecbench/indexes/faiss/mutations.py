"""Inserts and deletes on built faiss indexes (runbooks), by the family's ``mutation`` kind.

- ``ivf``: the inverted lists store ids: ``add_with_ids`` and ``remove_ids`` work on them as
  they are (removal scans the lists; no direct map is needed).
- ``flat``: ``IndexFlat`` stores no ids and ``remove_ids`` compacts the codes (the rows after a
  removed one move down), so the adapter keeps the id of each stored row beside faiss and maps
  search results through it: a copy into an ``IndexIDMap`` would cost a second index.

Any other family (HNSW graphs: faiss cannot remove from them) declares no capability.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vecbench.indexes.base import omp_threads

if TYPE_CHECKING:  # numpy is imported where vectors change: validate stays numpy-free
    import numpy as np

#: mutation kind -> the capabilities it gives
CAPABILITIES = {"ivf": frozenset({"insert", "delete"}), "flat": frozenset({"insert", "delete"}),
                "": frozenset()}


def insert(index: Any, x: np.ndarray, ids: np.ndarray) -> None:
    import numpy as np

    made = index.index_
    with omp_threads(index.n_threads):
        if index.family.mutation == "ivf":
            made.add_with_ids(x, ids)
        else:
            labels = _labels(index)
            made.add(x)
            index.labels_ = np.concatenate([labels, ids])
    index.ntotal_ = int(made.ntotal)


def delete(index: Any, ids: np.ndarray) -> None:
    import numpy as np

    made = index.index_
    if index.family.mutation == "ivf":
        removed = made.remove_ids(ids)
    else:
        labels = _labels(index)
        positions = np.flatnonzero(np.isin(labels, ids))
        removed = made.remove_ids(positions.astype(np.int64))
        index.labels_ = np.delete(labels, positions)
    if removed != len(ids):
        raise RuntimeError(f"{index.name}: removed {removed} of {len(ids)} ids")
    index.ntotal_ = int(made.ntotal)


def _labels(index: Any) -> np.ndarray:
    """The id of each stored row (0..n-1 until the first change)."""
    import numpy as np

    if index.labels_ is None:
        index.labels_ = np.arange(index.index_.ntotal, dtype=np.int64)
    return index.labels_


def mapped(index: Any, ids: np.ndarray) -> np.ndarray:
    """Search results of a flat index in the ids it was given."""
    import numpy as np

    labels = index.labels_
    return ids if labels is None else np.where(ids >= 0, labels[np.maximum(ids, 0)], -1)
