"""A Dask cluster as a carrier of bytes between workers on different machines.

Shared results (fitted pipelines, cache entries: ground truth, LID) are handed to the scheduler
(:func:`publish`: a ``distributed.Variable`` named by the entry, up to :data:`SCHEDULER_LIMIT`
bytes), so a worker on another machine, whose cache is not shared, reads the result
(:func:`fetch`) instead of redoing it. Off a cluster both are no-ops; ``distributed`` is only
imported where a worker already has it imported.

A unit that runs in a process of its own under a Dask worker has no client of the cluster (one
per unit would cost a connection and distributed's import): it asks that worker through a pipe
(:func:`use_relay` in the unit's process, :class:`Relay` in the worker), which fetches,
publishes and holds the cluster-wide locks (:func:`lock`) on its behalf.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import threading
from typing import Any, Iterator

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


#: In a unit's own process on a Dask worker: its connection to that worker (see :class:`Relay`).
_relay = None
_relay_lock = threading.Lock()   # one request at a time on the pipe (a unit may use threads)


def use_relay(connection) -> None:
    """In a unit's own process: reach the cluster through ``connection`` to its Dask worker."""
    global _relay
    _relay = connection


def on_cluster() -> bool:
    """True on a Dask worker, or in a unit's process that reaches one through its relay."""
    return _relay is not None or dask_worker() is not None


def _ask(*request: Any) -> Any:
    with _relay_lock:
        _relay.send(request)
        failed, value = _relay.recv()
    if failed:
        raise value
    return value


@contextlib.contextmanager
def lock(name: str) -> Iterator[bool]:
    """Hold the cluster-wide lock ``name`` (held by the scheduler); yields False, holding
    nothing, off a cluster."""
    if _relay is not None:
        _ask("lock", name)
        try:
            yield True
        finally:
            _ask("unlock", name)
        return
    worker = dask_worker()
    if worker is None:
        yield False
        return
    from distributed import Lock

    with Lock(f"vecbench-{name}"):
        yield True


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
    if _relay is not None:
        return _ask("fetch", name)
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
    if _relay is not None:
        return len(data) <= SCHEDULER_LIMIT and _ask("publish", name, data)
    variable = _variable(name)
    if variable is None or len(data) > SCHEDULER_LIMIT:
        return False
    variable.set((data, digest(data)))
    return True


class Relay:
    """A Dask worker's side of a unit process's pipe: it does what the unit asks
    (``fetch``, ``publish``, ``lock``, ``unlock``) with the worker's client, from the thread of
    the task that waits for the unit. Locks the unit still held when it ended (a crash) are
    released by :meth:`close`."""

    def __init__(self) -> None:
        import multiprocessing

        self.connection, self.child_end = multiprocessing.Pipe()
        self._held: dict[str, Any] = {}

    def answer(self) -> bool:
        """Answer one request; False when the unit's end is closed (the unit ended)."""
        try:
            kind, name, *data = self.connection.recv()
        except (EOFError, OSError):
            return False
        try:
            reply = (False, self._do(kind, name, *data))
        except Exception as exc:  # noqa: BLE001 - raised in the unit, where it is recorded
            # as a plain error: the worker's own exception may not unpickle in the unit
            reply = (True, RuntimeError(f"Dask worker, {kind} {name}: "
                                        f"{type(exc).__name__}: {exc}"))
        try:
            self.connection.send(reply)
        except (BrokenPipeError, OSError):  # the unit died while asking
            return False
        return True

    def _do(self, kind: str, name: str, *data: Any) -> Any:
        if kind == "fetch":
            return fetch(name)
        if kind == "publish":
            return publish(name, data[0])
        if kind == "lock":
            from distributed import Lock

            held = Lock(f"vecbench-{name}")
            held.acquire()
            self._held[name] = held
            return True
        if kind == "unlock":
            self._held.pop(name).release()
            return True
        raise ValueError(f"unknown relay request {kind!r}")

    def close(self) -> None:
        for held in self._held.values():
            try:
                held.release()
            except Exception:  # noqa: BLE001 - a scheduler gone takes its locks with it
                pass
        self._held.clear()
        self.connection.close()
        self.child_end.close()
