"""Rescoring: fetch k × oversample candidates from a compressed index, re-rank with finer vectors.

The finer copy is the dataset's original float32 vectors (``with: float32``) or their symmetric
per-dimension int8 quantization (``with: int8``, decoded for the distance computation); its
on-disk size is reported as ``rescore_bytes_per_vector`` and its per-dataset parameters (the
int8 copy's scales) as ``rescore_model_bytes``.

A cascade re-ranks through a chain of finer copies, each stage with its own oversampling
(sentence-transformers' binary -> int8 -> float32 recipe)::
    rescore: {cascade: [{with: int8, oversample: 10}, {with: float32, oversample: 2}]}

The index returns k × 10 × 2 candidates; int8 keeps the best k × 2, float32 the best k. Every
copy's bytes are counted in ``rescore_bytes_per_vector``, and every stage runs inside the timed
query. ``{oversample: o, with: w}`` is the one-stage cascade.
"""

from __future__ import annotations

import re

import numpy as np

from vecbench.core.errors import ConfigError
from vecbench.core.params import check_choice, check_int, check_no_extra, shown
from vecbench.core.registry import transforms

RESCORE_WITH = ("float32", "int8")
#: The most candidates per result a rescoring fetches (k x the product of a cascade's
#: oversamples): beyond it the index is asked for more than any base holds and allocates
#: nq x k x oversample ids.
MAX_OVERSAMPLE = 1000
#: A cascade label, one grammar: ``int8x10>float32x2`` (ASCII digits, no leading zeros).
_STAGE = re.compile(rf"({'|'.join(RESCORE_WITH)})x([1-9][0-9]{{0,8}})", re.ASCII)


def check(params: dict) -> dict:
    """Validate one rescore setting (no data): ``{oversample, with}``, or ``{cascade: [...]}``
    of such stages (stored as a text label, ``int8x10>float32x2``: one scalar table column)."""
    if not isinstance(params, dict):
        raise ConfigError(f"expected a mapping with oversample and with, or cascade, got "
                          f"{params!r}")
    if "cascade" in params:
        check_no_extra("rescore", params, ("cascade",))
        stages = params["cascade"]
        if isinstance(stages, str):  # a label written back by `best`
            return {"cascade": label(_bounded(parse_label(stages)))}
        if not isinstance(stages, list) or not stages:
            raise ConfigError(f"expected a non-empty list of {{with, oversample}} stages, got "
                              f"{stages!r}", "cascade")
        checked = []
        for i, stage in enumerate(stages):
            try:
                checked.append(check(stage))
            except ConfigError as exc:
                raise exc.within(f"cascade[{i}]") from None
            if "cascade" in checked[-1]:
                raise ConfigError("expected a stage {with, oversample}, got a cascade",
                                  f"cascade[{i}]")
        return {"cascade": label(_bounded(checked))}
    check_no_extra("rescore", params, ("oversample", "with", "cascade"))
    return {"oversample": check_int("oversample", params.get("oversample", 1), 1,
                                    MAX_OVERSAMPLE),
            "with": check_choice("with", params.get("with", "float32"), RESCORE_WITH)}


def _bounded(stages: list[dict]) -> list[dict]:
    """The stages, when their oversamples multiply to at most MAX_OVERSAMPLE."""
    total = int(np.prod([stage["oversample"] for stage in stages], dtype=object))
    if total > MAX_OVERSAMPLE:
        raise ConfigError(f"expected oversamples whose product is at most {MAX_OVERSAMPLE}, "
                          f"got {label(stages)} (x{total})", "cascade")
    return stages


def label(stages: list[dict]) -> str:
    return ">".join(f"{stage['with']}x{stage['oversample']}" for stage in stages)


def parse_label(text: str) -> list[dict]:
    stages = []
    for part in text.split(">"):
        match = _STAGE.fullmatch(part)
        if match is None:
            raise ConfigError(f"expected stages like int8x10>float32x2 (WITHxOVERSAMPLE, WITH "
                              f"one of {', '.join(RESCORE_WITH)}, OVERSAMPLE in ASCII digits), "
                              f"got {shown(text)}", "cascade")
        stages.append({"with": match.group(1), "oversample": int(match.group(2))})
    return stages


def stages_of(setting: dict) -> list[dict]:
    """The stages of a checked rescore setting ([] for none)."""
    if not setting:
        return []
    if "cascade" in setting:
        return parse_label(setting["cascade"])
    return [setting]


class Cascade:
    """The finer copies of a rescore setting, built once per kind, and the re-ranking chain."""

    def __init__(self, setting: dict, base: np.ndarray, train: np.ndarray, copies: dict):
        self.stages = stages_of(setting)
        for stage in self.stages:
            if stage["with"] not in copies:
                copies[stage["with"]] = FinerVectors(stage["with"], base, train)
        self.copies = [copies[stage["with"]] for stage in self.stages]
        self.oversample = int(np.prod([stage["oversample"] for stage in self.stages]))
        self.bytes_per_vector = sum(copy.bytes_per_vector for copy in self.copies)
        # a copy shared by two stages is held once
        self.model_bytes = sum(copy.model_bytes for copy in {id(c): c for c in self.copies}
                               .values())

    def rerank(self, candidates: np.ndarray, queries: np.ndarray, metric: str,
               k: int) -> np.ndarray:
        """Each stage keeps k × (the later stages' oversampling) of the candidates it gets."""
        keep = k * self.oversample
        for stage, copy in zip(self.stages, self.copies):
            keep //= stage["oversample"]
            candidates = rerank(candidates, queries, copy, metric, keep)
        return candidates


class FinerVectors:
    """The copy candidates are re-ranked with, and what it costs to store."""

    def __init__(self, kind: str, base: np.ndarray, train: np.ndarray):
        self.kind = kind
        if kind == "float32":
            self.vectors = np.ascontiguousarray(base, dtype=np.float32)
            self.bytes_per_vector = 4 * base.shape[1]
            self.model_bytes = 0
        else:
            int8 = transforms.get("int8")(symmetric=True, granularity="per_dimension").fit(train)
            self.vectors = int8.inverse_transform(int8.transform(base)).astype(np.float32)
            self.bytes_per_vector = int(int8.bytes_per_vector_)
            self.model_bytes = int(int8.model_bytes_)  # its per-dimension scales


def rerank(candidates: np.ndarray, queries: np.ndarray, finer: FinerVectors, metric: str,
           k: int) -> np.ndarray:
    """The k nearest of each query's candidates by the finer vectors; -1 padded. Queries are
    taken in blocks so the gathered (rows, candidates, d) copy stays under ~64 MB."""
    q_all = np.asarray(queries, dtype=np.float32)
    distance = np.empty(candidates.shape, dtype=np.float32)
    per_row = max(1, candidates.shape[1] * finer.vectors.shape[1] * 4)
    block = max(1, (64 << 20) // per_row)
    for start in range(0, len(candidates), block):
        rows = slice(start, start + block)
        vectors = finer.vectors[np.maximum(candidates[rows], 0)]   # (rows, c, d)
        q = q_all[rows, None, :]
        if metric == "l2":
            distance[rows] = ((vectors - q) ** 2).sum(axis=-1)
        else:
            distance[rows] = -np.einsum("rcd,rd->rc", vectors, q_all[rows])
    distance = np.where(candidates >= 0, distance, np.inf)
    take = min(k, candidates.shape[1])
    order = np.argsort(distance, axis=1, kind="stable")[:, :take]
    ids = np.take_along_axis(candidates, order, axis=1)
    if take < k:
        ids = np.pad(ids, ((0, 0), (0, k - take)), constant_values=-1)
    return ids
