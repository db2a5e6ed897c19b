"""The BEIR loader, on a tiny folder written here and (when present) on the real scifact."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from vecbench.datasets.base import PathResolver
from vecbench.datasets.beir import Beir
from vecbench.core.errors import ConfigError, DataError
from vecbench.core.registry import datasets

DATA = os.environ.get("VECBENCH_DATA")  # CI sets VECBENCH_DATA=../shared/datasets
needs_data = pytest.mark.skipif(
    not DATA or not os.path.isdir(os.path.join(DATA, "scifact")),
    reason="VECBENCH_DATA not set or has no scifact folder (real BEIR data)")

DOCS = ["d1", "d2", "d3", "d4", "d5", "d6"]
QUERIES = ["q1", "q2", "q3", "q4"]
QRELS = "query-id\tcorpus-id\tscore\nq3\td2\t2\nq1\td1\t1\nq1\td4\t0\nq3\td5\t1\n"


def write_beir(root, qrels=QRELS, model="tiny", dim=4, seed=0):
    """A BEIR folder: 6 documents, 4 queries of which q1 and q3 are judged in 'test'."""
    rng = np.random.default_rng(seed)
    (root / "qrels").mkdir(parents=True)
    (root / "embeddings" / model).mkdir(parents=True)
    with open(root / "corpus.jsonl", "w") as f:
        for doc in DOCS:
            f.write(json.dumps({"_id": doc, "title": f"title {doc}", "text": "text"}) + "\n")
    with open(root / "queries.jsonl", "w") as f:
        for query in QUERIES:
            f.write(json.dumps({"_id": query, "text": f"question {query}"}) + "\n")
    (root / "qrels" / "test.tsv").write_text(qrels)
    corpus = rng.standard_normal((len(DOCS), dim)).astype(np.float32) * 3
    queries = rng.standard_normal((len(QUERIES), dim)).astype(np.float32) * 3
    np.save(root / "embeddings" / model / "corpus.npy", corpus)
    np.save(root / "embeddings" / model / "queries.npy", queries)
    return corpus, queries


def test_tiny_beir_folder(tmp_path):
    corpus, queries = write_beir(tmp_path / "tiny")
    ds = datasets.get("beir")(path="tiny", embeddings="tiny").load(PathResolver(tmp_path))
    assert ds.name == "tiny-tiny" and ds.metric == "cos"
    # judged queries only, in queries.jsonl order (not qrels order: q3 comes first there)
    assert list(ds.query_ids) == ["q1", "q3"]
    assert list(ds.base_ids) == DOCS
    assert ds.qrels == {"q1": {"d1": 1, "d4": 0}, "q3": {"d2": 2, "d5": 1}}

    def unit(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    np.testing.assert_allclose(ds.queries, unit(queries[[0, 2]]), rtol=1e-6)
    np.testing.assert_allclose(ds.base, unit(corpus), rtol=1e-6)
    # train is drawn from the corpus, never from the queries
    assert len(ds.train) == len(DOCS)
    assert not np.isclose(ds.train[:, None, :], ds.queries[None]).all(-1).any()


def test_split_metric_and_name(tmp_path):
    write_beir(tmp_path / "tiny")
    (tmp_path / "tiny" / "qrels" / "dev.tsv").write_text("q4\td6\t1\n")  # no header: allowed
    ds = Beir(path=str(tmp_path / "tiny"), embeddings="tiny", split="dev", metric="ip").load()
    assert ds.name == "tiny-tiny-dev" and list(ds.query_ids) == ["q4"]
    assert not np.allclose(np.linalg.norm(ds.base, axis=1), 1.0)  # ip: not normalized


def test_missing_embeddings_lists_the_models_that_exist(tmp_path):
    write_beir(tmp_path / "tiny", model="minilm-l6")
    (tmp_path / "tiny" / "embeddings" / "bge-small").mkdir()
    with pytest.raises(DataError, match=r"embeddings/e5: no such embeddings folder; models here: "
                                        r"bge-small, minilm-l6"):
        Beir(path="tiny", embeddings="e5").load(PathResolver(tmp_path))
    with pytest.raises(DataError, match=r"qrels/train.tsv: no such file; splits here: test"):
        Beir(path="tiny", embeddings="minilm-l6", split="train").load(PathResolver(tmp_path))


@pytest.mark.parametrize("corrupt, message", [
    (lambda root: np.save(root / "embeddings/tiny/corpus.npy", np.zeros((5, 4), np.float32)),
     r"shape \(5, 4\); expected \(6, d\), one row per line of corpus.jsonl"),
    (lambda root: (root / "queries.jsonl").write_text('{"_id": "q1"}\n{"text": "no id"}\n'),
     "line 2 is not a JSON object with an '_id'"),
    (lambda root: (root / "qrels/test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\n"),
     "line 2 has 2 fields"),
    (lambda root: (root / "qrels/test.tsv").write_text("q1\td1\t1\nq1\td2\thigh\n"),
     "line 2: score 'high' is not a number"),
    (lambda root: (root / "qrels/test.tsv").write_text("q9\td1\t1\n"),
     "1 judged query ids are not in queries.jsonl"),
    (lambda root: (root / "corpus.jsonl").write_text('{"_id": "d1"}\n' * 6),
     "duplicate '_id'"),
])
def test_broken_folders_are_data_errors(tmp_path, corrupt, message):
    write_beir(tmp_path / "tiny")
    corrupt(tmp_path / "tiny")
    with pytest.raises(DataError, match=message):
        Beir(path="tiny", embeddings="tiny").load(PathResolver(tmp_path))


def test_judged_documents_missing_from_the_corpus_warn(tmp_path):
    write_beir(tmp_path / "tiny", qrels="q1\td1\t1\nq1\t0007\t1\n")
    with pytest.warns(UserWarning, match="1 judgments name documents not in corpus.jsonl "
                                         r"\(first: '0007'\)"):
        ds = Beir(path="tiny", embeddings="tiny").load(PathResolver(tmp_path))
    assert ds.qrels["q1"] == {"d1": 1, "0007": 1}  # kept: trec_eval counts it as relevant


def test_parameters_are_checked_without_data():
    with pytest.raises(ConfigError, match="embeddings: expected a non-empty string"):
        Beir(path="x", embeddings="")
    with pytest.raises(ConfigError, match="metric: expected one of l2, ip, cos"):
        Beir(path="x", embeddings="m", metric="cosine")


@needs_data
@pytest.mark.realdata
def test_real_scifact():
    ds = Beir(path=os.path.join(DATA, "scifact"), embeddings="minilm-l6").load()
    assert ds.base.shape == (5183, 384) and ds.queries.shape == (300, 384)
    assert ds.base.dtype == np.float32 and ds.base.flags.c_contiguous
    assert sum(len(docs) for docs in ds.qrels.values()) == 339
    assert set(ds.qrels) == set(ds.query_ids)
    np.testing.assert_allclose(np.linalg.norm(ds.queries, axis=1), 1.0, rtol=1e-5)
