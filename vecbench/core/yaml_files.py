"""Reading the YAML a user gives (experiments, pytest specs, recipes, dataset SPECs) safely.

Text must be UTF-8 without NUL bytes and at most :data:`MAX_YAML_BYTES`; nesting is bounded by
:data:`MAX_YAML_DEPTH`, checked on the parser's event stream before any object is built, so no
input reaches a RecursionError or a MemoryError. Every problem is a one-line ConfigError or
DataError naming the file (and line).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vecbench.core.errors import ConfigError, DataError

#: Bounds on what YAML vecbench reads (experiments, specs, recipes): checked on the parser's
#: event stream, before any object is built, so no input reaches a RecursionError or MemoryError.
MAX_YAML_DEPTH = 32
MAX_YAML_BYTES = 16 << 20
#: The longest plain number read (the largest parameter, 2**31 - 1, has 10 digits).
MAX_NUMBER_CHARS = 64
_NUMERIC = re.compile(r"[-+]?[0-9._]")


def parse_yaml(text: str, where: str = "", file: str | None = None) -> Any:
    """A safe load of ``text`` (libyaml where PyYAML has it) after a nesting-depth check; errors
    are ConfigError."""
    import yaml

    # libyaml's parser where PyYAML has it: the pure-Python one was 60% of `vecbench validate`
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        depth = 0
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    mark = event.start_mark
                    raise ConfigError(f"line {mark.line + 1}: nesting deeper than "
                                      f"{MAX_YAML_DEPTH} levels; expected at most "
                                      f"{MAX_YAML_DEPTH}", where, file)
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            elif isinstance(event, yaml.ScalarEvent) and (
                    not event.style or (event.tag or "").endswith(":int")) and \
                    len(event.value) > MAX_NUMBER_CHARS and _NUMERIC.match(event.value):
                # a plain number this long is no parameter; Python refuses to build ints over
                # 4300 digits, which PyYAML would raise as a bare ValueError
                raise ConfigError(f"line {event.start_mark.line + 1}: a number of "
                                  f"{len(event.value)} characters; expected at most "
                                  f"{MAX_NUMBER_CHARS}", where, file)
        return yaml.load(text, Loader=loader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        if "maximum nesting depth" in problem:  # libyaml's own limit, met before ours
            raise ConfigError(f"{line}nesting deeper than {MAX_YAML_DEPTH} levels; expected at "
                              f"most {MAX_YAML_DEPTH}", where, file) from None
        raise ConfigError(f"{line}{problem}; expected valid YAML", where, file) from None
    except RecursionError:  # aliases can nest without nesting the text
        raise ConfigError(f"nesting deeper than Python can follow; expected at most "
                          f"{MAX_YAML_DEPTH} levels", where, file) from None


def read_text(path: str | Path, what: str) -> str:
    """A UTF-8 text file, or a one-line DataError naming it and what was expected."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory; expected {what}")
    if not path.is_file():
        raise DataError(f"{path}: no such file; expected {what}")
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise DataError(f"{path}: {path.stat().st_size} bytes; expected {what} of at most "
                            f"{MAX_YAML_BYTES} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc}); expected {what}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); expected {what}") from None


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such experiment file")
    text = read_text(path, "a YAML file")
    if "\0" in text:
        raise DataError(f"{path}: binary content (NUL bytes); expected a YAML file")
    raw = parse_yaml(text, file=str(path))
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping at the top level, got {type(raw).__name__}",
                          file=str(path))
    return raw
