"""Runbooks: a unit's index changes while it serves (insert, delete, replace, search steps).

A ``runbook:`` in an experiment is one of

- a list of steps (``[{operation: insert, start: 0, end: 1000}, {operation: search}, ...]``);
- a file in big-ann-benchmarks' runbook format, read unchanged: ``{dataset: {max_pts: N, 1:
  {operation: ..., start: ..., end: ...}, 2: ..., gt_url: ...}}`` (``runbook: path.yaml`` or
  ``{file: path.yaml, dataset: name}`` where the file names several datasets);
- a generator: ``{sliding_window: {...}}``, ``{clustered: {...}}``, ``{expiration: {...}}``;

with optional ``apply`` (``native``: mutations go through the index's own insert/delete;
``rebuild``: the index is built afresh over the active set before each search that follows a
change, the baseline) and ``probe`` (points of each insert step searched for themselves).

Ids follow big-ann-benchmarks: a step's ``start``/``end`` are data ids (rows of the dataset in
the unit's arrival order); each id inserted gets the same *tag*; ``replace`` points the tags
``[tags_start, tags_end)`` at the data ids from ``ids_start`` on; searches return tags.

This module is pure Python (no numpy): ``vecbench validate`` checks a runbook's steps here,
without data. Generators whose size depends on the data are expanded at run time, then checked
the same way.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vecbench.core.errors import ConfigError
from vecbench.core.params import check_int, check_no_extra, check_str
from vecbench.core.yaml_files import parse_yaml, read_text

OPERATIONS = ("insert", "delete", "replace", "search", "rebuild", "compact")
#: The fields each operation takes (big-ann-benchmarks' names).
FIELDS = {"insert": ("start", "end"), "delete": ("start", "end"),
          "replace": ("tags_start", "tags_end", "ids_start"),
          "search": (), "rebuild": (), "compact": ()}
#: What an operation asks of an index applied natively (see Index.capabilities).
NEEDS = {"insert": {"insert"}, "delete": {"delete"}, "replace": {"insert", "delete"}}
GENERATORS = ("sliding_window", "clustered", "expiration")
RUNBOOK_KEYS = ("steps", "file", "dataset", "apply", "probe", *GENERATORS)
APPLY = ("native", "rebuild")
#: Points of an insert step searched for themselves (searchable@k), by default.
DEFAULT_PROBE = 100
#: Steps a runbook may have (a typo in a generator should not make a million).
MAX_STEPS = 100_000


@dataclass(frozen=True)
class Step:
    operation: str
    start: int | None = None
    end: int | None = None
    tags_start: int | None = None
    tags_end: int | None = None
    ids_start: int | None = None
    where: str = ""      # the YAML path (or file and step number) of the step, for messages

    def canonical(self) -> dict:
        return {"operation": self.operation,
                **{name: getattr(self, name) for name in FIELDS[self.operation]}}

    def label(self) -> str:
        if self.operation in ("insert", "delete"):
            return f"{self.operation} [{self.start}, {self.end})"
        if self.operation == "replace":
            return (f"replace tags [{self.tags_start}, {self.tags_end}) with ids from "
                    f"{self.ids_start}")
        return self.operation


@dataclass(frozen=True)
class Runbook:
    """A parsed ``runbook:``: its steps (None for a generator expanded with the data)."""

    steps: tuple[Step, ...] | None
    generator: tuple[str, tuple] | None = None     # (name, sorted (param, value) pairs)
    apply: str = "native"
    probe: int = DEFAULT_PROBE
    source: str = ""                               # the file, for labels
    max_pts: int | None = None
    where: str = "runbook"
    digest: str = field(default="", compare=False)

    def canonical(self) -> dict:
        """What identifies the runbook in a unit's spec (a file's steps, not its name)."""
        body: dict = ({self.generator[0]: dict(self.generator[1])} if self.generator
                      else {"steps": [step.canonical() for step in self.steps]})
        return {**body, "apply": self.apply, "probe": self.probe}

    def label(self) -> str:
        """``sliding_window(n=8000,step=250,window=3000)``, ``simple.yaml(5 steps) rebuild``:
        the row label (``apply: rebuild`` named, so its rows never group with native ones)."""
        suffix = " rebuild" if self.apply == "rebuild" else ""
        if self.generator:
            inner = ",".join(f"{k}={_text(v)}" for k, v in self.generator[1]
                             if v is not None and v != 0)
            return f"{self.generator[0]}({inner}){suffix}"
        name = Path(self.source).name if self.source else "inline"
        return f"{name}({len(self.steps)} steps){suffix}"

    def search_count(self) -> int | None:
        """Search steps, where known without data (None: a generator sized by the data)."""
        steps = self.steps
        if steps is None:
            params = dict(self.generator[1])
            if self.generator[0] == "clustered":
                return params["n_clusters"]
            if params.get("n") is None:
                return None
            steps = self.expand(params["n"])
        return sum(step.operation == "search" for step in steps)

    def needs(self, steps: tuple[Step, ...] | None = None) -> set[str]:
        """Capabilities its steps ask of an index (none when applied by rebuilding). A
        generator's steps are known with the data; its shape says what it will ask."""
        if self.apply == "rebuild":
            return set()
        steps = steps if steps is not None else self.steps
        if steps is None:  # every generator inserts after the first step and deletes
            return {"insert", "delete"} if self._generator_deletes() else {"insert"}
        needs, built = set(), False
        for step in steps:
            if step.operation == "insert" and not built:
                built = True          # the first insert builds the index
                continue
            needs |= NEEDS.get(step.operation, set())
            built = built or step.operation == "rebuild"
        return needs

    def _generator_deletes(self) -> bool:
        name, params = self.generator
        return not (name == "clustered" and dict(params).get("delete_after", 0) == 0)

    def expand(self, n_base: int, cluster_sizes: list[int] | None = None) -> tuple[Step, ...]:
        """The steps over ``n_base`` data ids, checked (a generator's made here)."""
        steps = self.steps
        if steps is None:
            name, params = self.generator
            steps = GENERATE[name](n_base, dict(params), cluster_sizes, self.where)
        check_steps(steps, n_base, self.where)
        return steps


# ---------------------------------------------------------------------------------------------
# parsing

def parse(value: Any, base_dir: str = ".", where: str = "runbook") -> Runbook:
    """A ``runbook:`` value -> Runbook; ConfigError naming the YAML path (or the file's step)
    otherwise."""
    if isinstance(value, list):
        return _checked(Runbook(_steps(value, where), where=where), where)
    if isinstance(value, str):
        value = {"file": value}
    if not isinstance(value, dict):
        raise ConfigError(f"expected a list of steps, a runbook file, or a mapping with one of "
                          f"steps, file, {', '.join(GENERATORS)}; got {value!r}", where)
    try:
        check_no_extra("runbook", value, RUNBOOK_KEYS)
    except ConfigError as exc:
        raise exc.within(where) from None
    kinds = [key for key in ("steps", "file", *GENERATORS) if key in value]
    if len(kinds) != 1:
        raise ConfigError(f"expected exactly one of steps, file, {', '.join(GENERATORS)}; got "
                          f"{', '.join(kinds) or 'none'}", where)
    apply = value.get("apply", "native")
    if apply not in APPLY:
        raise ConfigError(f"expected one of {', '.join(APPLY)}, got {apply!r}", f"{where}.apply")
    try:
        probe = check_int("probe", value.get("probe", DEFAULT_PROBE), 0, 1_000_000)
    except ConfigError as exc:
        raise exc.within(where) from None
    kind = kinds[0]
    if "dataset" in value and kind != "file":
        raise ConfigError("names the dataset of a runbook file; expected it only with file",
                          f"{where}.dataset")
    if kind == "steps":
        if not isinstance(value["steps"], list):
            raise ConfigError(f"expected a list of steps, got {value['steps']!r}",
                              f"{where}.steps")
        runbook = Runbook(_steps(value["steps"], f"{where}.steps"), apply=apply, probe=probe,
                          where=f"{where}.steps")
    elif kind == "file":
        runbook = _from_file(value["file"], value.get("dataset"), base_dir, where, apply, probe)
    else:
        params = _generator_params(kind, value[kind], f"{where}.{kind}")
        runbook = Runbook(None, (kind, tuple(sorted(params.items()))), apply, probe,
                          where=f"{where}.{kind}")
    return _checked(runbook, where)


def _checked(runbook: Runbook, where: str) -> Runbook:
    """Steps known without data are checked now (against ``max_pts`` where the file has it);
    a generator whose size is given is expanded once to check it."""
    if runbook.steps is not None:
        check_steps(runbook.steps, runbook.max_pts, where)
    elif dict(runbook.generator[1]).get("n") is not None and runbook.generator[0] != "clustered":
        runbook.expand(dict(runbook.generator[1])["n"])
    return runbook


def _steps(items: list, where: str, label=None) -> tuple[Step, ...]:
    if not items:
        raise ConfigError("expected at least one step, got none", where)
    steps = []
    for i, item in enumerate(items):
        steps.append(_step(item, label(i) if label else f"{where}[{i}]"))
    return tuple(steps)


def _step(item: Any, where: str) -> Step:
    if not isinstance(item, dict) or "operation" not in item:
        raise ConfigError(f"expected a mapping with operation ({'|'.join(OPERATIONS)}) and its "
                          f"fields, got {item!r}", where)
    operation = item["operation"]
    if operation not in OPERATIONS:
        raise ConfigError(f"expected operation one of {', '.join(OPERATIONS)}, got "
                          f"{operation!r}", where)
    try:
        check_no_extra(f"a {operation} step", item, ("operation", *FIELDS[operation]))
        values = {}
        for name in FIELDS[operation]:
            if name not in item:
                raise ConfigError(f"a {operation} step needs {', '.join(FIELDS[operation])}; "
                                  f"{name} is missing")
            values[name] = check_int(name, item[name], 0)
    except ConfigError as exc:
        raise ConfigError(exc.message, where) from None
    return Step(operation, where=where, **values)


def _from_file(path: Any, dataset: Any, base_dir: str, where: str, apply: str,
               probe: int) -> Runbook:
    """big-ann-benchmarks' layout: {dataset: {max_pts, 1: step, 2: step, ..., gt_url}}."""
    path = check_str("file", path)
    full = Path(path) if Path(path).is_absolute() else Path(base_dir) / path
    text = read_text(full, "runbook")
    data = parse_yaml(text, file=str(path))
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{path}: expected a mapping of dataset names to runbooks, got "
                          f"{type(data).__name__}", f"{where}.file")
    if dataset is None:
        if len(data) != 1:
            raise ConfigError(f"{path} has runbooks for {', '.join(map(str, data))}; expected "
                              f"dataset: one of them", f"{where}.dataset")
        dataset = next(iter(data))
    if dataset not in data:
        raise ConfigError(f"expected one of {', '.join(map(str, data))} (the datasets of "
                          f"{path}), got {dataset!r}", f"{where}.dataset")
    body = data[dataset]
    if not isinstance(body, dict):
        raise ConfigError(f"{path}: {dataset}: expected a mapping of step numbers to steps",
                          f"{where}.file")
    numbered = {key: item for key, item in body.items() if isinstance(key, int)
                and not isinstance(key, bool)}
    named = set(body) - set(numbered)
    unknown = named - {"max_pts", "gt_url"}
    if unknown:
        raise ConfigError(f"{path}: {dataset}: unknown key {sorted(map(str, unknown))[0]!r}; "
                          f"expected step numbers, max_pts, gt_url", f"{where}.file")
    max_pts = body.get("max_pts")
    if max_pts is not None:
        try:
            max_pts = check_int("max_pts", max_pts, 1)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {dataset}: {exc.message}", f"{where}.file") from None
    order = sorted(numbered)
    steps = _steps([numbered[n] for n in order], f"{where}.file",
                   label=lambda i: f"{where}.file ({Path(path).name} {dataset} step "
                                   f"{order[i]})")
    digest = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
    return Runbook(steps, None, apply, probe, str(path), max_pts, where, digest)


# ---------------------------------------------------------------------------------------------
# checking: the active set, step by step

def check_steps(steps: tuple[Step, ...], n_data: int | None, where: str = "runbook") -> None:
    """Simulate the active tags: a delete of tags not present, an insert of tags present or
    past the data, a search of an empty index: one line naming the step."""
    if len(steps) > MAX_STEPS:
        raise ConfigError(f"{len(steps)} steps; expected at most {MAX_STEPS}", where)
    active: set[int] = set()
    searched = False
    for step in steps:
        def fail(what: str) -> None:
            raise ConfigError(f"step {step.label()}: {what}", step.where)

        if step.operation in ("insert", "delete") and step.end <= step.start:
            fail(f"expected end > start, got start {step.start}, end {step.end}")
        if step.operation == "insert":
            if n_data is not None and step.end > n_data:
                fail(f"inserts past the data: ids must be < {n_data}, got end {step.end}")
            present = next((i for i in range(step.start, step.end) if i in active), None)
            if present is not None:
                fail(f"inserts id {present}, which is already present")
            active.update(range(step.start, step.end))
        elif step.operation == "delete":
            missing = next((i for i in range(step.start, step.end) if i not in active), None)
            if missing is not None:
                fail(f"deletes id {missing}, which is not present")
            active.difference_update(range(step.start, step.end))
        elif step.operation == "replace":
            if step.tags_end <= step.tags_start:
                fail(f"expected tags_end > tags_start, got {step.tags_start}, {step.tags_end}")
            count = step.tags_end - step.tags_start
            if n_data is not None and step.ids_start + count > n_data:
                fail(f"replaces with ids past the data: ids must be < {n_data}, got up to "
                     f"{step.ids_start + count - 1}")
            missing = next((i for i in range(step.tags_start, step.tags_end)
                            if i not in active), None)
            if missing is not None:
                fail(f"replaces tag {missing}, which is not present")
        elif step.operation in ("search", "rebuild", "compact") and not active:
            fail("the index is empty here; expected an insert before it")
        searched = searched or step.operation == "search"
    if not searched:
        raise ConfigError("expected at least one search step, got none", where)


# ---------------------------------------------------------------------------------------------
# generators

GENERATOR_PARAMS = {
    "sliding_window": {"window": 1, "step": 1, "n": None, "rebuild_every": 0,
                       "compact_every": 0},
    "expiration": {"batch": 1, "lifetimes": None, "n": None, "rebuild_every": 0,
                       "compact_every": 0},
    "clustered": {"n_clusters": 2, "delete_after": 0, "n": None, "rebuild_every": 0,
                       "compact_every": 0},
}


def _generator_params(name: str, params: Any, where: str) -> dict:
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


def _text(value: Any) -> str:
    return "/".join(map(str, value)) if isinstance(value, tuple) else str(value)


def spec_of(runbook: Runbook | None) -> dict:
    """The runbook's part of a unit's spec ({} without one)."""
    return {} if runbook is None else {"runbook": runbook.canonical()}


def digest_of(runbook: Runbook) -> str:
    text = json.dumps(runbook.canonical(), sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def check_capabilities(units: list) -> None:
    """Refuse, before any data is read, a runbook its unit cannot run: an index without the
    insert or delete the steps ask for (apply: rebuild runs on any index), a clustered runbook
    with an insertion ordering of its own, rescoring or concurrent clients inside steps."""
    from vecbench.core.registry import indexes
    from vecbench.datasets.dims import known_size

    sizes: dict = {}
    for unit in units:
        runbook = unit.runbook
        if runbook is None:
            continue
        entry = unit.dataset.where
        if entry not in sizes:
            sizes[entry] = known_size(unit.dataset.name, unit.dataset.params, unit.base_dir)
        if sizes[entry] is not None:  # steps past the data: refused now, not at run time
            if runbook.steps is not None:
                check_steps(runbook.steps, sizes[entry], runbook.where)
            elif runbook.generator[0] != "clustered":
                runbook.expand(sizes[entry])
        index = indexes.get(unit.index.name)
        has = set(getattr(index, "capabilities", frozenset()))
        missing = sorted(runbook.needs() - has)
        if missing:
            raise ConfigError(
                f"{unit.index.name} cannot {' or '.join(missing)} natively (its capabilities: "
                f"{', '.join(sorted(has)) or 'none'}), and the runbook {runbook.label()} asks it "
                f"to; expected an index that can, or the runbook with apply: rebuild (the index "
                f"built afresh before each search)", unit.index.where)
        if runbook.generator and runbook.generator[0] == "clustered" \
                and unit.ordering.name != "original":
            raise ConfigError(f"a clustered runbook sets the arrival order itself; expected "
                              f"ordering original, got {unit.ordering.name}",
                              unit.ordering.where or "orderings")
        if unit.index.rescore_grid != ({},):
            raise ConfigError("rescoring is not measured inside runbook steps; expected no "
                              "rescore with a runbook", f"{unit.index.where}.rescore")
        if any("clients" in search for search in unit.index.search_grid):
            raise ConfigError("concurrent clients are not measured inside runbook steps; "
                              "expected no clients with a runbook",
                              f"{unit.index.where}.search.clients")
