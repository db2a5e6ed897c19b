"""Compare two result tables under regression rules, and pick the best row under budgets.

Both read the direction of every metric from :data:`vecbench.metrics.METRICS`: a drop in a
higher-is-better metric, or a rise in a lower-is-better one, is a regression.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from vecbench.errors import ConfigError, DataError
from vecbench.metrics import metric_info

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_BUDGET = re.compile(rf"^\s*([^<>=!\s]+)\s*(<=|>=|==|<|>)\s*({_NUMBER})\s*$")
_RULE = re.compile(rf"^\s*([^:\s]+)\s*:\s*({_NUMBER})\s*(%?)\s*$")


# ---------------------------------------------------------------------------------------------
# Loading tables

def load_table(source: str | Path, with_specs: bool = False):
    """A results folder, a results.csv or a results.parquet -> flat DataFrame.

    With ``with_specs`` and a results folder, column ``_spec`` holds each row's canonical unit
    spec with its own search parameters, so the configuration can be written back as YAML.
    """
    from vecbench import results

    path = Path(source)
    if with_specs and path.is_dir() and (path / "runs").is_dir():
        frame = results.build_tables(path, with_specs=True).frame
        if frame.empty:
            raise DataError(f"{source}: no result rows in runs/*.json")
        return frame
    return results.table(path)


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
    from vecbench.results import config_columns as columns

    return columns(*frames)


def select_rows(frame, query: str, option: str = "--where"):
    """Rows matching a pandas query (columns with dots or @ in backticks: `search.ef` == 40)."""
    check_row_filter(query, option)
    try:
        selected = frame.query(query)
    except Exception as exc:  # pandas raises many kinds (syntax, undefined name, type)
        raise ConfigError(f"not a valid row filter {query!r} ({type(exc).__name__}: {exc}); "
                          "expected a pandas query over the result columns, e.g. "
                          "\"index == 'flat' and `search.ef` == 64\"", option) from None
    if selected.empty:
        raise ConfigError(f"{query!r} matches no rows", option)
    return selected


_BACKTICKED = re.compile(r"`[^`]*`")
#: What a row filter may contain: column names, literals, comparisons (``in`` included) and
#: boolean operators. No calls, attributes, subscripts, ``@`` variables or lambdas.
_FILTER_NODES = ("Expression", "BoolOp", "And", "Or", "UnaryOp", "Not", "Invert", "USub",
                 "UAdd", "BinOp", "BitAnd", "BitOr", "Compare", "Eq", "NotEq", "Lt", "LtE",
                 "Gt", "GtE", "In", "NotIn", "Is", "IsNot", "Name", "Load", "Constant",
                 "List", "Tuple")


def check_row_filter(query: str, option: str = "--where") -> str:
    """``query`` when it is only column comparisons, literals, ``in`` and boolean operators
    (checked on its syntax tree, before pandas sees it); else a one-line ConfigError."""
    import ast

    expected = ("expected column comparisons, literals, 'in' and and/or/not only, e.g. "
                "\"index == 'flat' and `search.ef` in [40, 80]\"")
    if not isinstance(query, str) or not query.strip():
        raise ConfigError(f"empty row filter {query!r}; {expected}", option)
    if "@" in _BACKTICKED.sub("", query):
        raise ConfigError(f"not an allowed row filter {query!r} ('@' variables are not "
                          f"allowed); {expected}", option)
    plain = _BACKTICKED.sub("_column_", query)   # `search.ef` is a column name
    try:
        tree = ast.parse(plain.strip(), mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise ConfigError(f"not a valid row filter {query!r} ({exc.msg if hasattr(exc, 'msg') else exc}); "
                          f"{expected}", option) from None
    for node in ast.walk(tree):
        kind = type(node).__name__
        if kind not in _FILTER_NODES or (kind == "BinOp" and type(node.op).__name__
                                         not in ("BitAnd", "BitOr")):
            raise ConfigError(f"not an allowed row filter {query!r} ({kind} is not allowed); "
                              f"{expected}", option)
        if kind == "Name" and node.id.startswith("__"):
            raise ConfigError(f"not an allowed row filter {query!r} (name {node.id!r}); "
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


def parse_rules(text: str, option: str = "--fail") -> list[Rule]:
    """``recall@10:-0.005,qps:-10%`` -> rules. The sign is optional: the direction comes from
    METRICS, so ``p99_ms:+5%`` and ``p99_ms:5%`` both allow a 5% rise of a lower-is-better metric.
    """
    rules = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _RULE.match(part)
        if not match:
            raise ConfigError(f"expected METRIC:THRESHOLD[%] (e.g. recall@10:-0.005,qps:-10%), "
                              f"got {part!r}", option)
        metric, number, percent = match.groups()
        info = metric_info(metric)
        if info is None:
            raise ConfigError(f"{metric!r} is not a metric with a known direction", option)
        rules.append(Rule(metric, abs(float(number)), bool(percent), info.higher_is_better))
    if not rules:
        raise ConfigError(f"expected at least one METRIC:THRESHOLD rule, got {text!r}", option)
    return rules


@dataclass
class Comparison:
    table: object            # DataFrame: config columns, then base/new/change per metric, failed
    failures: list[str]      # one line per failed rule and configuration
    only_base: int           # configurations in BASE without a match in NEW
    only_new: int

    @property
    def ok(self) -> bool:
        return not self.failures


def compare(base, new, rules: list[Rule], metrics: list[str] | None = None) -> Comparison:
    """Match rows of two tables by configuration and check every rule on every matched row."""
    import pandas as pd

    metrics = list(dict.fromkeys([r.metric for r in rules] + list(metrics or [])))
    for column in metrics:
        check_column(base, column, "--fail (BASE)")
        check_column(new, column, "--fail (NEW)")
    spread = [SPREAD[m] for m in metrics if m in SPREAD and SPREAD[m] in base.columns
              and SPREAD[m] in new.columns]
    keys = [c for c in config_columns(base, new)]
    left, right = _keyed(base, keys, metrics + spread), _keyed(new, keys, metrics + spread)
    merged = left.merge(right, on="_key", how="outer", suffixes=(" base", " new"),
                        indicator=True)
    both = merged[merged["_merge"] == "both"].copy()
    if both.empty:
        raise DataError("BASE and NEW share no configuration (matched on "
                        f"{', '.join(keys)})")
    failures = []
    failed_column = []
    for _, row in both.iterrows():
        failed_here = []
        for rule in rules:
            b, n = float(row[f"{rule.metric} base"]), float(row[f"{rule.metric} new"])
            if math.isnan(b) or math.isnan(n):
                continue
            if rule.fails(b, n) and not _within_spread(rule, row, b, n):
                failed_here.append(rule.metric)
                change = rule.worsening(b, n)
                shown = f"{change:.2f}%" if rule.relative else f"{change:.4g}"
                failures.append(f"{rule.metric}: {b:.6g} -> {n:.6g} (worse by {shown}; "
                                f"allowed {rule.text()}) at {row['_label base']}")
        failed_column.append(",".join(failed_here))
    out = pd.DataFrame({"configuration": _varying(list(both["_label base"]))})
    for metric in metrics:
        b = both[f"{metric} base"].astype(float).to_numpy()
        n = both[f"{metric} new"].astype(float).to_numpy()
        out[f"{metric} base"], out[f"{metric} new"], out[f"{metric} change"] = b, n, n - b
    out["failed"] = failed_column
    return Comparison(out, failures, int((merged["_merge"] == "left_only").sum()),
                      int((merged["_merge"] == "right_only").sum()))


#: A timing metric and the column holding its measured spread over timed passes: (max - min) /
#: median, as a fraction of the median.
SPREAD = {"qps": "qps_spread"}


def _within_spread(rule: Rule, row, base: float, new: float) -> bool:
    """True when a worsening of a timed metric is no larger than the two runs' measured spread:
    their pass ranges, each about (1 +- spread / 2) x the median, still overlap. A gate fails a
    timing only when the drop exceeds both its threshold and this."""
    column = SPREAD.get(rule.metric)
    if column is None or f"{column} base" not in row.index:
        return False
    spreads = float(row[f"{column} base"]), float(row[f"{column} new"])
    if any(math.isnan(value) for value in spreads) or not base:
        return False
    relative = abs(new - base) / abs(base)
    return relative <= (spreads[0] + spreads[1]) / 2


def _varying(labels: list[str]) -> list[str]:
    """Labels without the ``key=value`` parts shared by all rows (the table shows what differs)."""
    split = [label.split(" ") for label in labels]
    shared = set.intersection(*(set(parts) for parts in split)) if len(split) > 1 else set()
    return [" ".join(p for p in parts if p not in shared) or "(all)" for parts in split]


def _keyed(frame, keys: list[str], metrics: list[str]):
    import pandas as pd

    if "status" in frame.columns:
        frame = frame[frame["status"].fillna("ok") == "ok"]
    parts = []
    for column in keys:
        values = frame[column] if column in frame.columns else pd.Series("", index=frame.index)
        parts.append(values.map(_key_text))
    key = ["|".join(items) for items in zip(*parts)] if parts else [""] * len(frame)
    labels = [" ".join(f"{k}={v}" for k, v in zip(keys, items) if v != "")
              for items in zip(*parts)]
    out = pd.DataFrame({"_key": key, "_label": labels}, index=frame.index)
    for metric in metrics:
        out[metric] = pd.to_numeric(frame[metric], errors="coerce")
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
        return {"<=": values <= self.value, "<": values < self.value, ">=": values >= self.value,
                ">": values > self.value, "==": values == self.value}[self.op]

    def text(self) -> str:
        return f"{self.column}{self.op}{self.value:g}"


def parse_budget(text: str, option: str = "--budget") -> Budget:
    match = _BUDGET.match(text)
    if not match:
        raise ConfigError(f"expected COLUMN<=NUMBER (or <, >=, >, ==), e.g. "
                          f"bytes_per_vector<=256, got {text!r}", option)
    column, op, number = match.groups()
    return Budget(column, op, float(number))


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
    from vecbench.results import memory_column

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
