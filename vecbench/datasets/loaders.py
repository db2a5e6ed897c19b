"""Dataset loaders for the file formats other tools ship: HDF5, .vecs, big-ann .bin, parquet.

Constructors validate parameters without touching files; ``load`` resolves relative paths with the
:class:`PathResolver` (experiment folder first, then ``$VECBENCH_DATA``) and reads the data.
Formats that do not record a metric (.vecs, .bin, parquet) need ``metric`` given explicitly:
guessing l2 for cosine embeddings would give a silently wrong ground truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vecbench.core.errors import DataError
from vecbench.core.params import assign
from vecbench.datasets import checks, formats, formats_tables
from vecbench.datasets.base import Dataset, finish, PathResolver
from vecbench.datasets.formats_tables import _check_neighbors, read_parquet_neighbors, rows_of_ids


def _stem(value: str) -> str:
    return Path(str(value)).name.split(".")[0]


def _shipped(where: Any, neighbors: np.ndarray | None, n_queries: int,
             n_base: int) -> np.ndarray | None:
    return None if neighbors is None else _check_neighbors(where, neighbors, n_queries, n_base)


class Hdf5:
    """An ann-benchmarks HDF5 file: ``train`` = base, ``test`` = queries, shipped ``neighbors``.

    The metric comes from the file's ``distance`` attribute (euclidean -> l2, angular -> cos,
    dot -> ip); ``metric`` overrides it, and then the shipped neighbours (computed for the file's
    distance) are dropped. A contiguous, uncompressed base stays memory-mapped in its element
    type (under cos only if already unit-norm: see ``base.cos_base``); chunked or compressed
    data is read into memory.
    """

    params = checks.hdf5.params

    def __init__(self, path: str, metric: str | None = None, name: str | None = None):
        assign(self, locals())

    def load(self, paths: PathResolver | None = None) -> Dataset:
        path = (paths or PathResolver()).resolve("path", self.path)
        data = formats_tables.read_hdf5(path)
        metric = self.metric or data.metric
        neighbors = data.neighbors if metric == data.metric else None
        info = {"source": str(path), "format": "hdf5", "distance": data.distance}
        return finish(self.name or _stem(self.path), data.base, data.queries, metric,
                      neighbors=neighbors, info=info)


class Vecs:
    """.fvecs/.ivecs/.bvecs files (memory-mapped); ``groundtruth`` is an .ivecs of neighbour rows."""

    params = checks.vecs.params

    def __init__(self, base: str, queries: str, metric: str | None = None,
                 train: str | None = None, groundtruth: str | None = None,
                 name: str | None = None):
        assign(self, locals())

    def load(self, paths: PathResolver | None = None) -> Dataset:
        paths = paths or PathResolver()
        files = {key: paths.resolve(key, value)
                 for key, value in (("base", self.base), ("queries", self.queries),
                                    ("train", self.train), ("groundtruth", self.groundtruth))
                 if value is not None}
        read = {key: formats.read_vecs(path) for key, path in files.items()}
        neighbors = _shipped(files.get("groundtruth"), read.get("groundtruth"),
                             len(read["queries"]), len(read["base"]))
        return finish(self.name or _stem(self.base), read["base"], read["queries"], self.metric,
                      train=read.get("train"), neighbors=neighbors, sources=files,
                      info={"source": self.base, "format": "vecs"})


class Fbin:
    """big-ann-benchmarks .fbin/.u8bin/.i8bin files (memory-mapped) and their ground-truth file."""

    params = checks.fbin.params

    def __init__(self, base: str, queries: str, metric: str | None = None,
                 train: str | None = None, groundtruth: str | None = None,
                 name: str | None = None):
        assign(self, locals())

    def load(self, paths: PathResolver | None = None) -> Dataset:
        paths = paths or PathResolver()
        sources = {key: paths.resolve(key, value) for key, value in
                   (("base", self.base), ("queries", self.queries), ("train", self.train))
                   if value}
        base = formats.read_bin(sources["base"])
        queries = formats.read_bin(sources["queries"])
        train = formats.read_bin(sources["train"]) if self.train else None
        neighbors = None
        if self.groundtruth:
            gt_path = paths.resolve("groundtruth", self.groundtruth)
            ids, _ = formats.read_bin_groundtruth(gt_path)
            neighbors = _shipped(gt_path, ids, len(queries), len(base))
        return finish(self.name or _stem(self.base), base, queries, self.metric, train=train,
                      neighbors=neighbors, sources=sources,
                      info={"source": self.base, "format": "fbin"})


class Parquet:
    """Parquet tables of id + embedding list (the VectorDBBench custom-dataset layout).

    Either ``path``, a folder with ``train.parquet`` (base; else all ``*train*.parquet`` files in
    name order), ``test.parquet`` (queries) and optional ``neighbors.parquet`` (query id -> list of
    base ids in ``neighbors_column``), or explicit ``base`` (a file or list of files), ``queries``
    and ``neighbors`` files (relative to ``path`` when it is given). Ids become ``base_ids`` /
    ``query_ids``; shipped neighbour ids are mapped to base rows.
    """

    list_params = checks.parquet.list_params  # a list of files is one value, not a grid axis
    params = checks.parquet.params

    def __init__(self, path: str | None = None, base: str | Sequence[str] | None = None,
                 queries: str | None = None, neighbors: str | None = None,
                 metric: str | None = None, id_column: str = "id", emb_column: str = "emb",
                 neighbors_column: str = "neighbors_id", name: str | None = None):
        assign(self, locals())
        if isinstance(self.base, (list, tuple)):
            self.base = list(self.base)
        checks.parquet.check(vars(self))

    def _files(self, paths: PathResolver) -> tuple[list[Path], Path, Path | None]:
        if self.path is None:
            base = self.base if isinstance(self.base, list) else [self.base]
            return ([paths.resolve("base", b) for b in base],
                    paths.resolve("queries", self.queries),
                    paths.resolve("neighbors", self.neighbors) if self.neighbors else None)
        folder = paths.resolve("path", self.path)
        if self.base is not None:
            base = [folder / b for b in (self.base if isinstance(self.base, list) else [self.base])]
        elif (folder / "train.parquet").exists():
            base = [folder / "train.parquet"]
        else:
            base = sorted(folder.glob("*train*.parquet"))
        if not base:
            raise DataError(f"{folder}: no train.parquet (nor *train*.parquet); expected the base "
                            "vectors there")
        neighbors = folder / (self.neighbors or "neighbors.parquet")
        if self.neighbors is None and not neighbors.exists():
            neighbors = None
        for file in [*base, folder / (self.queries or "test.parquet"), neighbors]:
            if file is not None and not file.exists():
                raise DataError(f"{folder}: no file {file.name!r}; expected it in the dataset "
                                "folder")
        return base, folder / (self.queries or "test.parquet"), neighbors

    def load(self, paths: PathResolver | None = None) -> Dataset:
        base_files, query_file, neighbors_file = self._files(paths or PathResolver())
        base_ids, base = formats_tables.read_parquet_vectors(base_files, self.id_column, self.emb_column)
        query_ids, queries = formats_tables.read_parquet_vectors(query_file, self.id_column,
                                                          self.emb_column)
        neighbors = None
        if neighbors_file is not None:
            neighbors = self._neighbor_rows(neighbors_file, base_ids, query_ids)
        name = self.name or (_stem(self.path) if self.path else _stem(str(base_files[0])))
        return finish(name, base, queries, self.metric, neighbors=neighbors, base_ids=base_ids,
                      query_ids=query_ids, info={"source": str(base_files[0]), "format": "parquet"})

    def _neighbor_rows(self, path: Path, base_ids: np.ndarray, query_ids: np.ndarray) -> np.ndarray:
        gt_query_ids, gt_ids = read_parquet_neighbors(path, self.id_column, self.neighbors_column)
        if len(gt_query_ids) != len(query_ids):
            raise DataError(f"{path}: ground truth for {len(gt_query_ids)} queries; expected one "
                            f"row per query ({len(query_ids)})")
        order = rows_of_ids(gt_query_ids, query_ids, f"{path}: column {self.id_column!r}")
        gt_ids = gt_ids[order]
        padded = gt_ids == -1 if gt_ids.dtype.kind in "iu" else np.zeros(gt_ids.shape, bool)
        rows = np.full(gt_ids.shape, -1, dtype=np.int64)
        rows[~padded] = rows_of_ids(base_ids, gt_ids[~padded],
                                    f"{path}: column {self.neighbors_column!r}")
        return rows
