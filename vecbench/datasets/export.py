"""Write a dataset for other tools: ann-benchmarks HDF5, VectorDBBench parquet, TEXMEX / big-ann."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vecbench.core.errors import DataError
from vecbench.datasets import formats_tables
from vecbench.datasets.formats import write_bin, write_bin_groundtruth, write_vecs

#: Formats :func:`export_dataset` writes.
EXPORT_FORMATS = ("hdf5", "parquet", "fvecs", "fbin")


def export_dataset(dataset, path: str | os.PathLike, fmt: str,
                   neighbors: np.ndarray | None = None,
                   distances: np.ndarray | None = None) -> list[Path]:
    """Write ``dataset`` for other tools; returns the files written.

    ``hdf5``: one ann-benchmarks file at ``path``. ``parquet``: a VectorDBBench folder at
    ``path``. ``fvecs`` / ``fbin``: TEXMEX / big-ann style files ``<path>_base``, ``<path>_query``
    and, with neighbours, ``<path>_groundtruth`` (.ivecs / .bin; the .bin needs ``distances``).
    ``neighbors`` are base rows (default ``dataset.neighbors``); the metric is recorded only by
    hdf5, so say it again when loading the others.
    """
    path = Path(path)
    neighbors = dataset.neighbors if neighbors is None else neighbors
    if fmt == "hdf5":
        formats_tables.write_hdf5(dataset, path, neighbors, distances)
        return [path]
    if fmt == "parquet":
        formats_tables.write_parquet_dataset(dataset, path, neighbors)
        return sorted(path.glob("*.parquet"))
    if fmt not in EXPORT_FORMATS:
        raise DataError(f"{path}: unknown export format {fmt!r}; expected one of "
                        f"{', '.join(EXPORT_FORMATS)}")
    write, suffix = (write_vecs, ".fvecs") if fmt == "fvecs" else (write_bin, ".fbin")
    files = [path.with_name(f"{path.name}_base{suffix}"),
             path.with_name(f"{path.name}_query{suffix}")]
    write(files[0], dataset.base)
    write(files[1], dataset.queries)
    if neighbors is not None and fmt == "fvecs":
        files.append(path.with_name(f"{path.name}_groundtruth.ivecs"))
        write_vecs(files[-1], neighbors)
    elif neighbors is not None:
        if distances is None:
            raise DataError(f"{path}: big-ann ground truth stores distances beside the ids; "
                            "expected distances with the neighbours")
        files.append(path.with_name(f"{path.name}_groundtruth.bin"))
        write_bin_groundtruth(files[-1], neighbors, distances)
    return files
