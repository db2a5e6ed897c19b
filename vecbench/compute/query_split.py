"""A seeded split of the queries in two halves: one to select on (or to inform a build with),
one held out to report on. A winner picked and scored on the same queries is flattered by their
noise (the winner's curse); an insertion order built from the queries it is scored on is too.
The same seed and query count always give the same split, so the half can be recomputed from
what a record holds.
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
    permutation seeded with ``seed``."""
    order = np.random.default_rng(seed).permutation(n_queries)
    half = n_queries // 2
    return Split(np.sort(order[:half]), np.sort(order[half:]), seed)
