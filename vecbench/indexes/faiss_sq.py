"""faiss scalar-quantizer indexes: flat (``IndexScalarQuantizer``) and HNSW (``IndexHNSWSQ``).

Two ways in:

- float32 vectors: faiss trains its quantizer (on ``train``, else the base) and encodes itself;
  the build report's ``code_bytes_per_vector`` is faiss's code size (fp16: 2d,
  bf16: 2d, 8bit: d, 6bit: ceil(3d/4), 4bit: ceil(d/2)). faiss rounds fp16 to nearest but
  breaks exact ties away from zero where numpy (so vecbench's ``float16``) rounds half to even.
- native codes from vecbench's ``float16`` / ``bfloat16`` quantizers (float16 / bfloat16 arrays),
  accepted when the ``qtype`` stores the same format. ``faiss_sq`` copies the code bytes in
  unchanged (``add_sa_codes``: faiss's QT_fp16 / QT_bf16 code is the IEEE half / bfloat16 bit
  pattern, little-endian, as numpy stores it). ``faiss_hnsw_sq`` must add float32 (the graph is
  built from vectors): the codes are decoded and re-encoded by faiss, lossless for every finite
  fp16 value and every normal bf16 value (faiss's SIMD encoder flushes bf16 subnormals,
  |x| < 1.2e-38, to 0; the build report's ``details["native_mismatch_bytes"]`` counts such
  code bytes).
  Under ``cos`` both add normalized copies, so the stored codes are faiss's encoding of the
  normalized decoded vectors, not vecbench's codes bit for bit.

Integer codes (vecbench ``int8`` / ``int4``) are never accepted natively: faiss's 8bit/4bit
quantizer fits its own per-dimension range on the train set, encodes by truncation and decodes
to the middle of a level, while vecbench's rounds and decodes to the level itself; and an index
is handed the codes without the quantizer's scales, so it could not map them exactly anyway.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vecbench.errors import ConfigError
from vecbench.indexes.base import COMMON_PARAMS, BuildReport
from vecbench.indexes.faiss_build import _FaissIndex
from vecbench.indexes.faiss_index import FaissHNSW
from vecbench.params import Param, check_choice

#: qtype -> faiss ScalarQuantizer attribute.
QTYPES = {
    "fp16": "QT_fp16", "bf16": "QT_bf16", "8bit": "QT_8bit", "6bit": "QT_6bit",
    "4bit": "QT_4bit", "8bit_uniform": "QT_8bit_uniform", "4bit_uniform": "QT_4bit_uniform",
}
#: qtype -> the vecbench code kind it stores bit-identically (and so accepts natively).
NATIVE_KINDS = {"fp16": "fp16", "bf16": "bf16"}


def code_kind_of(x: np.ndarray) -> str:
    """The code kind an array holds, judged by its dtype: fp16, bf16, or float32 for the rest."""
    if x.dtype == np.float16:
        return "fp16"
    if x.dtype.name == "bfloat16":  # ml_dtypes.bfloat16, without importing ml_dtypes here
        return "bf16"
    return "float32"


class _ScalarQuantized:
    """The qtype parameter and the native code hand-off, shared by the flat and HNSW adapters
    (a mixin placed before the faiss base class)."""

    name: str
    accepts = frozenset({"float32", *NATIVE_KINDS.values()})  # over all qtypes; see __init__
    _native_codes: np.ndarray | None = None

    def _set_qtype(self, qtype: Any) -> None:
        self.qtype = check_choice("qtype", qtype, tuple(QTYPES))
        # what this instance indexes natively (the class attribute is the union over qtypes)
        native = NATIVE_KINDS.get(self.qtype)
        self.accepts = frozenset({"float32"} | ({native} if native else set()))

    def _quantizer_type(self, faiss: Any) -> int:
        return getattr(faiss.ScalarQuantizer, QTYPES[self.qtype])

    def _given_floats(self) -> bool:
        return self.input_kind_ == "float32"

    def _details(self) -> dict:
        return {"qtype": self.qtype, "input": self.input_kind_,
                "native_mismatch_bytes": self.native_mismatch_bytes_}

    def build(self, x: Any, metric: str, *, train: Any = None,
              threads: int | None = None) -> BuildReport:
        x = np.asarray(x)
        kind = code_kind_of(x)
        if kind not in self.accepts:
            raise ConfigError(f"{self.name} with qtype {self.qtype} cannot store {kind} codes "
                              f"unchanged; use qtype {kind}, or no {kind} quantizer in the "
                              "pipeline", "qtype")
        self.input_kind_ = kind
        self._native_codes = x if kind != "float32" else None
        # code bytes stored unlike the codes handed in (None: float input, or cos normalized)
        self.native_mismatch_bytes_: int | None = None
        try:
            return super().build(x, metric, train=train, threads=threads)
        finally:
            self._native_codes = None


class FaissSQ(_ScalarQuantized, _FaissIndex):
    """faiss ``IndexScalarQuantizer``: exhaustive search over scalar-quantized codes.

    Build: ``qtype`` (fp16, bf16, 8bit, 6bit, 4bit, 8bit_uniform, 4bit_uniform; default 8bit;
    the integer types train per-dimension ranges, the ``_uniform`` ones one range). No search
    parameters. Accepts float16 codes natively with qtype fp16 and bfloat16 codes with bf16.
    """

    name = "faiss_sq"
    _build_param_names = ("qtype",)
    params = (Param("qtype", "choice", "8bit", choices=tuple(QTYPES), doc="scalar quantizer "
                    "type; fp16/bf16 take vecbench's float16/bfloat16 codes natively"),
              ) + COMMON_PARAMS

    def __init__(self, *, qtype: str = "8bit", threads: int | None = None, seed: int = 0,
                 **extra: Any):
        super().__init__(threads=threads, seed=seed, extra=extra)
        self._set_qtype(qtype)

    def _new_index(self, faiss: Any, metric: int) -> Any:
        return faiss.IndexScalarQuantizer(self.dim_, self._quantizer_type(faiss), metric)

    def _add(self, index: Any, x: np.ndarray) -> None:
        codes = self._native_codes
        if codes is None or self.metric_ == "cos":
            index.add(x)
            return
        # the code bytes exactly as vecbench's quantizer wrote them
        index.add_sa_codes(np.ascontiguousarray(codes).view(np.uint8))
        self.native_mismatch_bytes_ = 0


class FaissHNSWSQ(_ScalarQuantized, FaissHNSW):
    """faiss ``IndexHNSWSQ``: an HNSW graph over scalar-quantized vectors.

    Build: ``qtype`` (as ``faiss_sq``), ``M``, ``ef_construction``, ``keep_order`` (as
    ``faiss_hnsw``: one vector per add call, so insertion order holds); search: ``ef``.
    Accepts float16 / bfloat16 codes natively with qtype fp16 / bf16 (decoded and re-encoded
    by faiss, lossless; see the module docstring).
    """

    name = "faiss_hnsw_sq"
    _build_param_names = ("qtype", "M", "ef_construction", "keep_order")
    params = (Param("qtype", "choice", "8bit", choices=tuple(QTYPES), doc="scalar quantizer "
                    "type (as faiss_sq)"),) + FaissHNSW.params[:3] + COMMON_PARAMS

    def __init__(self, *, qtype: str = "8bit", M: int = 16, ef_construction: int = 200,
                 keep_order: bool = True, threads: int | None = None, seed: int = 0,
                 **extra: Any):
        super().__init__(M=M, ef_construction=ef_construction, keep_order=keep_order,
                         threads=threads, seed=seed, **extra)
        self._set_qtype(qtype)

    def _new_index(self, faiss: Any, metric: int) -> Any:
        index = faiss.IndexHNSWSQ(self.dim_, self._quantizer_type(faiss), self.M, metric)
        index.hnsw.efConstruction = self.ef_construction
        index.hnsw.rng = faiss.RandomGenerator(self.seed)
        return index

    def _add(self, index: Any, x: np.ndarray) -> None:
        super()._add(index, x)
        codes = self._native_codes
        if codes is not None and self.metric_ != "cos":
            # code bytes where faiss's re-encoding differs from vecbench's (bf16 subnormals)
            expected = np.ascontiguousarray(codes).view(np.uint8).reshape(-1)
            self.native_mismatch_bytes_ = int(np.count_nonzero(stored_codes(index) != expected))


def stored_codes(index: Any) -> np.ndarray:
    """The code bytes of an index with flat-codes storage (flat SQ, or HNSW's storage)."""
    import faiss

    storage = faiss.downcast_index(getattr(index, "storage", index))
    return faiss.vector_to_array(storage.codes)
