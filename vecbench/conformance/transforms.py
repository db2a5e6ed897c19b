"""Transform conformance: scikit-learn's transformer conventions as vecbench uses them (fit
returns self, declared output shapes and dtypes, parameters round-trip), on small seeded data.

The parameters come from the class's ``conformance`` dict where it declares one (a plugin),
else from ``vecbench.transforms.estimator_checks.CHECK_PARAMS`` (the built-ins), else the
defaults. ``tests/conformance/test_transform_conformance.py`` runs these on every registered transform,
besides scikit-learn's own ``check_estimator``.
"""

from __future__ import annotations

import functools
import pickle
from typing import Any

import numpy as np

from vecbench.conformance import Skip
from vecbench.core.registry import transforms
from vecbench.transforms.estimator_checks import CHECK_PARAMS

D = 24


@functools.lru_cache(maxsize=1)
def data() -> tuple[np.ndarray, np.ndarray]:
    """200 training and 50 query rows of unit norm in 24 dimensions."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((250, D)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x[:200], x[200:]


def conformance_params(name: str) -> dict:
    declared = getattr(transforms.get(name), "conformance", None)
    return dict(declared if isinstance(declared, dict) else CHECK_PARAMS.get(name, {}))


class Subject:
    def __init__(self, name: str):
        self.name = name
        self.cls = transforms.get(name)
        self.params = conformance_params(name)
        self._fitted = None

    def make(self) -> Any:
        return self.cls(**self.params)

    def fitted(self) -> Any:
        if self._fitted is None:
            self._fitted = self.make().fit(data()[0])
        return self._fitted


def subjects(name: str) -> list[tuple[str, Subject]]:
    return [("", Subject(name))]


def prepare(subject: Subject) -> None:
    """Nothing to skip: a transform's import error already failed the lookup."""


def is_quantizer(t: Any) -> bool:
    return hasattr(t, "code_kind")


def check_fit_transform(s: Subject) -> None:
    train, queries = data()
    t = s.make()
    assert t.fit(train) is t, "fit does not return self"
    codes = t.transform(queries)
    assert codes.ndim == 2 and len(codes) == len(queries), \
        f"transform gave shape {codes.shape}, expected ({len(queries)}, m)"
    if is_quantizer(t):
        assert isinstance(t.code_kind, str) and t.code_kind, "code_kind is not a name"
        assert codes.dtype == t.code_dtype, f"codes {codes.dtype}, declared {t.code_dtype}"
        assert codes.nbytes == len(queries) * t.bytes_per_vector_, \
            f"codes take {codes.nbytes} bytes, declared {t.bytes_per_vector_} per vector"
        assert isinstance(t.model_bytes_, int) and t.model_bytes_ >= 0, "model_bytes_ < 0"
        same, report = t.encode(queries)
        assert np.array_equal(same, codes), "encode gives other codes than transform"
        assert set(report) == {"clipped_values", "clipped_fraction"}, \
            f"encode's report has {sorted(report)}, expected clipped_values, clipped_fraction"
    else:
        assert codes.dtype == np.float32 and codes.flags.c_contiguous, \
            f"output {codes.dtype}, expected C-contiguous float32"
        assert 1 <= codes.shape[1] and np.isfinite(codes).all(), "empty or non-finite output"


def check_inverse_transform(s: Subject) -> None:
    t = s.fitted()
    if not hasattr(t, "inverse_transform"):
        raise Skip("no inverse_transform (optional for reductions)")
    x = data()[1]
    back = t.inverse_transform(t.transform(x))
    assert back.shape == x.shape and back.dtype == np.float32, \
        f"inverse_transform gave {back.dtype} {back.shape}, expected float32 {x.shape}"


def check_params_round_trip(s: Subject) -> None:
    from sklearn.base import clone

    t = s.fitted()
    params = t.get_params()
    for key, value in s.params.items():
        assert params.get(key) == value, f"get_params()[{key!r}] = {params.get(key)!r}, " \
                                         f"given {value!r}"
    assert type(t)(**params).get_params() == params, "constructing from get_params() differs"
    assert clone(t).get_params() == params, "sklearn.base.clone changes the parameters"
    restored = pickle.loads(pickle.dumps(t))
    assert np.array_equal(restored.transform(data()[1]), t.transform(data()[1])), \
        "a pickled copy transforms differently"


def check_deterministic(s: Subject) -> None:
    train, queries = data()
    again = s.make().fit(train)
    assert np.array_equal(again.transform(queries), s.fitted().transform(queries)), \
        "two fits with the same parameters (and seed) transform differently"


def check_unknown_parameter(s: Subject) -> None:
    try:
        s.cls(**{**s.params, "no_such_parameter": 1})
    except (TypeError, ValueError):  # ConfigError (a ValueError), or Python's own TypeError
        return
    raise AssertionError("an unknown parameter name was accepted")


CHECKS = {
    "fit_transform": check_fit_transform,
    "inverse_transform": check_inverse_transform,
    "params_round_trip": check_params_round_trip,
    "deterministic": check_deterministic,
    "unknown_parameter": check_unknown_parameter,
}
