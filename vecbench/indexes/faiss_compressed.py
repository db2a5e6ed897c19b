"""faiss indexes that compress float32 themselves: RaBitQ and PQ / OPQ, flat or IVF, with or
without fast-scan and a refinement copy. Each is a factory string through the shared builder
(``vecbench.indexes.faiss_build``); bytes are read from the built index like every faiss index.

Search parameters are composed into one faiss ``SearchParameters`` object per setting by
:func:`search_parameters`, from the index structure (refine > pre-transform > IVF > codes):
a parameter left out takes the index's own default (faiss's ``nprobe`` 1, RaBitQ's ``qb`` 4,
fast-scan's 8, ``k_factor`` 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vecbench.errors import ConfigError
from vecbench.indexes.base import COMMON_PARAMS, omp_threads
from vecbench.indexes.faiss_build import MAX_K_FACTOR, _FaissIndex, check_number
from vecbench.params import Param, check_bool, check_int, check_str

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


def check_refine(refine: Any) -> bool | str:
    return refine if isinstance(refine, bool) else check_str("refine", refine)


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


class _Compressed(_FaissIndex):
    """Shared by the families: IVF or flat (``nlist``), a refinement copy, search checks."""

    nlist: int
    refine: bool | str
    positive_int_search = ("nprobe",)

    def _min_train(self) -> tuple[int, str]:
        if self.nlist:
            return self.nlist, f"one per IVF list, nlist={self.nlist}"
        return 1, ""

    @classmethod
    def check_search(cls, params: dict) -> dict:
        params = super().check_search(params)
        if "k_factor" in params:
            params["k_factor"] = check_number("k_factor", params["k_factor"], 1.0)
        return params

    def _check_applies(self, params: dict) -> None:
        if "nprobe" in params and not self.nlist:
            raise ConfigError("nprobe applies only to an IVF index; build with nlist >= 1",
                              "nprobe")
        if "k_factor" in params and not self.refine:
            raise ConfigError("k_factor applies only with refine; build with refine: true",
                              "k_factor")

    def _search_parameters(self, faiss: Any, params: dict, k: int) -> Any:
        self._check_applies(params)
        key = tuple(sorted(params.items()))
        return self._reuse(key, lambda: search_parameters(faiss, self.index_, params))


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


class FaissRaBitQ(_Compressed):
    """faiss RaBitQ: ``IndexRaBitQ`` / ``IndexIVFRaBitQ`` and their fast-scan forms.

    Build: ``bits`` (1..9 per dimension; more than 1 needs faiss >= 1.13.1), ``nlist`` (0 =
    flat, the default; else IVF lists, residuals encoded), ``fast_scan`` (faiss's ``RaBitQfs``
    SIMD layout), ``refine`` (false, true = exact re-ranking with a float32 copy, or a faiss
    refine type such as ``SQfp16``). Search: ``nprobe`` (IVF), ``qb`` (bits a query is quantized
    to, 0..8, 0 = float query; fast-scan needs >= 1), ``k_factor`` (with refine: re-rank
    ``k * k_factor`` candidates). Codes include RaBitQ's per-vector factors (8 bytes for one
    bit; more with more bits), all counted in ``code_bytes_per_vector``.
    """

    name = "faiss_rabitq"
    _build_param_names = ("bits", "nlist", "fast_scan", "refine")
    _search_param_names = ("nprobe", "qb", "k_factor")
    params = (
        Param("bits", "int", 1, low=1, high=9,
              doc="bits per dimension (more than 1 needs faiss >= 1.13.1)"),
        NLIST,
        Param("fast_scan", "bool", False, doc="faiss's RaBitQfs SIMD layout"),
        REFINE,
    ) + COMMON_PARAMS
    search_params = (
        NPROBE,
        Param("qb", "int", 0, low=0, high=8,
              doc="bits a query is quantized to (0: float query; fast-scan needs >= 1)"),
        K_FACTOR,
    )

    def __init__(self, *, bits: int = 1, nlist: int = 0, fast_scan: bool = False,
                 refine: bool | str = False, threads: int | None = None, seed: int = 0,
                 **extra: Any):
        super().__init__(threads=threads, seed=seed, extra=extra)
        self.bits = check_int("bits", bits, 1, 9)
        version = _faiss_version()
        if self.bits > 1 and version and version < MULTI_BIT_FAISS:
            raise ConfigError(f"expected 1: multi-bit RaBitQ needs faiss >= 1.13.1, this is "
                              f"{'.'.join(map(str, version))}", "bits")
        self.nlist = check_int("nlist", nlist, 0)
        self.fast_scan = check_bool("fast_scan", fast_scan)
        self.refine = check_refine(refine)

    @classmethod
    def check_search(cls, params: dict) -> dict:
        params = super().check_search(params)
        if "qb" in params:
            params["qb"] = check_int("qb", params["qb"], 0, 8)
        return params

    def _factory(self) -> str:
        codes = "RaBitQ" + ("fs" if self.fast_scan else "") + \
            (str(self.bits) if self.bits > 1 else "")
        return (f"IVF{self.nlist}," if self.nlist else "") + codes + refine_suffix(self.refine)

    def _factory_error_path(self) -> str:
        return "refine" if self.refine else "bits"

    def _details(self) -> dict:
        return {"factory": self._factory(), "bits": self.bits}

    def search(self, q: Any, k: int, **search_params: Any) -> tuple[np.ndarray, np.ndarray]:
        if self.fast_scan and search_params.get("qb", 1) == 0:
            raise ConfigError("expected 1..8 with fast_scan (fast-scan quantizes every query), "
                              "got 0", "qb")
        if not (self.fast_scan and not self.nlist and "qb" in search_params):
            return super().search(q, k, **search_params)
        # faiss's flat fast-scan RaBitQ takes no SearchParameters: qb is set for this call
        import faiss

        q, k, params = self._start_search(q, k, search_params)
        codes = _unwrap(faiss, self.index_)
        faiss_params = self._search_parameters(faiss, params, k)
        built, codes.qb = codes.qb, params["qb"]
        try:
            with omp_threads(self.n_threads):
                distances, ids = self.index_.search(q, k, params=faiss_params)
        finally:
            codes.qb = built
        return ids, distances


class FaissPQ(_Compressed):
    """faiss product quantization: ``IndexPQ`` / ``IndexIVFPQ``, optionally behind an OPQ
    rotation and in fast-scan layout.

    Build: ``m`` (sub-quantizers; must divide the dimension), ``nbits`` (bits per sub-code,
    1..16; fast-scan needs 4), ``opq`` (learn an OPQ rotation first), ``fast_scan``, ``nlist``
    (0 = flat, the default; else IVF over residuals), ``refine`` (as ``faiss_rabitq``). Search:
    ``nprobe`` (IVF), ``k_factor`` (with refine). The train set needs ``2**nbits`` vectors (and
    ``nlist`` for IVF; 256 with ``opq``). Codes are ``ceil(m * nbits / 8)`` bytes; fast-scan rounds ``m`` up to
    an even count and pads lists to blocks of 32 vectors (counted as per-vector overhead).
    """

    name = "faiss_pq"
    _build_param_names = ("m", "nbits", "opq", "fast_scan", "nlist", "refine")
    _search_param_names = ("nprobe", "k_factor")
    params = (
        Param("m", "int", 8, low=1, doc="sub-quantizers (codes are ceil(m * nbits / 8) bytes)"),
        Param("nbits", "int", 8, low=1, high=16, doc="bits per sub-quantizer (fast-scan: 4)"),
        Param("opq", "bool", False, doc="learn an OPQ rotation first"),
        Param("fast_scan", "bool", False, doc="faiss's 4-bit fast-scan layout"),
        NLIST,
        REFINE,
    ) + COMMON_PARAMS
    search_params = (
        NPROBE,
        K_FACTOR,
    )

    def __init__(self, *, m: int = 8, nbits: int = 8, opq: bool = False, fast_scan: bool = False,
                 nlist: int = 0, refine: bool | str = False, threads: int | None = None,
                 seed: int = 0, **extra: Any):
        super().__init__(threads=threads, seed=seed, extra=extra)
        self.m = check_int("m", m, 1)
        self.nbits = check_int("nbits", nbits, 1, 16)
        self.opq = check_bool("opq", opq)
        self.fast_scan = check_bool("fast_scan", fast_scan)
        if self.fast_scan and self.nbits != 4:
            raise ConfigError(f"expected 4 with fast_scan (faiss's fast-scan PQ codes are "
                              f"4-bit), got {self.nbits}", "nbits")
        self.nlist = check_int("nlist", nlist, 0)
        self.refine = check_refine(refine)

    def _min_train(self) -> tuple[int, str]:
        need, why = super()._min_train()
        if self.opq and 256 > max(need, 2**self.nbits):
            return 256, "faiss's OPQ fits its rotation with an 8-bit PQ, 256 centroids"
        if 2**self.nbits > need:
            return 2**self.nbits, f"one per PQ centroid, 2**nbits with nbits={self.nbits}"
        return need, why

    def _factory(self) -> str:
        # "np": no polysemous training (slow, and only useful to Hamming-threshold search)
        codes = f"PQ{self.m}x{self.nbits}" + ("fs" if self.fast_scan else "np")
        return (f"OPQ{self.m}," if self.opq else "") + \
            (f"IVF{self.nlist}," if self.nlist else "") + codes + refine_suffix(self.refine)

    def _factory_error_path(self) -> str:
        return "refine" if self.refine else "nbits"

    def _new_index(self, faiss: Any, metric: int) -> Any:
        if self.dim_ % self.m:
            raise ConfigError(f"expected a divisor of the dimension {self.dim_}, got {self.m}", "m")
        return super()._new_index(faiss, metric)
