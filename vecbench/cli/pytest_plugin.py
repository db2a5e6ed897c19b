"""pytest plugin: a committed ``*.vecbench.yaml`` is a regression test of an index configuration.

    dataset: {digits: {}}
    pipeline: []
    index: {hnswlib: {build: {M: 16, ef_construction: 200}, search: {ef: 96}}}
    k: 10
    expect: {recall@10: ">= 0.90", bytes_per_vector: "<= 384", p99_ms: "<= 5"}
    baseline: baselines/prod.json        # optional; compared with --vecbench-fail=RULES

The spec becomes a one-unit experiment (validated at collection, without data) and runs through
:func:`vecbench.run.stages.run_unit`. Timing checks (qps, latency, build time) only run with
``--vecbench-timing``: they depend on the machine, and the ones left out are named in the
output. Options: ``--vecbench-fail=RULES`` (compare with the baseline by
:mod:`vecbench.evaluate.compare` rules), ``--vecbench-update-baselines``, ``--vecbench-allow-missing``.
A unit that failed, or a baseline configuration this run lacks, fails the test unless
``--vecbench-allow-missing`` says to report it only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from vecbench.core import atomic, environment
from vecbench.core.errors import ConfigError, DataError, MissingDataError, VecbenchError
from vecbench.core.params import NUMBER, check_choice, check_float, check_no_extra
from vecbench.core.registry import indexes
from vecbench.evaluate import compare, results
from vecbench.evaluate.compare import config_columns, failed_lines, key_text
from vecbench.run.experiment import build_experiment, read_yaml

SUFFIX = ".vecbench.yaml"
SPEC_KEYS = ("dataset", "pipeline", "index", "ordering", "k", "seed", "threads", "expect",
             "baseline", "fail", "missing_data")
#: Machine-dependent metrics: checked only with --vecbench-timing.
TIMING_METRICS = ("qps", "p50_ms", "p95_ms", "p99_ms", "build_s", "fit_s", "encode_s")
_EXPECTATION = re.compile(rf"^\s*(<=|>=|==|<|>)\s*({NUMBER})\s*$", re.ASCII)
#: Experiment paths as they read in a spec (datasets[0].x -> dataset.x).
_SPEC_PATHS = {"datasets[0]": "dataset", "pipelines[0]": "pipeline", "indexes[0]": "index",
               "orderings[0]": "ordering"}


@dataclass(frozen=True)
class Expectation:
    metric: str
    op: str
    value: float

    def holds(self, measured: float) -> bool:
        return {"<=": measured <= self.value, ">=": measured >= self.value,
                "<": measured < self.value, ">": measured > self.value,
                "==": measured == self.value}[self.op]

    @property
    def timing(self) -> bool:
        return is_timing(self.metric)

    def text(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


def is_timing(metric: str) -> bool:
    return metric.split("@", 1)[0] in TIMING_METRICS


@dataclass
class Spec:
    file: str
    base_dir: str
    raw: dict
    experiment: object                        # vecbench.run.experiment.Experiment
    expectations: list[Expectation] = field(default_factory=list)
    baseline: Path | None = None
    rules: str | None = None
    missing_data: str = "fail"                # or "skip": a dataset whose files are absent skips


def _spec_error(exc: ConfigError, file: str) -> ConfigError:
    path = exc.path
    for old, new in _SPEC_PATHS.items():
        if path.startswith(old):
            path = new + path[len(old):]
    return ConfigError(exc.message, path, file)


def parse_expectation(metric: str, value, k: int) -> Expectation:
    """``">= 0.9"`` -> Expectation; a bare number is a bound in the metric's better direction."""
    from vecbench.evaluate.metrics import parse_metric
    where = f"expect.{metric}"
    try:  # the one grammar of metric names; bounds are finite numbers
        info = parse_metric(str(metric)).metric
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = check_float("", value)
    except ConfigError as exc:
        raise exc.within(where) from None
    name, _, depth = str(metric).partition("@")
    if name in ("recall", "recall_index", "recall_eps") and depth and depth != str(k):
        raise ConfigError(f"the spec measures @{k} (k: {k}); expected {name}@{k}", where)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Expectation(str(metric), ">=" if info.higher_is_better else "<=", float(value))
    match = _EXPECTATION.match(str(value))
    if not match:
        raise ConfigError(f"expected a bound like '>= 0.9' or '<= 384', got {value!r}", where)
    try:
        bound = check_float("", float(match.group(2)))
    except ConfigError as exc:
        raise exc.within(where) from None
    return Expectation(str(metric), match.group(1), bound)


def build_spec(raw, file: str = "<spec>", base_dir: str = ".") -> Spec:
    """Validate a spec mapping (no data is loaded) and turn it into a one-unit experiment."""
    try:
        if not isinstance(raw, dict):
            raise ConfigError(f"expected a mapping with keys {', '.join(SPEC_KEYS)}, "
                              f"got {type(raw).__name__}")
        check_no_extra("a vecbench spec", raw, SPEC_KEYS)
        for key in ("dataset", "index"):
            if key not in raw:
                raise ConfigError("missing; expected a one-key mapping {name: parameters}", key)
        experiment_raw = {"name": Path(file).name.removesuffix(SUFFIX),
                          "datasets": [raw["dataset"]], "pipelines": [raw.get("pipeline") or []],
                          "indexes": [raw["index"]],
                          "orderings": [raw.get("ordering", "original")],
                          **{key: raw[key] for key in ("k", "seed", "threads") if key in raw}}
        experiment = build_experiment(experiment_raw, base_dir=base_dir)
        expect = raw.get("expect") or {}
        if not isinstance(expect, dict):
            raise ConfigError(f"expected a mapping of metric: bound, got {expect!r}", "expect")
        expectations = [parse_expectation(m, v, experiment.k) for m, v in expect.items()]
        rules = raw.get("fail")
        if rules is not None:
            from vecbench.evaluate.compare import parse_rules
            parse_rules(str(rules), "fail")
        baseline = raw.get("baseline")
        if baseline is not None and (not isinstance(baseline, str) or not baseline):
            raise ConfigError(f"expected a file path, got {baseline!r}", "baseline")
        if baseline is not None:
            root = Path(base_dir).resolve()
            if not (root / baseline).resolve().is_relative_to(root):
                raise ConfigError(f"{baseline!r} resolves outside the spec's folder {root}; "
                                  "expected a path inside it (e.g. baselines/prod.json)",
                                  "baseline")
        missing_data = check_choice("missing_data", raw.get("missing_data", "fail"),
                                    ("fail", "skip"))
    except ConfigError as exc:
        raise _spec_error(exc, file) from None
    return Spec(file, base_dir, raw, experiment, expectations,
                Path(base_dir) / baseline if baseline else None, rules, missing_data)


def load_spec(path: str | Path) -> Spec:
    path = Path(path)
    try:
        raw = read_yaml(path)
    except ConfigError as exc:
        raise exc.in_file(str(path)) from None
    return build_spec(raw, str(path), str(path.resolve().parent))


def _outcomes(spec: Spec, threads: int | None):
    from vecbench.run import stages

    for unit in spec.experiment.units:
        yield stages.run_unit(unit, threads or unit.threads or environment.cpu_count())


def run_units(spec: Spec, threads: int | None = None) -> list[dict]:
    """Run every build unit of the spec; the rows of all of them, those of a failed unit with
    its ``status`` and one-line ``reason`` (a gate reports each). Missing data raises
    MissingDataError where the spec says ``missing_data: skip``."""
    rows = []
    for outcome in _outcomes(spec, threads):
        record = outcome.record
        if record.error_type == "MissingDataError" and spec.missing_data == "skip":
            raise MissingDataError(record.reason)
        rows.extend(results.outcome_rows(outcome))
    return rows


def run_spec(spec: Spec, threads: int | None = None) -> list[dict]:
    """Run the spec's build units; their result rows. A unit that failed raises: its data
    missing as MissingDataError, other bad input as VecbenchError, a bug as RuntimeError."""
    rows = []
    for outcome in _outcomes(spec, threads):
        record = outcome.record
        if record.status == "error":
            error = MissingDataError if record.error_type == "MissingDataError" \
                else VecbenchError
            raise error(record.reason)
        if record.status == "crash":
            raise RuntimeError(f"vecbench unit crashed:\n{record.traceback}")
        rows.extend(results.outcome_rows(outcome))
    return rows


def describe(row: dict) -> str:
    import pandas as pd

    keys = config_columns(pd.DataFrame([row]))
    return " ".join(f"{key}={key_text(row[key])}" for key in keys
                    if key_text(row.get(key)) != "")


def check_expectations(rows: list[dict], expectations: list[Expectation],
                       timing: bool) -> list[str]:
    failures = []
    for row in rows:
        for expectation in expectations:
            if expectation.timing and not timing:
                continue
            measured = row.get(expectation.metric)
            if measured is None or measured != measured:
                failures.append(f"{expectation.text()}: not measured (columns: "
                                f"{', '.join(sorted(row))}) at {describe(row)}")
            elif not expectation.holds(float(measured)):
                failures.append(f"{expectation.metric}: expected {expectation.op} "
                                f"{expectation.value:g}, measured {float(measured):.6g} "
                                f"at {describe(row)}")
    return failures


def check_baseline(rows: list[dict], baseline: Path, rules_text: str, timing: bool,
                   allow_missing: bool = False) -> tuple[list[str], list[str]]:
    """(lines that fail the test, lines that only inform) of comparing ``rows`` (failed units'
    included) with the baseline: rules, configurations missing or failed, rules not judged,
    and timing rules not checked without ``--vecbench-timing``."""
    import pandas as pd

    prefix = f"baseline {baseline.name}: "
    if not baseline.is_file():
        return [f"baseline {baseline} does not exist; create it with "
                "--vecbench-update-baselines"], []
    try:
        base_rows = json.loads(baseline.read_text())["rows"]
    except (ValueError, KeyError, TypeError, OSError) as exc:  # JSON, UTF-8, unreadable
        raise DataError(f"{baseline}: not a vecbench baseline file ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}); expected JSON "
                        "written by --vecbench-update-baselines") from None
    if not isinstance(base_rows, list) or not all(isinstance(r, dict) for r in base_rows):
        raise DataError(f"{baseline}: not a vecbench baseline file ('rows' is not a list of "
                        "mappings); expected JSON written by --vecbench-update-baselines")
    rules = compare.parse_rules(rules_text, "--vecbench-fail")
    checked = [r for r in rules if timing or not is_timing(r.metric)]
    notes = _timing_note("rules", [r for r in rules if r not in checked])
    result = compare.compare(pd.DataFrame(base_rows), pd.DataFrame(rows), checked,
                             allow_missing=allow_missing, gate=True)
    if allow_missing:
        notes += [prefix + line for line in result.missing_lines("--vecbench-allow-missing")]
    return [prefix + line for line in result.gate_failures], notes


def _timing_note(kind: str, unchecked: list) -> list[str]:
    """The timing checks left out without --vecbench-timing, by name (never silently)."""
    if not unchecked:
        return []
    return [f"timing {kind} not checked (pass --vecbench-timing): "
            f"{', '.join(item.text() for item in unchecked)}"]


def write_baseline(rows: list[dict], path: Path, raw: dict) -> None:
    """Write atomically (temporary file, then rename) so a killed run leaves the old baseline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps({"spec": raw, "rows": rows}, indent=1, default=str))


# ---------------------------------------------------------------------------------------------
# pytest hooks

class VecbenchCheckFailed(Exception):
    """Expectations or baseline rules that did not hold; the message lists each."""


def pytest_addoption(parser):
    group = parser.getgroup("vecbench", "vecbench index-configuration regression tests")
    group.addoption("--vecbench-fail", default=None, metavar="RULES",
                    help="compare with each spec's baseline, e.g. recall@10:-0.005,qps:-10%%")
    group.addoption("--vecbench-update-baselines", action="store_true",
                    help="write each spec's baseline file from this run")
    group.addoption("--vecbench-timing", action="store_true",
                    help="also check timing expectations (qps, p*_ms, build_s)")
    group.addoption("--vecbench-allow-missing", action="store_true",
                    help="report units that failed, configurations of the baseline this run "
                    "lacks and rules whose metric was not measured, without failing")


def _report(item, notes: list[str]) -> None:
    """Show checks not made under the test and in the run's summary, not only with -rA."""
    if notes:
        item.add_report_section("call", "vecbench", "\n".join(notes))
        item.user_properties.append(("vecbench_not_checked", notes))


def pytest_terminal_summary(terminalreporter):
    lines = [f"{report.nodeid}: {note}"
             for reports in terminalreporter.stats.values() for report in reports
             if getattr(report, "when", None) == "call"
             for name, notes in getattr(report, "user_properties", ()) if
             name == "vecbench_not_checked" for note in notes]
    if lines:
        terminalreporter.write_sep("-", "vecbench: checks not made")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_collect_file(file_path, parent):
    if file_path.name.endswith(SUFFIX):
        return VecbenchFile.from_parent(parent, path=file_path)
    return None


class VecbenchFile(pytest.File):
    def collect(self):
        try:
            spec = load_spec(self.path)
        except VecbenchError as exc:
            raise self.CollectError(f"vecbench spec: {exc}") from None
        yield VecbenchItem.from_parent(self, name=self.path.name.removesuffix(SUFFIX),
                                       spec=spec)


class VecbenchItem(pytest.Item):
    def __init__(self, *, spec: Spec, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec

    def runtest(self):
        option = self.config.getoption
        timing, allow_missing = option("vecbench_timing", False), option("vecbench_allow_missing",
                                                                          False)
        try:
            rows = run_units(self.spec)
        except MissingDataError as exc:
            # a spec over data that only some machines have (missing_data: skip) skips there
            pytest.skip(f"missing_data: skip; {exc}")
        ran = [row for row in rows if row.get("status", "ok") == "ok"]
        failures = check_expectations(ran, self.spec.expectations, timing)
        notes = _timing_note("expectations", [e for e in self.spec.expectations
                                              if e.timing and not timing])
        lines, informed = self._check_units_and_baseline(rows, timing, allow_missing)
        failures, notes = failures + lines, notes + informed
        if not ran:
            failures.append("no unit ran: nothing was checked")
        _report(self, notes)
        if failures:
            raise VecbenchCheckFailed(f"{self.spec.file}:\n  " + "\n  ".join(failures))

    def _check_units_and_baseline(self, rows: list[dict], timing: bool,
                                  allow_missing: bool) -> tuple[list[str], list[str]]:
        """(failing, informing) lines on failed units and the baseline: the comparison names
        failed and missing configurations; without one, failed units are named here."""
        import pandas as pd

        option = self.config.getoption
        rules = option("vecbench_fail", None) or self.spec.rules
        baseline = self.spec.baseline
        failed = failed_lines(pd.DataFrame(rows), "this run")
        if option("vecbench_update_baselines", False) and baseline is not None:
            if failed:  # a baseline is what the next run must match: never one with failures
                return failed + [f"baseline {baseline.name} not updated: a unit failed"], []
            write_baseline(rows, baseline, self.spec.raw)
        elif rules and baseline is not None:
            return check_baseline(rows, baseline, str(rules), timing, allow_missing)
        if allow_missing:
            return [], [f"{line} (allowed by --vecbench-allow-missing)" for line in failed]
        return failed, []

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, (VecbenchCheckFailed, VecbenchError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, f"vecbench: {self.name}"


@pytest.fixture
def vecbench(request):
    """Run a spec (a mapping, or a path to a .vecbench.yaml) and return its result rows.

    Relative paths in a mapping resolve against the test module's folder.
    """
    def run(spec, threads: int | None = None) -> list[dict]:
        if isinstance(spec, (str, Path)):
            loaded = load_spec(spec)
        else:
            loaded = build_spec(spec, "<fixture spec>", str(Path(request.path).parent))
        rows = run_spec(loaded, threads)
        timing = request.config.getoption("vecbench_timing", False)
        failures = check_expectations(rows, loaded.expectations, timing)
        _report(request.node, _timing_note("expectations", [e for e in loaded.expectations
                                                            if e.timing and not timing]))
        if failures:
            raise VecbenchCheckFailed("\n".join(failures))
        return rows
    return run


@dataclass
class PreparedIndex:
    """A spec's index, built and ready to search (for latency benchmarks)."""

    index: object
    queries: object
    k: int
    search: dict

    def query(self, queries=None):
        ids, _ = self.index.search(self.queries if queries is None else queries, self.k,
                                   **self.search)
        return ids


def prepare(spec_path: str | Path, threads: int = 1) -> PreparedIndex:
    """Load, encode and build a spec's (first) unit; search settings are the first of the grid.
    The insertion order is the dataset's own (orderings are for build studies, not latency)."""
    from vecbench.run import stages
    unit = load_spec(spec_path).experiment.units[0]
    dataset = stages.load(unit.dataset, unit.base_dir)
    index_cls = indexes.get(unit.index.name)
    encoded = stages.encode(dataset, unit.pipeline, frozenset(index_cls.accepts))
    build = {key: value for key, value in unit.index.build.items() if key != "threads"}
    index = index_cls(threads=threads, **build)
    index.build(encoded.base, dataset.metric, train=encoded.train)
    return PreparedIndex(index, encoded.queries, unit.k, dict(unit.index.search_grid[0]))
