"""The adaptation benchmark's figures, from each learner's per-record losses, hits and the
boundaries it found: prequential loss and accuracy, recovery samples and post-boundary loss,
detection delay, detected fraction and false alarms, the loss after one and five steps, a
returning concept's loss against its first appearance's; and the plot data.

On streams with known switch points recovery is timed from the **true** switch (the time a user
waits, detection delay included), and every learner recovers to the same level: the default
meta-learner's at the end of the previous task. Figures count only what follows the warm-up.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from streammeta.bench.adaptation.plan import PreparedStream
from streammeta.metrics.recovery import loss_curve, window_mean
from streammeta.metrics.tracker import DETECTION_FIGURES, AdaptationTracker

__all__ = ["curves", "recurrence", "score"]


def score(
    stream: PreparedStream, runs: dict[str, dict[str, Any]], default: str, k: int
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
            row.update(recurrence(stream, loss))
        for extra in ("meta_updates", "learned"):
            if extra in run:
                row[extra] = run[extra]
        rows[name] = _clean(row)
    return rows


def recurrence(stream: PreparedStream, loss: np.ndarray) -> dict[str, float]:
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
    stream: PreparedStream, runs: dict[str, dict[str, Any]], default: str
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


def _detection(stream: PreparedStream, found: np.ndarray | None) -> dict[str, Any]:
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


def curves(stream: PreparedStream, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
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
