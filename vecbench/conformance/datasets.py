"""Dataset-loader conformance: it loads, with the shapes, dtypes and metric of
:class:`vecbench.datasets.base.Dataset`. Parameters: the loader's ``conformance`` dict where it
declares one, else its defaults; a loader that needs parameters (files) and declares none is
skipped. ``tests/cli/test_datasets_cli.py`` runs these on every registered loader.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vecbench.conformance import Skip
from vecbench.core.errors import ConfigError
from vecbench.core.registry import datasets
from vecbench.datasets.paths import PathResolver

METRICS = ("l2", "ip", "cos")


class Subject:
    def __init__(self, name: str):
        self.name = name
        self.cls = datasets.get(name)
        self.params = dict(getattr(self.cls, "conformance", {}))
        self.dataset: Any = None


def subjects(name: str) -> list[tuple[str, Subject]]:
    return [("", Subject(name))]


def prepare(s: Subject) -> None:
    """Construct the loader; one that cannot be built without parameters is skipped."""
    try:
        s.loader = s.cls(**s.params)
    except (ConfigError, TypeError) as exc:
        if s.params:
            raise
        raise Skip(f"needs parameters to load ({exc}); declare conformance = {{...}}") from None


def check_loads(s: Subject) -> None:
    s.dataset = s.loader.load(PathResolver())
    assert isinstance(s.dataset.name, str) and s.dataset.name, "the dataset has no name"


def _loaded(s: Subject) -> Any:
    if s.dataset is None:
        raise Skip("did not load")
    return s.dataset


def check_shapes(s: Subject) -> None:
    d = _loaded(s)
    for part in ("base", "queries", "train"):
        array = getattr(d, part)
        assert isinstance(array, np.ndarray) and array.ndim == 2 and len(array), \
            f"{part} is not a non-empty 2-D array"
        assert array.shape[1] == d.base.shape[1], f"{part} has dimension {array.shape[1]}, " \
                                                  f"base {d.base.shape[1]}"
    assert d.base.dtype == np.float32 and d.base.flags.c_contiguous, \
        f"base is {d.base.dtype}, expected C-contiguous float32"
    if d.labels is not None:
        assert len(d.labels) == len(d.base), "one label per base row expected"


def check_metric(s: Subject) -> None:
    d = _loaded(s)
    assert d.metric in METRICS, f"metric {d.metric!r}, expected one of {', '.join(METRICS)}"
    if d.metric == "cos":  # loaders hand cos data over unit-norm
        assert np.allclose(np.linalg.norm(d.base[:1000], axis=1), 1, atol=1e-3), \
            "cos base rows are not unit-norm"


CHECKS = {"loads": check_loads, "shapes": check_shapes, "metric": check_metric}
