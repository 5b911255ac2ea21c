"""Benchmark streams: drifting data with known switch points, shared by the benchmarks, the demo
and the tests.

>>> stream = SinusoidStream(task_length=3, seed=0)
>>> chunk = stream.take(7)
>>> chunk.task.tolist()
[0, 0, 0, 1, 1, 1, 2]
>>> next(iter(stream.records(1)))["task"]
2
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["STREAMS", "SinusoidStream", "StreamChunk", "make_stream"]


@dataclass(frozen=True)
class StreamChunk:
    """Records in columns: features ``x [n, d]``, targets ``y [n]``, task ordinal ``task [n]``."""

    x: np.ndarray
    y: np.ndarray
    task: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def switches(self) -> np.ndarray:
        """Positions (within the chunk) of the records that open a new task."""
        return np.flatnonzero(np.diff(self.task, prepend=self.task[:1] - 1) != 0)


class SinusoidStream:
    """MAML's sinusoid family as a stream: ``y = A sin(x + phi)``, ``A ~ U[0.1, 5]``,
    ``phi ~ U[0, pi]``, ``x ~ U[-5, 5]``, a new task every ``task_length`` records.

    Reading continues where the last read ended; the same seed gives the same records.
    """

    n_features = 1
    task = "regression"

    def __init__(
        self,
        task_length: int = 100,
        seed: int = 0,
        amplitude: tuple[float, float] = (0.1, 5.0),
        phase: tuple[float, float] = (0.0, math.pi),
        x_range: tuple[float, float] = (-5.0, 5.0),
    ) -> None:
        if task_length < 1:
            raise ValueError(f"task_length={task_length!r}: must be at least 1")
        self.task_length = task_length
        self.seed = seed
        self.amplitude = amplitude
        self.phase = phase
        self.x_range = x_range
        self._rng = np.random.default_rng(seed)  # inputs, drawn in record order
        self._pos = 0

    def task_params(self, task: int) -> tuple[float, float]:
        """Amplitude and phase of task ``task``: a function of the seed and the task alone, so
        the records do not depend on how the stream is read."""
        rng = np.random.default_rng((self.seed, task))
        return float(rng.uniform(*self.amplitude)), float(rng.uniform(*self.phase))

    def take(self, n: int) -> StreamChunk:
        """The next ``n`` records."""
        task = (self._pos + np.arange(n)) // self.task_length
        params = np.array([self.task_params(t) for t in np.unique(task).tolist()]).reshape(-1, 2)
        which = task - (task[0] if n else 0)
        amp, pha = params[which, 0], params[which, 1]
        x = self._rng.uniform(*self.x_range, size=(n, 1)).astype(np.float32)
        y = (amp * np.sin(x[:, 0] + pha)).astype(np.float32)
        self._pos += n
        return StreamChunk(x=x, y=y, task=task)

    def records(self, n: int, batch: int = 4096) -> Iterator[dict[str, Any]]:
        """The next ``n`` records in streammeta's input format (``x``, ``y``, ``task``)."""
        done = 0
        while done < n:
            chunk = self.take(min(batch, n - done))
            for xi, yi, ti in zip(
                chunk.x.tolist(), chunk.y.tolist(), chunk.task.tolist(), strict=True
            ):
                yield {"x": xi, "y": yi, "task": ti}
            done += len(chunk)


STREAMS = ("sinusoid",)


def make_stream(name: str, *, task_length: int = 100, seed: int = 0) -> SinusoidStream:
    """A stream by name (``stream.name`` in the config)."""
    if name == "sinusoid":
        return SinusoidStream(task_length=task_length, seed=seed)
    raise ValueError(f"stream {name!r}: must be one of {', '.join(map(repr, STREAMS))}")
