"""Transforms: dimensionality reductions and quantizers. Importing registers the built-ins.

The interface (scikit-learn's transformer convention, a protocol, not a base class):

    class SomeTransform:
        def __init__(self, **params)          # validates parameters, needs no data
        def fit(self, x) -> self              # learned state in attributes ending in "_"
        def transform(self, x) -> codes
        def inverse_transform(self, codes)    # optional for reductions; required for quantizers
        def get_params(self, deep=True) -> dict

Parameters are keyword arguments stored unchanged (scikit-learn's ``clone`` relies on it) and
checked on construction and on ``set_params``: a bad value or an unknown name raises ConfigError
(``vecbench.transforms.reduce.TransformBase`` does this for the built-ins). Transforms that draw
random numbers take ``seed``. Every transform takes float32 (n, d) and composes: a chain such as
``[pca, float8]`` is fit/transform of each in turn on the previous output.

A reduction's output is float32, C-contiguous. Reductions take ``normalize`` (true/false/None:
re-normalize the output rows); None means the runner decides and sets it to true for the cos
metric (a reduction used outside the runner treats None as false).

A quantizer additionally declares ``code_kind`` (e.g. "fp16", "bf16", "e4m3", "int8", "int4",
"binary") and ``code_dtype`` and, after fit, ``bytes_per_vector_`` (code bytes plus per-vector
parameters; ``codes.nbytes == n * bytes_per_vector_``) and ``model_bytes_`` (per-dataset
parameters, reported once). ``inverse_transform`` returns float32 (n, d). Each ``transform``
sets ``last_clipped_fraction_`` (values clipped or saturated / values encoded).
"""

from vecbench.registry import transforms  # noqa: F401  (built-ins are registered below)

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
