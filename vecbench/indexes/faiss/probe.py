"""faiss's own verdict on a factory string and its search parameters, without data.

Only faiss parses an ``index_factory`` string, and importing faiss imports numpy. A process that
has faiss loaded (a unit's worker) asks it directly; one that has not (``vecbench validate``,
which stays numpy-free) asks a child process, started at its first question and kept for the
later ones, that runs the same :func:`verdict`. Answers are kept per question.
"""

from __future__ import annotations

import functools
import inspect
import json
import subprocess
import sys
import threading
from typing import Any

#: Dimensions a factory string is parsed at without data: between them, their divisors cover the
#: usual PQ and PCA sizes, so a string that fits the real data parses at one of them.
PROBE_DIMS = (960, 1008, 1024, 768, 1001)


def verdict(faiss: Any, factory: str, params: list, dims: tuple) -> list:
    """``[parse, refused]``: parse is "unparsable", "sized" (refused at every probe dimension
    for its size only: the real dimension decides, at build) or "ok"; refused is the first
    ``[name, value]`` of ``params`` faiss's ParameterSpace does not take on the index (None)."""
    index = None
    for dim in dims:
        try:
            index = faiss.index_factory(dim, factory)
            break
        except RuntimeError as exc:
            if "could not parse" in str(exc):
                return ["unparsable", None]
    if index is None:
        return ["sized", None]
    for name, value in params:
        # k_factor on a refine index is faiss's k_factor_rf; plain k_factor applies to IVFPQ-R
        for target in (["k_factor_rf", name] if name == "k_factor" else [name]):
            try:
                faiss.ParameterSpace().set_index_parameter(index, target, float(value))
                break
            except RuntimeError:
                pass
        else:
            return ["ok", name]
    return ["ok", None]


#: What the child runs: verdict's own source, then one JSON question per line, one answer each.
_CHILD = ("from __future__ import annotations\nimport json, sys\nimport faiss\n" +
          inspect.getsource(verdict) +
          "for line in sys.stdin:\n"
          "    factory, params, dims = json.loads(line)\n"
          "    print(json.dumps(verdict(faiss, factory, params, tuple(dims))), flush=True)\n")
_child: subprocess.Popen | None = None
_lock = threading.Lock()


@functools.lru_cache(maxsize=256)
def ask(factory: str, params: tuple = ()) -> tuple[str, str | None]:
    """faiss's verdict on ``factory`` and ``params`` (``(name, value)`` pairs), here when faiss
    is loaded, else from the child."""
    if "faiss" in sys.modules:
        import faiss

        return tuple(verdict(faiss, factory, [list(p) for p in params], PROBE_DIMS))
    global _child
    with _lock:
        if _child is None or _child.poll() is not None:
            # ends with this process: it reads until its stdin (our end of the pipe) closes
            _child = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
        _child.stdin.write(json.dumps([factory, [list(p) for p in params], PROBE_DIMS]) + "\n")
        _child.stdin.flush()
        answer = _child.stdout.readline()
    if not answer:
        raise RuntimeError(f"the faiss probe process ended without answering about {factory!r}")
    return tuple(json.loads(answer))
