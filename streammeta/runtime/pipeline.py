"""The service's learning step, one decoded micro-batch at a time, independent of Kafka.

One prequential step (:func:`~streammeta.runtime.prequential.predict_then_learn`): predict the
batch before its labels reach anything, let the segmenter read what the meta-learner's anchor
saw, learn with the boundaries found; the shadow baseline takes the same step on the same
records and boundaries, and trackers follow adaptation for both. Everything it holds
round-trips through ``snapshot``/``restore``.

>>> import numpy as np
>>> from streammeta.config import load_config
>>> pipe = Pipeline.from_config(load_config(env={}))
>>> x = np.linspace(-3, 3, 20, dtype=np.float32)[:, None]
>>> out = pipe.process(Batch(x=x, y=np.sin(x[:, 0]), labelled=np.ones(20, bool)))
>>> out.y_hat.shape, out.task.tolist()[:3], pipe.records
((20,), [0, 0, 0], 20)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from streammeta.config import Config
from streammeta.learn.base import Learner
from streammeta.learn.factory import build_baseline, build_learner, build_segmenter
from streammeta.metrics.tracker import DETECTION_FIGURES, AdaptationTracker, BoundaryStats
from streammeta.runtime.prequential import predict_then_learn
from streammeta.runtime.status import SPEEDUP_TASKS, LearnerStatus, PipelineStatus
from streammeta.segment.base import Segmenter

__all__ = ["Batch", "Pipeline", "Step"]

#: Seconds between reads of the learner's own figures when no meta-update happened.
DESCRIBE_EVERY_S = 1.0


@dataclass(frozen=True)
class Batch:
    """Decoded records in columns. ``y`` holds 0 where not ``labelled`` (the decoder sees to
    it, once, so no placeholder reaches a loss); ``task``
    holds the records' explicit task values (``None`` where absent) or is ``None``;
    ``concept`` the records' true concept (evaluation only: its changes are the true switches
    detection delay is measured from) or is ``None``."""

    x: np.ndarray  # [n, d] float32
    y: np.ndarray  # [n] float32 (regression) or int64 (classes)
    labelled: np.ndarray  # [n] bool
    task: np.ndarray | None = None  # [n] object
    concept: np.ndarray | None = None  # [n] object

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class Step:
    """What the pipeline did with one batch, per record."""

    y_hat: np.ndarray
    proba: np.ndarray | None  # [n, classes] for classification
    loss: np.ndarray  # meta-learner's, NaN where unlabelled
    baseline_loss: np.ndarray | None
    baseline_y_hat: np.ndarray | None  # the baseline's predictions, for its accuracy
    task: np.ndarray  # segment id of each record
    boundary: np.ndarray  # bool: the record opened a new task
    model_version: int

    def select(self, which: np.ndarray) -> Step:
        """The records a boolean mask or an index array picks."""
        return Step(**{
            f.name: v[which] if isinstance(v := getattr(self, f.name), np.ndarray) else v
            for f in fields(self)
        })  # fmt: skip


class Pipeline:
    """Meta-learner, optional shadow baseline, segmenter and adaptation trackers."""

    def __init__(
        self,
        learner: Learner,
        segmenter: Segmenter,
        baseline: Learner | None = None,
        *,
        name: str = "custom",
    ) -> None:
        """``name`` describes the learner (``maml+metasgd``) in status and metrics."""
        self.name = name
        self.learner = learner
        self.baseline = baseline
        self.segmenter = segmenter
        self.tracker = AdaptationTracker()
        self.baseline_tracker = AdaptationTracker(reference=self.tracker)
        self.records = 0
        self.task = 0  # ordinal of the current task: boundaries opened so far
        self._concept: object = None  # the last concept seen
        self._closed: tuple[tuple[BoundaryStats, ...], ...] = ((), ())  # by the last batch
        self._speedup = float("nan")  # as of the last batch that closed a task
        self._described = (-1, -float("inf"))  # meta-updates and monotonic time of that read

    @classmethod
    def from_config(cls, config: Config) -> Pipeline:
        c = config.learner
        return cls(
            build_learner(c),
            build_segmenter(config.segment),
            None if c.baseline == "none" else build_baseline(c.baseline, c),
            name=f"{c.algorithm}+{c.optimizer}",
        )

    def process(self, batch: Batch) -> Step:
        """Predict, segment, learn, track one micro-batch."""
        n = len(batch)
        x = torch.from_numpy(np.ascontiguousarray(batch.x))
        labelled = torch.from_numpy(np.ascontiguousarray(batch.labelled))
        y = torch.from_numpy(np.ascontiguousarray(batch.y))
        mask = None if bool(batch.labelled.all()) else labelled
        before, version = self.task, self.learner.model_version  # the ones used
        predicted = predict_then_learn(
            self.learner, x, y, mask, segmenter=self.segmenter, task=batch.task
        )
        cuts = predicted.boundaries
        loss = self._numpy(predicted.loss)
        out = predicted.output
        classes = out.shape[-1] > 1
        y_hat = predicted.prediction.cpu().numpy()
        switches = self._switches(batch.concept)
        before_closed = (self.tracker.closed_total, self.baseline_tracker.closed_total)
        base_loss = base_y_hat = None
        if self.baseline is not None:
            base = predict_then_learn(self.baseline, x, y, mask, told=cuts)
            base_loss = self._numpy(base.loss)
            base_y_hat = base.prediction.cpu().numpy()
            self.baseline_tracker.update(
                base_loss,
                boundaries=cuts,
                true_switches=switches,
                hits=self._hits(batch, base_y_hat) if classes else None,
            )
        self.tracker.update(
            loss,
            boundaries=cuts,
            true_switches=switches,
            hits=self._hits(batch, y_hat) if classes else None,
        )
        self._note_closed(*before_closed)
        self.records += n
        self.task += len(cuts)
        boundary = np.zeros(n, dtype=bool)
        boundary[cuts] = True
        return Step(
            y_hat=y_hat,
            proba=torch.softmax(out, -1).cpu().numpy() if classes else None,
            loss=loss,
            baseline_loss=base_loss,
            baseline_y_hat=base_y_hat,
            task=before + np.cumsum(boundary),
            boundary=boundary,
            model_version=version,
        )

    @property
    def knows_concept(self) -> bool:
        """Records carried their true concept: switches, misses and false alarms are known."""
        return self._concept is not None

    def _switches(self, concept: np.ndarray | None) -> list[int]:
        """Offsets where the records' concept changes (records without one carry it over)."""
        if concept is None:
            return []
        given = np.flatnonzero(concept != None)  # noqa: E711 (elementwise)
        if not len(given):
            return []
        values = concept[given]
        before = np.concatenate([np.array([self._concept], dtype=object), values[:-1]])
        changed = (values != before) & (before != None)  # noqa: E711 (elementwise)
        self._concept = values[-1]
        return given[changed].tolist()

    @staticmethod
    def _hits(batch: Batch, y_hat: np.ndarray) -> np.ndarray:
        """1.0 where a labelled record was predicted right, 0.0 where wrong, NaN unlabelled."""
        return np.where(batch.labelled, (y_hat == batch.y).astype(np.float64), np.nan)

    def _note_closed(self, meta_before: int, baseline_before: int) -> None:
        """Keep the tasks the batch closed (and the speedup when it closed any) for status."""
        self._closed = (
            tuple(self.tracker.closed_since(meta_before)),
            tuple(self.baseline_tracker.closed_since(baseline_before)),
        )
        if self.baseline is not None and any(self._closed):
            self._speedup = self.tracker.speedup(self.baseline_tracker, last=SPEEDUP_TASKS)

    @staticmethod
    def _numpy(loss: torch.Tensor) -> np.ndarray:
        """Per-record losses for the trackers (NaN where unlabelled, as ``predict_then_learn``
        leaves them)."""
        return loss.cpu().numpy().astype(np.float64)

    def status(self) -> dict[str, Any]:
        """Live figures: records, tasks, adaptation of both learners and the speedup. Detection
        figures (delay, detected fraction, false alarms) are NaN, unknown, unless the records
        carried their true concept: without it every boundary would count as a false alarm."""
        out: dict[str, Any] = {
            "records": self.records,
            "task": self.task,
            "model_version": self.learner.model_version,
            "meta": self._summary(self.tracker),
            "learned": self.learner.describe(),
        }
        if self.baseline is not None:
            out["baseline"] = self._summary(self.baseline_tracker)
            out["speedup"] = self.tracker.speedup(self.baseline_tracker)
        return out

    def live_status(self, *, learned: bool = True) -> PipelineStatus:
        """The figures after the last batch, for sensors (see :class:`PipelineStatus`);
        ``learned=False`` leaves out the learner's own figures, which cost a ``describe()``."""
        updates, seconds = self.learner.meta_progress
        described = None
        now = time.monotonic()
        if learned and (
            updates != self._described[0] or now - self._described[1] >= DESCRIBE_EVERY_S
        ):
            described = self.learner.describe()
            self._described = (updates, now)
        mine = self.tracker
        return PipelineStatus(
            name=self.name,
            device=str(self.learner.device),
            records=self.records,
            meta_updates=updates,
            meta_seconds=seconds,
            knows_concept=self.knows_concept,
            missed=mine.missed,
            false_alarms=mine.false_alarms,
            meta=LearnerStatus(mine.recent_loss, mine.recent_accuracy, self._closed[0]),
            baseline=None
            if self.baseline is None
            else LearnerStatus(
                self.baseline_tracker.recent_loss,
                self.baseline_tracker.recent_accuracy,
                self._closed[1],
            ),
            speedup=self._speedup,
            learned=described,
        )

    def _summary(self, tracker: AdaptationTracker) -> dict[str, float]:
        figures = tracker.summary()
        if not self.knows_concept:
            figures.update(dict.fromkeys(DETECTION_FIGURES, float("nan")))
        return figures

    def snapshot(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "task": self.task,
            "concept": self._concept,
            "learner": self.learner.snapshot(),
            "baseline": self.baseline.snapshot() if self.baseline is not None else None,
            "segmenter": self.segmenter.snapshot(),
            "tracker": self.tracker.snapshot(),
            "baseline_tracker": self.baseline_tracker.snapshot(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.records = int(state["records"])
        self._concept = state.get("concept")
        self._closed = ((), ())
        self.learner.restore(state["learner"])
        if self.baseline is not None and state["baseline"] is not None:
            self.baseline.restore(state["baseline"])
        self.segmenter.restore(state["segmenter"])
        self.task = int(state.get("task", self.segmenter.task_id))
        self.tracker.restore(state["tracker"])
        self.baseline_tracker.restore(state["baseline_tracker"])
