"""river's own adaptive models as benchmark peers (the ``river_*`` entries of
:data:`streammeta.registry.PEERS`), run prequentially (predict, then learn, record by record) on
the same records as streammeta's learners, for the adaptation benchmark.

Each model's per-record loss is the one streammeta's learners report: cross-entropy of the
predicted class probabilities (clipped at 1e-7) for classification, squared error for
regression. Before a model has learned anything it predicts uniform probabilities (or 0).

>>> import numpy as np
>>> x = np.tile(np.eye(2, dtype=np.float32), (50, 1))
>>> run = LOGREG.run(x, np.tile([0, 1], 50), n_classes=2)
>>> bool(run.correct[-20:].all()), run.loss.shape
(True, (100,))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from river import drift, forest, linear_model, multiclass, preprocessing, tree

__all__ = ["ADWIN_RETRAIN", "ARF", "HAT", "LOGREG", "Peer", "RiverModel", "RiverRun"]


@dataclass(frozen=True)
class RiverRun:
    """What a peer's run reports."""

    loss: np.ndarray  # per record, before learning from it
    correct: np.ndarray | None  # per record, classification only
    seconds: float

    @property
    def records_per_s(self) -> float:
        return len(self.loss) / self.seconds if self.seconds > 0 else float("nan")


class Peer(Protocol):
    """The role of a benchmark peer: test-then-train over the records, one at a time, with
    ``n_classes`` classes (0: regression); ``hidden`` is the learner's hidden widths, for a peer
    that builds a network of the same shape. ``None``: the peer cannot run here."""

    def run(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        n_classes: int = 0,
        seed: int = 0,
        hidden: Sequence[int] = (),
    ) -> RiverRun | None: ...


@dataclass(frozen=True)
class RiverModel:
    """A river model as a peer: a factory of its classifier, taking ``(n_classes, seed)``, and
    one of its regressor, taking ``seed`` (``None``: it has none)."""

    name: str
    classifier: Callable[[int, int], Any]
    regressor: Callable[[int], Any] | None = None

    def build(self, *, n_classes: int = 0, seed: int = 0) -> Any:
        """A fresh model; ``n_classes`` 0 asks for the regressor. ``None`` when the model has no
        variant for the task (the ADWIN-retraining wrapper is for classifiers)."""
        if n_classes:
            return self.classifier(n_classes, seed)
        return None if self.regressor is None else self.regressor(seed)

    def run(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        n_classes: int = 0,
        seed: int = 0,
        hidden: Sequence[int] = (),
    ) -> RiverRun:
        """Test-then-train over the records, one at a time (river's own way); river's models
        have shapes of their own (``hidden`` is not read)."""
        model = self.build(n_classes=n_classes, seed=seed)
        if model is None:
            raise ValueError(f"river model {self.name!r} has no regressor")
        rows = [dict(enumerate(r)) for r in x.tolist()]
        targets = y.tolist()
        loss = np.empty(len(rows))
        correct = np.empty(len(rows), dtype=bool) if n_classes else None
        uniform = 1.0 / max(n_classes, 1)
        t0 = time.perf_counter()
        for i, (row, target) in enumerate(zip(rows, targets, strict=True)):
            if n_classes:
                proba = model.predict_proba_one(row)
                p = proba.get(target, 0.0) if proba else uniform
                loss[i] = -np.log(max(p, 1e-7))
                assert correct is not None
                correct[i] = bool(proba) and max(proba, key=proba.get) == target
            else:
                loss[i] = (model.predict_one(row) - target) ** 2
            model.learn_one(row, target)
        return RiverRun(loss=loss, correct=correct, seconds=time.perf_counter() - t0)


LOGREG = RiverModel(
    "river_logreg",
    lambda n, seed: (
        preprocessing.StandardScaler()
        | (
            linear_model.LogisticRegression()
            if n == 2
            else multiclass.OneVsRestClassifier(linear_model.LogisticRegression())
        )
    ),
    lambda seed: preprocessing.StandardScaler() | linear_model.LinearRegression(),
)
HAT = RiverModel(
    "river_hat",
    lambda n, seed: tree.HoeffdingAdaptiveTreeClassifier(seed=seed),
    lambda seed: tree.HoeffdingAdaptiveTreeRegressor(seed=seed),
)
ARF = RiverModel(
    "river_arf",
    lambda n, seed: forest.ARFClassifier(seed=seed),
    lambda seed: forest.ARFRegressor(seed=seed),
)
#: retrains a Hoeffding tree from scratch when ADWIN flags a change in its 0/1 error (river
#: types the detector as one with a warning zone, which only background training reads)
ADWIN_RETRAIN = RiverModel(
    "river_adwin_retrain",
    lambda n, seed: drift.DriftRetrainingClassifier(
        model=tree.HoeffdingTreeClassifier(),
        drift_detector=drift.ADWIN(),  # type: ignore[arg-type]
        train_in_background=False,
    ),
)
