"""Concurrent clients: a search that fails in a client thread fails the timing, not a silent
row of partial latencies."""

from __future__ import annotations

import time

import pytest

from vecbench.run.timing import time_clients


def test_clients_measure_every_query_they_issue():
    latencies, wall = time_clients(lambda rows, k: time.sleep(0.001), 10, 5, 3, 0.2)
    assert len(latencies) >= 3 and 0.15 < wall < 2 and (latencies > 0).all()


def test_a_failing_client_search_is_raised_in_the_caller():
    calls = []

    def search(rows, k):
        calls.append(rows)
        if len(calls) > 5:
            raise RuntimeError("server gone")

    started = time.perf_counter()
    with pytest.raises(RuntimeError, match="server gone"):
        time_clients(search, 10, 5, 2, 30.0)
    assert time.perf_counter() - started < 5   # stops at the failure, not after 30 s
