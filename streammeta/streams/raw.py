"""Streams in raw units, with scales and offsets far from 0 and 1: what users send to a learner
that standardizes online.

Each draws latent inputs ``u ~ U[0, 1]^d`` in record order and shows them in the stream's own
units, ``x_i = scale_i * (shift_i + u_i)``: the scales are powers of ten spaced evenly over the
stream's ``exponents`` and dealt out to the features by the seed, the shifts are drawn from
``U[-20, 20]`` by the seed, so a feature's mean lies up to about 70 of its standard deviations
from 0. Both are fixed for the stream; a task's concept (on the latent inputs) is a function of the
seed and the task's ordinal alone.

``friedman`` is Friedman's first regression function on five of ten features (nonlinear, tasks of
2,500 records), ``hyperplane_raw`` a random hyperplane over eight features (tasks of 1,000).

>>> stream = FriedmanStream(seed=0)
>>> chunk = stream.take(5000)
>>> chunk.x.shape, chunk.task[2499:2501].tolist()
((5000, 10), [0, 1])
>>> stream.roles(0).tolist(), stream.roles(1).tolist()  # the features in roles a, b, c, d, e
([6, 2, 7, 0, 4], [3, 0, 5, 1, 2])
>>> bool(800 < chunk.y.min() and chunk.y.max() < 2700)
True
>>> float(stream.scale.min()), float(stream.scale.max())
(0.01, 10000.0)
>>> y = RawHyperplaneStream(seed=0).take(4000).y
>>> bool(0.45 < y.mean() < 0.55)
True
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from streammeta.streams.base import Stream

__all__ = ["FriedmanStream", "RawHyperplaneStream", "RawUnitsStream"]

# the last word of every seed, so that no two of a stream's generators share one (a trailing 0
# would not tell them apart: SeedSequence((s, 0)) is SeedSequence(s))
_CONCEPT, _UNITS, _INPUTS, _NOISE = 1, 2, 3, 4

#: A feature's shift is drawn from U[-SHIFT, SHIFT] (in units of its scale).
SHIFT = 20.0


class RawUnitsStream(Stream):
    """Latent inputs ``u ~ U[0, 1]^d`` seen as features ``x = scale * (shift + u)``; subclasses
    label the latent inputs under task concepts."""

    #: The decimal exponents of the smallest and the largest feature scale.
    exponents: ClassVar[tuple[float, float]]

    def __init__(self, task_length: int | None = None, seed: int = 0) -> None:
        super().__init__(task_length, seed)
        units = np.random.default_rng((seed, 0, _UNITS))
        self.scale = 10.0 ** units.permutation(np.linspace(*self.exponents, self.n_features))
        self.shift = units.uniform(-SHIFT, SHIFT, self.n_features)
        self._inputs = np.random.default_rng((seed, 0, _INPUTS))  # drawn in record order
        self._noise = np.random.default_rng((seed, 0, _NOISE))  # one draw per record, in order

    def _concept_rng(self, task: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, task, _CONCEPT))

    @abstractmethod
    def _targets(self, u: np.ndarray, task: np.ndarray) -> np.ndarray:
        """The targets of latent inputs ``u [n, d]`` in tasks ``task [n]``."""

    def _draw(self, start: int, task: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = self._inputs.random((len(task), self.n_features))
        x = (self.scale * (self.shift + u)).astype(np.float32)
        return x, self._targets(u, task)


def _per_task(task: np.ndarray, concept: Callable[[int], np.ndarray], width: int) -> np.ndarray:
    """Each record's row of its task's concept: ``concept(t)``, ``width`` numbers, for the
    records of task ``t`` (the tasks of a chunk are consecutive)."""
    first = int(task[0]) if len(task) else 0
    table = np.array([concept(t) for t in np.unique(task).tolist()]).reshape(-1, width)
    return table[task - first]


class FriedmanStream(RawUnitsStream):
    """Friedman's first function of five latent inputs, which five (and in which role) new every
    task: ``y = 1000 + 50 (10 sin(pi u_a u_b) + 20 (u_c - 0.5)^2 + 10 u_d + 5 u_e + e)``, ``e ~
    N(0, 1)``; features from 1e-2 to 1e4 in scale, ``y`` in about [900, 2600] (mean 1,720,
    standard deviation 250, of which the noise 50).

    The feature in role ``d`` (the strongest) is ``(seed + task) % 10``, so consecutive tasks
    always differ; the other four roles go to a seeded draw of the other nine features.
    """

    name = "friedman"
    task = "regression"
    n_features = 10
    default_task_length = 2500
    exponents = (-2.0, 4.0)

    def roles(self, task: int) -> np.ndarray:
        """The features in roles a, b, c, d, e in task ``task``."""
        d = (self.seed + task) % self.n_features
        others = self._concept_rng(task).permutation(np.delete(np.arange(self.n_features), d))
        return np.array([*others[:3], d, others[3]])

    def _targets(self, u: np.ndarray, task: np.ndarray) -> np.ndarray:
        roles = _per_task(task, self.roles, 5).astype(np.int64)  # float64 when there are none
        a, b, c, d, e = np.take_along_axis(u, roles, axis=1).T
        f = 10 * np.sin(np.pi * a * b) + 20 * (c - 0.5) ** 2 + 10 * d + 5 * e
        return (1000 + 50 * (f + self._noise.standard_normal(len(u)))).astype(np.float32)


class RawHyperplaneStream(RawUnitsStream):
    """A random hyperplane through the centre of the latent cube every task, and 5% of the labels
    flipped: ``y = [w . (u - 0.5) > 0]`` (then flipped), ``w ~ N(0, I_8)``; features from 1e-3 to
    1e5 in scale. Classes are balanced; consecutive hyperplanes, at an angle ``theta``, label
    ``theta / pi`` of the records differently (half on average).
    """

    name = "hyperplane_raw"
    task = "classification"
    n_features = 8
    n_classes = 2
    default_task_length = 1000
    exponents = (-3.0, 5.0)
    flip = 0.05

    def normal(self, task: int) -> np.ndarray:
        """The normal ``w`` of task ``task``'s hyperplane."""
        return self._concept_rng(task).standard_normal(self.n_features)

    def _targets(self, u: np.ndarray, task: np.ndarray) -> np.ndarray:
        w = _per_task(task, self.normal, self.n_features)
        side = np.einsum("nd,nd->n", w, u - 0.5) > 0
        return (side ^ (self._noise.random(len(u)) < self.flip)).astype(np.int64)
