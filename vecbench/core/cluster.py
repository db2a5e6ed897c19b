"""A Dask cluster as a carrier of bytes between workers on different machines.

Shared results (fitted pipelines, cache entries: ground truth, LID) are handed to the scheduler
(:func:`publish`: a ``distributed.Variable`` named by the entry, up to :data:`SCHEDULER_LIMIT`
bytes), so a worker on another machine, whose cache is not shared, reads the result
(:func:`fetch`) instead of redoing it. Off a cluster both are no-ops; ``distributed`` is only
imported where a worker already has it imported.
"""

from __future__ import annotations

import hashlib
import sys

#: Largest fitted pipeline handed to the scheduler for workers on other machines.
SCHEDULER_LIMIT = 64 << 20


def dask_worker():
    """The Dask worker running this code, or None (not on a cluster)."""
    if "distributed" not in sys.modules:  # a worker process has it imported; others need not
        return None
    from distributed import get_worker

    try:
        return get_worker()
    except ValueError:
        return None


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def _variable(name: str):
    worker = dask_worker()
    if worker is None:
        return None
    from distributed import Variable

    return Variable(f"vecbench-{name}", client=worker.client)


def fetch(name: str) -> bytes | None:
    """The bytes another worker of this cluster published under ``name``, verified against
    their digest; None off a cluster, when none were published, or when they do not verify."""
    variable = _variable(name)
    if variable is None:
        return None
    try:
        value = variable.get(timeout=0)
    except TimeoutError:
        return None
    data, expected = value
    return data if digest(data) == expected else None


def publish(name: str, data: bytes) -> bool:
    """Hand ``data`` to the scheduler under ``name`` for workers on other machines; False off a
    cluster or above :data:`SCHEDULER_LIMIT` (they then compute it themselves)."""
    variable = _variable(name)
    if variable is None or len(data) > SCHEDULER_LIMIT:
        return False
    variable.set((data, digest(data)))
    return True
