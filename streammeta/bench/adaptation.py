"""The adaptation benchmark: every learner on the same seeded stream, prequentially, K=10.

For each learner it reports ``mse_after_1_step`` (mean loss on samples 11-20 after a boundary:
one inner step on samples 1-10), ``mse_after_5_steps`` (samples 51-60), recovery samples, the
prequential loss and records/s. Only boundaries once the stream has shown ``min_task`` tasks
count (500 in the full run), so the figures measure a meta-learner that has learned online
from the stream alone. Learners run in worker processes, one torch thread each.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streammeta.bench.streams import STREAMS, make_stream
from streammeta.config import LearnerConfig
from streammeta.learn.base import Learner
from streammeta.learn.factory import build_baseline, build_learner
from streammeta.metrics.adaptation import loss_curve, positions, recovery_samples, window_mean
from streammeta.runtime.prequential import run_prequential

__all__ = ["LEARNERS", "AdaptationPlan", "run_adaptation"]

# name -> learner config overrides (meta-learners) or baseline kind
LEARNERS: dict[str, dict[str, str] | str] = {
    "maml+metasgd": {"algorithm": "maml", "optimizer": "metasgd"},
    "fomaml+metasgd": {"algorithm": "fomaml", "optimizer": "metasgd"},
    "reptile+metasgd": {"algorithm": "reptile", "optimizer": "metasgd"},
    "ftml+metasgd": {"algorithm": "ftml", "optimizer": "metasgd"},
    "maml+lopt": {"algorithm": "maml", "optimizer": "lopt"},
    "maml+sgd": {"algorithm": "maml", "optimizer": "sgd"},
    "online_sgd": "online_sgd",
    "reset_sgd": "reset_sgd",
    "finetune": "finetune",
}


@dataclass(frozen=True)
class AdaptationPlan:
    """What one benchmark run does."""

    streams: tuple[str, ...] = ("sinusoid",)
    tasks: int = 1500
    min_task: int = 500
    task_length: int = 100
    batch_size: int = 10
    seed: int = 0
    workers: int = 2
    learners: tuple[str, ...] = tuple(LEARNERS)

    def __post_init__(self) -> None:
        problems = [
            f"stream {name!r}: must be one of {', '.join(map(repr, STREAMS))}"
            for name in self.streams
            if name not in STREAMS
        ] + [
            f"learner {name!r}: must be one of {', '.join(map(repr, LEARNERS))}"
            for name in self.learners
            if name not in LEARNERS
        ]
        if self.workers < 1:
            problems.append(f"workers={self.workers!r}: must be at least 1")
        if not 0 <= self.min_task < self.tasks:
            problems.append(
                f"min_task={self.min_task!r}: must lie in 0..tasks-1 ({self.tasks - 1})"
            )
        if self.task_length < 6 * self.batch_size:
            problems.append(
                f"task_length={self.task_length!r}: must be at least 6 x batch_size "
                f"({6 * self.batch_size}) to measure the loss after 5 steps"
            )
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def quick(cls, **kw: Any) -> AdaptationPlan:
        return cls(tasks=160, min_task=80, **kw)


def _make(name: str, cfg: LearnerConfig) -> Learner:
    spec = LEARNERS[name]
    if isinstance(spec, str):
        return build_baseline(spec, cfg)
    return build_learner(cfg, **spec)


def _run_one(name: str, stream: str, plan: AdaptationPlan, cfg: LearnerConfig) -> dict[str, Any]:
    torch.set_num_threads(1)
    chunk = make_stream(stream, task_length=plan.task_length, seed=plan.seed).take(
        plan.tasks * plan.task_length
    )
    learner = _make(name, cfg)
    res = run_prequential(learner, chunk.x, chunk.y, chunk.task, plan.batch_size)
    k = plan.batch_size
    samples, censored = recovery_samples(res.loss, chunk.task, min_task=plan.min_task)
    return {
        "mse_after_1_step": window_mean(res.loss, chunk.task, k, 2 * k, plan.min_task),
        "mse_after_5_steps": window_mean(res.loss, chunk.task, 5 * k, 6 * k, plan.min_task),
        "recovery_samples_median": float(np.median(samples)) if len(samples) else float("nan"),
        "recovery_censored_fraction": float(censored.mean()) if len(censored) else float("nan"),
        "post_boundary_loss": window_mean(res.loss, chunk.task, 0, 100, plan.min_task),
        "prequential_loss": float(np.nanmean(res.loss[chunk.task >= plan.min_task])),
        "records_per_s": res.records_per_s,
        "meta_updates": learner.model_version,
        "learned": learner.describe(),
        "_curve": loss_curve(res.loss, chunk.task, plan.task_length, plan.min_task).tolist(),
        "_by_task": _per_task_mean(res.loss, chunk.task, k).tolist(),
    }


def _per_task_mean(loss: np.ndarray, task: np.ndarray, k: int) -> np.ndarray:
    """Loss on samples k+1..2k of every task: how the one-step loss improves over the stream."""
    pos = positions(task)
    sel = (pos >= k) & (pos < 2 * k)
    return np.bincount(task[sel], weights=loss[sel]) / np.maximum(np.bincount(task[sel]), 1)


def run_adaptation(
    plan: AdaptationPlan, cfg: LearnerConfig, out: Path, *, log: Any = print
) -> dict[str, Any]:
    """Run the plan, write ``results.json``, ``results.md`` and plots to ``out``; return results."""
    out.mkdir(parents=True, exist_ok=True)
    cfg = dataclasses.replace(cfg, device="cpu", support_size=plan.batch_size)
    results: dict[str, Any] = {"streams": {}, "plan": dataclasses.asdict(plan)}
    curves: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(max_workers=plan.workers, mp_context=ctx) as pool:
        jobs = {
            pool.submit(_run_one, name, stream, plan, cfg): (stream, name)
            for stream in plan.streams
            # the learned optimizer network is the slowest: start it first
            for name in sorted(plan.learners, key=lambda n: "lopt" not in n)
        }
        for job in as_completed(jobs):
            stream, name = jobs[job]
            row = job.result()
            curves.setdefault(stream, {})[name] = {
                "curve": row.pop("_curve"),
                "by_task": row.pop("_by_task"),
            }
            entry = results["streams"].setdefault(
                stream, {"default_learner": f"{cfg.algorithm}+{cfg.optimizer}", "learners": {}}
            )
            entry["learners"][name] = row
            log(
                f"{stream:>10} {name:<16} mse@1 {row['mse_after_1_step']:.3f}  "
                f"mse@5 {row['mse_after_5_steps']:.3f}  {row['records_per_s']:,.0f} rec/s  "
                f"[{time.perf_counter() - t0:.0f}s]"
            )
    for entry in results["streams"].values():
        entry["learners"] = {n: entry["learners"][n] for n in plan.learners}
    results["seconds"] = time.perf_counter() - t0
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "curves.json").write_text(json.dumps(curves))
    from streammeta.bench.report import adaptation_plots, adaptation_table

    (out / "results.md").write_text(adaptation_table(results))
    adaptation_plots(curves, plan, out, default=f"{cfg.algorithm}+{cfg.optimizer}")
    return results
