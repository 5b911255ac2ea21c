"""The prequential (test-then-train) micro-batch runner over an in-memory stream.

Each micro-batch is predicted with the current fast weights before it is learned from; a batch
that contains a task switch is passed whole, with the offset of the record that opens the new
task, and the learner restarts there, mid-batch. Per-record losses stay on the device until the
end, so the loop never waits on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from streammeta.learn.base import Learner
from streammeta.segment.base import Segmenter

__all__ = ["PrequentialResult", "run_prequential"]


@dataclass(frozen=True)
class PrequentialResult:
    loss: np.ndarray  # per record, before learning from it
    y_hat: np.ndarray
    task: np.ndarray
    seconds: float
    boundaries: np.ndarray  # records at which the learner was told a new task began

    @property
    def records_per_s(self) -> float:
        return len(self.loss) / self.seconds if self.seconds > 0 else float("nan")


def run_prequential(
    learner: Learner,
    x: np.ndarray,
    y: np.ndarray,
    task: np.ndarray,
    batch_size: int,
    *,
    on_batch: Callable[[int], None] | None = None,
    first_task_is_new: bool = False,
    segmenter: Segmenter | None = None,
    explicit_tasks: bool = False,
) -> PrequentialResult:
    """Run ``learner`` over the stream in micro-batches of ``batch_size``.

    Without a ``segmenter`` the learner is told the stream's own task switches (``task``).
    With one, each batch is first predicted, the segmenter reads its ``drift_signal`` (the
    loss or 0/1 error the learner exposes for it), and the learner then learns the batch with
    the boundaries found, mid-batch; the reported
    losses are those of the first prediction. ``explicit_tasks`` shows the segmenter the
    records' task values (as a ``task`` field would), else it must find the switches itself.
    ``on_batch(records_done)`` is called after every batch; ``first_task_is_new`` calls
    ``begin_task`` before the first record as well.
    """
    xt = torch.from_numpy(np.ascontiguousarray(x))
    yt = torch.from_numpy(np.ascontiguousarray(y))
    switch = np.flatnonzero(np.diff(task) != 0) + 1
    if first_task_is_new and len(task):
        switch = np.append(0, switch)
    losses: list[torch.Tensor] = []
    preds: list[torch.Tensor] = []
    told: list[int] = []
    t0 = time.perf_counter()
    for s in range(0, len(task), batch_size):
        e = min(s + batch_size, len(task))
        if segmenter is None:
            lo, hi = np.searchsorted(switch, [s, e])
            cuts = (switch[lo:hi] - s).tolist()
        else:
            learner.predict(xt[s:e], yt[s:e])
            loss, pred = learner.loss, learner.prediction
            signal = learner.drift_signal(segmenter.reads, yt[s:e], anchored=segmenter.anchored)
            segmenter.update(signal.cpu().numpy(), task[s:e] if explicit_tasks else None)
            cuts = segmenter.boundaries
        learner.update(xt[s:e], yt[s:e], boundaries=cuts)
        losses.append(learner.loss if segmenter is None else loss)
        preds.append(learner.prediction if segmenter is None else pred)
        told.extend(s + c for c in cuts)
        if on_batch is not None:
            on_batch(e)
    return PrequentialResult(
        loss=torch.cat(losses).cpu().numpy() if losses else np.zeros(0),
        y_hat=torch.cat(preds).cpu().numpy() if preds else np.zeros(0),
        task=task,
        seconds=time.perf_counter() - t0,
        boundaries=np.asarray(told, dtype=np.int64),
    )
