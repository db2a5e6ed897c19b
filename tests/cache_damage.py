"""Damaging a verified cache entry on purpose, for the tests that check it is caught."""

import io

import numpy as np


def edit_cache_entry(path, edit):
    """Rewrite a cache entry's arrays with ``edit`` applied, keeping its (now stale) digest."""
    data = path.read_bytes()
    with np.load(io.BytesIO(data[40:])) as stored:
        arrays = {name: stored[name] for name in stored.files}
    edit(arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(data[:40] + buffer.getvalue())
