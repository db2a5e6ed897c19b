"""Metrics of an open-loop load (``search: {arrival: ...}``), from every query's raw times.

Response time = answer received - scheduled arrival: time queued in the client, in the pipe and
in the server counts. A query never answered (never sent, dropped, or lost at the drain
deadline) counts as slower than every answered one, so a run that drops 2% has an infinite
p99: it did not hold that rate.
"""

from __future__ import annotations

import numpy as np

# columns of the stored times (vecbench.run.arrival.STORED_COLUMNS)
SCHEDULED, SENT, START, END, DONE, CLIENT = range(6)


class NoArrival(Exception):
    """The setting ran no open-loop load."""


def times_of(setting) -> np.ndarray:
    arrival = getattr(setting, "arrival", None)
    if arrival is None:
        raise NoArrival("the setting ran no arrival load")
    return np.asarray(arrival, dtype=np.float64)


def response_ms(times: np.ndarray) -> np.ndarray:
    """Every query's response time in ms, +inf where it was not answered."""
    response = (times[:, DONE] - times[:, SCHEDULED]) * 1000.0
    return np.where(np.isnan(response), np.inf, response)


def percentile(values: np.ndarray, q: float) -> float:
    """The q-th percentile as an order statistic (the smallest value with at least q% of the
    values at or below it): defined with +inf values, where interpolation gives NaN."""
    if len(values) == 0:
        return float("nan")
    ordered = np.sort(values)
    rank = int(np.ceil(q / 100.0 * len(ordered))) - 1
    return float(ordered[min(max(rank, 0), len(ordered) - 1)])


def response_percentile(setting, q: float) -> float:
    return percentile(response_ms(times_of(setting)), q)


def achieved_qps(setting) -> float:
    """Answers per second: the queries answered over the time from the first arrival to the
    last answer (at least the arrival window)."""
    times = times_of(setting)
    answered = ~np.isnan(times[:, DONE])
    if not answered.any():
        return 0.0
    seconds = setting.arrival_spec["seconds"]
    span = max(seconds, float(np.nanmax(times[:, DONE])))
    return float(answered.sum() / span)


def offered_qps(setting) -> float:
    """Arrivals drawn per second of the window (Poisson: close to the rate asked for)."""
    return float(len(times_of(setting)) / setting.arrival_spec["seconds"])


def dropped_share(setting) -> float:
    times = times_of(setting)
    return float(np.isnan(times[:, DONE]).mean()) if len(times) else 0.0


def late_share(setting) -> float:
    """Answered, but after ``p99_ms_max``: the share of queries a user waited too long for."""
    response = response_ms(times_of(setting))
    answered = np.isfinite(response)
    if not len(response):
        return 0.0
    return float((answered & (response > setting.arrival_spec["p99_ms_max"])).mean())


def lag_ms(first: int, then: int, q: float):
    """The q-th percentile of (column ``then`` - column ``first``) over the queries that have
    both: send lag (sent - scheduled: the client behind), queue (start - sent: waiting for the
    server), service (end - start: the search)."""
    def compute(setting) -> float:
        times = times_of(setting)
        gap = (times[:, then] - times[:, first]) * 1000.0
        gap = gap[~np.isnan(gap)]
        return percentile(gap, q) if len(gap) else float("nan")
    return compute


def sustained(p99_ms: float, bound_ms: float) -> bool:
    """A rate is sustained when its p99 response time stays within the bound."""
    return bool(np.isfinite(p99_ms) and p99_ms <= bound_ms)


def sustainable_rate(rates, p99s, bound_ms: float) -> float:
    """The highest rate whose p99 stays within ``bound_ms``; 0.0 when none does."""
    held = [float(rate) for rate, p99 in zip(rates, p99s) if sustained(float(p99), bound_ms)]
    return max(held) if held else 0.0
