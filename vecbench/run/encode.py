"""The encode stage: fit a unit's pipeline on ``train`` (never on queries), once per (data,
pipeline) across processes (:mod:`vecbench.run.shared_work`), and encode base and queries; the
index gets codes where it accepts them natively, decoded float32 otherwise (simulated)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from vecbench.compute import recall
from vecbench.core.errors import ConfigError
from vecbench.core.registry import transforms
from vecbench.core.vectors import as_float32, hash_array
from vecbench.datasets.base import Dataset
from vecbench.run import shared_work
from vecbench.run.experiment import Component, component_label
from vecbench.run.schema import EncodeInfo
from vecbench.transforms.base import model_bytes


@dataclass(frozen=True)
class Decoded:
    """The float32 view of the encoded corpus in the transformed space (what a quantizer's codes
    stand for): the index's own exact kNN and trustworthiness are computed on it."""

    base: np.ndarray
    queries: np.ndarray


@dataclass
class Encoded:
    """A dataset after the pipeline: what the index gets (``base``, ``queries``, ``train``: codes
    or float32), their float32 view, and what encoding cost (the record's ``encode`` part)."""

    base: np.ndarray
    queries: np.ndarray
    train: np.ndarray
    decoded: Decoded
    report: EncodeInfo        # trustworthiness left None: computed per (k, seed) below
    #: trustworthiness by (k, seed): units sharing a cached encoding compute it once
    trustworthiness: dict = field(default_factory=dict)


#: The last few encodings, so that units sharing a dataset and pipeline (flat and HNSW over the
#: same UMAP output, say) fit it once per process. Small: each entry holds the encoded corpus.
_ENCODED: dict[str, Encoded] = {}
ENCODE_CACHE_SIZE = 2


def forget_encoded() -> None:
    """Drop the encodings this process holds."""
    _ENCODED.clear()


def encode(dataset: Dataset, steps: tuple[Component, ...], accepts: frozenset,
           tell: Callable[[str], None] = lambda step: None) -> Encoded:
    """Fit the pipeline on ``train`` (never on queries), encode base and queries (memoized);
    ``tell`` hears of each step fitted (``encode fit pca(n_components=64)``)."""
    key = json.dumps([dataset.fingerprint(), _train_digest(dataset),
                      [[s.name, s.params] for s in steps], sorted(accepts)],
                     sort_keys=True, default=str)
    if key not in _ENCODED:
        encoded = _encode(dataset, steps, accepts, tell)
        for array in (encoded.base, encoded.queries, encoded.decoded.base,
                      encoded.decoded.queries):
            array.setflags(write=False)
        while len(_ENCODED) >= ENCODE_CACHE_SIZE:
            _ENCODED.pop(next(iter(_ENCODED)))
        _ENCODED[key] = encoded
        return encoded
    cached = _ENCODED[key]  # the fit is not this call's
    return dataclasses.replace(cached, report=dataclasses.replace(cached.report,
                                                                  fitted_here=False))


def _train_digest(dataset: Dataset) -> str:
    """Content hash of the fitting set, memoized like Dataset.fingerprint."""
    cached = dataset.info.get("_train_digest")
    if cached is None:
        h = hashlib.blake2b(digest_size=16)
        h.update(str(dataset.train.shape).encode())
        hash_array(h, dataset.train)
        cached = dataset.info["_train_digest"] = h.hexdigest()  # type: ignore[index]
    return cached


def _make_transform(step: Component, metric: str):
    transform = transforms.get(step.name)(**step.params)
    # reductions re-normalize under cos unless told otherwise (normalize: None = "runner decides")
    if transform.get_params().get("normalize", False) is None:
        transform.set_params(normalize=metric == "cos")
    return transform


def _encode_with_report(transform, x: np.ndarray) -> tuple[np.ndarray, float | None]:
    """Output rows and the fraction of values clipped: a quantizer (a transform that declares
    ``code_kind``) reports it from ``encode``; a reduction clips nothing."""
    if getattr(transform, "code_kind", ""):
        codes, report = transform.encode(x)
        return codes, report["clipped_fraction"]
    return transform.transform(x), None


def fitted_pipeline(dataset: Dataset, steps: tuple[Component, ...],
                    tell: Callable[[str], None] = lambda step: None) -> tuple[list, float, bool]:
    """``(fitted transforms, fit seconds, fitted here)``: fitted on ``train`` once per (data,
    pipeline) across processes and machines (:mod:`vecbench.run.shared_work`); a unit that reads a
    fit another unit made reports that unit's fit time and ``fitted here`` False."""
    key = shared_work.key_of(dataset.fingerprint(), _train_digest(dataset), dataset.metric,
                             [[s.name, s.params] for s in steps])

    def fit() -> tuple[list, float]:
        train, fitted, fit_s = dataset.train, [], 0.0
        for i, step in enumerate(steps):
            tell(f"encode fit {component_label(step)}")
            try:
                transform = _make_transform(step, dataset.metric)
                start = time.perf_counter()
                transform.fit(train)
                fit_s += time.perf_counter() - start
            except ConfigError as exc:
                raise exc.within(step.where) from None
            if getattr(transform, "code_kind", None):
                if i != len(steps) - 1:
                    raise ConfigError(f"a quantizer must be the last step of a pipeline; "
                                      f"{step.name} is followed by {steps[i + 1].name}",
                                      step.where)
            else:
                train = transform.transform(train)
            fitted.append(transform)
        return fitted, fit_s

    (fitted, fit_s), here = shared_work.once(key, fit)
    return fitted, fit_s, here


def _encode(dataset: Dataset, steps: tuple[Component, ...], accepts: frozenset,
            tell: Callable[[str], None]) -> Encoded:
    # the one float32 copy of a memory-mapped uint8/int8/strided base (a float32 one stays mapped)
    base, queries, train = as_float32(dataset.base), dataset.queries, dataset.train
    encode_s = 0.0
    clipped: dict = {}
    quantizer = None
    fitted, fit_s, fitted_here = fitted_pipeline(dataset, steps, tell) if steps else ([], 0.0, False)
    pipeline_model = sum(model_bytes(transform) for transform in fitted)
    tell("encode")
    for step, transform in zip(steps, fitted):
        try:
            start = time.perf_counter()
            base, clipped_base = _encode_with_report(transform, base)
            queries, clipped_queries = _encode_with_report(transform, queries)
            encode_s += time.perf_counter() - start
        except ConfigError as exc:
            raise exc.within(step.where) from None
        if clipped_base is not None:
            clipped[step.name] = {"base": clipped_base, "queries": clipped_queries}
        if getattr(transform, "code_kind", None):
            quantizer = transform
        else:
            train = transform.transform(train)
    if quantizer is None:
        base = np.ascontiguousarray(base, dtype=np.float32)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        return Encoded(base, queries, train, Decoded(base, queries), EncodeInfo(
            "none", 4.0 * base.shape[1], 0, pipeline_model, fit_s, encode_s, clipped,
            fitted_here, int(base.shape[1])))
    decoded = Decoded(quantizer.inverse_transform(base).astype(np.float32, copy=False),
                      quantizer.inverse_transform(queries).astype(np.float32, copy=False))
    # simulated: the index stores decoded float32, but storage is counted as the codes
    kind = "native" if quantizer.code_kind in accepts else "simulated"
    report = EncodeInfo(kind, float(quantizer.bytes_per_vector_), int(quantizer.model_bytes_),
                        pipeline_model, fit_s, encode_s, clipped, fitted_here,
                        int(decoded.base.shape[1]))
    if kind == "native":
        return Encoded(base, queries, train, decoded, report)
    return Encoded(decoded.base, decoded.queries, train, decoded, report)


def trustworthiness(dataset: Dataset, encoded: Encoded, k: int, seed: int) -> float:
    if (k, seed) not in encoded.trustworthiness:
        encoded.trustworthiness[(k, seed)] = recall.trustworthiness_sample(
            dataset.base, encoded.decoded.base, dataset.metric, k, seed=seed)
    return encoded.trustworthiness[(k, seed)]
