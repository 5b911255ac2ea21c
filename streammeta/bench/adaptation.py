"""The adaptation benchmark: every learner on the same seeded records of every stream.

The yardstick is the strongest plain learner: ``online_adam`` (the same MLP on standardized
inputs, Adam, never reset), deep-river's MLP (where its overlay is installed: a process of its
own, see :mod:`streammeta.bench.deep_river`) and river's logistic/linear regression, Hoeffding
Adaptive Tree and ARF, on the same raw records. streammeta's learners cut the stream into tasks
themselves, with the configured segmenter (ADWIN on the loss by default) reading each learner's
own losses; ``@oracle`` learners are told the true switches instead, to show what perfect
segmentation would give; ``@meta_off`` is the default learner with meta-learning switched off
(initialization and optimizer frozen at their starting values), to show what meta-learning
adds.

Per learner it reports the prequential loss and accuracy, recovery samples and post-boundary
loss, detection delay, detected fraction and false alarms per 10,000 records, and records/s.
On streams with known switch points recovery is timed from the **true** switch (the time a user
waits, detection delay included), and every learner recovers to the same level: the default
meta-learner's at the end of the previous task. Figures count only what follows a warm-up
(``min_task`` tasks), so they measure a meta-learner that has learned online from the stream
alone. Learners run in worker processes, one torch thread each.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import multiprocessing as mp
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streammeta.bench.deep_river import run_deep_river
from streammeta.bench.river_models import RIVER_MODELS, run_river
from streammeta.bench.streams import STREAMS, StreamChunk, make_stream
from streammeta.config import LearnerConfig, SegmentConfig
from streammeta.learn.base import Learner
from streammeta.learn.factory import build_baseline, build_learner, build_segmenter
from streammeta.metrics.recovery import loss_curve, window_mean
from streammeta.metrics.tracker import DETECTION_FIGURES, AdaptationTracker
from streammeta.runtime.prequential import run_prequential

__all__ = ["DEFAULT_LEARNERS", "LEARNERS", "YARDSTICK", "AdaptationPlan", "run_adaptation"]

ORACLE = "@oracle"
META_OFF = "@meta_off"
SINGLE = "@single"  # one fast learner that the detector's boundaries reset: the bank off
LEADER = "@leader"  # the bank predicting with its leader instead of the mixture
NO_SWITCH = "@no_switch"  # the bank with no switch candidate at all: no detector, no schedule
DEEP_RIVER = "deep_river"
_MAML: dict[str, object] = {"algorithm": "maml", "optimizer": "metasgd"}
# name -> learner config overrides (meta-learners), baseline kind, or peer
LEARNERS: dict[str, dict[str, object] | str] = {
    "maml+metasgd": _MAML,
    f"maml+metasgd{ORACLE}": _MAML,
    f"maml+metasgd{META_OFF}": {**_MAML, "meta_train": False},
    f"maml+metasgd{META_OFF}{ORACLE}": {**_MAML, "meta_train": False},
    f"maml+metasgd{SINGLE}": {**_MAML, "bank_size": 1},
    f"maml+metasgd{SINGLE}{ORACLE}": {**_MAML, "bank_size": 1},
    f"maml+metasgd{LEADER}": {**_MAML, "mix": "leader"},
    f"maml+metasgd{NO_SWITCH}": {**_MAML, "spawn_every": 0},
    "fomaml+metasgd": {"algorithm": "fomaml", "optimizer": "metasgd"},
    "reptile+metasgd": {"algorithm": "reptile", "optimizer": "metasgd"},
    "ftml+metasgd": {"algorithm": "ftml", "optimizer": "metasgd"},
    "maml+lopt": {"algorithm": "maml", "optimizer": "lopt"},
    "maml+sgd": {"algorithm": "maml", "optimizer": "sgd"},
    "online_adam": "online_adam",
    "online_sgd": "online_sgd",
    "reset_sgd": "reset_sgd",
    "finetune": "finetune",
    DEEP_RIVER: DEEP_RIVER,
    **{name: name for name in RIVER_MODELS},
}
#: what a run compares unless ``--learners`` says otherwise: the default learner, told the
#: switches and with meta-learning off, against the strongest plain learners
DEFAULT_LEARNERS = (
    "maml+metasgd",
    f"maml+metasgd{ORACLE}",
    f"maml+metasgd{META_OFF}",
    f"maml+metasgd{SINGLE}",
    f"maml+metasgd{NO_SWITCH}",  # on streams without a switch only
    "online_adam",
    DEEP_RIVER,
    "river_logreg",
    "river_hat",
    "river_arf",
)
#: the peers the default learner must match or beat on every stream (ARF's figures are shown)
YARDSTICK = ("online_adam", DEEP_RIVER, "river_logreg", "river_hat")
#: records per stream in a full run and a quick one
_RECORDS = {"full": 60_000, "quick": 12_000}


@dataclass(frozen=True)
class AdaptationPlan:
    """What one benchmark run does. ``tasks``, ``min_task`` and ``task_length`` left ``None``
    take each stream's own budget: ``records`` records (default 60,000; 12,000 with ``quick``)
    in tasks of the stream's default length, the first sixth (a third when quick) as warm-up."""

    streams: tuple[str, ...] = STREAMS
    quick: bool = False
    tasks: int | None = None
    min_task: int | None = None
    task_length: int | None = None
    batch_size: int = 10
    seed: int = 0
    workers: int = 2
    learners: tuple[str, ...] = DEFAULT_LEARNERS
    records: int | None = None  # records a stream, instead of the full or quick run's

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
        if self.records is not None and self.records < 1:
            problems.append(f"records={self.records!r}: must be at least 1")
        if self.tasks is not None and not 0 <= (self.min_task or 0) < self.tasks:
            problems.append(
                f"min_task={self.min_task!r}: must lie in 0..tasks-1 ({self.tasks - 1})"
            )
        if self.task_length is not None and self.task_length < 6 * self.batch_size:
            problems.append(
                f"task_length={self.task_length!r}: must be at least 6 x batch_size "
                f"({6 * self.batch_size}) to measure the loss after 5 steps"
            )
        if problems:
            raise ValueError("; ".join(problems))

    def budget(self, stream: str, task_length: int) -> tuple[int, int]:
        """``(tasks, min_task)`` for ``stream`` with tasks of ``task_length`` records."""
        run = "quick" if self.quick else "full"
        tasks = max((self.records or _RECORDS[run]) // task_length, 6)
        warm = tasks // (3 if self.quick else 6)
        return self.tasks or tasks, self.min_task if self.min_task is not None else warm


@dataclass(frozen=True)
class _Stream:
    """One stream's records and what the workers need to know about them."""

    name: str
    chunk: StreamChunk
    kind: str  # "regression" | "classification"
    n_features: int
    n_classes: int
    known_switches: bool
    task_length: int
    min_task: int
    batch_size: int  # records per micro-batch and per inner step
    concept: np.ndarray | None  # each record's concept, where concepts recur

    @property
    def warm(self) -> int:
        """First record that counts."""
        return self.min_task * self.task_length

    @property
    def switches(self) -> np.ndarray:
        """Records that open a new task (known switch points only; the first record is not)."""
        return self.chunk.switches[1:] if self.known_switches else np.zeros(0, dtype=np.int64)


def _prepare(name: str, plan: AdaptationPlan) -> _Stream:
    stream = make_stream(name, task_length=plan.task_length, seed=plan.seed)
    tasks, min_task = plan.budget(name, stream.task_length)
    chunk = stream.take(tasks * stream.task_length)
    concept = None
    concept_of = getattr(stream, "concept_of", None)
    if concept_of is not None:
        per_task = np.array([concept_of(t) for t in range(int(chunk.task.max()) + 1)])
        if len(np.unique(per_task)) < len(per_task):  # some concept comes back
            concept = per_task[chunk.task]
    return _Stream(
        name=name,
        chunk=chunk,
        kind=stream.task,
        n_features=stream.n_features,
        n_classes=stream.n_classes,
        known_switches=stream.known_switches,
        task_length=stream.task_length,
        min_task=min_task,
        batch_size=getattr(stream, "records_per_step", None) or plan.batch_size,
        concept=concept,
    )


def _learners_for(stream: _Stream, plan: AdaptationPlan) -> list[str]:
    """The plan's learners that mean something on ``stream``: told switches where they are
    known and exist, the no-switch variant where there are none."""
    switches = stream.known_switches and len(stream.switches) > 0
    return [
        name
        for name in plan.learners
        if not (name == "river_adwin_retrain" and stream.kind == "regression")
        and not (name.endswith(ORACLE) and not switches)
        and not (NO_SWITCH in name and (switches or not stream.known_switches))
    ]


def _make(name: str, cfg: LearnerConfig) -> Learner:
    spec = LEARNERS[name]
    if isinstance(spec, str):
        return build_baseline(spec, cfg)
    return build_learner(cfg, **spec)


def _run_one(
    name: str, stream: _Stream, plan: AdaptationPlan, cfg: LearnerConfig, seg: SegmentConfig
) -> dict[str, Any]:
    """One learner over one stream: per-record losses, hits and the boundaries it found."""
    torch.set_num_threads(1)
    x, y = stream.chunk.x, stream.chunk.y
    if name in RIVER_MODELS or name == DEEP_RIVER:
        if name == DEEP_RIVER:
            run = run_deep_river(
                x, y, n_classes=stream.n_classes, seed=plan.seed, hidden=cfg.hidden
            )
            if run is None:  # not installed: the row is left out, and the log says why
                return {}
        else:
            run = run_river(name, x, y, n_classes=stream.n_classes, seed=plan.seed)
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
    learner = _make(name, cfg)
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


def _score(
    stream: _Stream, runs: dict[str, dict[str, Any]], default: str, k: int
) -> dict[str, Any]:
    """Per learner: the benchmark's figures, from its per-record losses and boundaries; ``k``
    is the micro-batch (one inner step)."""
    warm = stream.warm
    recovery = _recovery(stream, runs, default)
    rows: dict[str, dict[str, Any]] = {}
    for name, run in runs.items():
        loss, correct, found = run["loss"], run["correct"], run["found"]
        row: dict[str, Any] = {
            "prequential_loss": float(np.nanmean(loss[warm:])),
            "prequential_accuracy": float(correct[warm:].mean()) if correct is not None else None,
            **recovery.get(name, dict.fromkeys(_RECOVERY)),
            **_detection(stream, found),
            "records_per_s": run["records_per_s"],
        }
        if stream.kind == "regression" and stream.known_switches:
            task = stream.chunk.task
            row["mse_after_1_step"] = window_mean(loss, task, k, 2 * k, stream.min_task)
            row["mse_after_5_steps"] = window_mean(loss, task, 5 * k, 6 * k, stream.min_task)
        if stream.concept is not None:
            row.update(_recurrence(stream, loss))
        for extra in ("meta_updates", "learned"):
            if extra in run:
                row[extra] = run[extra]
        rows[name] = _clean(row)
    return rows


def _recurrence(stream: _Stream, loss: np.ndarray) -> dict[str, float]:
    """Post-boundary loss (the first 100 records after a true switch) of the tasks where a
    concept appears for the first time, and of those where it comes back. The stream's first
    task is left out: its loss holds the learner's own start, not the concept's."""
    assert stream.concept is not None
    starts = np.flatnonzero(np.diff(stream.chunk.task, prepend=-1) != 0)[1:]
    first: list[float] = []
    back: list[float] = []
    seen = {int(stream.concept[0])}
    for a in starts.tolist():
        c = int(stream.concept[a])
        (back if c in seen else first).append(float(np.nanmean(loss[a : a + 100])))
        seen.add(c)
    mean_first = float(np.mean(first)) if first else math.nan
    mean_back = float(np.mean(back)) if back else math.nan
    return {
        "first_appearance_loss": mean_first,
        "return_loss": mean_back,
        "return_vs_first": mean_back / mean_first if first and back else math.nan,
    }


_RECOVERY = ("recovery_samples_median", "recovery_censored_fraction", "post_boundary_loss")


def _recovery(
    stream: _Stream, runs: dict[str, dict[str, Any]], default: str
) -> dict[str, dict[str, float]]:
    """Recovery figures per learner. Known switches: from every true switch, to the default
    learner's level (trackers fed task by task, the default's first, so each boundary reads
    the default's level for the same task). Otherwise from each learner's own boundaries."""
    if not stream.known_switches:
        out = {}
        for name, run in runs.items():
            if run["found"] is None:
                continue
            tracker = AdaptationTracker()
            tracker.update(run["loss"], boundaries=run["found"].tolist())
            tracker.finish()
            out[name] = _pick(tracker.summary(since=stream.warm), _RECOVERY)
        return out
    order = sorted(runs, key=lambda n: n != default)
    ref = AdaptationTracker() if default in runs else None
    trackers = {
        n: ref if ref is not None and n == default else AdaptationTracker(reference=ref)
        for n in order
    }
    edges = [0, *stream.switches.tolist(), len(stream.chunk)]
    for a, b in itertools.pairwise(edges):
        for name in order:
            trackers[name].update(runs[name]["loss"][a:b], boundaries=[0] if a else [])
    out = {}
    for name, tracker in trackers.items():
        tracker.finish()
        out[name] = _pick(tracker.summary(since=stream.warm), _RECOVERY)
    return out


def _detection(stream: _Stream, found: np.ndarray | None) -> dict[str, Any]:
    """How the learner's own boundaries (after the warm-up) match the true switches."""
    if found is None:
        return {**dict.fromkeys(DETECTION_FIGURES), "boundaries_detected": None}
    found = found[found >= stream.warm] - stream.warm
    if not stream.known_switches:
        return {**dict.fromkeys(DETECTION_FIGURES), "boundaries_detected": len(found)}
    tracker = AdaptationTracker()
    truth = stream.switches[stream.switches >= stream.warm] - stream.warm
    n = len(stream.chunk) - stream.warm
    tracker.update(np.zeros(n), boundaries=found.tolist(), true_switches=truth.tolist())
    tracker.finish()
    return {**_pick(tracker.summary(), DETECTION_FIGURES), "boundaries_detected": len(found)}


def _pick(summary: dict[str, float], keys: tuple[str, ...]) -> dict[str, float]:
    return {k: summary[k] for k in keys}


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    """NaN (nothing to measure) as ``None``, JSON's null."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}


def _curves(stream: _Stream, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Plot data: mean loss against samples since a true switch, and a stretch of the loss
    over time with the true switches and each learner's boundaries."""
    if not len(stream.switches):  # unknown, or none: nothing to line up
        return {}
    length = min(stream.task_length, 300)
    lo = stream.warm
    hi = min(len(stream.chunk), lo + 6 * stream.task_length)
    return {
        "since_switch": {
            name: loss_curve(run["loss"], stream.chunk.task, length, stream.min_task).tolist()
            for name, run in runs.items()
        },
        "window": [lo, hi],
        "switches": stream.switches[(stream.switches >= lo) & (stream.switches < hi)].tolist(),
        "loss": {name: run["loss"][lo:hi].tolist() for name, run in runs.items()},
        "found": {
            name: run["found"][(run["found"] >= lo) & (run["found"] < hi)].tolist()
            for name, run in runs.items()
            if run["found"] is not None
        },
    }


def _submit_order(name: str) -> int:
    """Slowest first, so the pool ends together: ARF, deep-river, meta-learners, the rest."""
    if name in ("river_arf", DEEP_RIVER):
        return 0
    return 1 if isinstance(LEARNERS[name], dict) else 2


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
    curves: dict[str, Any] = {}
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=plan.workers, mp_context=mp.get_context("spawn")) as pool:
        for name in plan.streams:
            stream = _prepare(name, plan)
            names = _learners_for(stream, plan)
            jobs = {
                pool.submit(_run_one, learner, stream, plan, cfg, segment): learner
                for learner in sorted(names, key=_submit_order)
            }
            runs = {}
            for job in as_completed(jobs):
                runs[jobs[job]] = job.result()
                log(f"{name:>15} {jobs[job]:<22} [{time.perf_counter() - t0:.0f}s]")
            runs = {n: runs[n] for n in names if runs[n]}  # a peer not installed: no row
            rows = _score(stream, runs, default, stream.batch_size)
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
            curves[name] = _curves(stream, runs)
            _save_runs(out / f"runs_{name}.npz", stream, runs)
            log(_line(name, rows.get(default, {})))
    results["seconds"] = time.perf_counter() - t0
    results["targets"] = targets(results)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    from streammeta.bench.report import adaptation_plots, adaptation_table

    (out / "results.md").write_text(adaptation_table(results))
    adaptation_plots(curves, out, default=default)
    return results


def _save_runs(path: Path, stream: _Stream, runs: dict[str, dict[str, Any]]) -> None:
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


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issues' targets per stream, each with the measured figure and whether it is met:
    quality at least the yardstick's (accuracy, or MSE for regression), recovery at most half
    of ``online_adam``'s, meta-learning better than none after a boundary, detection, and the
    bank's (:func:`_bank_targets`)."""
    checks: list[dict[str, Any]] = []
    for stream, entry in results["streams"].items():
        rows, default = entry["learners"], entry["default_learner"]

        def check(what: str, value: Any, goal: str, ok: bool | None, s: str = stream) -> None:
            checks.append({"stream": s, "target": what, "value": value, "goal": goal, "met": ok})

        # meta-learning on against off, both told the switches: segmentation set aside
        told = rows.get(f"{default}{ORACLE}", {}).get("post_boundary_loss")
        told_off = rows.get(f"{default}{META_OFF}{ORACLE}", {}).get("post_boundary_loss")
        if told is not None and told_off:
            ratio = told / told_off
            check("told switches: post-boundary loss / meta-off's", ratio, "< 1", ratio < 1)
        me = rows.get(default)
        if me is None:
            continue

        classes = entry["task"] == "classification"
        for peer in YARDSTICK:
            theirs = rows.get(peer)
            if theirs is None:
                continue
            if classes:
                gap = me["prequential_accuracy"] - theirs["prequential_accuracy"]
                check(f"accuracy - {peer}'s", gap, ">= 0", gap >= 0)
            else:
                ratio = me["prequential_loss"] / theirs["prequential_loss"]
                check(f"MSE / {peer}'s", ratio, "<= 1", ratio <= 1)
        _bank_targets(check, rows, default, classes)
        mine = me["recovery_samples_median"]
        theirs_rec = rows.get("online_adam", {}).get("recovery_samples_median")
        if mine is not None and theirs_rec:
            ratio = mine / theirs_rec
            check("recovery / online_adam's", ratio, "<= 0.5", ratio <= 0.5)
        off = rows.get(f"{default}{META_OFF}", {}).get("post_boundary_loss")
        if off and me["post_boundary_loss"] is not None:
            ratio = me["post_boundary_loss"] / off
            check("post-boundary loss / meta-off's", ratio, "< 1", ratio < 1)
        if entry["known_switches"] and me["detected_fraction"] is not None:
            check(
                "detected fraction",
                me["detected_fraction"],
                ">= 0.9",
                me["detected_fraction"] >= 0.9,
            )
            delay = me["detection_delay_median"]
            check("median detection delay", delay, "< 100", delay is not None and delay < 100)
            check(
                "false alarms per 10k",
                me["false_alarms_per_10k"],
                "< 1",
                me["false_alarms_per_10k"] < 1,
            )
    return checks


def _bank_targets(
    check: Callable[[str, Any, str, bool | None], None],
    rows: dict[str, dict[str, Any]],
    default: str,
    classes: bool,
) -> None:
    """The bank's targets: self-segmenting within 10% of told switches (prequential and
    post-boundary loss), a returning concept at most a fifth of its first appearance's
    post-boundary loss, no loss to switch detection on a stream without switches (1%), ARF
    matched where the single learner was below it, and at least half the single learner's
    records/s."""
    me = rows[default]
    told = rows.get(f"{default}{ORACLE}")
    for key, what in (("prequential_loss", "loss"), ("post_boundary_loss", "post-boundary loss")):
        if told and me.get(key) is not None and told.get(key):
            ratio = me[key] / told[key]
            check(f"{what} / told switches'", ratio, "<= 1.1", ratio <= 1.1)
    back = me.get("return_vs_first")
    if back is not None:
        check(
            "post-boundary loss: concept's return / first appearance", back, "<= 0.2", back <= 0.2
        )
    quiet = rows.get(f"{default}{NO_SWITCH}")
    if quiet:
        if classes:
            ratio = me["prequential_accuracy"] / quiet["prequential_accuracy"]
            check("accuracy / no switch detection's", ratio, ">= 0.99", ratio >= 0.99)
        else:
            ratio = me["prequential_loss"] / quiet["prequential_loss"]
            check("loss / no switch detection's", ratio, "<= 1.01", ratio <= 1.01)
    single, arf = rows.get(f"{default}{SINGLE}"), rows.get("river_arf")
    if (
        classes
        and single is not None
        and arf is not None
        and single["prequential_accuracy"] < arf["prequential_accuracy"]
    ):
        gap = me["prequential_accuracy"] - arf["prequential_accuracy"]
        check("accuracy - river_arf's (single learner below)", gap, ">= 0", gap >= 0)
    if single and single.get("records_per_s"):
        ratio = me["records_per_s"] / single["records_per_s"]
        check("records/s / single learner's", ratio, ">= 0.5", ratio >= 0.5)
