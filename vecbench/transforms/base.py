"""The base class of vecbench's transforms: scikit-learn's estimator conventions in one place.

* ``__init__`` stores its keyword arguments unchanged and checks nothing (``clone``,
  ``set_params`` and ``check_estimator`` rely on it). Values are checked by ``_check_params``,
  which ``fit`` calls first, and, without data and without fitting, by the classmethod
  :meth:`TransformBase.check_params` that experiment validation calls. Either raises
  :class:`~vecbench.core.errors.ConfigError` (a ``ValueError``) whose path is the parameter name.
* Input goes through scikit-learn's ``validate_data``: dense, finite, 2-D, float32 C-contiguous;
  ``n_features_in_`` (and ``feature_names_in_`` for a DataFrame) recorded by ``fit`` and checked
  by ``transform``. A bad array raises :class:`~vecbench.core.errors.DataError` (a ``ValueError``) that
  names the transform; sparse input and non-numeric objects raise scikit-learn's ``TypeError``.
* ``get_feature_names_out`` and ``set_output`` work on every transform. A reduction's output
  columns are ``<name>0, <name>1, ...`` (``pca0``, ``pca1``; ``truncate`` keeps its input's names
  instead, since it keeps those features). Quantizers: see ``vecbench.transforms.quantize``.
* Tags say what is true of the output: reductions preserve float32 only (they return float32
  whatever they are given); quantizers preserve no dtype (their codes have their own dtype).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin

from vecbench.core.errors import DataError, VecbenchError
from vecbench.core.params import check_no_extra, validate

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
    _FINITE_KEYWORD = "ensure_all_finite"
except ImportError:  # pragma: no cover - scikit-learn < 1.6
    def _validate_data(estimator, X, **check_params):
        return estimator._validate_data(X, **check_params)
    _FINITE_KEYWORD = "force_all_finite"


class TransformBase(TransformerMixin, BaseEstimator):
    """scikit-learn transformer with vecbench's parameter checks and input validation.

    Subclasses declare ``params`` (from :mod:`vecbench.transforms.checks`, the one source),
    store constructor arguments unchanged and call ``_check_params`` first thing in ``fit``.
    Bad values and unknown names raise ConfigError (also a ValueError, as scikit-learn's
    ``set_params`` raises) naming the parameter, with a did-you-mean.
    """

    params: tuple = ()

    name = "transform"  # the registered name, used in messages and output feature names
    #: dtypes an input keeps through ``transform`` (scikit-learn's ``preserves_dtype`` tag)
    preserved_dtypes: tuple[str, ...] = ("float32",)

    def __new__(cls, *args, **params):
        check_no_extra(cls.name, params, cls._get_param_names())
        return super().__new__(cls)

    @classmethod
    def check_params(cls, params: dict) -> None:
        """Check parameter names and values without data: ConfigError naming the parameter.

        What ``vecbench validate`` calls for each transform step of an experiment; ``fit``
        repeats the same checks (``_check_params``) on the estimator's current parameters.
        """
        validate(cls, params)

    def _check_params(self) -> None:
        validate(self, self.get_params())

    def set_params(self, **params):
        check_no_extra(self.name, params, self._get_param_names())
        return super().set_params(**params)

    def _validate(self, x, *, reset: bool, finite: bool = True,
                  min_samples: int = 1) -> np.ndarray:
        """``x`` as C-contiguous float32 (n, d) through scikit-learn's ``validate_data``.

        ``reset`` (fit) records ``n_features_in_`` and feature names; otherwise they are checked.
        ``finite=False`` skips the NaN/Inf scan for callers that check their output instead.
        """
        try:
            return _validate_data(self, x, reset=reset, dtype=np.float32, order="C",
                                  ensure_min_samples=min_samples, **{_FINITE_KEYWORD: finite})
        except ValueError as exc:
            if isinstance(exc, VecbenchError):
                raise
            raise DataError(f"{self.name}: {exc}") from None

    def _input_names(self, input_features=None) -> np.ndarray:
        """Validated input feature names (``x0, x1, ...`` when fitted without names)."""
        return OneToOneFeatureMixin.get_feature_names_out(self, input_features)

    def _feature_names(self, input_names: np.ndarray) -> list[str]:
        """Output column names; reductions: ``<name>0 ... <name>{n_components_ - 1}``."""
        return [f"{self.name}{i}" for i in range(self.n_components_)]

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the output columns (what ``set_output(transform="pandas")`` labels)."""
        return np.asarray(self._feature_names(self._input_names(input_features)), dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = list(self.preserved_dtypes)
        return tags

    def _more_tags(self) -> dict:  # the same tag for scikit-learn < 1.6
        return {"preserves_dtype": [np.dtype(d).type for d in self.preserved_dtypes]}


def model_bytes(transform) -> int:
    """Bytes a fitted transform keeps to encode a query (per dataset, not per vector).

    A quantizer declares them (``model_bytes_``: its calibration scales and offsets); for any
    other transform they are the bytes of every array the fitted object holds, found by walking
    its attributes, because that counts whatever the fit kept without a list per class: a
    PCA's components and mean, a random projection's matrix, a UMAP's or kernel PCA's training
    set, an autoencoder's weights. (Not the pickle's size: it moves by a few bytes between
    processes, and a table must not.)
    """
    declared = getattr(transform, "model_bytes_", None)
    if declared is not None:
        return int(declared)
    return _array_bytes(transform, set())


def _array_bytes(value, seen: set) -> int:
    import numpy as np

    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, dict):
        return sum(_array_bytes(item, seen) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_array_bytes(item, seen) for item in value)
    attributes = getattr(value, "__dict__", None)
    if attributes is None or isinstance(value, type):
        return 0
    return _array_bytes(attributes, seen)
