"""The lsa loader: TF-IDF + truncated SVD fitted on the corpus, cached like the embed loader."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from vecbench.datasets import lsa
from vecbench.datasets.base import PathResolver
from vecbench.core.errors import ConfigError
from vecbench.core.registry import datasets

DATA = os.environ.get("VECBENCH_DATA")

DOCS = [("d1", "Cats", "Cats purr and sleep on warm sofas."),
        ("d2", "Dogs", "Dogs bark at the postman and chase cats."),
        ("d3", "Fish", "Fish swim in cold water and breathe with gills."),
        ("d4", "Birds", "Birds sing at dawn and fly south in winter."),
        ("d5", "Cats again", "A sleeping cat purrs; cats love warm places."),
        ("d6", "Water", "Cold water rivers carry fish downstream.")]
QUERIES = [("q1", "why do cats purr"), ("q2", "unjudged question"),
           ("q3", "fish in cold water")]


def write_collection(root: Path, queries=QUERIES) -> None:
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in DOCS))
    (root / "queries.jsonl").write_text("".join(
        json.dumps({"_id": q, "text": text}) + "\n" for q, text in queries))
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td5\t1\nq3\td3\t1\n")


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("VECBENCH_CACHE", str(tmp_path / "cache"))  # a cache of its own
    write_collection(tmp_path / "tiny")
    return tmp_path


def load(root: Path, **params):
    return datasets.get("lsa")(path="tiny", **params).load(PathResolver(root))


def test_shapes_names_normalization_and_judgments(tiny):
    ds = load(tiny, dim=3)
    assert ds.base.shape == (6, 3) and ds.queries.shape == (2, 3)
    assert ds.base.dtype == np.float32 and ds.metric == "cos"
    assert ds.name == "tiny-lsa-3" and ds.info["model"] == "lsa-3"
    np.testing.assert_allclose(np.linalg.norm(ds.base, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ds.queries, axis=1), 1.0, rtol=1e-5)
    assert list(ds.query_ids) == ["q1", "q3"] and list(ds.base_ids) == [d[0] for d in DOCS]
    assert ds.qrels == {"q1": {"d1": 1, "d5": 1}, "q3": {"d3": 1}}
    # the space is meaningful: each judged query's nearest document is a relevant one
    top = np.argmax(ds.queries @ ds.base.T, axis=1)
    assert [DOCS[i][0] for i in top] in (["d1", "d3"], ["d5", "d3"])


def test_deterministic_for_a_seed(tiny, monkeypatch):
    first = load(tiny, dim=4)
    monkeypatch.setenv("VECBENCH_CACHE", str(tiny / "other-cache"))  # compute afresh
    again = load(tiny, dim=4)
    assert again.info["embeddings"] != first.info["embeddings"]
    np.testing.assert_array_equal(again.base, first.base)
    np.testing.assert_array_equal(again.queries, first.queries)


def test_queries_are_not_used_in_fitting(tiny):
    before = load(tiny, dim=4)
    write_collection(tiny / "tiny", [("q1", "gills gills gills winter dawn"),
                                     ("q3", "postman sofas rivers")])
    after = load(tiny, dim=4)
    assert after.info["embeddings"] != before.info["embeddings"]  # new key: recomputed
    np.testing.assert_array_equal(after.base, before.base)
    assert not np.allclose(after.queries, before.queries)


def test_cache_is_reused_and_keyed_by_parameters(tiny, monkeypatch):
    first = load(tiny, dim=3)
    meta = json.loads((Path(first.info["embeddings"]) / "meta.json").read_text())
    assert meta["dim"] == 3 and meta["n_docs"] == 6 and meta["stop_words"] is True
    monkeypatch.setattr(lsa.Lsa, "fit_transform", lambda *a: pytest.fail("fitted again"))
    again = load(tiny, dim=3)
    assert again.info["embeddings"] == first.info["embeddings"]
    np.testing.assert_array_equal(again.base, first.base)
    monkeypatch.undo()
    monkeypatch.setenv("VECBENCH_CACHE", str(tiny / "cache"))
    keys = {load(tiny, **params).info["embeddings"]
            for params in ({"dim": 3}, {"dim": 2}, {"dim": 3, "stop_words": False},
                           {"dim": 3, "seed": 1}, {"dim": 3, "fields": ["text"]})}
    assert len(keys) == 5


def test_stop_words_are_optional(tiny):
    with_stops = load(tiny, dim=3, stop_words=False)
    meta = json.loads((Path(with_stops.info["embeddings"]) / "meta.json").read_text())
    without = json.loads((Path(load(tiny, dim=3).info["embeddings"]) / "meta.json").read_text())
    assert meta["n_terms"] > without["n_terms"]


@pytest.mark.parametrize("dim", [0, -4, 2.5, "256", True, None])
def test_bad_dim_is_a_config_error_naming_it(dim):
    with pytest.raises(ConfigError, match=r"^dim: expected an integer >= 1"):
        datasets.get("lsa")(path="tiny", dim=dim)


def test_dim_beyond_the_corpus_is_a_config_error(tiny):
    with pytest.raises(ConfigError, match=r"^dim: expected at most 6 \(the corpus has 6 "
                                          r"documents and \d+ terms\), got 7"):
        load(tiny, dim=7)


def test_bad_other_parameters():
    with pytest.raises(ConfigError, match="min_df"):
        datasets.get("lsa")(path="tiny", min_df=0)
    with pytest.raises(ConfigError, match="stop_words"):
        datasets.get("lsa")(path="tiny", stop_words="english")


@pytest.mark.skipif(not DATA or not os.path.isdir(os.path.join(DATA or "", "cranfield")),
                    reason="VECBENCH_DATA not set or has no cranfield folder (real data)")
def test_cranfield_with_judgments(tmp_path, monkeypatch):
    monkeypatch.setenv("VECBENCH_CACHE", str(tmp_path / "cache"))
    ds = datasets.get("lsa")(path="cranfield", dim=64).load(PathResolver(tmp_path))
    assert ds.base.shape[1] == 64 and ds.qrels and len(ds.queries) == len(ds.query_ids)
