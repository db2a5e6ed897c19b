"""Bad input and failing machines (issue 15): every case ends in exactly one line naming the file,
YAML path or argument and the value, exit 2 (or a recorded unit error, or one cache warning and
a rebuild), never a traceback, and nothing already computed is lost.

Cases run the CLI in this process (``cli.main``) on tiny data; a subprocess only where the
process itself is the point (Ctrl-C, a killed parent, two concurrent runs).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vecbench.cli import commands as cli

from vecbench.run import records
from vecbench.core.errors import ConfigError, VecbenchError
from cache_damage import edit_cache_entry
from cli_checks import GOOD, TINY, beir_folder, one_line, snapshot
from helpers import write

def records_kept(before: dict, folder: Path) -> None:
    after = snapshot(folder)
    for name, stat in before.items():
        if name.startswith("runs/"):
            assert after.get(name) == stat, f"{name} lost or changed"


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """A results folder whose two units are complete (computed once per module)."""
    tmp = tmp_path_factory.mktemp("done")
    exp = tmp / "exp.yaml"
    exp.write_text(TINY)
    assert cli.main(["run", str(exp), "--results", str(tmp / "results"), "--quiet"]) == 0
    return exp, tmp / "results"


@pytest.fixture
def results(done, tmp_path):
    """A private copy of the complete results folder, free to damage."""
    exp, source = done
    copy = tmp_path / "results"
    shutil.copytree(source, copy)
    yaml_copy = tmp_path / "exp.yaml"
    shutil.copy(exp, yaml_copy)
    return yaml_copy, copy


# ---------------------------------------------------------------------------------------------
# 1. Files read: experiment YAML

YAML_FILES = {
    "non-utf8": (b"\xff\xfe name: x\n", "not UTF-8"),
    "binary": (b"name: x\n\x00\x01\x02", "binary"),
    "empty": (b"", "expected a mapping"),
    "truncated": (b"name: x\ndatasets: [digits\n", "expected valid YAML"),
    "top-level list": (b"- digits\n- flat\n", "expected a mapping"),
    "deep flow nesting": (b"k: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nesting deeper"),
    "deep block nesting": ("".join(f"{'  ' * i}a{i}:\n" for i in range(200)).encode(),
                           "nesting deeper"),
    "unknown key": (b"name: x\ndatasetz: [digits]\n", "datasetz"),
    "k zero": (TINY.replace("k: 5", "k: 0").encode(), "k"),
    "k text": (TINY.replace("k: 5", "k: ten").encode(), "'ten'"),
}


@pytest.mark.parametrize("case", list(YAML_FILES))
def test_experiment_yaml(capsys, tmp_path, case):
    content, expected = YAML_FILES[case]
    path = write(tmp_path, content)
    one_line(capsys, ["validate", path], path.name, expected)


def test_experiment_yaml_is_a_directory(capsys, tmp_path):
    one_line(capsys, ["validate", tmp_path], tmp_path, "directory")


def test_experiment_yaml_missing(capsys, tmp_path):
    one_line(capsys, ["run", tmp_path / "nope.yaml"], "nope.yaml", "no such")


# ---------------------------------------------------------------------------------------------
# 4. Containment: names, row filters, spec baselines

@pytest.mark.parametrize("name", ["a/b", "..", "/tmp/evil", "../up", ".hidden"])
def test_experiment_name_stays_one_folder(capsys, tmp_path, name):
    path = write(tmp_path, TINY.replace("name: tiny", f"name: {json.dumps(name)}"))
    one_line(capsys, ["validate", path], "name", repr(name))


FILTERS = ["index.to_csv('/tmp/vecbench-escape.csv')", "__import__('os').system('true')",
           "@pd", "`search.ef`.max() > 1", "dataset[0] == 's'", "(lambda: 1)() == 1"]


@pytest.mark.parametrize("where", FILTERS)
def test_row_filter_allows_comparisons_only(capsys, results, where):
    _, folder = results
    before = snapshot(folder)
    line = one_line(capsys, ["plot", folder, "-o", folder / "p.png", "--where", where],
                    "--where")
    assert "not an allowed row filter" in line or "not a valid row filter" in line
    assert not Path("/tmp/vecbench-escape.csv").exists()
    records_kept(before, folder)


def test_row_filter_comparisons_still_work(capsys, results):
    _, folder = results
    code = cli.main(["plot", str(folder), "-o", str(folder / "p.png"), "--where",
                     "index in ['flat', 'hnswlib'] and not (k != 5) and `search.ef` != 3"])
    assert code == 0, capsys.readouterr().err


def test_paired_baseline_is_a_filter_too(capsys, results):
    _, folder = results
    one_line(capsys, ["paired", folder, "--baseline", "index.to_csv('x.csv')",
                      "--metric", "recall@5"], "--baseline")
    assert not (Path.cwd() / "x.csv").exists()


@pytest.mark.parametrize("baseline", ["../outside.json", "/etc/passwd", "a/../../b.json"])
def test_spec_baseline_stays_inside_the_spec_folder(tmp_path, baseline):
    from vecbench.cli.pytest_plugin import build_spec

    raw = {"dataset": {"synthetic": {"n_base": 50}}, "index": {"flat": {}},
           "baseline": baseline}
    with pytest.raises(ConfigError) as info:
        build_spec(raw, "x.vecbench.yaml", str(tmp_path))
    assert "baseline" in str(info.value) and baseline in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("content", [b"\xff\xfe", b"", b"[1, 2]", b'{"rows": 3}'])
def test_spec_baseline_file_unreadable(tmp_path, content):
    from vecbench.core.errors import DataError
    from vecbench.cli.pytest_plugin import check_baseline

    path = tmp_path / "base.json"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        check_baseline([{"dataset": "d"}], path, "recall@10:-0.01", timing=False)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------
# 1. Files read: results tables, run records, raw arrays, reference answers

TABLES = {
    "non-utf8 csv": ("results.csv", b"\xff\xfe\x00dataset\n"),
    "empty csv": ("results.csv", b""),
    "csv of another shape": ("results.csv", b"a,b\n1,2\n"),
    "random parquet": ("results.parquet", os.urandom(256)),
    "empty parquet": ("results.parquet", b""),
    "text in a metric column": ("results.csv", b"dataset,index,recall@10,qps\nx,flat,abc,1\n"),
}


@pytest.mark.parametrize("command", ["compare", "plot", "best", "report"])
@pytest.mark.parametrize("case", list(TABLES))
def test_results_tables(capsys, tmp_path, command, case):
    name, content = TABLES[case]
    path = tmp_path / name
    path.write_bytes(content)
    argv = {"compare": ["compare", path, path],
            "plot": ["plot", path, "-o", tmp_path / "p.png"],
            "best": ["best", path, "--maximize", "recall@10"],
            "report": ["report", path]}[command]
    one_line(capsys, argv, path)


def test_truncated_parquet_table(capsys, results):
    _, folder = results
    table = folder / "results.parquet"
    table.write_bytes(table.read_bytes()[: table.stat().st_size // 2])
    one_line(capsys, ["compare", table, table], table, "not a readable results table")


def test_table_that_is_a_directory(capsys, tmp_path):
    (tmp_path / "results.csv").mkdir()
    one_line(capsys, ["compare", tmp_path / "results.csv", tmp_path / "results.csv"],
             "results.csv")


def test_not_a_results_folder(capsys, tmp_path):
    one_line(capsys, ["collect", tmp_path], tmp_path, "runs")


def test_collect_of_a_file(capsys, tmp_path):
    path = write(tmp_path, b"x")
    one_line(capsys, ["collect", path], path)


def test_unit_list_is_not_utf8(capsys, results):
    _, folder = results
    (folder / "units.json").write_bytes(b"\xff\xfe\x00")
    before = snapshot(folder)
    one_line(capsys, ["collect", folder], "units.json")
    records_kept(before, folder)


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "directory"])
def test_damaged_raw_arrays_rerun_only_that_unit(capsys, results, damage):
    exp, folder = results
    raw = sorted((folder / "runs").glob("*.npz"))[0]
    other = sorted((folder / "runs").glob("*.json"))[1]
    kept = other.stat().st_mtime_ns
    data = bytearray(raw.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
        raw.write_bytes(bytes(data))
    elif damage == "truncate":
        raw.write_bytes(bytes(data[:100]))
    elif damage == "empty":
        raw.write_bytes(b"")
    else:
        raw.unlink()
        raw.mkdir()
    code = cli.main(["run", str(exp), "--results", str(folder), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "ran 1 build units, 1 already done" in out, out
    assert other.stat().st_mtime_ns == kept   # the good unit was not touched
    assert raw.is_file()


@pytest.mark.parametrize("content", [b"", b"\xff\xfe", b"{}", b"[]", b'{"schema": 2}'])
def test_damaged_record_reruns(capsys, results, content):
    exp, folder = results
    record = sorted((folder / "runs").glob("*.json"))[0]
    record.write_bytes(content)
    assert cli.main(["run", str(exp), "--results", str(folder), "--quiet"]) == 0
    assert "ran 1 build units" in capsys.readouterr().out
    assert records.read_record(record).status == "ok"


def test_damaged_reference_is_named_by_collect(capsys, results):
    _, folder = results
    reference = next((folder / "reference").glob("*.npz"))
    reference.write_bytes(reference.read_bytes()[:50])
    before = snapshot(folder)
    one_line(capsys, ["collect", folder], reference.name, "checksum")
    records_kept(before, folder)


# ---------------------------------------------------------------------------------------------
# 1. Files read: data files in every format (`datasets info` loads them)

def info(capsys, spec, *named):
    return one_line(capsys, ["datasets", "info", spec], *named)


def npy(tmp_path, name, array):
    path = tmp_path / name
    np.save(path, array)
    return path


def npy_spec(base, queries):
    return f"npy: {{base: '{base}', queries: '{queries}'}}"


NPY_BAD = {
    "text": lambda p: p.write_text("not an array"),
    "empty": lambda p: p.write_bytes(b""),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:200]),
    "directory": lambda p: (p.unlink(), p.mkdir()),
    "one-d": lambda p: np.save(p, np.arange(10, dtype=np.float32)),
    "three-d": lambda p: np.save(p, np.zeros((2, 3, 4), np.float32)),
    "objects": lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True),
    "nan": lambda p: np.save(p, np.full((30, 4), np.nan, np.float32)),
    "strings": lambda p: np.save(p, np.array([["a", "b"]])),
}


@pytest.mark.parametrize("case", list(NPY_BAD))
def test_npy_files(capsys, tmp_path, case):
    base = npy(tmp_path, "base.npy", GOOD)
    queries = npy(tmp_path, "q.npy", GOOD[:5])
    NPY_BAD[case](base)
    info(capsys, npy_spec(base, queries), "base.npy")


def test_npy_dimension_mismatch(capsys, tmp_path):
    base = npy(tmp_path, "base.npy", GOOD)
    queries = npy(tmp_path, "q.npy", np.zeros((5, 3), np.float32))
    info(capsys, npy_spec(base, queries), "q.npy")


def _bin(path, array, header=None):
    n, d = array.shape if header is None else header
    path.write_bytes(np.array([n, d], np.uint32).tobytes() + array.tobytes())
    return path


BIN_BAD = {
    "fbin truncated": ("base.fbin", lambda p: _bin(p, GOOD).write_bytes(p.read_bytes()[:50])),
    "fbin header too large": ("base.fbin", lambda p: _bin(p, GOOD, (10 ** 9, 4))),
    "fbin empty": ("base.fbin", lambda p: p.write_bytes(b"")),
    "u8bin short header": ("base.u8bin", lambda p: p.write_bytes(b"\x01\x00")),
    "i8bin directory": ("base.i8bin", lambda p: p.mkdir()),
    "fbin zero dim": ("base.fbin", lambda p: _bin(p, np.zeros((0, 0), np.float32), (5, 0))),
}


@pytest.mark.parametrize("case", list(BIN_BAD))
def test_bin_files(capsys, tmp_path, case):
    name, damage = BIN_BAD[case]
    base = tmp_path / name
    damage(base)
    queries = _bin(tmp_path / ("q" + Path(name).suffix), GOOD[:5].astype(
        {".fbin": np.float32, ".u8bin": np.uint8, ".i8bin": np.int8}[Path(name).suffix]))
    info(capsys, f"fbin: {{base: '{base}', queries: '{queries}', metric: l2}}", name)


def _vecs(path, array):
    with open(path, "wb") as handle:
        for row in array:
            handle.write(np.int32(len(row)).tobytes() + row.tobytes())
    return path


VECS_BAD = {
    "fvecs truncated": ("base.fvecs", lambda p: _vecs(p, GOOD).write_bytes(p.read_bytes()[:-3])),
    "fvecs ragged": ("base.fvecs", lambda p: p.write_bytes(
        _vecs(p, GOOD).read_bytes() + np.int32(7).tobytes() + np.zeros(7, np.float32).tobytes())),
    "fvecs empty": ("base.fvecs", lambda p: p.write_bytes(b"")),
    "fvecs negative dim": ("base.fvecs", lambda p: p.write_bytes(np.int32(-4).tobytes() * 5)),
    "ivecs directory": ("base.ivecs", lambda p: p.mkdir()),
    "bvecs truncated": ("base.bvecs", lambda p: p.write_bytes(
        np.int32(4).tobytes() + b"\x01\x02")),
}


@pytest.mark.parametrize("case", list(VECS_BAD))
def test_vecs_files(capsys, tmp_path, case):
    name, damage = VECS_BAD[case]
    base = tmp_path / name
    damage(base)
    suffix = Path(name).suffix
    dtype = {".fvecs": np.float32, ".ivecs": np.int32, ".bvecs": np.uint8}[suffix]
    if suffix == ".bvecs":
        queries = tmp_path / "q.bvecs"
        with open(queries, "wb") as handle:
            for row in GOOD[:5].astype(np.uint8):
                handle.write(np.int32(len(row)).tobytes() + row.tobytes())
    else:
        queries = _vecs(tmp_path / f"q{suffix}", GOOD[:5].astype(dtype))
    info(capsys, f"vecs: {{base: '{base}', queries: '{queries}', metric: l2}}", name)


def test_hdf5_files(capsys, tmp_path):
    h5py = pytest.importorskip("h5py")
    not_hdf5 = write(tmp_path, b"plain text", "a.hdf5")
    info(capsys, f"hdf5: {{path: '{not_hdf5}'}}", "a.hdf5")
    empty = write(tmp_path, b"", "b.hdf5")
    info(capsys, f"hdf5: {{path: '{empty}'}}", "b.hdf5")
    missing_test = tmp_path / "c.hdf5"
    with h5py.File(missing_test, "w") as f:
        f["train"] = GOOD
        f.attrs["distance"] = "euclidean"
    info(capsys, f"hdf5: {{path: '{missing_test}'}}", "c.hdf5", "test")
    (tmp_path / "d.hdf5").mkdir()
    info(capsys, f"hdf5: {{path: '{tmp_path / 'd.hdf5'}'}}", "d.hdf5")


def test_parquet_files(capsys, tmp_path):
    corrupt = write(tmp_path, os.urandom(300), "train.parquet")
    queries = write(tmp_path, os.urandom(300), "test.parquet")
    info(capsys, f"parquet: {{base: '{corrupt}', queries: '{queries}', metric: l2}}",
         "train.parquet")
    import pandas as pd

    pd.DataFrame({"id": [1, 2], "other": [1.0, 2.0]}).to_parquet(corrupt)
    info(capsys, f"parquet: {{base: '{corrupt}', queries: '{corrupt}', metric: l2}}",
         "train.parquet")


BEIR_BAD = {
    "corpus non-utf8": ("corpus.jsonl", b"\xff\xfe{}\n"),
    "corpus bad json": ("corpus.jsonl", b'{"_id": "d0", "text": \n'),
    "queries binary": ("queries.jsonl", b"\x00\x01\x02\x03"),
    "qrels non-utf8": ("qrels/test.tsv", b"query-id\tcorpus-id\tscore\n\xff\xfe\t1\n"),
    "qrels bad score": ("qrels/test.tsv", b"query-id\tcorpus-id\tscore\nq0\td1\tmany\n"),
    "qrels infinite score": ("qrels/test.tsv", b"query-id\tcorpus-id\tscore\nq0\td1\tinf\n"),
    "qrels nan score": ("qrels/test.tsv", b"query-id\tcorpus-id\tscore\nq0\td1\tnan\n"),
    "qrels unicode score": ("qrels/test.tsv",
                            "query-id\tcorpus-id\tscore\nq0\td1\t\u0663\n".encode()),
    "embeddings wrong rows": ("embeddings/m/corpus.npy", None),
}


@pytest.mark.parametrize("case", list(BEIR_BAD))
def test_beir_files(capsys, tmp_path, case):
    root = beir_folder(tmp_path)
    name, content = BEIR_BAD[case]
    if content is None:
        np.save(root / name, GOOD[:2])
    else:
        (root / name).write_bytes(content)
    info(capsys, f"beir: {{path: '{root}', embeddings: m}}", Path(name).name)


# ---------------------------------------------------------------------------------------------
# 2. Bounds before allocation

BOUNDS = {
    "synthetic n_base": ("synthetic: {n_base: 1000000000000, dim: 8}", "n_base"),
    "synthetic dim": ("synthetic: {n_base: 100, dim: 1000000000}", "n_base"),
    "synthetic n_clusters": ("synthetic: {n_base: 10, n_clusters: 11}", "n_clusters"),
}


@pytest.mark.parametrize("case", list(BOUNDS))
def test_dataset_bounds(capsys, case):
    spec, named = BOUNDS[case]
    info(capsys, spec, named, "expected")


def test_hnswlib_M_is_bounded_where_hnswlib_would_cap_it(capsys, tmp_path):
    path = write(tmp_path, TINY.replace("M: 8", "M: 100000"))
    one_line(capsys, ["validate", path], "M", "100000", "10000")


def test_k_larger_than_the_base(capsys, tmp_path):
    path = write(tmp_path, TINY.replace("k: 5", "k: 1000000"))
    one_line(capsys, ["run", path, "--results", tmp_path / "r", "--quiet"], "k = 1000000",
             "300")


def test_bases_too_small_are_recorded_unit_errors(capsys, tmp_path):
    path = write(tmp_path, """
        name: small
        k: 1
        datasets: [{synthetic: {n_base: 3, n_queries: 2, dim: 8}}]
        pipelines: [[], [pca: {n_components: 4}]]
        indexes: [{faiss_ivf: {build: {nlist: 64}}}, {hnswlib: {build: {M: 4}}}]
        orderings: [original, {cluster: {n_clusters: 50}}]
        """)
    code = cli.main(["run", str(path), "--results", str(tmp_path / "r"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err + captured.out
    statuses = [records.read_record(p) for p in (tmp_path / "r" / "runs").glob("*.json")]
    assert len(statuses) == 8
    assert {r.status for r in statuses} <= {"ok", "error"}   # no crash: all bad input
    reasons = " ".join(r.reason or "" for r in statuses if r.status == "error")
    for expected in ("nlist=64", "n_components", "n_clusters"):
        assert expected in reasons
    assert any(r.status == "ok" for r in statuses)


# ---------------------------------------------------------------------------------------------
# 3. Caches: verified on read, one warning, rebuilt

def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "flip":
        data[len(data) // 2] ^= 0x10
        path.write_bytes(bytes(data))
    elif how == "truncate":
        path.write_bytes(bytes(data[: len(data) // 3]))
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "directory":
        path.unlink()
        (path / "inside").mkdir(parents=True)
    elif how == "edited rows":
        def zero_rows(arrays):
            name = next(n for n in sorted(arrays) if arrays[n].ndim >= 1)
            arrays[name][: len(arrays[name]) // 2] = 0
        edit_cache_entry(path, zero_rows)


DAMAGES = ["flip", "truncate", "empty", "directory", "edited rows"]


@pytest.mark.parametrize("how", DAMAGES)
def test_ground_truth_cache(capsys, tmp_path, how):
    from vecbench.compute.groundtruth import ground_truth

    rng = np.random.default_rng(1)
    base, queries = rng.standard_normal((200, 4)), rng.standard_normal((5, 4))
    first = ground_truth(base, queries, "l2", "fp", k=10, cache=tmp_path)
    entry = next((tmp_path / "groundtruth").glob("*.npz"))
    _damage(entry, how)
    capsys.readouterr()
    again = ground_truth(base, queries, "l2", "fp", k=10, cache=tmp_path)
    np.testing.assert_array_equal(again.ids, first.ids)
    warning = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(warning) == 1 and str(entry) in warning[0] and "ground truth" in warning[0]
    assert entry.is_file()   # rebuilt
    ground_truth(base, queries, "l2", "fp", k=10, cache=tmp_path)
    assert capsys.readouterr().err == ""   # the rebuilt entry verifies


@pytest.mark.parametrize("how", DAMAGES)
def test_lid_cache(capsys, tmp_path, how):
    from vecbench.compute import lid

    x = np.random.default_rng(2).standard_normal((120, 5))
    first = lid.cached_pointwise_lid("fp", x, 10, "mle", tmp_path)
    entry = next((tmp_path / "lid").glob("*.npz"))
    _damage(entry, how)
    capsys.readouterr()
    again = lid.cached_pointwise_lid("fp", x, 10, "mle", tmp_path)
    np.testing.assert_array_equal(again, first)
    warning = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(warning) == 1 and str(entry) in warning[0] and "LID" in warning[0]


def test_read_only_cache_is_one_warning_and_the_run_goes_on(capsys, tmp_path, monkeypatch):
    from vecbench.compute.groundtruth import ground_truth

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path))

    from vecbench.core import atomic

    monkeypatch.setattr(atomic, "temporary_for", refuse)  # where every write begins
    rng = np.random.default_rng(1)
    truth = ground_truth(rng.standard_normal((50, 4)), rng.standard_normal((3, 4)), "l2", "fp",
                         k=5, cache=tmp_path)
    assert truth.ids.shape == (3, 100) or truth.ids.shape[0] == 3
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "cache not written" in lines[0]
    assert not list((tmp_path / "groundtruth").glob("*"))


# ---------------------------------------------------------------------------------------------
# 5. A failing machine

def test_results_naming_an_existing_file(capsys, tmp_path):
    exp = write(tmp_path, TINY)
    target = write(tmp_path, b"precious", "table.csv")
    one_line(capsys, ["run", exp, "--results", target], target, "not a folder")
    assert target.read_bytes() == b"precious"


def test_full_disk_keeps_completed_records(capsys, results, monkeypatch):
    exp, folder = results
    exp.write_text(TINY.replace("- flat: {}", "- flat: {}\n  - faiss_hnsw: {build: {M: 8}}"))
    before = snapshot(folder)

    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(records, "write_arrays", full)
    one_line(capsys, ["run", exp, "--results", folder, "--quiet"], "No space left", "ENOSPC")
    records_kept(before, folder)
    assert len(list((folder / "runs").glob("*.json"))) == 2
    assert not list(folder.rglob(".*.tmp")) and not list(folder.rglob("*.claim"))


def test_read_only_results_when_everything_is_done_writes_nothing(capsys, results, monkeypatch):
    exp, folder = results
    before = snapshot(folder)
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    code = cli.main(["run", str(exp), "--results", str(folder), "--quiet"])
    monkeypatch.undo()
    out = capsys.readouterr().out
    assert code == 0 and "0 build units, 2 already done; table unchanged" in out
    assert snapshot(folder) == before


def test_read_only_results_with_work_to_do_is_one_line(capsys, results, monkeypatch):
    exp, folder = results
    exp.write_text(TINY.replace("k: 5", "k: 4"))
    before = snapshot(folder)

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(folder / "runs"))

    monkeypatch.setattr(records, "claim", refuse)
    one_line(capsys, ["run", exp, "--results", folder, "--quiet"], "Read-only", "runs")
    records_kept(before, folder)


def test_interrupted_writes_are_cleaned_up_by_the_next_run(capsys, results):
    exp, folder = results
    dead = 2 ** 22 + 12345   # beyond pid_max on most systems: no such process
    leftovers = [folder / "runs" / f".x.json.{dead}.tmp", folder / f".results.csv.{dead}.tmp",
                 folder / "reference" / f".r.npz.{dead}.tmp"]
    for path in leftovers:
        path.write_bytes(b"half")
    before = {p: v for p, v in snapshot(folder).items() if not p.endswith(".tmp")}
    assert cli.main(["run", str(exp), "--results", str(folder), "--quiet"]) == 0
    assert not any(path.exists() for path in leftovers)
    assert snapshot(folder) == before   # nothing else written: all units were done


def test_a_stale_claim_is_taken_over(capsys, results):
    exp, folder = results
    record = sorted((folder / "runs").glob("*.json"))[0]
    key = record.stem
    record.unlink()
    import socket

    records.claim_path(folder, key).write_text(f"{socket.gethostname()} {2 ** 22 + 7}")
    assert cli.main(["run", str(exp), "--results", str(folder), "--quiet"]) == 0
    assert "ran 1 build units" in capsys.readouterr().out
    assert record.is_file() and not records.claim_path(folder, key).exists()


# ---------------------------------------------------------------------------------------------
# 6. Interruption and concurrency (real processes)

SLOW = """
name: slow
k: 10
datasets:
  - synthetic: {n_base: 20000, n_queries: 200, dim: 32}
indexes:
  - hnswlib: {build: {M: [8, 12, 16, 24], ef_construction: 400}, search: {ef: [50]}}
"""


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True,
                           text=True).stdout.strip()
    return bool(state) and not state.startswith("Z")


def _vecbench(*argv, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "vecbench", *map(str, argv)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _wait_for_workers(process, n, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        workers = _children(process.pid)
        if len(workers) >= n:
            return workers
        time.sleep(0.2)
    raise AssertionError(f"{n} workers never started")


@pytest.mark.slow
def test_ctrl_c_with_jobs_stops_fast_and_leaves_no_worker(tmp_path):
    exp = write(tmp_path, SLOW)
    process = _vecbench("run", exp, "--results", tmp_path / "r", "--jobs", "2", "--quiet")
    workers = _wait_for_workers(process, 2)
    time.sleep(1.0)
    start = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert time.monotonic() - start < 5, err
    assert process.returncode == 130 and "Traceback" not in err, err
    time.sleep(0.5)
    assert not [pid for pid in workers if _alive(pid)]
    assert not list((tmp_path / "r").rglob("*.claim"))


@pytest.mark.slow
def test_workers_exit_when_the_parent_is_killed(tmp_path):
    exp = write(tmp_path, SLOW)
    process = _vecbench("run", exp, "--results", tmp_path / "r", "--jobs", "2", "--quiet")
    workers = _wait_for_workers(process, 2)
    process.kill()
    process.wait()
    end = time.monotonic() + 10
    while time.monotonic() < end and [pid for pid in workers if _alive(pid)]:
        time.sleep(0.2)
    assert not [pid for pid in workers if _alive(pid)]


@pytest.mark.slow
def test_two_runs_on_one_folder_compute_each_unit_once(tmp_path):
    exp = write(tmp_path, SLOW.replace("n_base: 20000", "n_base: 3000"))
    results = tmp_path / "r"
    first = _vecbench("run", exp, "--results", results, "--quiet")
    second = _vecbench("run", exp, "--results", results, "--quiet")
    outs = [p.communicate(timeout=300) for p in (first, second)]
    assert first.returncode == second.returncode == 0, outs
    ran = [int(out.split("ran ")[1].split(" build")[0]) for out, _ in outs]
    assert sum(ran) == 4, outs
    import pandas as pd

    table = pd.read_csv(results / "results.csv")
    assert len(table) == 4 and (table["status"] == "ok").all()
    assert not list(results.rglob("*.claim"))


def test_claims_are_exclusive(tmp_path):
    assert records.claim(tmp_path, "k1")
    assert records.claim_held(records.claim_path(tmp_path, "k1"))
    # this process holds it: a second claim (as another run would try) is refused
    assert not records.claim(tmp_path, "k1")
    records.release(tmp_path, "k1")
    assert not records.claim_path(tmp_path, "k1").exists()
    assert records.claim(tmp_path, "k1")


def test_vecbench_error_is_one_line_for_every_subclass():
    for error in (ConfigError("bad", "k", "f.yaml"), VecbenchError("x: y")):
        assert "\n" not in str(error)


# ---------------------------------------------------------------------------------------------
# Outputs of the wrong kind are refused before any work; pytest spec files read like YAML

OUTPUTS = {
    "report --out a file": lambda f, t: ["report", f, "--out", t / "exp.yaml"],
    "export hdf5 into a folder": lambda f, t: [
        "export", "synthetic: {n_base: 50, dim: 4, n_queries: 5, intrinsic_dim: 2}", t,
        "--format", "hdf5"],
    "paired --csv a folder": lambda f, t: ["paired", f, "--baseline", "index == 'flat'",
                                           "--metric", "recall@5", "--csv", t],
    "plot -o a folder": lambda f, t: ["plot", f, "-o", t],
}


@pytest.mark.parametrize("case", list(OUTPUTS))
def test_outputs_of_the_wrong_kind(capsys, results, case):
    exp, folder = results
    before = snapshot(folder)
    argv = OUTPUTS[case](folder, exp.parent)
    one_line(capsys, argv, argv[argv.index(next(a for a in argv if a in (
        exp.parent / "exp.yaml", exp.parent)))])
    records_kept(before, folder)


SPEC_FILES = {
    "non-utf8": b"\xff\xfedataset: digits\n",
    "top-level list": b"- dataset\n",
    "deep": b"dataset: " + b"{a: " * 100 + b"1" + b"}" * 100 + b"\n",
    "binary": b"\x00\x00\x00",
}


@pytest.mark.parametrize("case", list(SPEC_FILES))
def test_pytest_spec_files(tmp_path, case):
    from vecbench.cli.pytest_plugin import load_spec

    path = write(tmp_path, SPEC_FILES[case], "bad.vecbench.yaml")
    with pytest.raises(VecbenchError) as info:
        load_spec(path)
    assert "bad.vecbench.yaml" in str(info.value) and "\n" not in str(info.value)


def test_export_k_is_bounded_by_the_base_before_allocation(capsys, tmp_path):
    one_line(capsys, ["export", "synthetic: {n_base: 50, dim: 4, n_queries: 5, intrinsic_dim: 2}",
                      tmp_path / "e.hdf5", "--format", "hdf5", "--k", "1000000000"],
             "--k", "1000000000", "50")
    assert not (tmp_path / "e.hdf5").exists()


def test_cache_temporaries_of_dead_writers_are_cleaned(tmp_path):
    from vecbench.core.cache import read_verified, write_verified

    stale = tmp_path / f".old.npz.{2 ** 22 + 99}.tmp"
    stale.write_bytes(b"half")
    live = tmp_path / f".busy.npz.{os.getpid()}.tmp"   # this process: a write in progress
    live.write_bytes(b"half")
    write_verified(tmp_path / "x.npz", {"a": np.arange(3)})
    assert not stale.exists() and live.exists()
    np.testing.assert_array_equal(read_verified(tmp_path / "x.npz", "test")["a"], np.arange(3))


EDITS = {
    "settings of another shape": lambda r: r.update(settings=["x"]),
    "raw file a number": lambda r: r.update(raw={"file": 5}),
    "dataset emptied": lambda r: r.update(dataset={}),
    "labels of another shape": lambda r: r.update(labels={"a": {"b": 1}}),
    "a number changed": lambda r: r["build"].update(build_s=r["build"]["build_s"] + 1),
}


@pytest.mark.parametrize("case", list(EDITS))
def test_edited_records_are_not_done_and_rerun(capsys, results, case):
    exp, folder = results
    record = sorted((folder / "runs").glob("*.json"))[0]
    data = json.loads(record.read_text())
    EDITS[case](data)
    record.write_text(json.dumps(data))
    # collect leaves it out with a note naming the file (no traceback, exit 0)
    assert cli.main(["collect", str(folder)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and record.name in captured.err
    assert "1 rows" in captured.out
    # run sees it as not done and computes that unit again
    assert cli.main(["run", str(exp), "--results", str(folder), "--quiet"]) == 0
    assert "ran 1 build units, 1 already done; 2 rows" in capsys.readouterr().out


def test_grids_are_bounded_before_they_are_expanded(capsys, tmp_path):
    axis = list(range(2, 102))
    path = write(tmp_path, TINY.replace("{M: 8}", f"{{M: {axis}, ef_construction: {axis}, "
                                                  f"seed: {list(range(100))}}}"))
    one_line(capsys, ["validate", path], "indexes[1].hnswlib.build", "1000000 combinations")
    path = write(tmp_path, TINY.replace("k: 5", "k: 5\nrepeat: 100000"))
    one_line(capsys, ["validate", path], "repeat", "200000 build units")


# ---------------------------------------------------------------------------------------------
# Pipes: a closed stdout is the end of the output, as for Unix tools (no traceback)

class _ClosedPipe:
    """A stdout whose reader has gone: every write and flush raises BrokenPipeError."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    flush = write

    def fileno(self):
        raise OSError("not a real file")


@pytest.mark.parametrize("argv", [["describe", "hnswlib"], ["list"], ["list", "indexes"],
                                  ["datasets", "list"]])
def test_closed_stdout_is_the_end(capsys, monkeypatch, argv):
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert cli.main(argv) == cli.EXIT_CLOSED_PIPE
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("argv", [["describe", "hnswlib"], ["list", "indexes"]])
def test_closed_pipe_in_a_real_process_is_quiet(argv):
    process = _vecbench(*argv)
    process.stdout.close()  # before the command writes: its first write meets a closed pipe
    err = process.stderr.read()
    assert process.wait(timeout=60) == cli.EXIT_CLOSED_PIPE, err
    assert err == ""


# ---------------------------------------------------------------------------------------------
# Metric names: one grammar (ASCII digits; @K where the metric takes a depth, never elsewhere)

BAD_METRICS = {
    "no depth": ("recall@", "has no depth"),
    "depth where none is taken": ("qps@10", "takes no depth"),
    "unicode digit": ("recall@\u00b2", "ASCII digits"),
    "arabic-indic digit": ("recall@\u0661\u0660", "ASCII digits"),
    "depth zero": ("recall@0", "out of range"),
    "leading zero": ("recall@010", "no leading zeros"),
    "huge depth": ("recall@" + "9" * 30, "out of range"),
    "missing depth for a depth metric": ("ndcg", "has no depth"),
    "quartile of a timing": ("qps_q1", "not a per-query metric"),
    "unknown": ("colour@10", "not a metric"),
    "recorded, not computed": ("build_s", "recorded at run time"),
}


@pytest.mark.parametrize("case", list(BAD_METRICS))
def test_collect_metric_names(capsys, results, case):
    _, folder = results
    name, expected = BAD_METRICS[case]
    before = snapshot(folder)
    one_line(capsys, ["collect", folder, "--metrics", f"recall@1,{name}"], "--metrics", expected)
    assert snapshot(folder) == before  # nothing rewritten


@pytest.mark.parametrize("case", [c for c in BAD_METRICS if c != "recorded, not computed"])
def test_compare_rule_metric_names(capsys, results, case):
    _, folder = results
    name, expected = BAD_METRICS[case]
    one_line(capsys, ["compare", folder, folder, "--fail", f"{name}:-1%"], "--fail", expected)


@pytest.mark.parametrize("rule", ["recall@5:-1e999", "qps:1e400%", "recall@5:-\u0663"])
def test_compare_rule_numbers_are_finite_ascii(capsys, results, rule):
    _, folder = results
    one_line(capsys, ["compare", folder, folder, "--fail", rule], "--fail")


def test_metric_names_that_stay_valid():
    from vecbench.evaluate.metrics import parse_metric

    for name in ("recall@10", "recall@10_q4", "ndcg@10", "qps", "p99_ms", "qps_spread",
                 "trustworthiness@10", "bytes_per_vector", "judged_recall@100"):
        assert parse_metric(name).column == name
    assert parse_metric("recall@10_q4").quartile == 4


def test_spec_expectation_metric_names(tmp_path):
    from vecbench.cli.pytest_plugin import parse_expectation

    for metric, value in [("recall@", 0.9), ("qps@10", 5), ("recall@\u00b2", 0.9),
                          ("recall@5", float("inf")), ("recall@5", ">= 1e999")]:
        with pytest.raises(ConfigError, match="expect"):
            parse_expectation(metric, value, 5)


CASCADES = {
    "unicode digit": ('{cascade: "int8x\u00b2"}', "cascade"),
    "leading zero": ('{cascade: "int8x01"}', "cascade"),
    "empty oversample": ('{cascade: "int8x>float32x2"}', "cascade"),
    "huge label": ('{cascade: "int8x1000000000"}', "cascade"),
    "product too large": ('{cascade: "int8x100>float32x100"}', "at most 1000"),
    "oversample 10^9": ("{oversample: 1000000000, with: float32}", "oversample"),
    "list product too large": ("{cascade: [{with: int8, oversample: 100}, "
                               "{with: float32, oversample: 20}]}", "at most 1000"),
}


@pytest.mark.parametrize("case", list(CASCADES))
def test_rescore_labels_and_oversamples(capsys, tmp_path, case):
    rescore, expected = CASCADES[case]
    path = write(tmp_path, TINY.replace("flat: {}", f"faiss_pq: {{build: {{m: 4}}, "
                                                    f"rescore: {rescore}}}"))
    one_line(capsys, ["validate", path], path.name, "rescore", expected)


# ---------------------------------------------------------------------------------------------
# Numbers: finite and bounded, from YAML, the environment and the command line

NUMBERS = {
    "min_seconds inf": ("timing: {min_seconds: .inf}", "timing.min_seconds"),
    "latency_seconds inf": ("timing: {latency_seconds: .inf}", "timing.latency_seconds"),
    "client_seconds huge": ("timing: {client_seconds: 1.0e+30}", "timing.client_seconds"),
    "min_seconds nan": ("timing: {min_seconds: .nan}", "timing.min_seconds"),
    "min_passes huge": ("timing: {min_passes: 1000000000}", "timing.min_passes"),
    "k huge": ("k: 100000000000000", "k"),
    "k thousands of digits": ("k: " + "9" * 5000, "a number of 5000 characters"),
    "seed huge": ("seed: 100000000000000000000", "seed"),
    "noise inf": ("datasets:\n  - synthetic: {n_base: 300, noise: .inf}", "noise"),
    "k_factor inf": ("indexes:\n  - faiss_rabitq: {build: {refine: true}, "
                     "search: {k_factor: .inf}}", "k_factor"),
    "k_factor huge": ("indexes:\n  - faiss_pq: {build: {m: 4, refine: true}, "
                      "search: {k_factor: 1.0e+9}}", "k_factor"),
    "factory k_factor_rf huge": ("indexes:\n  - faiss_factory: {build: {factory: 'Flat'}, "
                                 "search: {k_factor_rf: 1.0e+9}}", "k_factor_rf"),
    "ef huge": ("indexes:\n  - hnswlib: {search: {ef: 100000000000}}", "ef"),
    "umap min_dist": ("pipelines:\n  - [umap: {min_dist: 1.0e+300}]", "min_dist"),
}


def tiny_with(text: str) -> str:
    """TINY with its top-level sections that ``text`` gives replaced by ``text``'s."""
    given = {line.split(":")[0] for line in text.splitlines() if line and line[0] != " "}
    kept, skipping = [], False
    for line in TINY.strip().splitlines():
        if line and line[0] != " ":
            skipping = line.split(":")[0] in given
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n" + text + "\n"


@pytest.mark.parametrize("case", list(NUMBERS))
def test_numbers_are_finite_and_bounded(capsys, tmp_path, case):
    text, named = NUMBERS[case]
    path = write(tmp_path, tiny_with(text))
    one_line(capsys, ["validate", path], path.name, named)


@pytest.mark.parametrize("value", ["inf", "1e999", "nan", "-1", "7200", "\u0663", "1_0", "ten"])
def test_environment_numbers_go_through_the_same_checks(capsys, tmp_path, monkeypatch, value):
    monkeypatch.setenv("VECBENCH_MIN_SECONDS", value)
    path = write(tmp_path, TINY)
    one_line(capsys, ["validate", path], "VECBENCH_MIN_SECONDS", repr(value), "expected")


@pytest.mark.parametrize("variable, options", [
    ("VECBENCH_HEARTBEAT_SECONDS", []), ("VECBENCH_DASK_NO_WORKER_S", ["--executor", "dask"])])
@pytest.mark.parametrize("value", ["inf", "0", "ten"])
def test_run_environment_numbers_stop_before_any_unit(capsys, tmp_path, monkeypatch, variable,
                                                      options, value):
    monkeypatch.setenv(variable, value)
    path = write(tmp_path, TINY)
    one_line(capsys, ["run", path, "--results", tmp_path / "r", *options], variable,
             repr(value), "expected")
    assert not list((tmp_path / "r").glob("runs/*.json"))


CLI_NUMBERS = {
    "jobs zero": (["run", "X", "--jobs", "0"], "--jobs"),
    "jobs huge": (["run", "X", "--jobs", "1000000"], "--jobs"),
    "threads unicode": (["run", "X", "--threads", "\u0663"], "--threads"),
    "export k huge": (["export", "digits", "OUT", "--format", "fbin", "--k", "1" + "0" * 12],
                      "--k"),
    "lid k unicode": (["lid", "digits", "--k", "\u0661\u0660"], "--k"),
    "plot budget inf": (["plot", "R", "-o", "x.png", "--kind", "tradeoff", "--budget", "inf"],
                        "--budget"),
    "paired scale nan": (["paired", "R", "--baseline", "x == 1", "--scale", "nan"], "--scale"),
    "paired resamples huge": (["paired", "R", "--baseline", "x == 1", "--resamples",
                               "1000000000"], "--resamples"),
    "paired seed negative": (["paired", "R", "--baseline", "x == 1", "--seed", "-1"], "--seed"),
    "paired margin negative": (["paired", "R", "--baseline", "x == 1", "--margin", "-1"],
                               "--margin"),
    "paired split seed negative": (["paired", "R", "--baseline", "x == 1", "--split-seed",
                                    "-2"], "--split-seed"),
    "paired alpha above 1": (["paired", "R", "--baseline", "x == 1", "--alpha", "2"], "--alpha"),
    "best budget inf": (["best", "R", "--maximize", "qps", "--budget", "p99_ms<=1e999"],
                        "--budget"),
}


@pytest.mark.parametrize("case", list(CLI_NUMBERS))
def test_cli_numbers_are_finite_and_bounded(capsys, results, case):
    _, folder = results
    argv, option = CLI_NUMBERS[case]
    argv = [str(folder) if a == "R" else a for a in argv]
    one_line(capsys, argv, option, "expected")


def test_every_declared_number_is_bounded_above():
    """A float parameter without a declared ``high`` would take 1e300 to the library."""
    from vecbench.core.params import declared
    from vecbench.core.registry import REGISTRIES

    unbounded = []
    for kind, registry in REGISTRIES.items():
        for name in registry.names():
            try:
                component = registry.get(name)
            except Exception:  # an optional engine not installed
                continue
            for which in ("params", "search_params"):
                for param in declared(component, which):
                    if "number" in param.kind.split("|") and param.high is None and \
                            not (name == "faiss_factory" or param.nullable):
                        unbounded.append(f"{name}.{param.name}")
    assert not unbounded, unbounded


# ---------------------------------------------------------------------------------------------
# Row filters: size and nesting bounded by a scan before Python's parser or pandas see them

DEEP_FILTERS = {
    "100000 nested not": ("not " * 100_000 + "k == 5", "characters"),
    "40 nested not": ("not " * 40 + "k == 5", "nested"),
    "nested brackets": ("(" * 40 + "k == 5" + ")" * 40, "nested"),
    "nested lists": ("k in " + "[" * 40 + "]" * 40, "nested"),
    "unary minus chain": ("k == " + "-" * 40 + "5", "nested"),
    "invert chain": ("~" * 40 + "(k == 5)", "nested"),
    "long": (" or ".join(["k == 5"] * 1000), "characters"),
}


@pytest.mark.parametrize("case", list(DEEP_FILTERS))
@pytest.mark.parametrize("option", ["--where", "--baseline"])
def test_row_filters_are_bounded_before_parsing(capsys, results, case, option):
    _, folder = results
    query, expected = DEEP_FILTERS[case]
    argv = ["paired", folder, "--metric", "recall@5", "--baseline", "index == 'flat'"] \
        if option == "--where" else ["paired", folder, "--metric", "recall@5"]
    line = one_line(capsys, argv + [option, query], option, expected)
    assert len(line) < 400  # the query is cut, not echoed whole


def test_row_filters_within_bounds_still_parse(capsys, results):
    _, folder = results
    for query in ["not " * 10 + "k == 5", "(" * 10 + "k == 5" + ")" * 10, "k > -1e-5"]:
        code = cli.main(["plot", str(folder), "-o", str(folder / "x.png"), "--where", query])
        assert code == 0, capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Files written: through one helper (vecbench.core.atomic), never through a link the run did not make

def _plant_links(folder: Path, names, outside: Path) -> None:
    for name in names:
        link = folder / name
        link.unlink(missing_ok=True)
        link.symlink_to(outside)


def test_collect_never_writes_through_a_planted_link(capsys, results, tmp_path):
    _, folder = results
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    pid = os.getpid()
    predictable = [f".{name}.{pid}.tmp" for name in
                   ("results.csv", "results.parquet", "per_query.parquet")] + \
                  [f".{name}.tmp" for name in ("results.csv", "results.parquet")]
    _plant_links(folder, predictable, outside)
    _plant_links(folder, ["results.csv"], outside)  # the final name itself
    assert cli.main(["collect", str(folder)]) == 0
    assert outside.read_text() == "precious"
    assert not (folder / "results.csv").is_symlink()  # replaced, not written through
    assert "recall@5" in (folder / "results.csv").read_text()


def test_report_plots_folder_that_is_a_link_is_refused(capsys, results, tmp_path):
    _, folder = results
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (folder / "report_plots").symlink_to(elsewhere)
    one_line(capsys, ["report", folder], "report_plots", "symbolic link")
    assert list(elsewhere.iterdir()) == []


def test_atomic_writes_are_exclusive_and_leave_nothing_on_failure(tmp_path):
    from vecbench.core import atomic

    outside = tmp_path / "outside"
    outside.write_text("precious")
    target = tmp_path / "out" / "table.csv"
    target.parent.mkdir()
    target.symlink_to(outside)
    atomic.write_text(target, "new")
    assert outside.read_text() == "precious" and target.read_text() == "new"
    assert not target.is_symlink()
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask

    def fail(handle):
        handle.write(b"half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        atomic.write_with(target, fail)
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.csv"]


def test_every_write_goes_through_the_one_helper():
    """No module builds a temporary name of its own (a pid or '.tmp' in a file name), or
    opens a final path for writing: vecbench.core.atomic is the only writer."""
    import re

    package = Path(cli.__file__).parent
    pattern = re.compile(r"""getpid\(\)\}?\.tmp|\}\.tmp["']|\.part["']|write_text\(|write_bytes\(|"""
                         r"""(?<![\w.])open\([^)]*["'](w|a|x)b?\+?["']|\.savefig\((?!buffer)|"""
                         r"""to_csv\(\w|to_parquet\(\w|os\.replace\(""")
    offenders = []
    for path in package.rglob("*.py"):
        if path.name == "atomic.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if pattern.search(code) and "atomic." not in code:
                offenders.append(f"{path.relative_to(package)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
