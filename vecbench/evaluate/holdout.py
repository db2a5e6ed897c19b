"""Selection on held-out queries: pick a winner on one half of the queries, report it on the other.

A winner (the best configuration under a budget, the best hyper-parameter) picked and scored on
the same queries is flattered by the queries' noise (the winner's curse). Here the queries are
split in two by a seeded permutation; the candidates of each group are ranked by their mean on
the *selection* half, and only the winner's difference on the *report* half is shown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    """Which queries pick the winner and which report it (sorted query positions)."""

    select: np.ndarray
    report: np.ndarray
    seed: int

    def describe(self) -> str:
        return (f"selected on {len(self.select)} queries, reported on the other "
                f"{len(self.report)} (split seed {self.seed})")


def split(n_queries: int, seed: int = 0) -> Split:
    """Half of ``n_queries`` (rounded down) to select on, the rest to report on, drawn by a
    permutation seeded with ``seed``: the same seed and query count give the same split."""
    order = np.random.default_rng(seed).permutation(n_queries)
    half = n_queries // 2
    return Split(np.sort(order[:half]), np.sort(order[half:]), seed)


def winners(scores: dict, higher_is_better: bool = True) -> object:
    """The key of the best score (ties: the first in order), ``scores``: key -> mean on the
    selection half."""
    keys = list(scores)
    values = np.array([scores[k] for k in keys], dtype=np.float64)
    values = np.where(np.isnan(values), -np.inf if higher_is_better else np.inf, values)
    best = int(np.argmax(values) if higher_is_better else np.argmin(values))
    return keys[best]
