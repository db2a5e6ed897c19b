"""Quantizers: the float8 codec against ml_dtypes bit for bit, saturation, clipping, sizes."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vecbench.core.errors import ConfigError
from vecbench.transforms import float8
from vecbench.transforms.quantize import BFloat16, Binary, Float8, Float16, Int4, Int8

FORMATS = ["e4m3", "e5m2"]
MAX_CODE = {"e4m3": 0x7E, "e5m2": 0x7B}


def reference(x: np.ndarray, fmt: str) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(x, np.float32).astype(float8.FORMATS[fmt].dtype)


def assert_matches_ml_dtypes(x: np.ndarray, fmt: str, codes: np.ndarray) -> None:
    """Equal to ml_dtypes where it is finite; +-max where ml_dtypes overflows a finite input."""
    x = np.asarray(x, np.float32).reshape(codes.shape)
    ref = reference(x, fmt)
    ref_finite = np.isfinite(ref.astype(np.float32))
    same = ref_finite | np.isnan(x)
    np.testing.assert_array_equal(codes[same], ref.view(np.uint8)[same])
    overflow = ~ref_finite & ~np.isnan(x)
    sign = np.where(np.signbit(x[overflow]), 0x80, 0)
    np.testing.assert_array_equal(codes[overflow], MAX_CODE[fmt] | sign)


@pytest.mark.parametrize("fmt", FORMATS)
def test_codec_is_bit_exact_over_every_high_half_of_float32(fmt):
    """All 65536 sign/exponent/high-mantissa patterns, with low halves that set or clear the
    round bit's neighbours and the sticky bits: every rounding case of every binade."""
    high = np.arange(1 << 16, dtype=np.uint32) << 16
    low = np.array([0, 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF], dtype=np.uint32)
    x = (high[:, None] | low[None, :]).view(np.float32)
    codes, _ = float8.encode(x, fmt)
    assert_matches_ml_dtypes(x, fmt, codes)


@pytest.mark.parametrize("fmt", FORMATS)
def test_codec_special_values(fmt):
    f = float8.FORMATS[fmt]
    step = float(ml_dtypes.finfo(f.dtype).smallest_subnormal)
    tiny = float(ml_dtypes.finfo(f.dtype).tiny)
    ties = (np.arange(2 * tiny / step) + 0.5) * step  # subnormal midpoints: round to even
    specials = np.array([0.0, -0.0, step / 2, -step / 2, step * 0.5000001, tiny, -tiny,
                         f.max, -f.max, f.max * 1.03, f.max * 1.1, 1e30, -1e30, np.inf, -np.inf,
                         1e-45, -1e-45], np.float32)
    x = np.concatenate([ties, -ties, specials]).astype(np.float32)[None, :]
    codes, saturated = float8.encode(x, fmt)
    assert_matches_ml_dtypes(x, fmt, codes)
    decoded = float8.decode(codes, fmt)
    assert np.isfinite(decoded).all(), "overflow must saturate, never give inf or NaN"
    assert codes[0, len(ties) * 2 + 1] == 0x80  # negative zero keeps its sign
    assert saturated == np.count_nonzero(np.abs(x) > f.max * 1.05)
    assert float8.decode(float8.encode(np.float32([[np.inf]]), fmt)[0], fmt)[0, 0] == f.max


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=60, deadline=None)
@given(bits=arrays(np.uint32, st.integers(1, 2000), elements=st.integers(0, 2**32 - 1)))
def test_codec_matches_ml_dtypes_on_random_float32_bit_patterns(fmt, bits):
    x = bits.view(np.float32)[None, :]
    codes, _ = float8.encode(x, fmt)
    assert_matches_ml_dtypes(x, fmt, codes)


@pytest.mark.parametrize("fmt", FORMATS)
def test_scaled_encoding_equals_casting_the_scaled_float32(fmt):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 40)).astype(np.float32)
    cols = rng.uniform(0.01, 3000, 40).astype(np.float32)
    rows = rng.uniform(0.01, 3000, 300).astype(np.float32)
    codes, _ = float8.encode(x, fmt, col_scale=cols)
    assert_matches_ml_dtypes(x * cols, fmt, codes)
    codes, _ = float8.encode(x, fmt, row_scale=rows)
    assert_matches_ml_dtypes(x * rows[:, None], fmt, codes)


@pytest.mark.parametrize("fmt", FORMATS)
def test_decode_table_is_ml_dtypes_decoding(fmt):
    codes = np.arange(256, dtype=np.uint8)[None, :]
    expected = codes.view(float8.FORMATS[fmt].dtype).astype(np.float32)
    np.testing.assert_array_equal(float8.decode(codes, fmt), expected)


def unit_vectors(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("scale,extra,model", [("none", 0, 0), ("global", 0, 4),
                                               ("per_dimension", 0, 4 * 384),
                                               ("per_vector", 4, 0)])
def test_float8_sizes_and_round_trip(scale, extra, model):
    x = unit_vectors(500, 384)
    q = Float8(format="e4m3", scale=scale).fit(x)
    codes = q.transform(x)
    assert codes.shape == (500, 384 + extra) and q.bytes_per_vector_ == 384 + extra
    assert q.model_bytes_ == model
    decoded = q.inverse_transform(codes)
    assert decoded.dtype == np.float32 and np.isfinite(decoded).all()
    # max|x| maps to 448; a value is within 2^-4 relative or half a subnormal step (2^-10)
    scaled_by = {"none": 1.0, "global": q.encode_scale_, "per_dimension": q.encode_scale_,
                 "per_vector": 448 / np.abs(x).max(1, keepdims=True)}[scale]
    bound = np.maximum(np.abs(x) * 2.0 ** -4, 2.0 ** -10 / scaled_by) * (1 + 1e-6)
    assert (np.abs(decoded - x) <= bound).all()


def test_float8_scaling_beats_the_plain_cast_on_unit_norm_embeddings():
    """A quarter of a 384-d unit vector's components lie below E4M3's smallest normal (2^-6),
    where the plain cast keeps few bits; scaling to the format's max restores them."""
    x = unit_vectors(500, 384)
    small = np.abs(x) < 2.0 ** -6
    assert small.mean() > 0.2
    errors = {}
    for scale in ("none", "global", "per_dimension", "per_vector"):
        q = Float8(format="e4m3", scale=scale).fit(x)
        relative = np.abs(q.inverse_transform(q.transform(x)) - x) / np.abs(x)
        errors[scale] = relative[small].mean()
    for scale in ("global", "per_dimension", "per_vector"):
        assert errors[scale] < errors["none"] / 3


def test_float8_saturates_queries_beyond_calibration_and_counts_them():
    x = unit_vectors(200, 16)
    q = Float8(format="e4m3", scale="global").fit(x)
    assert q.encode(x)[1]["clipped_fraction"] == 0.0
    queries = x[:10] * 4
    codes, report = q.encode(queries)
    decoded = q.inverse_transform(codes)
    assert np.isfinite(decoded).all()
    beyond = np.abs(queries) > np.abs(x).max() * (1 + 2.0 ** -4)
    assert report["clipped_fraction"] == pytest.approx(beyond.mean(), abs=0.02)
    assert report["clipped_fraction"] > 0 and report["clipped_values"] > 0


def test_float8_format_error_lists_the_formats():
    with pytest.raises(ConfigError) as err:
        Float8.check_params({"format": "e3m3"})
    assert "e4m3" in str(err.value) and "e5m2" in str(err.value) and "format" in str(err.value)


def test_float_casts_saturate_instead_of_overflowing():
    x = np.float32([[1.0, -2.0, 1e6, -1e6]])
    q = Float16().fit(x)
    codes, report = q.encode(x)
    decoded = q.inverse_transform(codes)
    np.testing.assert_array_equal(decoded, [[1.0, -2.0, 65504.0, -65504.0]])
    assert report == {"clipped_values": 2, "clipped_fraction": 0.5}
    y = unit_vectors(50, 32)
    b = BFloat16().fit(y)
    np.testing.assert_array_equal(b.transform(y), y.astype(ml_dtypes.bfloat16))
    assert b.code_kind == "bf16" and q.code_kind == "fp16"


@pytest.mark.parametrize("cls,bits", [(Int8, 8), (Int4, 4)])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("granularity", ["global", "per_dimension"])
def test_integer_quantizers_clip_instead_of_wrapping(cls, bits, symmetric, granularity):
    x = unit_vectors(300, 9)
    q = cls(symmetric=symmetric, granularity=granularity).fit(x)
    queries = np.concatenate([x[:5], 10 * x[5:10]])  # half far beyond the calibration range
    codes, report = q.encode(queries)
    decoded = q.inverse_transform(codes)
    low, high = (x.min(), x.max()) if granularity == "global" else (x.min(0), x.max(0))
    if symmetric:
        high = np.abs(x).max() if granularity == "global" else np.abs(x).max(0)
        low = -high
    tol = 1e-6
    assert (decoded >= low - tol).all() and (decoded <= high + tol).all()  # clipped, no wrap
    expected = ((queries < low - q.step_ / 2) | (queries > high + q.step_ / 2)).mean()
    assert report["clipped_fraction"] == pytest.approx(expected, abs=1.5 / queries.size)
    assert report["clipped_fraction"] > 0.2
    levels = 2 ** bits - (1 if not symmetric else 2)
    assert q.step_.max() <= (high - low).max() / levels * (1 + 1e-5)
    assert q.encode(x)[1]["clipped_fraction"] == 0.0


@pytest.mark.parametrize("cls", [Int8, Int4])
@pytest.mark.parametrize("symmetric", [True, False])
def test_degenerate_calibration_gives_no_nan(cls, symmetric):
    one = unit_vectors(1, 10)
    one[0, 3] = 0.0
    with np.errstate(all="raise"):
        q = cls(symmetric=symmetric, granularity="per_dimension").fit(one)
        decoded = q.inverse_transform(q.transform(unit_vectors(20, 10, seed=3)))
        back = q.inverse_transform(q.transform(one))
    assert np.isfinite(q.step_).all() and (q.step_ > 0).all()
    assert np.isfinite(decoded).all()
    np.testing.assert_allclose(back, one, atol=1e-6)  # the calibration vector itself survives
    zeros = np.zeros((4, 6), np.float32)
    z = cls(symmetric=symmetric).fit(zeros)
    np.testing.assert_array_equal(z.inverse_transform(z.transform(zeros)), zeros)


def test_int8_asymmetric_per_dimension_is_min_max_calibration_into_uint8():
    x = unit_vectors(100, 12)
    q = Int8(symmetric=False, granularity="per_dimension").fit(x)
    codes = q.transform(x)
    assert codes.dtype == np.uint8 and q.model_bytes_ == 2 * 4 * 12
    np.testing.assert_array_equal(codes.min(0), 0)
    np.testing.assert_array_equal(codes.max(0), 255)
    np.testing.assert_array_equal(codes[x.argmin(0), np.arange(12)], 0)
    s = Int8(symmetric=True, granularity="global").fit(x)
    assert s.transform(x).dtype == np.int8 and s.model_bytes_ == 4
    assert np.abs(s.transform(x).astype(int)).max() == 127


def test_int4_packs_two_levels_per_byte_low_nibble_first():
    x = np.float32([[0.0, 1.0, 0.2], [1.0, 0.0, 0.0]])
    q = Int4(symmetric=False, granularity="global").fit(x)
    codes = q.transform(x)
    assert q.bytes_per_vector_ == 2 and codes.shape == (2, 2)
    # levels: 0 -> 0, 1 -> 15, 0.2 -> 3; the pad nibble is 0
    np.testing.assert_array_equal(codes, [[0 | 15 << 4, 3], [15, 0]])
    x = unit_vectors(40, 7)
    q = Int4(symmetric=True, granularity="per_dimension").fit(x)
    assert q.transform(x).shape == (40, 4)
    assert (np.abs(q.inverse_transform(q.transform(x)) - x) <= q.step_ / 2 + 1e-6).all()


def test_binary_is_packed_sign_bits_and_decodes_to_plus_minus_one():
    x = unit_vectors(30, 384)
    x[0, :3] = [0.0, 0.5, -0.5]
    q = Binary().fit(x)
    codes = q.transform(x)
    assert codes.shape == (30, 48) and q.bytes_per_vector_ == 48 and q.code_kind == "binary"
    assert codes[0, 0] >> 5 == 0b010  # first dimension in the high bit; 0 is not > 0
    decoded = q.inverse_transform(codes)
    np.testing.assert_array_equal(decoded, np.where(x > 0, 1.0, -1.0))
    # squared L2 between +-1 vectors is 4 x the Hamming distance of the codes
    hamming = np.unpackbits(codes[0] ^ codes[1]).sum()
    assert ((decoded[0] - decoded[1]) ** 2).sum() == 4 * hamming


def test_codes_of_the_wrong_shape_are_rejected():
    from vecbench.core.errors import DataError
    q = Int4().fit(unit_vectors(10, 9))
    with pytest.raises(DataError, match="expected codes of shape"):
        q.inverse_transform(np.zeros((3, 9), np.uint8))
    with pytest.raises(DataError, match="X has 8 features, .* expecting 9"):
        q.transform(unit_vectors(3, 8))
