"""Under cos, a base that is already unit-norm is used as loaded (a memory map stays a map):
no second full-size copy; other rows are normalized as a copy, the file untouched."""

from __future__ import annotations

import numpy as np

from vecbench.core.vectors import is_unit_norm, unit_rows
from vecbench.datasets.builtin import Npy


def test_a_unit_norm_npy_base_stays_memory_mapped(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x[5] = 0.0  # zero rows stay zero under normalization, so they count as done
    np.save(tmp_path / "base.npy", x)
    np.save(tmp_path / "queries.npy", 3 * x[:10])
    data = Npy(base=str(tmp_path / "base.npy"), queries=str(tmp_path / "queries.npy"),
               metric="cos").load()
    assert isinstance(data.base, np.memmap) and not data.base.flags.writeable
    assert np.array_equal(data.base, x)
    assert np.allclose(np.linalg.norm(data.queries, axis=1)[[0, 1]], 1.0, atol=1e-6)
    assert np.array_equal(np.load(tmp_path / "queries.npy"), 3 * x[:10])  # file untouched


def test_rows_off_unit_norm_are_normalized_as_a_copy():
    x = np.ones((70_000, 4), dtype=np.float32) * 0.5  # unit norm, across several blocks
    assert is_unit_norm(x, rows_per_block=65536) and unit_rows(x) is x
    x[69_999] *= 1.001  # one row off, in the last block
    assert not is_unit_norm(x)
    fixed = unit_rows(x)
    assert fixed is not x and is_unit_norm(fixed) and x[69_999, 0] == np.float32(0.5005)
