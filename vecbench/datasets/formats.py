"""Readers and writers of the vector file formats other tools use: .vecs, big-ann .bin, HDF5, parquet.

Binary formats (``.fvecs/.ivecs/.bvecs``, ``.fbin/.u8bin/.i8bin/.ibin``) are read as memory maps;
headers are validated against the file size so a truncated or foreign file is a clear
``DataError``, never garbage vectors. Writers write to a temporary file and rename it, so an
interrupted export never leaves a file that reads as valid. HDF5 (ann-benchmarks layout) and
parquet (VectorDBBench custom-dataset layout) live in :mod:`vecbench.datasets.formats_tables`;
writing a whole dataset in any of them: :mod:`vecbench.datasets.export`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vecbench.core.atomic import atomic_file, atomic_path  # the one writer (atomic_path re-exported)
from vecbench.core.errors import DataError
from vecbench.datasets.paths import regular_file

#: Element type of each .vecs flavour (little-endian, as written by the INRIA TEXMEX tools).
VECS_DTYPES = {".fvecs": np.dtype("<f4"), ".ivecs": np.dtype("<i4"), ".bvecs": np.dtype("u1")}
#: Element type of each big-ann-benchmarks binary flavour (uint32 n, uint32 d, then n*d values).
BIN_DTYPES = {".fbin": np.dtype("<f4"), ".u8bin": np.dtype("u1"), ".i8bin": np.dtype("i1"),
              ".ibin": np.dtype("<i4")}
_BLOCK_ROWS = 1 << 16


def format_dtype(path: str | os.PathLike, table: dict[str, np.dtype], kind: str) -> np.dtype:
    """The element type ``path``'s suffix stands for in ``table``, or a DataError listing them."""
    suffix = Path(path).suffix.lower()
    if suffix not in table:
        raise DataError(f"{path}: unknown {kind} suffix {suffix!r}; expected one of "
                        f"{', '.join(table)}")
    return table[suffix]




def _matrix(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asanyarray(x)
    if x.ndim != 2:
        raise DataError(f"{what}: expected a 2-D array of vectors, got shape {x.shape}")
    return x


def _cast_block(block: np.ndarray, dtype: np.dtype, path: Path) -> np.ndarray:
    """Cast to the file's element type; integer formats refuse values they cannot hold exactly."""
    out = block.astype(dtype)
    if dtype.kind in "iu" and not np.array_equal(out, block):
        info = np.iinfo(dtype)
        raise DataError(f"{path}: values do not fit {dtype.name} exactly (need integers in "
                        f"[{info.min}, {info.max}]); write a .fvecs/.fbin file instead")
    return out


def _file_size(path: Path) -> int:
    regular_file(path, f"a {path.suffix or 'vector'} file")
    try:
        return path.stat().st_size
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None


# --- .npy: a header (magic, version, dict of dtype, order and shape), then the values -----------

_ZIP_MAGIC = b"PK\x03\x04"


def read_npy(path: str | os.PathLike) -> np.ndarray:
    """Memory-map a .npy file, its header checked against the file's size first.

    ``np.load`` maps as many rows as the header says, so a header of fewer rows than the file
    holds (an array rewritten in place, a concatenation) would run on the smaller count without
    a word; a .npz archive or a truncated file would raise from deep inside numpy.
    """
    from numpy.lib import format as npy_format

    path = Path(path)
    size = _file_size(path)
    expected = "an array saved by numpy.save (.npy)"
    try:
        with open(path, "rb") as handle:
            if handle.read(4) == _ZIP_MAGIC:
                raise DataError(f"{path}: is a .npz archive (zip of arrays); expected {expected}")
            handle.seek(0)
            version = npy_format.read_magic(handle)
            read_header = (npy_format.read_array_header_1_0 if version == (1, 0)
                           else npy_format.read_array_header_2_0)
            shape, fortran, dtype = read_header(handle)
            offset = handle.tell()
    except DataError:
        raise
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        why = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{path}: not a readable .npy file ({why}); expected {expected}") from None
    if dtype.hasobject:
        raise DataError(f"{path}: holds Python objects (dtype {dtype}); expected numbers")
    want = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size != want:
        raise DataError(f"{path}: header says shape {shape} of {dtype} ({want} bytes with the "
                        f"{offset}-byte header) but the file has {size} bytes; truncated, "
                        "appended to, or rewritten without its header")
    if want == offset:
        return np.empty(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                     order="F" if fortran else "C")


# --- .fvecs / .ivecs / .bvecs: each row is an int32 dimension d, then d values --------------------

def read_vecs(path: str | os.PathLike) -> np.ndarray:
    """Memory-map a .fvecs/.ivecs/.bvecs file as an (n, d) array, the per-row header sliced off.

    The result is a strided view (not C-contiguous) of the file, which a Dataset keeps as it is
    (consumers convert it block by block). Every row's header is checked to equal the first (the
    format allows none other).
    """
    path = Path(path)
    dtype = format_dtype(path, VECS_DTYPES, "vecs")
    size = _file_size(path)
    if size < 4:
        raise DataError(f"{path}: {size} bytes is too short for a {path.suffix} file; "
                        "expected an int32 dimension header")
    dim = int(np.fromfile(path, dtype="<i4", count=1)[0])
    if dim <= 0:
        raise DataError(f"{path}: dimension header {dim}; expected a positive int32")
    row_bytes = 4 + dim * dtype.itemsize
    if size % row_bytes:
        raise DataError(f"{path}: {size} bytes is not a whole number of rows of {row_bytes} bytes "
                        f"(4-byte header + {dim} x {dtype.itemsize}); truncated, or not a "
                        f"{path.suffix} file")
    rows = np.memmap(path, mode="r", shape=(size // row_bytes,),
                     dtype=np.dtype([("dim", "<i4"), ("vec", dtype, (dim,))]))
    for start in range(0, len(rows), _BLOCK_ROWS * 16):
        dims = np.asarray(rows["dim"][start:start + _BLOCK_ROWS * 16])
        bad = np.flatnonzero(dims != dim)
        if bad.size:
            raise DataError(f"{path}: row {start + int(bad[0])} has dimension header "
                            f"{int(dims[bad[0]])}; expected {dim} like row 0 (rows must all have "
                            "the same dimension)")
    return rows["vec"]


def write_vecs(path: str | os.PathLike, x: np.ndarray) -> None:
    """Write ``x`` (n, d) as .fvecs/.ivecs/.bvecs, chosen by the suffix of ``path``."""
    path = Path(path)
    dtype = format_dtype(path, VECS_DTYPES, "vecs")
    x = _matrix(x, str(path))
    record = np.dtype([("dim", "<i4"), ("vec", dtype, (x.shape[1],))])
    with atomic_file(path) as out:
        for start in range(0, len(x), _BLOCK_ROWS):
            block = _cast_block(np.asarray(x[start:start + _BLOCK_ROWS]), dtype, path)
            rows = np.empty(len(block), dtype=record)
            rows["dim"] = x.shape[1]
            rows["vec"] = block
            rows.tofile(out)


# --- big-ann-benchmarks .fbin / .u8bin / .i8bin / .ibin: uint32 n, uint32 d, then n*d values ------

def _bin_header(path: Path, what: str) -> tuple[int, int, int]:
    size = _file_size(path)
    if size < 8:
        raise DataError(f"{path}: {size} bytes is too short for a {what} header "
                        "(expected uint32 n, uint32 d)")
    n, d = (int(v) for v in np.fromfile(path, dtype="<u4", count=2))
    return n, d, size


def read_bin(path: str | os.PathLike) -> np.ndarray:
    """Memory-map a big-ann .fbin/.u8bin/.i8bin/.ibin file as a C-contiguous (n, d) array."""
    path = Path(path)
    dtype = format_dtype(path, BIN_DTYPES, "big-ann binary")
    n, d, size = _bin_header(path, path.suffix)
    expected = 8 + n * d * dtype.itemsize
    if size != expected:
        raise DataError(f"{path}: header says {n} x {d} {dtype.name} ({expected} bytes) but the "
                        f"file has {size} bytes; truncated, or not a {path.suffix} file")
    if n * d == 0:
        return np.empty((n, d), dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=8, shape=(n, d))


def write_bin(path: str | os.PathLike, x: np.ndarray) -> None:
    """Write ``x`` (n, d) as a big-ann binary whose element type the suffix of ``path`` names."""
    path = Path(path)
    dtype = format_dtype(path, BIN_DTYPES, "big-ann binary")
    x = _matrix(x, str(path))
    with atomic_file(path) as out:
        np.array(x.shape, dtype="<u4").tofile(out)
        for start in range(0, len(x), _BLOCK_ROWS):
            _cast_block(np.asarray(x[start:start + _BLOCK_ROWS]), dtype, path).tofile(out)


def read_bin_groundtruth(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read big-ann ground truth: uint32 n, uint32 k, int32 ids (n*k), float32 distances (n*k).

    Returns ``(ids, distances)`` as (n, k) memory maps (int32, float32).
    """
    path = Path(path)
    n, k, size = _bin_header(path, "ground-truth")
    expected = 8 + n * k * 8
    if size != expected:
        raise DataError(f"{path}: header says {n} queries x {k} neighbours ({expected} bytes: "
                        f"int32 ids then float32 distances) but the file has {size} bytes")
    if n * k == 0:
        return np.empty((n, k), dtype="<i4"), np.empty((n, k), dtype="<f4")
    ids = np.memmap(path, dtype="<i4", mode="r", offset=8, shape=(n, k))
    distances = np.memmap(path, dtype="<f4", mode="r", offset=8 + n * k * 4, shape=(n, k))
    return ids, distances


def write_bin_groundtruth(path: str | os.PathLike, ids: np.ndarray,
                          distances: np.ndarray) -> None:
    """Write big-ann ground truth; ``ids`` and ``distances`` are (n, k)."""
    path = Path(path)
    ids, distances = _matrix(ids, f"{path}: ids"), _matrix(distances, f"{path}: distances")
    if ids.shape != distances.shape:
        raise DataError(f"{path}: ids have shape {ids.shape} but distances {distances.shape}; "
                        "expected the same")
    with atomic_file(path) as out:
        np.array(ids.shape, dtype="<u4").tofile(out)
        _cast_block(np.asarray(ids), np.dtype("<i4"), path).tofile(out)
        np.asarray(distances, dtype="<f4").tofile(out)


__all__ = ["VECS_DTYPES", "BIN_DTYPES", "read_npy", "read_vecs", "write_vecs", "read_bin", "write_bin",
           "read_bin_groundtruth", "write_bin_groundtruth", "format_dtype", "atomic_path"]
