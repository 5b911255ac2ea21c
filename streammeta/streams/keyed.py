"""A keyed stream: many entities (keys) interleaved on one topic, each with a concept of its own.

Key ``k`` labels a record by the side of its own hyperplane through the middle of the feature
box, ``y = [w_k . (x - 5) > 0]`` with ``x`` uniform in ``[0, 10]^d`` (raw values, as a user would
send them) and ``w_k`` a random direction; every ``task_length`` records of a key its direction
is drawn anew (the key's concept switches). Records come from keys drawn uniformly at random, so
one model shared by all keys sees the average of random hyperplanes: chance.

>>> stream = KeyedStream(keys=3, seed=0)
>>> chunk = stream.take(6)
>>> chunk.x.shape, chunk.y.dtype, chunk.key.tolist()[:3]
((6, 4), dtype('int64'), ['k1', 'k2', 'k1'])
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["KeyedChunk", "KeyedStream"]


@dataclass(frozen=True)
class KeyedChunk:
    """Records in columns: ``x [n, d]``, ``y [n]``, ``key [n]`` and ``concept [n]`` (the key
    and the ordinal of its concept, ``k3/0``: evaluation only)."""

    x: np.ndarray
    y: np.ndarray
    key: np.ndarray
    concept: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])


class KeyedStream:
    """``keys`` keys, each switching concept every ``task_length`` of its own records."""

    task = "classification"
    n_classes = 2

    def __init__(
        self,
        keys: int = 200,
        *,
        n_features: int = 4,
        task_length: int = 10**9,
        seed: int = 0,
        first_key: int = 0,
    ) -> None:
        if keys < 1 or n_features < 1 or task_length < 1:
            raise ValueError(
                f"keys={keys!r}, n_features={n_features!r}, task_length={task_length!r}: "
                "each must be at least 1"
            )
        self.keys, self.n_features, self.task_length = keys, n_features, task_length
        self.first_key = first_key  # names keys k{first_key}..: a second stream of new keys
        self._rng = np.random.default_rng(seed)
        self._seen = np.zeros(keys, dtype=np.int64)
        self._w = self._directions(keys)

    def _directions(self, n: int) -> np.ndarray:
        w = self._rng.normal(size=(n, self.n_features))
        return w / np.linalg.norm(w, axis=1, keepdims=True)

    def take(self, n: int) -> KeyedChunk:
        """The next ``n`` records."""
        k = self._rng.integers(0, self.keys, size=n)
        x = self._rng.uniform(0.0, 10.0, size=(n, self.n_features))
        y = np.empty(n, dtype=np.int64)
        concept = np.empty(n, dtype=object)
        for i, key in enumerate(k.tolist()):
            ordinal, at = divmod(int(self._seen[key]), self.task_length)
            if at == 0 and ordinal > 0:
                self._w[key] = self._directions(1)[0]
            self._seen[key] += 1
            y[i] = int(self._w[key] @ (x[i] - 5.0) > 0)
            concept[i] = f"k{key + self.first_key}/{ordinal}"
        names = np.array([f"k{v + self.first_key}" for v in k.tolist()], dtype=object)
        return KeyedChunk(x=x.astype(np.float32), y=y, key=names, concept=concept)

    def records(self, n: int) -> Iterator[dict[str, Any]]:
        """The next ``n`` records in streammeta's input format (``x``, ``y``, ``key``, and the
        ``concept`` for evaluation)."""
        chunk = self.take(n)
        for i in range(n):
            yield {
                "x": chunk.x[i].tolist(),
                "y": int(chunk.y[i]),
                "key": str(chunk.key[i]),
                "concept": str(chunk.concept[i]),
            }
