"""A micro-batch of decoded records as the pipeline takes it (:class:`Batch`), and what the
pipeline did with each record (:class:`Step`).

>>> import numpy as np
>>> batch = Batch(x=np.zeros((3, 1)), y=np.arange(3.0), labelled=np.ones(3, bool))
>>> len(batch.select(np.array([True, False, True]))), batch.key is None
(2, True)
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = ["Batch", "Step"]


@dataclass(frozen=True)
class Batch:
    """Decoded records in columns. ``y`` holds 0 where not ``labelled`` (the decoder sees to
    it, once, so no placeholder reaches a loss); ``task``
    holds the records' explicit task values (``None`` where absent) or is ``None``;
    ``concept`` the records' true concept (evaluation only: its changes are the true switches
    detection delay is measured from) or is ``None``."""

    x: np.ndarray  # [n, d] float32
    y: np.ndarray  # [n] float32 (regression) or int64 (classes)
    labelled: np.ndarray  # [n] bool
    task: np.ndarray | None = None  # [n] object
    concept: np.ndarray | None = None  # [n] object
    key: np.ndarray | None = None  # [n] object: the record's key, None where absent

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def select(self, which: np.ndarray) -> Batch:
        """The records a boolean mask or an index array picks."""
        return Batch(**_picked(self, which))


@dataclass(frozen=True)
class Step:
    """What the pipeline did with one batch, per record."""

    y_hat: np.ndarray
    proba: np.ndarray | None  # [n, classes] for classification
    loss: np.ndarray  # meta-learner's, NaN where unlabelled
    baseline_loss: np.ndarray | None
    baseline_y_hat: np.ndarray | None  # the baseline's predictions, for its accuracy
    task: np.ndarray  # segment id of each record
    boundary: np.ndarray  # bool: the record opened a new task
    model_version: int

    def select(self, which: np.ndarray) -> Step:
        """The records a boolean mask or an index array picks."""
        return Step(**_picked(self, which))

    @classmethod
    def merge(cls, parts: list[tuple[np.ndarray, Step]], n: int) -> Step:
        """One step of ``n`` records from steps of some of them (each with its records'
        indices); the first part's ``model_version``."""
        first = parts[0][1]
        merged: dict[str, Any] = {}
        for f in fields(cls):
            value = merged[f.name] = getattr(first, f.name)
            if isinstance(value, np.ndarray):
                merged[f.name] = np.empty((n, *value.shape[1:]), dtype=value.dtype)
                for index, part in parts:
                    merged[f.name][index] = getattr(part, f.name)
        return cls(**merged)


def _picked(columns: Batch | Step, which: np.ndarray) -> dict[str, Any]:
    """The fields of ``columns`` with every per-record array cut to the records ``which``
    picks (a boolean mask or an index array); the others as they are."""
    return {
        f.name: v[which] if isinstance(v := getattr(columns, f.name), np.ndarray) else v
        for f in fields(columns)
    }
