"""``/metrics``, ``/healthz`` and ``/readyz`` on one port, served from a daemon thread.

It listens on ``metrics.host`` (loopback by default: deployments set ``0.0.0.0`` to be scraped
from outside) and :attr:`MetricsServer.url` is the address actually bound. ``/healthz`` answers
200 while the process runs. ``/readyz`` answers 200 when the service has
partitions assigned, polled recently and checkpointed within ``stale_s`` seconds, else 503 with
the reason. ``/metrics`` is the Prometheus text format of the injected registry.

>>> from prometheus_client import CollectorRegistry
>>> from urllib.request import urlopen
>>> server = MetricsServer(PrometheusSensor(CollectorRegistry()), port=0, stale_s=300)
>>> server.url.startswith("http://127.0.0.1:")
True
>>> urlopen(f"{server.url}/healthz").read()
b'ok\\n'
>>> b"streammeta_predictions_total 0.0" in urlopen(f"{server.url}/metrics").read()
True
>>> server.close()
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from streammeta.config import MetricsConfig
from streammeta.errors import StreamMetaError
from streammeta.metrics.export.prometheus import PrometheusSensor

__all__ = ["MetricsPortError", "MetricsServer", "serve_metrics"]


class MetricsPortError(StreamMetaError):
    """The metrics endpoint cannot listen where it was configured to."""


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class MetricsServer:
    """Serves the sensor's registry and health on ``host:port`` (port 0: a free one; an IPv6
    host such as ``::`` or ``::1`` works too). ``url`` is the address bound, ``where`` says it
    for a log line."""

    def __init__(
        self, sensor: PrometheusSensor, *, port: int, host: str = "127.0.0.1", stale_s: float
    ) -> None:
        self.sensor = sensor
        self.stale_s = stale_s
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, generate_latest(outer.sensor.registry), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    self._send(200, b"ok\n")
                elif path == "/readyz":
                    ready, why = outer.sensor.readiness.check(stale_s=outer.stale_s)
                    self._send(200 if ready else 503, f"{why}\n".encode())
                else:
                    self._send(404, b"not found: try /metrics, /healthz or /readyz\n")

            def _send(self, code: int, body: bytes, kind: str = "text/plain") -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:  # scrapes are not news
                pass

        server = _IPv6Server if ":" in host else ThreadingHTTPServer
        self._httpd = server((host, port), Handler)
        self._httpd.daemon_threads = True
        self.host = str(self._httpd.server_address[0])  # as bound: "localhost" is 127.0.0.1
        self.port = int(self._httpd.server_address[1])
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{shown}:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="metrics-http", daemon=True
        )
        self._thread.start()

    @property
    def where(self) -> str:
        """The bound address for a log line: ``url``, plus "every interface" for a wildcard.

        >>> from prometheus_client import CollectorRegistry
        >>> sensor = PrometheusSensor(CollectorRegistry())
        >>> server = MetricsServer(sensor, port=0, stale_s=1)  # loopback
        >>> server.where == server.url
        True
        >>> server.close()
        >>> server = MetricsServer(sensor, port=0, host="0.0.0.0", stale_s=1)
        >>> server.where == f"http://0.0.0.0:{server.port} (every interface)"
        True
        >>> server.close()
        """
        return f"{self.url} (every interface)" if self.host in ("0.0.0.0", "::") else self.url

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def serve_metrics(config: MetricsConfig, *, or_free_port: bool = False) -> MetricsServer | None:
    """A sensor on a fresh registry, served as ``config`` says; ``None`` when port is 0.
    When the port cannot be bound: any free port with ``or_free_port``, else
    :class:`MetricsPortError` naming the setting."""
    if not config.port:
        return None
    sensor = PrometheusSensor(CollectorRegistry())
    try:
        return MetricsServer(
            sensor, port=config.port, host=config.host, stale_s=config.stale_seconds
        )
    except OSError as exc:
        if or_free_port:
            return MetricsServer(sensor, port=0, host=config.host, stale_s=config.stale_seconds)
        raise MetricsPortError(
            f"metrics.port = {config.port} on metrics.host = {config.host!r}: cannot listen "
            f"({exc.strerror or exc}); choose a free port (--metrics-port), or 0 to serve no "
            "metrics"
        ) from exc
