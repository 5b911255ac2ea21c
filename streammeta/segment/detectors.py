"""Segmenters built on river's drift detectors.

Loss detectors (ADWIN, Page-Hinkley, KSWIN) read the per-record loss standardized against the
current task (running mean and spread, clipped to 3 deviations and mapped to [0, 1]) and count
only increases: a loss that falls while the learner adapts is not a new task. Error detectors
(DDM, EDDM, HDDM-A, HDDM-W, FHDDM) read the 0/1 error of a classifier.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> seg = ADWIN.build(min_task_length=50)
>>> seg.update(rng.exponential(1.0, 2000))  # stationary: no boundary
>>> seg.boundary
False
>>> seg.update(rng.exponential(4.0, 400))  # the loss jumps
>>> seg.boundary, seg.boundaries[0] < 100
(True, True)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from river import drift
from river.base import BinaryDriftDetector, DriftDetector

from streammeta.registry import SEGMENTERS
from streammeta.segment.base import Segmenter

__all__ = [
    "ADWIN",
    "DDM",
    "EDDM",
    "FHDDM",
    "HDDM_A",
    "HDDM_W",
    "KSWIN",
    "PAGE_HINKLEY",
    "DetectorSpec",
    "RiverSegmenter",
]


@dataclass(frozen=True)
class DetectorSpec:
    """A river drift detector as a segmenter: ``make(**params)`` builds the detector; ``reads``
    the signal it takes (``"loss"``, standardized, or a classifier's 0/1 ``"error"``).

    A loss detector must say how a rise of the loss is told from a fall (a loss that falls
    while the learner adapts is no new task): ``level(detector)`` reads its estimate of the
    signal's level (``None`` while it has none), compared before and after a drift; or
    ``one_sided=True`` where the detector sees rises only. ``correct``: the error detector
    watches for a fall of its input's mean, so it reads correctness instead of error.
    """

    make: Callable[..., DriftDetector | BinaryDriftDetector]
    reads: Literal["loss", "error"]
    level: Callable[[Any], float | None] | None = None
    one_sided: bool = False
    correct: bool = False

    def __post_init__(self) -> None:
        if self.reads not in ("loss", "error"):
            raise ValueError(f"reads={self.reads!r}: must be 'loss' or 'error'")
        if self.reads == "loss" and (self.level is None) == (not self.one_sided):
            raise ValueError(
                "a loss detector must say how rises are told from falls: give level= (its "
                "estimate of the loss level) or one_sided=True (it sees rises only), not both"
            )

    def build(
        self, *, min_task_length: int = 50, cooldown: int = 0, window: int = 100
    ) -> RiverSegmenter:
        """The segmenter (the constructor every entry of
        :data:`streammeta.registry.SEGMENTERS` shares; ``window`` is for fixed windows)."""
        return RiverSegmenter(self, min_task_length=min_task_length, cooldown=cooldown)


def _recent_mean(det: Any) -> float | None:
    """KSWIN keeps its sliding window: the recent part's mean."""
    window = det.window
    if not window:
        return None
    recent = list(window)[-max(1, len(window) // 3) :]
    return sum(recent) / len(recent)


ADWIN = DetectorSpec(drift.ADWIN, "loss", level=lambda det: float(det.estimation))
PAGE_HINKLEY = DetectorSpec(
    lambda **kw: drift.PageHinkley(**{"mode": "up", **kw}), "loss", one_sided=True
)
# seeded, so replays are exact. River's defaults (alpha 0.005, 30 vs 30 records) gave 7 false
# alarms per 10k on a stationary loss; 100 vs 100 records at 1e-4 gave none and still caught a
# 1-to-4 jump in the mean loss within 69 records (10 seeds)
KSWIN = DetectorSpec(
    lambda **kw: drift.KSWIN(
        **{"seed": 0, "alpha": 1e-4, "window_size": 300, "stat_size": 100, **kw}
    ),
    "loss",
    level=_recent_mean,
)
DDM = DetectorSpec(drift.binary.DDM, "error")
EDDM = DetectorSpec(drift.binary.EDDM, "error")
HDDM_A = DetectorSpec(drift.binary.HDDMA, "error")
HDDM_W = DetectorSpec(drift.binary.HDDMW, "error")
# river's FHDDM watches for a fall of its input's mean: it reads correctness
FHDDM = DetectorSpec(drift.binary.FHDDM, "error", correct=True)


class RiverSegmenter(Segmenter):
    """A river drift detector as a segmenter; ``detector`` is its spec, or its name in
    :data:`streammeta.registry.SEGMENTERS`; ``params`` configure it.

    A snapshot holds the signal of the current task (its last ``history`` records) and a restore
    replays it into a fresh detector: exact for tasks up to ``history`` records long, and no
    pickled objects in checkpoints.
    """

    def __init__(
        self,
        detector: str | DetectorSpec = "adwin",
        *,
        min_task_length: int = 50,
        cooldown: int = 0,
        params: dict[str, Any] | None = None,
        history: int = 10_000,
    ) -> None:
        spec = SEGMENTERS.load(detector) if isinstance(detector, str) else detector
        if not isinstance(spec, DetectorSpec):
            choices = [e.name for e in SEGMENTERS if e.target.startswith(__name__ + ":")]
            raise ValueError(f"detector {detector!r}: not a river detector; one of {choices}")
        self.spec = spec
        self.params = dict(params or {})
        self.history = history
        self.reads = spec.reads
        super().__init__(min_task_length=min_task_length, cooldown=cooldown)

    def _restart(self) -> None:
        self._det: Any = self.spec.make(**self.params)  # a loss (float) or error (bool) detector
        self._n, self._mean, self._m2 = 0, 0.0, 0.0  # Welford over the current task's signal
        self._history: deque[float] = deque(maxlen=self.history)

    def _observe(self, value: float) -> bool:
        self._history.append(value)
        if self.reads == "error":
            error = value > 0.5
            self._det.update(not error if self.spec.correct else error)
            return bool(self._det.drift_detected)
        x = self._standardize(value)
        before = self._level()
        self._det.update(x)
        if not self._det.drift_detected:
            return False
        after = self._level()
        return before is None or after is None or after > before

    def _standardize(self, value: float) -> float:
        if self._n >= 2:
            std = math.sqrt(self._m2 / (self._n - 1)) or 1.0
            z = min(3.0, max(-3.0, (value - self._mean) / std))
        else:
            z = 0.0
        self._n += 1
        delta = value - self._mean
        self._mean += delta / self._n
        self._m2 += delta * (value - self._mean)
        return (z + 3.0) / 6.0

    def _level(self) -> float | None:
        """The detector's estimate of the signal's level, to tell rises from falls; ``None``
        where the detector itself is one-sided."""
        return None if self.spec.level is None else self.spec.level(self._det)

    def _state(self) -> dict[str, Any]:
        return {"history": torch.tensor(self._history, dtype=torch.float64)}

    def _load(self, state: dict[str, Any]) -> None:
        self._restart()
        for value in state["history"].tolist():
            self._observe(value)
