"""Inputs that are not what they claim, side arrays that do not fit, folders that cannot be
used, and what is read back: every case is one line naming the file (exit 2), a recorded
warning, or a rerun, never a traceback, a hang or a silently wrong table (issue: reliability,
classes 3, 4, 9, 10 and 11)."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

from vecbench.cli import commands as cli
from vecbench.run import records
from cli_checks import TINY, beir_folder, one_line

GOOD = np.random.default_rng(0).standard_normal((30, 4)).astype(np.float32)


def info(capsys, spec, *named):
    return one_line(capsys, ["datasets", "info", spec], *named)


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def npy_pair(tmp_path):
    base, queries = tmp_path / "base.npy", tmp_path / "q.npy"
    np.save(base, GOOD)
    np.save(queries, GOOD[:5])
    return base, queries


def npy_spec(base, queries, **extra):
    more = "".join(f", {k}: '{v}'" for k, v in extra.items())
    return f"npy: {{base: '{base}', queries: '{queries}'{more}}}"


# ---------------------------------------------------------------------------------------------
# 3. Files that are not what they claim

def _rows_appended(p: Path) -> None:   # the header says 30 rows, the file holds 31
    p.write_bytes(p.read_bytes() + GOOD[0].tobytes())


def _npz(p: Path) -> None:
    with open(p, "wb") as handle:
        np.savez(handle, base=GOOD)


NPY_CLAIMS = {
    "more rows than the header": (_rows_appended, "header says shape (30, 4)"),
    "npz archive": (_npz, ".npz archive"),
    "one value cut off": (lambda p: p.write_bytes(p.read_bytes()[:-4]), "bytes"),
}


@pytest.mark.parametrize("case", list(NPY_CLAIMS))
def test_npy_size_must_match_its_header(capsys, tmp_path, case):
    damage, expected = NPY_CLAIMS[case]
    base, queries = npy_pair(tmp_path)
    damage(base)
    info(capsys, npy_spec(base, queries), "base.npy", expected)


def test_beir_embeddings_size_must_match_their_header(capsys, tmp_path):

    root = beir_folder(tmp_path)
    _rows_appended(root / "embeddings" / "m" / "corpus.npy")
    info(capsys, f"beir: {{path: '{root}', embeddings: m}}", "corpus.npy", "header says")


SPECIAL = {
    "dev zero": lambda tmp: Path("/dev/zero"),
    "fifo": lambda tmp: (os.mkfifo(tmp / "pipe.npy"), tmp / "pipe.npy")[1],
}


@pytest.mark.parametrize("loader", ["npy", "fbin", "vecs", "hdf5", "parquet"])
@pytest.mark.parametrize("kind", list(SPECIAL))
def test_special_files_are_refused_before_they_are_opened(capsys, tmp_path, kind, loader):
    special = SPECIAL[kind](tmp_path)
    specs = {"npy": f"npy: {{base: '{special}', queries: '{special}'}}",
             "fbin": f"fbin: {{base: '{special}', queries: '{special}', metric: l2}}",
             "vecs": f"vecs: {{base: '{special}', queries: '{special}', metric: l2}}",
             "hdf5": f"hdf5: {{path: '{special}'}}",
             "parquet": f"parquet: {{base: '{special}', queries: '{special}', metric: l2}}"}
    line = info(capsys, specs[loader], special)
    assert "FIFO" in line or "character device" in line


def test_special_file_is_refused_by_run_before_it_is_hashed(capsys, tmp_path):
    base, queries = npy_pair(tmp_path)
    os.mkfifo(tmp_path / "labels.npy")
    exp = write(tmp_path / "exp.yaml", f"""
        name: fifo
        k: 3
        datasets: [{{npy: {{base: '{base}', queries: '{queries}', labels: labels.npy}}}}]
        indexes: [flat: {{}}]
        """)
    one_line(capsys, ["run", exp, "--results", tmp_path / "r", "--quiet"], "labels.npy",
             "FIFO")


def test_special_file_inside_a_beir_folder(capsys, tmp_path):

    root = beir_folder(tmp_path)
    (root / "corpus.jsonl").unlink()
    os.mkfifo(root / "corpus.jsonl")
    info(capsys, f"beir: {{path: '{root}', embeddings: m}}", "corpus.jsonl", "FIFO")


def _hdf5(path: Path, chunked: bool = False) -> Path:
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = "euclidean"
        options = {"chunks": (5, 4), "compression": "gzip"} if chunked else {}
        f.create_dataset("train", data=GOOD, **options)
        f.create_dataset("test", data=GOOD[:5], **options)
    return path


def test_hdf5_truncated_data_block(capsys, tmp_path):
    path = _hdf5(tmp_path / "a.hdf5")
    h5py = pytest.importorskip("h5py")
    with h5py.File(path) as f:
        end = f["test"].id.get_offset() + GOOD[:5].nbytes
    path.write_bytes(path.read_bytes()[:end - 8])
    info(capsys, f"hdf5: {{path: '{path}'}}", "a.hdf5")


def test_hdf5_corrupt_compressed_block(capsys, tmp_path):
    path = _hdf5(tmp_path / "a.hdf5", chunked=True)
    h5py = pytest.importorskip("h5py")
    with h5py.File(path) as f:
        offset, size = f["train"].id.get_chunk_info(0).byte_offset, \
            f["train"].id.get_chunk_info(0).size
    data = bytearray(path.read_bytes())
    data[offset:offset + size] = os.urandom(size)
    path.write_bytes(bytes(data))
    info(capsys, f"hdf5: {{path: '{path}'}}", "a.hdf5", "corrupt HDF5")


# ---------------------------------------------------------------------------------------------
# 4. Arrays beside the vectors are checked against them at load, in one place

LABELS = {
    "too few rows": np.arange(10),
    "too many rows": np.arange(31),
    "two-d": np.zeros((30, 2)),
}


@pytest.mark.parametrize("case", list(LABELS))
def test_labels_must_fit_the_base(capsys, tmp_path, case):
    base, queries = npy_pair(tmp_path)
    np.save(tmp_path / "labels.npy", LABELS[case])
    info(capsys, npy_spec(base, queries, labels=tmp_path / "labels.npy"), "labels.npy",
         "(30,)")


def test_labels_that_fit_load(capsys, tmp_path):
    base, queries = npy_pair(tmp_path)
    np.save(tmp_path / "labels.npy", np.arange(30) % 3)
    assert cli.main(["datasets", "info", npy_spec(base, queries,
                                                  labels=tmp_path / "labels.npy")]) == 0
    assert "labels:          3 classes" in capsys.readouterr().out


def test_labels_too_short_are_refused_by_run_not_crashed_in_a_unit(capsys, tmp_path):
    base, queries = npy_pair(tmp_path)
    np.save(tmp_path / "labels.npy", np.arange(10))
    exp = write(tmp_path / "exp.yaml", f"""
        name: labels
        k: 3
        datasets: [{{npy: {{base: '{base}', queries: '{queries}', labels: labels.npy}}}}]
        indexes: [hnswlib: {{build: {{M: 4}}}}]
        orderings: [category]
        """)
    one_line(capsys, ["run", exp, "--results", tmp_path / "r", "--quiet"], "labels.npy",
             "(30,)")
    assert not list((tmp_path / "r" / "runs").glob("*.json"))


@pytest.mark.parametrize("what", ["query_labels", "base_ids", "query_ids", "neighbors"])
def test_every_side_array_is_checked_in_finish(what):
    from vecbench.datasets.base import finish
    from vecbench.core.errors import DataError

    bad = {"neighbors": np.zeros((4, 3), np.int64)}.get(what, np.arange(4))
    with pytest.raises(DataError, match=what):
        finish("d", GOOD, GOOD[:5], "l2", **{what: bad})


def test_qrels_of_unknown_queries_are_refused():
    from vecbench.datasets.base import finish
    from vecbench.core.errors import DataError

    ids = {"base_ids": np.arange(30).astype(str), "query_ids": np.arange(5).astype(str)}
    with pytest.raises(DataError, match="'q9'"):
        finish("d", GOOD, GOOD[:5], "l2", qrels={"q9": {"1": 1}}, **ids)


# ---------------------------------------------------------------------------------------------
# 10. What is read back is what was written




@pytest.fixture(scope="module")
def done(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("done")
    exp = write(tmp / "exp.yaml", TINY)
    assert cli.main(["run", str(exp), "--results", str(tmp / "results"), "--quiet"]) == 0
    return exp, tmp / "results"


@pytest.fixture
def results(done, tmp_path):
    exp, source = done
    shutil.copytree(source, tmp_path / "results")
    shutil.copy(exp, tmp_path / "exp.yaml")
    return tmp_path / "exp.yaml", tmp_path / "results"


def test_record_without_its_checksum_is_not_trusted(capsys, results):
    import json

    exp, folder = results
    record = sorted((folder / "runs").glob("*.json"))[0]
    data = json.loads(record.read_text())
    data["build"]["build_s"] += 100.0
    del data[records.DIGEST_FIELD]
    record.write_text(json.dumps(data))
    assert cli.main(["collect", str(folder)]) == 0
    captured = capsys.readouterr()
    assert "skipped 1" in captured.err and record.name in captured.err
    assert records.DIGEST_FIELD in captured.err and "1 rows" in captured.out
    assert cli.main(["run", str(exp), "--results", str(folder), "--quiet"]) == 0
    assert "ran 1 build units, 1 already done; 2 rows" in capsys.readouterr().out
    assert records.DIGEST_FIELD in json.loads(record.read_text())


def _swap_in_another_datasets_reference(reference: Path, tmp_path: Path) -> None:
    other = write(tmp_path / "other.yaml", TINY.replace("seed", "x").replace(
        "dim: 8}", "dim: 8, seed: 7}"))
    assert cli.main(["run", str(other), "--results", str(tmp_path / "other"), "--quiet"]) == 0
    shutil.copy(next((tmp_path / "other" / "reference").glob("*.npz")), reference)


REFERENCE_DAMAGE = {
    "truncated": lambda p, tmp: p.write_bytes(p.read_bytes()[:50]),
    "emptied": lambda p, tmp: p.write_bytes(b""),
    "altered": lambda p, tmp: _edit_npz(p),
    "another dataset's": _swap_in_another_datasets_reference,
}


def _edit_npz(path: Path) -> None:
    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays["truth_ids"][:, :2] = arrays["truth_ids"][:, 1::-1].copy()
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


@pytest.mark.parametrize("case", list(REFERENCE_DAMAGE))
def test_damaged_reference_is_recomputed_by_run(capsys, results, tmp_path, case):
    exp, folder = results
    reference = next((folder / "reference").glob("*.npz"))
    good = records._reference_file(reference)[0]
    capsys.readouterr()
    REFERENCE_DAMAGE[case](reference, tmp_path)
    assert cli.main(["run", str(exp), "--results", str(folder), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "ran 2 build units" in captured.out
    assert reference.name in captured.err   # one warning naming it
    again = records._reference_file(reference)[0]
    np.testing.assert_array_equal(again.truth_ids, good.truth_ids)
    assert again.binding == good.binding
    assert cli.main(["collect", str(folder)]) == 0


@pytest.mark.parametrize("case", ["altered", "another dataset's"])
def test_damaged_reference_is_named_by_collect(capsys, results, tmp_path, case):
    _, folder = results
    reference = next((folder / "reference").glob("*.npz"))
    REFERENCE_DAMAGE[case](reference, tmp_path)
    capsys.readouterr()
    one_line(capsys, ["collect", folder], reference.name)


def test_reference_bound_to_other_data_is_refused_even_with_a_matching_digest(results):
    """A record whose reference digest was rewritten to a foreign file's still does not read it."""
    import json

    _, folder = results
    reference = next((folder / "reference").glob("*.npz"))
    for path in (folder / "runs").glob("*.json"):
        data = json.loads(path.read_text())
        data["reference"]["binding"] = "another-fingerprint"
        data[records.DIGEST_FIELD] = records.record_digest(data)
        path.write_text(json.dumps(data))
    from vecbench.core.errors import DataError

    with pytest.raises(DataError, match="other data"):
        records.load_reference(folder, records.read_record(path))
    assert reference.is_file()


# ---------------------------------------------------------------------------------------------
# 11. Content keys follow every content change

def _beir(root: Path, qrels: str) -> Path:
    import json

    rng = np.random.default_rng(3)
    (root / "qrels").mkdir(parents=True)
    (root / "embeddings" / "m").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": f"d{i}", "text": f"doc {i}"}) + "\n" for i in range(120)))
    (root / "queries.jsonl").write_text("".join(
        json.dumps({"_id": f"q{i}", "text": f"query {i}"}) + "\n" for i in range(4)))
    (root / "qrels" / "test.tsv").write_text(qrels)
    np.save(root / "embeddings" / "m" / "corpus.npy", rng.standard_normal((120, 8), np.float32))
    np.save(root / "embeddings" / "m" / "queries.npy", rng.standard_normal((4, 8), np.float32))
    return root


def _ndcg(capsys, exp: Path, results: Path) -> float:
    import pandas as pd

    assert cli.main(["run", str(exp), "--results", str(results), "--quiet"]) == 0
    capsys.readouterr()
    return float(pd.read_csv(results / "results.csv")["ndcg@10"].iloc[0])


def test_edited_qrels_get_their_own_reference(capsys, tmp_path):
    rng = np.random.default_rng(3)
    corpus, queries = (rng.standard_normal((n, 8), np.float32) for n in (120, 4))
    unit = [x / np.linalg.norm(x, axis=1, keepdims=True) for x in (corpus, queries)]
    nearest = (unit[1] @ unit[0].T).argmax(axis=1)   # judged relevant: nDCG@10 = 1
    old = "q\tc\ts\n" + "".join(f"q{i}\td{(n + 1) % 120}\t1\n" for i, n in enumerate(nearest))
    new = "q\tc\ts\n" + "".join(f"q{i}\td{n}\t1\n" for i, n in enumerate(nearest))
    exp = write(tmp_path / "exp.yaml", """
        name: judged
        k: 10
        datasets: [{beir: {path: data, embeddings: m}}]
        indexes: [flat: {}]
        """)
    root = _beir(tmp_path / "data", old)
    before = _ndcg(capsys, exp, tmp_path / "r")
    (root / "qrels" / "test.tsv").write_text(new)
    edited = _ndcg(capsys, exp, tmp_path / "r")
    shutil.rmtree(root)
    _beir(root, new)
    fresh = _ndcg(capsys, exp, tmp_path / "fresh")
    assert edited == fresh == 1.0 != before
    assert len(list((tmp_path / "r" / "reference").glob("*.npz"))) == 2


def _same_size_same_mtime(path: Path) -> None:
    stat = path.stat()
    np.save(path, GOOD[::-1].copy())
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_rehash_catches_a_rewrite_that_kept_size_and_mtime(capsys, tmp_path):
    import pandas as pd

    base, queries = npy_pair(tmp_path)
    exp = write(tmp_path / "exp.yaml", f"""
        name: memo
        k: 3
        datasets: [{{npy: {{base: '{base}', queries: '{queries}'}}}}]
        indexes: [flat: {{}}]
        """)
    run = ["run", str(exp), "--results", str(tmp_path / "r"), "--quiet"]
    assert cli.main(run) == 0
    table = tmp_path / "r" / "results.csv"
    assert pd.read_csv(table)["data_hashing"].tolist() == ["full"]
    _same_size_same_mtime(base)
    assert cli.main(run) == 0
    assert "ran 0 build units, 1 already done" in capsys.readouterr().out
    assert cli.main(["collect", str(tmp_path / "r")]) == 0
    assert pd.read_csv(table)["data_hashing"].tolist() == ["size+mtime"]  # the table says so
    assert cli.main(run + ["--rehash"]) == 0
    assert "ran 1 build units" in capsys.readouterr().out
    assert pd.read_csv(table)["data_hashing"].tolist() == ["full"]


def test_data_rewritten_during_a_sweep_is_not_tabled(capsys, tmp_path, monkeypatch):
    from vecbench.run import runner

    base, queries = npy_pair(tmp_path)
    exp = write(tmp_path / "exp.yaml", f"""
        name: moving
        k: 3
        datasets: [{{npy: {{base: '{base}', queries: '{queries}'}}}}]
        indexes: [flat: {{}}, hnswlib: {{build: {{M: 4}}}}]
        """)
    dispatch = runner._dispatch

    def rewrite_midway(*args, **kwargs):
        dispatch(*args, **kwargs)
        np.save(base, GOOD * 2)

    monkeypatch.setattr(runner, "_dispatch", rewrite_midway)
    one_line(capsys, ["run", exp, "--results", tmp_path / "r", "--quiet"], "base.npy",
             "changed while the sweep ran")
    assert len(list((tmp_path / "r" / "runs").glob("*.json"))) == 2   # records kept
    assert not (tmp_path / "r" / "results.csv").exists()              # no mixed table


# ---------------------------------------------------------------------------------------------
# 9. Degenerate inputs and folders that cannot be used

def test_quantizers_and_rescoring_on_a_one_vector_base(capsys, tmp_path):
    exp = write(tmp_path / "one.yaml", """
        name: one
        k: 1
        datasets: [{synthetic: {n_base: 1, n_queries: 2, dim: 8}}]
        pipelines: [[int8: {}], [binary: {}]]
        indexes: [flat: {}, {flat: {rescore: [{oversample: 2, with: int8}]}}]
        """)
    assert cli.main(["run", str(exp), "--results", str(tmp_path / "r"), "--quiet"]) == 0
    assert "ran 4 build units" in capsys.readouterr().out


def test_judged_corpus_smaller_than_the_judged_depth(capsys, tmp_path):
    import pandas as pd

    _beir(tmp_path / "data", "q\tc\ts\nq0\td1\t1\n")
    corpus = np.load(tmp_path / "data" / "embeddings" / "m" / "corpus.npy")[:60]
    np.save(tmp_path / "data" / "embeddings" / "m" / "corpus.npy", corpus)
    (tmp_path / "data" / "corpus.jsonl").write_text("".join(
        f'{{"_id": "d{i}", "text": "doc"}}\n' for i in range(60)))
    exp = write(tmp_path / "exp.yaml", """
        name: small
        k: 10
        datasets: [{beir: {path: data, embeddings: m}}]
        indexes: [flat: {}]
        """)
    assert cli.main(["run", str(exp), "--results", str(tmp_path / "r"), "--quiet"]) == 0
    assert pd.read_csv(tmp_path / "r" / "results.csv")["judged_recall@100"].iloc[0] == 1.0


@pytest.fixture
def fresh_cache_check(monkeypatch):
    """The cache folder's usability is checked once per process and folder: forget it."""
    from vecbench.core import cache

    monkeypatch.setattr(cache, "_PROBLEMS", {})


@pytest.fixture
def read_only_folder(tmp_path):
    """An empty folder nobody (root included) can create files in: chattr +i."""
    import subprocess

    folder = tmp_path / "read-only"
    folder.mkdir()
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        pytest.skip("chattr +i is not available here (needs root on ext2/3/4, xfs, btrfs)")
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.fixture
def full_folder(tmp_path):
    """A 64 KiB tmpfs: full after a few writes."""
    import subprocess

    folder = tmp_path / "full"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


CACHE_USERS = """
name: nocache
k: 3
datasets: [{synthetic: {n_base: 300, n_queries: 5, dim: 8}}]
pipelines: [[], [pca: {n_components: 4}], [int8: {}]]
indexes: [flat: {}, {hnswlib: {build: {M: 8}}}]
orderings: [original, lid_desc]
"""


def _runs_without_the_cache(capsys, tmp_path, cache_folder, monkeypatch):
    monkeypatch.setenv("VECBENCH_CACHE", str(cache_folder))
    exp = write(tmp_path / "exp.yaml", CACHE_USERS)
    assert cli.main(["run", str(exp), "--results", str(tmp_path / "r"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "ran 12 build units" in captured.out
    assert "running without the cache" in captured.err and str(cache_folder) in captured.err
    for path in (tmp_path / "r" / "runs").glob("*.json"):
        record = records.read_record(path)
        assert record.status == "ok"
        assert any("running without the cache" in w for w in record.warnings)


def test_read_only_cache_folder(capsys, tmp_path, monkeypatch, fresh_cache_check,
                                read_only_folder):
    _runs_without_the_cache(capsys, tmp_path, read_only_folder, monkeypatch)


def test_cache_naming_a_regular_file(capsys, tmp_path, monkeypatch, fresh_cache_check):
    target = tmp_path / "cache"
    target.write_bytes(b"precious")
    _runs_without_the_cache(capsys, tmp_path, target, monkeypatch)
    assert target.read_bytes() == b"precious"


def test_fitted_pipeline_entry_replaced_by_a_folder(capsys, tmp_path, monkeypatch,
                                                   fresh_cache_check):
    monkeypatch.setenv("VECBENCH_CACHE", str(tmp_path / "cache"))
    exp = write(tmp_path / "exp.yaml", CACHE_USERS)
    run = ["run", str(exp), "--results", str(tmp_path / "r"), "--quiet"]
    assert cli.main(run) == 0
    fits = sorted((tmp_path / "cache" / "fits").glob("*.pkl"))
    assert fits
    for fit in fits:
        fit.unlink()
        (fit / "inside").mkdir(parents=True)
    capsys.readouterr()
    assert cli.main(run + ["--force", "--in-process"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert all(fit.is_file() for fit in fits)
    heard = [line for _, record, _ in records.iter_records(tmp_path / "r")
             for line in record.library_output]  # the warning, kept with its unit
    assert any(line.startswith("RuntimeWarning:") and "folder in place" in line
               for line in heard), heard


@pytest.mark.parametrize("engine", ["chroma", "lancedb"])
@pytest.mark.parametrize("where", ["read_only_folder", "full_folder"])
def test_engine_folder_that_cannot_be_written(capsys, tmp_path, request, engine, where):
    pytest.importorskip({"chroma": "chromadb", "lancedb": "lancedb"}[engine])
    folder = request.getfixturevalue(where)
    extra = ", index_type: IVF_HNSW_SQ" if engine == "lancedb" else ""
    exp = write(tmp_path / "exp.yaml", f"""
        name: engine
        k: 3
        datasets: [{{synthetic: {{n_base: 300, n_queries: 5, dim: 8}}}}]
        indexes: [{{{engine}: {{build: {{folder: '{folder}'{extra}}}}}}}]
        """)
    assert cli.main(["run", str(exp), "--results", str(tmp_path / "r"), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    record = records.read_record(next((tmp_path / "r" / "runs").glob("*.json")))
    assert record.status == "error", record.traceback
    assert engine in record.reason and str(folder) in record.reason
    assert f"indexes[0].{engine}.build.folder" in record.reason
