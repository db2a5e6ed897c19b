"""Any faiss ``index_factory`` string, through the shared faiss builder.

``FaissFactory`` sets faiss ParameterSpace values for one search call and restores the built
values afterwards, so the index holds no search state between calls. Its bytes are read from the
built index like every faiss index's (``vecbench.indexes.faiss_storage``), so
``IVF64,PQ48x4fs``, ``RaBitQ`` or ``OPQ16,IVF256,PQ16`` report what they store.
"""

from __future__ import annotations

import difflib
import functools
from typing import Any

import numpy as np

from vecbench.errors import ConfigError
from vecbench.indexes.base import COMMON_PARAMS, omp_threads
from vecbench.indexes.faiss_build import MAX_K_FACTOR, _FaissIndex, check_number
from vecbench.params import Param, check_str


#: Search parameter names vecbench lets through to faiss's ParameterSpace (each may carry any
#: number of ``quantizer_`` prefixes, which faiss applies to an IVF's coarse quantizer).
FACTORY_SEARCH_PARAMS = ("efSearch", "ht", "k_factor", "k_factor_rf", "max_codes", "nprobe")


#: Dimensions a factory string is parsed at without data: between them, their divisors cover the
#: usual PQ and PCA sizes, so a string that fits the real data parses at one of them.
PROBE_DIMS = (960, 1008, 1024, 768, 1001)


@functools.lru_cache(maxsize=64)
def probe_index(factory: str) -> Any:
    """An empty index of ``factory`` at a probe dimension; None when every probe dimension is
    refused for its size only (the real dimension decides, at build); ConfigError when faiss
    cannot parse the string at all."""
    import faiss

    for dim in PROBE_DIMS:
        try:
            return faiss.index_factory(dim, factory)
        except RuntimeError as exc:
            if "could not parse" in str(exc):
                raise ConfigError(f"faiss cannot parse the factory string {factory!r}; expected "
                                  "an index_factory string such as 'IVF256,PQ32' or "
                                  "'HNSW32,Flat'", "factory") from None
    return None


class FaissFactory(_FaissIndex):
    """Any faiss ``index_factory`` string (build param ``factory``), e.g. ``"IVF1024,PQ32,RFlat"``,
    ``"OPQ16,IVF256,PQ16"``, ``"HNSW32,Flat"``.

    Search parameters are faiss ParameterSpace names (``FACTORY_SEARCH_PARAMS``, optionally with
    ``quantizer_`` prefixes); ``k_factor`` on a refine index means faiss's ``k_factor_rf``. They
    are set for one search call and restored to their built values afterwards. The whole base is
    added as one batch, so insertion order is not guaranteed (HNSW factories reorder a batch).
    """

    name = "faiss_factory"
    _build_param_names = ("factory",)
    _search_param_names = FACTORY_SEARCH_PARAMS
    params = (Param("factory", "str", "Flat", doc="a faiss index_factory string, e.g. "
                    "IVF1024,PQ32,RFlat or HNSW32,Flat"),) + COMMON_PARAMS
    search_params = tuple(
        Param(name, "number", None, low=0,
              high=MAX_K_FACTOR if name.startswith("k_factor") else None,
              doc="faiss ParameterSpace value (also with "
              "quantizer_ prefixes); unset: the built index's value")
        for name in FACTORY_SEARCH_PARAMS)

    def __init__(self, *, factory: str = "Flat", threads: int | None = None, seed: int = 0,
                 **extra: Any):
        super().__init__(threads=threads, seed=seed, extra=extra)
        self.factory = check_str("factory", factory)
        probe_index(self.factory)  # a string faiss cannot parse fails here, without data

    def check_search_for(self, params: dict) -> dict:
        """Names and values, then whether this factory string's index takes each parameter
        (faiss's ParameterSpace on an empty index of the string at a probe dimension)."""
        import faiss

        params = self.check_search(params)
        probe = probe_index(self.factory)
        if probe is None:
            return params
        for name, value in params.items():
            target = "k_factor_rf" if name == "k_factor" else name
            try:
                faiss.ParameterSpace().set_index_parameter(probe, target, float(value))
            except RuntimeError:
                if name == "k_factor":  # plain k_factor applies to IVFPQ-R indexes too
                    try:
                        faiss.ParameterSpace().set_index_parameter(probe, name, float(value))
                        continue
                    except RuntimeError:
                        pass
                raise ConfigError(f"faiss index {self.factory!r} does not take search "
                                  f"parameter {name!r}", name) from None
        return params

    @classmethod
    def check_search(cls, params: dict) -> dict:
        checked = {}
        for name, value in params.items():
            base = str(name)
            while base.startswith("quantizer_"):
                base = base[len("quantizer_"):]
            if base not in FACTORY_SEARCH_PARAMS:
                close = difflib.get_close_matches(base, FACTORY_SEARCH_PARAMS, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(f"unknown parameter of {cls.name} search{hint}; expected one of: "
                                  f"{', '.join(FACTORY_SEARCH_PARAMS)} (optionally prefixed "
                                  "with quantizer_)", str(name))
            checked[name] = check_number(name, value, 0.0)
        return checked

    def _factory(self) -> str:
        return self.factory

    def _factory_error_path(self) -> str:
        return "factory"

    def search(self, q: Any, k: int, **search_params: Any) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        q, k, params = self._start_search(q, k, search_params)
        space = self._reuse(("space",), lambda: (faiss.ParameterSpace(),))
        saved: list[tuple[Any, str, Any]] = []
        try:
            for name, value in params.items():
                if name == "k_factor" and self._reuse(("refine",), lambda: (
                        isinstance(_unwrap(self.index_), faiss.IndexRefine),)):
                    name = "k_factor_rf"
                slots = self._reuse(("slots", name),
                                    lambda: (_parameter_slots(self.index_, name),))
                if slots is None:
                    raise ConfigError(f"not a search parameter of {self.factory!r}; it takes: "
                                      f"{', '.join(_tunable_names(self.index_)) or '(none)'}",
                                      name)
                saved += [(owner, attr, getattr(owner, attr)) for owner, attr in slots]
                space.set_index_parameter(self.index_, name, value)
            with omp_threads(self.n_threads):
                distances, ids = self.index_.search(q, k)
        finally:
            for owner, attr, value in reversed(saved):
                setattr(owner, attr, value)
        return ids, distances


def _unwrap(index: Any) -> Any:
    """The index under IDMap and pre-transform wrappers, downcast to its class."""
    import faiss

    index = faiss.downcast_index(index)
    while isinstance(index, (faiss.IndexPreTransform, faiss.IndexIDMap, faiss.IndexIDMap2)):
        index = faiss.downcast_index(index.index)
    return index


def _tunable_names(index: Any) -> list[str]:
    import faiss

    space = faiss.ParameterSpace()
    space.initialize(index)
    return [space.parameter_ranges.at(i).name for i in range(space.parameter_ranges.size())]


def _parameter_slots(index: Any, name: str) -> list[tuple[Any, str]] | None:
    """The (object, attribute) pairs faiss's ParameterSpace writes for ``name`` on ``index``,
    so their built values can be restored after a search; None where vecbench does not know.

    Mirrors ``ParameterSpace::set_index_parameter`` (faiss/AutoTune.cpp), which has no getter.
    """
    import faiss

    index = _unwrap(index)
    if isinstance(index, faiss.IndexRefine):
        if name == "k_factor_rf":
            return [(index, "k_factor")]
        return _parameter_slots(index.base_index, name)
    if isinstance(index, faiss.IndexHNSW):
        return [(index.hnsw, "efSearch")] if name == "efSearch" else None
    if isinstance(index, faiss.IndexPQ):
        return [(index, "search_type"), (index, "polysemous_ht")] if name == "ht" else None
    if not isinstance(index, faiss.IndexIVF):
        return None
    if name in ("nprobe", "max_codes"):
        return [(index, name)]
    if name == "ht" and isinstance(index, faiss.IndexIVFPQ):
        return [(index, "polysemous_ht")]
    if name == "k_factor" and isinstance(index, faiss.IndexIVFPQR):
        return [(index, "k_factor")]
    quantizer = faiss.downcast_index(index.quantizer)
    if name == "efSearch" and isinstance(quantizer, faiss.IndexHNSW):
        return [(quantizer.hnsw, "efSearch")]
    if name.startswith("quantizer_"):
        return _parameter_slots(quantizer, name[len("quantizer_"):])
    return None
