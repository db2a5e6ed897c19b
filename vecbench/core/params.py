"""Component parameters: one declaration for validation, ``vecbench describe`` and the docs.

A component (dataset loader, transform, index, ordering) declares its parameters as a tuple of
:class:`Param` on the class (or function) as ``params``; an index also declares
``search_params``. :func:`validate` checks given values against the declaration, without data,
and the reference pages and ``vecbench describe NAME`` are written from the same tuples, so the
documentation cannot drift from what the code accepts::

    class Digits:
        params = (
            Param("n_queries", "int", 200, low=1, high=1000, doc="queries drawn from the images"),
            Param("metric", "choice", "l2", choices=METRICS, doc="distance"),
        )

        def __init__(self, n_queries=200, metric="l2"):
            assign(self, locals())

Each check raises :class:`ConfigError` whose path is the parameter name and whose message says
what was expected and what was given; the experiment loader prepends the YAML path.
"""

from __future__ import annotations

import inspect
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from vecbench.core.errors import ConfigError, did_you_mean


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: an error stays one readable line even for a
    10**5000 (whose repr Python refuses) or a megabyte of text."""
    try:
        text = repr(value)
    except ValueError:  # an int over sys.get_int_max_str_digits()
        return "an integer of thousands of digits"
    return text if len(text) <= limit else f"{text[:limit - 3]}... ({len(text)} characters)"


def _fail(name: str, expected: str, value: Any, low: float | None = None,
          high: float | None = None) -> ConfigError:
    return ConfigError(f"expected {expected}, got {shown(value)}{_cap_note(value, low, high)}",
                       name)


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f" in [{low}, {high}]"
    if low is not None:
        return f" >= {low}"
    if high is not None:
        return f" <= {high}"
    return ""


#: The largest magnitude any number takes, parameter, option or variable: native libraries
#: (faiss, hnswlib, BLAS) read C ints, and a larger value wraps, hangs or allocates without bound.
#: A declaration's own ``high`` is usually far tighter.
MAX_INT = 2**31 - 1
#: Numbers as text (CLI options, environment variables, rules, bounds): ASCII digits only, so
#: no inf, nan, '1_000' or Unicode digits, which Python's int() and float() would take.
NUMBER = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
INTEGER = r"[-+]?[0-9]+"


def within_cap(value: Any, low: float | None = None, high: float | None = None) -> bool:
    """A real number that is finite and, on each side without a declared bound, at most
    MAX_INT in magnitude (a declared bound, such as a seed's 2**63 - 1, replaces the cap).
    Ints are compared exactly, so 10**400 is refused without an OverflowError."""
    if not isinstance(value, numbers.Integral) and not math.isfinite(value):
        return False
    return (-MAX_INT if low is None else -math.inf) <= value <= \
        (MAX_INT if high is None else math.inf)


def _cap_note(value: Any, low: float | None = None, high: float | None = None) -> str:
    """What the implicit checks say about a value they refuse (after the value shown)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            within_cap(value, low, high):
        return ""
    if not isinstance(value, numbers.Integral) and not math.isfinite(value):
        return " (not a finite number)"
    return f" (beyond {MAX_INT}, the largest magnitude any number may have)"


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    expected = f"an integer{_bounds(low, high)}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _fail(name, expected, value)
    if (low is not None and value < low) or (high is not None and value > high) or \
            not within_cap(value, low, high):
        raise _fail(name, expected, value, low, high)
    return int(value)


def check_float(name: str, value: Any, low: float | None = None, high: float | None = None,
                low_open: bool = False) -> float:
    expected = f"a number{' > ' + str(low) if low_open else _bounds(low, high)}"
    if low_open and high is not None:
        expected = f"a number in ({low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(name, expected, value)
    if value != value or not within_cap(value, low, high):
        raise _fail(name, expected, value, low, high)
    value = float(value)
    if low is not None and (value <= low if low_open else value < low):
        raise _fail(name, expected, value)
    if high is not None and value > high:
        raise _fail(name, expected, value)
    return value


def parse_number(name: str, text: str, kind: str = "number", low: float | None = None,
                 high: float | None = None) -> int | float:
    """A number written as text (an option, a variable, a bound in a rule), through the same
    checks as a YAML value: ``kind`` ``int`` or ``number``; ConfigError naming ``name``."""
    import re

    grammar = INTEGER if kind == "int" else NUMBER
    if not isinstance(text, str) or not re.fullmatch(grammar, text.strip(), re.ASCII):
        what = "an integer" if kind == "int" else "a number"
        raise _fail(name, f"{what}{_bounds(low, high)}, written in ASCII digits", text)
    value = int(text) if kind == "int" else float(text)
    try:
        return (check_int if kind == "int" else check_float)(name, value, low, high)
    except ConfigError as exc:  # shown as written: '1e999' is what the user typed, not inf
        raise ConfigError(exc.message.replace(f"got {shown(value)}", f"got {shown(text)}", 1),
                          name) from None


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
            raise ConfigError(
                f"unknown parameter of {component}{did_you_mean(key, allowed)}; expected one of: "
                f"{', '.join(allowed) or '(none)'}", str(key))


# --- declarations ---------------------------------------------------------------------------------

class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of a parameter that must be given.
REQUIRED: Any = _Required()

#: Kinds a parameter may have (``|`` joins alternatives, e.g. ``"bool|str"``).
KINDS = ("int", "number", "bool", "str", "choice", "dims", "ints", "strs", "any")


@dataclass(frozen=True)
class Param:
    """One parameter of a component.

    ``kind``: ``int``, ``number``, ``bool``, ``str`` (non-empty), ``choice`` (one of
    ``choices``), ``dims`` (an integer >= 1 of dimensions kept, or a fraction in (0, 1] of the
    input dimension; ``choices`` lists extra words allowed, such as ``auto``), ``ints`` (a list
    of integers, each >= ``low``), ``strs`` (a non-empty list of strings), ``any``;
    alternatives joined by ``|``. ``low``/``high`` bound numbers (``low_open``/``high_open``
    exclude the bound). ``nullable``: null is allowed too (``doc`` says what it means).
    ``default`` is :data:`REQUIRED` for a parameter that must be given.
    """

    name: str
    kind: str
    default: Any = REQUIRED
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    doc: str = ""
    low_open: bool = False
    high_open: bool = False
    nullable: bool = False

    def __post_init__(self) -> None:
        for kind in self.kind.split("|"):
            if kind not in KINDS:
                raise ValueError(f"Param {self.name}: unknown kind {kind!r}")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def _range(self) -> str:
        def text(bound: float) -> str:
            return str(bound) if isinstance(bound, int) else f"{bound:g}"

        if self.low is not None and self.high is not None:
            return (f" in {'(' if self.low_open else '['}{text(self.low)}, {text(self.high)}"
                    f"{')' if self.high_open else ']'}")
        if self.low is not None:
            return f" {'>' if self.low_open else '>='} {text(self.low)}"
        if self.high is not None:
            return f" {'<' if self.high_open else '<='} {text(self.high)}"
        return ""

    def expected(self, null: bool = True) -> str:
        """What a valid value is, in words: ``an integer >= 2``, ``one of l2, ip, cos``;
        ``null``: name null too where the parameter is nullable (``describe``, the docs)."""
        words = []
        for kind in self.kind.split("|"):
            if kind == "int":
                words.append(f"an integer{self._range()}")
            elif kind == "number":
                words.append(f"a number{self._range()}")
            elif kind == "bool":
                words.append("true or false")
            elif kind == "str":
                words.append("a non-empty string")
            elif kind == "choice":
                words.append("one of " + ", ".join(map(str, self.choices)))
            elif kind == "dims":
                extra = "".join(f", or {c!r}" for c in self.choices)
                words.append(f"an integer >= 1 or a fraction in (0, 1]{extra}")
            elif kind == "ints":
                words.append(f"a list of integers{self._range()}")
            elif kind == "strs":
                words.append("a non-empty list of strings")
            else:
                words.append("any value")
        if self.nullable and null:
            words.append("null")
        return " or ".join(words)

    def check(self, value: Any) -> Any:
        """The value, normalized (ints stay ints); ConfigError naming the parameter if invalid."""
        if value is None and self.nullable:
            return None
        for kind in self.kind.split("|"):
            ok, checked = self._check_kind(kind, value)
            if ok:
                return checked
        if self.kind == "ints" and isinstance(value, (list, tuple)):
            for i, item in enumerate(value):  # name the element that is wrong
                if isinstance(item, bool) or not isinstance(item, numbers.Integral) or \
                        not self._in_range(item):
                    raise ConfigError(f"expected an integer{self._range()}, got "
                                      f"{shown(item)}{_cap_note(item, self.low, self.high)}",
                                      f"{self.name}[{i}]")
        got = "nothing (required)" if value is REQUIRED else shown(value)
        if value is None and self.required:
            got = "None (required)"
        note = _cap_note(value, self.low, self.high) if any(
            kind in ("int", "number", "dims") for kind in self.kind.split("|")) else ""
        # a value given is refused for what it is (``threads: expected an integer >= 1, got
        # 0``): null, which the docs and describe list, is not the alternative the user meant
        raise ConfigError(f"expected {self.expected(null=False)}, got {got}{note}", self.name)

    def _in_range(self, value: float) -> bool:
        """Within the declared bounds and the cap every number has (finite, MAX_INT)."""
        if not within_cap(value, self.low, self.high):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True

    def _check_kind(self, kind: str, value: Any) -> tuple[bool, Any]:
        is_bool = isinstance(value, bool)
        if kind == "int":
            ok = not is_bool and isinstance(value, numbers.Integral) and self._in_range(value)
            return ok, int(value) if ok else None
        if kind == "number":
            ok = (not is_bool and isinstance(value, numbers.Real) and value == value
                  and self._in_range(value))
            # an int stays an int, so results record ``nprobe: 16``, not 16.0
            return ok, (value if isinstance(value, numbers.Integral) else float(value)) \
                if ok else None
        if kind == "bool":
            return is_bool, value
        if kind == "str":
            return isinstance(value, str) and bool(value), value
        if kind == "choice":
            return isinstance(value, (str, int, float)) and value in self.choices, value
        if kind == "dims":
            if isinstance(value, str):
                return value in self.choices, value
            ok = not is_bool and ((isinstance(value, numbers.Integral) and 1 <= value <= MAX_INT) or (
                isinstance(value, numbers.Real) and 0.0 < float(value) <= 1.0))
            return ok, value
        if kind == "ints":
            ok = isinstance(value, (list, tuple)) and all(
                not isinstance(v, bool) and isinstance(v, numbers.Integral) and self._in_range(v)
                for v in value)
            return ok, value
        if kind == "strs":
            ok = isinstance(value, (list, tuple)) and len(value) > 0 and all(
                isinstance(v, str) and v for v in value)
            return ok, value
        return True, value  # any


def declared(component: Any, which: str = "params") -> tuple[Param, ...]:
    """The declaration of a component (class, instance or function): ``params`` or
    ``search_params``; an empty tuple when it declares none."""
    return tuple(getattr(component, which, None) or ())


def component_label(component: Any) -> str:
    label = getattr(component, "name", None)
    if not isinstance(label, str) or isinstance(component, type) and "name" in {
            p.name for p in declared(component)}:
        label = getattr(component, "__name__", None) or type(component).__name__
    return label


def validate(component: Any, given: dict, *, which: str = "params",
             defaults: bool = True) -> dict:
    """Check ``given`` against the component's declaration; return the checked values.

    Unknown names raise ConfigError with a did-you-mean; so does a missing required parameter.
    ``defaults``: fill in the declared default of every parameter not given (constructors);
    False returns only what was given (search parameters, orderings: what results record).
    """
    params = declared(component, which)
    check_no_extra(component_label(component) + (" search" if which == "search_params" else ""),
                   given, [p.name for p in params])
    out = {}
    for param in params:
        if param.name in given:
            out[param.name] = param.check(given[param.name])
        elif param.required:
            param.check(REQUIRED)
        elif defaults:
            out[param.name] = param.default
    return out


def signature(params: Iterable[Param]) -> "inspect.Signature":
    """The keyword-only constructor signature a declaration stands for, as a hand-written
    ``__init__`` would spell it (``inspect.signature``, scikit-learn's ``get_params`` and the
    docs read it); a required parameter has no default."""
    import inspect

    return inspect.Signature([inspect.Parameter(
        param.name, inspect.Parameter.KEYWORD_ONLY,
        default=inspect.Parameter.empty if param.required else param.default)
        for param in params])


class _Declared:
    def __init__(self, params: tuple[Param, ...], label: str):
        self.params, self.name = params, label


def assign(obj: Any, given: dict, params: tuple[Param, ...] | None = None) -> None:
    """Validate a constructor's arguments (``locals()``) and store them as attributes.

    ``params``: the declaration to check against, when the constructor handles only part of
    its class's declaration (a subclass's own parameters); default: the class's ``params``.
    """
    given = {key: value for key, value in given.items()
             if key not in ("self", "__class__") and not key.startswith("_")}
    target = type(obj) if params is None else _Declared(params, component_label(type(obj)))
    for name, value in validate(target, given).items():
        setattr(obj, name, value)


@dataclass(frozen=True)
class Spec:
    """A component's name, parameter declaration and YAML list parameters, without the component.

    ``vecbench validate`` checks parameters with it, so it imports no heavy library; the class
    declares the same tuple (``params = checks.NAME.params``) and runs the same ``check``.
    ``check``: the rules that tie parameters together, on the checked values (ConfigError).
    """

    name: str
    params: tuple[Param, ...]
    list_params: tuple[str, ...] = ()  # experiment YAML: a list here is one value, not an axis
    check: Callable[[dict], None] | None = None

    @property
    def defaults(self) -> dict[str, Any]:
        return {param.name: param.default for param in self.params}

    def validate(self, given: dict[str, Any]) -> dict[str, Any]:
        """The checked parameters; ConfigError (path: the parameter) for an unknown name or a
        bad value."""
        values = validate(self, given)
        if self.check is not None:
            self.check(values)
        return values
