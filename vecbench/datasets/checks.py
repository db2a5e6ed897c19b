"""The parameters of the built-in dataset loaders: one declaration per loader, read by
validation, `vecbench describe` and the generated docs, and importing nothing heavy.

``vecbench validate`` checks every dataset entry without loading data; importing the loader
classes for that would import numpy (half of validate's time). Each built-in is registered with
its :class:`~vecbench.core.params.Spec` from here (``datasets.register(name, target,
spec="...:NAME")``); the class declares the same tuple (``params = checks.NAME.params``) and
runs the same cross-parameter ``check`` when constructed, so there is one source.
"""

from __future__ import annotations

from vecbench.core.errors import ConfigError
from vecbench.core.params import Param, Spec
from vecbench.core.vectors import METRICS

#: The largest synthetic dataset, in values (rows x dim), checked before anything is allocated.
MAX_SYNTHETIC_VALUES = 1 << 31
MINILM = "sentence-transformers/all-MiniLM-L6-v2"

METRIC = Param("metric", "choice", "l2", choices=METRICS,
               doc="distance: l2 (Euclidean), ip (inner product, larger is nearer) or cos (cosine: "
                   "vectors are L2-normalized on load)")
SEED = Param("seed", "int", 0, low=0, doc="seeds the draw (and the train sample)")
FILE_NAME = Param("name", "str", None, nullable=True, doc="dataset name (null: from the file name)")
TRAIN = Param("train", "str", None, nullable=True,
              doc="file of vectors to fit transforms on (null: a sample of the base)")
GROUNDTRUTH = Param("groundtruth", "str", None, nullable=True,
                    doc="shipped neighbour ids, checked against exact search on load")
# BEIR folders (beir, embed, lsa)
PATH = Param("path", "str", doc="the BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
SPLIT = Param("split", "str", "test", doc="qrels/<split>.tsv: the judged queries kept")
COS = Param("metric", "choice", "cos", choices=METRICS, doc="l2, ip or cos")
CORPUS_SEED = Param("seed", "int", 0, low=0, doc="seeds the train sample of the corpus")
BEIR_NAME = Param("name", "str", None, nullable=True, doc="dataset name (null: folder and model)")


def _required_metric(why: str) -> Param:
    return Param("metric", "choice", choices=METRICS,
                 doc=f"l2, ip or cos; required ({why}: guessing l2 for cosine embeddings would "
                     "give a silently wrong ground truth)")


digits = Spec("Digits", (
    Param("n_queries", "int", 200, low=1, high=1000,
          doc="images drawn as queries; the rest are the base"),
    SEED,
    METRIC,
))


def _synthetic_sizes(values: dict) -> None:
    """What the single parameters cannot say: intrinsic_dim <= dim, the size, the clusters."""
    dim, n_base, n_queries = values["dim"], values["n_base"], values["n_queries"]
    if values["intrinsic_dim"] > dim:
        raise ConfigError(f"expected an integer in [1, {dim}] (at most dim), got "
                          f"{values['intrinsic_dim']}", "intrinsic_dim")
    total = n_base + n_queries + values["n_train"]
    if total * dim > MAX_SYNTHETIC_VALUES:
        raise ConfigError(
            f"(n_base + n_queries + n_train) x dim = {total} x {dim} = "
            f"{total * dim} values; expected at most {MAX_SYNTHETIC_VALUES} "
            f"({MAX_SYNTHETIC_VALUES * 8 >> 30} GiB while generated)",
            "n_base" if n_base * dim > dim * n_queries else "n_queries")
    if values["n_clusters"] > n_base:
        raise ConfigError(f"expected an integer in [1, {n_base}] (at most n_base), "
                          f"got {values['n_clusters']}", "n_clusters")


synthetic = Spec("Synthetic", (
    Param("n_base", "int", 10_000, low=1, doc="base vectors"),
    Param("n_queries", "int", 200, low=1, doc="query vectors (same distribution)"),
    Param("dim", "int", 64, low=1, doc="ambient dimension"),
    Param("intrinsic_dim", "int", 8, low=1,
          doc="dimension of the subspace the points span (at most dim)"),
    Param("noise", "number", 0.0, low=0, high=1000, doc="std of isotropic Gaussian noise added in all "
          "dim dimensions (raises the intrinsic dimension at small scales)"),
    Param("n_clusters", "int", 1, low=1,
          doc="Gaussian cluster centres in the subspace; > 1 also gives labels"),
    Param("cluster_std", "number", 0.5, low=0, high=1000, low_open=True,
          doc="spread of each cluster around its centre"),
    Param("n_train", "int", 0, low=0,
          doc="extra vectors used as the train set (0: a sample of the base)"),
    SEED,
    METRIC,
), check=_synthetic_sizes)

npy = Spec("Npy", (
    Param("base", "str", doc=".npy file of base vectors (n x d)"),
    Param("queries", "str", doc=".npy file of query vectors (nq x d)"),
    Param("train", "str", None, nullable=True,
          doc=".npy file of vectors to fit transforms on (null: a sample of the base)"),
    Param("labels", "str", None, nullable=True,
          doc=".npy file of one integer label per base vector (for category orderings)"),
    METRIC,
    Param("name", "str", None, nullable=True, doc="dataset name (null: the base file's stem)"),
))

hdf5 = Spec("Hdf5", (
    Param("path", "str", doc="the .hdf5 file (train, test, neighbors; attribute distance)"),
    Param("metric", "choice", None, choices=METRICS, nullable=True,
          doc="override the file's distance (null: from the file; an override drops the "
              "shipped neighbours)"),
    FILE_NAME,
))

vecs = Spec("Vecs", (
    Param("base", "str", doc=".fvecs / .ivecs / .bvecs file of base vectors"),
    Param("queries", "str", doc="file of query vectors, same format"),
    _required_metric(".vecs files do not record one"),
    TRAIN, GROUNDTRUTH, FILE_NAME,
))

fbin = Spec("Fbin", (
    Param("base", "str", doc=".fbin / .u8bin / .i8bin file of base vectors"),
    Param("queries", "str", doc="file of query vectors, same format"),
    _required_metric("big-ann binary files do not record one"),
    TRAIN, GROUNDTRUTH, FILE_NAME,
))


def _parquet_files(values: dict) -> None:
    if values["path"] is None and (values["base"] is None or values["queries"] is None):
        raise ConfigError("expected a parquet file (or 'path', a folder with train.parquet "
                          "and test.parquet), got None",
                          "base" if values["base"] is None else "queries")


parquet = Spec("Parquet", (
    Param("path", "str", None, nullable=True,
          doc="a folder with train.parquet (base), test.parquet (queries) and optional "
              "neighbors.parquet; null: give base and queries"),
    Param("base", "str|strs", None, nullable=True,
          doc="base parquet file or list of files (relative to path when given)"),
    Param("queries", "str", None, nullable=True, doc="query parquet file"),
    Param("neighbors", "str", None, nullable=True,
          doc="parquet of query id -> list of base ids (shipped ground truth)"),
    _required_metric("parquet files do not record one"),
    Param("id_column", "str", "id", doc="column of vector ids"),
    Param("emb_column", "str", "emb", doc="column of embeddings (lists of floats)"),
    Param("neighbors_column", "str", "neighbors_id", doc="column of neighbour id lists"),
    FILE_NAME,
), list_params=("base",), check=_parquet_files)

beir = Spec("Beir", (
    PATH,
    Param("embeddings", "str", doc="model folder under embeddings/ (corpus.npy, queries.npy)"),
    SPLIT, COS, CORPUS_SEED, BEIR_NAME,
))

embed = Spec("Embed", (
    PATH,
    Param("model", "str", MINILM, doc="a sentence-transformers model name (all-MiniLM-L6-v2 "
          "and minilm-l6 are aliases) or a local SentenceTransformer folder"),
    SPLIT, COS,
    Param("fields", "strs", ("title", "text"),
          doc="corpus fields joined by a space to make each document's text"),
    Param("normalize", "bool", True, doc="L2-normalize the embeddings"),
    Param("max_seq_length", "int", None, low=1, nullable=True,
          doc="truncate texts to this many tokens (null: the model's own limit)"),
    Param("batch_size", "int", 64, low=1, doc="texts per encoding batch"),
    Param("device", "str", "cpu", doc="torch device, e.g. cpu or cuda"),
    CORPUS_SEED, BEIR_NAME,
), list_params=("fields",))

#: LSA's own parameters (the rest are embed's).
LSA_OWN = (
    Param("dim", "int", 256, low=1, doc="SVD components (at most the number of documents and "
          "of distinct terms)"),
    Param("stop_words", "bool", True, doc="drop scikit-learn's English stop words"),
    Param("min_df", "int", 1, low=1, doc="ignore terms found in fewer documents"),
)

lsa = Spec("Lsa", tuple(p for p in embed.params if p.name in ("path", "split", "metric", "fields",
                                                             "seed", "name")) + LSA_OWN,
           list_params=("fields",))
