"""An example vecbench plugin: an exact numpy index and a metric, registered by entry points.

The index subclasses ``vecbench.indexes.base.IndexBase`` for the checks every index shares
(parameters, metric, queries, k, -1 padding); the protocol itself does not require it.
"""

from __future__ import annotations

import numpy as np

from vecbench.indexes.base import IndexBase, pad_distances, pad_ids
from vecbench.indexes.protocol import BuildReport, Conformance
from vecbench.metrics import Metric


class NumpyBrute(IndexBase):
    """Exact search by one matrix product per query batch."""

    name = "numpy_brute"
    honours_order = True
    conformance = Conformance()  # exact at its defaults: no parameters to declare

    def __init__(self, *, threads: int | None = None, seed: int = 0, **extra):
        super().__init__(threads=threads, seed=seed, extra=extra)

    def build(self, x, metric, *, train=None, threads=None) -> BuildReport:
        x = self._start_build(x, metric)  # checks the metric; cos rows come back unit-norm
        self.index_ = x.copy()
        self._norms = (x.astype(np.float64) ** 2).sum(1)
        return BuildReport(threads=1, deterministic=True,
                           code_bytes_per_vector=4.0 * x.shape[1])

    def _serialized_size(self) -> int:
        return int(self.index_.nbytes)

    def _searching(self, params: dict):
        base, norms, l2 = self.index_, self._norms, self.metric_ == "l2"

        def run(q: np.ndarray, k: int):
            score = q.astype(np.float64) @ base.T.astype(np.float64)
            if l2:  # larger is nearer: minus the squared distance, less |q|^2 (same order)
                score = 2 * score - norms
            top = np.argsort(-score, axis=1, kind="stable")[:, :k]
            distances = None
            if l2:  # squared l2, the index's own space
                nearest = np.take_along_axis(score, top, axis=1)
                distances = pad_distances(((q.astype(np.float64) ** 2).sum(1)[:, None]
                                           - nearest).astype(np.float32), k)
            return pad_ids(top, k), distances
        return run

    def close(self) -> None:
        self.index_ = None


def _hit_rate(setting, depth: int) -> np.ndarray:
    """Per query: 1 when the exact nearest neighbour is among the first ``depth`` returned."""
    returned, nearest = setting.returned(depth), setting.truth(1)[:, 0]
    return (returned == nearest[:, None]).any(axis=1).astype(np.float64)


HIT_RATE = Metric("hit_rate", True, "queries whose nearest neighbour was found", _hit_rate,
                  needs=("truth",))
