"""Quantizers: float32 vectors in, compact codes out, and back (``inverse_transform``, float32).

Every quantizer declares ``code_kind`` and ``code_dtype`` and, after ``fit``, the exact
``bytes_per_vector_`` (``codes.nbytes == len(codes) * bytes_per_vector_``, per-vector scales
included) and ``model_bytes_`` (per-dataset parameters such as calibration scales, counted once).

``codes, report = q.encode(x)`` is ``transform`` plus what encoding did, as a value:
``report == {"clipped_values": int, "clipped_fraction": float}``, the values that fell outside
the representable range and were clipped (saturated) rather than wrapped or turned into inf/NaN,
and their fraction of all values encoded. ``transform(x)`` is ``encode(x)[0]``; the runner
calls ``encode`` and records the report.

scikit-learn conventions for codes (``get_feature_names_out``, ``set_output``): a code column that
holds one input feature keeps that feature's name (float16, bfloat16, float8, int8: column j is
the code of input feature j, like a scaler's output); packed columns, which hold several features
or none, are named ``<name>0, <name>1, ...`` by byte (int4: byte j holds features 2j and 2j + 1;
binary: byte j holds features 8j..8j + 7; float8 ``per_vector``: the d feature columns, then
``float8_scale0..3``, the little-endian bytes of the row's float32 decode multiplier). With
``set_output(transform="pandas")`` the DataFrame's columns keep the code dtype (uint8, int8,
float16, bfloat16); ``encode`` and ``inverse_transform`` are not wrapped and return arrays.
Quantizers preserve no input dtype (scikit-learn's ``preserves_dtype`` tag is empty).

Codes by quantizer (what an index that searches codes natively receives):

- ``float16`` / ``bfloat16``: float16 / ml_dtypes.bfloat16 arrays, (n, d).
- ``float8``: uint8 bit patterns of ml_dtypes float8_e4m3fn / float8_e5m2, (n, d); with
  ``scale: per_vector`` each row has 4 more bytes, its float32 decode multiplier
  (little-endian), so the code array is (n, d + 4). Other scales are model parameters.
- ``int8``: int8 in [-127, 127] (``symmetric: true``, scale = max|x| / 127) or uint8 in [0, 255]
  (``symmetric: false``: min/max calibration, the study's per-dimension mode). Codes are
  distance-preserving (up to scale) only with ``granularity: global``.
- ``int4``: the same levels with 4 bits ([-7, 7] stored excess-8, or [0, 15]), two per byte,
  even dimension in the low nibble; odd d is padded: (n, ceil(d / 2)) uint8.
- ``binary``: sign bits (x > 0) packed with ``np.packbits`` (first dimension in the high bit),
  (n, ceil(d / 8)) uint8. ``inverse_transform`` gives +-1 float32: L2 and inner-product search
  over it rank exactly as Hamming distance does, so a float index simulates a binary one.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
from sklearn.utils.validation import check_is_fitted

from vecbench.core.errors import DataError
from vecbench.transforms import checks
from vecbench.transforms.base import TransformBase


class Quantizer(TransformBase):
    """Shared fit bookkeeping, ``encode`` and the code columns' names."""

    code_kind = ""
    code_dtype = np.dtype(np.uint8)
    preserved_dtypes = ()

    def fit(self, x, y=None):
        self._check_params()
        x = self._validate(x, reset=True)
        self._calibrate(x)
        return self

    def _calibrate(self, x: np.ndarray) -> None:
        pass

    def encode(self, x) -> tuple[np.ndarray, dict]:
        """``(codes, {"clipped_values": int, "clipped_fraction": float})`` of ``x``."""
        check_is_fitted(self, "bytes_per_vector_")
        x = self._validate(x, reset=False)
        codes, clipped = self._encode(x)
        fraction = clipped / x.size if x.size else 0.0
        return codes, {"clipped_values": int(clipped), "clipped_fraction": float(fraction)}

    def transform(self, x) -> np.ndarray:
        return self.encode(x)[0]

    def _encode(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """Codes of validated float32 ``x`` and the number of values clipped."""
        raise NotImplementedError

    def _feature_names(self, input_names: np.ndarray) -> list[str]:
        """One code column per input feature keeps its name (packed codes override)."""
        return list(input_names)

    def _codes(self, codes, width: int) -> np.ndarray:
        codes = np.asarray(codes)
        check_is_fitted(self, "n_features_in_")
        if codes.ndim != 2 or codes.shape[1] != width or codes.dtype != self.code_dtype:
            raise DataError(f"{self.name}: expected codes of shape (n, {width}) and dtype "
                            f"{self.code_dtype}, got {codes.shape} {codes.dtype}")
        return codes


class _FloatCast(Quantizer):
    """A plain cast to a narrower float type, saturating at its largest finite value."""

    def _calibrate(self, x: np.ndarray) -> None:
        self.bytes_per_vector_ = self.code_dtype.itemsize * x.shape[1]
        self.model_bytes_ = 0

    def _encode(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        top = float(ml_dtypes.finfo(self.code_dtype).max)
        clipped = 0
        if x.max() > top or x.min() < -top:  # two cheap passes; the clip copy only when needed
            clipped = int(np.count_nonzero(np.abs(x) > top))
            x = np.clip(x, -top, top)
        return x.astype(self.code_dtype), clipped

    def inverse_transform(self, codes) -> np.ndarray:
        return self._codes(codes, self.n_features_in_).astype(np.float32)


class Float16(_FloatCast):
    name, code_kind, code_dtype = "float16", "fp16", np.dtype(np.float16)
    params = checks.float16.params

    def __init__(self):
        pass


class BFloat16(_FloatCast):
    name, code_kind, code_dtype = "bfloat16", "bf16", np.dtype(ml_dtypes.bfloat16)
    params = checks.bfloat16.params

    def __init__(self):
        pass


class Float8(Quantizer):
    """float8 E4M3 or E5M2 through the fast saturating codec of ``vecbench.transforms.float8``.

    ``scale: none`` is the plain cast of the study (unit-norm embeddings then put many values
    among E4M3's subnormals). The scaled modes multiply by ``format max / max|x|`` before the
    cast, ``max|x|`` taken over the fit data (``global``, ``per_dimension``: model parameters,
    so query values beyond the calibration saturate) or per vector at transform time
    (``per_vector``: +4 bytes per vector).
    """

    name = "float8"
    SCALES = ("none", "global", "per_dimension", "per_vector")
    params = checks.float8.params

    def __init__(self, *, format="e4m3", scale="none"):
        self.format = format
        self.scale = scale

    @property
    def code_kind(self) -> str:
        return self.format

    def _calibrate(self, x: np.ndarray) -> None:
        from vecbench.transforms.float8 import FORMATS
        d, top = x.shape[1], FORMATS[self.format].max
        self.encode_scale_ = None
        self.decode_scale_ = None
        if self.scale in ("global", "per_dimension"):
            max_abs = np.abs(x).max(axis=None if self.scale == "global" else 0)
            max_abs = np.where(max_abs > 0, max_abs, top)  # all-zero data: leave it unscaled
            self.encode_scale_ = np.asarray(top / max_abs, np.float32).reshape(-1)
            self.decode_scale_ = np.asarray(max_abs / top, np.float32).reshape(-1)
        extra = 4 if self.scale == "per_vector" else 0
        self.bytes_per_vector_ = d + extra
        self.model_bytes_ = 0 if self.decode_scale_ is None else self.decode_scale_.nbytes

    def _feature_names(self, input_names: np.ndarray) -> list[str]:
        extra = [f"float8_scale{i}" for i in range(4)] if self.scale == "per_vector" else []
        return list(input_names) + extra

    def _encode(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        from vecbench.transforms.float8 import FORMATS, encode, row_max_abs
        n, d = x.shape
        if self.scale == "per_vector":
            top = FORMATS[self.format].max
            max_abs = row_max_abs(x)
            max_abs = np.where(max_abs > 0, max_abs, top).astype(np.float32)
            out = np.empty((n, d + 4), np.uint8)
            _, clipped = encode(x, self.format, row_scale=(top / max_abs).astype(np.float32),
                                out=out[:, :d])
            out[:, d:] = (max_abs / np.float32(top)).astype("<f4").view(np.uint8).reshape(n, 4)
        elif self.encode_scale_ is None:
            out, clipped = encode(x, self.format)
        else:
            cols = np.broadcast_to(self.encode_scale_, (d,))
            out, clipped = encode(x, self.format, col_scale=np.ascontiguousarray(cols))
        return out, clipped

    def inverse_transform(self, codes) -> np.ndarray:
        from vecbench.transforms.float8 import decode
        check_is_fitted(self, "bytes_per_vector_")
        codes, d = self._codes(codes, self.bytes_per_vector_), self.n_features_in_
        values = decode(codes[:, :d], self.format)
        if self.scale == "per_vector":
            values *= np.ascontiguousarray(codes[:, d:]).view("<f4").astype(np.float32)
        elif self.decode_scale_ is not None:
            values *= self.decode_scale_
        return values


class _IntegerQuantizer(Quantizer):
    """Uniform scalar quantization to ``bits`` bits, calibrated on the fit data.

    Symmetric: level = round(x / step), step = max|x| / (2^(bits-1) - 1). Asymmetric: level =
    round((x - min) / step), step = (max - min) / (2^bits - 1). Values beyond the calibration
    range are clipped to the extreme level (never wrapped) and counted. A zero step (one
    calibration vector, a constant dimension) borrows the step of the whole calibration set,
    or 1.0 if that is zero too, so nothing divides by zero.
    """

    bits = 8
    params = checks.int8.params  # int4 declares the same

    def __init__(self, *, symmetric=False, granularity="per_dimension"):
        self.symmetric = symmetric
        self.granularity = granularity

    @property
    def _levels(self) -> tuple[int, int]:
        if self.symmetric:
            top = 2 ** (self.bits - 1) - 1
            return -top, top
        return 0, 2 ** self.bits - 1

    def _calibrate(self, x: np.ndarray) -> None:
        low, high = self._levels
        axis = None if self.granularity == "global" else 0
        if self.symmetric:
            offset = np.zeros(1, np.float64)
            span, overall = np.abs(x).max(axis=axis), np.abs(x).max()
            steps = high
        else:
            offset = x.min(axis=axis).astype(np.float64)
            span, overall = x.max(axis=axis) - offset, float(x.max()) - float(x.min())
            steps = high - low
        step = np.asarray(span, np.float64) / steps
        fallback = overall / steps if overall > 0 else 1.0
        step = np.where(step > 0, step, fallback)
        self.offset_ = np.asarray(offset, np.float32).reshape(-1)
        self.step_ = np.asarray(step, np.float32).reshape(-1)
        self.model_bytes_ = self.step_.nbytes + (0 if self.symmetric else self.offset_.nbytes)

    def _quantize(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """Levels as float32, clipped, and the number of values clipped."""
        low, high = self._levels
        levels = x - self.offset_ if not self.symmetric else x.copy()
        levels /= self.step_
        np.rint(levels, out=levels)
        clipped = int(np.count_nonzero((levels < low) | (levels > high)))
        np.clip(levels, low, high, out=levels)
        return levels, clipped

    def _dequantize(self, levels: np.ndarray) -> np.ndarray:
        values = levels.astype(np.float32) * self.step_
        if not self.symmetric:
            values += self.offset_
        return values


class Int8(_IntegerQuantizer):
    name, code_kind, bits = "int8", "int8", 8

    @property
    def code_dtype(self) -> np.dtype:
        return np.dtype(np.int8 if self.symmetric else np.uint8)

    def _calibrate(self, x: np.ndarray) -> None:
        super()._calibrate(x)
        self.bytes_per_vector_ = x.shape[1]

    def _encode(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        levels, clipped = self._quantize(x)
        return levels.astype(self.code_dtype), clipped

    def inverse_transform(self, codes) -> np.ndarray:
        return self._dequantize(self._codes(codes, self.n_features_in_))


class Int4(_IntegerQuantizer):
    name, code_kind, bits = "int4", "int4", 4
    params = checks.int4.params
    _EXCESS = 8  # symmetric levels -7..7 are stored as 1..15

    def _calibrate(self, x: np.ndarray) -> None:
        super()._calibrate(x)
        self.bytes_per_vector_ = (x.shape[1] + 1) // 2

    def _feature_names(self, input_names: np.ndarray) -> list[str]:
        return [f"{self.name}{j}" for j in range(self.bytes_per_vector_)]  # byte j: 2j, 2j + 1

    def _encode(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        levels, clipped = self._quantize(x)
        if self.symmetric:
            levels += self._EXCESS
        nibbles = np.zeros((len(x), 2 * self.bytes_per_vector_), np.uint8)
        nibbles[:, :x.shape[1]] = levels
        return nibbles[:, 0::2] | (nibbles[:, 1::2] << 4), clipped

    def inverse_transform(self, codes) -> np.ndarray:
        codes = self._codes(codes, self.bytes_per_vector_)
        nibbles = np.empty((len(codes), 2 * codes.shape[1]), np.int16)
        nibbles[:, 0::2] = codes & 0x0F
        nibbles[:, 1::2] = codes >> 4
        levels = nibbles[:, :self.n_features_in_]
        if self.symmetric:
            levels -= self._EXCESS
        return self._dequantize(levels)


class Binary(Quantizer):
    """One bit per dimension: x > 0 (the study's binarization), packed eight per byte."""

    name, code_kind = "binary", "binary"
    params = checks.binary.params

    def __init__(self):
        pass

    def _calibrate(self, x: np.ndarray) -> None:
        self.bytes_per_vector_ = (x.shape[1] + 7) // 8
        self.model_bytes_ = 0

    def _feature_names(self, input_names: np.ndarray) -> list[str]:
        return [f"{self.name}{j}" for j in range(self.bytes_per_vector_)]  # byte j: 8j..8j + 7

    def _encode(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        return np.packbits(x > 0, axis=1), 0

    def inverse_transform(self, codes) -> np.ndarray:
        """+1 where the bit is set, -1 elsewhere (Hamming-equivalent for L2 and IP search)."""
        codes = self._codes(codes, self.bytes_per_vector_)
        bits = np.unpackbits(codes, axis=1, count=self.n_features_in_)
        return bits.astype(np.float32) * 2.0 - 1.0
