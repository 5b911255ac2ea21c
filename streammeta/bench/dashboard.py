"""The Grafana dashboard's main panels rendered to a PNG from a real Prometheus' data.

``streammeta bench dashboard`` starts Prometheus (Debian's ``prometheus`` package, or any
binary on PATH) scraping a ``streammeta demo`` run every second, then asks Prometheus'
HTTP API for every query of the dashboard's main panels over the run (``query_range``, the
same expressions Grafana sends, with its variables filled in) and draws them with
matplotlib: the picture an operator would see, without a Grafana server.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from streammeta.io.broker import free_port

__all__ = ["DASHBOARD", "PrometheusServer", "panel_queries", "render_dashboard", "run_dashboard"]

#: The dashboard JSON in a checkout of the repository.
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
DASHBOARD = DASHBOARD / "streammeta.json"
#: The panels drawn, by title, in this order (the dashboard's main ones).
MAIN_PANELS = (
    "Records in and predictions out",
    "Prequential loss",
    "Speedup",
    "Recovery samples after a boundary (tasks closed in the last 15 min)",
    "Post-boundary loss (tasks closed in the last 15 min)",
    "Learned learning rates",
    "Meta-updates",
    "Meta-update duration",
    "Consumer lag",
)


class PrometheusServer:
    """A Prometheus on loopback scraping ``targets`` every ``scrape_s`` seconds, its data in
    ``data_dir``; ``rules`` are loaded and evaluated at the same interval."""

    def __init__(
        self,
        targets: list[str],
        data_dir: Path,
        *,
        scrape_s: float = 1.0,
        rules: Path | None = None,
        binary: str | None = None,
    ) -> None:
        found = binary or shutil.which("prometheus") or "/usr/bin/prometheus"
        if not Path(found).exists():
            raise FileNotFoundError(
                "prometheus not found: install Debian's package (apt-get install prometheus) "
                "or put the binary on PATH"
            )
        data_dir.mkdir(parents=True, exist_ok=True)
        config = data_dir / "prometheus.yml"
        scrape = {
            "job_name": "streammeta",
            "scrape_interval": f"{scrape_s:g}s",
            "static_configs": [{"targets": targets}],
        }
        body: dict[str, Any] = {
            "global": {
                "scrape_interval": f"{scrape_s:g}s",
                "evaluation_interval": f"{scrape_s:g}s",
            },
            "scrape_configs": [scrape],
        }
        if rules is not None:
            body["rule_files"] = [str(rules.resolve())]
        config.write_text(json.dumps(body, indent=1))  # JSON is YAML
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / "prometheus.log"
        with self.log.open("w") as log:
            self._proc = subprocess.Popen(
                [
                    found,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={data_dir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while not self._ready():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"prometheus did not start; see {self.log}")
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def api(self, path: str, **params: Any) -> Any:
        """GET ``/api/v1/<path>`` and return its ``data``; raises on an error status."""
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=30) as r:
            answer = json.load(r)
        if answer.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {answer}")
        return answer["data"]

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()


def fill_variables(expr: str, *, rate_interval: str, range_: str, interval: str) -> str:
    """A Grafana expression with its variables filled in the way Grafana would."""
    return (
        expr.replace("$instance", ".+")
        .replace("$__rate_interval", rate_interval)
        .replace("$__range", range_)
        .replace("$__interval", interval)
    )


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(title, [(expr, legend), ...]) of every panel with queries, in the dashboard's order."""
    out = []
    for panel in dashboard.get("panels", []):
        targets = [
            (t["expr"], t.get("legendFormat", "")) for t in panel.get("targets", []) if "expr" in t
        ]
        if targets:
            out.append((panel.get("title", ""), targets))
    return out


def _legend(fmt: str, labels: dict[str, str]) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt)
    return text or ",".join(f"{k}={v}" for k, v in labels.items() if k != "__name__") or "value"


def render_dashboard(
    prom: PrometheusServer, dashboard: dict[str, Any], start: float, end: float, out: Path
) -> dict[str, int]:
    """Draw the main panels over ``start..end`` to ``out``; returns the series per panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = dict(panel_queries(dashboard))
    chosen = [t for t in MAIN_PANELS if t in panels]
    span = max(end - start, 1.0)
    step = max(1.0, span / 300)
    fill = {"rate_interval": "15s", "range_": f"{int(span)}s", "interval": f"{int(step)}s"}
    boundaries = prom.api(
        "query_range",
        query="increase(streammeta_boundaries_total[2s]) > 0",
        start=start,
        end=end,
        step=step,
    )
    cuts = [float(t) - start for r in boundaries["result"] for t, _ in r["values"]]
    cols = 3
    rows = (len(chosen) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.2 * rows), squeeze=False)
    counts = {}
    for ax, title in zip(axes.flat, chosen, strict=False):
        n = 0
        for expr, legend in panels[title]:
            data = prom.api(
                "query_range", query=fill_variables(expr, **fill), start=start, end=end, step=step
            )
            for series in data["result"]:
                values = np.asarray(series["values"], dtype=np.float64)
                ax.plot(values[:, 0] - start, values[:, 1], label=_legend(legend, series["metric"]))
                n += 1
        if title == "Prequential loss":
            for x in cuts[:: max(1, len(cuts) // 60)]:  # boundaries, as the annotations show
                ax.axvline(x, color="orange", alpha=0.25, lw=0.6)
        counts[title] = n
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("seconds into the run", fontsize=8)
        ax.tick_params(labelsize=8)
        if n:
            ax.legend(fontsize=7, loc="best")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    for ax in list(axes.flat)[len(chosen) :]:
        ax.axis("off")
    fig.suptitle("streammeta dashboard: main panels, from Prometheus (demo run)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return counts


def run_dashboard(out: Path, *, duration: float, extra: list[str]) -> Path:
    """Run the demo for ``duration`` seconds under a real Prometheus and render the panels."""
    out.mkdir(parents=True, exist_ok=True)
    if not DASHBOARD.exists():
        raise FileNotFoundError(f"{DASHBOARD} not found: run this from a checkout of streammeta")
    dashboard = json.loads(DASHBOARD.read_text())
    port = free_port()
    prom = PrometheusServer([f"127.0.0.1:{port}"], out / "prometheus")
    try:
        start = time.time()
        with (out / "demo.log").open("w") as log:
            demo = subprocess.run(
                [sys.executable, "-m", "streammeta.cli", "demo",
                 "--metrics.port", str(port), "--demo.duration", str(duration),
                 "--demo.out", str(out / "demo"), *extra],
                stdout=log, stderr=subprocess.STDOUT, check=False,
            )  # fmt: skip
        end = time.time()
        if demo.returncode != 0:
            raise RuntimeError(f"the demo failed (exit {demo.returncode}); see {out / 'demo.log'}")
        png = out / "dashboard.png"
        counts = render_dashboard(prom, dashboard, start, end, png)
        (out / "panels.json").write_text(json.dumps(counts, indent=2))
        return png
    finally:
        prom.close()
