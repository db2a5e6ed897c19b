"""Any faiss ``index_factory`` string, through the one faiss adapter.

``faiss_factory`` sets faiss ParameterSpace values for one search call and restores the built
values afterwards, so the index holds no search state between calls. Its bytes are read from the
built index like every faiss index's (``vecbench.indexes.faiss_storage``), so
``IVF64,PQ48x4fs``, ``RaBitQ`` or ``OPQ16,IVF256,PQ16`` report what they store.
"""

from __future__ import annotations

from typing import Any

from vecbench.core.errors import ConfigError, did_you_mean
from vecbench.indexes.base import Conformance, omp_threads
from vecbench.indexes.faiss import probe
from vecbench.indexes.faiss.adapter import MAX_K_FACTOR, Family, check_number, faiss_adapter
from vecbench.core.params import Param

#: the names this module registers (read by vecbench.indexes without importing it)
REGISTER = {"faiss_factory": "FaissFactory"}


#: Search parameter names vecbench lets through to faiss's ParameterSpace (each may carry any
#: number of ``quantizer_`` prefixes, which faiss applies to an IVF's coarse quantizer).
FACTORY_SEARCH_PARAMS = ("efSearch", "ht", "k_factor", "k_factor_rf", "max_codes", "nprobe")


def check_parses(factory: str) -> None:
    """ConfigError when faiss cannot parse the string at all (asked without importing faiss
    into this process: see :mod:`vecbench.indexes.faiss.probe`)."""
    if probe.ask(factory)[0] == "unparsable":
        raise ConfigError(f"faiss cannot parse the factory string {factory!r}; expected "
                          "an index_factory string such as 'IVF256,PQ32' or "
                          "'HNSW32,Flat'", "factory")


def factory_check_search(cls: type, params: dict) -> dict:
    checked = {}
    for name, value in params.items():
        base = str(name)
        while base.startswith("quantizer_"):
            base = base[len("quantizer_"):]
        if base not in FACTORY_SEARCH_PARAMS:
            hint = did_you_mean(base, FACTORY_SEARCH_PARAMS)
            raise ConfigError(f"unknown parameter of {cls.name} search{hint}; expected one of: "
                              f"{', '.join(FACTORY_SEARCH_PARAMS)} (optionally prefixed "
                              "with quantizer_)", str(name))
        checked[name] = check_number(name, value, 0.0)
    return checked


def factory_check_search_for(index: Any, params: dict) -> dict:
    """Names and values, then whether this factory string's index takes each parameter
    (faiss's ParameterSpace on an empty index of the string at a probe dimension)."""
    params = index.check_search(params)
    refused = probe.ask(index.factory, tuple(params.items()))[1]
    if refused is not None:
        raise ConfigError(f"faiss index {index.factory!r} does not take search "
                          f"parameter {refused!r}", refused)
    return params


def factory_search(index: Any, faiss: Any, q: Any, k: int, params: dict,
                   faiss_params: Any) -> tuple:
    """ParameterSpace values set for this call, restored to their built values afterwards."""
    space = index._reuse(("space",), lambda: (faiss.ParameterSpace(),))
    saved: list[tuple[Any, str, Any]] = []
    try:
        for name, value in params.items():
            if name == "k_factor" and index._reuse(("refine",), lambda: (
                    isinstance(_unwrap(index.index_), faiss.IndexRefine),)):
                name = "k_factor_rf"
            slots = index._reuse(("slots", name),
                                 lambda: (_parameter_slots(index.index_, name),))
            if slots is None:
                raise ConfigError(f"not a search parameter of {index.factory!r}; it takes: "
                                  f"{', '.join(_tunable_names(index.index_)) or '(none)'}",
                                  name)
            saved += [(owner, attr, getattr(owner, attr)) for owner, attr in slots]
            space.set_index_parameter(index.index_, name, value)
        with omp_threads(index.n_threads):
            distances, ids = index.index_.search(q, k)
    finally:
        for owner, attr, value in reversed(saved):
            setattr(owner, attr, value)
    return ids, distances


FACTORY = Family(
    "faiss_factory", """Any faiss ``index_factory`` string (build param ``factory``), e.g.
    ``"IVF1024,PQ32,RFlat"``, ``"OPQ16,IVF256,PQ16"``, ``"HNSW32,Flat"``.

    Search parameters are faiss ParameterSpace names (``FACTORY_SEARCH_PARAMS``, optionally with
    ``quantizer_`` prefixes); ``k_factor`` on a refine index means faiss's ``k_factor_rf``. They
    are set for one search call and restored to their built values afterwards. The whole base is
    added as one batch, so insertion order is not guaranteed (HNSW factories reorder a batch).
    """, (Param("factory", "str", "Flat", doc="a faiss index_factory string, e.g. "
                "IVF1024,PQ32,RFlat or HNSW32,Flat"),),
    tuple(Param(name, "number", None, low=0,
                high=MAX_K_FACTOR if name.startswith("k_factor") else None,
                doc="faiss ParameterSpace value (also with "
                "quantizer_ prefixes); unset: the built index's value")
          for name in FACTORY_SEARCH_PARAMS),
    Conformance({"factory": "IVF16,Flat"}, {"nprobe": 16}),
    factory=lambda index: index.factory,
    check=lambda index: check_parses(index.factory),  # a string faiss cannot parse fails here
    check_search=factory_check_search, check_search_for=factory_check_search_for,
    search=factory_search)


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


FaissFactory = faiss_adapter(FACTORY, "FaissFactory", __name__)
