"""A real Prometheus on loopback, and the Grafana dashboard's queries in PromQL, for the
dashboard renderer and the tests that check the dashboard and the rules against live data.

>>> to_promql('rate(x{instance=~"$instance"}[$__rate_interval])', {"instance": ".+",
...           "__rate_interval": "1m"})
'rate(x{instance=~".+"}[1m])'
>>> [p["title"] for p in panels({"panels": [{"type": "row", "panels": [{"title": "a"}]},
...                                         {"type": "timeseries", "title": "b"}]})]
['a', 'b']
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import urlopen

from streammeta.io.broker import free_port

__all__ = ["PrometheusServer", "find_prometheus", "panels", "to_promql"]


def find_prometheus() -> str | None:
    """The prometheus binary: on PATH, else Debian's; ``None`` when neither exists."""
    found = shutil.which("prometheus") or "/usr/bin/prometheus"
    return found if Path(found).is_file() else None


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that is not a row, the panels of collapsed rows included, in order."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def to_promql(expr: str, variables: Mapping[str, str]) -> str:
    """``expr`` with Grafana's ``$name``, ``${name}`` and ``[[name]]`` variables replaced by
    ``variables[name]`` (longest names first, so ``$__interval_ms`` is not ``$__interval``)."""
    for name in sorted(variables, key=len, reverse=True):
        pattern = rf"\$\{{{re.escape(name)}\}}|\[\[{re.escape(name)}\]\]|\${re.escape(name)}\b"
        expr = re.sub(pattern, variables[name], expr)
    return expr


class PrometheusServer:
    """Prometheus started with ``config`` (the prometheus.yml contents as a mapping), its data
    and log in ``data_dir``, its web API on a free loopback port; ready when constructed."""

    def __init__(
        self,
        config: Mapping[str, Any],
        data_dir: Path,
        *,
        binary: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        found = binary or find_prometheus()
        if found is None:
            raise FileNotFoundError(
                "prometheus not found: install Debian's package (apt-get install prometheus, "
                "or `make prometheus-tools`) or put the binary on PATH"
            )
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / "prometheus.yml"
        path.write_text(json.dumps(config, indent=1))  # JSON is YAML
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / "prometheus.log"
        with self.log.open("w") as log:
            self._proc = subprocess.Popen(
                [
                    found,
                    f"--config.file={path}",
                    f"--storage.tsdb.path={data_dir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while not self._ready():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"prometheus did not start: {self.log_tail()}")
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            with urlopen(f"{self.url}/-/ready", timeout=1) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def get(self, path: str, **params: Any) -> Any:
        """The JSON answer of ``GET path?params``, errors included (Prometheus explains a bad
        query in the body of its 400 and 422 answers)."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urlopen(f"{self.url}{path}{query}", timeout=30) as answer:
                return json.load(answer)
        except HTTPError as exc:
            if exc.code not in (400, 422):
                raise
            return json.load(exc)

    def api(self, path: str, **params: Any) -> Any:
        """The ``data`` of ``/api/v1/<path>``; raises with Prometheus' error otherwise."""
        answer = self.get(f"/api/v1/{path}", **params)
        if answer.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {answer.get('error', answer)}")
        return answer["data"]

    def values(self, expr: str) -> list[float]:
        """The values of an instant query."""
        return [float(r["value"][1]) for r in self.api("query", query=expr)["result"]]

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
