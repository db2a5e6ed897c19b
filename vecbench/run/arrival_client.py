"""One client process of an open-loop load: it sends queries at Poisson arrival times and
notes when each answer comes back, whatever the answers before it are doing.

Stdlib only, so that a spawned client starts in tens of milliseconds and holds ~10 MB: it sends
row numbers, never vectors (the index and its queries live in the unit's worker, which serves
them; see :mod:`vecbench.run.arrival`).

Messages (``struct``, native order; the clock is ``time.perf_counter``, CLOCK_MONOTONIC on
Linux, shared by every process of the machine):

    control, client -> parent  ("ready",) once started
    control, parent -> client  ("run", run_id, rate, seconds, drain, n_queries, t0, seed)
                               or ("exit",)
    control, client -> parent  (run_id, bytes of doubles: scheduled, sent, start, end, done
                               per query, relative to t0; NaN where it never happened)
    data, client -> server     REQUEST: run_id, seq, row, drop_after
    data, server -> client     REPLY:   run_id, seq, start, end, dropped
"""

from __future__ import annotations

import math
import random
import struct
import threading
import time
from array import array

REQUEST = struct.Struct("=iiid")
REPLY = struct.Struct("=iidd?")
#: Columns of a client's report, in order.
COLUMNS = ("scheduled", "sent", "start", "end", "done")


def schedule(rate: float, seconds: float, seed: int) -> list[float]:
    """Poisson arrival times in [0, seconds) at ``rate`` per second (exponential gaps)."""
    draw, times, t = random.Random(seed), [], 0.0
    while True:
        t += draw.expovariate(rate)
        if t >= seconds:
            return times
        times.append(t)


def sleep_until(moment: float) -> None:
    """Sleep to ``moment`` (perf_counter). No spinning to be exact: on a small machine a
    spinning client takes the cores from the index; the sleep's overshoot (~0.1 ms) is recorded
    as the query's send lag."""
    left = moment - time.perf_counter()
    if left > 0:
        time.sleep(left)


def run_once(data, run_id: int, rate: float, seconds: float, drain: float, n_queries: int,
             t0: float, seed: int) -> bytes:
    """Send every arrival of one rate, collect the answers until they are all in or the drain
    ends; returns the report (five doubles per query)."""
    times = schedule(rate, seconds, seed)
    n = len(times)
    nan = math.nan
    sent, start, end, done = ([nan] * n for _ in range(4))
    deadline = t0 + seconds + drain
    finished = threading.Event()

    def receive() -> None:
        answered = 0
        while answered < n:
            left = deadline + 0.5 - time.perf_counter()
            if left <= 0 or not data.poll(left):
                break
            run, seq, s, e, dropped = REPLY.unpack(data.recv_bytes())
            now = time.perf_counter()
            if run != run_id:
                continue   # a late answer of an earlier rate
            answered += 1
            if not dropped:
                start[seq], end[seq], done[seq] = s - t0, e - t0, now - t0
        finished.set()

    receiver = threading.Thread(target=receive, daemon=True)
    receiver.start()
    for seq, at in enumerate(times):
        moment = t0 + at
        sleep_until(moment)
        now = time.perf_counter()
        if now > deadline:
            break   # the sender itself could not keep up: the rest were never sent
        data.send_bytes(REQUEST.pack(run_id, seq, (seed + seq * 7919) % n_queries, deadline))
        sent[seq] = now - t0
    receiver.join(max(0.0, deadline + 1.0 - time.perf_counter()))
    report = array("d")
    for i in range(n):
        report.extend((times[i], sent[i], start[i], end[i], done[i]))
    return report.tobytes()


def main(control, data) -> None:
    """The client process: say it is ready, then run each rate it is told to, until told to
    exit."""
    control.send(("ready",))
    while True:
        try:
            message = control.recv()
        except EOFError:
            return
        if message[0] != "run":
            data.close()
            return
        _, run_id, rate, seconds, drain, n_queries, t0, seed = message
        control.send((run_id, run_once(data, run_id, rate, seconds, drain, n_queries, t0,
                                       seed)))
