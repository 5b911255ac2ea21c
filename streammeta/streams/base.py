"""The stream role: every benchmark stream is a ``Stream`` and is read in ``StreamChunk`` columns
or as records in streammeta's input format.

A stream is read in order: ``take(n)`` continues where the last read ended, and a record depends on
the seed and its position alone, never on how the reads were chunked. Records belong to tasks of
``task_length`` records each; ``known_switches`` says whether a new task is a real concept switch,
so that ``records`` carries the ``task`` field.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

__all__ = ["Stream", "StreamChunk"]


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


class Stream(ABC):
    """A seeded stream of records, a new task every ``task_length`` records.

    Chunks hold ``x`` as float32, ``y`` as float32 for regression and int64 class indices in
    ``0..n_classes-1`` for classification.
    """

    name: str
    task: Literal["regression", "classification"]
    n_features: int
    n_classes: int = 0
    known_switches: bool = True
    default_task_length: ClassVar[int]

    def __init__(self, task_length: int | None = None, seed: int = 0) -> None:
        task_length = self.default_task_length if task_length is None else task_length
        if task_length < 1:
            raise ValueError(f"task_length={task_length!r}: must be at least 1")
        self.task_length = task_length
        self.seed = seed
        self._pos = 0

    def take(self, n: int) -> StreamChunk:
        """The next ``n`` records."""
        if n < 0:
            raise ValueError(f"n={n!r}: must be at least 0")
        task = (self._pos + np.arange(n)) // self.task_length
        x, y = self._draw(self._pos, task)
        self._pos += n
        return StreamChunk(x=x, y=y, task=task)

    @abstractmethod
    def _draw(self, start: int, task: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features and targets of the records at positions ``start, start + 1, ...``, whose task
        ordinals are ``task``."""

    def records(self, n: int, batch: int = 4096, truth: str = "task") -> Iterator[dict[str, Any]]:
        """The next ``n`` records in streammeta's input format: ``x``, ``y`` and, where the
        switches are known, the true task in the field ``truth`` (``task``: explicit tasks;
        ``concept``: for evaluation only)."""
        done = 0
        while done < n:
            chunk = self.take(min(batch, n - done))
            rows = zip(chunk.x.tolist(), chunk.y.tolist(), chunk.task.tolist(), strict=True)
            for xi, yi, ti in rows:
                yield {"x": xi, "y": yi, truth: ti} if self.known_switches else {"x": xi, "y": yi}
            done += len(chunk)
