"""User-facing errors.

A ``VecbenchError`` is bad input: the CLI prints its message as one line and exits 2, without a
traceback. Anything else is a bug and keeps its traceback.

``ConfigError`` and ``DataError`` are also ``ValueError`` (scikit-learn's convention for a bad
parameter or bad data), so code written for scikit-learn estimators, and scikit-learn's own
``check_estimator``, catch them where they expect a ``ValueError``.
"""

from __future__ import annotations


class VecbenchError(Exception):
    """Bad input from the user (file, YAML value, argument). Printed as one line, exit 2."""


class ConfigError(VecbenchError, ValueError):
    """A bad value in an experiment, a component's parameters or a CLI argument.

    ``path`` is the dotted YAML path of the value (``indexes[1].hnswlib.build.M``); callers that
    know more of the path prepend to it with :meth:`within`, so the component that checks a value
    need not know where in the YAML it sits.
    """

    def __init__(self, message: str, path: str = "", file: str | None = None):
        self.message = message
        self.path = path
        self.file = file
        super().__init__(str(self))

    def within(self, prefix: str) -> "ConfigError":
        """Return the same error with ``prefix`` prepended to its YAML path."""
        if not prefix:
            return self
        joined = prefix if not self.path else (
            f"{prefix}{self.path}" if self.path.startswith("[") else f"{prefix}.{self.path}")
        return ConfigError(self.message, joined, self.file)

    def in_file(self, file: str) -> "ConfigError":
        return ConfigError(self.message, self.path, self.file or file)

    def __str__(self) -> str:
        where = ": ".join(p for p in (self.file, self.path) if p)
        return f"{where}: {self.message}" if where else self.message


class DataError(VecbenchError, ValueError):
    """Unusable data: a missing file, NaN/Inf vectors, mismatched dimensions."""


class MachineFailure(RuntimeError):
    """A failing machine or engine under a unit (a server killed, a data file changed size
    while mapped): not bad input, so the unit is recorded as a ``crash``, but its reason is
    this one line, which names what failed and what happened, not a traceback's last line."""


class MissingDataError(DataError):
    """A data file or folder is not there (as opposed to being there and unusable)."""


def did_you_mean(name: object, names) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``names`` to an unknown ``name``, or ''."""
    import difflib

    close = difflib.get_close_matches(str(name), list(names), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
