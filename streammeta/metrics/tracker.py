"""The adaptation tracker: per boundary, how fast a learner recovers, online, batch by batch.

For each boundary it records **recovery samples** (labelled samples until the rolling mean loss
over the last 32 samples of the task, a full window, is within 10% of the level reached at the
end of the previous task; so at least 32, and censored at the task's end; a partial window would
declare recovery on the first sample whose loss happens to be low, which after a switch that
relabels only some records is most of them), the **post-boundary loss** (mean over the first
100 labelled samples) and, when the stream's true switch points are given, **detection
delay**, missed switches and false alarms. ``reference`` makes a tracker measure recovery
against another tracker's level (a shadow baseline against the meta-learner's), so the two
recover towards the same target. Across tasks it keeps the prequential loss (and, given the
records' hits, the accuracy) over the last ``recent`` labelled records.

>>> import numpy as np
>>> t = AdaptationTracker(window=2, post_window=3)
>>> t.update(np.array([1.0, 1.0, 1.0, 1.0]))
>>> t.update(np.array([9.0, 3.0, 1.0, 1.0, 1.0]), boundaries=[0])
>>> t.update(np.array([5.0]), boundaries=[0])  # closes the second task
>>> [(b.recovery_samples, b.censored, b.post_boundary_loss) for b in t.closed]
[(4, False, 4.333333333333333)]
>>> t.recent_loss, t.closed_since(0) == list(t.closed)
(2.4, True)
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from streammeta.metrics.window import RollingMean

__all__ = ["DETECTION_FIGURES", "RECENT", "AdaptationTracker", "BoundaryStats"]

#: Labelled records the prequential loss and accuracy average over, by default.
RECENT = 1000

#: The figures of :meth:`AdaptationTracker.summary` that need the true switches (the records'
#: concept): without them they are unknown, not measured.
DETECTION_FIGURES = ("detection_delay_median", "detected_fraction", "false_alarms_per_10k")


@dataclass
class BoundaryStats:
    """What the tracker measured after one boundary."""

    record: int  # stream position of the record that opened the task
    level: float  # loss level to recover to
    recovery_samples: int | None = None
    censored: bool = False
    post_boundary_loss: float | None = None
    detection_delay: int | None = None
    samples: int = 0  # labelled samples seen in the task


class AdaptationTracker:
    """Feed it each batch's per-record losses (NaN where unlabelled) and the batch's boundary
    offsets; read ``closed`` (the last ``history`` finished tasks: bounded, for services that
    run for weeks) and the summary figures."""

    def __init__(
        self,
        *,
        window: int = 32,
        tolerance: float = 0.1,
        post_window: int = 100,
        reference: AdaptationTracker | None = None,
        history: int = 10_000,
        recent: int = RECENT,
    ) -> None:
        if window < 1 or post_window < 1 or tolerance < 0 or history < 1 or recent < 1:
            raise ValueError(
                f"window={window!r}, post_window={post_window!r}, tolerance={tolerance!r}, "
                f"history={history!r}, recent={recent!r}: need window >= 1, post_window >= 1, "
                "tolerance >= 0, history >= 1, recent >= 1"
            )
        self.window = window
        self.tolerance = tolerance
        self.post_window = post_window
        self.reference = reference
        self.history = history
        self.recent = recent
        self.closed_total = 0  # tasks closed by this object, ever (for metrics; not restored)
        self._recent_loss = RollingMean(recent)  # for metrics as well; not restored either
        self._recent_hits = RollingMean(recent)
        self._reset()

    def _reset(self) -> None:
        self.closed: deque[BoundaryStats] = deque(maxlen=self.history)
        self.detected = 0
        self.missed = 0
        self.false_alarms = 0
        self._seen = 0  # records so far
        self._open: BoundaryStats | None = None
        self._tail = np.zeros(0)  # last labelled losses of the current task (for levels)
        self._post: list[float] = []
        self._switch: int | None = None  # a true switch not yet detected
        self._level_at_switch = float("nan")

    @property
    def level(self) -> float:
        """The loss level of the current task: mean of its last ``window`` labelled losses."""
        return float(self._tail.mean()) if len(self._tail) else float("nan")

    @property
    def recent_loss(self) -> float:
        """Mean prequential loss over the last ``recent`` labelled records (NaN before one)."""
        return self._recent_loss.mean

    @property
    def recent_accuracy(self) -> float:
        """Prequential accuracy over the last ``recent`` labelled records whose hits were
        given (classification; NaN before one)."""
        return self._recent_hits.mean

    def closed_since(self, total: int) -> list[BoundaryStats]:
        """The tasks closed after ``closed_total`` was ``total``, oldest first (those still in
        ``closed``)."""
        new = min(self.closed_total - total, len(self.closed))
        return list(itertools.islice(reversed(self.closed), max(new, 0)))[::-1]

    def update(
        self,
        loss: np.ndarray,
        boundaries: Sequence[int] = (),
        true_switches: Sequence[int] = (),
        hits: np.ndarray | None = None,
    ) -> None:
        """One batch: ``boundaries`` are detected (or given) task starts, ``true_switches`` the
        stream's real ones, both as offsets in this batch; ``hits`` says per record whether the
        prediction was right (1.0 or 0.0, NaN where unlabelled), for the accuracy."""
        loss = np.asarray(loss, dtype=np.float64)
        self._recent_loss.add(loss)
        if hits is not None:
            self._recent_hits.add(np.asarray(hits, dtype=np.float64))
        cuts = set(boundaries)
        switches = set(true_switches)
        edges = sorted({0, len(loss), *cuts, *switches})
        for a, b in itertools.pairwise(edges):
            if a in switches:  # before a boundary at the same record: detected with delay 0
                self._true_switch(self._seen + a)
            if a in cuts:
                self._boundary(self._seen + a)
            self._observe(loss[a:b])
        self._seen += len(loss)

    def _true_switch(self, record: int) -> None:
        if self._switch is None:
            self._level_at_switch = self.level  # before the new regime's losses come in
        else:
            self.missed += 1
        self._switch = record

    def level_at(self, record: int) -> float:
        """The level a boundary at ``record`` recovers to: the level just before the true
        switch when one is pending (the records between a switch and its detection already
        belong to the new regime), else the current level; a tracker that has just opened a
        task at ``record`` answers with that task's level (for trackers that use it as
        their reference)."""
        if self._open is not None and self._open.record == record:
            return self._open.level
        return self._level_at_switch if self._switch is not None else self.level

    def _boundary(self, record: int) -> None:
        level = (self.reference or self).level_at(record)
        if self._open is not None:
            self._close()
        self._open = BoundaryStats(record=record, level=level)
        if self._switch is not None:
            self._open.detection_delay = record - self._switch
            self._switch = None
            self.detected += 1
        else:
            self.false_alarms += 1
        self._tail = np.zeros(0)
        self._post = []

    def _observe(self, seg: np.ndarray) -> None:
        seg = seg[np.isfinite(seg)]
        if not len(seg):
            return
        task = self._open
        if task is not None and task.recovery_samples is None and np.isfinite(task.level):
            prior = self._tail[-(self.window - 1) :] if self.window > 1 else np.zeros(0)
            joined = np.concatenate([prior, seg])
            csum = np.concatenate([[0.0], np.cumsum(joined)])
            ends = np.arange(len(prior) + 1, len(joined) + 1)
            starts = np.maximum(0, ends - self.window)
            rolling = (csum[ends] - csum[starts]) / (ends - starts)
            full = ends - starts == self.window
            hit = np.flatnonzero(full & (rolling <= (1 + self.tolerance) * task.level))
            if len(hit):
                task.recovery_samples = task.samples + int(hit[0]) + 1
        if task is not None:
            room = self.post_window - len(self._post)
            if room > 0:
                self._post.extend(seg[:room].tolist())
                if len(self._post) == self.post_window:
                    task.post_boundary_loss = float(np.mean(self._post))
            task.samples += len(seg)
        self._tail = np.concatenate([self._tail, seg])[-self.window :]

    def finish(self) -> None:
        """The stream ended: close the open task (censored if it has not recovered)."""
        if self._open is not None:
            self._close()
            self._open = None

    def _close(self) -> None:
        task = self._open
        assert task is not None
        if task.recovery_samples is None:
            task.recovery_samples, task.censored = task.samples, True
        if task.post_boundary_loss is None and self._post:
            task.post_boundary_loss = float(np.mean(self._post))
        self.closed.append(task)
        self.closed_total += 1

    def summary(self, since: int = 0) -> dict[str, float]:
        """Medians and rates over the closed tasks (those opened at record ``since`` or later;
        missed switches and false alarms count over the whole stream)."""
        closed = [b for b in self.closed if b.record >= since]
        rec = [b.recovery_samples for b in closed if b.recovery_samples is not None]
        post = [b.post_boundary_loss for b in closed if b.post_boundary_loss is not None]
        delays = [b.detection_delay for b in closed if b.detection_delay is not None]
        found = self.detected
        return {
            "boundaries": float(len(closed)),
            "recovery_samples_median": float(np.median(rec)) if rec else float("nan"),
            "recovery_censored_fraction": float(np.mean([b.censored for b in closed]))
            if closed
            else float("nan"),
            "post_boundary_loss": float(np.mean(post)) if post else float("nan"),
            "detection_delay_median": float(np.median(delays)) if delays else float("nan"),
            "detected_fraction": found / (found + self.missed)
            if found + self.missed
            else float("nan"),
            "false_alarms_per_10k": 1e4 * self.false_alarms / self._seen if self._seen else 0.0,
        }

    def speedup(self, baseline: AdaptationTracker, last: int = 0) -> float:
        """Baseline recovery samples / this tracker's: medians over the closed tasks (the last
        ``last`` of them when given; reading only those, so it is cheap to call often)."""
        mine, theirs = self._median_recovery(last), baseline._median_recovery(last)
        return theirs / mine if mine and np.isfinite(mine) else float("nan")

    def _median_recovery(self, last: int) -> float:
        tasks = itertools.islice(reversed(self.closed), last) if last else self.closed
        rec = [b.recovery_samples for b in tasks if b.recovery_samples is not None]
        return float(np.median(rec)) if rec else float("nan")

    def snapshot(self) -> dict[str, Any]:
        return {
            "closed": [asdict(b) for b in self.closed],
            "open": asdict(self._open) if self._open is not None else None,
            "detected": self.detected,
            "missed": self.missed,
            "false_alarms": self.false_alarms,
            "seen": self._seen,
            "tail": self._tail.tolist(),
            "post": list(self._post),
            "switch": self._switch,
            "level_at_switch": self._level_at_switch,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.closed = deque((BoundaryStats(**b) for b in state["closed"]), maxlen=self.history)
        self._open = BoundaryStats(**state["open"]) if state["open"] is not None else None
        self.detected = int(state["detected"])
        self.missed = int(state["missed"])
        self.false_alarms = int(state["false_alarms"])
        self._seen = int(state["seen"])
        self._tail = np.asarray(state["tail"], dtype=np.float64)
        self._post = [float(v) for v in state["post"]]
        self._switch = state["switch"]
        self._level_at_switch = float(state["level_at_switch"])
