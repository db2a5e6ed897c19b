"""Code kinds an index may be handed natively, read from the array itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def code_kind_of(x: np.ndarray) -> str:
    """The code kind an array holds, judged by its dtype: fp16, bf16, or float32 for the rest."""
    if x.dtype.name == "float16":
        return "fp16"
    if x.dtype.name == "bfloat16":  # ml_dtypes.bfloat16, without importing ml_dtypes here
        return "bf16"
    return "float32"


def binarize(x: np.ndarray) -> np.ndarray:
    """Sign bits packed eight per byte: the codes of vecbench's ``binary`` quantizer."""
    import numpy as np

    return np.packbits(x > 0, axis=1)
