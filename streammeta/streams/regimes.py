"""Streams for the regimes besides a fresh concept every task: concepts that come back, one that
never changes, and switches at random records.

``stagger_recurring`` cycles STAGGER's three rules (Schlimmer and Granger, 1986) and
``sinusoid_recurring`` four sinusoids in raw units, a task at a time; ``concept_of(task)`` names a
task's concept, so a benchmark can gather a concept's returns. ``no_drift`` is ``friedman`` under
its first task's concept forever. ``switching_sinusoid`` is MOCA's switching sinusoid (Harrison
et al., 2020): a new sinusoid opens at every record with probability ``1 / task_length``.

The last two are ``IrregularTaskStream`` subclasses: their task ordinals are not blocks of
``task_length`` records. ``no_drift`` is a single task, whatever its ``task_length`` (a nominal
length, 2,500, that sets a benchmark's budget and warm-up); ``switching_sinusoid``'s tasks have
random lengths, ``task_length`` (10) on average.

>>> stream = StaggerRecurringStream(task_length=4, seed=0)
>>> chunk = stream.take(12)
>>> chunk.x[:3].tolist(), [stream.concept_of(t) for t in range(5)]
([[2.0, 2.0, 2.0], [1.0, 1.0, 1.0], [2.0, 2.0, 0.0]], [0, 1, 2, 0, 1])
>>> chunk.y.tolist() == stream.label(chunk.task % 3, chunk.x).tolist()
True
>>> chunk = SwitchingSinusoidStream(seed=0).take(40)
>>> chunk.switches.tolist()
[0, 10, 37]
>>> NoDriftStream(seed=0).take(60_000).switches.tolist()
[0]
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import ClassVar

import numpy as np

from streammeta.streams.base import Stream, StreamChunk
from streammeta.streams.raw import FriedmanStream

__all__ = [
    "IrregularTaskStream",
    "NoDriftStream",
    "SinusoidRecurringStream",
    "StaggerRecurringStream",
    "SwitchingSinusoidStream",
]

# the last word of every seed, so that no two of a stream's generators share one
_CONCEPT, _INPUTS, _SWITCHES = 1, 3, 5

# STAGGER's codes, river's: size small/medium/large, color red/blue/green, shape
# circle/square/triangle
_SMALL, _RED, _GREEN, _CIRCLE = 0, 0, 2, 0


class IrregularTaskStream(Stream):
    """A stream whose task ordinals are not blocks of ``task_length`` records: ``_tasks`` draws
    them in record order (consecutive, from 0)."""

    def take(self, n: int) -> StreamChunk:
        """The next ``n`` records."""
        if n < 0:
            raise ValueError(f"n={n!r}: must be at least 0")
        task = self._tasks(n)
        x, y = self._draw(self._pos, task)
        self._pos += n
        return StreamChunk(x=x, y=y, task=task)

    @abstractmethod
    def _tasks(self, n: int) -> np.ndarray:
        """The task ordinals (int64) of the next ``n`` records."""


class StaggerRecurringStream(Stream):
    """STAGGER's objects as raw codes ``(size, color, shape)``, each uniform on {0, 1, 2}, under
    rule ``task % 3``: 0 ``size == small and color == red``, 1 ``color == green or shape ==
    circle``, 2 ``size == medium or size == large``, in river's codes (small, red and circle 0,
    green 2). Classes are not balanced: the rules label 1/9, 5/9 and 2/3 of the objects 1."""

    name = "stagger_recurring"
    task = "classification"
    n_features = 3
    n_classes = 2
    default_task_length = 1000
    concepts = 3

    def __init__(self, task_length: int | None = None, seed: int = 0) -> None:
        super().__init__(task_length, seed)
        self._inputs = np.random.default_rng((seed, 0, _INPUTS))  # drawn in record order

    def concept_of(self, task: int) -> int:
        """The rule of task ``task``."""
        return task % self.concepts

    @staticmethod
    def label(concept: np.ndarray | int, x: np.ndarray) -> np.ndarray:
        """The labels (int64) of objects ``x [n, 3]`` under rule ``concept`` (one, or one per
        object)."""
        size, color, shape = np.asarray(x).T
        rules = np.stack(
            [
                (size == _SMALL) & (color == _RED),
                (color == _GREEN) | (shape == _CIRCLE),
                size != _SMALL,
            ]
        )
        return rules[concept, np.arange(len(size))].astype(np.int64)

    def _draw(self, start: int, task: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = self._inputs.integers(0, 3, (len(task), self.n_features)).astype(np.float32)
        return x, self.label(task % self.concepts, x)


class _Sinusoids(Stream):
    """``y = y_offset + y_scale A sin(x / x_unit + phi)`` with ``x / x_unit ~ U[-5, 5]``, ``A``
    and ``phi`` those of the task's concept, drawn from the seed and the concept alone as in
    ``sinusoid``: ``A ~ U[0.1, 5]``, ``phi ~ U[0, pi]``."""

    task = "regression"
    n_features = 1
    amplitude = (0.1, 5.0)
    phase = (0.0, math.pi)
    x_range = (-5.0, 5.0)
    x_unit: ClassVar[float] = 1.0
    y_offset: ClassVar[float] = 0.0
    y_scale: ClassVar[float] = 1.0

    def __init__(self, task_length: int | None = None, seed: int = 0) -> None:
        super().__init__(task_length, seed)
        self._inputs = np.random.default_rng((seed, 0, _INPUTS))  # drawn in record order

    @abstractmethod
    def concept_of(self, task: int) -> int:
        """The concept of task ``task``."""

    def params(self, concept: int) -> tuple[float, float]:
        """Amplitude and phase of concept ``concept``."""
        rng = np.random.default_rng((self.seed, concept, _CONCEPT))
        return float(rng.uniform(*self.amplitude)), float(rng.uniform(*self.phase))

    def _draw(self, start: int, task: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        first = int(task[0]) if len(task) else 0
        tasks = range(first, int(task[-1]) + 1 if len(task) else first)  # consecutive
        table = np.array([self.params(self.concept_of(t)) for t in tasks]).reshape(-1, 2)
        amp, pha = table[task - first].T
        u = self._inputs.uniform(*self.x_range, len(task))
        y = self.y_offset + self.y_scale * amp * np.sin(u + pha)
        return (self.x_unit * u)[:, None].astype(np.float32), y.astype(np.float32)


class SinusoidRecurringStream(_Sinusoids):
    """Four sinusoids in raw units, as in ``sinusoid_offset`` (``x`` in [-500, 500], ``y =
    200 + 20 A sin(x / 100 + phi)`` in [100, 300]), in turn: task ``t`` is concept ``t % 4``."""

    name = "sinusoid_recurring"
    default_task_length = 500
    concepts = 4
    x_unit, y_offset, y_scale = 100.0, 200.0, 20.0

    def concept_of(self, task: int) -> int:
        return task % self.concepts


class SwitchingSinusoidStream(IrregularTaskStream, _Sinusoids):
    """MOCA's switching sinusoid: ``y = A sin(x + phi)``, ``x ~ U[-5, 5]``, a new ``A`` and
    ``phi`` for every task (concept ``t`` in task ``t``), and every record after the first opens
    a new task with probability ``hazard = 1 / task_length`` (0.1 by default), drawn in record
    order: tasks of random length, ``task_length`` on average."""

    name = "switching_sinusoid"
    default_task_length = 10
    #: MOCA's setting, which benchmarks keep: one record a micro-batch and an inner step
    records_per_step = 1

    def __init__(self, task_length: int | None = None, seed: int = 0) -> None:
        super().__init__(task_length, seed)
        self.hazard = 1.0 / self.task_length
        self._switches = np.random.default_rng((seed, 0, _SWITCHES))  # one draw per record
        self._task = 0  # the task of the last record read

    def concept_of(self, task: int) -> int:
        return task

    def _tasks(self, n: int) -> np.ndarray:
        opens = self._switches.random(n) < self.hazard
        if self._pos == 0:
            opens[:1] = False  # the first record opens task 0
        task = self._task + np.cumsum(opens, dtype=np.int64)
        self._task = int(task[-1]) if n else self._task
        return task


class NoDriftStream(IrregularTaskStream, FriedmanStream):
    """``friedman``'s records under its first task's concept forever: the same features, noise
    and roles as ``friedman``'s task 0 with the same seed, and one task. ``task_length`` is
    nominal: it sets a benchmark's budget and warm-up, never a switch."""

    name = "no_drift"

    def concept_of(self, task: int) -> int:
        """The concept of every task: 0, ``friedman``'s first (roles ``roles(0)``)."""
        return 0

    def _tasks(self, n: int) -> np.ndarray:
        return np.zeros(n, dtype=np.int64)
