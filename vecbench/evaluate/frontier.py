"""Configuration families and Pareto fronts of a result table (plots and report share them).

A *configuration family* is one index with one set of build parameters over one pipeline (and
rescoring): its rows differ only in search parameters, so they trace one curve.
"""

from __future__ import annotations

import math

import numpy as np


def value_text(value) -> str:
    """A table value as a label: 16.0 -> '16'; every kind of missing value (None, NaN, and
    pandas' NA and NaT, which str() spells '<NA>' and 'NaT') -> ''."""
    if value is None or _missing(value):
        return ""
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        if float(value).is_integer():
            return str(int(value))
        return str(value)
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def _missing(value) -> bool:
    """pandas' scalar missing values, without importing pandas for a plain value."""
    if type(value).__module__.startswith("pandas"):
        import pandas as pd
        try:
            return bool(pd.isna(value))
        except (TypeError, ValueError):  # an array-like: not one missing value
            return False
    return False


def natural_key(value) -> list:
    """Sort key that orders ``id4 < id16 < id128`` (digits compared as numbers)."""
    import re
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", value_text(value)) if part]


def family_columns(frame) -> list[str]:
    """Columns that name a configuration family: index, build parameters, pipeline, rescoring."""
    columns = (["index"] + sorted(c for c in frame.columns if c.startswith("build."))
               + ["pipeline"] + sorted(c for c in frame.columns if c.startswith("rescore.")))
    return [c for c in columns if c in frame.columns and frame[c].notna().any()]


def varying(frame, columns) -> list[str]:
    """The columns among ``columns`` that tell rows apart: more than one non-empty value, or
    (rescoring) a value on some rows only."""
    def tells_apart(column):
        text = frame[column].map(value_text)
        given = text.loc[lambda t: t != ""]
        return given.nunique() > 1 or (column.startswith("rescore.") and 0 < len(given) < len(text))
    return [c for c in columns if tells_apart(c)]


def config_label(row, columns) -> str:
    """``hnswlib M=16 pca(n_components=64) rescore(with=float32,oversample=10)``: index and
    pipeline by value, parameters as name=value, rescoring grouped; empty values left out."""
    parts, rescore = [], []
    for column in columns:
        text = value_text(row[column])
        if not text:
            continue
        name = column.split(".", 1)[-1]
        if column.startswith("rescore."):
            rescore.append(f"{name}={text}")
        else:
            parts.append(text if column in ("index", "pipeline") else f"{name}={text}")
    if rescore:
        parts.append(f"rescore({','.join(rescore)})")
    return " ".join(parts)


def pareto_front(x: np.ndarray, y: np.ndarray, x_higher: bool = True,
                 y_higher: bool = True) -> np.ndarray:
    """Indices of the non-dominated points, sorted by x.

    Written by hand (a sort and one sweep) because numpy, pandas and scikit-learn have no Pareto
    front; a point is kept when no other point is at least as good on both axes and better on one.
    """
    x = np.asarray(x, float) * (1 if x_higher else -1)
    y = np.asarray(y, float) * (1 if y_higher else -1)
    valid = np.flatnonzero(~(np.isnan(x) | np.isnan(y)))
    order = valid[np.lexsort((-y[valid], -x[valid]))]  # best x first, best y first among ties
    front, best_y = [], -np.inf
    for i in order:
        if y[i] > best_y:
            front.append(i)
            best_y = y[i]
    front = np.array(front, dtype=int)
    return front[np.argsort(x[front] * (1 if x_higher else -1))] if len(front) else front
