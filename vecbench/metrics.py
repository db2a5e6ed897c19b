"""The public face of the metric registry for plugin authors (``from vecbench.metrics import
Metric``, ``vecbench.metrics.register``): the registry itself is :mod:`vecbench.evaluate.metrics`.
"""

from vecbench.evaluate.metrics import (  # noqa: F401
    METRICS, Metric, MetricUnavailable, Setting, lookup, register)

__all__ = ["METRICS", "Metric", "MetricUnavailable", "Setting", "lookup", "register"]
