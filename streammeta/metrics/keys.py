"""How fast keys adapt: per key, the labelled records its task needs to reach the keyed records'
level, and the distribution of that figure over keys.

A key's task starts when the key is first held (a new key, or one evicted and back) or when its
segmenter opens one. From there the key's **recovery samples** are its labelled records until
the mean loss of its last ``window`` labelled records is within ``tolerance`` of the level: the
prequential loss of all keyed records over the last ``recent`` (so at least ``window``; a task
that ends first is censored and not counted). Held keys are bounded (least recently seen
forgotten), and so is the history of figures.

>>> import numpy as np
>>> keys = KeyRecovery(window=2, recent=4)
>>> keys.update(np.array(["a", "b", "a", "b"]), np.array([1.0, 1.0, 1.0, 1.0]))
>>> keys.update(np.array(["c", "c", "c"]), np.array([5.0, 1.0, 1.0]))
>>> sorted(keys.history), keys.summary()["recovery_samples_median"]
([2, 2, 3], 2.0)
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from streammeta.metrics.window import RollingMean

__all__ = ["KeyRecovery"]


class _Task:
    """A key's open task: labelled records so far and its last losses (``None`` once it
    recovered)."""

    __slots__ = ("ordinal", "seen", "tail")

    def __init__(self, ordinal: int, window: int) -> None:
        self.ordinal = ordinal
        self.seen = 0
        self.tail: deque[float] | None = deque(maxlen=window)


class KeyRecovery:
    """Feed it each batch's keys, per-record losses (NaN where unlabelled) and the offsets of
    the records that opened a key's new task; read ``history`` and ``summary()``."""

    def __init__(
        self,
        *,
        window: int = 16,
        tolerance: float = 0.1,
        recent: int = 1000,
        max_keys: int = 1024,
        history: int = 10_000,
    ) -> None:
        if window < 1 or tolerance < 0 or recent < 1 or max_keys < 1 or history < 1:
            raise ValueError(
                f"window={window!r}, tolerance={tolerance!r}, recent={recent!r}, "
                f"max_keys={max_keys!r}, history={history!r}: need tolerance >= 0 and the "
                "others >= 1"
            )
        self.window, self.tolerance, self.max_keys = window, tolerance, max_keys
        self.level = RollingMean(recent)
        self.history: deque[int] = deque(maxlen=history)
        self._tasks: OrderedDict[str, _Task] = OrderedDict()  # least recently seen first

    def task_of(self, key: str) -> int:
        """The ordinal of ``key``'s current task since it was last held (0 for its first)."""
        task = self._tasks.get(key)
        return 0 if task is None else task.ordinal

    def update(self, keys: np.ndarray, loss: np.ndarray, boundaries: Sequence[int] = ()) -> None:
        self.level.add(loss)
        level = self.level.mean
        opened = set(boundaries)
        for i, (key, value) in enumerate(zip(keys.tolist(), loss.tolist(), strict=True)):
            task = self._tasks.get(key)
            if task is None:
                task = self._tasks[key] = _Task(0, self.window)
                if len(self._tasks) > self.max_keys:
                    self._tasks.popitem(last=False)
            elif i in opened:
                task = self._tasks[key] = _Task(task.ordinal + 1, self.window)
            self._tasks.move_to_end(key)
            if task.tail is None or value != value:  # recovered already, or unlabelled
                continue
            task.seen += 1
            task.tail.append(value)
            full = len(task.tail) == self.window
            if full and sum(task.tail) / self.window <= level * (1 + self.tolerance):
                self.history.append(task.seen)
                task.tail = None

    def forget(self, keys: Sequence[str]) -> None:
        """Keys evicted by the learner: their tasks end here, censored."""
        for key in keys:
            self._tasks.pop(key, None)

    def summary(self) -> dict[str, float]:
        """Median and 90th percentile of the recovery samples over keys' tasks (NaN before one),
        and how many tasks recovered."""
        seen = np.array(self.history, dtype=np.float64)
        return {
            "recovery_samples_median": float(np.median(seen)) if len(seen) else float("nan"),
            "recovery_samples_p90": float(np.quantile(seen, 0.9)) if len(seen) else float("nan"),
            "tasks_recovered": float(len(seen)),
        }

    def snapshot(self) -> dict[str, Any]:
        return {
            "history": list(self.history),
            "tasks": [
                (k, t.ordinal, t.seen, None if t.tail is None else list(t.tail))
                for k, t in self._tasks.items()
            ],
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.history.clear()
        self.history.extend(int(v) for v in state["history"])
        self._tasks.clear()
        for key, ordinal, seen, tail in state["tasks"]:
            task = _Task(int(ordinal), self.window)
            task.seen = int(seen)
            task.tail = None if tail is None else deque(tail, maxlen=self.window)
            self._tasks[key] = task
