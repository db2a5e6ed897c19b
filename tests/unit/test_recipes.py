"""Recipes: the shipped YAMLs parse; fetch verifies checksums and layout (file:// URLs, no network)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import textwrap
import zipfile

import numpy as np
import pytest
import yaml

from vecbench.datasets import recipes
from vecbench.datasets.formats_tables import write_hdf5
from vecbench.core.errors import ConfigError, DataError
from vecbench.run.experiment import build_experiment, expand_dataset
from vecbench.core.registry import datasets

DATA = os.environ.get("VECBENCH_DATA")  # CI sets VECBENCH_DATA=../shared/datasets
needs_data = pytest.mark.skipif(
    not DATA or not os.path.isdir(os.path.join(DATA, "mnist-test")),
    reason="VECBENCH_DATA not set or has no mnist-test folder (real data)")


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A recipe folder searched before the shipped ones, and an empty data folder."""
    (tmp_path / "recipes").mkdir()
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("VECBENCH_RECIPES", str(tmp_path / "recipes"))
    monkeypatch.setenv("VECBENCH_DATA", str(tmp_path / "data"))
    return tmp_path


def add_recipe(env, name, body, file="test.yaml"):
    path = env / "recipes" / file
    raw = yaml.safe_load(path.read_text()) if path.exists() else {"recipes": {}}
    raw["recipes"][name] = body
    path.write_text(yaml.safe_dump(raw))


def tiny_hdf5(path, n=300, nq=20, dim=8):
    from vecbench.datasets.base import finish
    from vecbench.compute.groundtruth import exact_knn

    rng = np.random.default_rng(0)
    ds = finish("tiny", rng.standard_normal((n, dim)).astype(np.float32),
                rng.standard_normal((nq, dim)).astype(np.float32), "l2")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_hdf5(ds, path, exact_knn(ds.base, ds.queries, 10, "l2").ids)
    return ds


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hdf5_recipe(source, sha=None, **extra):
    return {"description": "tiny", "expect": {"base": 300, "queries": 20, "dim": 8},
            "files": [{"url": source.as_uri(), "path": "ann/tiny.hdf5", "layout": "hdf5",
                       "sha256": sha, **extra}],
            "dataset": {"hdf5": {"path": "ann/tiny.hdf5"}}}


# --- the shipped recipes ---------------------------------------------------------------------------

def test_shipped_recipes_parse_and_validate(monkeypatch):
    monkeypatch.delenv("VECBENCH_RECIPES", raising=False)
    shipped = recipes.load_recipes()
    for name in ["sift-128-euclidean", "glove-100-angular", "fashion-mnist-784-euclidean",
                 "nytimes-256-angular", "gist-960-euclidean", "mnist-784-euclidean",
                 "deep-image-96-angular", "beir-scifact", "beir-nfcorpus", "beir-fiqa",
                 "beir-arguana", "beir-scidocs", "beir-trec-covid", "scifact",
                 "scifact-sentences", "cranfield", "cisi", "cacm", "mnist-test"]:
        assert name in shipped, name
    for name, recipe in shipped.items():
        assert len(expand_dataset(recipe.entry(), name)) == 1  # parameters valid, no data read
        for file in recipe.files:
            if file.layout == "hdf5":
                assert file.url == f"http://ann-benchmarks.com/{name}.hdf5"
                assert set(recipe.expect) == {"base", "queries", "dim"}
            if file.layout == "beir-zip":
                assert file.url.endswith(f"/BEIR/datasets/{name.removeprefix('beir-')}.zip")
                assert file.md5 is not None and len(file.md5) == 32
            assert file.sha256 is None  # none is published: trust on first use


@pytest.mark.parametrize("body, message", [
    ({"dataset": {"digits": {}}, "files": [{"url": "u", "path": "p", "sha256": "abc"}]},
     "recipes.bad.files[0].sha256: expected null or 64 hex digits"),
    ({"dataset": {"digits": {}}, "colour": "red"}, "recipes.bad.colour: unknown parameter"),
    ({"dataset": "digits"}, "recipes.bad.dataset: expected a dataset entry"),
    ({"dataset": {"digits": {}}, "files": [{"url": "u", "path": "p", "layout": "tar"}]},
     "recipes.bad.files[0].layout: expected one of hdf5"),
])
def test_bad_recipes_name_file_and_path(env, body, message):
    add_recipe(env, "bad", body)
    with pytest.raises(ConfigError) as err:
        recipes.load_recipes()
    assert message in str(err.value) and "test.yaml" in str(err.value)


def test_unknown_recipe_suggests_a_name():
    with pytest.raises(ConfigError, match="did you mean 'sift-128-euclidean'"):
        datasets.get("recipe")(name="sift-128-euclidian")


# --- fetch -----------------------------------------------------------------------------------------

def test_fetch_records_checksum_on_first_use_then_verifies(env):
    source = env / "src" / "tiny.hdf5"
    tiny = tiny_hdf5(source)
    add_recipe(env, "tiny-ann", hdf5_recipe(source))
    log = []
    (target,) = recipes.fetch("tiny-ann", log=log.append)
    assert target == env / "data" / "ann" / "tiny.hdf5"
    lock = json.loads((env / "data" / recipes.LOCK_NAME).read_text())
    assert lock["ann/tiny.hdf5"]["sha256"] == sha256(source)
    assert lock["ann/tiny.hdf5"]["size"] == source.stat().st_size
    assert any("trust on first use" in line for line in log)

    # fetched data loads through the recipe loader, from the data folder
    ds = datasets.get("recipe")(name="tiny-ann").load()
    np.testing.assert_array_equal(ds.base, tiny.base)

    # a second fetch verifies the file in place (the source is gone: nothing is downloaded)
    source.unlink()
    log.clear()
    recipes.fetch("tiny-ann", log=log.append)
    assert any("verified against vecbench-data.lock" in line for line in log)

    # a file changed after first use is caught, and left for the user to inspect
    data = bytearray(target.read_bytes())
    data[-5] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(DataError, match="sha256 .*expected .*vecbench-data.lock"):
        recipes.fetch("tiny-ann")
    assert target.exists()


def test_corrupt_download_is_removed(env):
    source = env / "src" / "tiny.hdf5"
    tiny_hdf5(source)
    good = sha256(source)
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 0xFF
    source.write_bytes(bytes(data))
    add_recipe(env, "tiny-ann", hdf5_recipe(source, sha=good))
    with pytest.raises(DataError, match=f"expected {good} \\(from the recipe\\)"):
        recipes.fetch("tiny-ann")
    assert list((env / "data" / "ann").iterdir()) == []  # no partial file, no target
    assert not (env / "data" / recipes.LOCK_NAME).exists()


def test_truncated_first_download_fails_the_layout_check(env):
    source = env / "src" / "tiny.hdf5"
    tiny_hdf5(source)
    source.write_bytes(source.read_bytes()[:2000])
    add_recipe(env, "tiny-ann", hdf5_recipe(source))
    with pytest.raises(DataError, match="not a readable HDF5 file"):
        recipes.fetch("tiny-ann")
    assert list((env / "data" / "ann").iterdir()) == []
    assert not (env / "data" / recipes.LOCK_NAME).exists()  # nothing trusted


def test_size_md5_and_expected_shape_are_checked(env):
    source = env / "src" / "tiny.hdf5"
    tiny_hdf5(source)
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    add_recipe(env, "wrong-size", hdf5_recipe(source, size=source.stat().st_size + 1))
    with pytest.raises(DataError, match="bytes; expected"):
        recipes.fetch("wrong-size")
    add_recipe(env, "wrong-md5", hdf5_recipe(source, md5="0" * 32))
    with pytest.raises(DataError, match=f"md5 {md5}; expected 0{{32}} \\(from the published md5"):
        recipes.fetch("wrong-md5")
    body = hdf5_recipe(source, md5=md5)
    body["expect"]["dim"] = 9
    add_recipe(env, "wrong-dim", body)
    with pytest.raises(DataError, match="dim = 8; expected 9"):
        recipes.fetch("wrong-dim")
    assert list((env / "data" / "ann").iterdir()) == []


def test_unreachable_url(env):
    add_recipe(env, "gone", hdf5_recipe(env / "src" / "missing.hdf5"))
    with pytest.raises(DataError, match="download failed"):
        recipes.fetch("gone")
    assert list((env / "data" / "ann").iterdir()) == []


def beir_zip(path, with_qrels=True, extra_member=None):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("tiny/corpus.jsonl", "".join(
            json.dumps({"_id": f"d{i}", "title": "", "text": f"doc {i}"}) + "\n" for i in range(5)))
        archive.writestr("tiny/queries.jsonl", json.dumps({"_id": "q1", "text": "q"}) + "\n")
        if with_qrels:
            archive.writestr("tiny/qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td2\t1\n")
        rng = np.random.default_rng(0)
        for name, rows in (("corpus", 5), ("queries", 1)):
            array = io.BytesIO()
            np.save(array, rng.standard_normal((rows, 4)).astype(np.float32))
            archive.writestr(f"tiny/embeddings/m/{name}.npy", array.getvalue())
        if extra_member:
            archive.writestr(extra_member, "x")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())


def beir_recipe(source):
    return {"files": [{"url": source.as_uri(), "path": "beir/tiny.zip", "layout": "beir-zip",
                       "extract": "beir", "md5": hashlib.md5(source.read_bytes()).hexdigest()}],
            "dataset": {"beir": {"path": "beir/tiny", "embeddings": "m"}}}


def test_beir_zip_is_verified_and_unpacked(env):
    source = env / "src" / "tiny.zip"
    beir_zip(source)
    add_recipe(env, "tiny-beir", beir_recipe(source))
    recipes.fetch("tiny-beir", log=lambda line: None)
    assert (env / "data" / "beir" / "tiny" / "qrels" / "test.tsv").exists()
    ds = datasets.get("recipe")(name="tiny-beir").load()
    assert list(ds.query_ids) == ["q1"] and len(ds.base) == 5


@pytest.mark.parametrize("kwargs, message", [
    ({"with_qrels": False}, "expected the BEIR layout"),
    ({"extra_member": "../evil.txt"}, "points outside"),
])
def test_bad_zips_are_refused(env, kwargs, message):
    source = env / "src" / "tiny.zip"
    beir_zip(source, **kwargs)
    add_recipe(env, "tiny-beir", beir_recipe(source))
    with pytest.raises(DataError, match=message):
        recipes.fetch("tiny-beir", log=lambda line: None)
    assert not (env / "evil.txt").exists() and not (env / "data" / "evil.txt").exists()
    assert list((env / "data" / "beir").iterdir()) == []
    assert not (env / "data" / recipes.LOCK_NAME).exists()


def test_local_recipe_needs_no_download_and_says_where_data_is(env):
    add_recipe(env, "here", {"dataset": {"npy": {"base": "b.npy", "queries": "q.npy"}}})
    log = []
    assert recipes.fetch("here", log=log.append) == []
    assert "nothing to download" in log[0]
    with pytest.raises(DataError, match="no such file.*set VECBENCH_DATA"):
        datasets.get("recipe")(name="here").load()


# --- the recipe loader -----------------------------------------------------------------------------

def test_holdout_splits_uint8_images_with_labels(env):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(400, 16), dtype=np.uint8)
    labels = rng.integers(0, 10, size=400).astype(np.uint8)
    np.save(env / "data" / "images.npy", images)
    np.save(env / "data" / "labels.npy", labels)
    add_recipe(env, "tiny-images", {
        "holdout": {"n_queries": 50, "seed": 3},
        "dataset": {"npy": {"base": "images.npy", "queries": "images.npy",
                            "labels": "labels.npy"}}})
    ds = datasets.get("recipe")(name="tiny-images").load()
    assert ds.name == "tiny-images" and ds.base.dtype == np.float32
    assert (len(ds.base), len(ds.queries)) == (350, 50)
    rows = np.sort(np.random.default_rng(3).permutation(400)[:50])
    np.testing.assert_array_equal(ds.queries, images[rows].astype(np.float32))
    np.testing.assert_array_equal(ds.query_labels, labels[rows])
    assert len(ds.labels) == 350
    assert sorted(np.concatenate([ds.labels, ds.query_labels])) == sorted(labels)


def test_recipe_in_an_experiment(env, tmp_path):
    from vecbench.evaluate import results
    from vecbench.run import stages

    rng = np.random.default_rng(0)
    np.save(env / "data" / "b.npy", rng.standard_normal((200, 8)).astype(np.float32))
    np.save(env / "data" / "q.npy", rng.standard_normal((10, 8)).astype(np.float32))
    add_recipe(env, "tiny-npy", {"dataset": {"npy": {"base": "b.npy", "queries": "q.npy"}}})
    experiment = build_experiment(yaml.safe_load(textwrap.dedent("""
        name: r
        datasets: [{recipe: {name: tiny-npy}}]
        indexes: [{flat: {}}]
    """)), base_dir=str(tmp_path))
    outcome = stages.run_unit(experiment.units[0], threads=1)
    assert outcome.record.status == "ok", outcome.record.reason
    assert results.outcome_rows(outcome)[0]["recall@10"] == 1.0
    assert outcome.record.dataset.n_base == 200


@pytest.mark.realdata
@needs_data
def test_mnist_test_recipe_on_real_data():
    ds = datasets.get("recipe")(name="mnist-test").load()
    assert len(ds.base) + len(ds.queries) == 10_000 and ds.dim == 784
    assert ds.base.dtype == np.float32 and ds.base.max() <= 255 and ds.base.min() >= 0
    assert set(np.unique(ds.labels)) == set(range(10))
