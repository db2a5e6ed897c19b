"""The ``filters:`` axis of an experiment, checked without data (``vecbench validate`` stays
numpy-free), and the search keys that choose how a filter is applied.

An entry is ``none``, a generated filter ``{selectivity: S, correlation: random | positive |
negative}`` (lists multiply), labels ``{labels: FILE, query_labels: FILE}``, or a range
``{range: {column: FILE, low: X, high: Y}}``. The index's ``search:`` may add ``filter_mode:
native | post`` and, with ``post``, ``oversample: N`` (fetch k x N, keep the first k that pass).
"""

from __future__ import annotations

from typing import Any

from vecbench.core.components import Component, expand_params
from vecbench.core.errors import ConfigError
from vecbench.core.params import check_choice, check_float, check_int, check_no_extra

CORRELATIONS = ("random", "positive", "negative")
MODES = ("native", "post")
GENERATED_KEYS = ("selectivity", "correlation")
LABEL_KEYS = ("labels", "query_labels")
RANGE_KEYS = ("column", "low", "high")
#: The search keys the filtered workload reads (not the index's own parameters).
SEARCH_KEYS = ("filter_mode", "oversample")
MAX_OVERSAMPLE = 10_000
NONE = Component("none", {}, "")


def expand_filters(raw: Any) -> tuple[Component, ...]:
    """The checked entries of ``filters:`` (``()``: no filter axis, i.e. ``[none]``)."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"expected a non-empty list of filters (none, {{selectivity, "
                          f"correlation}}, {{labels, query_labels}} or {{range}}), got {raw!r}",
                          "filters")
    out: list[Component] = []
    for i, entry in enumerate(raw):
        where = f"filters[{i}]"
        for component in _expand_entry(entry, where):
            if component.canonical() not in [c.canonical() for c in out]:
                out.append(component)
    if [c.name for c in out] == ["none"]:
        return ()
    return tuple(out)


def _expand_entry(entry: Any, where: str) -> list[Component]:
    if entry is None or entry == "none":
        return [Component("none", {}, where)]
    if not isinstance(entry, dict):
        raise ConfigError(f"expected none or a mapping ({{selectivity, correlation}}, "
                          f"{{labels, query_labels}} or {{range}}), got {entry!r}", where)
    if "range" in entry:
        try:
            check_no_extra("a range filter", entry, ("range",))
        except ConfigError as exc:
            raise exc.within(where) from None
        given = entry["range"]
        if not isinstance(given, dict):
            raise ConfigError(f"expected a mapping with keys column, low, high, got {given!r}",
                              f"{where}.range")
        try:
            check_no_extra("range", given, RANGE_KEYS)
            for key in RANGE_KEYS:
                if key not in given:
                    raise ConfigError(f"missing; expected {', '.join(RANGE_KEYS)}", key)
            column = _file(given["column"], "column")
            low, high = (check_float(key, given[key]) for key in ("low", "high"))
            if low > high:
                raise ConfigError(f"expected low <= high, got low {low} > high {high}", "high")
        except ConfigError as exc:
            raise exc.within(f"{where}.range") from None
        return [Component("range", {"column": column, "low": low, "high": high}, where)]
    if "labels" in entry or "query_labels" in entry:
        try:
            check_no_extra("a labels filter", entry, LABEL_KEYS)
            for key in LABEL_KEYS:
                if key not in entry:
                    raise ConfigError(f"missing; a labels filter needs labels (one per base "
                                      f"row) and query_labels (one per query)", key)
            params = {key: _file(entry[key], key) for key in LABEL_KEYS}
        except ConfigError as exc:
            raise exc.within(where) from None
        return [Component("labels", params, where)]
    try:
        check_no_extra("a generated filter", entry, GENERATED_KEYS)
        for key in GENERATED_KEYS:
            if key not in entry:
                raise ConfigError(f"missing; a generated filter needs selectivity in (0, 1] "
                                  f"and correlation ({', '.join(CORRELATIONS)})", key)
    except ConfigError as exc:
        raise exc.within(where) from None
    out = []
    for combo in expand_params(entry, where):
        try:
            selectivity = check_float("selectivity", combo["selectivity"])
            if not 0.0 < selectivity <= 1.0:
                raise ConfigError(f"expected a share of the base rows in (0, 1], got "
                                  f"{combo['selectivity']!r}", "selectivity")
            correlation = check_choice("correlation", combo["correlation"], CORRELATIONS)
        except ConfigError as exc:
            raise exc.within(where) from None
        out.append(Component("generated", {"selectivity": selectivity,
                                           "correlation": correlation}, where))
    return out


def _file(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"expected a file name (.npy, or text with one value a line), got "
                          f"{value!r}", key)
    return value


def check_files(filters: tuple, base_dir: str) -> None:
    """The files a labels or range filter names exist (relative to the experiment's folder);
    their lengths are checked against the data when a unit loads it."""
    from pathlib import Path

    for component in filters:
        keys = {"labels": ("labels", "query_labels"), "range": ("column",)}.get(component.name, ())
        for key in keys:
            name = component.params[key]
            path = Path(name) if Path(name).is_absolute() else Path(base_dir) / name
            if not path.is_file():
                where = f"{component.where}.{'range.' if component.name == 'range' else ''}{key}"
                raise ConfigError(f"no such file {str(path)!r}; expected one value a line or a "
                                  ".npy array", where)


def label(component: Component) -> str:
    """``none``, ``random@0.01``, ``labels(FILE)``, ``range(col in [lo, hi])``: a row's filter."""
    params = component.params
    if component.name == "generated":
        return f"{params['correlation']}@{params['selectivity']:g}"
    if component.name == "labels":
        return f"labels({params['labels']})"
    if component.name == "range":
        return f"range({params['column']} in [{params['low']:g}, {params['high']:g}])"
    return "none"


def split_search(params: dict, where: str) -> tuple[dict, dict]:
    """(the index's own search parameters, the filter keys ``filter_mode``/``oversample``
    checked): what the filtered workload reads is not passed to the index."""
    own = {k: v for k, v in params.items() if k not in SEARCH_KEYS}
    chosen = {}
    try:
        if "filter_mode" in params:
            chosen["filter_mode"] = check_choice("filter_mode", params["filter_mode"], MODES)
        if "oversample" in params:
            chosen["oversample"] = check_int("oversample", params["oversample"], 1,
                                             MAX_OVERSAMPLE)
            if chosen.get("filter_mode") != "post":
                if chosen["oversample"] != 1:
                    raise ConfigError("applies only with filter_mode: post (native filtering "
                                      "fetches k; 1 is accepted, for zip:)", "oversample")
                del chosen["oversample"]
    except ConfigError as exc:
        raise exc.within(where) from None
    return own, chosen


def check_capability(index_name: str, capabilities: frozenset, searches: tuple,
                     filters: tuple, where: str) -> None:
    """A filtered search with ``filter_mode: native`` (the default) on an index that cannot
    filter natively is refused: say ``filter_mode: post``."""
    if not any(f.name != "none" for f in filters) or "filter" in capabilities:
        return
    for search in searches:
        if search.get("filter_mode", "native") == "native":
            raise ConfigError(f"index {index_name} has no native filter (capabilities: "
                              f"{', '.join(sorted(capabilities)) or 'none'}); expected "
                              f"filter_mode: post (with oversample: N)",
                              f"{where}.search.filter_mode")
