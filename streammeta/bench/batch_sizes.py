"""The micro-batch benchmark: learning quality must not depend on the micro-batch size.

The default learner (with the configured segmenter, ADWIN on the loss by default) and the
``online_adam`` baseline (never told a switch) run prequentially over the same seeded records of
each stream at every micro-batch size. The learner takes one inner step per ``support_size``
records whatever the micro-batch, so only how long a prediction waits for new weights (and how
often the meta-learner may meta-update: at most once a micro-batch) should differ. The score is
the prequential accuracy (classification) or MSE (regression) after a warm-up of the first 20%
of the records; the issue's target is that every size stays within 2 accuracy points, or 10% of
MSE, of the best size. Jobs (stream, learner, size) run in worker processes, one torch thread
each.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing as mp
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streammeta.config import LearnerConfig, SegmentConfig
from streammeta.learn.factory import build_baseline, build_learner, build_segmenter
from streammeta.registry import STREAMS
from streammeta.runtime.prequential import run_prequential
from streammeta.streams import StreamChunk, make_stream

__all__ = ["BASELINE", "DEFAULT_STREAMS", "SIZES", "TARGET", "check_plan", "run_batch_sizes"]

DEFAULT_STREAMS = ("sea", "agrawal", "sinusoid_offset", "friedman")
SIZES = (1, 10, 64, 256)
BASELINE = "online_adam"
#: the issue's target: each size within 2 accuracy points, or 10% of MSE, of the best size
TARGET = {"accuracy_points": 2.0, "mse_ratio": 1.1}
_WARM_UP = 0.2  # fraction of the records not counted


@dataclasses.dataclass(frozen=True)
class _Job:
    stream: str
    learner: str  # the default learner's name, or BASELINE
    size: int


def _run_one(
    job: _Job, chunk: StreamChunk, cfg: LearnerConfig, segment: SegmentConfig
) -> dict[str, Any]:
    """One learner over one stream at one micro-batch size: its score and records/s."""
    torch.set_num_threads(1)
    warm = int(len(chunk) * _WARM_UP)
    if job.learner == BASELINE:  # a plain learner: no segmenter, never told a switch
        learner, seg, task = build_baseline(BASELINE, cfg), None, np.zeros(len(chunk), np.int64)
    else:
        learner, seg, task = build_learner(cfg), build_segmenter(segment), chunk.task
    res = run_prequential(learner, chunk.x, chunk.y, task, job.size, segmenter=seg)
    if cfg.task == "classification":
        score = float((res.y_hat[warm:] == chunk.y[warm:]).mean())
    else:
        score = float(np.nanmean(res.loss[warm:]))
    return {"score": score, "records_per_s": res.records_per_s}


def _judge(task: str, runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The best score over sizes, and each size's gap to it (accuracy points, or MSE / best)
    and whether it is within the target."""
    classes = task == "classification"
    finite = [r["score"] for r in runs.values() if math.isfinite(r["score"])]
    best = (max(finite) if classes else min(finite)) if finite else None
    sizes: dict[str, Any] = {}
    for size, run in runs.items():
        gap: float | None = None
        if best is not None and math.isfinite(run["score"]):
            gap = 100 * (best - run["score"]) if classes else run["score"] / best
        limit = TARGET["accuracy_points"] if classes else TARGET["mse_ratio"]
        within = gap is not None and gap <= limit
        sizes[str(size)] = {**run, "gap": gap, "within_target": within}
    best_size = next((int(s) for s, r in sizes.items() if r["score"] == best), None)
    return {
        "best": best,
        "best_size": best_size,
        "worst_gap": max((r["gap"] for r in sizes.values() if r["gap"] is not None), default=None),
        "within_target": all(r["within_target"] for r in sizes.values()),
        "sizes": sizes,
    }


def check_plan(streams: Sequence[str], sizes: Sequence[int], records: int, workers: int) -> None:
    """Raise ``ValueError`` naming every bad argument of :func:`run_batch_sizes` and its fix."""
    problems = [
        f"stream {name!r}: must be one of {', '.join(map(repr, STREAMS.names))}"
        for name in streams
        if name not in STREAMS
    ]
    if not streams:
        problems.append("streams: give at least one stream")
    if not sizes or any(s < 1 for s in sizes):
        problems.append(f"sizes={tuple(sizes)!r}: give at least one size, each at least 1")
    if records < 10:
        problems.append(f"records={records!r}: must be at least 10")
    if workers < 1:
        problems.append(f"workers={workers!r}: must be at least 1")
    if problems:
        raise ValueError("; ".join(problems))


def run_batch_sizes(
    streams: Sequence[str] = DEFAULT_STREAMS,
    *,
    cfg: LearnerConfig,
    out: Path,
    sizes: Sequence[int] = SIZES,
    records: int = 10_000,
    seed: int = 0,
    segment: SegmentConfig | None = None,
    workers: int = 2,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run every (stream, learner, size), write ``results.json`` and ``results.md`` to ``out``,
    log a compact table; return the results."""
    check_plan(streams, sizes, records, workers)
    segment = segment or SegmentConfig()
    sizes = sorted(set(sizes))
    default = f"{cfg.algorithm}+{cfg.optimizer}"
    out.mkdir(parents=True, exist_ok=True)
    chunks, cfgs = {}, {}
    for name in streams:
        stream = make_stream(name, seed=seed)
        chunks[name] = stream.take(records)
        cfgs[name] = dataclasses.replace(
            cfg,
            task=stream.task,
            n_features=stream.n_features,
            n_classes=stream.n_classes,
            device="cpu",
        )
    jobs = [_Job(s, name, size) for s in streams for name in (default, BASELINE) for size in sizes]
    jobs.sort(key=lambda j: (j.learner == BASELINE, j.size))  # slowest first
    runs: dict[_Job, dict[str, Any]] = {}
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = {
            pool.submit(_run_one, j, chunks[j.stream], cfgs[j.stream], segment): j for j in jobs
        }
        for future in as_completed(futures):
            job = futures[future]
            runs[job] = future.result()
            took = time.perf_counter() - t0
            log(f"{job.stream:>15} {job.learner:<14} K={job.size:<4} [{took:.0f}s]")
    results: dict[str, Any] = {
        "default_learner": default,
        "sizes": sizes,
        "records": records,
        "warm_up_records": int(records * _WARM_UP),
        "seed": seed,
        "target": TARGET,
        "learner": dataclasses.asdict(cfg),
        "segment": dataclasses.asdict(segment),
        "streams": {},
    }
    for name in streams:
        task = cfgs[name].task
        results["streams"][name] = {
            "task": task,
            "metric": "accuracy" if task == "classification" else "mse",
            "learners": {
                learner: _judge(task, {size: runs[_Job(name, learner, size)] for size in sizes})
                for learner in (default, BASELINE)
            },
        }
    results["met"] = {
        name: entry["learners"][default]["within_target"]
        for name, entry in results["streams"].items()
    }
    results["seconds"] = time.perf_counter() - t0
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(_markdown(results))
    log(_compact(results))
    return results


def _score(v: float | None, metric: str) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    return f"{v:.3f}" if metric == "accuracy" else f"{v:.4g}"


def _gap(v: float | None, metric: str) -> str:
    if v is None:
        return "-"
    return f"{v:.1f} pts" if metric == "accuracy" else f"x{v:.3f}"


def _markdown(results: dict[str, Any]) -> str:
    sizes = results["sizes"]
    lines = [
        f"# Micro-batch sizes ({results['records']:,} records a stream, the first "
        f"{results['warm_up_records']:,} not counted; seed {results['seed']})",
        "",
        "Target: every size within 2 accuracy points (classification), or with an MSE at most "
        "1.1 x (regression), of the best size. Cells: score (records/s); worst gap: accuracy "
        "points below the best, or MSE / best MSE.",
        "",
    ]
    for name, entry in results["streams"].items():
        metric = entry["metric"]
        lines += [f"## {name} ({entry['task']}: {metric})", ""]
        lines.append("| learner | " + " | ".join(f"K={s}" for s in sizes) + " | worst gap | met |")
        lines.append("|---|" + "---:|" * len(sizes) + "---:|---|")
        for learner, row in entry["learners"].items():
            cells = [
                f"{_score(row['sizes'][str(s)]['score'], metric)} "
                f"({row['sizes'][str(s)]['records_per_s']:,.0f}/s)"
                for s in sizes
            ]
            met = "yes" if row["within_target"] else "**no**"
            lines.append(
                f"| {learner} | {' | '.join(cells)} | {_gap(row['worst_gap'], metric)} | {met} |"
            )
        lines.append("")
    return "\n".join(lines)


def _compact(results: dict[str, Any]) -> str:
    sizes = results["sizes"]
    head = f"{'stream':>15} {'learner':<14} " + " ".join(f"{'K=' + str(s):>9}" for s in sizes)
    lines = [head + "  worst gap  met"]
    for name, entry in results["streams"].items():
        metric = entry["metric"]
        for learner, row in entry["learners"].items():
            cells = " ".join(f"{_score(row['sizes'][str(s)]['score'], metric):>9}" for s in sizes)
            gap = _gap(row["worst_gap"], metric)
            met = "yes" if row["within_target"] else "NO"
            lines.append(f"{name:>15} {learner:<14} {cells}  {gap:>9}  {met}")
    return "\n".join(lines)
