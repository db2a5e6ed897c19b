"""Conformance checks of registered components: what ``vecbench check NAME`` prints, and what
the test suite runs for every registered component, so both run the same code.

Each kind has a module (``vecbench.conformance.indexes``, ``.transforms``, ``.datasets``,
``.orderings``, ``.metrics``) with ``CHECKS`` (check name -> function of a subject, raising
AssertionError or another exception on failure, :class:`Skip` when the check does not apply)
and ``subjects(name)`` (the subjects of that component: an index's variants are more than one).
The kind modules import numpy; this one imports nothing heavy.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from vecbench.core.errors import ConfigError, did_you_mean
from vecbench.core.registry import KINDS


class Skip(Exception):
    """A check that does not apply to this component (a metric it does not accept, a module
    it needs that is not installed); the message says why."""


@dataclass(frozen=True)
class Result:
    check: str
    ok: bool | None          # None: skipped
    message: str = ""

    def line(self) -> str:
        status = {True: "ok", False: "FAIL", None: "skip"}[self.ok]
        return f"{status:<4} {self.check}" + (f": {self.message}" if self.message else "")


def checks_module(kind: str) -> Any:
    return importlib.import_module(f"vecbench.conformance.{kind}")


def find_kind(name: str, kind: str | None = None) -> str:
    """The registry ``name`` is in (``kind`` when given); ConfigError when it is in none or,
    without ``kind``, in several."""
    if kind is not None:
        if name not in KINDS[kind]:
            raise ConfigError(KINDS[kind].unknown_message(name))
        return kind
    found = [k for k, registry in KINDS.items() if name in registry]
    if not found:
        names = sorted({n for registry in KINDS.values() for n in registry.names()})
        raise ConfigError(f"unknown component {name!r}{did_you_mean(name, names)}; expected one of: "
                          f"{', '.join(names)}")
    if len(found) > 1:
        raise ConfigError(f"{name!r} is a name in {' and '.join(found)}; expected --kind "
                          "to say which")
    return found[0]


def run_one(function: Callable[[Any], None], subject: Any, check: str) -> Result:
    """One check as a result: ok, skipped, or failed with a one-line reason."""
    try:
        function(subject)
    except Skip as skip:
        return Result(check, None, str(skip))
    except Exception as exc:  # noqa: BLE001 (any failure of the component is a FAIL line)
        text = str(exc).strip().splitlines()
        reason = text[0] if text else "assertion failed"
        return Result(check, False, reason if isinstance(exc, AssertionError)
                      else f"{type(exc).__name__}: {reason}")
    return Result(check, True)


def run(name: str, kind: str | None = None) -> list[Result]:
    """Every check of component ``name`` (after loading it: a plugin that fails to import is
    one ConfigError line), in order."""
    kind = find_kind(name, kind)
    KINDS[kind].get(name)
    module = checks_module(kind)
    results = []
    for label, subject in module.subjects(name):
        prefix = f"{label}: " if label else ""
        try:
            module.prepare(subject)
        except Skip as skip:
            results.append(Result(f"{prefix}all checks", None, str(skip)))
            continue
        results += [run_one(function, subject, prefix + check)
                    for check, function in module.CHECKS.items()]
        getattr(subject, "close", lambda: None)()  # what its builds hold (tables, servers)
    return results
