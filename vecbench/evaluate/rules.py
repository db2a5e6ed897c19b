"""The gate's rules and the best row's budgets, parsed from their command-line text:
``recall@10:-0.005`` (a change), ``recall@10>=0.95`` (a bound), ``bytes_per_vector<=256`` (a
budget). Directions come from :data:`vecbench.evaluate.metrics.METRICS`."""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass

from vecbench.core.errors import ConfigError
from vecbench.core.params import check_float, NUMBER as _NUMBER
from vecbench.evaluate import operating
from vecbench.evaluate.metrics import parse_metric

_BUDGET = re.compile(rf"^\s*([^<>=!\s]+)\s*(<=|>=|==|<|>)\s*({_NUMBER})\s*$", re.ASCII)
_RULE = re.compile(rf"^\s*([^:\s]+)\s*:\s*({_NUMBER})\s*(%?)\s*$", re.ASCII)
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
