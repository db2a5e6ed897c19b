"""Experiment YAML -> a validated list of build units, without loading any data.

Lists at leaves are grid axes and multiply; ``zip:`` pairs named axes; a top-level ``cases:``
list gives explicit combinations. A build unit is dataset × pipeline × index build params ×
ordering × repeat; search parameters are swept inside it. Every error names the file and the
YAML path of the offending value.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vecbench.core.errors import ConfigError
from vecbench.core.params import check_float, check_int, check_no_extra, check_str, parse_number
from vecbench.core.registry import indexes, orderings, transforms
from vecbench.run import arrival_spec
from vecbench.datasets.dims import known_dim
from vecbench.run import filter_axis
from vecbench.run.runbook import check_capabilities, parse as parse_runbook
from vecbench.run.runbook import spec_of as runbook_spec
from vecbench.core.yaml_files import parse_yaml, read_text, read_yaml  # noqa: F401 (re-exported)
from vecbench.core.components import (MAX_GRID, Component, check_transform, construct,  # noqa: F401
                                      entry_of, expand_component, expand_dataset, expand_params,
                                      list_params_of,
                                      lookup)

TOP_LEVEL = ("name", "seed", "k", "repeat", "datasets", "pipelines", "indexes", "orderings",
             "cases", "threads", "timing", "description", "filters", "runbook", "cost")
#: ``cost:`` keys: the machine's price, and its memory (default: this host's) for usd_per_gb_month
COST_KEYS = ("usd_per_hour", "memory_gb")
#: ``timing:`` keys and their checks (see vecbench.run.stages.Timing); VECBENCH_MIN_SECONDS sets the
#: default of min_seconds (the test suite shortens timings with it; rows record what was used).
TIMING_KEYS = ("min_seconds", "min_passes", "latency_queries", "latency_seconds",
               "client_seconds")
#: Seconds any timing may take per search setting: an hour measures nothing a minute does not,
#: and a longer (or infinite) one hangs the run.
MAX_TIMING_SECONDS = 3600.0
#: Upper bounds of the ``timing:`` counts (passes, single queries timed).
TIMING_COUNTS = {"min_passes": 10_000, "latency_queries": 1_000_000}
#: ``search: {clients: N}`` runs N concurrent client threads; more would measure the machine.
MAX_CLIENTS = 256
#: Keys of ``search:`` that say how the runner issues queries, never passed to the index.
RUNNER_SEARCH_KEYS = ("clients", "arrival")
CASE_KEYS = ("dataset", "pipeline", "index", "ordering", "repeat", "runbook")
INDEX_KEYS = ("build", "search", "rescore")


@dataclass(frozen=True)
class IndexSpec:
    name: str
    build: dict = field(hash=False)
    search_grid: tuple = ()
    where: str = ""
    rescore_grid: tuple = ({},)  # {} = no rescoring; else {oversample, with}


@dataclass(frozen=True)
class BuildUnit:
    """One index build: what is searched with every setting of ``index.search_grid``."""

    experiment: str
    dataset: Component
    pipeline: tuple[Component, ...]
    index: IndexSpec
    ordering: Component
    repeat: int
    k: int
    seed: int
    threads: int | None
    base_dir: str
    source: str = ""          # the experiment file, for messages
    timing: tuple = ()        # (name, value) pairs of the timing protocol
    filters: tuple = ()       # the filters: axis (Components; () = no filter), searched inside
    #: a streaming workload (vecbench.run.runbook.Runbook): steps instead of one build
    runbook: Any = field(default=None, hash=False, compare=False)
    #: (name, value) pairs of ``cost:``: a label of the rows, not part of what was measured
    cost: tuple = field(default=(), compare=False)

    def fitted_pipeline(self) -> tuple[Component, ...]:
        """The pipeline as fitted: repeat ``r`` fits every step that draws random numbers (a
        transform with a ``seed`` parameter) with ``seed + r``, as it re-seeds the index's
        training and the insertion order, so that ``repeat`` is the study's seed axis for fits
        too. Repeat 0 is the pipeline as written."""
        if not self.repeat:
            return self.pipeline
        return tuple(reseeded(step, self.repeat) for step in self.pipeline)

    def spec(self) -> dict:
        """The canonical description that identifies the unit's results."""
        return {
            "dataset": self.dataset.canonical(),
            "pipeline": [step.canonical() for step in self.fitted_pipeline()],
            "index": {"name": self.index.name, "build": self.index.build,
                      "search": list(self.index.search_grid),
                      **({"rescore": list(self.index.rescore_grid)}
                         if self.index.rescore_grid != ({},) else {})},
            "ordering": self.ordering.canonical(),
            "repeat": self.repeat, "k": self.k, "seed": self.seed, "threads": self.threads,
            "timing": dict(self.timing),
            # only with a filters: axis, so that the keys of unfiltered units stay as they were
            **({"filters": [f.canonical() for f in self.filters]} if self.filters else {}),
            **runbook_spec(self.runbook),
        }

    def spec_digest(self) -> str:
        """Digest of the canonical spec alone: the unit's place in the experiment's grid."""
        text = json.dumps(self.spec(), sort_keys=True, default=str)
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    def key(self, versions: dict, threads: int, data: str) -> str:
        """The unit's identity: its spec, the thread count it runs with, the content digest of
        its data (:mod:`vecbench.datasets.identity`) and the stage versions."""
        text = json.dumps({"spec": self.spec(), "versions": versions, "threads": threads,
                           "data": data}, sort_keys=True, default=str)
        label = "-".join([self.dataset.name, self.index.name, self.ordering.name,
                          f"r{self.repeat}"])
        return f"{label}-{hashlib.blake2b(text.encode(), digest_size=8).hexdigest()}"

    def labels(self) -> dict:
        """Readable labels and typed parameter columns of the unit's rows."""
        columns = {f"build.{name}": value for name, value in self.index.build.items()}
        for step in self.pipeline:
            columns.update({f"pipeline.{step.name}.{name}": value
                            for name, value in step.params.items()})
        if self.runbook is not None:
            columns["runbook"] = self.runbook.label()
        return {"dataset_entry": self.dataset.name, "pipeline": pipeline_label(self.pipeline),
                "index": self.index.name, "ordering": component_label(self.ordering),
                "repeat": self.repeat, "k": self.k, "columns": columns,
                **({"cost": dict(self.cost)} if self.cost else {})}


def reseeded(step: Component, offset: int) -> Component:
    """``step`` with its ``seed`` parameter moved by ``offset``; a step without one unchanged."""
    spec = transforms.spec(step.name)
    default = {p.name: p.default for p in spec.params}.get("seed") if spec else None
    if default is None:
        return step
    seed = int(step.params.get("seed", default)) + offset
    return Component(step.name, {**step.params, "seed": seed}, step.where)


def component_label(component: Component) -> str:
    if not component.params:
        return component.name
    inner = ",".join(f"{key}={value}" for key, value in sorted(component.params.items()))
    return f"{component.name}({inner})"


def pipeline_label(steps: tuple[Component, ...]) -> str:
    return "|".join(component_label(step) for step in steps) or "float32"


@dataclass(frozen=True)
class Experiment:
    name: str
    file: str
    seed: int
    k: int
    repeat: int
    units: tuple[BuildUnit, ...]
    raw: dict = field(hash=False, default_factory=dict)

    @property
    def n_rows(self) -> int:
        return sum(unit_rows(unit) for unit in self.units)


def unit_rows(unit: BuildUnit) -> int:
    """Result rows of a unit: its unfiltered settings (when none is on the filters axis, or
    there is no axis), then every filter x search setting; a runbook's rows are its settings x
    search steps (where their count is known without data; else counted once)."""
    if unit.runbook is not None:
        return (len(unit.index.search_grid) * len(unit.index.rescore_grid)
                * (unit.runbook.search_count() or 1))
    filters = [f for f in unit.filters if f.name != "none"]
    plain = {json.dumps({n: v for n, v in search.items() if n not in filter_axis.SEARCH_KEYS},
                        sort_keys=True, default=str) for search in unit.index.search_grid}
    unfiltered = len(plain) * len(unit.index.rescore_grid) \
        if not unit.filters or len(filters) < len(unit.filters) else 0
    return unfiltered + len(filters) * len(unit.index.search_grid)


def expand_pipeline(steps: Any, where: str) -> list[tuple[Component, ...]]:
    if steps is None:
        steps = []
    if not isinstance(steps, list):
        raise ConfigError(f"expected a list of transform steps ([] for none), got {steps!r}",
                          where)
    per_step: list[list[Component]] = []
    for i, step in enumerate(steps):
        per_step.append(expand_component(transforms, step, f"{where}[{i}]", "transform",
                                         check_transform))
    return [tuple(chosen) for chosen in itertools.product(*per_step)]


def expand_index(entry: Any, where: str) -> list[IndexSpec]:
    name, params = entry_of(entry, where, "index")
    path = f"{where}.{name}"
    target = lookup(indexes, name, where)
    if not isinstance(params, dict):
        raise ConfigError(f"expected a mapping with 'build' and 'search', got {params!r}", path)
    try:
        check_no_extra(f"index {name}", params, INDEX_KEYS)
    except ConfigError as exc:
        raise exc.within(path) from None
    builds = expand_params(params.get("build"), f"{path}.build", list_params_of(target))
    searches = expand_params(params.get("search"), f"{path}.search")
    checked_searches = []
    for search in searches:
        search = dict(search)
        clients = search.pop("clients", None)  # concurrency: the runner's, not the index's
        arrival = search.pop("arrival", None)  # open-loop load: the runner's too
        # filter_mode / oversample: the filtered workload's, not the index's
        search, filtering = filter_axis.split_search(search, f"{path}.search")
        try:
            checked = {**target.check_search(search), **filtering}
            if clients is not None:
                checked = {**checked, "clients": check_int("clients", clients, 1, MAX_CLIENTS)}
            if arrival is not None:
                if clients is not None:
                    raise ConfigError("expected either clients (closed-loop threads) or arrival "
                                      "(open-loop client processes), got both", "clients")
                try:
                    checked = {**checked, "arrival": arrival_spec.check(arrival)}
                except ConfigError as exc:
                    raise exc.within("arrival") from None
            checked_searches.append(checked)
        except ConfigError as exc:
            raise exc.within(f"{path}.search") from None
    for build in builds:
        instance = construct(target, build, f"{path}.build")
        # what the configured index decides from the YAML alone (a factory string's own
        # search parameters, say)
        for search in checked_searches:
            try:
                instance.check_search_for({name: value for name, value in search.items()
                                           if name not in RUNNER_SEARCH_KEYS
                                           and name not in filter_axis.SEARCH_KEYS})
            except ConfigError as exc:
                raise exc.within(f"{path}.search") from None
    rescores = ({},)
    if "rescore" in params:
        from vecbench.run import rescore  # numpy: validate stays light without rescoring

        given = params["rescore"]
        # a list gives alternatives ({} or null: no rescoring); a mapping is one grid
        alternatives = given if isinstance(given, list) else [given]
        rescores = ()
        for i, alternative in enumerate(alternatives):
            where = f"{path}.rescore" + (f"[{i}]" if isinstance(given, list) else "")
            if isinstance(given, list) and not alternative:
                rescores += ({},)
                continue
            for setting in expand_params(alternative, where, list_params=("cascade",)):
                try:
                    rescores += (rescore.check(setting),)
                except ConfigError as exc:
                    raise exc.within(where) from None
    return [IndexSpec(name, build, tuple(checked_searches), path, rescores) for build in builds]


def expand_ordering(entry: Any, where: str) -> list[Component]:
    from vecbench.compute.ordering import check_params  # numpy: validate stays light without

    name, params = entry_of(entry, where, "ordering")
    path = f"{where}.{name}"
    function = lookup(orderings, name, where)
    combos = expand_params(params, path)
    checked = []
    for combo in combos:
        try:
            checked.append(check_params(name, function, combo))
        except ConfigError as exc:
            raise exc.within(path) from None
    return [Component(name, combo, path) for combo in checked]


def _expand_list(raw: dict, key: str, default: list, expand) -> list:
    value = raw.get(key, default)
    if not isinstance(value, list) or not value:
        raise ConfigError(f"expected a non-empty list, got {value!r}", key)
    out = []
    for i, entry in enumerate(value):
        out.extend(expand(entry, f"{key}[{i}]"))
    return out


# ---------------------------------------------------------------------------------------------
# Loading

def load_experiment(path: str | Path) -> Experiment:
    raw = read_yaml(path)
    try:
        return build_experiment(raw, name_default=Path(path).stem,
                                base_dir=str(Path(path).resolve().parent), source=str(path))
    except ConfigError as exc:
        raise exc.in_file(Path(path).name) from None


def build_experiment(raw: dict, name_default: str = "experiment",
                     base_dir: str = ".", source: str = "") -> Experiment:
    """Validate and expand an experiment mapping (already parsed from YAML)."""
    check_no_extra("the experiment", raw, TOP_LEVEL)
    name = check_name(check_str("name", raw.get("name", name_default)))
    seed = check_int("seed", raw.get("seed", 0), 0)
    k = check_int("k", raw.get("k", 10), 1)
    repeat = check_int("repeat", raw.get("repeat", 1), 1)
    threads = raw.get("threads")
    if threads is not None:
        threads = check_int("threads", threads, 1)
    timing = _timing(raw.get("timing"))
    cost = _cost(raw.get("cost"))
    filters = filter_axis.expand_filters(raw.get("filters"))
    filter_axis.check_files(filters, base_dir)
    runbook = (parse_runbook(raw["runbook"], base_dir) if raw.get("runbook") is not None
               else None)

    if "cases" in raw:
        combos = _expand_cases(raw, repeat, runbook, base_dir)
    else:
        lists = [_expand_list(raw, "datasets", None, expand_dataset),
                 _expand_list(raw, "pipelines", [[]], expand_pipeline),
                 _expand_list(raw, "indexes", None, expand_index),
                 _expand_list(raw, "orderings", ["original"], expand_ordering)]
        size = math.prod(len(items) for items in lists) * repeat
        if size > MAX_GRID:
            raise ConfigError(f"datasets x pipelines x indexes x orderings x repeat = {size} "
                              f"build units; expected at most {MAX_GRID}", "repeat"
                              if repeat > 1 else "indexes")
        combos = [(*combo, repeat, runbook) for combo in itertools.product(*lists)]
    units = []
    seen = set()
    for dataset, pipeline, index, ordering, repeats, unit_runbook in combos:
        if unit_runbook is not None and any(f.name != "none" for f in filters):
            # the filtered workload searches a fixed base; over changing rows it is not built
            raise ConfigError("a runbook's units search a changing set of rows; filtered "
                              "search over a runbook is not supported (leave out filters: or "
                              "runbook:)", "filters")
        for r in range(repeats):
            filter_axis.check_capability(index.name, indexes.get(index.name).capabilities,
                                         index.search_grid, filters, index.where)
            unit = BuildUnit(name, dataset, pipeline, index, ordering, r, k, seed, threads,
                             base_dir, source, timing, filters, unit_runbook, cost)
            ident = json.dumps(unit.spec(), sort_keys=True, default=str)
            if ident not in seen:  # cases may repeat a combination: run it once
                seen.add(ident)
                units.append(unit)
    check_dimensions(units)
    check_capabilities(units)
    return Experiment(name, name_default, seed, k, repeat, tuple(units), raw)


def check_dimensions(units: list[BuildUnit]) -> None:
    """Refuse a reduction to more dimensions than its input has, where the dataset's dimension
    is known without data (:mod:`vecbench.datasets.dims`): it would fail every such unit at run
    time."""
    dims: dict[str, int | None] = {}
    for unit in units:
        entry = unit.dataset.where
        if entry not in dims:
            dims[entry] = known_dim(unit.dataset.name, unit.dataset.params, unit.base_dir)
        dim, source = dims[entry], f"{unit.dataset.name} ({entry})"
        for step in unit.pipeline:
            if dim is None:
                break
            value = step.params.get("n_components")
            if value is None or isinstance(value, bool) or isinstance(value, str):
                continue  # no reduction, or 'auto': its size depends on the data
            kept = int(value) if isinstance(value, int) else max(1, round(float(value) * dim))
            if kept > dim:
                raise ConfigError(f"expected at most the {dim} dimensions of {source}, got "
                                  f"{value}", f"{step.where}.n_components", unit.source or None)
            dim, source = kept, f"the output of {step.where}"


def check_name(name: str) -> str:
    """An experiment name is one folder name under results/: no separators, no '..'."""
    import os

    if (not name.strip() or name in (".", "..") or "/" in name or "\\" in name
            or os.path.isabs(name) or "\0" in name or name.startswith(".")):
        raise ConfigError(f"expected a plain folder name (no '/', no '..', not absolute, "
                          f"not hidden), got {name!r}", "name")
    return name


def _timing(value: Any) -> tuple:
    """The timing protocol as sorted (name, value) pairs; defaults are left out of the spec
    except a VECBENCH_MIN_SECONDS override, which changes what a row measured."""
    import os

    given = {} if value is None else value
    if not isinstance(given, dict):
        raise ConfigError(f"expected a mapping with keys {', '.join(TIMING_KEYS)}, "
                          f"got {value!r}", "timing")
    try:
        check_no_extra("timing", given, TIMING_KEYS)
        checked = {}
        for key, item in given.items():
            if key in TIMING_COUNTS:
                checked[key] = check_int(key, item, 1, TIMING_COUNTS[key])
            else:
                checked[key] = check_float(key, item, 0.0, MAX_TIMING_SECONDS)
    except ConfigError as exc:
        raise exc.within("timing") from None
    override = os.environ.get("VECBENCH_MIN_SECONDS")
    if override and "min_seconds" not in checked:  # the same check as timing.min_seconds
        checked["min_seconds"] = parse_number("VECBENCH_MIN_SECONDS", override, "number", 0.0,
                                              MAX_TIMING_SECONDS)
    return tuple(sorted(checked.items()))


def _cost(value: Any) -> tuple:
    """``cost: {usd_per_hour: X, memory_gb: M}`` as sorted pairs (empty when not given)."""
    if value is None:
        return ()
    if not isinstance(value, dict) or "usd_per_hour" not in value:
        raise ConfigError(f"expected a mapping with usd_per_hour (and optionally memory_gb), "
                          f"got {value!r}", "cost")
    try:
        check_no_extra("cost", value, COST_KEYS)
        checked = {"usd_per_hour": check_float("usd_per_hour", value["usd_per_hour"], 0.0, 1e6,
                                               low_open=True)}
        if "memory_gb" in value:
            checked["memory_gb"] = check_float("memory_gb", value["memory_gb"], 0.0, 1e6,
                                               low_open=True)
    except ConfigError as exc:
        raise exc.within("cost") from None
    return tuple(sorted(checked.items()))


def _expand_cases(raw: dict, repeat: int, runbook: Any = None, base_dir: str = ".") -> list:
    """(dataset, pipeline, index, ordering, repeats, runbook) for every case; a case may set
    ``repeat`` and ``runbook``."""
    cases = raw["cases"]
    if not isinstance(cases, list) or not cases:
        raise ConfigError(f"expected a non-empty list of cases, got {cases!r}", "cases")
    combos = []
    for i, case in enumerate(cases):
        where = f"cases[{i}]"
        if not isinstance(case, dict):
            raise ConfigError(f"expected a mapping with keys {', '.join(CASE_KEYS)}, "
                              f"got {case!r}", where)
        try:
            check_no_extra("a case", case, CASE_KEYS)
        except ConfigError as exc:
            raise exc.within(where) from None

        def pick(key: str, plural: str, default, expand):
            value = case.get(key)
            if isinstance(value, list) and key != "pipeline":  # a list of entries, each expanded
                return [item for j, entry in enumerate(value)
                        for item in expand(entry, f"{where}.{key}[{j}]")]
            if key in case:
                return expand(value, f"{where}.{key}")
            return _expand_list(raw, plural, default, expand)

        try:
            repeats = check_int("repeat", case.get("repeat", repeat), 1)
        except ConfigError as exc:
            raise exc.within(where) from None
        case_runbook = runbook
        if case.get("runbook") is not None:
            case_runbook = parse_runbook(case["runbook"], base_dir, f"{where}.runbook")
        combos.extend((*combo, repeats, case_runbook) for combo in itertools.product(
            pick("dataset", "datasets", None, expand_dataset),
            pick("pipeline", "pipelines", [[]], expand_pipeline),
            pick("index", "indexes", None, expand_index),
            pick("ordering", "orderings", ["original"], expand_ordering)))
    return combos
