"""Transforms: dimensionality reductions and quantizers. Importing registers the built-ins.

The interface is scikit-learn's transformer (``vecbench.transforms.base.TransformBase`` gives
the built-ins its conventions; a protocol, not a required base class):

    class SomeTransform:
        def __init__(self, **params)          # stores parameters unchanged, checks nothing
        def fit(self, x) -> self              # checks parameters first; learned state in "_" attrs
        def transform(self, x) -> codes
        def inverse_transform(self, codes)    # optional for reductions; required for quantizers
        def get_params(self, deep=True) -> dict
        def get_feature_names_out(self, input_features=None), set_output(transform="pandas")
        @classmethod check_params(cls, params: dict) -> None   # without data: ConfigError

A bad parameter value raises ConfigError (a ValueError) naming the parameter: from
``check_params`` (what ``vecbench validate`` calls, no data needed) and again from ``fit``; an
unknown parameter name raises ConfigError with a did-you-mean already at construction. Bad data
raises DataError (a ValueError). Every registered transform passes scikit-learn's
``check_estimator`` except the checks listed, with reasons, in
``vecbench.transforms.estimator_checks.EXPECTED_FAILED_CHECKS``. Transforms that draw random
numbers take ``seed``. Every transform takes float32 (n, d) and composes: a chain such as
``[pca, float8]`` is fit/transform of each in turn on the previous output.

A reduction's output is float32, C-contiguous. Reductions take ``normalize`` (true/false/None:
re-normalize the output rows); None means the runner decides and sets it to true for the cos
metric (a reduction used outside the runner treats None as false).

A quantizer additionally declares ``code_kind`` (e.g. "fp16", "bf16", "e4m3", "int8", "int4",
"binary") and ``code_dtype`` and, after fit, ``bytes_per_vector_`` (code bytes plus per-vector
parameters; ``codes.nbytes == n * bytes_per_vector_``) and ``model_bytes_`` (per-dataset
parameters, reported once). ``inverse_transform`` returns float32 (n, d). ``encode(x)`` returns
``(codes, {"clipped_values": int, "clipped_fraction": float})``: what encoding clipped or
saturated, as a value. What feature names and pandas output mean for codes: see
``vecbench.transforms.quantize``.
"""

from vecbench.core.registry import transforms  # noqa: F401  (built-ins are registered below)

transforms.register("pca", "vecbench.transforms.reduce:PCAReduction",
                    spec="vecbench.transforms.checks:pca")
transforms.register("random_projection", "vecbench.transforms.reduce:RandomProjection",
                    spec="vecbench.transforms.checks:random_projection")
transforms.register("truncate", "vecbench.transforms.reduce:Truncate",
                    spec="vecbench.transforms.checks:truncate")
transforms.register("umap", "vecbench.transforms.reduce:UMAPReduction",
                    spec="vecbench.transforms.checks:umap")
transforms.register("kernel_pca", "vecbench.transforms.reduce:KernelPCAReduction",
                    spec="vecbench.transforms.checks:kernel_pca")
transforms.register("autoencoder", "vecbench.transforms.reduce:Autoencoder",
                    spec="vecbench.transforms.checks:autoencoder")
transforms.register("float16", "vecbench.transforms.quantize:Float16",
                    spec="vecbench.transforms.checks:float16")
transforms.register("bfloat16", "vecbench.transforms.quantize:BFloat16",
                    spec="vecbench.transforms.checks:bfloat16")
transforms.register("float8", "vecbench.transforms.quantize:Float8",
                    spec="vecbench.transforms.checks:float8")
transforms.register("int8", "vecbench.transforms.quantize:Int8",
                    spec="vecbench.transforms.checks:int8")
transforms.register("int4", "vecbench.transforms.quantize:Int4",
                    spec="vecbench.transforms.checks:int4")
transforms.register("binary", "vecbench.transforms.quantize:Binary",
                    spec="vecbench.transforms.checks:binary")
transforms.register("mpad", "vecbench.transforms.mpad:MPAD",
                    spec="vecbench.transforms.checks:mpad")
transforms.register("mpad_axiswise", "vecbench.transforms.mpad:MPADAxiswise",
                    spec="vecbench.transforms.checks:mpad_axiswise")
