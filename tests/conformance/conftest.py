"""Fixtures the index suites share (test_index_conformance.py, test_engines_conformance.py): the
conformance data and its exact neighbours, per metric, once per module."""

from __future__ import annotations

import numpy as np
import pytest

from vecbench.conformance import indexes as conformance


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """Gaussian directions with norms spread over 16x, so l2, ip and cos neighbours differ."""
    return conformance.data()


@pytest.fixture(scope="module")
def truth(data) -> dict[str, np.ndarray]:
    return {metric: conformance.truth(metric) for metric in conformance.METRICS}
