"""A Prometheus histogram fed whole numpy arrays at once.

``prometheus_client``'s ``Histogram.observe`` takes one value under a lock; per-record values
(event-time latency) arrive by the micro-batch, so this collector bins a whole array with
``np.searchsorted`` and exposes the usual ``_bucket``/``_sum``/``_count`` series.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> h = ArrayHistogram("demo_seconds", "A demo.", buckets=(0.1, 1.0), registry=registry)
>>> h.observe(np.array([0.05, 0.5, 5.0]))
>>> registry.get_sample_value("demo_seconds_bucket", {"le": "1.0"})
2.0
>>> registry.get_sample_value("demo_seconds_count"), registry.get_sample_value("demo_seconds_sum")
(3.0, 5.55)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["ArrayHistogram"]


class ArrayHistogram(Collector):
    """Cumulative bucket counts and a sum, updated by arrays; NaN values are ignored."""

    def __init__(
        self,
        name: str,
        documentation: str,
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = np.asarray(sorted(buckets), dtype=np.float64)
        self._counts = np.zeros(len(self.bounds) + 1, dtype=np.int64)  # last: above every bound
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        if not len(values):
            return
        idx = np.searchsorted(self.bounds, values, side="left")  # value <= bound: that bucket
        counts = np.bincount(idx, minlength=len(self._counts))
        with self._lock:
            self._counts += counts
            self._sum += float(values.sum())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            cumulative = np.cumsum(self._counts).astype(np.float64).tolist()
            total = self._sum
        buckets = [(floatToGoString(b), c) for b, c in zip(self.bounds, cumulative, strict=False)]
        buckets.append(("+Inf", cumulative[-1]))
        yield HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=total)
