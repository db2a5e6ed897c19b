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
from vecbench.run.runbook_generators import GENERATE, generator_params
from vecbench.run.runbook_steps import FIELDS, NEEDS, OPERATIONS, Step, check_steps

GENERATORS = ("sliding_window", "clustered", "expiration")
RUNBOOK_KEYS = ("steps", "file", "dataset", "apply", "probe", *GENERATORS)
APPLY = ("native", "rebuild")
#: Points of an insert step searched for themselves (searchable@k), by default.
DEFAULT_PROBE = 100


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
        check_steps(steps, n_base, self.where, self.max_pts)
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
        params = generator_params(kind, value[kind], f"{where}.{kind}")
        runbook = Runbook(None, (kind, tuple(sorted(params.items()))), apply, probe,
                          where=f"{where}.{kind}")
    return _checked(runbook, where)


def _checked(runbook: Runbook, where: str) -> Runbook:
    """Steps known without data are checked now (active points within a file's ``max_pts``);
    a generator whose size is given is expanded once to check it."""
    if runbook.steps is not None:
        check_steps(runbook.steps, None, where, runbook.max_pts)
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
    # big-ann's replace steps may also say where their data ids end (ids_end); it must agree
    optional = ("ids_end",) if operation == "replace" else ()
    try:
        check_no_extra(f"a {operation} step", item, ("operation", *FIELDS[operation], *optional))
        values = {}
        for name in FIELDS[operation]:
            if name not in item:
                raise ConfigError(f"a {operation} step needs {', '.join(FIELDS[operation])}; "
                                  f"{name} is missing")
            values[name] = check_int(name, item[name], 0)
        if "ids_end" in item:
            count = values["tags_end"] - values["tags_start"]
            expected = values["ids_start"] + count
            if check_int("ids_end", item["ids_end"], 0) != expected:
                raise ConfigError(f"ids_end {item['ids_end']} does not match its {count} tags; "
                                  f"expected ids_start + tags_end - tags_start = {expected}")
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
    source = f"{path}:{dataset}" if len(data) > 1 else str(path)  # the label names the pick
    return Runbook(steps, None, apply, probe, source, max_pts, where, digest)


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
                check_steps(runbook.steps, sizes[entry], runbook.where, runbook.max_pts)
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
