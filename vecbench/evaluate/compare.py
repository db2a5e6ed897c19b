"""Compare two result tables under regression rules, and pick the best row under budgets.

Both read the direction of every metric from :data:`vecbench.evaluate.metrics.METRICS`: a drop in a
higher-is-better metric, or a rise in a lower-is-better one, is a regression.
"""

from __future__ import annotations

import json
import math
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path

from vecbench.core.errors import ConfigError, DataError
from vecbench.core.params import check_float, NUMBER as _NUMBER, shown
from vecbench.evaluate import operating, results
from vecbench.evaluate.metrics import parse_metric
from vecbench.evaluate.results import config_columns as columns, memory_column

_BUDGET = re.compile(rf"^\s*([^<>=!\s]+)\s*(<=|>=|==|<|>)\s*({_NUMBER})\s*$", re.ASCII)
_RULE = re.compile(rf"^\s*([^:\s]+)\s*:\s*({_NUMBER})\s*(%?)\s*$", re.ASCII)


# ---------------------------------------------------------------------------------------------
# Loading tables

def load_table(source: str | Path, with_specs: bool = False):
    """A results folder, a results.csv or a results.parquet -> flat DataFrame.

    With ``with_specs`` and a results folder, column ``_spec`` holds each row's canonical unit
    spec with its own search parameters, so the configuration can be written back as YAML.
    """
    path = Path(source)
    if with_specs and path.is_dir() and (path / "runs").is_dir():
        frame = results.build_tables(path, with_specs=True).frame
        if frame.empty:
            raise DataError(f"{source}: no result rows in runs/*.json")
        return frame
    return results.table(path)


def with_points(frame, names):
    """``frame`` with the operating points among ``names`` (``qps_at_recall(0.95)``) added as
    columns, computed over each index's search settings (:mod:`vecbench.evaluate.operating`)."""
    points = [name for name in names if operating.is_point(name)]
    for name in points:
        operating.parse(name)   # a bad number is a one-line error before any work
    return operating.add_group_columns(frame, points) if points and len(frame) else frame


def hosts_note(*frames) -> str | None:
    """One line when ``frames`` hold QPS or latency measured on more than one host, else None."""
    timed = ("qps", "p50_ms", "p95_ms", "p99_ms")
    hosts: set = set()
    for frame in frames:
        if "host" in frame.columns and any(c in frame.columns for c in timed):
            hosts.update(str(h) for h in frame["host"].dropna().unique())
    if len(hosts) < 2:
        return None
    return (f"note: QPS and latency here were measured on {len(hosts)} different hosts "
            f"({', '.join(sorted(hosts))}); timings compare fairly only within one host")


def config_columns(*frames) -> list[str]:
    """The columns that identify a configuration, in any of ``frames``."""
    return columns(*frames)


def select_rows(frame, query: str, option: str = "--where"):
    """Rows matching a pandas query (columns with dots or @ in backticks: `search.ef` == 40)."""
    check_row_filter(query, option)
    try:
        selected = frame.query(query)
    except Exception as exc:  # pandas raises many kinds (syntax, undefined name, type)
        reason = " ".join(str(exc).split())[:200]  # pandas' messages may span lines
        raise ConfigError(f"not a valid row filter {shown(query, 200)} ({type(exc).__name__}: "
                          f"{reason}); "
                          "expected a pandas query over the result columns, e.g. "
                          "\"index == 'flat' and `search.ef` == 64\"", option) from None
    if selected.empty:
        raise ConfigError(f"{shown(query, 200)} matches no rows", option)
    return selected


_BACKTICKED = re.compile(r"`[^`]*`")
#: What a row filter may contain: column names, literals, comparisons (``in`` included) and
#: boolean operators. No calls, attributes, subscripts, ``@`` variables or lambdas.
_FILTER_NODES = ("Expression", "BoolOp", "And", "Or", "UnaryOp", "Not", "Invert", "USub",
                 "UAdd", "BinOp", "BitAnd", "BitOr", "Compare", "Eq", "NotEq", "Lt", "LtE",
                 "Gt", "GtE", "In", "NotIn", "Is", "IsNot", "Name", "Load", "Constant",
                 "List", "Tuple")


#: Bounds on a row filter, checked by a scan of its text before Python's parser (which can
#: exhaust memory or the C stack on deep nesting) or pandas' recursive evaluator see it.
MAX_FILTER_CHARS = 4000
MAX_FILTER_NESTING = 32
_FILTER_TOKEN = re.compile(r"`[^`]*`|'[^']*'|\"[^\"]*\"|\bnot\b|[-+~]|[\[\](){}]|[^\s\[\](){}~+-]+")


def check_filter_size(query: str, option: str = "--where") -> None:
    """One line when ``query`` is longer than MAX_FILTER_CHARS, or nests brackets or chains
    unary operators (``not not``, ``- -``, ``~~``) deeper than MAX_FILTER_NESTING."""
    if len(query) > MAX_FILTER_CHARS:
        raise ConfigError(f"a row filter of {len(query)} characters ({shown(query)}); expected "
                          f"at most {MAX_FILTER_CHARS}", option)
    depth = run = deepest = 0
    for token in _FILTER_TOKEN.findall(query):
        if token in ("not", "-", "+", "~"):
            run += 1
        else:
            run = 0
            depth += token in "([{" and len(token) == 1
            depth -= token in ")]}" and len(token) == 1
        deepest = max(deepest, depth + run)
    if deepest > MAX_FILTER_NESTING:
        raise ConfigError(f"a row filter nested {deepest} levels deep ({shown(query)}); "
                          f"expected at most {MAX_FILTER_NESTING}", option)


def check_row_filter(query: str, option: str = "--where") -> str:
    """``query`` when it is only column comparisons, literals, ``in`` and boolean operators
    (checked on its syntax tree, before pandas sees it); else a one-line ConfigError."""
    import ast

    expected = ("expected column comparisons, literals, 'in' and and/or/not only, e.g. "
                "\"index == 'flat' and `search.ef` in [40, 80]\"")
    if not isinstance(query, str) or not query.strip():
        raise ConfigError(f"empty row filter {query!r}; {expected}", option)
    check_filter_size(query, option)
    query_text = shown(query, 200)
    if "@" in _BACKTICKED.sub("", query):
        raise ConfigError(f"not an allowed row filter {query_text} ('@' variables are not "
                          f"allowed); {expected}", option)
    plain = _BACKTICKED.sub("_column_", query)   # `search.ef` is a column name
    try:
        tree = ast.parse(plain.strip(), mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise ConfigError(f"not a valid row filter {query_text} ({exc.msg if hasattr(exc, 'msg') else exc}); "
                          f"{expected}", option) from None
    for node in ast.walk(tree):
        kind = type(node).__name__
        if kind not in _FILTER_NODES or (kind == "BinOp" and type(node.op).__name__
                                         not in ("BitAnd", "BitOr")):
            raise ConfigError(f"not an allowed row filter {query_text} ({kind} is not allowed); "
                              f"{expected}", option)
        if kind == "Name" and node.id.startswith("__"):
            raise ConfigError(f"not an allowed row filter {query_text} (name {node.id!r}); "
                              f"{expected}", option)
    return query


def check_column(frame, column: str, option: str) -> str:
    """``column`` if the table has it; else a one-line ConfigError listing the valid ones."""
    if column not in frame.columns:
        valid = ", ".join(c for c in frame.columns if not c.startswith("_"))
        raise ConfigError(f"no column {column!r} in the results; expected one of: {valid}",
                          option)
    return column


def _key_text(value) -> str:
    """A canonical text for matching: 64, 64.0 and '64' are one key; NaN and '' are absent."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or \
            type(value).__name__ == "NAType":  # pandas' missing value in Int64 columns
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


# ---------------------------------------------------------------------------------------------
# Rules

_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt,
        "==": operator.eq}


@dataclass(frozen=True)
class Rule:
    """Fail when ``metric`` gets worse (in its own direction) by more than ``tolerance``."""

    metric: str
    tolerance: float        # absolute amount, or percent of the baseline when ``relative``
    relative: bool
    higher_is_better: bool

    def worsening(self, base: float, new: float) -> float:
        change = new - base
        worse = -change if self.higher_is_better else change
        if self.relative:
            return 100.0 * worse / abs(base) if base else (math.inf if worse > 0 else 0.0)
        return worse

    def fails(self, base: float, new: float) -> bool:
        return self.worsening(base, new) > self.tolerance + 1e-12

    def text(self) -> str:
        unit = "%" if self.relative else ""
        verb = "drop" if self.higher_is_better else "rise"
        return f"{self.metric}: {verb} <= {self.tolerance:g}{unit}"


@dataclass(frozen=True)
class Bound:
    """Fail when ``metric`` of a NEW row is not ``op value`` (``recall@10>=0.95``). Judged on
    NEW alone, so it still speaks when BASE and NEW share no configuration."""

    metric: str
    op: str
    value: float

    def holds(self, measured: float) -> bool:
        return bool(_OPS[self.op](measured, self.value))

    def text(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


def parse_rules(text: str, option: str = "--fail") -> list[Rule | Bound]:
    """``recall@10:-0.005,qps:-10%,recall@10>=0.95`` -> rules. In ``METRIC:THRESHOLD[%]`` the
    sign is optional: the direction comes from METRICS, so ``p99_ms:+5%`` and ``p99_ms:5%`` both
    allow a 5% rise of a lower-is-better metric. ``METRIC>=VALUE`` (or <=, <, >, ==) is a Bound.
    """
    rules = [_parse_rule(part, option)
             for part in filter(None, (p.strip() for p in text.split(",")))]
    if not rules:
        raise ConfigError(f"expected at least one METRIC:THRESHOLD rule, got {text!r}", option)
    return rules


def _parse_rule(part: str, option: str) -> Rule | Bound:
    change, bound = _RULE.match(part), _BUDGET.match(part)
    if not (change or bound):
        raise ConfigError(f"expected METRIC:THRESHOLD[%] (e.g. recall@10:-0.005,qps:-10%) or "
                          f"METRIC>=VALUE (e.g. recall@10>=0.95), got {part!r}", option)
    metric = (change or bound).group(1)
    try:  # one grammar for metric names, one check for numbers (finite, bounded)
        # an operating point (qps_at_recall(0.95)) is higher-is-better, like its metric
        higher = True if operating.parse(metric) else parse_metric(metric).metric.higher_is_better
        number = check_float(metric, float(bound.group(3) if bound else change.group(2)))
    except ConfigError as exc:
        raise exc.within(option) from None
    if bound:
        return Bound(metric, bound.group(2), number)
    return Rule(metric, abs(number), bool(change.group(3)), higher)


@dataclass
class Comparison:
    """What a gate found. ``failures`` always fail it; ``lost`` and ``unjudged`` fail it too
    unless ``allow_missing`` (a gate that cannot see a configuration must not pass it)."""

    table: object            # DataFrame: config columns, then base/new/change per metric, failed
    failures: list[str]      # one line per failed rule and configuration
    only_base: int           # configurations in BASE without a match in NEW
    only_new: int
    lost: list[str] = field(default_factory=list)      # BASE configurations NEW lacks or failed
    #: (metric, "BASE" or "NEW") -> labels of the rows where a rule's metric is NaN or absent
    unmeasured: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    gated: bool = True       # rules were given: lost and unjudged lines count against the gate
    allow_missing: bool = False

    @property
    def unjudged(self) -> list[str]:
        """One line per rule metric and side that lacked it, however many rows did."""
        return [f"{metric}: not measured in {side} at {len(labels)} configurations (e.g. "
                f"{labels[0]}); the rule was not judged there"
                for (metric, side), labels in self.unmeasured.items()]

    @property
    def gate_failures(self) -> list[str]:
        excusable = self.lost + self.unjudged
        return self.failures + ([] if self.allow_missing or not self.gated else excusable)

    @property
    def ok(self) -> bool:
        return not self.gate_failures

    def lines(self) -> list[str]:
        """The report under the table: notes, then every lost, unjudged and failed check, then
        the verdict."""
        allowed = " (allowed by --allow-missing)" if self.allow_missing else ""
        out = list(self.notes)
        if self.only_base or self.only_new:
            out.append(f"unmatched: {self.only_base} configurations only in BASE, "
                       f"{self.only_new} only in NEW")
        out += [f"{line}{allowed}" for line in self.lost]
        out += [f"UNJUDGED {line}{allowed}" for line in self.unjudged]
        out += [f"REGRESSION {line}" for line in self.failures]
        counts = [f"{len(self.failures)} rule failures"]
        if self.lost:
            counts.append(f"{len(self.lost)} configurations missing from or failed in NEW")
        if self.unjudged:
            counts.append(f"{len(self.unjudged)} rules not judged")
        out.append(f"{'ok' if self.ok else 'FAIL'}: {', '.join(counts)} over "
                   f"{len(self.table)} matched configurations")
        return out


def compare(base, new, rules: list[Rule | Bound], metrics: list[str] | None = None,
            allow_missing: bool = False, gate: bool | None = None) -> Comparison:
    """Match rows of two tables by configuration and check every rule on every matched row
    (a Bound on every NEW row). Rows that failed (``status`` error or crash) match nothing.
    ``gate`` (default: when there are rules): configurations lost in NEW fail the comparison."""
    changes = [r for r in rules if isinstance(r, Rule)]
    bounds = [r for r in rules if isinstance(r, Bound)]
    _check_rule_columns(base, new, rules)
    metrics = list(dict.fromkeys([r.metric for r in rules] + list(metrics or [])))
    spread = [SPREAD[m] for m in metrics if m in SPREAD]
    keys = config_columns(base, new)
    left, right = _keyed(base, keys, metrics + spread), _keyed(new, keys, metrics + spread)
    base_ok, new_ok = left[left["_status"] == "ok"], right[right["_status"] == "ok"]
    merged = base_ok.merge(new_ok, on="_key", how="outer", suffixes=(" base", " new"),
                           indicator=True)
    both = merged[merged["_merge"] == "both"]
    result = Comparison(None, [], int((merged["_merge"] == "left_only").sum()),
                        int((merged["_merge"] == "right_only").sum()),
                        lost=_lost(base_ok, right), notes=_notes(base, new, left),
                        gated=bool(rules) if gate is None else gate,
                        allow_missing=allow_missing)
    if changes and both.empty:
        result.failures.append(
            f"BASE and NEW share no configuration (matched on {', '.join(keys)}): no change "
            "rule was judged; if the configurations changed on purpose, make NEW the baseline")
    names = [_check_changes(changes, row, result) for _, row in both.iterrows()]
    bounds_failed = _check_bounds(bounds, new_ok, result)
    names = [",".join(filter(None, (named, bounds_failed.get(key, ""))))
             for named, key in zip(names, both["_key"])]
    result.table = _table(both, metrics, names)
    return result


def _table(both, metrics: list[str], failed: list[str]):
    """The matched configurations: base, new and change of each metric, and the failed rules."""
    import pandas as pd

    out = pd.DataFrame({"configuration": _varying(list(both["_label base"]))})
    for metric in metrics:
        b = both[f"{metric} base"].astype(float).to_numpy()
        n = both[f"{metric} new"].astype(float).to_numpy()
        out[f"{metric} base"], out[f"{metric} new"], out[f"{metric} change"] = b, n, n - b
    out["failed"] = failed
    return out


def _check_rule_columns(base, new, rules) -> None:
    """A rule's metric in neither table (of those with rows) is a typo: a one-line ConfigError.
    One missing from a single side is judged per row (not measured there)."""
    frames = [frame for frame in (base, new) if len(frame)]
    for rule in rules:
        if frames and not any(rule.metric in frame.columns for frame in frames):
            check_column(frames[-1], rule.metric, "--fail")


def _lost(base_ok, new) -> list[str]:
    """One line per configuration that failed in NEW (with its reason), and per configuration
    that ran in BASE and is missing from NEW."""
    present = set(new["_key"])
    return _failed_lines(new, "NEW") + [f"MISSING in NEW: {label}"
                                        for key, label in zip(base_ok["_key"], base_ok["_label"])
                                        if key not in present]


def failed_lines(frame, where: str = "NEW") -> list[str]:
    """One line per row of ``frame`` whose unit failed: its status, one-line reason, and
    configuration."""
    return _failed_lines(_keyed(frame, config_columns(frame), []), where)


def _failed_lines(keyed, where: str) -> list[str]:
    failed = keyed[keyed["_status"] != "ok"]
    return [f"FAILED in {where} ({status}: {reason}): {label}" for status, reason, label
            in zip(failed["_status"], failed["_reason"], failed["_label"])]


def _notes(base, new, base_keyed) -> list[str]:
    """Empty tables, and BASE's own failed configurations (never compared: nothing to keep)."""
    notes = [f"note: {side} has no result rows"
             for side, frame in (("BASE", base), ("NEW", new)) if frame.empty]
    failed = base_keyed[base_keyed["_status"] != "ok"]
    if len(failed):
        notes.append(f"note: {len(failed)} configurations failed in BASE and are not compared "
                     f"(e.g. {failed['_label'].iloc[0]}: {failed['_reason'].iloc[0]})")
    return notes


def _check_changes(changes: list[Rule], row, result: Comparison) -> str:
    """Check the change rules on one matched row; the names of those that failed."""
    failed_here = []
    for rule in changes:
        b, n = float(row[f"{rule.metric} base"]), float(row[f"{rule.metric} new"])
        if math.isnan(b) or math.isnan(n):
            side = "BASE" if math.isnan(b) else "NEW"
            result.unmeasured.setdefault((rule.metric, side), []).append(row["_label base"])
        elif rule.fails(b, n) and not _within_spread(rule, row, b, n):
            failed_here.append(rule.metric)
            change = rule.worsening(b, n)
            shown = f"{change:.2f}%" if rule.relative else f"{change:.4g}"
            result.failures.append(f"{rule.metric}: {b:.6g} -> {n:.6g} (worse by {shown}; "
                                   f"allowed {rule.text()}) at {row['_label base']}")
    return ",".join(failed_here)


def _check_bounds(bounds: list[Bound], new_ok, result: Comparison) -> dict:
    """Check the bounds on every NEW row that ran; ``{key: failed metric names}``."""
    failed: dict = {}
    for _, row in new_ok.iterrows():
        for bound in bounds:
            measured = float(row[bound.metric])
            if math.isnan(measured):
                result.unmeasured.setdefault((bound.metric, "NEW"), []).append(row["_label"])
            elif not bound.holds(measured):
                failed[row["_key"]] = ",".join(filter(None, (failed.get(row["_key"]),
                                                             bound.metric)))
                result.failures.append(f"{bound.metric}: expected {bound.op} {bound.value:g}, "
                                       f"measured {measured:.6g} at {row['_label']}")
    return failed


#: A timing metric and the column holding its measured spread (a fraction of the metric):
#: for qps (max - min) / median over the timed passes; for a latency percentile the width of
#: its 95% interval over the single-query calls plus the QPS spread (vecbench.evaluate.metrics).
SPREAD = {"qps": "qps_spread", "p50_ms": "p50_ms_spread", "p95_ms": "p95_ms_spread",
          "p99_ms": "p99_ms_spread"}


def _within_spread(rule: Rule, row, base: float, new: float) -> bool:
    """True when a worsening of a timed metric is no larger than the two runs' measured spread:
    their ranges, each about value x (1 +- spread / 2), still overlap. A gate fails a timing
    only when the change exceeds both its threshold and this."""
    column = SPREAD.get(rule.metric)
    if column is None or f"{column} base" not in row.index:
        return False
    spreads = float(row[f"{column} base"]), float(row[f"{column} new"])
    if any(math.isnan(value) for value in spreads):
        return False
    return abs(new - base) <= (abs(base) * spreads[0] + abs(new) * spreads[1]) / 2


def _varying(labels: list[str]) -> list[str]:
    """Labels without the ``key=value`` parts shared by all rows (the table shows what differs)."""
    split = [label.split(" ") for label in labels]
    shared = set.intersection(*(set(parts) for parts in split)) if len(split) > 1 else set()
    return [" ".join(p for p in parts if p not in shared) or "(all)" for parts in split]


def _keyed(frame, keys: list[str], metrics: list[str]):
    """Per row: ``_key`` (the configuration as one text), ``_label``, ``_status``, ``_reason``
    and each of ``metrics`` as a number (NaN where the table lacks it)."""
    import pandas as pd

    def column(name, default):
        return frame[name] if name in frame.columns else pd.Series(default, index=frame.index,
                                                                   dtype=object)

    parts = [column(name, "").map(_key_text) for name in keys]
    key = ["|".join(items) for items in zip(*parts)] if parts else [""] * len(frame)
    labels = [" ".join(f"{k}={v}" for k, v in zip(keys, items) if v != "")
              for items in zip(*parts)] if parts else [""] * len(frame)
    out = pd.DataFrame({"_key": key, "_label": labels,
                        "_status": column("status", "ok").fillna("ok").astype(str),
                        "_reason": column("reason", "").fillna("").astype(str)},
                       index=frame.index)
    for metric in metrics:
        out[metric] = pd.to_numeric(column(metric, math.nan), errors="coerce")
    if out["_key"].duplicated().any():
        dup = out.loc[out["_key"].duplicated(), "_label"].iloc[0]
        raise DataError(f"two rows share one configuration ({dup}); cannot match rows")
    return out


def format_table(frame, floatfmt: str = ".4g") -> str:
    """A plain-text table (pandas' to_string, with compact floats)."""
    return frame.to_string(index=False, float_format=lambda v: format(v, floatfmt))


# ---------------------------------------------------------------------------------------------
# Best under budget

@dataclass(frozen=True)
class Budget:
    column: str
    op: str
    value: float

    def mask(self, frame):
        import pandas as pd
        values = pd.to_numeric(frame[self.column], errors="coerce")
        return _OPS[self.op](values, self.value)

    def text(self) -> str:
        return f"{self.column}{self.op}{self.value:g}"


def parse_budget(text: str, option: str = "--budget") -> Budget:
    match = _BUDGET.match(text)
    if not match:
        raise ConfigError(f"expected COLUMN<=NUMBER (or <, >=, >, ==), e.g. "
                          f"bytes_per_vector<=256, got {text!r}", option)
    column, op, number = match.groups()
    return Budget(column, op, check_float(f"{option} {column}", float(number)))


def best_under_budget(frame, budgets: list[Budget], objective: str, maximize: bool = True):
    """The row that optimizes ``objective`` among rows within every budget (None if none is)."""
    import pandas as pd

    check_column(frame, objective, "--maximize" if maximize else "--minimize")
    for budget in budgets:
        check_column(frame, budget.column, "--budget")
    keep = frame["status"].fillna("ok") == "ok" if "status" in frame.columns else \
        pd.Series(True, index=frame.index)
    for budget in budgets:
        keep &= budget.mask(frame)
    candidates = frame[keep].copy()
    candidates["_objective"] = pd.to_numeric(candidates[objective], errors="coerce")
    candidates = candidates.dropna(subset=["_objective"])
    if candidates.empty:
        return None, 0
    # ties go to the faster configuration, then the one that needs less memory
    order = [("_objective", not maximize)]
    if "qps" in candidates.columns:
        order.append(("qps", False))
    if memory_column(candidates) in candidates.columns:
        order.append((memory_column(candidates), True))
    candidates = candidates.sort_values([c for c, _ in order], ascending=[a for _, a in order],
                                        kind="stable")
    return candidates.iloc[0], len(candidates)


def configuration(row) -> dict:
    """A row's configuration in the regression-test form (dataset, pipeline, index, k).

    Exact when the row carries ``_spec`` (read from run files); otherwise rebuilt from the
    table's labels (``pca(n_components=64)|float8(format=e4m3)``), where dataset parameters are
    not recorded.
    """
    if "_spec" in row.index and isinstance(row["_spec"], str):
        spec = json.loads(row["_spec"])
        index = spec["index"]
        out = {"dataset": spec["dataset"], "pipeline": spec["pipeline"],
               "index": {index["name"]: {"build": index.get("build", {}),
                                         "search": spec.get("search", {}),
                                         **({"rescore": spec["row_rescore"]}
                                            if spec.get("row_rescore") else {})}},
               "ordering": _ordering_value(spec.get("ordering", "original")),
               "k": int(spec.get("k", row.get("k", 10)))}
        return out
    build = {c[6:]: _scalar(row[c]) for c in row.index if c.startswith("build.")
             and _key_text(row[c]) != ""}
    search = {c[7:]: _scalar(row[c]) for c in row.index if c.startswith("search.")
              and _key_text(row[c]) != ""}
    pipeline = [] if row.get("pipeline", "float32") in ("float32", "", None) else \
        [_parse_label(step) for step in str(row["pipeline"]).split("|")]
    ordering = _parse_label(str(row.get("ordering", "original")))
    rescoring = {c[8:]: _scalar(row[c]) for c in row.index if c.startswith("rescore.")
                 and _key_text(row[c]) != ""}
    return {"dataset": {str(row["dataset"]): {}}, "pipeline": pipeline,
            "index": {str(row["index"]): {"build": build, "search": search,
                                          **({"rescore": rescoring} if rescoring else {})}},
            "ordering": _ordering_value(ordering), "k": int(row.get("k", 10))}


def _ordering_value(ordering):
    if isinstance(ordering, dict) and len(ordering) == 1:
        name, params = next(iter(ordering.items()))
        return name if not params else ordering
    return ordering


def _scalar(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _parse_label(label: str) -> dict | str:
    """``pca(n_components=64)`` -> ``{pca: {n_components: 64}}``; ``float16`` -> ``{float16: {}}``."""
    import yaml

    match = re.match(r"^([^()]+)\((.*)\)$", label)
    if not match:
        return {label: {}}
    params = {}
    for item in filter(None, match.group(2).split(",")):
        key, _, value = item.partition("=")
        params[key] = yaml.safe_load(value)
    return {match.group(1): params}


def best_yaml(row, budgets: list[Budget], objective: str, maximize: bool, n_ok: int,
              metrics: list[str]) -> str:
    """The winner as a YAML snippet for a ``.vecbench.yaml`` (or one entry of ``cases:``)."""
    import yaml

    goal = f"{'maximize' if maximize else 'minimize'} {objective}"
    within = " and ".join(b.text() for b in budgets) or "no budget"
    lines = [f"# vecbench best: {goal} subject to {within} ({n_ok} rows qualify)"]
    config = configuration(row)
    for key, value in config.items():
        # one line per key, flow style, like a hand-written .vecbench.yaml
        text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000)
        lines.append(f"{key}: {text.strip().removesuffix('...').strip()}")
    lines.append("# measured:")
    for metric in metrics:
        if metric in row.index and _key_text(row[metric]) != "":
            value = row[metric]
            shown = f"{value:.6g}" if isinstance(value, (int, float)) else value
            lines.append(f"#   {metric}: {shown}")
    return "\n".join(lines) + "\n"
