"""The pipeline's keyed records: each key (the records' ``key`` field) has its own fast weights,
optimizer state and segmenter, stepped together for all keys of a micro-batch
(:class:`~streammeta.learn.keyed.KeyedLearner`), on top of the pipeline's meta-learner: the
initialization, the learned optimizer, the standardization and the task buffer are shared, so
every key's closed tasks meta-train what a new key starts from.

A key steps on each of its labelled records (``step_records=1``), not on chunks of
``support_size`` as one stream does: a key's records are spread over the topic, one in every
so many micro-batches, and waiting for ten of them would leave its first ten predicted by the
initialization (on 200 keys with a concept each: 0.79 prequential accuracy in chunks of ten,
0.84 record by record).

The per-key state is built on the first keyed record (a service whose records carry no key
pays nothing for it) and bounded by ``max_keys``, least recently used evicted.

>>> import numpy as np
>>> from streammeta.config import load_config
>>> from streammeta.learn.factory import build_learner, build_segmenter
>>> from streammeta.runtime.step import Batch
>>> cfg = load_config(env={})
>>> keys = KeyedRecords(build_learner(cfg.learner), 2, lambda: build_segmenter(cfg.segment))
>>> x = np.linspace(-3, 3, 6, dtype=np.float32)[:, None]
>>> batch = Batch(x, np.sin(x[:, 0]), np.ones(6, bool), key=np.array(list("abcabc")))
>>> done = keys.process(batch)
>>> done.loss.shape, keys.describe()["keys_held"], keys.describe()["keys_evicted"]
((6,), 2.0, 2.0)
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from streammeta.learn.base import Learner
from streammeta.learn.keyed import KeyedLearner
from streammeta.learn.learner import MetaLearner
from streammeta.metrics.keys import KeyRecovery
from streammeta.runtime.step import Batch
from streammeta.segment.base import Segmenter

__all__ = ["KeyedRecords", "KeyedStep", "keyable"]

log = logging.getLogger(__name__)


def keyable(learner: Learner) -> bool:
    """Whether ``learner`` can keep fast weights per key (a fast-weight meta-learner)."""
    return isinstance(learner, MetaLearner)


@dataclass(frozen=True)
class KeyedStep:
    """What one micro-batch's keyed records got, per record."""

    output: torch.Tensor  # raw model output [n, n_out]
    loss: np.ndarray  # NaN where unlabelled
    prediction: torch.Tensor
    boundary: np.ndarray  # bool: the record opened its key's new task
    task: np.ndarray  # the key's task ordinal since the key was last held


def _slices(keys: np.ndarray, most: int) -> list[int]:
    """Offsets that cut ``keys`` into runs of at most ``most`` distinct keys each."""
    cuts, seen = [0], set[str]()
    for i, key in enumerate(keys.tolist()):
        if key not in seen and len(seen) == most:
            cuts.append(i)
            seen = set()
        seen.add(key)
    return [*cuts, len(keys)]


class KeyedRecords:
    """Per-key fast state over ``learner`` (a :class:`MetaLearner`), at most ``max_keys`` keys,
    each with a segmenter from ``segmenter``, and the keys' adaptation figures."""

    def __init__(self, learner: Learner, max_keys: int, segmenter: Callable[[], Segmenter]) -> None:
        if not isinstance(learner, MetaLearner):
            raise TypeError(f"per-key state needs a fast-weight meta-learner, not {learner.name}")
        self.learner = learner
        self.max_keys = max_keys
        self.segmenter = segmenter
        self.recovery = KeyRecovery(max_keys=max_keys)
        self._keyed: KeyedLearner | None = None
        self._saved: dict[str, Any] | None = None  # restored before the first keyed record

    @property
    def keyed(self) -> KeyedLearner:
        """The per-key learner, built (and restored) on first use."""
        if self._keyed is None:
            self._keyed = KeyedLearner(
                self.learner,
                max_keys=self.max_keys,
                segmenter=self.segmenter,
                owns_learner=False,
                step_records=1,
            )
            if self._saved is not None:
                self._keyed.restore(self._saved)
                self._saved = None
        return self._keyed

    def process(self, batch: Batch) -> KeyedStep:
        """Predict every record with its key's fast weights, then learn the labelled ones (in
        slices of at most ``max_keys`` distinct keys); ``batch.key`` holds every key."""
        assert batch.key is not None
        cuts = _slices(batch.key.astype(str), self.max_keys)
        done = [self._process(batch.select(np.arange(a, b))) for a, b in itertools.pairwise(cuts)]
        if len(done) == 1:
            return done[0]
        return KeyedStep(
            output=torch.cat([d.output for d in done]),
            loss=np.concatenate([d.loss for d in done]),
            prediction=torch.cat([d.prediction for d in done]),
            boundary=np.concatenate([d.boundary for d in done]),
            task=np.concatenate([d.task for d in done]),
        )

    def _process(self, batch: Batch) -> KeyedStep:
        assert batch.key is not None
        x, y, labelled, keys, task = batch.x, batch.y, batch.labelled, batch.key, batch.task
        keys = keys.astype(str)
        keyed = self.keyed
        first = {}  # offset of the first record of each key the learner does not hold yet
        for i, key in enumerate(keys.tolist()):
            if key not in first and not keyed.holds(key):
                first[key] = i
        mask = None if bool(labelled.all()) else torch.from_numpy(labelled)
        keyed.update(
            torch.from_numpy(np.ascontiguousarray(x)),
            torch.from_numpy(np.ascontiguousarray(y)),
            keys.tolist(),
            mask,
            task=task,
        )
        boundary = np.zeros(len(keys), dtype=bool)
        boundary[[offset for offset, _ in keyed.boundaries]] = True
        loss = keyed.loss.cpu().numpy().astype(np.float64)
        self.recovery.update(keys, loss, sorted({*first.values(), *np.flatnonzero(boundary)}))
        return KeyedStep(
            output=keyed.output,
            loss=loss,
            prediction=keyed.prediction,
            boundary=boundary,
            task=np.array([self.recovery.task_of(k) for k in keys.tolist()], dtype=np.int64),
        )

    def describe(self) -> dict[str, float]:
        """Keys held and evicted, and the keys' recovery figures (``keys_`` prefixed)."""
        keyed = self._keyed
        held = 0 if keyed is None else keyed.keys_held
        evicted = 0 if keyed is None else keyed.keys_evicted
        if keyed is None and self._saved is not None:
            held, evicted = len(self._saved["keys"]), int(self._saved["evicted"])
        figures = {f"keys_{k}": v for k, v in self.recovery.summary().items()}
        return {"keys_held": float(held), "keys_evicted": float(evicted), **figures}

    def snapshot(self) -> dict[str, Any] | None:
        """The per-key state (the shared learner is the pipeline's to save); ``None`` before the
        first keyed record."""
        if self._keyed is None:
            return self._saved
        return {**self._keyed.snapshot(), "recovery": self.recovery.snapshot()}

    def restore(self, state: dict[str, Any] | None) -> None:
        if state is not None and len(state["keys"]) > self.max_keys:
            held = len(state["keys"])
            log.warning("the checkpoint holds %d keys, more than learner.max_keys = %d: keys "
                        "start again from the initialization", held, self.max_keys)  # fmt: skip
            state = None
        self._keyed, self._saved = None, state
        self.recovery = KeyRecovery(max_keys=self.max_keys)
        if state is not None:
            self.recovery.restore(state["recovery"])
