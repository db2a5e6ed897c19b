"""HDF5 (ann-benchmarks) and parquet (VectorDBBench) vector files: readers and writers.

h5py and pyarrow are imported inside the functions, so importing vecbench stays light.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vecbench.core.atomic import atomic_file, atomic_path
from vecbench.datasets.formats import _BLOCK_ROWS, _matrix
from vecbench.core.errors import DataError
from vecbench.datasets.paths import regular_file

#: ann-benchmarks ``distance`` attribute -> vecbench metric. ``angular`` ranks like cosine.
HDF5_DISTANCES = {"euclidean": "l2", "angular": "cos", "dot": "ip"}
#: ann-benchmarks distances vecbench does not search yet (bit vectors and sparse sets).
HDF5_UNSUPPORTED = ("hamming", "jaccard")


@dataclass
class AnnBenchmarksFile:
    """The contents of an ann-benchmarks HDF5 file, arrays as read (memory maps where possible)."""

    base: np.ndarray
    queries: np.ndarray
    distance: str
    metric: str
    neighbors: np.ndarray | None = None
    distances: np.ndarray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


def _attr(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _hdf5_matrix(ds: Any, path: Path) -> np.ndarray:
    """An HDF5 dataset as an array; contiguous, uncompressed numeric data is memory-mapped.

    ann-benchmarks writes contiguous datasets, so a large base need not be read into RAM; other
    layouts (chunked, compressed) are read whole.
    """
    if ds.ndim != 2:
        raise DataError(f"{path}: dataset {ds.name!r} has shape {ds.shape}; expected 2-D")
    offset = ds.id.get_offset() if ds.chunks is None and ds.compression is None else None
    if (offset is not None and not ds.external and ds.dtype.kind in "fiu"
            and ds.dtype.byteorder in "<=|" and ds.size > 0):
        end, size = offset + ds.size * ds.dtype.itemsize, path.stat().st_size
        if end > size:  # the header promises data past the end of the file
            raise DataError(f"{path}: dataset {ds.name!r} ({ds.shape}, {ds.dtype}) ends at byte "
                            f"{end} but the file has {size} bytes; truncated HDF5 file")
        return np.memmap(path, dtype=ds.dtype, mode="r", offset=offset, shape=ds.shape)
    return ds[...]


def read_hdf5(path: str | os.PathLike) -> AnnBenchmarksFile:
    """Read an ann-benchmarks file: ``train`` (base), ``test`` (queries), optional ``neighbors``
    and ``distances``; attribute ``distance`` gives the metric."""
    import h5py

    path = regular_file(path, "an ann-benchmarks .hdf5 file")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        why = (str(exc).splitlines() or [""])[0]
        raise DataError(f"{path}: not a readable HDF5 file ({why}); expected an "
                        "ann-benchmarks .hdf5 file") from None
    try:
        return _read_hdf5(path, handle)
    except DataError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        # h5py reports a damaged block, heap or B-tree with these, mid-read
        why = (str(exc).splitlines() or [""])[0]
        raise DataError(f"{path}: corrupt HDF5 file ({type(exc).__name__}: {why}); expected an "
                        "intact ann-benchmarks .hdf5 file") from None


def _read_hdf5(path: Path, handle: Any) -> AnnBenchmarksFile:
    with handle as f:
        attrs = {key: _attr(value) for key, value in f.attrs.items()}
        distance = attrs.get("distance")
        if distance in HDF5_UNSUPPORTED:
            raise DataError(f"{path}: distance {distance!r} is not supported yet; expected one of "
                            f"{', '.join(HDF5_DISTANCES)}")
        if distance not in HDF5_DISTANCES:
            raise DataError(f"{path}: attribute 'distance' is {distance!r}; expected one of "
                            f"{', '.join(HDF5_DISTANCES)} (ann-benchmarks layout)")
        if attrs.get("type", "dense") != "dense":
            raise DataError(f"{path}: type {attrs['type']!r} is not supported; expected 'dense'")
        missing = [name for name in ("train", "test") if name not in f]
        if missing:
            raise DataError(f"{path}: no dataset {missing[0]!r} (has: {', '.join(f.keys())}); "
                            "expected 'train' (base) and 'test' (queries)")
        base, queries = _hdf5_matrix(f["train"], path), _hdf5_matrix(f["test"], path)
        if "dimension" in attrs and int(attrs["dimension"]) != base.shape[1]:
            raise DataError(f"{path}: attribute dimension={attrs['dimension']} but 'train' has "
                            f"{base.shape[1]} columns; expected them equal")
        neighbors = f["neighbors"][...] if "neighbors" in f else None
        distances = f["distances"][...] if "distances" in f else None
    if neighbors is not None:
        neighbors = _check_neighbors(path, neighbors, len(queries), len(base))
    if distances is not None and (neighbors is None or distances.shape != neighbors.shape):
        raise DataError(f"{path}: 'distances' has shape {distances.shape}; expected the shape of "
                        f"'neighbors' ({None if neighbors is None else neighbors.shape})")
    return AnnBenchmarksFile(base, queries, distance, HDF5_DISTANCES[distance], neighbors,
                             distances, attrs)


def _check_neighbors(where: Any, neighbors: np.ndarray, n_queries: int, n_base: int) -> np.ndarray:
    """Shipped neighbour rows as int64 (n_queries, k), each -1 (padding) or a base row."""
    neighbors = np.asarray(neighbors)
    if neighbors.ndim != 2 or len(neighbors) != n_queries or neighbors.dtype.kind not in "iu":
        raise DataError(f"{where}: neighbours have shape {neighbors.shape} and dtype "
                        f"{neighbors.dtype}; expected integers of shape ({n_queries}, k)")
    neighbors = neighbors.astype(np.int64)
    bad = (neighbors < -1) | (neighbors >= n_base)
    if bad.any():
        raise DataError(f"{where}: neighbour id {int(neighbors[bad][0])} is out of range; "
                        f"expected -1 or a base row in [0, {n_base})")
    return neighbors


def write_hdf5(dataset: Any, path: str | os.PathLike, neighbors: np.ndarray | None = None,
               distances: np.ndarray | None = None) -> None:
    """Write ``dataset`` in the ann-benchmarks layout (base -> ``train``, queries -> ``test``).

    ``neighbors`` defaults to ``dataset.neighbors``; ann-benchmarks needs them (and
    ``distances``) to score runs, so pass exact ground truth when exporting for it.
    """
    import h5py

    path = Path(path)
    inverse = {metric: name for name, metric in HDF5_DISTANCES.items()}
    neighbors = dataset.neighbors if neighbors is None else neighbors
    if neighbors is not None:
        neighbors = np.asarray(neighbors)
        _check_neighbors(path, neighbors, len(dataset.queries), len(dataset.base))
    if distances is not None and (neighbors is None or np.shape(distances) != neighbors.shape):
        raise DataError(f"{path}: distances have shape {np.shape(distances)}; expected the "
                        "shape of the neighbours")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["type"] = "dense"
            f.attrs["distance"] = inverse[dataset.metric]
            f.attrs["dimension"] = dataset.dim
            f.attrs["point_type"] = "float"
            for name, x in (("train", dataset.base), ("test", dataset.queries)):
                out = f.create_dataset(name, shape=x.shape, dtype=np.float32)
                for start in range(0, len(x), _BLOCK_ROWS):  # blockwise: base may be a memmap
                    out[start:start + _BLOCK_ROWS] = x[start:start + _BLOCK_ROWS]
            if neighbors is not None:
                f.create_dataset("neighbors", data=neighbors)
            if distances is not None:
                f.create_dataset("distances", data=np.asarray(distances, dtype=np.float32))


# --- parquet: an id column and a list-of-numbers embedding column per row -------------------------

def _read_table(path: Path, columns: Sequence[str]) -> Any:
    import pyarrow.parquet as pq

    regular_file(path, "a parquet file")
    try:
        schema = pq.read_schema(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"{path}: not a readable parquet file ({exc})") from None
    for column in columns:
        if column not in schema.names:
            raise DataError(f"{path}: no column {column!r} (has: {', '.join(schema.names)})")
    try:
        return pq.read_table(path, columns=list(columns), memory_map=True)
    except (OSError, ValueError) as exc:  # a damaged page past an intact footer
        raise DataError(f"{path}: corrupt parquet file ({exc})") from None


def _list_column(path: Path, column: str, array: Any, ragged_ok: bool = False) -> np.ndarray:
    """A list / fixed-size-list column as an (n, d) array; ragged rows padded with -1 if allowed."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    kind = array.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)
            or pa.types.is_fixed_size_list(kind)):
        raise DataError(f"{path}: column {column!r} has type {kind}; expected a list of numbers")
    if array.null_count or array.flatten().null_count:
        raise DataError(f"{path}: column {column!r} has null values; expected complete vectors")
    values = array.flatten().to_numpy(zero_copy_only=False)
    if values.dtype.kind not in "fiu":
        raise DataError(f"{path}: column {column!r} holds {values.dtype}; expected numbers")
    lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False).astype(np.int64)
    if len(array) == 0:
        return values.reshape(0, 0)
    if lengths.min() == lengths.max():
        return values.reshape(len(array), int(lengths[0]))
    if not ragged_ok:
        raise DataError(f"{path}: column {column!r} has rows of {lengths.min()} to "
                        f"{lengths.max()} values; expected vectors of one dimension")
    out = np.full((len(array), int(lengths.max())), -1, dtype=values.dtype)
    out[np.arange(lengths.max()) < lengths[:, None]] = values
    return out


def read_parquet_vectors(paths: str | os.PathLike | Sequence[str | os.PathLike],
                         id_column: str = "id",
                         emb_column: str = "emb") -> tuple[np.ndarray, np.ndarray]:
    """Read ``(ids, vectors)`` from one or more parquet files (rows concatenated in order).

    Ids must be unique: shipped neighbours and qrels refer to vectors by id.
    """
    paths = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
    ids, vectors = [], []
    for path in paths:
        table = _read_table(path, [id_column, emb_column])
        ids.append(table.column(id_column).to_numpy())
        vectors.append(_list_column(path, emb_column, table.column(emb_column)))
        if vectors[-1].shape[1] != vectors[0].shape[1]:
            raise DataError(f"{path}: vectors have {vectors[-1].shape[1]} dimensions but "
                            f"{paths[0]} has {vectors[0].shape[1]}; expected the same")
    all_ids = np.concatenate(ids)
    if all_ids.dtype == object:
        all_ids = all_ids.astype(str)
    if len(np.unique(all_ids)) != len(all_ids):
        raise DataError(f"{paths[0]}: column {id_column!r} has duplicate ids; expected unique ids")
    return all_ids, np.concatenate(vectors)


def read_parquet_neighbors(path: str | os.PathLike, id_column: str = "id",
                           neighbors_column: str = "neighbors_id"
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Read ``(query_ids, neighbor_ids)``; neighbour lists of unequal length are padded with -1."""
    path = Path(path)
    table = _read_table(path, [id_column, neighbors_column])
    query_ids = table.column(id_column).to_numpy()
    neighbors = _list_column(path, neighbors_column, table.column(neighbors_column), True)
    return (query_ids.astype(str) if query_ids.dtype == object else query_ids), neighbors


def rows_of_ids(ids: np.ndarray, wanted: np.ndarray, where: str) -> np.ndarray:
    """Row in ``ids`` of each element of ``wanted`` (any shape); a DataError names a missing id."""
    wanted = np.asarray(wanted)
    if ids.dtype.kind == "U" and wanted.dtype.kind != "U":
        wanted = wanted.astype(str)
    order = np.argsort(ids, kind="stable")
    positions = np.searchsorted(ids[order], wanted).clip(0, max(len(ids) - 1, 0))
    rows = order[positions] if len(ids) else np.zeros(wanted.shape, dtype=np.int64)
    missing = ids[rows] != wanted if len(ids) else np.ones(wanted.shape, dtype=bool)
    if missing.any():
        raise DataError(f"{where}: id {wanted[missing][0]!r} is not among the ids it refers to")
    return rows.astype(np.int64)


def write_parquet_vectors(path: str | os.PathLike, ids: np.ndarray, vectors: np.ndarray,
                          id_column: str = "id", emb_column: str = "emb") -> None:
    """Write an id column and a ``list<element type>`` embedding column, block by block."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    vectors = _matrix(vectors, str(path))
    ids = np.asarray(ids)
    if len(ids) != len(vectors):
        raise DataError(f"{path}: {len(ids)} ids for {len(vectors)} vectors; expected one each")
    d = vectors.shape[1]
    schema = pa.schema([(id_column, pa.from_numpy_dtype(ids.dtype) if ids.dtype.kind != "U"
                         else pa.string()),
                        (emb_column, pa.list_(pa.from_numpy_dtype(vectors.dtype)))])
    with atomic_file(path) as out:
        # dictionary encoding only costs time on float vectors and unique ids
        with pq.ParquetWriter(out, schema, use_dictionary=False) as writer:
            for start in range(0, max(len(vectors), 1), _BLOCK_ROWS):
                block = np.ascontiguousarray(vectors[start:start + _BLOCK_ROWS])
                offsets = pa.array(np.arange(len(block) + 1, dtype=np.int32) * d)
                emb = pa.ListArray.from_arrays(offsets, pa.array(block.reshape(-1)))
                writer.write_table(pa.table([pa.array(ids[start:start + _BLOCK_ROWS]), emb],
                                            schema=schema))


def write_parquet_neighbors(path: str | os.PathLike, query_ids: np.ndarray,
                            neighbor_ids: np.ndarray, id_column: str = "id",
                            neighbors_column: str = "neighbors_id") -> None:
    """Write ground truth as VectorDBBench reads it: query id -> list of base ids."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    neighbor_ids = _matrix(neighbor_ids, str(path))
    table = pa.table({id_column: np.asarray(query_ids),
                      neighbors_column: pa.array(list(neighbor_ids))})
    with atomic_file(path) as out:
        pq.write_table(table, out)


def write_parquet_dataset(dataset: Any, folder: str | os.PathLike,
                          neighbors: np.ndarray | None = None, id_column: str = "id",
                          emb_column: str = "emb") -> None:
    """Write ``train.parquet``, ``test.parquet`` and (with neighbours) ``neighbors.parquet``.

    Ids are ``dataset.base_ids``/``query_ids`` when present, else row numbers; ``neighbors``
    (rows, default ``dataset.neighbors``) are written as base ids.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base_ids = (np.asarray(dataset.base_ids) if dataset.base_ids is not None
                else np.arange(len(dataset.base), dtype=np.int64))
    query_ids = (np.asarray(dataset.query_ids) if dataset.query_ids is not None
                 else np.arange(len(dataset.queries), dtype=np.int64))
    write_parquet_vectors(folder / "train.parquet", base_ids, dataset.base, id_column, emb_column)
    write_parquet_vectors(folder / "test.parquet", query_ids, dataset.queries, id_column,
                          emb_column)
    neighbors = dataset.neighbors if neighbors is None else neighbors
    if neighbors is not None:
        neighbors = _check_neighbors(folder / "neighbors.parquet", neighbors, len(query_ids),
                                     len(base_ids))
        if (neighbors < 0).any():
            raise DataError(f"{folder}: neighbours have -1 padding, which parquet ground truth "
                            "cannot express; expected full neighbour lists")
        write_parquet_neighbors(folder / "neighbors.parquet", query_ids, base_ids[neighbors],
                                id_column)
