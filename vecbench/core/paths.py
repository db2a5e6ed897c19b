"""Where vecbench keeps things: the cache folder and the data folder (environment only, no I/O)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$VECBENCH_CACHE``, else ``~/.cache/vecbench``: ground truth, LID, embeddings, fits."""
    return Path(os.environ.get("VECBENCH_CACHE", Path.home() / ".cache" / "vecbench"))


def data_dir() -> Path:
    """Where fetched data lands and recipes' relative paths are resolved: ``$VECBENCH_DATA``,
    else ``<cache>/data``."""
    env = os.environ.get("VECBENCH_DATA")
    return Path(env) if env else cache_dir() / "data"
