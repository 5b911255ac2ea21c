"""Markdown tables and matplotlib plots for benchmark results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["adaptation_plots", "adaptation_table", "throughput_table"]


def _fmt(v: Any, key: str = "") -> str:
    if not isinstance(v, float):
        return str(v)
    if key.endswith("per_s"):
        return f"{v:,.0f}"
    if key.endswith("median"):
        return f"{v:.0f}" if v == int(v) else f"{v:.1f}"
    if key.endswith("fraction"):
        return f"{v:.0%}"
    return f"{v:.3f}"


def adaptation_table(results: dict[str, Any]) -> str:
    cols = [
        ("mse_after_1_step", "MSE after 1 step"),
        ("mse_after_5_steps", "MSE after 5 steps"),
        ("recovery_samples_median", "recovery samples (median)"),
        ("recovery_censored_fraction", "censored"),
        ("prequential_loss", "prequential loss"),
        ("records_per_s", "records/s"),
    ]
    lines = []
    for stream, entry in results["streams"].items():
        lines.append(f"### {stream} (default learner: {entry['default_learner']})\n")
        lines.append("| learner | " + " | ".join(c[1] for c in cols) + " |")
        lines.append("|---|" + "---:|" * len(cols))
        for name, row in entry["learners"].items():
            cells = " | ".join(_fmt(row[c[0]], c[0]) for c in cols)
            lines.append(f"| {name} | {cells} |")
        lines.append("")
    return "\n".join(lines)


def adaptation_plots(
    curves: dict[str, dict[str, Any]], plan: Any, out: Path, default: str = "maml+metasgd"
) -> list[Path]:
    """Per stream: mean loss against samples since the boundary, and the one-step loss of every
    task over the stream (how online meta-learning improves adaptation)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for stream, by_learner in curves.items():
        fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.5))
        for name, c in by_learner.items():
            style = "-" if "+" in name else "--"
            lw = 2.6 if name == default else 1.2
            a.plot(np.arange(1, len(c["curve"]) + 1), c["curve"], style, label=name, lw=lw)
            per_task = np.asarray(c["by_task"], dtype=float)
            w = max(1, len(per_task) // 50)
            smooth = np.convolve(per_task, np.ones(w) / w, mode="valid")
            b.plot(np.arange(len(smooth)) + w, smooth, style, label=name, lw=lw)
        a.set(
            yscale="log",
            xlabel="labelled samples since the boundary",
            ylabel="mean loss",
            title=f"{stream}: loss after a task switch (tasks >= {plan.min_task})",
        )
        for k in (1, 5):
            a.axvspan(k * plan.batch_size + 1, (k + 1) * plan.batch_size, color="0.9", zorder=0)
        b.axvline(plan.min_task, color="0.5", ls=":", lw=1)
        b.set(
            yscale="log",
            xlabel="task",
            ylabel=f"loss on samples {plan.batch_size + 1}-{2 * plan.batch_size}",
            title="one-step adaptation over the stream",
        )
        a.legend(fontsize=8, ncol=2)
        a.grid(alpha=0.3)
        b.grid(alpha=0.3)
        fig.tight_layout()
        path = out / f"adaptation_{stream}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def throughput_table(results: dict[str, Any]) -> str:
    lr = results["learner"]
    sp = lr["sparse_meta"]
    lines = [
        "| batch size | records/s, default schedule | adaptation only (no meta-updates) | "
        f"meta_every {sp['meta_every']}, {sp['task_length']:,}-record tasks |",
        "|---:|---:|---:|---:|",
    ]
    for b, v in lr["records_per_s"].items():
        lines.append(
            f"| {b} | {v:,.0f} | {lr['records_per_s_no_meta'][b]:,.0f} | "
            f"{lr['records_per_s_sparse_meta'][b]:,.0f} |"
        )
    mu = lr["meta_update_ms"]
    lines += [
        "",
        "| meta-update (16 tasks x 5 steps, 2nd order) | ms |",
        "|---|---:|",
        f"| vmap | {mu['vmap']:.2f} |",
        f"| per-task loop | {mu['loop']:.2f} |",
        f"| speedup | {mu['loop'] / mu['vmap']:.1f}x |",
        "",
        f"Peak RSS: {lr['peak_rss_mb']:.0f} MB",
    ]
    return "\n".join(lines)
