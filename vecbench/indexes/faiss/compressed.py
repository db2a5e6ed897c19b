"""faiss indexes that compress float32 themselves: RaBitQ and PQ / OPQ, flat or IVF, with or
without fast-scan and a refinement copy. Each is a factory string through the shared builder
(``vecbench.indexes.faiss.adapter``); bytes are read from the built index like every faiss index.

Search parameters are composed into one faiss ``SearchParameters`` object per setting by
:func:`search_parameters`, from the index structure (refine > pre-transform > IVF > codes):
a parameter left out takes the index's own default (faiss's ``nprobe`` 1, ``k_factor`` 1), except
RaBitQ's ``qb``, which vecbench sets to :data:`DEFAULT_QB` (faiss's own is 4, fast-scan's 8).
"""

from __future__ import annotations

from typing import Any

from vecbench.core.errors import ConfigError
from vecbench.indexes.base import Conformance, omp_threads
from vecbench.indexes.faiss.adapter import (MAX_K_FACTOR, Family, factory_index, faiss_adapter,
                                            search_plain)
from vecbench.indexes.faiss.families import divisor_m
from vecbench.core.params import Param, validate

#: the names this module registers (read by vecbench.indexes without importing it)
REGISTER = {"faiss_rabitq": "FaissRaBitQ", "faiss_pq": "FaissPQ"}

#: Refinement copies: False (none), True (float32, ``RFlat``) or a faiss refine factory string
#: such as ``SQfp16`` or ``SQ8``.
REFINE_DOC = "false, true (float32 copy) or a faiss refine type such as SQfp16 or SQ8"

#: Parameters faiss_pq and faiss_rabitq share, declared once.
NLIST = Param("nlist", "int", 0, low=0, doc="IVF lists (0: flat, every vector scanned)")
REFINE = Param("refine", "bool|str", False,
               doc="re-rank with a finer copy: true (float32) or a faiss refine type such as "
                   "SQfp16; its bytes are counted")
NPROBE = Param("nprobe", "int", 1, low=1, doc="IVF lists searched")
K_FACTOR = Param("k_factor", "number", 1, low=1, high=MAX_K_FACTOR,
                 doc="with refine: re-rank k x k_factor candidates")


def refine_suffix(refine: bool | str) -> str:
    if refine is True or refine == "Flat":
        return ",RFlat"
    return f",Refine({refine})" if refine else ""


def _unwrap(faiss: Any, index: Any) -> Any:
    """The code index under refine and pre-transform wrappers, downcast."""
    index = faiss.downcast_index(index)
    while True:
        if isinstance(index, faiss.IndexRefine):
            index = faiss.downcast_index(index.base_index)
        elif isinstance(index, faiss.IndexPreTransform):
            index = faiss.downcast_index(index.index)
        else:
            return index


def search_parameters(faiss: Any, index: Any, params: dict) -> tuple:
    """(faiss SearchParameters or None, *objects it points to) for ``nprobe``, ``qb`` and
    ``k_factor``, following the index's structure (SWIG does not keep nested objects alive,
    so the caller keeps the whole tuple)."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexRefine):
        inner = search_parameters(faiss, index.base_index, params)
        made = faiss.IndexRefineSearchParameters(
            k_factor=float(params.get("k_factor", index.k_factor)))
        if inner[0] is not None:
            made.base_index_params = inner[0]
        return (made, *inner)
    if isinstance(index, faiss.IndexPreTransform):
        inner = search_parameters(faiss, index.index, params)
        if inner[0] is None:
            return inner
        made = faiss.SearchParametersPreTransform()
        made.index_params = inner[0]
        return (made, *inner)
    if isinstance(index, (faiss.IndexIVFRaBitQ, faiss.IndexIVFRaBitQFastScan)):
        made = faiss.IVFRaBitQSearchParameters()
        made.nprobe = int(params.get("nprobe", index.nprobe))
        made.qb = int(params.get("qb", index.qb))
        return (made,)
    if isinstance(index, faiss.IndexIVF):
        return (faiss.SearchParametersIVF(nprobe=int(params.get("nprobe", index.nprobe))),)
    if isinstance(index, faiss.IndexRaBitQ):
        made = faiss.RaBitQSearchParameters()
        made.qb = int(params.get("qb", index.qb))
        return (made,)
    return (None,)  # flat PQ, fast-scan flat codes: nothing to set per call


def compressed_min_train(index: Any) -> tuple[int, str]:
    if index.nlist:
        return index.nlist, f"one per IVF list, nlist={index.nlist}"
    return 1, ""


def compressed_search_parameters(index: Any, faiss: Any, params: dict, k: int) -> tuple:
    if "nprobe" in params and not index.nlist:
        raise ConfigError("nprobe applies only to an IVF index; build with nlist >= 1", "nprobe")
    if "k_factor" in params and not index.refine:
        raise ConfigError("k_factor applies only with refine; build with refine: true",
                          "k_factor")
    return tuple(sorted(params.items())), lambda: search_parameters(faiss, index.index_, params)


def _faiss_version() -> tuple[int, ...]:
    """The installed faiss version, read without importing faiss (validation stays light)."""
    from importlib import metadata

    for dist in ("faiss-cpu", "faiss-gpu", "faiss"):
        try:
            return tuple(int(part) for part in metadata.version(dist).split(".")[:3]
                         if part.isdigit())
        except metadata.PackageNotFoundError:
            continue
    return ()


#: First faiss release with multi-bit RaBitQ (``RaBitQ4`` and friends).
MULTI_BIT_FAISS = (1, 13, 1)


def rabitq_check(index: Any) -> None:
    version = _faiss_version()
    if index.bits > 1 and version and version < MULTI_BIT_FAISS:
        raise ConfigError(f"expected 1: multi-bit RaBitQ needs faiss >= 1.13.1, this is "
                          f"{'.'.join(map(str, version))}", "bits")


def rabitq_factory(index: Any) -> str:
    codes = "RaBitQ" + ("fs" if index.fast_scan else "") + \
        (str(index.bits) if index.bits > 1 else "")
    return (f"IVF{index.nlist}," if index.nlist else "") + codes + refine_suffix(index.refine)


#: ``qb`` when a search leaves it out. Measured (faiss 1.15.1, 20k x 128 synthetic, intrinsic
#: dimension 32, 1000 queries, one thread, IVF128 nprobe 8): qb 0 (float queries) ran at 1000
#: QPS, qb 8 at 56k (1 bit) and 22k (4 bits) with recall@10 within 0.1 point of qb 0 (paired
#: standard error 0.05); qb 4, faiss's default, was 1.2x faster than 8 but lost 0.4-1.4 points
#: with 1-bit codes (2-6 standard errors); flat 1-bit: qb 0 65 QPS, qb 8 5200.
DEFAULT_QB = 8


def rabitq_check_search(cls: type, params: dict) -> dict:
    """The checked parameters with ``qb`` filled in: the setting searched is the one recorded
    (a result's key and table then say qb 8, not an unset value faiss would read as 4)."""
    return {"qb": DEFAULT_QB, **validate(cls, params, which="search_params", defaults=False)}


def rabitq_search_parameters(index: Any, faiss: Any, params: dict, k: int) -> tuple:
    if index.fast_scan and params.get("qb", 1) == 0:
        raise ConfigError("expected 1..8 with fast_scan (fast-scan quantizes every query), "
                          "got 0", "qb")
    return compressed_search_parameters(index, faiss, params, k)


def rabitq_search(index: Any, faiss: Any, q: Any, k: int, params: dict,
                  faiss_params: Any) -> tuple:
    if not (index.fast_scan and not index.nlist and "qb" in params):
        return search_plain(index, faiss, q, k, params, faiss_params)
    # faiss's flat fast-scan RaBitQ takes no SearchParameters: qb is set for this call
    codes = _unwrap(faiss, index.index_)
    built, codes.qb = codes.qb, params["qb"]
    try:
        with omp_threads(index.n_threads):
            distances, ids = index.index_.search(q, k, params=faiss_params)
    finally:
        codes.qb = built
    return ids, distances


RABITQ = Family(
    "faiss_rabitq", """faiss RaBitQ: ``IndexRaBitQ`` / ``IndexIVFRaBitQ`` and their fast-scan forms.

    Build: ``bits`` (1..9 per dimension; more than 1 needs faiss >= 1.13.1), ``nlist`` (0 =
    flat, the default; else IVF lists, residuals encoded), ``fast_scan`` (faiss's ``RaBitQfs``
    SIMD layout), ``refine`` (false, true = exact re-ranking with a float32 copy, or a faiss
    refine type such as ``SQfp16``). Search: ``nprobe`` (IVF), ``qb`` (bits a query is quantized
    to, 0..8, default 8; 0 = float query, 60-100x slower at the same recall; fast-scan needs
    >= 1), ``k_factor`` (with refine: re-rank
    ``k * k_factor`` candidates). Codes include RaBitQ's per-vector factors (8 bytes for one
    bit; more with more bits), all counted in ``code_bytes_per_vector``.
    """, (
        Param("bits", "int", 1, low=1, high=9,
              doc="bits per dimension (more than 1 needs faiss >= 1.13.1)"),
        NLIST,
        Param("fast_scan", "bool", False, doc="faiss's RaBitQfs SIMD layout"),
        REFINE,
    ), (
        NPROBE,
        Param("qb", "int", DEFAULT_QB, low=0, high=8,
              doc="bits a query is quantized to; 0: float query, 60-100x slower than 8 at the"
                  " same recall@10 (20k x 128 synthetic, IVF nprobe 8 and flat, 1 and 4 bits);"
                  " 4 (faiss's default) was 1.2x faster than 8 but lost 0.4-1.4 recall points"
                  " with 1-bit codes; fast-scan needs >= 1"),
        K_FACTOR,
    ), Conformance({"bits": 4, "nlist": 8, "fast_scan": True, "refine": True},
                   {"nprobe": 8, "qb": 8, "k_factor": 20}),
    factory=rabitq_factory, blame=lambda index: "refine" if index.refine else "bits",
    min_train=compressed_min_train, search_parameters=rabitq_search_parameters,
    check_search=rabitq_check_search, search=rabitq_search, check=rabitq_check,
    details=lambda index: {"factory": rabitq_factory(index), "bits": index.bits})


def pq_check(index: Any) -> None:
    if index.fast_scan and index.nbits != 4:
        raise ConfigError(f"expected 4 with fast_scan (faiss's fast-scan PQ codes are "
                          f"4-bit), got {index.nbits}", "nbits")


def pq_min_train(index: Any) -> tuple[int, str]:
    need, why = compressed_min_train(index)
    if index.opq and 256 > max(need, 2**index.nbits):
        return 256, "faiss's OPQ fits its rotation with an 8-bit PQ, 256 centroids"
    if 2**index.nbits > need:
        return 2**index.nbits, f"one per PQ centroid, 2**nbits with nbits={index.nbits}"
    return need, why


def pq_factory(index: Any) -> str:
    # "np": no polysemous training (slow, and only useful to Hamming-threshold search)
    codes = f"PQ{index.m}x{index.nbits}" + ("fs" if index.fast_scan else "np")
    return (f"OPQ{index.m}," if index.opq else "") + \
        (f"IVF{index.nlist}," if index.nlist else "") + codes + refine_suffix(index.refine)


PQ = Family(
    "faiss_pq", """faiss product quantization: ``IndexPQ`` / ``IndexIVFPQ``, optionally behind an
    OPQ rotation and in fast-scan layout.

    Build: ``m`` (sub-quantizers; must divide the dimension), ``nbits`` (bits per sub-code,
    1..16; fast-scan needs 4), ``opq`` (learn an OPQ rotation first), ``fast_scan``, ``nlist``
    (0 = flat, the default; else IVF over residuals), ``refine`` (as ``faiss_rabitq``). Search:
    ``nprobe`` (IVF), ``k_factor`` (with refine). The train set needs ``2**nbits`` vectors (and
    ``nlist`` for IVF; 256 with ``opq``). Codes are ``ceil(m * nbits / 8)`` bytes; fast-scan
    rounds ``m`` up to an even count and pads lists to blocks of 32 vectors (counted as
    per-vector overhead).
    """, (
        Param("m", "int", 8, low=1, doc="sub-quantizers (codes are ceil(m * nbits / 8) bytes)"),
        Param("nbits", "int", 8, low=1, high=16, doc="bits per sub-quantizer (fast-scan: 4)"),
        Param("opq", "bool", False, doc="learn an OPQ rotation first"),
        Param("fast_scan", "bool", False, doc="faiss's 4-bit fast-scan layout"),
        NLIST,
        REFINE,
    ), (NPROBE, K_FACTOR),
    Conformance({"m": 16, "nbits": 4, "fast_scan": True, "nlist": 8, "refine": True},
                {"nprobe": 8, "k_factor": 40}),
    factory=pq_factory, blame=lambda index: "refine" if index.refine else "nbits",
    make=divisor_m(factory_index), min_train=pq_min_train, check=pq_check,
    search_parameters=compressed_search_parameters)

FaissRaBitQ = faiss_adapter(RABITQ, "FaissRaBitQ", __name__)
FaissPQ = faiss_adapter(PQ, "FaissPQ", __name__)
