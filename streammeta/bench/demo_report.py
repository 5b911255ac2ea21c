"""The demo's report: ``summary.json`` (figures per learner, detection as Prometheus counts it,
the pipeline's status, the service's counts, the config), ``report.md`` and its plot."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from streammeta.bench.demo_status import DemoStatus
from streammeta.config import Config, to_dict
from streammeta.metrics.export.prometheus import PrometheusSensor
from streammeta.metrics.recovery import loss_curve, window_mean
from streammeta.runtime.service import Service

__all__ = ["detection", "write_report"]


def detection(service: Service, sensor: PrometheusSensor) -> dict[str, Any]:
    """Missed switches and false alarms as Prometheus counts them (its counters, read from the
    sensor): known only when the records carried their true concept, else ``None``."""
    records = service.pipeline.records
    if not service.pipeline.knows_concept:
        return dict.fromkeys(("false_alarms", "false_alarms_per_10k", "switches_missed"))
    value = sensor.registry.get_sample_value
    alarms = value("streammeta_false_alarms_total") or 0.0
    return {
        "false_alarms": int(alarms),
        "false_alarms_per_10k": 1e4 * alarms / records if records else 0.0,
        "switches_missed": int(value("streammeta_switches_missed_total") or 0.0),
    }


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as ``None`` (unknown), so that it is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_report(
    config: Config,
    service: Service,
    view: DemoStatus,
    out: Path,
    console: Any,
    sensor: PrometheusSensor,
) -> Path:
    """``summary.json``, ``report.md`` and ``demo.png`` (the loss over the stream, and after a
    task switch) in ``out``, from what ``view`` collected; the report's path."""
    meta_name = f"{config.learner.algorithm}+{config.learner.optimizer}"
    base_name = config.learner.baseline
    losses, tasks = view.losses, view.tasks
    seconds = time.perf_counter() - view.t0
    learned = service.pipeline.learner.describe()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    task = np.concatenate(tasks) if tasks else np.zeros(0, dtype=np.int64)
    k = config.stream.batch_size
    half = int(task[-1]) // 2 if len(task) else 0
    summary: dict[str, Any] = {
        "records": len(task),
        "seconds": seconds,
        "tasks": int(task[-1]) + 1 if len(task) else 0,
        "learners": {},
    }
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))
    for key, name in (("meta", meta_name), ("base", base_name)):
        if not losses[key]:
            continue
        loss = np.concatenate(losses[key])
        summary["learners"][name] = {
            "prequential_loss": float(np.nanmean(loss)) if len(loss) else None,
            "mse_after_1_step": window_mean(loss, task, k, 2 * k, half) if len(loss) else None,
        }
        if len(loss):
            w = max(1, len(loss) // 200)
            a.plot(np.convolve(loss, np.ones(w) / w, mode="valid"), label=name, lw=1)
            b.plot(loss_curve(loss, task, config.stream.task_length, half), label=name)
    summary["learned_optimizer"] = learned
    summary["stopped"] = view.stopped
    summary["detection"] = detection(service, sensor)
    summary["adaptation"] = service.pipeline.status()  # detection figures null without concept
    summary["service"] = {
        "dead_letters": service.stats.dead_letters,
        "checkpoints": service.stats.checkpoints,
        "predictions": service.stats.predictions,
    }
    if config.demo.label_delay:
        summary["late_labels"] = service.labels.status()
    summary["config"] = to_dict(config)
    a.set(yscale="log", xlabel="record", ylabel="prequential loss", title="loss over the stream")
    b.set(
        yscale="log",
        xlabel="samples since the boundary",
        ylabel="mean loss",
        title="adaptation after a task switch (second half)",
    )
    for ax in (a, b):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "demo.png", dpi=100)
    plt.close(fig)
    (out / "summary.json").write_text(json.dumps(_finite(summary), indent=2, allow_nan=False))
    alarms = summary["detection"]["false_alarms"]
    lines = [
        "# streammeta demo report\n",
        f"{summary['records']:,} records, {summary['tasks']:,} tasks in {seconds:.1f} s; "
        f"stopped: {summary['stopped']}; false alarms: "
        f"{'unknown (no concept in the records)' if alarms is None else alarms}\n",
        "| learner | prequential loss | MSE after 1 step (second half) |",
        "|---|---:|---:|",
    ]
    for name, row in summary["learners"].items():
        lines.append(f"| {name} | {row['prequential_loss']:.3f} | {row['mse_after_1_step']:.3f} |")
    if "late_labels" in summary:
        late = summary["late_labels"]
        lines.append(
            f"\nLabels {config.demo.label_delay} records after their records: "
            f"{late['labels_joined']:,.0f} joined, {late['labels_expired']:,.0f} expired; the "
            f"published predictions' loss against them {late['delayed_loss']:.3f}"
        )
    lines.append("\n![demo](demo.png)\n")
    (out / "report.md").write_text("\n".join(lines))
    console.print("\n".join(lines[2:-1]))
    console.print(f"report: [bold]{(out / 'report.md').resolve()}[/bold]")
    return out / "report.md"
