"""`vecbench datasets list|info|fetch` and `vecbench export` (round trip through the loaders)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import yaml

from vecbench.datasets.base import PathResolver
from vecbench.compute.groundtruth import exact_knn
from vecbench.core.registry import datasets
from helpers import run_cli as run

DATA = os.environ.get("VECBENCH_DATA")  # CI sets VECBENCH_DATA=../shared/datasets
needs_data = pytest.mark.skipif(
    not DATA or not os.path.isdir(os.path.join(DATA, "scifact")),
    reason="VECBENCH_DATA not set or has no scifact folder (real data)")


def test_list_shows_loaders_and_recipes(capsys):
    code, out, _ = run(capsys, "datasets", "list")
    assert code == 0
    loaders = out.splitlines()[0]
    for name in datasets.names():
        assert name in loaders
    for recipe in ("sift-128-euclidean", "beir-scifact", "scifact-sentences", "mnist-test"):
        assert f"  {recipe} " in out


def test_info_on_a_builtin(capsys):
    code, out, _ = run(capsys, "datasets", "info", "digits: {n_queries: 100}")
    assert code == 0
    ds = datasets.get("digits")(n_queries=100).load()
    assert f"base:            {len(ds.base)} x 64 float32" in out
    assert "queries:         100 x 64" in out
    assert "metric:          l2" in out
    assert "qrels:           none" in out


def test_info_counts_what_the_guards_count(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(0)
    base = rng.standard_normal((120, 6)).astype(np.float32)
    base[[10, 11]] = base[3]
    base[50] = 0.0
    queries = np.vstack([base[:2], rng.standard_normal((3, 6)).astype(np.float32)])
    np.save(tmp_path / "b.npy", base)
    np.save(tmp_path / "q.npy", queries)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "datasets", "info", "npy: {base: b.npy, queries: q.npy, metric: cos}")
    assert code == 0
    assert "duplicates:      2 base rows repeat an earlier row (1 distinct vectors)" in out
    assert "zero vectors:    1 in base, 0 in queries" in out
    assert "queries in base: 2" in out
    assert out.count("warning:") == 3


def write_beir(root):
    """5 documents, 3 queries of which q1 and q3 have judgments (q3 only a zero grade)."""
    rng = np.random.default_rng(0)
    (root / "qrels").mkdir(parents=True)
    (root / "embeddings" / "m").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": f"d{i}", "title": "", "text": f"doc {i}"}) + "\n" for i in range(5)))
    (root / "queries.jsonl").write_text("".join(
        json.dumps({"_id": f"q{i}", "text": f"query {i}"}) + "\n" for i in (1, 2, 3)))
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t1\nq3\td4\t0\n")
    np.save(root / "embeddings" / "m" / "corpus.npy", rng.standard_normal((5, 4)).astype("f4"))
    np.save(root / "embeddings" / "m" / "queries.npy", rng.standard_normal((3, 4)).astype("f4"))


def test_info_reports_judgments_of_a_recipe(tmp_path, capsys, monkeypatch):
    write_beir(tmp_path / "data" / "tiny")
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "r.yaml").write_text(yaml.safe_dump({"recipes": {"tiny-text": {
        "dataset": {"beir": {"path": "tiny", "embeddings": "m"}}}}}))
    monkeypatch.setenv("VECBENCH_RECIPES", str(tmp_path / "recipes"))
    monkeypatch.setenv("VECBENCH_DATA", str(tmp_path / "data"))
    code, out, _ = run(capsys, "datasets", "info", "tiny-text")
    assert code == 0
    assert "queries:         2 x 4" in out  # judged queries only
    assert "qrels:           yes; 1 of 2 queries have a relevant judgment; 3 judgments, " \
           "grades [0, 1, 2]" in out


@pytest.mark.parametrize("spec, message", [
    ("npy: {base: b.npy}", "SPEC.npy.queries: expected a non-empty string, got nothing"),
    ("digits: {n_queries: x}", "SPEC.digits.n_queries: expected an integer"),
    ("digitz", "SPEC: unknown dataset or recipe 'digitz' (did you mean 'digits'?)"),
    ("digits: {", "SPEC: "),
    ("recipe: {name: scifakt}", "SPEC.recipe.name: unknown recipe 'scifakt' (did you mean"),
])
def test_bad_specs_are_one_line_config_errors(capsys, spec, message):
    code, out, err = run(capsys, "datasets", "info", spec)
    assert code == 2 and out == ""
    assert err.startswith(f"vecbench: error: {message}") and err.count("\n") == 1


def test_fetch_of_a_local_recipe_downloads_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("VECBENCH_DATA", str(tmp_path))
    code, out, err = run(capsys, "datasets", "fetch", "cacm")
    assert code == 0 and out == "" and "nothing to download" in err
    assert run(capsys, "datasets", "fetch", "nope")[0] == 2


@pytest.mark.parametrize("metric", ["l2", "cos"])
def test_export_hdf5_round_trip(tmp_path, capsys, metric):
    out_file = tmp_path / "digits.hdf5"
    code, out, _ = run(capsys, "export", f"digits: {{n_queries: 60, metric: {metric}}}",
                       str(out_file), "--format", "hdf5", "--k", "20")
    assert code == 0 and out.strip() == str(out_file)
    original = datasets.get("digits")(n_queries=60, metric=metric).load()
    back = datasets.get("hdf5")(path=str(out_file)).load(PathResolver(tmp_path))
    assert back.metric == metric
    truth = exact_knn(original.base, original.queries, 20, metric)
    np.testing.assert_array_equal(back.neighbors, truth.ids)
    if metric == "l2":
        np.testing.assert_array_equal(back.base, original.base)
        np.testing.assert_array_equal(back.queries, original.queries)
    else:  # the loader normalizes unit vectors again, which may move the last bit
        np.testing.assert_allclose(back.base, original.base, rtol=0, atol=1e-7)
        np.testing.assert_allclose(back.queries, original.queries, rtol=0, atol=1e-7)

    import h5py

    with h5py.File(out_file) as f:  # the file holds exactly the vectors searched
        np.testing.assert_array_equal(f["train"][...], original.base)
        np.testing.assert_array_equal(f["test"][...], original.queries)
        distances = f["distances"][...]  # as ann-benchmarks writes them
    expected = np.sqrt(truth.distances) if metric == "l2" else 1.0 - truth.distances
    np.testing.assert_allclose(distances, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fmt, spec", [
    ("fvecs", {"vecs": {"base": "x_base.fvecs", "queries": "x_query.fvecs",
                        "groundtruth": "x_groundtruth.ivecs", "metric": "l2"}}),
    ("fbin", {"fbin": {"base": "x_base.fbin", "queries": "x_query.fbin",
                       "groundtruth": "x_groundtruth.bin", "metric": "l2"}}),
    ("parquet", {"parquet": {"path": "x", "metric": "l2"}}),
])
def test_export_other_formats_read_back(tmp_path, capsys, fmt, spec):
    code, out, _ = run(capsys, "export", "synthetic: {n_base: 500, n_queries: 30, dim: 12}",
                       str(tmp_path / "x"), "--format", fmt, "--k", "10")
    assert code == 0 and len(out.splitlines()) >= 3
    original = datasets.get("synthetic")(n_base=500, n_queries=30, dim=12).load()
    name, params = next(iter(spec.items()))
    back = datasets.get(name)(**params).load(PathResolver(tmp_path))
    np.testing.assert_array_equal(back.base, original.base)
    np.testing.assert_array_equal(back.neighbors,
                                  exact_knn(original.base, original.queries, 10, "l2").ids)


@pytest.mark.realdata
@needs_data
def test_info_on_shared_scifact(capsys):
    code, out, _ = run(capsys, "datasets", "info", "scifact")
    assert code == 0
    assert "base:            5183 x 384 float32" in out  # the README's 5,183 abstracts
    assert "qrels:           yes; 300 of 300 queries" in out
