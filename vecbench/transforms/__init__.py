"""Transforms: dimensionality reductions and quantizers. Importing registers the built-ins.

The interface (scikit-learn's transformer convention, a protocol, not a base class):

    class SomeTransform:
        def __init__(self, **params)          # validates parameters, needs no data
        def fit(self, x) -> self              # learned state in attributes ending in "_"
        def transform(self, x) -> codes
        def inverse_transform(self, codes)    # optional for reductions; required for quantizers
        def get_params(self, deep=True) -> dict

A quantizer additionally declares ``code_kind`` (e.g. "fp16", "bf16", "e4m3", "int8", "int4",
"binary") and, after fit, ``bytes_per_vector_`` (code bytes plus per-vector parameters) and
``model_bytes_`` (per-dataset parameters, reported once). A reduction's output is float32.
"""

from vecbench.registry import transforms  # noqa: F401  (built-ins are registered below)
