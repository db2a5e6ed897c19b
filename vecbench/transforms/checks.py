"""Parameter checks of the built-in transforms that import nothing heavy.

``vecbench validate`` checks every pipeline step without data; constructing the transform
classes for that would import scikit-learn (-> scipy.stats), ml_dtypes and numba: seconds,
for a check that is a few comparisons. Each built-in is therefore registered with a
:class:`Spec` from here (``transforms.register(name, target, spec="...:NAME")``), which takes
the same parameters with the same defaults and raises the same ConfigError as the class.
tests/test_light_validation.py holds each spec to its class on good and bad values, so the
two cannot drift apart.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Callable

from vecbench.errors import ConfigError
from vecbench.params import check_bool, check_choice, check_float, check_int, check_no_extra


@dataclass(frozen=True)
class Spec:
    """A component's parameters (names and defaults) and its check of a full parameter set."""

    component: str
    defaults: dict[str, Any]
    check: Callable[[dict[str, Any]], None] = lambda params: None
    list_params: tuple[str, ...] = ()  # experiment YAML: a list here is one value, not an axis
    extra: dict = field(default_factory=dict)

    def validate(self, params: dict[str, Any]) -> None:
        """Raise ConfigError (path: the parameter) for an unknown name or a bad value."""
        check_no_extra(self.component, params, self.defaults)
        self.check({**self.defaults, **params})


def _components(value: Any, allow_auto: bool = False) -> None:
    if allow_auto and isinstance(value, str) and value == "auto":
        return
    if not isinstance(value, bool) and (
            (isinstance(value, numbers.Integral) and value >= 1)
            or (isinstance(value, numbers.Real) and 0.0 < float(value) <= 1.0)):
        return
    extra = ", or 'auto'" if allow_auto else ""
    raise ConfigError(f"expected an integer >= 1 or a fraction in (0, 1]{extra}, got {value!r}",
                      "n_components")


def _reduction(p: dict, allow_auto: bool = False) -> None:
    _components(p["n_components"], allow_auto)
    if p.get("normalize") is not None:
        check_bool("normalize", p["normalize"])
    if "seed" in p:
        check_int("seed", p["seed"], 0)
    if "fit_size" in p:
        check_int("fit_size", p["fit_size"], 2)


def _random_projection(p: dict) -> None:
    _reduction(p, allow_auto=True)
    check_choice("kind", p["kind"], ("gaussian", "sparse"))
    check_float("eps", p["eps"], 0.0, 1.0, low_open=True)
    if p["eps"] >= 1.0:
        raise ConfigError(f"expected a number in (0, 1), got {p['eps']!r}", "eps")


def _umap(p: dict) -> None:
    _reduction(p)
    check_int("n_neighbors", p["n_neighbors"], 2)
    check_float("min_dist", p["min_dist"], 0.0)
    check_choice("metric", p["metric"], ("euclidean", "cosine", "manhattan", "correlation"))


def _autoencoder(p: dict) -> None:
    _reduction(p)
    if not isinstance(p["hidden"], (list, tuple)):
        raise ConfigError(f"expected a list of layer sizes, got {p['hidden']!r}", "hidden")
    for i, size in enumerate(p["hidden"]):
        check_int(f"hidden[{i}]", size, 1)
    check_choice("activation", p["activation"], ("relu", "tanh", "identity"))
    check_int("epochs", p["epochs"], 1)


def _mpad_components(value: Any) -> None:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1:
        return
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral)) \
            and 0.0 < float(value) <= 1.0:
        return
    raise ConfigError("expected an integer >= 1 or a fraction in (0, 1], "
                      f"got {value!r}", "n_components")


def _mpad_common(p: dict) -> None:
    _mpad_components(p["n_components"])
    check_int("fit_size", p["fit_size"], 2)
    check_int("max_iter", p["max_iter"], 1)
    check_float("tol", p["tol"], 0.0)
    check_choice("init", p["init"], ("pca", "random"))
    check_bool("normalize", p["normalize"])
    check_int("seed", p["seed"], 0)


def _mpad(p: dict) -> None:
    _mpad_common(p)
    check_int("k", p["k"], 1)
    check_int("n_anchors", p["n_anchors"], 1)
    check_int("n_negatives", p["n_negatives"], 1)
    check_int("negative_rank", p["negative_rank"], 0)
    check_float("penalty", p["penalty"], 0.0)
    check_float("temperature", p["temperature"], 0.0, low_open=True)
    check_choice("optimizer", p["optimizer"], ("lbfgs", "adam"))
    check_float("learning_rate", p["learning_rate"], 0.0, low_open=True)


def _mpad_axiswise(p: dict) -> None:
    _mpad_common(p)
    check_float("b", p["b"], 0.0, 100.0, low_open=True)
    check_float("alpha", p["alpha"], 0.0)
    check_int("pairs_per_point", p["pairs_per_point"], 1)
    check_choice("tail", p["tail"], ("lower", "upper"))


def _integer(p: dict) -> None:
    check_bool("symmetric", p["symmetric"])
    check_choice("granularity", p["granularity"], ("global", "per_dimension"))


def _float8(p: dict) -> None:
    check_choice("format", p["format"], ("e4m3", "e5m2"))
    check_choice("scale", p["scale"], ("none", "global", "per_dimension", "per_vector"))


pca = Spec("pca", dict(n_components=0.5, whiten=False, normalize=None, seed=0),
           lambda p: (_reduction(p), check_bool("whiten", p["whiten"])))
random_projection = Spec("random_projection", dict(kind="gaussian", n_components=0.5, eps=0.1,
                                                   normalize=None, seed=0), _random_projection)
truncate = Spec("truncate", dict(n_components=0.5, normalize=None), _reduction)
umap = Spec("umap", dict(n_components=16, n_neighbors=15, min_dist=0.1, metric="euclidean",
                         fit_size=10_000, normalize=None, seed=0), _umap)
kernel_pca = Spec("kernel_pca", dict(n_components=0.5, kernel="cosine", fit_size=2000,
                                     normalize=None, seed=0),
                  lambda p: (_reduction(p),
                             check_choice("kernel", p["kernel"], ("cosine", "rbf", "poly"))))
autoencoder = Spec("autoencoder", dict(n_components=0.5, hidden=(512, 256), activation="tanh",
                                       epochs=20, fit_size=10_000, normalize=None, seed=0),
                   _autoencoder, list_params=("hidden",))
float16 = Spec("float16", {})
bfloat16 = Spec("bfloat16", {})
float8 = Spec("float8", dict(format="e4m3", scale="none"), _float8)
int8 = Spec("int8", dict(symmetric=False, granularity="per_dimension"), _integer)
int4 = Spec("int4", dict(symmetric=False, granularity="per_dimension"), _integer)
binary = Spec("binary", {})
mpad = Spec("MPAD", dict(n_components=64, k=10, fit_size=10_000, n_anchors=5000, n_negatives=20,
                         negative_rank=100, penalty=1.0, temperature=0.03, optimizer="lbfgs",
                         max_iter=100, tol=0.05, learning_rate=1e-3, init="pca",
                         normalize=True, seed=0), _mpad)
mpad_axiswise = Spec("MPADAxiswise", dict(n_components=64, fit_size=10_000, b=1.0, alpha=0.1,
                                          pairs_per_point=20, tail="lower", max_iter=50,
                                          tol=1e-7, init="random", normalize=True, seed=0),
                     _mpad_axiswise)
