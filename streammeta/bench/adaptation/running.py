"""Running an adaptation plan: every learner on the same seeded records of every stream, in
worker processes (one torch thread each), the figures scored and the targets checked as each
stream ends; ``results.json``, ``results.md``, the plots and each stream's per-record losses
(``runs_<stream>.npz``, to score again without running again) are written to the output folder.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streammeta.bench.adaptation.plan import AdaptationPlan, PreparedStream, learners_for, prepare
from streammeta.bench.adaptation.scoring import curves, score
from streammeta.bench.adaptation.targets import targets
from streammeta.bench.adaptation.variants import NO_SWITCH, ORACLE, build_variant, submit_order
from streammeta.bench.river_models import Peer
from streammeta.config import LearnerConfig, SegmentConfig
from streammeta.learn.factory import build_segmenter
from streammeta.registry import PEERS
from streammeta.runtime.prequential import run_prequential

__all__ = ["run_adaptation"]


def _run_one(
    name: str, stream: PreparedStream, plan: AdaptationPlan, cfg: LearnerConfig, seg: SegmentConfig
) -> dict[str, Any]:
    """One learner over one stream: per-record losses, hits and the boundaries it found."""
    torch.set_num_threads(1)
    x, y = stream.chunk.x, stream.chunk.y
    if name in PEERS:
        peer: Peer = PEERS.load(name)
        run = peer.run(x, y, n_classes=stream.n_classes, seed=plan.seed, hidden=cfg.hidden)
        if run is None:  # not installed: the row is left out, and the log says why
            return {}
        return {
            "loss": run.loss,
            "correct": run.correct,
            "found": None,
            "records_per_s": run.records_per_s,
        }
    cfg = dataclasses.replace(
        cfg,
        task=stream.kind,  # type: ignore[arg-type]
        n_features=stream.n_features,
        n_classes=stream.n_classes,
        support_size=stream.batch_size,
    )
    learner = build_variant(name, cfg)
    oracle = name.endswith(ORACLE)
    res = run_prequential(
        learner,
        x,
        y,
        stream.chunk.task,
        stream.batch_size,
        segmenter=None if oracle else build_segmenter(_segment_for(name, seg)),
    )
    return {
        "loss": res.loss,
        "correct": res.y_hat == y if stream.n_classes else None,
        "found": None if oracle else res.boundaries,
        "records_per_s": res.records_per_s,
        "meta_updates": learner.model_version,
        "learned": learner.describe(),
    }


def _segment_for(name: str, seg: SegmentConfig) -> SegmentConfig:
    """The segment config of a learner: no switch candidates for the no-switch variant."""
    return dataclasses.replace(seg, detector="none") if NO_SWITCH in name else seg


def run_adaptation(
    plan: AdaptationPlan,
    cfg: LearnerConfig,
    out: Path,
    *,
    segment: SegmentConfig | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """Run the plan, write ``results.json``, ``results.md`` and plots to ``out``; return results."""
    out.mkdir(parents=True, exist_ok=True)
    segment = segment or SegmentConfig()
    cfg = dataclasses.replace(cfg, device="cpu", support_size=plan.batch_size)
    default = f"{cfg.algorithm}+{cfg.optimizer}"
    results: dict[str, Any] = {
        "streams": {},
        "plan": dataclasses.asdict(plan),
        "segment": dataclasses.asdict(segment),
    }
    plots: dict[str, Any] = {}
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=plan.workers, mp_context=mp.get_context("spawn")) as pool:
        for name in plan.streams:
            stream = prepare(name, plan)
            names = learners_for(stream, plan)
            jobs = {
                pool.submit(_run_one, learner, stream, plan, cfg, segment): learner
                for learner in sorted(names, key=submit_order)
            }
            runs = {}
            for job in as_completed(jobs):
                runs[jobs[job]] = job.result()
                log(f"{name:>15} {jobs[job]:<22} [{time.perf_counter() - t0:.0f}s]")
            runs = {n: runs[n] for n in names if runs[n]}  # a peer not installed: no row
            rows = score(stream, runs, default, stream.batch_size)
            results["streams"][name] = {
                "default_learner": default,
                "task": stream.kind,
                "records": len(stream.chunk),
                "task_length": stream.task_length,
                "batch_size": stream.batch_size,
                "warm_up_records": stream.warm,
                "known_switches": stream.known_switches,
                "true_switches_counted": int((stream.switches >= stream.warm).sum()),
                "learners": rows,
            }
            plots[name] = curves(stream, runs)
            _save_runs(out / f"runs_{name}.npz", stream, runs)
            log(_line(name, rows.get(default, {})))
    results["seconds"] = time.perf_counter() - t0
    results["targets"] = targets(results)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    from streammeta.bench.report import adaptation_plots, adaptation_table

    (out / "results.md").write_text(adaptation_table(results))
    adaptation_plots(plots, out, default=default)
    return results


def _save_runs(path: Path, stream: PreparedStream, runs: dict[str, dict[str, Any]]) -> None:
    """Every learner's per-record loss (and hits, and boundaries found) with the stream's task
    ordinals, so the figures can be scored again without running the learners again."""
    arrays = {"task": stream.chunk.task}
    for name, run in runs.items():
        arrays[f"{name}.loss"] = run["loss"].astype(np.float32)
        for key in ("correct", "found"):
            if run[key] is not None:
                arrays[f"{name}.{key}"] = run[key]
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]


def _line(stream: str, row: dict[str, Any]) -> str:
    def f(key: str, spec: str) -> str:
        v = row.get(key)
        return "-" if v is None else format(v, spec)

    return (
        f"{stream:>15} default: loss {f('prequential_loss', '.3f')}  "
        f"acc {f('prequential_accuracy', '.3f')}  recovery {f('recovery_samples_median', '.0f')}"
        f"  detected {f('detected_fraction', '.0%')}  delay {f('detection_delay_median', '.0f')}"
    )
