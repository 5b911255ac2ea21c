"""Adaptation figures computed from per-record prequential losses and task ordinals.

A *boundary* is a record whose task differs from the previous record's. For each boundary:
**recovery samples** is the number of labelled samples until the rolling mean loss (trailing
window of 32, shorter at the very start) falls to within 10% of the loss level at the end of the
previous task (mean of its last 32 losses); censored at the task's length when it never does.

>>> import numpy as np
>>> task = np.array([0] * 4 + [1] * 4)
>>> loss = np.array([1.0, 1.0, 1.0, 1.0, 9.0, 3.0, 1.0, 1.0])
>>> samples, censored = recovery_samples(loss, task, window=2, tolerance=0.1)
>>> samples.tolist(), censored.tolist()
([4], [False])
>>> window_mean(loss, task, 0, 2)
6.0
"""

from __future__ import annotations

import numpy as np

from streammeta.metrics.tracker import AdaptationTracker

__all__ = ["loss_curve", "positions", "recovery_samples", "window_mean"]


def positions(task: np.ndarray) -> np.ndarray:
    """Each record's index within its task (0 at a boundary)."""
    starts = np.flatnonzero(np.diff(task, prepend=task[:1] - 1) != 0)
    idx = np.arange(len(task))
    return idx - starts[np.searchsorted(starts, idx, side="right") - 1]


def _after_boundary(task: np.ndarray, min_task: int) -> np.ndarray:
    """Records of tasks that opened at a boundary seen in the stream (not the first task) and
    whose ordinal is at least ``min_task``."""
    return (task != task[0]) & (task >= min_task)


def window_mean(loss: np.ndarray, task: np.ndarray, lo: int, hi: int, min_task: int = 0) -> float:
    """Mean loss over records at positions ``lo..hi-1`` after a boundary (``mse_after_1_step``
    with K=10 is ``window_mean(loss, task, 10, 20, 500)``)."""
    pos = positions(task)
    sel = _after_boundary(task, min_task) & (pos >= lo) & (pos < hi) & np.isfinite(loss)
    return float(loss[sel].mean()) if sel.any() else float("nan")


def loss_curve(loss: np.ndarray, task: np.ndarray, length: int, min_task: int = 0) -> np.ndarray:
    """Mean loss against samples since the boundary, positions ``0..length-1``."""
    pos = positions(task)
    sel = _after_boundary(task, min_task) & (pos < length) & np.isfinite(loss)
    sums = np.bincount(pos[sel], weights=loss[sel], minlength=length)[:length]
    counts = np.bincount(pos[sel], minlength=length)[:length]
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def recovery_samples(
    loss: np.ndarray,
    task: np.ndarray,
    *,
    window: int = 32,
    tolerance: float = 0.1,
    min_task: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Recovery samples and a censored flag for every boundary of tasks ``>= min_task``: the
    online ``AdaptationTracker`` run over a whole recorded stream."""
    tracker = AdaptationTracker(window=window, tolerance=tolerance)
    tracker.update(loss, boundaries=(np.flatnonzero(np.diff(task) != 0) + 1).tolist())
    tracker.finish()
    kept = [b for b in tracker.closed if task[b.record] >= min_task]
    samples = np.asarray([b.recovery_samples for b in kept], dtype=np.int64)
    return samples, np.asarray([b.censored for b in kept], dtype=bool)
