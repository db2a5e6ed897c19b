"""vecbench's int8 and binary codes against sentence-transformers' quantize_embeddings (the
quantized-retrieval recipe), where sentence-transformers is installed (it needs torch)."""

import numpy as np
import pytest

st_quantization = pytest.importorskip(
    "sentence_transformers.quantization",
    reason="sentence-transformers is not installed (pip install '.[embed]', needs torch)")

from vecbench.core.registry import transforms  # noqa: E402


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_binary_codes_are_sentence_transformers_ubinary():
    x = unit_rows(100, 64, 0)
    ours = transforms.get("binary")().fit(x).transform(x)
    theirs = st_quantization.quantize_embeddings(x, precision="ubinary")
    np.testing.assert_array_equal(ours, theirs)


def test_int8_calibration_matches_sentence_transformers_within_one_level():
    """Both calibrate per dimension on min/max of the calibration set into 256 levels;
    sentence-transformers truncates toward zero where vecbench rounds, so levels differ by at
    most one, and by one only where truncation and rounding part."""
    train, queries = unit_rows(500, 32, 1), unit_rows(50, 32, 2)
    ours = transforms.get("int8")(symmetric=False, granularity="per_dimension").fit(train)
    codes = ours.transform(queries).astype(np.int16) - 128      # uint8 [0, 255] -> [-128, 127]
    theirs = st_quantization.quantize_embeddings(queries, precision="int8",
                                                 calibration_embeddings=train)
    inside = (queries >= train.min(0)) & (queries <= train.max(0))
    assert np.abs(codes - theirs.astype(np.int16))[inside].max() <= 1
