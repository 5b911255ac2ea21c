"""The in-process demo: a drifting sinusoid stream through the meta-learner and a shadow
baseline on the same records, with live status and a report at the end.

(The Kafka service takes over the data path in a later release; the learning is the same.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streammeta.bench.streams import make_stream
from streammeta.config import Config, to_dict
from streammeta.learn.factory import build_baseline, build_learner, build_segmenter
from streammeta.metrics.adaptation import loss_curve, window_mean
from streammeta.runtime.prequential import run_prequential

__all__ = ["run_demo"]


def run_demo(config: Config, *, console: Any = None) -> Path:
    """Run until ``demo.duration`` seconds (or ``demo.records``) or Ctrl-C; return the report."""
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    console = console or Console()
    torch.set_num_threads(1)  # small models: one thread is fastest and leaves a core free
    s, d = config.stream, config.demo
    meta = build_learner(config.learner)
    kind = config.learner.baseline if config.learner.baseline != "none" else "online_sgd"
    base = build_baseline(kind, config.learner)
    stream = make_stream(s.name, task_length=s.task_length, seed=s.seed)
    out = Path(d.out)
    out.mkdir(parents=True, exist_ok=True)
    limit = d.records or s.records
    losses: dict[str, list[np.ndarray]] = {"meta": [], "base": []}
    tasks: list[np.ndarray] = []
    segmenters = {key: build_segmenter(config.segment) for key in ("meta", "base")}
    done, t0 = 0, time.perf_counter()

    def status() -> Table:
        el = time.perf_counter() - t0
        n_tasks = int(tasks[-1][-1]) + 1 if tasks else 0
        t = Table(title=f"streammeta demo · {s.name} · {meta_device}", title_justify="left")
        t.add_column("", style="bold")
        t.add_column(meta.name, justify="right")
        t.add_column(base.name, justify="right")
        t.add_row("records", f"{done:,}", f"{done:,}")
        t.add_row("records/s", f"{done / el:,.0f}" if el else "-", "")
        t.add_row("tasks (boundaries)", f"{n_tasks:,}", f"{n_tasks:,}")
        t.add_row("meta-updates", f"{meta.model_version:,}", "-")
        for label, fn in (("loss, last 1k records", _recent_loss), ("MSE after 1 step", _one_step)):
            t.add_row(
                label,
                fn(losses["meta"], tasks, s.batch_size),
                fn(losses["base"], tasks, s.batch_size),
            )
        t.add_row("learned lr (mean)", f"{meta.describe().get('lr_mean', float('nan')):.4f}", "")
        return t

    meta_device = str(getattr(meta, "device", "cpu"))
    step = 20 * s.batch_size
    try:
        with Live(status(), console=console, refresh_per_second=4, transient=False) as live:
            while done < limit and time.perf_counter() - t0 < d.duration:
                chunk = stream.take(min(step, limit - done))
                for key, learner in (("meta", meta), ("base", base)):
                    r = run_prequential(
                        learner,
                        chunk.x,
                        chunk.y,
                        chunk.task,
                        s.batch_size,
                        segmenter=segmenters[key],
                        explicit_tasks=True,  # the stream's records carry their task field
                    )
                    losses[key].append(r.loss)
                tasks.append(chunk.task)
                done += len(chunk)
                live.update(status())
        console.print()
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: writing the report[/yellow]")
    return _report(
        config,
        meta.name,
        base.name,
        losses,
        tasks,
        time.perf_counter() - t0,
        out,
        console,
        meta.describe(),
    )


def _recent_loss(losses: list[np.ndarray], tasks: list[np.ndarray], k: int) -> str:
    tail = np.concatenate(losses[-5:]) if losses else np.zeros(0)
    return f"{np.nanmean(tail[-1000:]):.3f}" if len(tail) else "-"


def _one_step(losses: list[np.ndarray], tasks: list[np.ndarray], k: int) -> str:
    """Loss on samples k+1..2k after the boundaries of the last ~20 chunks."""
    if not losses:
        return "-"
    loss, task = np.concatenate(losses[-20:]), np.concatenate(tasks[-20:])
    value = window_mean(loss, task, k, 2 * k)
    return "-" if np.isnan(value) else f"{value:.3f}"


def _report(
    config: Config,
    meta_name: str,
    base_name: str,
    losses: dict[str, list[np.ndarray]],
    tasks: list[np.ndarray],
    seconds: float,
    out: Path,
    console: Any,
    learned: dict[str, float],
) -> Path:
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
        loss = np.concatenate(losses[key]) if losses[key] else np.zeros(0)
        summary["learners"][name] = {
            "prequential_loss": float(np.nanmean(loss)) if len(loss) else None,
            "mse_after_1_step": window_mean(loss, task, k, 2 * k, half) if len(loss) else None,
        }
        if len(loss):
            w = max(1, len(loss) // 200)
            a.plot(np.convolve(loss, np.ones(w) / w, mode="valid"), label=name, lw=1)
            b.plot(loss_curve(loss, task, config.stream.task_length, half), label=name)
    summary["learned_optimizer"] = learned
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
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    lines = [
        "# streammeta demo report\n",
        f"{summary['records']:,} records, {summary['tasks']:,} tasks in {seconds:.1f} s\n",
        "| learner | prequential loss | MSE after 1 step (second half) |",
        "|---|---:|---:|",
    ]
    for name, row in summary["learners"].items():
        lines.append(f"| {name} | {row['prequential_loss']:.3f} | {row['mse_after_1_step']:.3f} |")
    lines.append("\n![demo](demo.png)\n")
    (out / "report.md").write_text("\n".join(lines))
    console.print("\n".join(lines[2:-1]))
    console.print(f"report: [bold]{(out / 'report.md').resolve()}[/bold]")
    return out / "report.md"
