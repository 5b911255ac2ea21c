"""MAML's sinusoid regression tasks as a stream (``sinusoid``), and the same in raw units far from
0 (``sinusoid_offset``).

>>> stream = SinusoidStream(task_length=3, seed=0)
>>> chunk = stream.take(7)
>>> chunk.task.tolist()
[0, 0, 0, 1, 1, 1, 2]
>>> next(iter(stream.records(1)))["task"]
2
>>> chunk = OffsetSinusoidStream(seed=0).take(1000)
>>> bool(100 <= chunk.y.min() and chunk.y.max() <= 300 and chunk.x.max() > 400)
True
"""

from __future__ import annotations

import math

import numpy as np

from streammeta.streams.base import Stream

__all__ = ["OffsetSinusoidStream", "SinusoidStream"]


class SinusoidStream(Stream):
    """MAML's sinusoid family as a stream: ``y = A sin(x + phi)``, ``A ~ U[0.1, 5]``,
    ``phi ~ U[0, pi]``, ``x ~ U[-5, 5]``, a new task every ``task_length`` records.

    Reading continues where the last read ended; the same seed gives the same records.
    """

    name = "sinusoid"
    task = "regression"
    n_features = 1
    default_task_length = 100

    def __init__(
        self,
        task_length: int | None = None,
        seed: int = 0,
        amplitude: tuple[float, float] = (0.1, 5.0),
        phase: tuple[float, float] = (0.0, math.pi),
        x_range: tuple[float, float] = (-5.0, 5.0),
    ) -> None:
        super().__init__(task_length, seed)
        self.amplitude = amplitude
        self.phase = phase
        self.x_range = x_range
        self._rng = np.random.default_rng(seed)  # inputs, drawn in record order

    def task_params(self, task: int) -> tuple[float, float]:
        """Amplitude and phase of task ``task``: a function of the seed and the task alone, so
        the records do not depend on how the stream is read."""
        rng = np.random.default_rng((self.seed, task))
        return float(rng.uniform(*self.amplitude)), float(rng.uniform(*self.phase))

    def _draw(self, start: int, task: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(task)
        params = np.array([self.task_params(t) for t in np.unique(task).tolist()]).reshape(-1, 2)
        which = task - (task[0] if n else 0)
        amp, pha = params[which, 0], params[which, 1]
        x = self._rng.uniform(*self.x_range, size=(n, 1)).astype(np.float32)
        y = (amp * np.sin(x[:, 0] + pha)).astype(np.float32)
        return x, y


class OffsetSinusoidStream(SinusoidStream):
    """The sinusoid family in raw units, far from 0: ``y = 200 + 20 A sin(x / 100 + phi)``,
    ``x ~ U[-500, 500]``, so ``y`` lies in [100, 300]. The same tasks and inputs as ``sinusoid``
    with the same seed, ``x`` times 100 and ``y`` times 20 plus 200."""

    name = "sinusoid_offset"
    x_unit, y_offset, y_scale = 100.0, 200.0, 20.0

    def _draw(self, start: int, task: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = super()._draw(start, task)
        return x * np.float32(self.x_unit), (self.y_offset + self.y_scale * y).astype(np.float32)
