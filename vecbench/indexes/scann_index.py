"""ScaNN (``pip install scann``, numpy API, no TensorFlow): a k-means tree over the base,
anisotropic vector quantization of each vector (asymmetric hashing, ``score_ah``) and exact
re-ordering of the best candidates with a copy of the vectors.

Storage is read from the index ScaNN writes (``serialize`` into a temporary folder, once per
build; the folder is on disk and removed at once, so no copy stays in memory):

- code bytes per vector: the AH code (``num_blocks`` x log2(``num_clusters_per_block``) bits, as
  ScaNN's LUT16 search keeps it packed) plus each per-vector row of the re-ordering copy
  (float32 ``dataset.npy``, or ``int8`` / ``bfloat16`` copies);
- graph bytes per vector: the leaf each vector belongs to (``datapoint_to_token``);
- ``nbytes()``: the sum of the serialized files (ScaNN writes AH codes one byte per block, so
  the files hold more than the packed codes).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from typing import Any

from vecbench.core.errors import ConfigError
from vecbench.indexes.base import COMMON_PARAMS, BuildReport, Conformance, IndexBase
from vecbench.core.params import Param

#: the names this module registers (read by vecbench.indexes without importing it)
REGISTER = {"scann": "ScannIndex"}

#: Copies ScaNN can re-order candidates with ("none": AH scores are final).
REORDER = ("float32", "int8", "bfloat16", "none")
#: vecbench metric -> ScaNN distance (cos: dot product of unit vectors).
METRICS = {"l2": "squared_l2", "ip": "dot_product", "cos": "dot_product"}
#: ScaNN's recommended anisotropic threshold for dot-product search (its docs' 0.2).
DOT_THRESHOLD = 0.2


def import_scann() -> Any:
    """ScaNN's numpy builder module, or a ConfigError saying how to get it."""
    try:
        from scann.scann_ops.py import scann_builder, scann_ops_pybind
    except ImportError:
        raise ConfigError("scann adapter needs `pip install scann` (Linux, Python < 3.14)") \
            from None
    return scann_ops_pybind, scann_builder


class ScannIndex(IndexBase):
    """ScaNN. Build: ``num_leaves`` (k-means tree leaves, >= 1; 0 = no tree, every vector
    scored), ``dims_per_block`` (dimensions per AH sub-space, >= 1; 16 centres each, so 4 bits
    per block), ``anisotropic_quantization_threshold`` (ScaNN's ``eta`` threshold; default 0.2
    for ip/cos and none (NaN, plain quantization) for l2, where ScaNN's anisotropic loss does not
    apply), ``reorder`` (float32, int8, bfloat16 copy to re-rank with, or none) and
    ``reorder_depth`` (build default of the candidates re-ranked, default 100).
    Search: ``leaves_to_search`` (default ``num_leaves``: every leaf), ``reorder_depth``
    (candidates re-ranked; the effective depth is ``max(reorder_depth, k)``).

    ScaNN samples its training set from the base it indexes (``train`` is not used) and exposes
    no seed: ``seed`` is recorded but changes nothing. A single-threaded build is repeatable.
    """

    name = "scann"
    # the searcher's own upsert (appends) and delete (the last datapoint moves into the hole)
    capabilities = frozenset({"insert", "delete"})
    labels_: Any = None  # the id of each datapoint, once the index has changed
    params = (
        Param("num_leaves", "int", 100, low=0,
              doc="k-means tree leaves (0: no tree, every vector scored)"),
        Param("dims_per_block", "int", 2, low=1,
              doc="dimensions per anisotropic-quantization block (16 centres: 4 bits each)"),
        Param("anisotropic_quantization_threshold", "number", None, nullable=True,
              doc="ScaNN's eta threshold; null: 0.2 for ip/cos, plain quantization for l2"),
        Param("reorder", "choice", "float32", choices=REORDER,
              doc="copy the candidates are re-ranked with (its bytes are counted), or none"),
        Param("reorder_depth", "int", 100, low=1, doc="candidates re-ranked (build default)"),
    ) + COMMON_PARAMS
    search_params = (
        Param("leaves_to_search", "int", None, low=1, nullable=True,
              doc="leaves searched (null: every leaf)"),
        Param("reorder_depth", "int", None, low=1, nullable=True,
              doc="candidates re-ranked; the effective depth is max(reorder_depth, k)"),
    )
    conformance = Conformance({"num_leaves": 8, "reorder": "float32"},
                              {"leaves_to_search": 8, "reorder_depth": 500}, needs=("scann",))

    def __init__(self, **params: Any):
        super().__init__(**params)
        from importlib.util import find_spec

        if find_spec("scann") is None:
            import_scann()  # raises the ConfigError saying how to install it

    def build(self, x: Any, metric: str, *, train: Any = None,
              threads: int | None = None) -> BuildReport:
        scann, builder_module = import_scann()
        threads = self._build_threads(threads)
        x = self._start_build(x, metric)
        if self.dims_per_block > self.dim_:
            raise ConfigError(f"expected at most the dimension {self.dim_}, got "
                              f"{self.dims_per_block}", "dims_per_block")
        threshold = self.anisotropic_quantization_threshold
        if threshold is None:
            threshold = float("nan") if self.metric_ == "l2" else DOT_THRESHOLD
        threshold = float(threshold)  # the declaration keeps an int given as one
        builder = scann.builder(x, 10, METRICS[self.metric_])
        builder.set_n_training_threads(threads)
        if self.num_leaves:
            builder = builder.tree(num_leaves=min(self.num_leaves, len(x)),
                                   num_leaves_to_search=min(self.num_leaves, len(x)),
                                   training_sample_size=len(x))
        builder = builder.score_ah(self.dims_per_block,
                                   anisotropic_quantization_threshold=threshold)
        if self.reorder != "none":
            kind = getattr(builder_module.ReorderType, self.reorder.upper())
            builder = builder.reorder(self.reorder_depth, quantize=kind)
        try:
            index = builder.build()
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(f"scann cannot build this index: {' '.join(str(exc).split())}",
                              "num_leaves") from None
        index.set_num_threads(self.n_threads)
        self.index_, self.labels_ = index, None
        code, graph, self._nbytes = self._storage(len(x))
        return BuildReport(
            threads=threads, deterministic=threads == 1, code_bytes_per_vector=code,
            graph_bytes_per_vector=graph, compresses=True,
            details={"distance": METRICS[self.metric_], "threshold": threshold,
                     "leaves": min(self.num_leaves, len(x)), "reorder": self.reorder})

    def _storage(self, n: int) -> tuple[float, float, int]:
        """(code bytes per vector, graph bytes per vector, serialized bytes), from the files
        ScaNN writes and its config."""
        import numpy as np

        clusters = re.search(r"num_clusters_per_block:\s*(\d+)", self.index_.config())
        bits_per_block = math.log2(int(clusters.group(1))) if clusters else 8.0
        code = graph = 0.0
        total = 0
        with tempfile.TemporaryDirectory(prefix="vecbench-scann-") as folder:
            self.index_.serialize(folder)
            for name in sorted(os.listdir(folder)):
                path = os.path.join(folder, name)
                total += os.path.getsize(path)
                if not name.endswith(".npy"):
                    continue
                array = np.load(path, mmap_mode="r")
                if array.ndim == 0 or array.shape[0] != n:
                    continue  # per index (multipliers, centres), not per vector
                row = array.dtype.itemsize * int(np.prod(array.shape[1:], dtype=np.int64))
                if name == "hashed_dataset.npy":
                    code += math.ceil(array.shape[1] * bits_per_block / 8)
                elif name == "datapoint_to_token.npy":
                    graph += row
                else:
                    code += row  # the re-ordering copy (and its per-vector scales)
        return code, graph, total

    def _searching(self, params: dict) -> Any:
        import numpy as np

        index = self.index_
        leaves = params.get("leaves_to_search", -1 if not self.num_leaves else self.num_leaves)
        reorder_depth = params.get("reorder_depth", self.reorder_depth)
        batched = index.search_batched_parallel if self.n_threads > 1 else index.search_batched

        def run(q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            depth = max(reorder_depth, k)
            if len(q) == 1:  # the single-query path: no batching machinery
                ids, distances = index.search(q[0], final_num_neighbors=k,
                                              pre_reorder_num_neighbors=depth,
                                              leaves_to_search=leaves)
                ids, distances = ids[None, :], distances[None, :]
            else:
                ids, distances = batched(q, final_num_neighbors=k,
                                         pre_reorder_num_neighbors=depth,
                                         leaves_to_search=None if leaves == -1 else leaves)
            ids = ids.astype(np.int64)
            missing = np.isnan(distances)  # ScaNN pads with id 0 and a NaN distance
            if missing.any():
                ids[missing] = -1
                distances = np.where(missing, np.float32(np.inf), distances)
            if self.labels_ is not None:
                ids = np.where(ids >= 0, self.labels_[np.maximum(ids, 0)], -1)
            return ids, distances
        return run

    # -- mutations (runbooks) ---------------------------------------------------------------
    # ScaNN's own docid layer keeps Python lists of strings and maps every result through
    # them; the searcher below it works on datapoint positions, so the adapter keeps the id
    # of each position (as the docid layer does, in one int64 array) and maps only once the
    # index has changed.

    def insert(self, x: Any, ids: Any) -> None:
        import numpy as np

        x, ids = self._mutation_rows(x, ids)
        labels = self._labels()
        self.index_.searcher.upsert([None] * len(x), x, 1)  # None: a new datapoint
        self.labels_ = np.concatenate([labels, ids])
        self.ntotal_ = len(self.labels_)

    def delete(self, ids: Any) -> None:
        import numpy as np

        labels = self._labels()
        where = {label: i for i, label in enumerate(labels.tolist())}
        positions = []
        for label in np.asarray(ids, dtype=np.int64).tolist():
            position, last = where.pop(label), len(labels) - 1 - len(positions)
            positions.append(position)
            if position != last:  # the searcher moves the last datapoint into the hole
                labels[position] = labels[last]
                where[int(labels[position])] = position
        self.index_.searcher.delete(positions)
        self.labels_ = labels[:len(labels) - len(positions)].copy()
        self.ntotal_ = len(self.labels_)
        self._nbytes = None

    def _labels(self) -> Any:
        import numpy as np

        if self.labels_ is None:
            self.labels_ = np.arange(self.ntotal_, dtype=np.int64)
        return self.labels_

    def _serialized_size(self) -> int:
        return self._storage(self.ntotal_)[2]
