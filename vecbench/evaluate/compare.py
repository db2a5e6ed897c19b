"""Compare two result tables under regression rules (the gate), and report what it found.

It reads the direction of every metric from :data:`vecbench.evaluate.metrics.METRICS`: a drop in
a higher-is-better metric, or a rise in a lower-is-better one, is a regression. Rules and budgets
are parsed in :mod:`vecbench.evaluate.rules`, tables loaded and rows selected in
:mod:`vecbench.evaluate.selection`, the best row picked in :mod:`vecbench.evaluate.best`; their
names are importable from here too, as before the split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from vecbench.core.errors import DataError
from vecbench.evaluate.best import best_under_budget, best_yaml, configuration
from vecbench.evaluate.rules import Bound, Budget, Rule, parse_budget, parse_rules
from vecbench.evaluate.selection import (check_column, check_filter_size, check_row_filter,
                                         config_columns, hosts_note, key_text, load_table,
                                         select_rows, with_points)

__all__ = ["Bound", "Budget", "Comparison", "Rule", "best_under_budget", "best_yaml",
           "check_column", "check_filter_size", "check_row_filter", "compare", "config_columns",
           "configuration", "failed_lines", "format_table", "hosts_note", "key_text",
           "load_table", "parse_budget", "parse_rules", "select_rows", "with_points"]


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

    def missing_lines(self, allowed_by: str = "") -> list[str]:
        """Every lost and unjudged line, each marked ``(allowed by OPTION)`` when the option
        that lets them pass is named (``--allow-missing``, the plugin's own)."""
        allowed = f" (allowed by {allowed_by})" if allowed_by else ""
        return [f"{line}{allowed}" for line in self.lost] + \
            [f"UNJUDGED {line}{allowed}" for line in self.unjudged]

    def lines(self) -> list[str]:
        """The report under the table: notes, then every lost, unjudged and failed check, then
        the verdict."""
        out = list(self.notes)
        if self.only_base or self.only_new:
            out.append(f"unmatched: {self.only_base} configurations only in BASE, "
                       f"{self.only_new} only in NEW")
        out += self.missing_lines("--allow-missing" if self.allow_missing else "")
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

    parts = [column(name, "").map(key_text) for name in keys]
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
