"""The prequential (test-then-train) step, shared by the service's pipeline and the benchmarks,
and the micro-batch runner over an in-memory stream.

A step predicts the whole micro-batch with the weights from before it; only then do its labels
reach anything: the segmenter reads the prediction's losses and finds boundaries, and the
learner learns the batch with them, restarting mid-batch. The published prediction of a record
therefore never depends on its own label or on any later one. Per-record losses stay on the
device until the end of a run, so the loop never waits on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from streammeta.learn.base import Learner
from streammeta.segment.base import Segmenter

__all__ = ["Predicted", "PrequentialResult", "predict_then_learn", "run_prequential"]


@dataclass(frozen=True)
class Predicted:
    """One micro-batch's prediction, made before its labels reached anything, and the boundaries
    found after it (offsets of the records that opened a new task)."""

    output: torch.Tensor  # raw model output [n, n_out]
    loss: torch.Tensor  # per record, NaN where unlabelled
    prediction: torch.Tensor
    boundaries: list[int]


def predict_then_learn(
    learner: Learner,
    x: torch.Tensor,
    y: torch.Tensor,
    labelled: torch.Tensor | None = None,
    *,
    segmenter: Segmenter | None = None,
    task: np.ndarray | None = None,
    told: Sequence[int] = (),
) -> Predicted:
    """Predict the batch, then let ``segmenter`` read the prediction's signal (and the records'
    explicit ``task`` values) and learn the batch with the boundaries it finds; without a
    segmenter the boundaries are ``told`` (known switches). A learner that
    ``decides_boundaries`` takes the explicit ones as certain and the detector's as switch
    candidates, and the boundaries returned are those it opened. ``labelled`` (default: all)
    masks the records without a label: they reach neither the segmenter nor learning.

    A learner that steps every so many records (``records_to_step``) takes the batch in slices
    that end where its steps come, in order: each slice is predicted with the weights the slices
    before it taught, which depends on their labels alone (earlier records), so a large
    micro-batch predicts as a small one does instead of every record waiting for the whole
    batch."""
    n = x.shape[0]
    parts: list[Predicted] = []
    starts, a = [], 0
    while a < n or not parts:  # an empty batch is one empty slice
        b = min(a + (learner.records_to_step() or n), n)
        parts.append(
            _predict_then_learn(
                learner, x[a:b], y[a:b], None if labelled is None else labelled[a:b],
                segmenter, None if task is None else task[a:b],
                [c - a for c in told if a <= c < b],
            )
        )  # fmt: skip
        starts.append(a)
        a = b
    if len(parts) == 1:
        return parts[0]
    return Predicted(
        torch.cat([p.output for p in parts]),
        torch.cat([p.loss for p in parts]),
        torch.cat([p.prediction for p in parts]),
        [a + c for a, p in zip(starts, parts, strict=True) for c in p.boundaries],
    )


def _predict_then_learn(
    learner: Learner,
    x: torch.Tensor,
    y: torch.Tensor,
    labelled: torch.Tensor | None,
    segmenter: Segmenter | None,
    task: np.ndarray | None,
    told: list[int],
) -> Predicted:
    learner.predict(x, y)
    output, loss, prediction = learner.output, learner.loss, learner.prediction
    if labelled is not None:
        loss = torch.where(labelled.to(loss.device), loss, torch.nan)
    certain, suspected = told, []
    if segmenter is not None:
        read = learner.drift_signal(segmenter.reads, y, anchored=segmenter.anchored)
        signal = read.double().cpu().numpy()
        if labelled is not None:
            signal[~labelled.cpu().numpy()] = np.nan
        segmenter.update(signal, task)
        certain = segmenter.explicit
        suspected = [c for c in segmenter.boundaries if c not in certain]
    learner.update(x, y, labelled=labelled, boundaries=certain, candidates=suspected)
    return Predicted(output, loss, prediction, learner.opened)


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
    With one, the segmenter reads each batch's ``drift_signal`` (the loss or 0/1 error the
    learner exposes for it) after the batch was predicted (:func:`predict_then_learn`).
    ``explicit_tasks`` shows the segmenter the records' task values (as a ``task`` field
    would), else it must find the switches itself.
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
        lo, hi = np.searchsorted(switch, [s, e])
        predicted = predict_then_learn(
            learner,
            xt[s:e],
            yt[s:e],
            segmenter=segmenter,
            task=task[s:e] if explicit_tasks else None,
            told=(switch[lo:hi] - s).tolist() if segmenter is None else (),
        )
        losses.append(predicted.loss)
        preds.append(predicted.prediction)
        told.extend(s + c for c in predicted.boundaries)
        if on_batch is not None:
            on_batch(e)
    return PrequentialResult(
        loss=torch.cat(losses).cpu().numpy() if losses else np.zeros(0),
        y_hat=torch.cat(preds).cpu().numpy() if preds else np.zeros(0),
        task=task,
        seconds=time.perf_counter() - t0,
        boundaries=np.asarray(told, dtype=np.int64),
    )
