"""Embed a text collection by latent semantic analysis: the ``lsa`` dataset loader.

A second offline "model" beside the sentence-transformers one (``embed``), so several models can
be ranked on the same BEIR folder without a network: TF-IDF (scikit-learn's ``TfidfVectorizer``,
sublinear term frequency, English stop words unless ``stop_words: false``) then a truncated SVD
to ``dim`` components (``TruncatedSVD``, randomized, seeded by ``seed``). Both are fitted on the
corpus texts only; queries are transformed with the fitted model, so they never shape the space.
Vectors are L2-normalized and compared by cosine.

Everything else is the ``embed`` loader's: documents are the ``fields`` joined by a space, the
judged queries of ``split`` are kept, and vectors are cached under
``$VECBENCH_CACHE/embeddings/<key>/`` where the key hashes the texts, the parameters and the
scikit-learn version (its randomized SVD may change between releases).
"""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

import numpy as np

from vecbench.datasets import checks
from vecbench.core.vectors import normalize_rows
from vecbench.datasets.embed import Embed, texts_digest
from vecbench.core.errors import ConfigError
from vecbench.core.params import assign

#: Bump when the way LSA vectors are computed or stored changes.
LSA_CACHE_VERSION = 1


class Lsa(Embed):
    """A BEIR folder embedded by TF-IDF + truncated SVD (see the module docstring).

    ``dim``: SVD components (at most the number of documents and of distinct terms);
    ``stop_words``: drop scikit-learn's English stop words; ``min_df``: ignore terms found in
    fewer documents; ``seed`` seeds the SVD (and, as for every loader, the train sample).
    """

    params = checks.lsa.params

    def __init__(self, path: str, dim: int = 256, split: str = "test", metric: str = "cos",
                 fields: Sequence[str] = ("title", "text"), stop_words: bool = True,
                 min_df: int = 1, seed: int = 0, name: str | None = None):
        super().__init__(path=path, model="lsa", split=split, metric=metric, fields=fields,
                         seed=seed, name=name)
        assign(self, {"dim": dim, "stop_words": stop_words, "min_df": min_df},
               checks.LSA_OWN)

    def identity(self) -> str:
        return f"lsa-{self.dim}"

    def _settings(self) -> dict:
        import sklearn

        return {"dim": self.dim, "stop_words": self.stop_words, "min_df": self.min_df,
                "seed": self.seed, "sublinear_tf": True, "sklearn": sklearn.__version__}

    def cache_key(self, doc_texts: Sequence[str], query_texts: Sequence[str]) -> str:
        h = hashlib.blake2b(digest_size=16)
        h.update(json.dumps([LSA_CACHE_VERSION, "lsa", self._settings()],
                            sort_keys=True).encode())
        return texts_digest(h, doc_texts, query_texts)

    def compute(self, doc_texts: Sequence[str],
                query_texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, dict]:
        corpus, queries, stats = self.fit_transform(doc_texts, query_texts)
        return corpus, queries, {"model": self.identity(), **self._settings(), **stats}

    def fit_transform(self, doc_texts: Sequence[str],
                      query_texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, dict]:
        """Fit TF-IDF and the SVD on ``doc_texts``; return normalized float32 documents and
        queries, and what the fit found (vocabulary size, explained variance)."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=self.min_df,
                                     stop_words="english" if self.stop_words else None)
        try:
            tfidf = vectorizer.fit_transform(doc_texts)
        except ValueError as exc:  # scikit-learn's "empty vocabulary" and min_df errors
            raise ConfigError(f"no terms to fit TF-IDF on ({exc}); expected documents with "
                              "words that are not all stop words or rarer than min_df",
                              "min_df") from None
        n_docs, n_terms = tfidf.shape
        # the SVD silently returns fewer components than asked beyond either bound
        limit = min(n_docs, n_terms)
        if self.dim > limit:
            raise ConfigError(f"expected at most {limit} (the corpus has {n_docs} documents "
                              f"and {n_terms} terms), got {self.dim}", "dim")
        svd = TruncatedSVD(n_components=self.dim, algorithm="randomized",
                           random_state=self.seed)
        corpus = svd.fit_transform(tfidf)
        queries = svd.transform(vectorizer.transform(query_texts))
        stats = {"n_terms": int(n_terms),
                 "explained_variance": float(svd.explained_variance_ratio_.sum())}
        return normalize_rows(corpus), normalize_rows(queries), stats
