"""Checks for component parameters, done at construction, without data.

Each check raises :class:`ConfigError` whose path is the parameter name and whose message says
what was expected and what was given; the experiment loader prepends the YAML path.
"""

from __future__ import annotations

import numbers
from typing import Any, Iterable

from vecbench.errors import ConfigError


def _fail(name: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"expected {expected}, got {value!r}", name)


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f" in [{low}, {high}]"
    if low is not None:
        return f" >= {low}"
    if high is not None:
        return f" <= {high}"
    return ""


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    expected = f"an integer{_bounds(low, high)}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _fail(name, expected, value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise _fail(name, expected, value)
    return int(value)


def check_float(name: str, value: Any, low: float | None = None, high: float | None = None,
                low_open: bool = False) -> float:
    expected = f"a number{' > ' + str(low) if low_open else _bounds(low, high)}"
    if low_open and high is not None:
        expected = f"a number in ({low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(name, expected, value)
    value = float(value)
    if value != value:
        raise _fail(name, expected, value)
    if low is not None and (value <= low if low_open else value < low):
        raise _fail(name, expected, value)
    if high is not None and value > high:
        raise _fail(name, expected, value)
    return value


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(name, "true or false", value)
    return value


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    choices = list(choices)
    if value not in choices:
        raise _fail(name, "one of " + ", ".join(map(str, choices)), value)
    return value


def check_str(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(name, "a non-empty string", value)
    return value


def check_no_extra(component: str, given: dict, allowed: Iterable[str]) -> None:
    """Reject parameters a component does not take, naming the ones it does."""
    allowed = sorted(allowed)
    for key in given:
        if key not in allowed:
            import difflib
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(
                f"unknown parameter of {component}{hint}; expected one of: "
                f"{', '.join(allowed) or '(none)'}", str(key))
