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

import logging
import time
from typing import Any

import numpy as np
import torch

from streammeta.config import Config
from streammeta.learn.base import Learner
from streammeta.learn.factory import build_baseline, build_learner, build_segmenter
from streammeta.metrics.tracker import DETECTION_FIGURES, AdaptationTracker, BoundaryStats
from streammeta.runtime.keys import KeyedRecords, keyable
from streammeta.runtime.prequential import predict_then_learn
from streammeta.runtime.status import SPEEDUP_TASKS, LearnerStatus, PipelineStatus
from streammeta.runtime.step import Batch, Step
from streammeta.segment.base import Segmenter

__all__ = ["Batch", "Pipeline", "Step"]  # Batch and Step: from streammeta.runtime.step

log = logging.getLogger(__name__)

#: Seconds between reads of the learner's own figures when no meta-update happened.
DESCRIBE_EVERY_S = 1.0


class Pipeline:
    """Meta-learner, optional shadow baseline, segmenter and adaptation trackers."""

    def __init__(
        self,
        learner: Learner,
        segmenter: Segmenter,
        baseline: Learner | None = None,
        *,
        name: str = "custom",
        keys: KeyedRecords | None = None,
    ) -> None:
        """``name`` describes the learner (``maml+metasgd``) in status and metrics; ``keys``
        keeps the state of records that carry a key apart, per key (without it, keys are only
        echoed)."""
        self.name = name
        self.learner = learner
        self.keys = keys
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
        learner = build_learner(c)
        keys = None
        if c.max_keys and keyable(learner):
            per_key = config.segment.for_keys()
            keys = KeyedRecords(learner, c.max_keys, lambda: build_segmenter(per_key))
        elif c.max_keys:
            log.warning("algorithm %r keeps no state per key: keys are only echoed", c.algorithm)
        return cls(
            learner,
            build_segmenter(config.segment),
            None if c.baseline == "none" else build_baseline(c.baseline, c),
            name=f"{c.algorithm}+{c.optimizer}",
            keys=keys,
        )

    def process(self, batch: Batch) -> Step:
        """Predict, segment, learn, track one micro-batch: records with a key on their key's
        state (when ``keys``), the others on the shared one."""
        keyed = None
        if self.keys is not None and batch.key is not None:
            keyed = batch.key != None  # noqa: E711 (elementwise)
        if keyed is None or not keyed.any():
            return self._process(batch)
        version = self.learner.model_version
        if keyed.all():
            return self._process_keyed(batch, version)
        rest = (np.flatnonzero(~keyed), self._process(batch.select(~keyed)))
        own = (np.flatnonzero(keyed), self._process_keyed(batch.select(keyed), version))
        return Step.merge([rest, own], len(batch))

    def _process_keyed(self, batch: Batch, version: int) -> Step:
        assert self.keys is not None and batch.key is not None
        done = self.keys.process(batch)
        self.records += len(batch)
        classes = done.output.shape[-1] > 1
        y_hat = done.prediction.cpu().numpy()
        return Step(
            y_hat=y_hat,
            proba=torch.softmax(done.output, -1).cpu().numpy() if classes else None,
            loss=done.loss,
            baseline_loss=None if self.baseline is None else np.full(len(batch), np.nan),
            baseline_y_hat=None if self.baseline is None else np.zeros_like(y_hat),
            task=done.task,
            boundary=done.boundary,
            model_version=version,
        )

    def _process(self, batch: Batch) -> Step:
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
            "learned": self._described_now(),
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
            described = self._described_now()
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

    def _described_now(self) -> dict[str, float]:
        """The learner's own figures, and the keys' when it keeps state per key."""
        keys = {} if self.keys is None else self.keys.describe()
        return {**self.learner.describe(), **keys}

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
            "keys": None if self.keys is None else self.keys.snapshot(),
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
        if self.keys is not None:
            self.keys.restore(state.get("keys"))
