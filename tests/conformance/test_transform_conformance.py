"""Every registered transform honours the protocol of ``vecbench.transforms``.

SPECS has one entry per registered name: small parameters (fast fits), a bad parameter that must
raise ConfigError, and for quantizers the bound on the reconstruction error. A newly registered
transform without an entry fails ``test_every_registered_transform_has_a_spec`` on purpose.

``test_conformance`` runs the checks of ``vecbench.conformance.transforms`` (what ``vecbench
check NAME`` runs, for a plugin's transform too) on every registered transform.

scikit-learn's own ``check_estimator`` runs on every registered transform too, built with its
defaults and with CHECK_PARAMS, with the known failures of
``vecbench.transforms.estimator_checks`` (the one list of them, with reasons).
"""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from vecbench.conformance import Skip
from vecbench.conformance import transforms as conformance
from vecbench.core.errors import ConfigError, DataError
from vecbench.core.registry import transforms
from vecbench.transforms.estimator_checks import (CHECK_PARAMS, ENVIRONMENT_REASONS,
                                                  EXPECTED_FAILED_CHECKS, MAX_FAILED_CHECKS,
                                                  ORDER_DEPENDENT, UNSTABLE)

D = 24


def _relative(bits: int, smallest: float):
    """Round-to-nearest bound: half an ulp relative, or half the smallest subnormal absolute."""
    def bound(x, t):
        return np.maximum(np.abs(x) * 2.0 ** -(bits + 1), smallest / 2)
    return bound


def _float8(bits: int, smallest: float):
    def bound(x, t):
        # codes are scaled by s before the cast: errors scale by 1/s
        scale = 1.0
        if t.scale in ("global", "per_dimension"):
            scale = t.encode_scale_
        elif t.scale == "per_vector":
            scale = np.float32(448 if t.format == "e4m3" else 57344) / np.abs(x).max(1)[:, None]
        return np.maximum(np.abs(x) * 2.0 ** -(bits + 1), smallest / 2 / scale) * (1 + 1e-6)
    return bound


def _half_step(x, t):
    """Uniform quantizers: half a step (a query beyond the calibration range is clipped, so
    the bound is checked on the fit data)."""
    return np.broadcast_to(t.step_ / 2 * (1 + 1e-5) + 1e-7, x.shape)


def _sign_only(x, t):  # +-1 decoding: the sign is right, the magnitude is not bounded
    return None


REDUCTION_PARAMS = dict(n_components=6)
SPECS = {
    "pca": dict(params=REDUCTION_PARAMS, bad=("n_components", 0)),
    "random_projection": dict(params=dict(n_components=6, kind="sparse"), bad=("kind", "dense")),
    "truncate": dict(params=dict(n_components=0.25), bad=("n_components", 1.5)),
    "umap": dict(params=dict(n_components=3, n_neighbors=8, fit_size=150),
                 bad=("metric", "hamming")),
    "kernel_pca": dict(params=dict(n_components=6, kernel="rbf", fit_size=150),
                       bad=("kernel", "sigmoid")),
    "autoencoder": dict(params=dict(hidden=[16], n_components=6, epochs=5),
                        bad=("hidden", [16, 0])),
    "mpad": dict(params=dict(n_components=4, fit_size=150, n_anchors=30, n_negatives=5,
                             negative_rank=20, max_iter=5), bad=("n_components", 0)),
    "mpad_axiswise": dict(params=dict(n_components=3, fit_size=150, pairs_per_point=5,
                                      max_iter=5), bad=("n_components", 0)),
    "float16": dict(params={}, bound=_relative(10, 2.0 ** -24)),
    "bfloat16": dict(params={}, bound=_relative(7, 2.0 ** -133)),
    "float8": dict(params=dict(format="e4m3", scale="per_dimension"), bad=("format", "e3m3"),
                   bound=_float8(3, 2.0 ** -9)),
    "int8": dict(params=dict(symmetric=False, granularity="per_dimension"),
                 bad=("granularity", "per_vector"), bound=_half_step),
    "int4": dict(params=dict(symmetric=True, granularity="global"), bad=("symmetric", "yes"),
                 bound=_half_step),
    "binary": dict(params={}, bound=_sign_only),
}
NAMES = transforms.names()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((250, D)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x[:200], x[200:]


@pytest.fixture(scope="module")
def fitted(data):
    """One fit per transform for the whole module (UMAP's first fit compiles for ~20 s)."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = transforms.get(name)(**SPECS[name]["params"]).fit(data[0])
        return cache[name]
    return get


is_quantizer = conformance.is_quantizer


@pytest.mark.parametrize("check", list(conformance.CHECKS))
@pytest.mark.parametrize("name", NAMES)
def test_conformance(name, check):
    """The checks ``vecbench check NAME`` runs."""
    try:
        conformance.CHECKS[check](conformance.Subject(name))
    except Skip as skip:
        pytest.skip(str(skip))


def test_every_registered_transform_has_a_spec():
    missing = sorted(set(NAMES) - set(SPECS))
    assert not missing, f"add conformance specs for newly registered transforms: {missing}"
    missing = sorted(set(NAMES) - set(CHECK_PARAMS))
    assert not missing, f"add CHECK_PARAMS in vecbench.transforms.estimator_checks: {missing}"
    assert set(EXPECTED_FAILED_CHECKS) <= set(NAMES)


def _check_name(check) -> str:
    return getattr(check, "func", check).__name__


def _checked_instances() -> list:
    """Each transform with CHECK_PARAMS, and with its defaults where those differ: the defaults
    are what a user's ``check_estimator(MPAD())`` runs."""
    instances = []
    for name in NAMES:
        cls = transforms.get(name)
        small, default = cls(**CHECK_PARAMS[name]), cls()
        instances += [small] if small.get_params() == default.get_params() else [small, default]
    return instances


CHECKED = _checked_instances()


def test_defaults_are_checked_where_they_differ():
    """The defaults that used to fail 21-22 checks (n_components 64 or 16) are among them."""
    defaults = {type(e).__name__ for e in CHECKED if e.get_params() == type(e)().get_params()}
    assert {"MPAD", "MPADAxiswise", "UMAPReduction"} <= defaults
    assert len(CHECKED) > len(NAMES)


def test_at_most_three_listed_failures_each_with_a_reason():
    for name, failing in EXPECTED_FAILED_CHECKS.items():
        own = {check: why for check, why in failing.items() if why not in ENVIRONMENT_REASONS}
        assert len(own) <= MAX_FAILED_CHECKS == 3, f"{name}: {sorted(own)}"
        assert all(why.strip() for why in failing.values()), name


@parametrize_with_checks(CHECKED)
def test_sklearn_check_estimator(estimator, check):
    """Every check passes, except the listed ones, which must fail (the list stays true);
    checks whose outcome depends on BLAS's row blocking (ORDER_DEPENDENT) may do either."""
    name = _check_name(check)
    reason = EXPECTED_FAILED_CHECKS.get(estimator.name, {}).get(name)
    if reason is None:
        check(estimator)
        return
    try:
        check(estimator)
    except Exception:  # noqa: BLE001 (a listed check fails, by assertion or otherwise)
        pytest.xfail(reason)
    if name not in ORDER_DEPENDENT and (estimator.name, name) not in UNSTABLE:
        pytest.fail(f"{estimator.name} now passes {name}: remove it from "
                    "vecbench.transforms.estimator_checks.EXPECTED_FAILED_CHECKS")


@pytest.mark.parametrize("name", [n for n in NAMES if "bound" in SPECS.get(n, {})])
def test_quantizer_round_trip_is_within_the_format_bound(name, data, fitted):
    train, _ = data
    t = fitted(name)
    decoded = t.inverse_transform(t.transform(train))
    assert decoded.dtype == np.float32 and decoded.shape == train.shape
    bound = SPECS[name]["bound"](train, t)
    if bound is None:
        assert np.array_equal(decoded > 0, train > 0)
    else:
        error = np.abs(decoded - train)
        assert (error <= bound).all(), f"max excess {np.max(error - bound)}"
        assert error.max() > 0, "a lossy format reconstructed the data exactly?"


@pytest.mark.parametrize("name", NAMES)
def test_usable_in_a_sklearn_pipeline(name, data, fitted):
    train, queries = data
    pipe = Pipeline([("step", transforms.get(name)(**SPECS[name]["params"]))]).fit(train)
    np.testing.assert_array_equal(pipe.transform(queries), fitted(name).transform(queries))


@pytest.mark.parametrize("name", NAMES)
def test_bad_parameters_raise_config_error_without_data(name, data):
    """check_params (what `vecbench validate` calls) rejects a bad value without data; the
    constructor and set_params store it unchecked (scikit-learn's rule) and fit rejects it."""
    cls = transforms.get(name)
    cls.check_params(SPECS[name]["params"])
    if "bad" not in SPECS[name]:
        pytest.skip(f"{name} has no parameters")
    key, value = SPECS[name]["bad"]
    bad = {**SPECS[name]["params"], key: value}
    with pytest.raises(ConfigError) as err:
        cls.check_params(bad)
    assert err.value.path.startswith(key) and "expected" in err.value.message
    assert isinstance(err.value, ValueError)
    stored = cls(**bad)
    assert stored.get_params()[key] == value
    with pytest.raises(ConfigError) as at_fit:
        stored.fit(data[0])
    assert str(at_fit.value) == str(err.value)
    with pytest.raises(ConfigError):
        cls(**SPECS[name]["params"]).set_params(**{key: value}).fit(data[0])


@pytest.mark.parametrize("name", NAMES)
def test_unknown_parameter_names_are_refused(name):
    """ConfigError (a ValueError, as scikit-learn's set_params raises) with the accepted names."""
    cls = transforms.get(name)
    for attempt in (lambda: cls(**{**SPECS[name]["params"], "no_such_parameter": 1}),
                    lambda: cls.check_params({"no_such_parameter": 1}),
                    lambda: cls(**SPECS[name]["params"]).set_params(no_such_parameter=1)):
        with pytest.raises(ConfigError, match="unknown parameter") as err:
            attempt()
        assert err.value.path == "no_such_parameter" and isinstance(err.value, ValueError)


@pytest.mark.parametrize("name", NAMES)
def test_feature_names_and_pandas_output(name, data):
    """get_feature_names_out and set_output(transform="pandas") on every transform: a
    DataFrame's column names go in; the output's columns are the declared names, in the code
    dtype for quantizers (see vecbench.transforms.quantize for what the names mean)."""
    train, queries = data
    columns = [f"f{i}" for i in range(D)]
    t = transforms.get(name)(**SPECS[name]["params"]).set_output(transform="pandas")
    t.fit(pd.DataFrame(train, columns=columns))
    assert list(t.feature_names_in_) == columns
    names = t.get_feature_names_out()
    out = t.transform(pd.DataFrame(queries, columns=columns))
    plain = clone(t).set_output(transform="default").fit(train).transform(queries)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(names)
    assert out.shape == plain.shape and len(set(names)) == len(names)
    np.testing.assert_array_equal(out.to_numpy(), plain)
    if is_quantizer(t):
        assert set(out.dtypes) == {t.code_dtype}
        elementwise = out.shape[1] in (D, D + 4) and name not in ("int4", "binary")
        if elementwise:  # one code column per input feature keeps the feature's name
            assert list(names[:D]) == columns
        else:
            assert list(names) == [f"{name}{j}" for j in range(out.shape[1])]
    elif name == "truncate":
        assert list(names) == columns[:out.shape[1]]
    else:
        assert list(names) == [f"{name}{j}" for j in range(out.shape[1])]
    with pytest.raises(ValueError, match="input_features"):
        t.get_feature_names_out(columns[:-1])


@pytest.mark.parametrize("name", NAMES)
def test_bad_arrays_raise_data_error_naming_the_transform(name, data):
    train, queries = data
    t = transforms.get(name)(**SPECS[name]["params"])
    with pytest.raises(DataError, match=f"^{name}: .*Expected 2D array"):
        t.fit(train[0])
    t.fit(train)
    with pytest.raises(DataError, match=f"^{name}: X has {D - 1} features, .* expecting {D}"):
        t.transform(queries[:, :-1])
    bad = queries.copy()
    bad[1, 2] = np.nan  # MPAD scans its (smaller) output for it, the others their input
    with pytest.raises(DataError, match="NaN"):
        t.transform(bad)


def test_chain_of_reduction_and_quantizer(data):
    """[pca: {n_components: 0.5}, float8: {format: e4m3}] composes as a Pipeline."""
    train, queries = data
    pipe = Pipeline([("pca", transforms.get("pca")(n_components=0.5)),
                     ("float8", transforms.get("float8")(format="e4m3"))]).fit(train)
    codes = pipe.transform(queries)
    assert codes.shape == (len(queries), D // 2) and codes.dtype == np.uint8
    assert pipe["float8"].bytes_per_vector_ == D // 2
