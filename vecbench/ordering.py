"""Insertion orders: registered functions ``(vectors, *, seed, context, **params) -> permutation``.

The runner inserts ``vectors[perm]`` and maps the ids the index returns back through ``perm``;
indexes never see orderings. An ordering's parameters are keyword-only arguments, so the
experiment loader can check their names without data.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from vecbench.errors import ConfigError
from vecbench.registry import orderings


@dataclass(frozen=True)
class OrderingContext:
    """What an ordering may use besides the vectors: labels, metric, a cache key."""

    metric: str = "l2"
    labels: np.ndarray | None = None
    fingerprint: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def check_params(name: str, function: Callable, params: dict) -> dict:
    """Check ``params`` against the ordering's keyword-only arguments (names, not data)."""
    signature = inspect.signature(function)
    accepted = [p.name for p in signature.parameters.values()
                if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in ("seed", "context")]
    from vecbench.params import check_no_extra

    check_no_extra(f"ordering {name}", params, accepted)
    validate = getattr(function, "validate", None)
    return validate(params) if validate else dict(params)


def apply(name: str, params: dict, vectors: np.ndarray, seed: int,
          context: OrderingContext) -> np.ndarray:
    """Run a registered ordering and check that it returned a permutation of the rows."""
    function = orderings.get(name)
    perm = np.asarray(function(vectors, seed=seed, context=context, **params))
    n = len(vectors)
    if perm.shape != (n,) or not np.array_equal(np.sort(perm), np.arange(n)):
        raise AssertionError(f"ordering {name} did not return a permutation of {n} rows")
    return perm.astype(np.int64)


@orderings.register("original")
def original(vectors: np.ndarray, *, seed: int = 0,
             context: OrderingContext | None = None) -> np.ndarray:
    """The dataset's own row order."""
    return np.arange(len(vectors))


@orderings.register("random")
def random(vectors: np.ndarray, *, seed: int = 0,
           context: OrderingContext | None = None) -> np.ndarray:
    """A uniformly random order, seeded per repeat by the runner."""
    return np.random.default_rng(seed).permutation(len(vectors))


@orderings.register("reverse")
def reverse(vectors: np.ndarray, *, seed: int = 0,
            context: OrderingContext | None = None) -> np.ndarray:
    """The dataset's row order backwards."""
    return np.arange(len(vectors))[::-1].copy()


def require_labels(name: str, context: OrderingContext) -> np.ndarray:
    if context.labels is None:
        raise ConfigError(f"ordering {name} needs dataset labels, and this dataset has none")
    return context.labels
