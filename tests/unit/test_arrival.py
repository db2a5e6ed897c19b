"""Open-loop load (issue 27): response-time metrics and the sustainable rate from raw per-query
times written by hand, operating points over a hand-made table, a rate that cannot be reached
ending on time, contention seen under deliberate load, single queries on one thread."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from vecbench.evaluate import load_metrics, metrics, operating
from vecbench.run import arrival, contention
from vecbench.run.timing import one_query_threads


def _setting(response_ms, rate=100.0, seconds=1.0, bound=5.0, dropped=0):
    """A setting whose queries arrive every 1/rate s and are answered after ``response_ms``;
    the last ``dropped`` are never answered."""
    n = len(response_ms) + dropped
    scheduled = np.arange(n) / rate
    times = np.full((n, 6), np.nan)
    times[:, 0] = scheduled
    times[:, 1] = scheduled          # sent on time
    times[:, 5] = 0
    answered = len(response_ms)
    done = scheduled[:answered] + np.asarray(response_ms) / 1000.0
    times[:answered, 2] = scheduled[:answered]              # search starts at once
    times[:answered, 3] = done
    times[:answered, 4] = done
    spec = {"rate": rate, "seconds": seconds, "clients": 1, "p99_ms_max": bound,
            "drain_seconds": 1.0}
    return metrics.Setting(ids={}, reference=None, arrival=times, arrival_spec=spec)


def _value(setting, name):
    return metrics.evaluate(setting, metrics.parse_metric(name))[0]


def test_p99_is_an_order_statistic_of_response_times():
    # 100 queries: 98 at 1 ms, 2 at 10 ms -> the 99th smallest (p99) is 10 ms, p50 1 ms
    slow = _setting([1.0] * 98 + [10.0] * 2)
    assert _value(slow, "p50_ms") == pytest.approx(1.0)
    assert _value(slow, "p99_ms") == pytest.approx(10.0)
    # 99 at 1 ms, one at 10 ms: p99 is 1 ms, p99.9 the slow one
    one_slow = _setting([1.0] * 99 + [10.0])
    assert _value(one_slow, "p99_ms") == pytest.approx(1.0)
    assert _value(one_slow, "p999_ms") == pytest.approx(10.0)


def test_unanswered_queries_count_as_slower_than_every_answer():
    # 98 answered at 1 ms, 2 never: the p99 is infinite, 2% dropped, none late
    setting = _setting([1.0] * 98, dropped=2)
    assert math.isinf(_value(setting, "p99_ms"))
    assert _value(setting, "dropped_share") == pytest.approx(0.02)
    assert _value(setting, "late_share") == 0.0
    # 100 arrivals over 1 s; 98 answers over the window (last answer at 0.971 s < 1 s)
    assert _value(setting, "offered_qps") == pytest.approx(100.0)
    assert _value(setting, "achieved_qps") == pytest.approx(98.0)
    assert _value(setting, "qps") == pytest.approx(98.0)


def test_late_share_counts_answers_over_the_bound():
    setting = _setting([1.0] * 90 + [6.0] * 10, bound=5.0)
    assert _value(setting, "late_share") == pytest.approx(0.10)


def test_lags_split_client_queue_and_service():
    setting = _setting([2.0] * 10)
    times = setting.arrival
    times[:, 1] += 0.003      # sent 3 ms late: the client behind
    times[:, 2] = times[:, 1] + 0.001   # 1 ms in the server's queue
    assert _value(setting, "send_lag_p99_ms") == pytest.approx(3.0)
    assert _value(setting, "queue_p99_ms") == pytest.approx(1.0)


def test_load_metrics_need_a_load():
    plain = metrics.Setting(ids={}, reference=None, latency_seconds=np.array([0.001]))
    with pytest.raises(metrics.MetricUnavailable):
        _value(plain, "achieved_qps")


def test_sustainable_rate_is_the_highest_rate_within_the_bound():
    assert load_metrics.sustainable_rate([100, 200, 400], [1.0, 1.9, 7.0], 2.0) == 200.0
    # not monotone (noise): the highest rate that held counts
    assert load_metrics.sustainable_rate([100, 200, 400], [3.0, 1.0, 9.0], 2.0) == 200.0
    assert load_metrics.sustainable_rate([100, 200], [math.inf, 5.0], 2.0) == 0.0


def _table():
    """Two ef settings x three rates, one client count; recall 0.90 (ef 16) and 0.97 (ef 64).
    ef 16 holds 400/s (p99 1.5 ms), ef 64 holds 200/s (p99 at 400/s: 9 ms)."""
    rows = []
    p99 = {16: [0.5, 0.8, 1.5], 64: [1.0, 1.8, 9.0]}
    for ef, recall in ((16, 0.90), (64, 0.97)):
        for rate, p in zip((100.0, 200.0, 400.0), p99[ef]):
            rows.append({"dataset": "d", "pipeline": "float32", "index": "hnswlib",
                         "ordering": "original", "repeat": 0, "k": 10, "search.ef": ef,
                         "search.arrival.rate": rate, "search.arrival.clients": 1,
                         "search.arrival.p99_ms_max": 2.0, "recall@10": recall,
                         "p99_ms": p, "qps": rate, "status": "ok",
                         "cost.usd_per_hour": 0.36})
    return pd.DataFrame(rows)


def test_operating_points_over_search_settings():
    frame = operating.add_group_columns(_table(), ["qps_at_recall(0.95)", "qps_at_recall(0.8)",
                                                   "recall_at_latency(1.6)",
                                                   "recall_at_latency(0.6)"])
    by_ef = frame.groupby("search.ef")["sustainable_rate"].first()
    assert by_ef[16] == 400.0 and by_ef[64] == 200.0
    # recall >= 0.95: only ef 64, which holds 200/s; >= 0.8: ef 16's 400/s
    assert set(frame["qps_at_recall(0.95)"]) == {200.0}
    assert set(frame["qps_at_recall(0.8)"]) == {400.0}
    attains = frame[frame["qps_at_recall(0.95).at"]]
    assert list(zip(attains["search.ef"], attains["search.arrival.rate"])) == [(64, 200.0)]
    # p99 <= 1.6 ms: ef 64 at 100/s (1.0) is the best recall; <= 0.6 ms: only ef 16 at 100/s
    assert set(frame["recall_at_latency(1.6)"]) == {0.97}
    assert set(frame["recall_at_latency(0.6)"]) == {0.90}
    # nothing meets a floor of 0.99 or a 0.1 ms budget: 0, which a gate reads as a drop
    more = operating.add_group_columns(_table(), ["qps_at_recall(0.99)",
                                                  "recall_at_latency(0.1)"])
    assert set(more["qps_at_recall(0.99)"]) == {0.0}
    assert set(more["recall_at_latency(0.1)"]) == {0.0}
    assert not more["qps_at_recall(0.99).at"].any()
    # 0.36 USD/h = 0.0001 USD/s; at 200 queries/s a million queries cost 0.5 USD
    assert frame.loc[frame["search.ef"] == 64, "usd_per_million_queries"].iloc[0] == \
        pytest.approx(0.5)


def test_operating_point_numbers_are_checked():
    from vecbench.core.errors import ConfigError

    assert operating.parse("qps_at_recall(0.95)") == ("qps_at_recall", 0.95)
    assert operating.parse("recall@10") is None
    for bad in ("qps_at_recall(1.5)", "recall_at_latency(0)", "recall_at_latency(-1)"):
        with pytest.raises(ConfigError):
            operating.parse(bad)


def test_a_rate_that_cannot_be_reached_ends_on_time():
    """1000 queries/s to a search of 5 ms on one client: capacity 200/s. The run ends by
    seconds + drain (+ start-up), the rest recorded as dropped."""
    def slow(rows, k):
        time.sleep(0.005)

    seconds, drain = 0.5, 0.3
    with arrival.Pools() as pools:
        start = time.perf_counter()
        times, wall = pools.run(slow, 1, {"rate": 1000.0, "seconds": seconds, "clients": 1,
                                          "p99_ms_max": 10.0, "drain_seconds": drain}, 50, 0)
        elapsed = time.perf_counter() - start
    assert elapsed < seconds + drain + 3.0
    setting = SimpleNamespace(arrival=times, arrival_spec={"seconds": seconds})
    assert load_metrics.dropped_share(setting) > 0.3
    answered = times[~np.isnan(times[:, 4])]
    assert len(answered) <= (seconds + drain) / 0.005 + 5
    # every answered query waited at least its search, and its answer came after it was sent
    assert (answered[:, 4] - answered[:, 0] >= 0.005 - 1e-4).all()
    assert (answered[:, 4] >= answered[:, 1]).all()


def test_bare_loop_issues_the_same_arrivals():
    calls = []
    times, _ = arrival.bare_loop(lambda rows, k: calls.append(rows.start), 1, 200.0, 0.2, 0.1,
                                 10, seed=3)
    clients, _ = arrival.schedule(200.0, 0.2, 3 * 1009), None
    assert np.allclose(times[:, 0], clients)
    assert len(calls) == len(times) and (times[:, 5] == -1).all()


def test_busy_processes_make_the_sampler_say_contended():
    cores = os.cpu_count() or 1
    spin = "import time\nend = time.time() + 3\nwhile time.time() < end: pass"
    busy = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(2 * cores + 1)]
    try:
        time.sleep(0.3)
        with contention.Sampler(period=0.05) as sampler:
            time.sleep(0.6)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    figures = sampler.figures()
    assert figures["contended"] is True
    assert figures["runnable_max"] > cores and figures["over_share"] >= 0.25
    assert figures["wall_s"] > 0.5 and 0 <= figures["cpu_s"] < figures["wall_s"]


def test_single_queries_run_on_one_thread_then_threads_come_back():
    pytest.importorskip("hnswlib")
    from vecbench.core import environment
    from vecbench.indexes.hnswlib_index import HnswlibIndex

    index = HnswlibIndex(threads=2, M=8)
    environment.set_threads(2)
    with one_query_threads(index, 2):
        assert index.n_threads == 1
        import faiss
        assert faiss.omp_get_max_threads() == 1
    assert index.threads == 2
    import faiss
    assert faiss.omp_get_max_threads() == 2


def test_clients_start_before_the_first_rate_counts():
    """Several client processes on a busy machine take a while to start: the first rate's
    arrivals are all answered, none lost to an interpreter starting."""
    with arrival.Pools() as pools:
        times, _ = pools.run(lambda rows, k: None, 1, {"rate": 60.0, "seconds": 0.3,
                                                        "clients": 4, "p99_ms_max": 50.0,
                                                        "drain_seconds": 0.5}, 10, 1)
    assert len(times) > 0 and not np.isnan(times[:, 4]).any()
    assert set(times[:, 5]) <= {0.0, 1.0, 2.0, 3.0}
