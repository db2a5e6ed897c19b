"""Open-loop load: queries arrive at a rate, from client processes, whether or not the answers
before them are back (``search: {arrival: ...}``, checked by :mod:`vecbench.run.arrival_spec`).

How the clients reach the index: the unit's worker *serves* it. Each client process
(:mod:`vecbench.run.arrival_client`, stdlib only) sends the row numbers of its queries over a
pipe at Poisson arrival times; in the worker one server thread per client runs the searches
(the libraries release the GIL while they search) and sends back when each started and ended.
Why not a copy of the index in every client: 16 copies of a graph index do not fit a small
machine, engines behind a server (pgvector) are one server whatever the clients do, and a
service answers its users from one index. The cost of this design, a pipe round trip per query
and one Python thread per client, is measured by ``clients: 0``: the worker's own loop issues
the same arrivals to the same searcher at the same rate, with no processes and no pipes.

Every query's times are kept (relative to the run's start): scheduled arrival, sent, search
start, search end, answer received. Response time = received - scheduled, so time queued in the
client, the pipe and the server all counts. A query not answered by ``seconds + drain_seconds``
is dropped (the server skips the search of a request that arrives after that), so a rate that
cannot be reached ends on time and says so in its record.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection, Pipe
from typing import Callable

import numpy as np

from vecbench.run.arrival_client import COLUMNS, REPLY, REQUEST, schedule

#: How long a client may take to start (an interpreter and the stdlib) and to report.
START_SECONDS = 30.0
#: What a run stores per query: the client columns, then the client's number (-1: bare loop).
STORED_COLUMNS = (*COLUMNS, "client")
_LAUNCH = ("import sys; from multiprocessing.connection import Connection; "
           "from vecbench.core.environment import signal_when_parent_dies; "
           "import signal; signal_when_parent_dies(signal.SIGKILL); "
           "from vecbench.run.arrival_client import main; "
           "main(Connection(int(sys.argv[1])), Connection(int(sys.argv[2])))")


def _serve(data: Connection, pool: "ClientPool") -> None:
    """One client's server thread: search each request's row with the pool's current searcher,
    answer with start and end."""
    while True:
        try:
            run_id, seq, row, drop_after = REQUEST.unpack(data.recv_bytes())
        except (EOFError, OSError):
            return
        start = time.perf_counter()
        if start > drop_after:   # its answer would come after the run ended: skip the search
            data.send_bytes(REPLY.pack(run_id, seq, start, start, True))
            continue
        pool.search(slice(row, row + 1), pool.k)
        data.send_bytes(REPLY.pack(run_id, seq, start, time.perf_counter(), False))


class ClientPool:
    """``clients`` client processes and their server threads, started once and reused for
    every rate of a search setting (an interpreter start is not part of any rate)."""

    def __init__(self, clients: int):
        self.clients, self._processes, self._controls, self._threads = clients, [], [], []
        self.search: Callable = lambda rows, k: None   # set by run() for each setting
        self.k = 1
        self._runs = 0
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        try:
            for _ in range(clients):
                control, control_child = Pipe()
                data, data_child = Pipe()
                fds = (control_child.fileno(), data_child.fileno())
                process = subprocess.Popen([sys.executable, "-c", _LAUNCH, *map(str, fds)],
                                           pass_fds=fds, env=env, stdin=subprocess.DEVNULL)
                control_child.close()
                data_child.close()
                thread = threading.Thread(target=_serve, args=(data, self), daemon=True)
                thread.start()
                self._processes.append(process)
                self._controls.append(control)
                self._threads.append((thread, data))
        except OSError as exc:   # the machine refused a process after validation allowed it
            self.close()
            raise RuntimeError(f"could not start client process {len(self._processes) + 1} "
                               f"of {clients}: {exc}") from None
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Every client has started (on a busy machine 16 interpreters take seconds): an
        interpreter's start must not be counted in the first rate's response times."""
        give_up = time.perf_counter() + START_SECONDS
        for i, (control, process) in enumerate(zip(self._controls, self._processes)):
            while not control.poll(0.1):
                if process.poll() is not None or time.perf_counter() > give_up:
                    self.close()
                    raise RuntimeError(f"client process {i + 1} of {self.clients} did not "
                                       f"start within {START_SECONDS:g} s (exit code "
                                       f"{process.poll()})")
            control.recv()

    def run(self, search: Callable, k: int, rate: float, seconds: float, drain: float,
            n_queries: int, seed: int) -> tuple[np.ndarray, float]:
        """Offer ``rate`` queries per second (split evenly over the clients) for ``seconds``
        to ``search``: every query's times (:data:`STORED_COLUMNS`) and the wall time from
        start to the last report."""
        self.search, self.k = search, k
        self._runs += 1
        t0 = time.perf_counter() + 0.2 + 0.01 * self.clients   # every client ready by then
        for i, control in enumerate(self._controls):
            control.send(("run", self._runs, rate / self.clients, seconds, drain, n_queries,
                          t0, seed * 1009 + i))
        parts = []
        give_up = t0 + seconds + drain + START_SECONDS
        for i, (control, process) in enumerate(zip(self._controls, self._processes)):
            report = None
            while report is None and time.perf_counter() < give_up:
                if control.poll(0.1):
                    try:
                        run_id, report = control.recv()
                    except EOFError:
                        break
                elif process.poll() is not None:
                    break
            if report is None:
                raise RuntimeError(f"client process {i + 1} of {self.clients} did not report "
                                   f"(exit code {process.poll()})")
            times = np.frombuffer(report, dtype=np.float64).reshape(-1, len(COLUMNS))
            parts.append(np.column_stack([times, np.full(len(times), float(i))]))
        wall = time.perf_counter() - t0
        return _ordered(parts), wall

    def close(self) -> None:
        for control in self._controls:
            try:
                control.send(("exit",))
            except OSError:
                pass
        for process in self._processes:
            try:
                process.wait(5.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for thread, data in self._threads:
            data.close()
            thread.join(1.0)
        self._processes, self._controls, self._threads = [], [], []

    def __enter__(self) -> "ClientPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def bare_loop(search: Callable, k: int, rate: float, seconds: float, drain: float,
              n_queries: int, seed: int) -> tuple[np.ndarray, float]:
    """The reference for the clients' overhead: the same Poisson arrivals, issued by this
    thread to the same searcher, one after another (a query that arrives while the one before
    is searched waits, as it would in one server thread). No processes, no pipes."""
    times = schedule(rate, seconds, seed * 1009)
    out = np.full((len(times), len(STORED_COLUMNS)), np.nan)
    out[:, 0], out[:, 5] = times, -1.0
    t0 = time.perf_counter() + 0.05
    deadline = t0 + seconds + drain
    for seq, at in enumerate(times):
        left = t0 + at - time.perf_counter()
        if left > 0:
            time.sleep(left)
        start = time.perf_counter()
        if start > deadline:
            break
        row = (seed * 1009 + seq * 7919) % n_queries
        search(slice(row, row + 1), k)
        end = time.perf_counter()
        out[seq, 1:5] = (start - t0, start - t0, end - t0, end - t0)
    return out, time.perf_counter() - t0


def arrival_outcome(times: np.ndarray, wall: float) -> dict:
    """What a record says of a load: arrivals drawn, sent, answered, dropped (not answered by
    seconds + drain: the rate was not reached), and the wall seconds it took."""
    answered = int((~np.isnan(times[:, 4])).sum())
    return {"arrivals": len(times), "sent": int((~np.isnan(times[:, 1])).sum()),
            "answered": answered, "dropped": len(times) - answered, "wall_s": round(wall, 3)}


def _ordered(parts: list[np.ndarray]) -> np.ndarray:
    """Every client's queries as one array, in scheduled order."""
    if not parts:
        return np.empty((0, len(STORED_COLUMNS)))
    times = np.concatenate(parts)
    return times[np.argsort(times[:, 0], kind="stable")]


class Pools:
    """The client pools of a unit's search stage, one per client count, started when first
    needed and stopped with the stage (``with Pools() as pools``)."""

    def __init__(self):
        self._pools: dict[int, ClientPool] = {}

    def run(self, search: Callable, k: int, arrival: dict, n_queries: int,
            seed: int) -> tuple[np.ndarray, float]:
        """One ``arrival:`` setting (checked by arrival_spec): its times and wall seconds."""
        rate, seconds, drain = arrival["rate"], arrival["seconds"], arrival["drain_seconds"]
        clients = arrival["clients"]
        if clients == 0:
            return bare_loop(search, k, rate, seconds, drain, n_queries, seed)
        if clients not in self._pools:
            self._pools[clients] = ClientPool(clients)
        return self._pools[clients].run(search, k, rate, seconds, drain, n_queries, seed)

    def __enter__(self) -> "Pools":
        return self

    def __exit__(self, *exc) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
