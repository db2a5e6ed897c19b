"""Result tables in, rows out: load a results folder or table, select rows by a checked
``--where`` filter, check a named column (what compare, best, plots and the report share)."""

from __future__ import annotations

import math
import re
from pathlib import Path

from vecbench.core.errors import ConfigError, DataError
from vecbench.core.params import shown
from vecbench.evaluate import operating, results
from vecbench.evaluate.results import config_columns as columns


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


def key_text(value) -> str:
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
