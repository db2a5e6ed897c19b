"""BEIR retrieval datasets with precomputed embeddings.

Layout (that of ``../shared/datasets/*``)::

    <path>/corpus.jsonl                   {"_id", "title", "text"} per line
    <path>/queries.jsonl                  {"_id", "text"} per line
    <path>/qrels/<split>.tsv              header, then query-id TAB corpus-id TAB graded score
    <path>/embeddings/<model>/corpus.npy  row i = line i of corpus.jsonl
    <path>/embeddings/<model>/queries.npy row i = line i of queries.jsonl

The queries are those judged in the split, in queries.jsonl order; judgments keep their grade
(> 0 is relevant). Judged documents missing from the corpus stay in ``qrels`` (trec_eval counts
them as relevant-but-unretrievable) and are reported with a warning.
"""

from __future__ import annotations

import csv
import json
import math
import re
import warnings
from pathlib import Path

import numpy as np

from vecbench.core.errors import DataError
from vecbench.core.params import NUMBER, assign
from vecbench.datasets import checks
from vecbench.datasets.base import Dataset, finish, PathResolver
from vecbench.datasets.formats import read_npy
from vecbench.datasets.paths import regular_file


def read_jsonl_ids(path: Path) -> list[str]:
    """The ``_id`` of every line of a BEIR jsonl file, in file order, as strings."""
    ids = []
    regular_file(path, "BEIR JSON lines")
    try:
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    ids.append(str(json.loads(line)["_id"]))
                except (ValueError, KeyError, TypeError):
                    raise DataError(f"{path}: line {number} is not a JSON object with an '_id'"
                                    ) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start} of a line); expected BEIR "
                        "JSON lines") from None
    if len(set(ids)) != len(ids):
        raise DataError(f"{path}: duplicate '_id' values; expected unique ids")
    return ids


def _grade(text: str) -> int | float:
    """A relevance grade: a finite number in ASCII digits (float() also takes inf, nan, '1_0'
    and Unicode digits, none of which a qrels file means); ValueError otherwise."""
    if not re.fullmatch(NUMBER, text.strip(), re.ASCII):
        raise ValueError(text)
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return int(value) if value.is_integer() else value


def read_qrels(path: Path) -> dict[str, dict[str, int | float]]:
    """``{query id: {doc id: grade}}`` from a BEIR qrels TSV (header line optional)."""
    regular_file(path, "a qrels TSV file")
    try:
        return _read_qrels(path)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start} of a line); expected "
                        "query-id, corpus-id, score lines separated by tabs") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc}); expected a qrels "
                        "TSV file") from None


def _read_qrels(path: Path) -> dict[str, dict[str, int | float]]:
    qrels: dict[str, dict[str, int | float]] = {}
    with open(path, encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != 3:
                raise DataError(f"{path}: line {number} has {len(row)} fields; expected "
                                "query-id, corpus-id, score separated by tabs")
            try:
                grade = _grade(row[2])
            except ValueError:
                if number == 1:  # the header "query-id corpus-id score"
                    continue
                raise DataError(f"{path}: line {number}: score {row[2]!r} is not a number"
                                ) from None
            qrels.setdefault(row[0], {})[row[1]] = grade
    if not qrels:
        raise DataError(f"{path}: no judgments; expected query-id, corpus-id, score lines")
    return qrels


def _listing(folder: Path, suffix: str | None) -> str:
    """Names in ``folder``: files ending in ``suffix`` (without it), or sub-folders if None."""
    if not folder.is_dir():
        return "none"
    if suffix:
        found = [p.name.removesuffix(suffix) for p in folder.iterdir()
                 if p.is_file() and p.name.endswith(suffix)]
    else:
        found = [p.name for p in folder.iterdir() if p.is_dir()]
    found.sort()
    return ", ".join(found) or "none"


class Beir:
    """A BEIR folder with precomputed embeddings of corpus and queries (see the module docstring).

    ``embeddings`` names the model folder under ``embeddings/``; ``split`` the qrels file. The
    train set is a seeded sample of the corpus, never the queries.
    """

    params = checks.beir.params

    def __init__(self, path: str, embeddings: str, split: str = "test", metric: str = "cos",
                 seed: int = 0, name: str | None = None):
        assign(self, locals())

    def load(self, paths: PathResolver | None = None) -> Dataset:
        root = (paths or PathResolver()).resolve("path", self.path)
        qrels_path = root / "qrels" / f"{self.split}.tsv"
        if not qrels_path.exists():
            raise DataError(f"{qrels_path}: no such file; splits here: "
                            f"{_listing(root / 'qrels', '.tsv')}")
        model = root / "embeddings" / self.embeddings
        if not model.is_dir():
            raise DataError(f"{model}: no such embeddings folder; models here: "
                            f"{_listing(root / 'embeddings', None)}")
        doc_ids = read_jsonl_ids(root / "corpus.jsonl")
        all_query_ids = read_jsonl_ids(root / "queries.jsonl")
        qrels = read_qrels(qrels_path)
        corpus = self._embeddings(model / "corpus.npy", len(doc_ids), root / "corpus.jsonl")
        queries = self._embeddings(model / "queries.npy", len(all_query_ids),
                                   root / "queries.jsonl")

        unknown = sorted(set(qrels) - set(all_query_ids))
        if unknown:
            raise DataError(f"{qrels_path}: {len(unknown)} judged query ids are not in "
                            f"queries.jsonl (first: {unknown[0]!r}); expected every judged query")
        judged = [row for row, qid in enumerate(all_query_ids) if qid in qrels]
        self._warn_missing_docs(qrels_path, qrels, set(doc_ids))

        name = self.name or "-".join([root.name, self.embeddings]
                                     + ([self.split] if self.split != "test" else []))
        info = {"source": str(root), "format": "beir", "split": self.split,
                "embeddings": self.embeddings}
        return finish(name, corpus, np.ascontiguousarray(queries[judged]), self.metric,
                      seed=self.seed, qrels=qrels, base_ids=np.array(doc_ids),
                      query_ids=np.array([all_query_ids[row] for row in judged]), info=info)

    @staticmethod
    def _embeddings(path: Path, rows: int, jsonl: Path) -> np.ndarray:
        x = read_npy(path)
        if x.ndim != 2 or len(x) != rows:
            raise DataError(f"{path}: shape {x.shape}; expected ({rows}, d), one row per line of "
                            f"{jsonl.name}")
        return x

    @staticmethod
    def _warn_missing_docs(path: Path, qrels: dict, doc_ids: set[str]) -> None:
        missing = [(q, d) for q, docs in qrels.items() for d in docs if d not in doc_ids]
        if not missing:
            return
        # a common export bug: zero-padded ids ("0756" for "756")
        padded = sum(d.lstrip("0") in doc_ids for _, d in missing)
        hint = f"; {padded} of them match a corpus id once leading zeros are stripped" \
            if padded else ""
        warnings.warn(f"{path}: {len(missing)} judgments name documents not in corpus.jsonl "
                      f"(first: {missing[0][1]!r}){hint}; they count as relevant but can never "
                      "be retrieved", stacklevel=3)
