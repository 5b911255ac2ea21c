"""Markdown tables and matplotlib plots for benchmark results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from streammeta.bench.adaptation.variants import YARDSTICK

__all__ = [
    "adaptation_plots",
    "adaptation_table",
    "side_by_side_table",
    "summary_table",
    "throughput_table",
]


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


_COLUMNS = [
    ("mse_after_1_step", "MSE after 1 step"),
    ("mse_after_5_steps", "MSE after 5 steps"),
    ("prequential_loss", "prequential loss"),
    ("prequential_accuracy", "accuracy"),
    ("recovery_samples_median", "recovery samples (median)"),
    ("recovery_censored_fraction", "censored"),
    ("post_boundary_loss", "post-boundary loss"),
    ("detected_fraction", "switches detected"),
    ("detection_delay_median", "detection delay (median)"),
    ("false_alarms_per_10k", "false alarms / 10k"),
    ("first_appearance_loss", "post-boundary loss: first appearance"),
    ("return_loss", "post-boundary loss: concept's return"),
    ("records_per_s", "records/s"),
]


def adaptation_table(results: dict[str, Any]) -> str:
    """The summary, the targets, then one table per stream (columns without figures are left
    out)."""
    lines = [summary_table(results), "", "| stream | target | goal | measured | met |"]
    lines.append("|---|---|---|---:|---|")
    for t in results.get("targets", []):
        met = "yes" if t["met"] else "**no**"
        lines.append(
            f"| {t['stream']} | {t['target']} | {t['goal']} | {_fmt(t['value'])} | {met} |"
        )
    lines.append("")
    for stream, entry in results["streams"].items():
        rows = entry["learners"]
        cols = [c for c in _COLUMNS if any(r.get(c[0]) is not None for r in rows.values())]
        lines.append(
            f"### {stream} ({entry['task']}; {entry['records']:,} records, tasks of "
            f"{entry['task_length']}, first {entry['warm_up_records']:,} records not counted; "
            f"default learner: {entry['default_learner']})\n"
        )
        lines.append("| learner | " + " | ".join(c[1] for c in cols) + " |")
        lines.append("|---|" + "---:|" * len(cols))
        for name, row in rows.items():
            cells = " | ".join(
                "-" if row.get(c[0]) is None else _fmt(row[c[0]], c[0]) for c in cols
            )
            lines.append(f"| {name} | {cells} |")
        lines.append("")
    return "\n".join(lines)


#: the summary's columns after streammeta's own: the yardstick, then ARF
_PEERS = (*YARDSTICK, "river_arf")


def summary_table(results: dict[str, Any]) -> str:
    """One row per stream: the prequential accuracy (classification) or MSE (regression) of the
    default learner, told the switches, with meta-learning off and as a single fast learner
    (no bank), beside the yardstick's and ARF's; then recovery samples against
    ``online_adam``'s and records/s."""
    lines = [
        "| stream | measure | streammeta | told switches | meta-learning off | single learner | "
        + " | ".join(_PEERS)
        + " | recovery: streammeta / online_adam | records/s: streammeta / online_adam |",
        "|---|---|" + "---:|" * (len(_PEERS) + 6),
    ]

    def f(row: dict[str, Any] | None, key: str) -> str:
        return "-" if not row or row.get(key) is None else _fmt(row[key], key)

    for stream, entry in results["streams"].items():
        rows, default = entry["learners"], entry["default_learner"]
        classes = entry["task"] == "classification"
        key = "prequential_accuracy" if classes else "prequential_loss"
        names = [default, f"{default}@oracle", f"{default}@meta_off", f"{default}@single", *_PEERS]
        cells = " | ".join(f(rows.get(n), key) for n in names)
        me, adam = rows.get(default), rows.get("online_adam")
        lines.append(
            f"| {stream} | {'accuracy' if classes else 'MSE'} | {cells} | "
            f"{f(me, 'recovery_samples_median')} / {f(adam, 'recovery_samples_median')} | "
            f"{f(me, 'records_per_s')} / {f(adam, 'records_per_s')} |"
        )
    return "\n".join(lines)


def adaptation_plots(
    curves: dict[str, Any], out: Path, default: str = "maml+metasgd"
) -> list[Path]:
    """Per stream with known switches: the loss over a stretch of the stream with the true
    switches and the default learner's boundaries, and the mean loss against samples since a
    switch, for every learner."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for stream, c in curves.items():
        if not c:
            continue
        fig, (a, b) = plt.subplots(1, 2, figsize=(14, 4.5))
        lo, hi = c["window"]
        river = [n for n in c["loss"] if n.startswith("river_")]
        best_river = min(river, key=lambda n: float(np.nanmean(c["loss"][n])), default=None)
        peers = (default, "online_adam", "deep_river", best_river)
        shown = [n for n in peers if n in c["loss"]]
        w = 25
        for name in shown:
            loss = np.asarray(c["loss"][name], dtype=float)
            smooth = np.convolve(np.nan_to_num(loss), np.ones(w) / w, mode="valid")
            a.plot(
                np.arange(len(smooth)) + lo + w - 1,
                smooth,
                lw=2.2 if name == default else 1,
                label=name,
            )
        for i, sw in enumerate(c["switches"]):
            a.axvline(sw, color="0.4", ls="--", lw=1, label="true switch" if i == 0 else None)
        found = c["found"].get(default, [])
        if found:
            a.plot(
                found,
                [a.get_ylim()[1] * 0.97] * len(found),
                "v",
                color="crimson",
                ms=8,
                label=f"{default} boundary",
                ls="none",
            )
        a.set(
            xlim=(lo, hi),
            xlabel="record",
            ylabel=f"loss (rolling mean of {w})",
            title=f"{stream}: loss over time, true and detected boundaries",
        )
        a.legend(fontsize=8)
        # the scale: the default learner's curve, else (a run without it) the lowest learner's
        reference = c["since_switch"].get(default) or min(
            c["since_switch"].values(), key=lambda curve: np.nanmax(curve)
        )
        top = np.nanmax(reference)
        for name, curve in c["since_switch"].items():
            style = "-" if "+" in name else ":" if name.startswith("river_") else "--"
            if np.nanmax(curve) > 1000 * top:  # a learner that diverges would flatten the rest
                b.plot([], [], style, label=f"{name} (off scale: up to {np.nanmax(curve):.0e})")
                continue
            b.plot(
                np.arange(1, len(curve) + 1),
                curve,
                style,
                lw=2.6 if name == default else 1.1,
                label=name,
            )
        b.set(
            yscale="log",
            xlabel="samples since the true switch",
            ylabel="mean loss",
            title=f"{stream}: mean loss after a switch",
        )
        b.legend(fontsize=7, ncol=2)
        for ax in (a, b):
            ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out / f"adaptation_{stream}.png"
        fig.savefig(path, dpi=100)
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
    for stream, rows in lr.get("side_by_side", {}).items():
        lines += ["", *side_by_side_table(stream, rows)]
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
    if results.get("kafka"):
        lines += [
            "",
            "| Kafka, records/s | raw ceiling (poll + decode) | end to end, configured "
            "schedule | end to end, fast schedule |",
            "|---|---:|---:|---:|",
        ]
        for client, k in results["kafka"].items():
            for layout, ceiling in k["raw_ceiling_by_layout"].items():
                lines.append(
                    f"| {client}, {layout} | {ceiling:,.0f} | "
                    f"{k['end_to_end_records_per_s'][layout]:,.0f} | "
                    f"{k['end_to_end_fast_schedule_records_per_s'][layout]:,.0f} |"
                )
    return "\n".join(lines)


def side_by_side_table(stream: str, rows: dict[str, dict[str, float | None]]) -> list[str]:
    """One stream's learners on the same records: speed beside quality, never one alone."""
    measure = next((k for r in rows.values() for k in r if k.startswith("prequential")), "")
    head = "accuracy" if measure.endswith("accuracy") else "MSE"

    def f(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    lines = [
        f"| {stream}: learner | records/s | prequential {head} | post-boundary loss | "
        "meta-updates/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {f(r['records_per_s'], ',.0f')} | {f(r.get(measure), '.3f')} | "
            f"{f(r['post_boundary_loss'], '.3f')} | {f(r['meta_updates_per_s'], '.1f')} |"
        )
    return lines
