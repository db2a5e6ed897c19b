"""A fast, saturating float32 -> float8 codec, bit-exact with ml_dtypes where ml_dtypes is finite.

Why not ``x.astype(ml_dtypes.float8_e4m3fn)``: it is a scalar loop over every value (3-5x slower
than this codec on one thread) and it turns overflow into NaN (e4m3fn has no infinity) or inf
(e5m2). Here encoding is branch-free integer and float arithmetic that compiles to SIMD
instructions (numba), one pass over the input; overflow becomes the format's largest finite value.

How rounding is exact (round-to-nearest-even, as ml_dtypes does), for ``a`` = |x|'s float32 bits,
``M`` mantissa bits and exponent bias ``B`` of the format:

* float8 normals (|x| >= 2^(1-B)): the code is ``(a + 2^(22-M) - 1 + odd) >> (23-M)`` minus the
  exponent rebias, ``odd`` the lowest kept bit: the usual integer round-half-to-even;
* float8 subnormals: ``|x| + 2^(24-B-M)`` in float32, whose ulp is exactly the float8 subnormal
  step, so the float32 adder rounds to even; the code is that sum's bits minus the constant's;
* codes above the largest finite one saturate to it; NaN gives ml_dtypes's NaN code; the sign
  bit is copied. Both paths are computed and one is selected, so the loop has no branches;
  rows with a NaN or a saturating value get a second, scalar pass.

The constants come from ``ml_dtypes.finfo``; tests check every rounding case of every binade
against ml_dtypes's own cast.

Codes are ``uint8`` arrays holding the float8 bit pattern (view them with
``codes.view(FORMATS["e4m3"].dtype)`` to get ml_dtypes floats): uint8 is what numpy, faiss and
file formats all handle, and the bit pattern is the same. NaN stays NaN; +-inf saturates.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import ml_dtypes
import numpy as np
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

_ROWS_PER_TASK = 256  # rows per parallel task of the scaled kernel: one scratch row per task
#: How far ahead of the row being encoded its input is prefetched, in values (2 KiB of float32).
#: The loop's arithmetic runs at ~0.17 ns a value in cache but was memory-bound at ~0.6 ns a
#: value (0.65x a plain copy) on arrays larger than cache, the hardware prefetcher not keeping
#: up; explicit prefetches brought it to ~0.93x (1M x 384, one thread; 256-3072 values ahead
#: measured 0.80-0.93x, the shortest distances best; benchmarks/RESULTS.md).
PREFETCH_AHEAD = 512
_VALUES_PER_LINE = 16  # float32 values in a 64-byte cache line


@dataclass(frozen=True)
class Float8Format:
    name: str
    dtype: np.dtype

    @property
    def max(self) -> float:
        return float(ml_dtypes.finfo(self.dtype).max)

    @property
    def mantissa_bits(self) -> int:
        return int(ml_dtypes.finfo(self.dtype).nmant)


#: The two formats of the studies: E4M3 without infinities (max 448) and E5M2 (max 57344).
FORMATS = {
    "e4m3": Float8Format("e4m3", np.dtype(ml_dtypes.float8_e4m3fn)),
    "e5m2": Float8Format("e5m2", np.dtype(ml_dtypes.float8_e5m2)),
}


@lru_cache(maxsize=None)
def constants(fmt: str) -> np.ndarray:
    """uint32 constants of the kernels, from ml_dtypes: round shift, rounding bias (with the
    exponent rebias folded in, modulo 2^32), smallest normal's float32 bits, subnormal magic's
    bits, largest finite code, NaN code, largest finite value's float32 bits."""
    f = FORMATS[fmt]
    info = ml_dtypes.finfo(f.dtype)
    mant, bias = int(info.nmant), 1 - int(info.minexp)
    shift = 23 - mant
    rebias = ((127 - bias) << mant) << shift
    magic = (127 + 24 - bias - mant) << 23  # 2^(24-B-M): its float32 ulp is 2^(1-B-M)
    max_code = int(np.array(f.max, np.float32).astype(f.dtype).view(np.uint8))
    with np.errstate(invalid="ignore"):
        nan_code = int(np.array(np.nan, np.float32).astype(f.dtype).view(np.uint8))
    table = np.array([shift, ((1 << (shift - 1)) - 1 - rebias) % (1 << 32), (128 - bias) << 23,
                      magic, max_code, nan_code,
                      int(np.array(f.max, np.float32).view(np.uint32))], dtype=np.uint32)
    assert shift in (20, 21), "the kernels specialise the shifts of e4m3 (20) and e5m2 (21)"
    table.flags.writeable = False
    return table


@lru_cache(maxsize=None)
def decode_table(fmt: str) -> np.ndarray:
    """float32 value of each of the 256 codes (ml_dtypes's own decoding)."""
    table = np.arange(256, dtype=np.uint8).view(FORMATS[fmt].dtype).astype(np.float32)
    table.flags.writeable = False
    return table


@intrinsic
def _bits(typingctx, x):
    """float32 -> its uint32 bit pattern (an LLVM bitcast: no instruction)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.uint32))
    return types.uint32(types.float32), codegen


@intrinsic
def _float(typingctx, x):
    """uint32 bit pattern -> float32."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))
    return types.float32(types.uint32), codegen


@intrinsic
def _prefetch(typingctx, flat, index):
    """Ask the CPU to bring ``flat[index]``'s cache line in (LLVM's prefetch: read, keep in all
    cache levels). numba exposes no prefetch, hence the intrinsic."""
    def codegen(context, builder, signature, args):
        from llvmlite import binding, ir

        array_type = signature.args[0]
        array = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, array, [args[1]],
                                           wraparound=False)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        # the intrinsic's mangled name: typed pointers (LLVM 14, numba 0.60) or opaque ones
        name = "llvm.prefetch.p0" if binding.llvm_version_info[0] >= 15 else "llvm.prefetch.p0i8"
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), name)
        builder.call(function, [builder.bitcast(pointer, i8p), ir.Constant(i32, 0),
                                ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()
    return types.void(flat, index), codegen


@njit(inline="always")
def _prefetch_ahead(flat, start, count):
    """Prefetch ``count`` values of ``flat`` from ``start + PREFETCH_AHEAD`` (within bounds)."""
    ahead = start + PREFETCH_AHEAD
    for p in range(0, count, _VALUES_PER_LINE):
        if ahead + p < flat.shape[0]:
            _prefetch(flat, ahead + p)


@njit(inline="always")
def _unclamped(a, c):
    """Code of the magnitude bits ``a`` before saturation (module docstring). Every step is cast
    back to uint32 and the shifts are literals, so vector lanes stay 32-bit wide."""
    if c[0] == 20:  # loop-invariant: the compiler unswitches it into two loops
        odd = np.uint32((a >> np.uint32(20)) & np.uint32(1))
        normal = np.uint32(np.uint32(np.uint32(a + c[1]) + odd) >> np.uint32(20))
    else:
        odd = np.uint32((a >> np.uint32(21)) & np.uint32(1))
        normal = np.uint32(np.uint32(np.uint32(a + c[1]) + odd) >> np.uint32(21))
    subnormal = np.uint32(_bits(_float(a) + _float(c[3])) - c[3])
    return normal if a >= c[2] else subnormal


@njit(inline="always")
def _encode_row(values, c, out):
    """Encode one row; returns the number of values that saturated."""
    top = np.uint32(0)
    for j in range(len(values)):
        bits = _bits(values[j])
        a = np.uint32(bits & np.uint32(0x7FFFFFFF))
        top = max(top, a)
        code = min(_unclamped(a, c), c[4])
        out[j] = np.uint8(code | ((bits >> np.uint32(24)) & np.uint32(0x80)))
    count = 0
    # rare: a NaN or a value above the format's largest (NaN's bits are above every finite
    # value's), so NaN codes are set and saturation counted here, not in the vector loop above
    # (1.2x faster, measured at one thread)
    if top > c[6]:
        for j in range(len(values)):
            a = np.uint32(_bits(values[j]) & np.uint32(0x7FFFFFFF))
            if a > np.uint32(0x7F800000):
                out[j] = np.uint8(c[5] | (out[j] & np.uint8(0x80)))
            elif _unclamped(a, c) > c[4]:
                count += 1
    return count


@njit(parallel=True, cache=True)
def _encode_plain(x, flat, c, out, saturated):
    d = x.shape[1]
    for i in prange(x.shape[0]):
        _prefetch_ahead(flat, i * d, d)
        saturated[i] = _encode_row(x[i], c, out[i])


@njit(parallel=True, cache=True)
def _encode_scaled(x, flat, row_scale, col_scale, c, out, saturated):
    # One of row_scale / col_scale is all ones: x * s * 1 == x * s exactly in float32.
    n, d = x.shape
    for task in prange((n + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK):
        scratch = np.empty(d, dtype=np.float32)  # the scaled row
        for i in range(task * _ROWS_PER_TASK, min(n, (task + 1) * _ROWS_PER_TASK)):
            _prefetch_ahead(flat, i * d, d)
            for j in range(d):
                scratch[j] = x[i, j] * row_scale[i] * col_scale[j]
            saturated[i] = _encode_row(scratch, c, out[i])


@njit(parallel=True, cache=True)
def _row_max_abs(x):
    n, d = x.shape
    out = np.zeros(n, dtype=np.float32)
    for i in prange(n):
        m = np.float32(0.0)
        for j in range(d):
            m = max(m, abs(x[i, j]))
        out[i] = m
    return out


def encode(x: np.ndarray, fmt: str, *, row_scale: np.ndarray | None = None,
           col_scale: np.ndarray | None = None, out: np.ndarray | None = None
           ) -> tuple[np.ndarray, int]:
    """Encode float32 ``x`` (n, d), optionally multiplied first by ``row_scale`` (n,) or
    ``col_scale`` (d,), into uint8 float8 codes. Returns (codes, number of saturated values).

    ``out`` may be a (n, d) uint8 view (e.g. the first d columns of a wider code array).
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, d = x.shape
    if out is None:
        out = np.empty((n, d), dtype=np.uint8)
    saturated = np.empty(n, dtype=np.int64)
    c = constants(fmt)
    flat = x.reshape(-1)  # a view (x is C-contiguous): the prefetches' address space
    if row_scale is None and col_scale is None:
        _encode_plain(x, flat, c, out, saturated)
    else:
        rows = np.ones(n, np.float32) if row_scale is None else np.asarray(row_scale, np.float32)
        cols = np.ones(d, np.float32) if col_scale is None else np.asarray(col_scale, np.float32)
        _encode_scaled(x, flat, rows, cols, c, out, saturated)
    return out, int(saturated.sum())


def decode(codes: np.ndarray, fmt: str) -> np.ndarray:
    """float32 values of uint8 float8 codes."""
    return decode_table(fmt)[np.asarray(codes, dtype=np.uint8)]


def row_max_abs(x: np.ndarray) -> np.ndarray:
    """max |x| of each row, in one pass without a temporary array."""
    return _row_max_abs(np.ascontiguousarray(x, dtype=np.float32))
