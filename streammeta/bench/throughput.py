"""Learner throughput: records/s of the prequential learner at several batch sizes, and the cost
of one second-order meta-update (16 tasks x 5 inner steps) with vmap and with a per-task loop.

Records/s is measured twice on the same sinusoid stream: with the default meta-update schedule
(after ``meta_every`` labelled records and at every boundary, at most one per micro-batch), and
with meta-updates off, which is the predict-and-adapt path alone.
"""

from __future__ import annotations

import dataclasses
import json
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streammeta.config import Config, LearnerConfig
from streammeta.learn.base import resolve_device
from streammeta.learn.factory import build_learner
from streammeta.learn.learner import MetaLearner
from streammeta.runtime.prequential import run_prequential
from streammeta.streams.sinusoid import SinusoidStream

__all__ = [
    "measure_meta_update",
    "measure_records_per_s",
    "measure_side_by_side",
    "run_throughput",
]

BATCH_SIZES = (1, 32, 256)


SPARSE = {"meta_every": 2560, "task_length": 10_000}  # a service's cadence on slow drift
#: what ``bench throughput`` runs side by side on the same records, each with its score
SIDE_BY_SIDE = (
    "maml+metasgd",
    "maml+metasgd@async",
    "maml+metasgd@meta_off",
    "online_adam",
    "river_logreg",
    "river_hat",
    "river_arf",
    "deep_river",
)
SIDE_BY_SIDE_STREAMS = ("sinusoid", "sea")


def measure_records_per_s(
    cfg: LearnerConfig, batch_size: int, records: int, *, task_length: int = 100, meta: bool = True
) -> float:
    """Records/s of the prequential learner after a warm-up that fills the task buffer."""
    if not meta:
        cfg = dataclasses.replace(cfg, meta_every=10**9)
        task_length = 10**9  # no boundary, hence no boundary meta-update either
    learner = build_learner(cfg)
    stream = SinusoidStream(task_length=task_length, seed=cfg.seed)
    warm = stream.take(20 * 100)
    run_prequential(learner, warm.x, warm.y, warm.task, batch_size)
    chunk = stream.take(records)
    res = run_prequential(
        learner,
        chunk.x,
        chunk.y,
        chunk.task,
        batch_size,
        first_task_is_new=bool(chunk.task[0] != warm.task[-1]),
    )
    return res.records_per_s


def measure_meta_update(
    cfg: LearnerConfig, *, tasks: int = 16, steps: int = 5, repeats: int = 20
) -> dict[str, float]:
    """Median ms of one second-order meta-update (forward, backward, meta-optimizer step)."""
    learner = build_learner(dataclasses.replace(cfg, algorithm="maml"))
    assert isinstance(learner, MetaLearner)
    gen = torch.Generator().manual_seed(0)
    k = cfg.support_size
    xs = torch.rand(tasks, steps + 1, k, cfg.n_features, generator=gen).mul(10).sub(5)
    ys = torch.sin(xs[..., 0]).to(learner.device)
    xs = xs.to(learner.device)
    out: dict[str, float] = {}
    for name, vectorize in (("vmap", True), ("loop", False)):
        times = []
        for i in range(repeats + 3):
            if learner.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            loss, _ = learner.meta.meta_loss(
                xs, ys, first_order=False, steps=steps, vectorize=vectorize
            )
            learner.trainer.apply(loss)
            if learner.device.type == "cuda":
                torch.cuda.synchronize()
            if i >= 3:  # warm-up
                times.append((time.perf_counter() - t0) * 1e3)
        out[name] = float(np.median(times))
    return out


def measure_side_by_side(
    config: Config, out: Path, *, quick: bool = False, log: Any = print
) -> dict[str, dict[str, dict[str, float | None]]]:
    """Records/s of the default learner (meta-updates inline and in the background, and
    meta-learning off) beside the peers, each with its prequential score, on the same records
    of each stream, one learner at a time (the background worker gets the second core)."""
    from streammeta.bench.adaptation import AdaptationPlan, run_adaptation

    plan = AdaptationPlan(
        streams=SIDE_BY_SIDE_STREAMS,
        learners=SIDE_BY_SIDE,
        workers=1,
        records=4_000 if quick else 12_000,
        seed=config.stream.seed,
    )
    results = run_adaptation(plan, config.learner, out, segment=config.segment, log=log)
    rows: dict[str, dict[str, dict[str, float | None]]] = {}
    for stream, entry in results["streams"].items():
        measure = (
            "prequential_accuracy" if entry["task"] == "classification" else "prequential_loss"
        )
        rows[stream] = {}
        for name, row in entry["learners"].items():
            rps, updates = row.get("records_per_s"), row.get("meta_updates")
            seconds = entry["records"] / rps if rps else None
            rows[stream][name] = {
                "records_per_s": rps,
                measure: row.get(measure),
                "post_boundary_loss": row.get("post_boundary_loss"),
                "meta_updates_per_s": updates / seconds if updates and seconds else None,
            }
    return rows


def run_throughput(
    config: Config,
    out: Path,
    *,
    quick: bool = False,
    learner_only: bool = False,
    log: Any = print,
) -> dict[str, Any]:
    """Measure, print and write ``results.json`` and ``results.md`` to ``out``: the learner,
    then (unless ``learner_only``) Kafka's raw ceiling and the service end to end."""
    cfg = config.learner
    out.mkdir(parents=True, exist_ok=True)
    scale = 0.25 if quick else 1.0
    records = {1: int(4000 * scale), 32: int(60_000 * scale), 256: int(300_000 * scale)}
    sparse = dataclasses.replace(cfg, meta_every=SPARSE["meta_every"])
    rps: dict[str, float] = {}
    rps_no_meta: dict[str, float] = {}
    rps_sparse: dict[str, float] = {}
    for b in BATCH_SIZES:
        rps[str(b)] = measure_records_per_s(cfg, b, records[b])
        rps_no_meta[str(b)] = measure_records_per_s(cfg, b, records[b], meta=False)
        rps_sparse[str(b)] = measure_records_per_s(
            sparse, b, records[b], task_length=SPARSE["task_length"]
        )
        log(
            f"batch {b:>4}: {rps[str(b)]:>10,.0f} records/s   "
            f"(adaptation only: {rps_no_meta[str(b)]:,.0f}; meta_every "
            f"{SPARSE['meta_every']}, {SPARSE['task_length']:,}-record tasks: "
            f"{rps_sparse[str(b)]:,.0f})"
        )
    log("side by side, on the same records (one learner at a time):")
    side = measure_side_by_side(config, out / "side_by_side", quick=quick, log=log)
    mu = measure_meta_update(cfg, repeats=5 if quick else 20)
    log(
        f"meta-update 16 tasks x 5 steps, 2nd order: vmap {mu['vmap']:.2f} ms, "
        f"loop {mu['loop']:.2f} ms ({mu['loop'] / mu['vmap']:.1f}x)"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log(f"peak RSS {peak:.0f} MB")
    results = {
        "learner": {
            "records_per_s": rps,
            "records_per_s_no_meta": rps_no_meta,
            "records_per_s_sparse_meta": rps_sparse,
            "sparse_meta": SPARSE,
            "meta_update_ms": mu,
            "peak_rss_mb": peak,
            "side_by_side": side,
            "device": str(resolve_device(cfg.device)),
            "torch_threads": torch.get_num_threads(),
            "config": {
                "meta_every": cfg.meta_every,
                "meta_batch": cfg.meta_batch,
                "inner_steps": cfg.inner_steps,
                "hidden": list(cfg.hidden),
            },
        }
    }
    if not learner_only:
        from streammeta.bench.kafka_throughput import measure_kafka

        results["kafka"] = measure_kafka(config, 20_000 if quick else 100_000, log=log)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    from streammeta.bench.report import throughput_table

    (out / "results.md").write_text(throughput_table(results) + "\n")
    return results
