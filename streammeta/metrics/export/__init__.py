"""The export side of the metrics, above the run loop: the Prometheus sensor that records the
run loop's hooks, the declarations it records on, ``/readyz``, and the HTTP server."""

from streammeta.metrics.export.prometheus import PrometheusSensor
from streammeta.metrics.export.server import MetricsPortError, MetricsServer, serve_metrics

__all__ = ["MetricsPortError", "MetricsServer", "PrometheusSensor", "serve_metrics"]
