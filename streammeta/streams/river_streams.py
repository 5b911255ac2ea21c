"""Classification streams from river's generators, switching concept every ``task_length``
records, so every switch point is known.

SEA cycles through its four variants, STAGGER through its three functions (features one-hot),
Hyperplane draws a new random hyperplane for every task (and drifts within it by
``mag_change``). Agrawal cycles through its ten loan functions, each task opening with river's
``ConceptDriftStream`` from the previous function to the next. A task's records depend on the seed
and the task's ordinal alone.

Features are the generators' raw values, unscaled (the learner standardizes online): SEA's in
[0, 10], Hyperplane's in [0, 1], Agrawal's in their own units (``AGRAWAL_RANGES``: a salary of
20,000 to 150,000, a house worth up to 1.2 million, an age of 20 to 80).

>>> chunk = RiverSwitchingStream("sea", task_length=5, seed=0).take(12)
>>> chunk.task.tolist(), chunk.x.shape, sorted(set(chunk.y.tolist())) <= [0, 1]
([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2], (12, 3), True)
>>> bool(chunk.x.min() >= 0.0 and chunk.x.max() <= 10.0)  # SEA's raw features
True
>>> stream = AgrawalStream(seed=3)
>>> stream.take(4).x.shape, stream.function(0), stream.function(1)
((4, 9), 3, 4)
"""

from __future__ import annotations

import random
from abc import abstractmethod
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import numpy as np
from river.datasets import synth

from streammeta.streams.base import Stream

__all__ = [
    "HYPERPLANE",
    "RIVER_STREAMS",
    "SEA",
    "STAGGER",
    "AgrawalStream",
    "RiverSwitchingStream",
]

RIVER_STREAMS = ("sea", "stagger", "hyperplane")

# the range of each of Agrawal's features as river draws them (its source, not its docstring:
# commission reaches 85k, hvalue 1.2M)
AGRAWAL_RANGES = {
    "salary": (20_000.0, 150_000.0),
    "commission": (0.0, 85_000.0),
    "age": (20.0, 80.0),
    "elevel": (0.0, 4.0),
    "car": (1.0, 20.0),
    "zipcode": (0.0, 8.0),
    "hvalue": (0.0, 1_200_000.0),
    "hyears": (1.0, 30.0),
    "loan": (0.0, 500_000.0),
}


class _Agrawal(synth.Agrawal):
    """river's Agrawal (unbalanced, unperturbed) without its ``eval`` per feature: the same
    records, about 15 times faster."""

    def __iter__(self) -> Iterator[tuple[dict[str, float], int]]:
        rng = random.Random(self.seed)
        label = self._classification_functions[self.classification_function]
        while True:
            salary = 20000 + 130000 * rng.random()
            commission = 0 if salary >= 75000 else 10000 + 75000 * rng.random()
            age = rng.randint(20, 80)
            elevel = rng.randint(0, 4)
            car = rng.randint(1, 20)
            zipcode = rng.randint(0, 8)
            hvalue = (8 - zipcode) * 100000 * (0.5 + rng.random())
            hyears = rng.randint(1, 30)
            loan = rng.random() * 500000
            features = (salary, commission, age, elevel, car, zipcode, hvalue, hyears, loan)
            yield dict(zip(self.feature_names, features, strict=True)), label(*features)


class _RiverStream(Stream):
    """A binary river generator per task, read record by record."""

    task = "classification"
    n_classes = 2
    default_task_length = 1000

    def __init__(self, task_length: int | None = None, seed: int = 0) -> None:
        super().__init__(task_length, seed)
        self._current = -1
        self._records: Iterator[tuple[dict[Any, Any], Any]] = iter(())

    @abstractmethod
    def _generator(self, task: int) -> Any:
        """The river dataset that yields task ``task``'s records."""

    @abstractmethod
    def _vector(self, x: dict[Any, Any]) -> list[float]:
        """A record's features as the generator draws them, in a fixed order."""

    def _draw(self, start: int, task: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.empty((len(task), self.n_features), dtype=np.float32)
        y = np.empty(len(task), dtype=np.int64)
        for i, t in enumerate(task.tolist()):
            if t != self._current:
                self._current, self._records = t, iter(self._generator(t))
            features, label = next(self._records)
            x[i] = self._vector(features)
            y[i] = int(label)
        return x, y


class RiverSwitchingStream(_RiverStream):
    """A river generator whose concept switches every ``task_length`` records."""

    def __init__(
        self, kind: str, task_length: int | None = None, seed: int = 0, mag_change: float = 0.001
    ) -> None:
        if kind not in RIVER_STREAMS:
            raise ValueError(
                f"stream {kind!r}: must be one of {', '.join(map(repr, RIVER_STREAMS))}"
            )
        super().__init__(task_length, seed)
        self.kind = self.name = kind
        self.mag_change = mag_change
        self.n_features = {"sea": 3, "stagger": 9, "hyperplane": 10}[kind]

    def _generator(self, task: int) -> Any:
        seed = self.seed * 1_000_003 + task
        if self.kind == "sea":
            return synth.SEA(variant=task % 4, seed=seed)
        if self.kind == "stagger":
            return synth.STAGGER(classification_function=task % 3, seed=seed, balance_classes=True)
        return synth.Hyperplane(seed=seed, n_features=10, mag_change=self.mag_change)

    def _vector(self, x: dict[Any, Any]) -> list[float]:
        if self.kind == "sea":
            return [x[k] for k in sorted(x)]
        if self.kind == "stagger":
            return [1.0 if x[k] == v else 0.0 for k in ("size", "color", "shape") for v in range(3)]
        return [x[k] for k in sorted(x)]


#: The registry's makers (``stream.name`` ``sea``, ``stagger``, ``hyperplane``): each takes
#: ``(task_length=None, seed=0)`` like every stream class.
SEA: Callable[..., RiverSwitchingStream] = partial(RiverSwitchingStream, "sea")
STAGGER: Callable[..., RiverSwitchingStream] = partial(RiverSwitchingStream, "stagger")
HYPERPLANE: Callable[..., RiverSwitchingStream] = partial(RiverSwitchingStream, "hyperplane")


class AgrawalStream(_RiverStream):
    """river's Agrawal loan applications, labelled by function ``(seed + task) % 10`` in task
    ``task`` (consecutive functions label the same applicants alike on 32% to 62% of them).

    A task opens with river's ``ConceptDriftStream`` from the previous function to its own at width
    1, centred on the task's first record: that record follows either function with probability
    1/2, the next one the previous function with probability 0.018, the third 0.0003. Features are
    river's raw values, in the order and within the ranges of ``AGRAWAL_RANGES``.
    """

    name = "agrawal"
    n_features = 9

    def function(self, task: int) -> int:
        """The classification function of task ``task``."""
        return (self.seed + task) % 10

    def _generator(self, task: int) -> Any:
        before, after, mix = np.random.SeedSequence((self.seed, task)).generate_state(3).tolist()
        concept = _Agrawal(classification_function=self.function(task), seed=after)
        if task == 0:
            return concept
        previous = _Agrawal(classification_function=self.function(task - 1), seed=before)
        return synth.ConceptDriftStream(
            stream=previous, drift_stream=concept, position=1, width=1, seed=mix
        )

    def _vector(self, x: dict[Any, Any]) -> list[float]:
        return [x[k] for k in AGRAWAL_RANGES]
