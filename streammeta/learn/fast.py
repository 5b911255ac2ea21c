"""Fast-weight learners: predict with fast weights, adapt them with an inner optimizer, in standard
units; the machinery the meta-learner and the baselines share.

>>> import torch
>>> from streammeta.learn.model import MLP, FunctionalModel, Regression
>>> from streammeta.learn.optim import SGD
>>> learner = FastWeightLearner(FunctionalModel(MLP(1, 1, hidden=(8,)), Regression()), SGD(0.1))
>>> x = torch.linspace(-1, 1, 20)[:, None]
>>> learner.update(x, 2 * x[:, 0])
>>> sorted(learner.fast_weights) == sorted(learner.model.init_params(torch.Generator()))
True
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from streammeta.learn.base import Learner, copy_state, resolve_device
from streammeta.learn.inner import finite_records, inner_step
from streammeta.learn.model import FunctionalModel, Params, Regression
from streammeta.learn.optim import InnerOptimizer, State
from streammeta.learn.scale import Standardizer

__all__ = ["FastWeightLearner"]


class FastWeightLearner(Learner):
    """Predicts with fast weights and adapts them with an inner optimizer, in standard units.

    Subclasses say where a task starts from (``_task_start``) and what else learning does
    (``_learned``).

    **Steps.** The fast weights take one inner step per ``support_size`` labelled records of a
    task, whatever the micro-batch: a micro-batch of 1 waits for the chunk to fill, one of 256
    takes 25 steps in order. Learning is then the same at any micro-batch size but for the
    standardization's statistics, which move once a micro-batch (and how long a prediction
    waits for new weights), and each step sees a chunk as large as the meta-training
    episodes' steps. Records of a chunk a boundary leaves unfilled are dropped.

    **Units.** Features are standardized online (``scale_horizon``: see
    :class:`~streammeta.learn.scale.Standardizer`), and regression targets too; predictions and
    losses are reported in the records' units.

    **Anchor.** Segmenters watch an anchor: the fast weights as they were about ``anchor_lag``
    labelled records earlier (a delay line of copies taken every ``anchor_lag / 4`` records;
    none in the first ``anchor_lag`` records of a task). Drift detectors assume a model whose
    loss is stationary while the concept holds; fast weights that adapt within a few records
    break that (a switch leaves only a short burst of loss). The lagged copy does not adapt: at
    a switch its loss rises and stays up for ``anchor_lag`` records, long enough for a
    detector to confirm it; and it keeps following the fast weights, so a missed switch does
    not leave the detector watching a stale model.
    """

    anchor_lag = 100

    def __init__(
        self,
        model: FunctionalModel,
        optimizer: InnerOptimizer,
        *,
        support_size: int = 10,
        standardize: bool = True,
        scale_horizon: int = 10_000,
        device: str | torch.device = "cpu",
        seed: int = 0,
        name: str = "learner",
    ) -> None:
        self.model = model
        self.inner = optimizer
        self.support_size = support_size
        self.device = resolve_device(device)
        self.seed = seed
        self.name = name
        self.model.module.to(self.device)
        self.inner.to(self.device)
        if standardize:
            self.x_scaler = Standardizer(model.n_in, horizon=scale_horizon, device=self.device)
            if isinstance(model.head, Regression):
                self.y_scaler = Standardizer(1, horizon=scale_horizon, device=self.device)
        self._gen = torch.Generator().manual_seed(seed)
        self._fast: Params = self._fresh_params()
        self._state: State = self.inner.init(self._fast)
        self._out = torch.zeros(0, model.head.n_out, device=self.device)
        self._loss = torch.zeros(0, device=self.device)
        self._anchors: list[Params] = []  # oldest first: the anchor is the first
        self._task_labelled = 0
        self._pending_x = torch.zeros(0, model.n_in, device=self.device)
        self._pending_y = torch.zeros(0, dtype=model.head.target_dtype, device=self.device)

    @property
    def fast_weights(self) -> Params:
        """The weights that predict now, by parameter name (read-only: do not modify them)."""
        return dict(self._fast)

    @property
    def fast_moments(self) -> State:
        """The inner optimizer's state of ``fast_weights`` (read-only)."""
        return dict(self._state)

    def _fresh_params(self) -> Params:
        return self.model.init_params(self._gen, self.device)

    def records_to_step(self) -> int:
        return self.support_size - self._pending_x.shape[0]

    def _task_start(self) -> Params:
        """Parameters a new task starts from (default: keep the current fast weights)."""
        return self._fast

    def _learned(self, x: Tensor, y: Tensor, n_labelled: int) -> None:
        """Hook with the labelled records of each segment (standard units), as they come."""

    def begin_task(self) -> None:
        self._fast = {k: v.detach().clone() for k, v in self._task_start().items()}
        self._state = self.inner.restart(self._state)
        self._anchors = []
        self._task_labelled = 0
        self._pending_x, self._pending_y = self._pending_x[:0], self._pending_y[:0]

    @torch.no_grad()
    def _probe(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor]:
        if len(self._anchors) < 4:
            nan = torch.full((x.shape[0],), float("nan"), device=self.device)
            return torch.zeros(x.shape[0], self.model.head.n_out, device=self.device), nan
        return self._forward(self._anchors[0], x, y)

    @torch.no_grad()
    def _predict(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor]:
        return self._forward(self._fast, x, y)

    def _forward(self, params: Params, x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor]:
        out = self.model(params, x.to(self.device, non_blocking=True))
        if y is None:
            return out, torch.full((x.shape[0],), float("nan"), device=self.device)
        return out, self.model.head.loss(out, y.to(self.device, non_blocking=True))

    def _step(self, x: Tensor, y: Tensor | None, labelled: Tensor | None) -> None:
        x = x.to(self.device, non_blocking=True)
        with torch.no_grad():
            self._out, self._loss = self._forward(self._fast, x, y)
        if y is None:
            return
        y = y.to(self.device, non_blocking=True)
        if labelled is not None:  # placeholders of unlabelled rows stay out of learning
            labelled = labelled.to(self.device, non_blocking=True)
            self._loss = torch.where(labelled, self._loss, torch.nan)
            x, y = x[labelled], y[labelled]
        n = x.shape[0]
        if n == 0:
            return
        self._learn_chunks(x, y, self._task_labelled)
        self._task_labelled += n
        finite = finite_records(x, y)
        self._learned(x[finite], y[finite], n)  # meta-training's records are all finite

    def _learn_chunks(self, x: Tensor, y: Tensor, seen: int) -> None:
        """Queue labelled records and take an inner step (``_inner_chunk``) per full chunk of
        ``support_size``; every ``anchor_lag / 4`` records (``seen`` counted before these) the
        weights ``_anchor_source`` names join the anchors' delay line."""
        self._pending_x = torch.cat([self._pending_x, x])
        self._pending_y = torch.cat([self._pending_y, y])
        k = self.support_size
        while self._pending_x.shape[0] >= k:
            # no meta-gradient through the stream's steps: without no_grad, the fast weights
            # would carry the graph of every step back to the task's start
            with torch.no_grad():
                self._inner_chunk(self._pending_x[:k], self._pending_y[:k])
            self._pending_x, self._pending_y = self._pending_x[k:], self._pending_y[k:]
        every = max(self.anchor_lag // 4, 1)
        if (seen + x.shape[0]) // every > seen // every:
            self._anchors = [*self._anchors[-3:], self._anchor_source()]

    def _inner_chunk(self, x: Tensor, y: Tensor) -> None:
        """One inner step of the fast weights on one chunk."""
        self._fast, self._state, _ = inner_step(
            self.model, self.inner, self._fast, self._state, x, y
        )

    def _anchor_source(self) -> Params:
        """The weights the anchors lag behind."""
        return self._fast

    def head_predict(self, out: Tensor) -> Tensor:
        return self.model.head.predict(out)

    def snapshot(self) -> dict[str, Any]:
        return copy_state(self._state_dict())

    def restore(self, state: dict[str, Any]) -> None:
        self._load_state(copy_state(state))

    def _state_dict(self) -> dict[str, Any]:
        """The state, not yet copied (``snapshot`` copies it once)."""
        return {
            "fast": self._fast,
            "state": self._state,
            "inner": self.inner.state_dict(),
            "gen": self._gen.get_state(),
            "anchors": self._anchors,
            "task_labelled": self._task_labelled,
            "pending": [self._pending_x, self._pending_y],
            "scalers": self.scaler_state(),
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        """Take over ``state`` (``restore`` hands over a private copy)."""
        self._fast = {k: v.to(self.device) for k, v in state["fast"].items()}
        self._state = {k: v.to(self.device) for k, v in state["state"].items()}
        self.inner.load_state_dict(state["inner"])
        self._gen.set_state(state["gen"])
        self._anchors = [{k: v.to(self.device) for k, v in a.items()} for a in state["anchors"]]
        self._task_labelled = int(state["task_labelled"])
        self._pending_x, self._pending_y = (v.to(self.device) for v in state["pending"])
        self.load_scaler_state(state["scalers"])
