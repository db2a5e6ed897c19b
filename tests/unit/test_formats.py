"""Vector file formats: round trips, corrupted headers, and the loaders built on them."""

from __future__ import annotations

import numpy as np
import pytest

from vecbench.datasets import export, formats, formats_tables
from vecbench.datasets.base import PathResolver
from vecbench.core.vectors import is_mapped
from vecbench.datasets.loaders import Fbin, Hdf5, Parquet, Vecs
from vecbench.core.errors import ConfigError, DataError
from vecbench.core.registry import datasets


def _vectors(dtype, n=50, d=7, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal((n, d)).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -1000), min(info.max, 1000), size=(n, d)).astype(dtype)


def _exact(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    d2 = ((queries[:, None, :].astype(np.float64) - base[None]) ** 2).sum(-1)
    return np.argsort(d2, axis=1, kind="stable")[:, :k]


# --- .vecs ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix, dtype", [(".fvecs", np.float32), (".ivecs", np.int32),
                                           (".bvecs", np.uint8)])
def test_vecs_round_trip_keeps_values_and_dtype(tmp_path, suffix, dtype):
    x = _vectors(dtype)
    path = tmp_path / f"x{suffix}"
    formats.write_vecs(path, x)
    assert path.stat().st_size == len(x) * (4 + x.shape[1] * x.itemsize)
    back = formats.read_vecs(path)
    assert isinstance(back, np.memmap)
    assert back.dtype == dtype and back.shape == x.shape
    np.testing.assert_array_equal(back, x)


def test_vecs_header_that_changes_is_a_data_error(tmp_path):
    path = tmp_path / "x.fvecs"
    formats.write_vecs(path, _vectors(np.float32, n=5, d=4))
    raw = bytearray(path.read_bytes())
    raw[2 * 20:2 * 20 + 4] = np.int32(3).tobytes()  # row 2's header (rows are 4 + 4*4 bytes)
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"row 2 has dimension header 3; expected 4"):
        formats.read_vecs(path)


@pytest.mark.parametrize("corrupt, message", [
    (lambda raw: raw[:-3], "not a whole number of rows"),
    (lambda raw: np.int32(-5).tobytes() + raw[4:], "dimension header -5"),
    (lambda raw: raw[:2], "too short"),
])
def test_vecs_corrupt_files_are_data_errors(tmp_path, corrupt, message):
    path = tmp_path / "x.fvecs"
    formats.write_vecs(path, _vectors(np.float32, n=5, d=4))
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(DataError, match=message):
        formats.read_vecs(path)


def test_vecs_writer_refuses_values_the_format_cannot_hold(tmp_path):
    with pytest.raises(DataError, match="do not fit uint8"):
        formats.write_vecs(tmp_path / "x.bvecs", np.array([[1, 300]]))
    with pytest.raises(DataError, match="do not fit int32"):
        formats.write_vecs(tmp_path / "x.ivecs", np.array([[0.5, 1.0]]))
    assert not list(tmp_path.iterdir()), "a failed write must leave no file behind"
    with pytest.raises(DataError, match="unknown vecs suffix '.npy'"):
        formats.write_vecs(tmp_path / "x.npy", np.zeros((2, 2)))


# --- big-ann binaries -----------------------------------------------------------------------------

@pytest.mark.parametrize("suffix, dtype", [(".fbin", np.float32), (".u8bin", np.uint8),
                                           (".i8bin", np.int8), (".ibin", np.int32)])
def test_bin_round_trip_keeps_values_and_dtype(tmp_path, suffix, dtype):
    x = _vectors(dtype, n=33, d=5)
    path = tmp_path / f"x{suffix}"
    formats.write_bin(path, x)
    assert path.stat().st_size == 8 + x.nbytes
    back = formats.read_bin(path)
    assert isinstance(back, np.memmap) and back.flags.c_contiguous
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, x)


def test_bin_header_disagreeing_with_size_is_a_data_error(tmp_path):
    path = tmp_path / "x.fbin"
    formats.write_bin(path, _vectors(np.float32, n=10, d=3))
    raw = path.read_bytes()
    path.write_bytes(np.array([11, 3], dtype="<u4").tobytes() + raw[8:])
    with pytest.raises(DataError, match=r"header says 11 x 3 float32 \(140 bytes\) but the file "
                                        r"has 128 bytes"):
        formats.read_bin(path)
    path.write_bytes(raw[:5])
    with pytest.raises(DataError, match="too short"):
        formats.read_bin(path)


def test_bin_groundtruth_round_trip_and_corruption(tmp_path):
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 1000, size=(20, 10)).astype(np.int32)
    distances = rng.random((20, 10)).astype(np.float32)
    path = tmp_path / "gt.bin"
    formats.write_bin_groundtruth(path, ids, distances)
    back_ids, back_distances = formats.read_bin_groundtruth(path)
    assert back_ids.dtype == np.int32 and back_distances.dtype == np.float32
    np.testing.assert_array_equal(back_ids, ids)
    np.testing.assert_array_equal(back_distances, distances)
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(DataError, match="header says 20 queries x 10 neighbours"):
        formats.read_bin_groundtruth(path)


# --- HDF5 -----------------------------------------------------------------------------------------

@pytest.fixture
def small_dataset():
    return datasets.get("synthetic")(n_base=300, n_queries=20, dim=12, intrinsic_dim=4).load()


def test_hdf5_round_trip_in_the_ann_benchmarks_layout(tmp_path, small_dataset):
    import h5py

    neighbors = _exact(small_dataset.base, small_dataset.queries, 10)
    distances = np.sort(np.random.default_rng(0).random((20, 10)), axis=1).astype(np.float32)
    path = tmp_path / "syn.hdf5"
    formats_tables.write_hdf5(small_dataset, path, neighbors=neighbors, distances=distances)
    with h5py.File(path, "r") as f:
        assert sorted(f.keys()) == ["distances", "neighbors", "test", "train"]
        assert f.attrs["distance"] == "euclidean" and f.attrs["dimension"] == 12
        assert f.attrs["point_type"] == "float"
    data = formats_tables.read_hdf5(path)
    assert isinstance(data.base, np.memmap), "contiguous float32 data should stay on disk"
    np.testing.assert_array_equal(data.base, small_dataset.base)
    np.testing.assert_array_equal(data.queries, small_dataset.queries)
    np.testing.assert_array_equal(data.neighbors, neighbors)
    np.testing.assert_array_equal(data.distances, distances)
    assert data.metric == "l2" and data.base.dtype == np.float32

    loaded = Hdf5(path="syn.hdf5").load(PathResolver(tmp_path))
    assert loaded.name == "syn" and loaded.metric == "l2"
    np.testing.assert_array_equal(loaded.neighbors, neighbors)
    assert _shipped_mismatch(loaded) == 0.0


def _write_raw_hdf5(path, distance="angular", **arrays):
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["distance"] = distance
        for name, value in arrays.items():
            f.create_dataset(name, data=value, chunks=True if name == "train" else None,
                             compression="gzip" if name == "train" else None)


def test_hdf5_angular_is_cosine_and_metric_override_drops_neighbors(tmp_path):
    base, queries = _vectors(np.float64, n=40, d=6), _vectors(np.float64, n=4, d=6, seed=1)
    path = tmp_path / "a.hdf5"
    _write_raw_hdf5(path, train=base, test=queries, neighbors=np.zeros((4, 3), dtype=np.int32))
    loaded = Hdf5(path=str(path)).load()
    assert loaded.metric == "cos" and loaded.base.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(loaded.base, axis=1), 1.0, rtol=1e-6)
    assert loaded.neighbors.dtype == np.int64 and loaded.neighbors.shape == (4, 3)
    overridden = Hdf5(path=str(path), metric="l2").load()
    assert overridden.metric == "l2" and overridden.neighbors is None
    np.testing.assert_allclose(overridden.base, base.astype(np.float32))  # read from gzip chunks


@pytest.mark.parametrize("arrays, distance, message", [
    ({"train": np.zeros((3, 2)), "test": np.zeros((1, 2))}, "hamming",
     "distance 'hamming' is not supported yet"),
    ({"train": np.zeros((3, 2)), "test": np.zeros((1, 2))}, "manhattan",
     "attribute 'distance' is 'manhattan'; expected one of euclidean, angular, dot"),
    ({"train": np.zeros((3, 2))}, "euclidean", r"no dataset 'test' \(has: train\)"),
    ({"train": np.zeros((3, 2)), "test": np.zeros((1, 2)), "neighbors": np.array([[0, 7]])},
     "euclidean", "neighbour id 7 is out of range"),
])
def test_hdf5_bad_files_are_data_errors(tmp_path, arrays, distance, message):
    path = tmp_path / "bad.hdf5"
    _write_raw_hdf5(path, distance, **arrays)
    with pytest.raises(DataError, match=message):
        formats_tables.read_hdf5(path)


def test_hdf5_not_hdf5_is_a_data_error(tmp_path):
    path = tmp_path / "x.hdf5"
    path.write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="not a readable HDF5 file"):
        formats_tables.read_hdf5(path)


# --- parquet --------------------------------------------------------------------------------------

def test_parquet_round_trip_keeps_ids_dtype_and_neighbors(tmp_path):
    from dataclasses import replace

    ds = datasets.get("synthetic")(n_base=200, n_queries=15, dim=8, intrinsic_dim=3).load()
    base_ids = np.arange(1000, 1200, dtype=np.int64)[::-1].copy()  # not row numbers
    neighbors = _exact(ds.base, ds.queries, 5)
    ds = replace(ds, base_ids=base_ids, query_ids=np.arange(15, dtype=np.int64) * 7)
    formats_tables.write_parquet_dataset(ds, tmp_path / "custom", neighbors=neighbors)
    ids, vectors = formats_tables.read_parquet_vectors(tmp_path / "custom" / "train.parquet")
    assert vectors.dtype == np.float32
    np.testing.assert_array_equal(ids, base_ids)
    np.testing.assert_array_equal(vectors, ds.base)
    query_ids, neighbor_ids = formats_tables.read_parquet_neighbors(tmp_path / "custom" /
                                                             "neighbors.parquet")
    np.testing.assert_array_equal(neighbor_ids, base_ids[neighbors])  # ids, not rows, on disk

    loaded = Parquet(path="custom", metric="l2").load(PathResolver(tmp_path))
    assert loaded.name == "custom"
    np.testing.assert_array_equal(loaded.base, ds.base)
    np.testing.assert_array_equal(loaded.query_ids, ds.query_ids)
    np.testing.assert_array_equal(loaded.neighbors, neighbors)  # mapped back to rows


def test_parquet_reads_fixed_size_lists_string_ids_and_shuffled_ground_truth(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = _vectors(np.float64, n=6, d=3)
    ids = ["a", "b", "c", "d", "e", "f"]
    pq.write_table(pa.table({"pk": ids, "vec": pa.FixedSizeListArray.from_arrays(
        pa.array(base.ravel()), 3)}), tmp_path / "base.parquet")
    pq.write_table(pa.table({"pk": ["q1", "q2"], "vec": [base[0].tolist(), base[5].tolist()]}),
                   tmp_path / "q.parquet")
    # ground truth rows in another order than the queries, one list shorter (padded with -1)
    pq.write_table(pa.table({"pk": ["q2", "q1"], "gt": [["f", "e"], ["a"]]}),
                   tmp_path / "gt.parquet")
    with pytest.raises(DataError, match="column 'gt' holds object; expected numbers"):
        Parquet(base="base.parquet", queries="q.parquet", neighbors="gt.parquet",
                id_column="pk", emb_column="vec", neighbors_column="gt",
                metric="l2").load(PathResolver(tmp_path))
    pq.write_table(pa.table({"pk": ["q2", "q1"], "gt": [[5, 4], [0]]}), tmp_path / "gt.parquet")
    _, gt = formats_tables.read_parquet_neighbors(tmp_path / "gt.parquet", "pk", "gt")
    np.testing.assert_array_equal(gt, [[5, 4], [0, -1]])
    loaded = Parquet(base=["base.parquet"], queries="q.parquet", id_column="pk",
                     emb_column="vec", metric="ip").load(PathResolver(tmp_path))
    np.testing.assert_array_equal(loaded.base_ids, ids)
    np.testing.assert_allclose(loaded.base, base.astype(np.float32))


def test_parquet_bad_tables_are_data_errors(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    ragged = pa.table({"id": [1, 2], "emb": [[1.0, 2.0], [3.0]]})
    pq.write_table(ragged, tmp_path / "ragged.parquet")
    with pytest.raises(DataError, match="rows of 1 to 2 values"):
        formats_tables.read_parquet_vectors(tmp_path / "ragged.parquet")
    with pytest.raises(DataError, match=r"no column 'vector' \(has: id, emb\)"):
        formats_tables.read_parquet_vectors(tmp_path / "ragged.parquet", emb_column="vector")
    pq.write_table(pa.table({"id": [1, 1], "emb": [[1.0], [3.0]]}), tmp_path / "dup.parquet")
    with pytest.raises(DataError, match="duplicate ids"):
        formats_tables.read_parquet_vectors(tmp_path / "dup.parquet")
    pq.write_table(pa.table({"id": [1, 2], "emb": [[1.0], None]}), tmp_path / "null.parquet")
    with pytest.raises(DataError, match="null values"):
        formats_tables.read_parquet_vectors(tmp_path / "null.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 nope")
    with pytest.raises(DataError, match="not a readable parquet file"):
        formats_tables.read_parquet_vectors(tmp_path / "junk.parquet")


# --- loaders --------------------------------------------------------------------------------------

def test_vecs_and_fbin_loaders_resolve_relative_paths_and_read_ground_truth(tmp_path):
    base, queries = _vectors(np.float32, n=100, d=6), _vectors(np.float32, n=8, d=6, seed=3)
    gt = _exact(base, queries, 10)
    formats.write_vecs(tmp_path / "b.fvecs", base)
    formats.write_vecs(tmp_path / "q.fvecs", queries)
    formats.write_vecs(tmp_path / "gt.ivecs", gt)
    formats.write_bin(tmp_path / "b.u8bin", np.abs(base * 10).astype(np.uint8))
    formats.write_bin(tmp_path / "q.u8bin", np.abs(queries * 10).astype(np.uint8))
    formats.write_bin_groundtruth(tmp_path / "gt.bin", gt, np.zeros(gt.shape, np.float32))
    paths = PathResolver(tmp_path)

    vecs = Vecs(base="b.fvecs", queries="q.fvecs", groundtruth="gt.ivecs", metric="l2").load(paths)
    # the base stays the file's memory map (a strided view past each row's header), not a copy
    assert vecs.name == "b" and is_mapped(vecs.base) and vecs.base.dtype == np.float32
    np.testing.assert_array_equal(vecs.base, base)
    np.testing.assert_array_equal(vecs.neighbors, gt)
    assert _shipped_mismatch(vecs) == 0.0

    fbin = Fbin(base="b.u8bin", queries="q.u8bin", train="b.u8bin", groundtruth="gt.bin",
                metric="l2").load(paths)
    assert is_mapped(fbin.base) and fbin.base.dtype == np.uint8 and len(fbin.train) == 100
    assert fbin.train.dtype == np.float32 and fbin.queries.dtype == np.float32
    np.testing.assert_array_equal(fbin.neighbors, gt)


def test_loaders_validate_parameters_without_data():
    with pytest.raises(ConfigError, match="metric: expected one of l2, ip, cos, got None"):
        Vecs(base="b.fvecs", queries="q.fvecs")
    with pytest.raises(ConfigError, match="metric: expected one of l2, ip, cos, got 'L2'"):
        Fbin(base="b.fbin", queries="q.fbin", metric="L2")
    with pytest.raises(ConfigError, match=r"queries: expected a parquet file \(or 'path'"):
        Parquet(base="train.parquet", metric="l2")
    with pytest.raises(ConfigError, match="path: expected a non-empty string"):
        Hdf5(path="")
    for name in ("hdf5", "vecs", "fbin", "parquet", "beir"):
        assert name in datasets.names()


def test_missing_file_names_the_parameter(tmp_path):
    formats.write_vecs(tmp_path / "b.fvecs", np.zeros((2, 2), np.float32))
    with pytest.raises(DataError, match="queries: no such file or folder 'nope.fvecs'"):
        Vecs(base="b.fvecs", queries="nope.fvecs", metric="l2").load(PathResolver(tmp_path))


# --- shipped ground truth -------------------------------------------------------------------------

def _shipped_mismatch(ds, k=10):
    from vecbench.compute.groundtruth import exact_knn
    from vecbench.compute.recall import shipped_mismatch

    truth = exact_knn(ds.base, ds.queries, k, ds.metric)
    return shipped_mismatch(np.asarray(ds.neighbors), truth, ds.base, ds.queries, k)


def test_shipped_mismatch_counts_wrong_rows_but_not_ties(small_dataset):
    from dataclasses import replace

    exact = _exact(small_dataset.base, small_dataset.queries, 10)
    wrong = exact.copy()
    far = _exact(small_dataset.base, small_dataset.queries, 300)[:, -1]  # farthest point
    wrong[:10, 0] = far[:10]  # one wrong id in each of the first 10 of 20 queries
    ds = replace(small_dataset, neighbors=wrong)
    assert _shipped_mismatch(ds) == pytest.approx(10 / 20)
    right = replace(small_dataset, neighbors=exact)
    assert _shipped_mismatch(right) == 0.0

    # a duplicate of the 10th neighbour is as near: shipping it instead is not a mistake
    base = np.vstack([small_dataset.base, small_dataset.base[exact[0, 9]]])
    tied = exact[:1].copy()
    tied[0, 9] = len(base) - 1
    ds = replace(small_dataset, base=base, queries=small_dataset.queries[:1], neighbors=tied)
    assert _shipped_mismatch(ds) == 0.0


@pytest.mark.parametrize("fmt, loader", [
    ("hdf5", lambda p: Hdf5(path=str(p))),
    ("parquet", lambda p: Parquet(path=str(p), metric="l2")),
    ("fvecs", lambda p: Vecs(base=f"{p}_base.fvecs", queries=f"{p}_query.fvecs",
                             groundtruth=f"{p}_groundtruth.ivecs", metric="l2")),
    ("fbin", lambda p: Fbin(base=f"{p}_base.fbin", queries=f"{p}_query.fbin",
                            groundtruth=f"{p}_groundtruth.bin", metric="l2")),
])
def test_export_then_load_gives_the_same_dataset(tmp_path, small_dataset, fmt, loader):
    neighbors = _exact(small_dataset.base, small_dataset.queries, 10)
    distances = np.zeros(neighbors.shape, dtype=np.float32)
    target = tmp_path / ("out.hdf5" if fmt == "hdf5" else "out")
    files = export.export_dataset(small_dataset, target, fmt, neighbors, distances)
    assert files and all(f.exists() for f in files)
    back = loader(target).load()
    np.testing.assert_array_equal(back.base, small_dataset.base)
    np.testing.assert_array_equal(back.queries, small_dataset.queries)
    np.testing.assert_array_equal(back.neighbors, neighbors)
    assert back.metric == "l2" and back.fingerprint() == small_dataset.fingerprint()
