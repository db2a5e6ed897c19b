"""What a run was measured on: library versions, CPU, thread counts, git revision."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Callable

PACKAGES = ("vecbench", "numpy", "faiss-cpu", "hnswlib", "scikit-learn", "ml_dtypes",
            "umap-learn")


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The revision of the vecbench checkout, with ``+dirty`` when it has uncommitted changes."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=5)
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str | None]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def set_threads(threads: int) -> dict[str, int]:
    """Set faiss (OpenMP) and BLAS thread counts explicitly; return what is now in force."""
    import faiss
    from threadpoolctl import threadpool_limits

    faiss.omp_set_num_threads(threads)
    threadpool_limits(threads, user_api="blas")
    return {"faiss_omp": faiss.omp_get_max_threads(), "blas": threads, "hnswlib": threads}


def reset_peak_rss() -> None:
    """Start this process's peak RSS (VmHWM) afresh, so that a unit's peak is its own
    (Linux >= 4.0; elsewhere, and where refused, the peak stays the process's)."""
    try:
        fd = os.open("/proc/self/clear_refs", os.O_WRONLY)  # a kernel control, not a file
        try:
            os.write(fd, b"5")
        finally:
            os.close(fd)
    except OSError:
        pass


def peak_rss_bytes() -> int | None:
    """This process's peak resident set size since start or :func:`reset_peak_rss` (VmHWM,
    read in the process itself: ``ru_maxrss`` of a child is inherited across fork and exec)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:  # not Linux: the process's peak (kilobytes on Linux/BSD, bytes on macOS)
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)
    except (ImportError, OSError):
        return None


def describe(threads: dict[str, int] | None = None) -> dict:
    return {
        "versions": versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": cpu_count(),
        "threads": threads or {},
        "git": git_revision(),
    }


def signal_when_parent_dies(sig: int) -> None:
    """On Linux, ask the kernel to send ``sig`` to this process when the thread that started
    it ends (``PR_SET_PDEATHSIG``): it works even while the process is blocked in C code holding
    the GIL, or is not Python at all (called before exec). Elsewhere it does nothing."""
    parent_death_signal(sig)()


def parent_death_signal(sig: int) -> Callable[[], None]:
    """:func:`signal_when_parent_dies` made ready in this process, for a ``preexec_fn``: libc is
    found and loaded here, because a child switched to another user may not be able to import
    ctypes (the interpreter's files can be unreadable to it) or run ldconfig."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return lambda: None
    try:
        prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return lambda: None
    return lambda: prctl(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG
