"""Selection on held-out queries: pick a winner on one half of the queries, report it on the other.

A winner (the best configuration under a budget, the best hyper-parameter) picked and scored on
the same queries is flattered by the queries' noise (the winner's curse). Here the queries are
split in two by a seeded permutation; the candidates of each group are ranked by their mean on
the *selection* half, and only the winner's difference on the *report* half is shown.
"""

from __future__ import annotations

import numpy as np

from vecbench.compute.query_split import Split, split  # noqa: F401  (re-exported)


def winners(scores: dict, higher_is_better: bool = True) -> object:
    """The key of the best score (ties: the first in order), ``scores``: key -> mean on the
    selection half."""
    keys = list(scores)
    values = np.array([scores[k] for k in keys], dtype=np.float64)
    values = np.where(np.isnan(values), -np.inf if higher_is_better else np.inf, values)
    best = int(np.argmax(values) if higher_is_better else np.argmin(values))
    return keys[best]
