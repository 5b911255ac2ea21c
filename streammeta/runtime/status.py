"""What a sensor reads about the pipeline after each micro-batch: figures, never the pipeline.

:meth:`~streammeta.runtime.pipeline.Pipeline.live_status` takes a :class:`PipelineStatus`; the
run loop hands it to the sensor's hooks with the batch's
:class:`~streammeta.runtime.pipeline.Step`.

>>> status = LearnerStatus(loss=0.25, accuracy=float("nan"), closed=())
>>> status.loss
0.25
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from streammeta.metrics.tracker import BoundaryStats

__all__ = ["SPEEDUP_TASKS", "LearnerStatus", "PipelineStatus"]

#: Closed tasks the live speedup is taken over (medians of recovery samples).
SPEEDUP_TASKS = 50


@dataclass(frozen=True)
class LearnerStatus:
    """One learner's adaptation (the meta-learner's or the shadow baseline's)."""

    loss: float  # mean prequential loss over the tracker's last ``recent`` labelled records
    accuracy: float  # prequential accuracy over the same records (NaN for regression)
    closed: tuple[BoundaryStats, ...]  # the tasks the last batch closed, oldest first


@dataclass(frozen=True)
class PipelineStatus:
    """The pipeline's live figures after its last batch."""

    name: str  # the learner, e.g. ``maml+metasgd``
    device: str  # where the learner runs: ``cpu`` or ``cuda``
    records: int  # records learned from
    meta_updates: int  # meta-updates of the initialization, ever (0 without meta-training)
    meta_seconds: float  # seconds they took, since this process started
    knows_concept: bool  # the records carried their true concept: the next two are known
    missed: int  # true switches passed without a boundary
    false_alarms: int  # boundaries with no true switch before
    meta: LearnerStatus
    baseline: LearnerStatus | None  # ``None`` without a shadow baseline
    #: baseline recovery samples / the meta-learner's, medians over the last ``SPEEDUP_TASKS``
    #: closed tasks; NaN without a baseline or before a task closed
    speedup: float
    #: the learner's own figures (``Learner.describe``), re-read after a meta-update and at
    #: most once a second otherwise (they may cost a device sync); ``None`` when not re-read
    learned: Mapping[str, float] | None
