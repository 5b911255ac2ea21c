"""Classification streams resampled from small datasets that ship with scikit-learn and river (no
download): every task draws its records with replacement and sees the data under its own concept.

``digits_rotated`` rotates sklearn's 8x8 digits by the task's angle, ``digits_permuted`` and
``image_segments`` (river's 2,310 image regions, 7 classes) relabel the classes by the task's
permutation. Each task's concept is a seeded step away from the previous task's, so consecutive
tasks always differ: by 30 to 330 degrees, or in the label of every class. Features are the
datasets' raw values (the learner standardizes online): pixels from 0 to 16, image regions in their
own units (a centroid row of 11 to 251, an edge spread up to 1,386, a saturation in [0, 1]).

>>> stream = RotatedDigits(task_length=4, seed=0)
>>> chunk = stream.take(6)
>>> chunk.x.shape, chunk.task.tolist(), stream.concept(1) != stream.concept(0)
((6, 64), [0, 0, 0, 0, 1, 1], True)
>>> float(PermutedDigits(seed=0).take(500).x.max())
16.0
>>> sorted(PermutedImageSegments(seed=0).concept(0).tolist())
[0, 1, 2, 3, 4, 5, 6]
"""

from __future__ import annotations

from abc import abstractmethod
from functools import cache
from typing import Generic, TypeVar

import numpy as np
from river import datasets
from scipy import ndimage
from sklearn.datasets import load_digits

from streammeta.streams.base import Stream

__all__ = ["PermutedDigits", "PermutedImageSegments", "ResampledStream", "RotatedDigits"]

C = TypeVar("C")


@cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    return data.data.astype(np.float32), data.target.astype(np.int64)


@cache
def _rotated_digits(angle: int) -> np.ndarray:
    images = _digits()[0].reshape(-1, 8, 8)
    return ndimage.rotate(images, angle, axes=(1, 2), reshape=False, order=1).reshape(-1, 64)


@cache
def _image_segments() -> tuple[np.ndarray, np.ndarray]:
    """Raw features; labels are the sorted class names' ranks."""
    rows = list(datasets.ImageSegments())
    x = np.array([list(features.values()) for features, _ in rows])
    names = sorted({label for _, label in rows})
    y = np.array([names.index(label) for _, label in rows], dtype=np.int64)
    return x.astype(np.float32), y


class ResampledStream(Stream, Generic[C]):
    """Records drawn with replacement from a dataset (seeded by seed and task) under the task's
    concept: task 0's is a seeded draw, every later one a seeded step from the one before."""

    task = "classification"
    default_task_length = 500

    def __init__(self, task_length: int | None = None, seed: int = 0) -> None:
        super().__init__(task_length, seed)
        self._walk: tuple[int, C] | None = None
        self._current = -1
        self._x: np.ndarray = np.empty(0)
        self._y: np.ndarray = np.empty(0)
        self._index: np.ndarray = np.empty(0)

    @abstractmethod
    def _first(self, rng: np.random.Generator) -> C:
        """Task 0's concept."""

    @abstractmethod
    def _step(self, previous: C, rng: np.random.Generator) -> C:
        """The concept of the task after one whose concept is ``previous``, never equal to it."""

    @abstractmethod
    def _apply(self, concept: C) -> tuple[np.ndarray, np.ndarray]:
        """The whole dataset, features and labels, as a task with ``concept`` sees it."""

    def concept(self, task: int) -> C:
        """Task ``task``'s concept (walked on from the last one asked for, unless that lies
        after it)."""
        if self._walk is None or self._walk[0] > task:
            self._walk = (0, self._first(np.random.default_rng((self.seed, 0))))
        done, value = self._walk
        while done < task:
            done += 1
            value = self._step(value, np.random.default_rng((self.seed, done)))
        self._walk = (done, value)
        return value

    def _draw(self, start: int, task: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(task)
        x = np.empty((n, self.n_features), dtype=np.float32)
        y = np.empty(n, dtype=np.int64)
        i = 0
        while i < n:
            t = int(task[i])
            if t != self._current:
                self._current = t
                self._x, self._y = self._apply(self.concept(t))
                rng = np.random.default_rng((self.seed, t, 1))
                self._index = rng.integers(len(self._y), size=self.task_length)
            offset = start + i - t * self.task_length
            j = min(n, i + self.task_length - offset)
            rows = self._index[offset : offset + j - i]
            x[i:j], y[i:j] = self._x[rows], self._y[rows]
            i = j
        return x, y


class RotatedDigits(ResampledStream[int]):
    """sklearn's digits (raw pixels, 0 to 16), every image of a task rotated by the task's angle, a
    multiple of 30 degrees (bilinear, corners filled with 0)."""

    name = "digits_rotated"
    n_features = 64
    n_classes = 10

    def _first(self, rng: np.random.Generator) -> int:
        return 30 * int(rng.integers(12))

    def _step(self, previous: int, rng: np.random.Generator) -> int:
        return (previous + 30 * int(rng.integers(1, 12))) % 360

    def _apply(self, concept: int) -> tuple[np.ndarray, np.ndarray]:
        return _rotated_digits(concept), _digits()[1]


class _PermutedLabels(ResampledStream[np.ndarray]):
    """A dataset whose classes every task relabels: its concept maps class ``c`` to
    ``concept[c]``, and a step composes it with a random derangement, so that consecutive tasks
    label every class differently."""

    @abstractmethod
    def _data(self) -> tuple[np.ndarray, np.ndarray]:
        """The dataset's features and class indices."""

    def _first(self, rng: np.random.Generator) -> np.ndarray:
        return rng.permutation(self.n_classes)

    def _step(self, previous: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        while True:
            shuffle = rng.permutation(self.n_classes)
            if not np.any(shuffle == np.arange(self.n_classes)):
                return previous[shuffle]

    def _apply(self, concept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = self._data()
        return x, concept[y]


class PermutedDigits(_PermutedLabels):
    """sklearn's digits (raw pixels, 0 to 16) under a new label permutation every task."""

    name = "digits_permuted"
    n_features = 64
    n_classes = 10

    def _data(self) -> tuple[np.ndarray, np.ndarray]:
        return _digits()


class PermutedImageSegments(_PermutedLabels):
    """river's ImageSegments (raw features, classes ranked by name) under a new label permutation
    every task."""

    name = "image_segments"
    n_features = 18
    n_classes = 7

    def _data(self) -> tuple[np.ndarray, np.ndarray]:
        return _image_segments()
