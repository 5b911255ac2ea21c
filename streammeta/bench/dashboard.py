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
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from streammeta.bench.prometheus import PrometheusServer, panels, to_promql
from streammeta.io.broker import free_port

__all__ = ["DASHBOARD", "panel_queries", "render_dashboard", "run_dashboard"]

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


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(title, [(expr, legend), ...]) of every panel with queries, in the dashboard's order."""
    out = []
    for panel in panels(dashboard):
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
    variables = {
        "instance": ".+",
        "__rate_interval": "15s",  # four scrapes at 1 s, as Grafana would choose
        "__range": f"{int(span)}s",
        "__interval": f"{int(step)}s",
    }
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
                "query_range", query=to_promql(expr, variables), start=start, end=end, step=step
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
    scrape = {"job_name": "streammeta", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
    prom = PrometheusServer(
        {"global": {"scrape_interval": "1s"}, "scrape_configs": [scrape]}, out / "prometheus"
    )
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
