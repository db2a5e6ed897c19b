"""Metric conformance: a registered :class:`vecbench.evaluate.metrics.Metric` declares a direction and a
label, and computes a finite value from a tiny raw result (what ``vecbench collect`` hands it).
``tests/unit/test_metrics.py`` runs these on every registered metric.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from vecbench.conformance import Skip
from vecbench.evaluate.metrics import evaluate, lookup, parse_metric, Setting
from vecbench.run.records import Reference

#: What a metric may read from a setting (see ``vecbench.evaluate.metrics.Metric.needs``).
NEEDS = {"truth", "truth_distances", "judgments", "index_truth", "true_distances", "timings",
         "arrival", "runbook"}
NQ, DEPTH, N_BASE = 20, 10, 200


@functools.lru_cache(maxsize=1)
def setting() -> Any:
    """20 queries answered exactly to depth 10, with timings: every computed built-in that
    needs no relevance judgments is defined on it."""
    rng = np.random.default_rng(3)
    truth = np.stack([rng.permutation(N_BASE)[:DEPTH] for _ in range(NQ)]).astype(np.int64)
    distances = np.sort(rng.uniform(0.1, 2.0, (NQ, DEPTH)), axis=1)
    reference = Reference(truth_ids=truth, truth_distances=distances,
                          query_lid=rng.uniform(5, 15, NQ), n_base=N_BASE)
    return Setting(ids={DEPTH: truth.copy()}, reference=reference,
                   true_distances=distances.copy(), index_truth=truth.copy(),
                   batch_seconds=np.array([0.010, 0.011, 0.009, 0.010, 0.012]),
                   latency_seconds=rng.uniform(0.0004, 0.0008, 40), n_base=N_BASE)


@functools.lru_cache(maxsize=1)
def loaded_setting() -> Any:
    """The same raw result under an arrival load: 40 queries at 100 per second over 0.4 s, each
    sent 0.1 ms late, searched for 0.5 ms, answered 0.1 ms later."""
    import dataclasses

    scheduled = np.arange(40) / 100.0
    times = np.column_stack([scheduled, scheduled + 1e-4, scheduled + 1e-4,
                             scheduled + 6e-4, scheduled + 7e-4, np.zeros(40)])
    spec = {"rate": 100.0, "seconds": 0.4, "clients": 1, "p99_ms_max": 10.0,
            "drain_seconds": 1.0}
    return dataclasses.replace(setting(), arrival=times, arrival_spec=spec)


@functools.lru_cache(maxsize=1)
def runbook_setting() -> Any:
    """The same raw result as a runbook's first search step: a log with one step of each
    operation (200 points built, 20 inserted, 10 deleted, 5 replaced, a search, a rebuild and a
    compaction), and 4 of the 20 inserted points probed, 3 found."""
    import dataclasses

    ops = np.array(["build", "insert", "delete", "replace", "search", "rebuild", "compact"])
    log = {"op": ops, "seconds": np.array([0.5, 0.02, 0.01, 0.01, 0.0, 0.4, 0.1]),
           "count": np.array([200, 20, 10, 5, 0, 200, 0]),
           "active": np.array([200, 220, 210, 210, 210, 210, 210]),
           "prepare_seconds": np.zeros(7), "truth_seconds": np.array([0, 0, 0, 0, 0.03, 0, 0]),
           "probe_step": np.zeros(4, dtype=np.int64),
           "probe_tags": np.array([200, 201, 202, 203]),
           "probe_ids": np.array([[200, 1], [5, 201], [202, 7], [8, 9]])}
    return dataclasses.replace(setting(), runbook=log,
                               step={"step": 5, "search": 0, "active": 210})


class Subject:
    def __init__(self, name: str):
        self.name = name
        self.metric = lookup(name)


def subjects(name: str) -> list[tuple[str, Subject]]:
    return [("", Subject(name))]


def prepare(subject: Subject) -> None:
    """Nothing to skip: lookup already refused what is not a Metric."""


def check_declaration(s: Subject) -> None:
    m = s.metric
    assert isinstance(m.higher_is_better, bool), "higher_is_better is not a bool"
    assert isinstance(m.label, str) and m.label, "no label"
    unknown = set(m.needs) - NEEDS
    assert not unknown, f"needs {sorted(unknown)}; expected some of {sorted(NEEDS)}"


def check_computes(s: Subject) -> None:
    m = s.metric
    if m.compute is None:
        raise Skip("recorded at run time, not computed from raw results")
    if "judgments" in m.needs:
        raise Skip("needs relevance judgments")
    column = parse_metric(f"{m.name}@{DEPTH}" if m.takes_depth else m.name)
    raw = (loaded_setting() if "arrival" in m.needs
           else runbook_setting() if "runbook" in m.needs else setting())
    value, per_query = evaluate(raw, column)
    assert np.isfinite(value), f"{column.column} = {value} on a complete raw result"
    if m.per_query:
        assert per_query is not None and per_query.shape == (NQ,), \
            f"per-query values of shape {getattr(per_query, 'shape', None)}, expected ({NQ},)"


CHECKS = {"declaration": check_declaration, "computes": check_computes}
