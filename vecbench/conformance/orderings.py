"""Ordering conformance: a registered ordering returns a permutation of the rows, the same one
for the same seed. Parameters: the function's ``conformance`` dict where it has one, else its
defaults. ``tests/unit/test_ordering.py`` runs these on every registered ordering.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from vecbench.compute.ordering import apply, check_params as check, OrderingContext
from vecbench.core.registry import orderings

N = 600


@functools.lru_cache(maxsize=1)
def context() -> tuple[np.ndarray, Any]:
    """600 vectors in 16 dimensions with 5 label categories, 20 queries."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((N, 16)).astype(np.float32)
    labels = rng.integers(0, 5, N)
    queries = rng.standard_normal((20, 16)).astype(np.float32)
    return x, OrderingContext(metric="l2", labels=labels, queries=queries,
                              fingerprint="vecbench-conformance-orderings")


class Subject:
    def __init__(self, name: str):
        self.name = name
        function = orderings.get(name)
        self.params = dict(getattr(function, "conformance", {}))

    def order(self, seed: int) -> np.ndarray:
        x, ctx = context()
        return apply(self.name, self.params, x, seed, ctx)


def subjects(name: str) -> list[tuple[str, Subject]]:
    return [("", Subject(name))]


def prepare(subject: Subject) -> None:
    """Nothing to skip."""


def check_params(s: Subject) -> None:
    check(s.name, orderings.get(s.name), s.params)  # declared or keyword-only names


def check_permutation(s: Subject) -> None:
    perm = s.order(0)  # apply raises when it is not a permutation of the rows
    assert perm.dtype == np.int64 and sorted(perm.tolist()) == list(range(N)), \
        "not a permutation of the rows"


def check_seeded(s: Subject) -> None:
    assert np.array_equal(s.order(3), s.order(3)), "the same seed gave another order"


CHECKS = {"params": check_params, "permutation": check_permutation, "seeded": check_seeded}
