"""faiss families over float32 and binary codes: flat, HNSW (in insertion order), IVF-Flat,
IVF-PQ (with optional refinement), scalar quantizers (flat and HNSW), binary flat / HNSW / IVF.

Each is a :class:`~vecbench.indexes.faiss.adapter.Family`; the registry's class is made from it
by :func:`~vecbench.indexes.faiss.adapter.faiss_adapter`. Search parameters travel in faiss
``SearchParameters`` objects, so an index holds no search state between calls.

Scalar quantizers take float32 (faiss trains its quantizer and encodes) or vecbench's
``float16`` / ``bfloat16`` codes natively when the ``qtype`` stores the same format: ``faiss_sq``
copies the code bytes in unchanged (``add_sa_codes``: faiss's QT_fp16 / QT_bf16 code is the IEEE
half / bfloat16 bit pattern, as numpy stores it); ``faiss_hnsw_sq`` must add float32 (the graph
is built from vectors), so codes are decoded and re-encoded by faiss, lossless for every finite
fp16 and every normal bf16 value (faiss's SIMD encoder flushes bf16 subnormals to 0; the build
report's ``details["native_mismatch_bytes"]`` counts such bytes). Under ``cos`` both add
normalized copies. Integer codes (``int8`` / ``int4``) are never accepted natively: faiss's
quantizer fits its own ranges and decodes to the middle of a level, and an index is handed the
codes without the quantizer's scales. faiss rounds fp16 to nearest but breaks exact ties away
from zero where numpy rounds half to even.

Binary families index vecbench's ``binary`` codes natively (uint8 rows of ``np.packbits`` bits),
ceil(d / 8) bytes per vector; given float vectors they binarize them as the ``binary`` quantizer
does (bit = x > 0). The distance is Hamming whatever ``metric`` says (checked and recorded).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vecbench.core.errors import ConfigError
from vecbench.indexes.base import Conformance
from vecbench.indexes.codes import code_kind_of
from vecbench.indexes.faiss.adapter import MAX_K_FACTOR, Family, faiss_adapter, factory_index
from vecbench.core.params import Param

if TYPE_CHECKING:
    import numpy as np

#: the names this module registers (read by vecbench.indexes without importing it)
REGISTER = {"flat": "FlatIndex",
            "faiss_hnsw": "FaissHNSW",
            "faiss_ivf": "FaissIVF",
            "faiss_ivfpq": "FaissIVFPQ",
            "faiss_sq": "FaissSQ",
            "faiss_hnsw_sq": "FaissHNSWSQ",
            "faiss_binary_flat": "FaissBinaryFlat",
            "faiss_binary_hnsw": "FaissBinaryHNSW",
            "faiss_binary_ivf": "FaissBinaryIVF"}

#: faiss's default efSearch.
DEFAULT_EF_SEARCH = 16
#: How faiss_hnsw gives each vector its level (see HNSW's doc).
LEVEL_MODES = ("insertion", "content")
#: qtype -> faiss ScalarQuantizer attribute.
QTYPES = {
    "fp16": "QT_fp16", "bf16": "QT_bf16", "8bit": "QT_8bit", "6bit": "QT_6bit",
    "4bit": "QT_4bit", "8bit_uniform": "QT_8bit_uniform", "4bit_uniform": "QT_4bit_uniform",
}
#: qtype -> the vecbench code kind it stores bit-identically (and so accepts natively).
NATIVE_KINDS = {"fp16": "fp16", "bf16": "bf16"}

GRAPH = Conformance({"M": 16, "ef_construction": 200}, {"ef": 200})

# -- HNSW ------------------------------------------------------------------------------------

HNSW_PARAMS = (
    Param("M", "int", 16, low=2, doc="links per node (2*M on the bottom layer)"),
    Param("ef_construction", "int", 200, low=1, doc="beam width while inserting"),
    Param("keep_order", "bool", True, doc="add one vector at a time so the insertion order "
          "holds (single-threaded build); false: one batch on all threads, faiss's order"),
    Param("levels", "choice", "insertion", choices=LEVEL_MODES, doc="insertion: faiss "
          "draws the i-th inserted vector's level; content: a level hashed from the "
          "vector's bytes and seed, the same under every order"),
)
EF = (Param("ef", "int", DEFAULT_EF_SEARCH, low=1,
            doc="beam width of a search; the effective beam is max(ef, k)"),)


def hnsw_search_parameters(index: Any, faiss: Any, params: dict, k: int) -> tuple:
    ef = max(params.get("ef", DEFAULT_EF_SEARCH), k)
    return ("ef", ef), lambda: (faiss.SearchParametersHNSW(efSearch=ef),)


def add_in_order(index: Any, made: Any, x: np.ndarray, preset: np.ndarray | None = None) -> None:
    """Add ``x`` in the order given (``keep_order``: one vector per call, since IndexHNSW.add
    reorders a batch by level); ``preset`` levels (level + 1 each) are pushed first, which
    IndexHNSW::add then takes instead of drawing its own."""
    if not index.keep_order:
        for level in () if preset is None else preset:
            made.hnsw.levels.push_back(int(level))
        made.add(x)
        return
    for row in range(len(x)):  # a batch of one cannot be reordered
        if preset is not None:
            made.hnsw.levels.push_back(int(preset[row]))
        made.add(x[row:row + 1])


def hnsw_add(index: Any, made: Any, x: np.ndarray) -> None:
    preset = content_levels(x, index.seed, made.hnsw) + 1 if index.levels == "content" else None
    add_in_order(index, made, x, preset)


def content_levels(x: np.ndarray, seed: int, hnsw: Any) -> np.ndarray:
    """A level per row of ``x`` (0 = bottom only) from the row's bytes and ``seed`` alone,
    distributed as faiss's ``HNSW::random_level`` (``hnsw.assign_probas``).

    Hand-written: neither faiss nor numpy has a seeded per-row hash. A keyed blake2b of each row
    is a uniform draw in [0, 1), mapped through faiss's level probabilities as faiss maps its own.
    """
    import hashlib

    import faiss
    import numpy as np

    key = seed.to_bytes(8, "little")
    rows = np.ascontiguousarray(x)
    draws = np.fromiter(
        (int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8, key=key).digest(),
                        "little") >> 11 for row in rows), dtype=np.float64, count=len(rows))
    uniform = draws * 2.0**-53
    cumulative = np.cumsum(faiss.vector_to_array(hnsw.assign_probas))
    levels = np.searchsorted(cumulative, uniform, side="right")
    return np.minimum(levels, len(cumulative) - 1).astype(np.int64)


def _hnsw_make(index: Any, faiss: Any, metric: int) -> Any:
    made = factory_index(index, faiss, metric)  # seeds hnsw.rng
    made.hnsw.efConstruction = index.ef_construction
    return made


#: what the HNSW families share: order, threads, search
IN_ORDER = dict(honours_order=True, honours_order_for=lambda index: index.keep_order,
                used_threads=lambda index, threads: 1 if index.keep_order else threads,
                search_parameters=hnsw_search_parameters, conformance=GRAPH)

HNSW = Family(
    "faiss_hnsw", """faiss ``IndexHNSWFlat``. Build: ``M`` (>= 2), ``ef_construction`` (>= 1),
    ``keep_order``, ``levels``; search: ``ef`` (>= 1, default faiss's 16; the effective beam is
    ``max(ef, k)``).

    ``seed`` seeds faiss's level generator (``hnsw.rng``, otherwise fixed at 12345).
    ``IndexHNSW.add`` inserts a batch level by level, highest first, shuffled within a level;
    with ``keep_order=True`` (the default) vectors are added one at a time, so they are
    inserted in the order given, as hnswlib does. That build runs on one thread whatever
    ``threads`` says (faiss parallelizes only within a batch) and costs about 1.2-1.3x a
    single-threaded batch build. ``keep_order=False`` adds one batch on all threads; the order
    is then faiss's, and ``honours_order`` is False for that instance.

    ``levels: insertion`` (the default) is faiss's own draw: the i-th vector inserted gets the
    i-th level from ``hnsw.rng``, so permuting the insertion order also reassigns levels.
    ``levels: content`` draws each vector's level from a hash of its bytes keyed by ``seed``,
    with faiss's level distribution, and presets it; a vector then keeps its level under any
    insertion order, and an ordering experiment measures the order alone.
    """, HNSW_PARAMS, EF, factory=lambda index: f"HNSW{index.M},Flat",
    blame=lambda index: "M", make=_hnsw_make, add=hnsw_add, **IN_ORDER)

# -- flat and IVF ----------------------------------------------------------------------------

FLAT = Family("flat", """Brute-force kNN (faiss ``IndexFlatL2`` / ``IndexFlatIP``; ``cos`` = IP
    on unit vectors).

    No build or search parameters. Exact, so insertion order changes nothing but the order of
    exactly tied results.
    """, mutation="flat")

NLIST = Param("nlist", "int", 256, low=1, doc="IVF lists (k-means centroids, fitted on train, "
              "which needs at least nlist vectors)")
NPROBE = Param("nprobe", "int", 1, low=1,
               doc="lists searched per query (nprobe >= nlist is exhaustive)")


def ivf_search_parameters(index: Any, faiss: Any, params: dict, k: int) -> tuple:
    nprobe = params.get("nprobe", 1)
    return ("nprobe", nprobe), lambda: (faiss.SearchParametersIVF(nprobe=nprobe),)


def ivf_min_train(index: Any) -> tuple[int, str]:
    return index.nlist, f"one per IVF list, nlist={index.nlist}"


IVF = Family(
    "faiss_ivf", """faiss ``IndexIVFFlat``. Build: ``nlist`` (>= 1, default 256), k-means seeded
    by ``seed`` and fitted on ``train`` (which needs at least ``nlist`` vectors); search:
    ``nprobe`` (>= 1, default faiss's 1; ``nprobe >= nlist`` is exhaustive).""",
    (NLIST,), (NPROBE,), Conformance({"nlist": 16}, {"nprobe": 16}),
    factory=lambda index: f"IVF{index.nlist},Flat", blame=lambda index: "nlist",
    min_train=ivf_min_train, search_parameters=ivf_search_parameters, mutation="ivf")


def divisor_m(make: Any) -> Any:
    """``make`` that first checks that ``m`` divides the dimension (PQ sub-quantizers)."""
    def checked(index: Any, faiss: Any, metric: int) -> Any:
        if index.dim_ % index.m:
            raise ConfigError(f"expected a divisor of the dimension {index.dim_}, got {index.m}",
                              "m")
        return make(index, faiss, metric)
    return checked


def ivfpq_factory(index: Any) -> str:
    # "np": no polysemous training, which the factory otherwise runs (slow, and only useful to
    # Hamming-threshold search, which this adapter does not expose)
    factory = f"IVF{index.nlist},PQ{index.m}x{index.nbits}np"
    if index.refine is True or index.refine == "Flat":
        return factory + ",RFlat"
    return factory + (f",Refine({index.refine})" if index.refine else "")


def ivfpq_min_train(index: Any) -> tuple[int, str]:
    if 2**index.nbits > index.nlist:
        return 2**index.nbits, f"one per PQ centroid, 2**nbits with nbits={index.nbits}"
    return ivf_min_train(index)


def ivfpq_search_parameters(index: Any, faiss: Any, params: dict, k: int) -> tuple:
    if not index.refine:
        if "k_factor" in params:
            raise ConfigError("k_factor applies only with refine; build with refine: true",
                              "k_factor")
        return ivf_search_parameters(index, faiss, params, k)
    nprobe, k_factor = params.get("nprobe", 1), params.get("k_factor", 1)

    def make() -> tuple:
        ivf = faiss.SearchParametersIVF(nprobe=nprobe)
        return faiss.IndexRefineSearchParameters(k_factor=k_factor, base_index_params=ivf), ivf
    return ("refine", nprobe, k_factor), make


IVFPQ = Family(
    "faiss_ivfpq", """faiss ``IndexIVFPQ``. Build: ``nlist``, ``m`` (sub-quantizers; must divide
    the dimension), ``nbits`` (bits per sub-code, 1..16), ``refine`` (False, True = exact
    re-ranking of the candidates with ``IndexRefineFlat``, or a faiss refine type such as
    ``"SQfp16"``, ``"SQ8"``). Search: ``nprobe``, and with ``refine`` ``k_factor`` (>= 1,
    default 1: re-rank ``k * k_factor`` PQ candidates). The train set needs
    ``max(nlist, 2**nbits)`` vectors.
    """, (
        NLIST,
        Param("m", "int", 8, low=1, doc="PQ sub-quantizers (must divide the dimension)"),
        Param("nbits", "int", 8, low=1, high=16, doc="bits per sub-code (train needs 2**nbits "
              "vectors)"),
        Param("refine", "bool|str", False, doc="re-rank candidates: true = exact (RFlat), or a "
              "faiss refine type such as SQfp16, SQ8"),
    ), (NPROBE, Param("k_factor", "number", 1, low=1, high=MAX_K_FACTOR,
                      doc="with refine: re-rank k * k_factor PQ candidates")),
    Conformance({"nlist": 8, "m": 16, "nbits": 6, "refine": True}, {"nprobe": 8, "k_factor": 40}),
    factory=ivfpq_factory, blame=lambda index: "refine" if index.refine else "nbits",
    make=divisor_m(factory_index), min_train=ivfpq_min_train,
    search_parameters=ivfpq_search_parameters)

# -- scalar quantizers -----------------------------------------------------------------------

QTYPE = Param("qtype", "choice", "8bit", choices=tuple(QTYPES), doc="scalar quantizer type; "
              "fp16/bf16 take vecbench's float16/bfloat16 codes natively")


def sq_prepare(index: Any, x: Any) -> None:
    """The input kind: float32, or codes the qtype stores unchanged (else a ConfigError)."""
    import numpy as np

    x = np.asarray(x)
    kind = code_kind_of(x)
    if kind not in index.accepts:
        raise ConfigError(f"{index.name} with qtype {index.qtype} cannot store {kind} codes "
                          f"unchanged; use qtype {kind}, or no {kind} quantizer in the "
                          "pipeline", "qtype")
    index.input_kind_ = kind
    index.float_input_ = kind == "float32"
    index._native_codes = x if kind != "float32" else None
    # code bytes stored unlike the codes handed in (None: float input, or cos normalized)
    index.native_mismatch_bytes_ = None


def sq_add(index: Any, made: Any, x: np.ndarray) -> None:
    import numpy as np

    codes = index._native_codes
    if codes is None or index.metric_ == "cos":
        made.add(x)
        return
    made.add_sa_codes(np.ascontiguousarray(codes).view(np.uint8))  # the bytes as vecbench wrote
    index.native_mismatch_bytes_ = 0


def hnsw_sq_add(index: Any, made: Any, x: np.ndarray) -> None:
    import numpy as np

    add_in_order(index, made, x)
    codes = index._native_codes
    if codes is not None and index.metric_ != "cos":
        # code bytes where faiss's re-encoding differs from vecbench's (bf16 subnormals)
        expected = np.ascontiguousarray(codes).view(np.uint8).reshape(-1)
        index.native_mismatch_bytes_ = int(np.count_nonzero(stored_codes(made) != expected))


def stored_codes(index: Any) -> np.ndarray:
    """The code bytes of an index with flat-codes storage (flat SQ, or HNSW's storage)."""
    import faiss

    storage = faiss.downcast_index(getattr(index, "storage", index))
    return faiss.vector_to_array(storage.codes)


def _qtype(index: Any, faiss: Any) -> int:
    return getattr(faiss.ScalarQuantizer, QTYPES[index.qtype])


def _hnsw_sq_make(index: Any, faiss: Any, metric: int) -> Any:
    made = faiss.IndexHNSWSQ(index.dim_, _qtype(index, faiss), index.M, metric)
    made.hnsw.efConstruction = index.ef_construction
    made.hnsw.rng = faiss.RandomGenerator(index.seed)
    return made


#: what both scalar-quantizer families share: the native code hand-off and its record
SCALAR = dict(
    accepts=frozenset({"float32", *NATIVE_KINDS.values()}),  # over all qtypes
    accepts_for=lambda index: frozenset(
        {"float32"} | ({NATIVE_KINDS[index.qtype]} if index.qtype in NATIVE_KINDS else set())),
    prepare=sq_prepare,
    details=lambda index: {"qtype": index.qtype, "input": index.input_kind_,
                           "native_mismatch_bytes": index.native_mismatch_bytes_})

SQ = Family(
    "faiss_sq", """faiss ``IndexScalarQuantizer``: exhaustive search over scalar-quantized codes.

    Build: ``qtype`` (fp16, bf16, 8bit, 6bit, 4bit, 8bit_uniform, 4bit_uniform; default 8bit;
    the integer types train per-dimension ranges, the ``_uniform`` ones one range). No search
    parameters. Accepts float16 codes natively with qtype fp16 and bfloat16 codes with bf16.
    """, (QTYPE,), conformance=Conformance({"qtype": "fp16"}, {}),
    make=lambda index, faiss, metric: faiss.IndexScalarQuantizer(
        index.dim_, _qtype(index, faiss), metric),
    add=sq_add, **SCALAR)

HNSW_SQ = Family(
    "faiss_hnsw_sq", """faiss ``IndexHNSWSQ``: an HNSW graph over scalar-quantized vectors.

    Build: ``qtype`` (as ``faiss_sq``), ``M``, ``ef_construction``, ``keep_order`` (as
    ``faiss_hnsw``: one vector per add call, so insertion order holds); search: ``ef``.
    Accepts float16 / bfloat16 codes natively with qtype fp16 / bf16 (decoded and re-encoded
    by faiss, lossless; see the module docstring).
    """, (Param("qtype", "choice", "8bit", choices=tuple(QTYPES), doc="scalar quantizer "
                "type (as faiss_sq)"),) + HNSW_PARAMS[:3], EF,
    make=_hnsw_sq_make, add=hnsw_sq_add,
    **{**IN_ORDER, "conformance": Conformance(
        {"qtype": "fp16", "M": 16, "ef_construction": 200}, {"ef": 200})}, **SCALAR)

# -- binary codes ----------------------------------------------------------------------------

HAMMING = dict(binary=True, accepts=frozenset({"binary"}),
               details=lambda index: {"bits": 8 * index.code_bytes_})


def _binary_hnsw_make(index: Any, faiss: Any, bits: int) -> Any:
    made = faiss.IndexBinaryHNSW(bits, index.M)
    made.hnsw.efConstruction = index.ef_construction
    made.hnsw.rng = faiss.RandomGenerator(index.seed)
    return made


def _binary_ivf_make(index: Any, faiss: Any, bits: int) -> Any:
    # the factory's index owns its coarse quantizer (no SWIG lifetime to manage)
    made = faiss.index_binary_factory(bits, f"BIVF{index.nlist}")  # already an IndexBinaryIVF
    made.cp.seed = index.seed % (2**31 - 1)  # faiss's k-means seed is a C int
    return made


BINARY_FLAT = Family(
    "faiss_binary_flat", """faiss ``IndexBinaryFlat``: exact Hamming kNN. No build or search
    parameters.""", make=lambda index, faiss, bits: faiss.IndexBinaryFlat(bits), **HAMMING)

BINARY_HNSW = Family(
    "faiss_binary_hnsw", """faiss ``IndexBinaryHNSW``. Build: ``M``, ``ef_construction``,
    ``keep_order``, search: ``ef``, all as ``faiss_hnsw`` (one vector per add call keeps the
    insertion order).""", HNSW_PARAMS, EF, make=_binary_hnsw_make, add=hnsw_add,
    **IN_ORDER, **HAMMING)

BINARY_IVF = Family(
    "faiss_binary_ivf", """faiss ``IndexBinaryIVF`` with a flat Hamming coarse quantizer.
    Build: ``nlist`` (k-means on the bits, seeded by ``seed``, fitted on ``train`` binarized,
    else on the base codes); search: ``nprobe``, both as ``faiss_ivf``.""",
    (NLIST,), (NPROBE,), Conformance({"nlist": 16}, {"nprobe": 16}), make=_binary_ivf_make,
    min_train=ivf_min_train, search_parameters=ivf_search_parameters, **HAMMING)

FlatIndex = faiss_adapter(FLAT, "FlatIndex", __name__)
FaissHNSW = faiss_adapter(HNSW, "FaissHNSW", __name__)
FaissIVF = faiss_adapter(IVF, "FaissIVF", __name__)
FaissIVFPQ = faiss_adapter(IVFPQ, "FaissIVFPQ", __name__)
FaissSQ = faiss_adapter(SQ, "FaissSQ", __name__)
FaissHNSWSQ = faiss_adapter(HNSW_SQ, "FaissHNSWSQ", __name__)
FaissBinaryFlat = faiss_adapter(BINARY_FLAT, "FaissBinaryFlat", __name__)
FaissBinaryHNSW = faiss_adapter(BINARY_HNSW, "FaissBinaryHNSW", __name__)
FaissBinaryIVF = faiss_adapter(BINARY_IVF, "FaissBinaryIVF", __name__)
