"""Classification streams from river's generators, switching concept every ``task_length``
records, so every switch point is known.

SEA cycles through its four variants, STAGGER through its three functions (features one-hot),
Hyperplane draws a new random hyperplane for every task (and drifts within it by
``mag_change``). A task's records depend on the seed and the task's ordinal alone.

>>> chunk = RiverSwitchingStream("sea", task_length=5, seed=0).take(12)
>>> chunk.task.tolist(), chunk.x.shape, sorted(set(chunk.y.tolist())) <= [0, 1]
([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2], (12, 3), True)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from river.datasets import synth

from streammeta.bench.streams import StreamChunk

__all__ = ["RIVER_STREAMS", "RiverSwitchingStream"]

RIVER_STREAMS = ("sea", "stagger", "hyperplane")


class RiverSwitchingStream:
    """A river generator whose concept switches every ``task_length`` records."""

    task = "classification"
    n_classes = 2

    def __init__(
        self, kind: str, task_length: int = 1000, seed: int = 0, mag_change: float = 0.001
    ) -> None:
        if kind not in RIVER_STREAMS:
            raise ValueError(
                f"stream {kind!r}: must be one of {', '.join(map(repr, RIVER_STREAMS))}"
            )
        if task_length < 1:
            raise ValueError(f"task_length={task_length!r}: must be at least 1")
        self.kind = kind
        self.task_length = task_length
        self.seed = seed
        self.mag_change = mag_change
        self.n_features = {"sea": 3, "stagger": 9, "hyperplane": 10}[kind]
        self._pos = 0
        self._current = -1
        self._records: Iterator[tuple[dict[Any, Any], Any]] = iter(())

    def _generator(self, task: int) -> Any:
        seed = self.seed * 1_000_003 + task
        if self.kind == "sea":
            return synth.SEA(variant=task % 4, seed=seed)
        if self.kind == "stagger":
            return synth.STAGGER(classification_function=task % 3, seed=seed, balance_classes=True)
        return synth.Hyperplane(seed=seed, n_features=10, mag_change=self.mag_change)

    def _vector(self, x: dict[Any, Any]) -> list[float]:
        if self.kind == "sea":
            return [x[k] / 10.0 for k in sorted(x)]  # SEA draws features from [0, 10]
        if self.kind == "stagger":
            return [1.0 if x[k] == v else 0.0 for k in ("size", "color", "shape") for v in range(3)]
        return [x[k] for k in sorted(x)]

    def take(self, n: int) -> StreamChunk:
        """The next ``n`` records."""
        x = np.empty((n, self.n_features), dtype=np.float32)
        y = np.empty(n, dtype=np.int64)
        task = (self._pos + np.arange(n)) // self.task_length
        for i, t in enumerate(task.tolist()):
            if t != self._current:
                self._current, self._records = t, iter(self._generator(t))
            features, label = next(self._records)
            x[i] = self._vector(features)
            y[i] = int(label)
        self._pos += n
        return StreamChunk(x=x, y=y, task=task)
