"""Runbook generators: the standard shapes of a changing index, as steps over ``n`` data ids
(sliding window, expiration, clustered arrival), and the check of their parameters."""

from __future__ import annotations

from typing import Any

from vecbench.core.errors import ConfigError
from vecbench.core.params import check_int, check_no_extra
from vecbench.run.runbook_steps import Step

#: Each generator's parameters and their lower bounds (None: optional; lifetimes: a list).
GENERATOR_PARAMS = {
    "sliding_window": {"window": 1, "step": 1, "n": None, "rebuild_every": 0,
                       "compact_every": 0},
    "expiration": {"batch": 1, "lifetimes": None, "n": None, "rebuild_every": 0,
                   "compact_every": 0},
    "clustered": {"n_clusters": 2, "delete_after": 0, "n": None, "rebuild_every": 0,
                  "compact_every": 0},
}


def generator_params(name: str, params: Any, where: str) -> dict:
    if not isinstance(params, dict):
        raise ConfigError(f"expected a mapping of {name} parameters, got {params!r}", where)
    try:
        check_no_extra(name, params, GENERATOR_PARAMS[name])
    except ConfigError as exc:
        raise exc.within(where) from None
    out = {}
    for key, low in GENERATOR_PARAMS[name].items():
        value = params.get(key)
        try:
            if key == "lifetimes":
                value = [1, 4, 16] if value is None else value
                if not isinstance(value, list) or not value:
                    raise ConfigError(f"expected a non-empty list of step counts, got "
                                      f"{value!r}", key)
                value = [check_int(f"{key}[{i}]", v, 1) for i, v in enumerate(value)]
            elif key == "n":
                value = None if value is None else check_int(key, value, 1)
            elif key in ("delete_after", "rebuild_every", "compact_every"):
                value = check_int(key, 0 if value is None else value, 0)
            else:
                if value is None:
                    raise ConfigError(f"{name} needs {key}", key)
                value = check_int(key, value, low)
        except ConfigError as exc:
            raise ConfigError(exc.message, f"{where}.{key}") from None
        out[key] = value
    if name == "sliding_window" and out["step"] > out["window"]:
        raise ConfigError(f"expected step <= window ({out['window']}), got {out['step']}",
                          f"{where}.step")
    if name == "expiration" and out["batch"] < len(out["lifetimes"]):
        raise ConfigError(f"expected batch >= the {len(out['lifetimes'])} lifetimes (each "
                          f"batch is split among them), got {out['batch']}", f"{where}.batch")
    return {key: tuple(v) if isinstance(v, list) else v for key, v in out.items()}


def _used(n_base: int, params: dict, where: str, need: int) -> int:
    n = params.get("n") or n_base
    if n > n_base:
        raise ConfigError(f"expected n <= the {n_base} data vectors, got {n}", f"{where}.n")
    if n < need:
        raise ConfigError(f"uses {n} vectors; expected at least {need}", where)
    return n


def _search(params: dict, round_: int, where: str) -> list[Step]:
    """The search ending a round, after a compact every ``compact_every`` rounds and a
    rebuild every ``rebuild_every`` rounds."""
    out = []
    for operation in ("compact", "rebuild"):
        every = params.get(f"{operation}_every", 0)
        if every and round_ % every == 0:
            out.append(Step(operation, where=where))
    return out + [Step("search", where=where)]


def sliding_window(n_base: int, params: dict, sizes, where: str) -> tuple[Step, ...]:
    """Insert ``window`` points; then each round inserts ``step`` new ones, deletes the
    ``step`` oldest and searches."""
    window, size = params["window"], params["step"]
    n = _used(n_base, params, where, window)
    steps = [Step("insert", 0, window, where=f"{where} step 1"), Step("search", where=where)]
    for round_, start in enumerate(range(window, n - size + 1, size), 1):
        steps += [Step("insert", start, start + size, where=f"{where} round at {start}"),
                  Step("delete", start - window, start - window + size,
                       where=f"{where} round at {start}"),
                  *_search(params, round_, where)]
    return tuple(steps)


def expiration(n_base: int, params: dict, sizes, where: str) -> tuple[Step, ...]:
    """Each step inserts ``batch`` points, split evenly among ``lifetimes``; a point lives its
    lifetime in steps, then is deleted; a search ends every step."""
    batch, lifetimes = params["batch"], list(params["lifetimes"])
    n = _used(n_base, params, where, batch)
    parts = [batch * j // len(lifetimes) for j in range(len(lifetimes) + 1)]
    expiring: dict[int, list[tuple[int, int]]] = {}
    steps: list[Step] = []
    for t, start in enumerate(range(0, n - batch + 1, batch)):
        label = f"{where} step {t + 1}"
        steps.append(Step("insert", start, start + batch, where=label))
        for j, life in enumerate(lifetimes):
            expiring.setdefault(t + life, []).append((start + parts[j], start + parts[j + 1]))
        for lo, hi in expiring.pop(t, []):
            if hi > lo:
                steps.append(Step("delete", lo, hi, where=label))
        steps += _search(params, t, where) if t else [Step("search", where=where)]
    return tuple(steps)


def clustered(n_base: int, params: dict, sizes: list[int] | None,
              where: str) -> tuple[Step, ...]:
    """Clusters inserted one after another (the data arrives in k-means cluster order: the
    distribution drifts); with ``delete_after: m`` the cluster inserted m steps before is
    deleted; a search after each cluster."""
    if sizes is None:
        raise ConfigError("clustered runbooks are expanded with the data", where)
    bounds = [0]
    for size in sizes:
        bounds.append(bounds[-1] + size)
    m = params["delete_after"]
    steps: list[Step] = []
    for c in range(len(sizes)):
        label = f"{where} cluster {c + 1}"
        if sizes[c]:
            steps.append(Step("insert", bounds[c], bounds[c + 1], where=label))
        if m and c >= m and sizes[c - m]:
            steps.append(Step("delete", bounds[c - m], bounds[c - m + 1], where=label))
        steps += _search(params, c, where) if c else [Step("search", where=where)]
    return tuple(steps)


GENERATE = {"sliding_window": sliding_window, "expiration": expiration, "clustered": clustered}
