"""Fast-weight learners: the online meta-learner and the machinery the baselines share.

>>> import torch
>>> from streammeta.learn.model import MLP, FunctionalModel, Regression
>>> model = FunctionalModel(MLP(1, 1, hidden=(16,)), Regression())
>>> learner = MetaLearner(model, algorithm="maml", optimizer="metasgd", support_size=5, seed=0)
>>> x = torch.linspace(-1, 1, 20)[:, None]
>>> for _ in range(3):
...     learner.update(x, 2 * x[:, 0])
>>> learner.loss.shape, learner.model_version
(torch.Size([20]), 3)
"""

from __future__ import annotations

from typing import Any, Unpack

import torch
from torch import Tensor

from streammeta.learn.base import Learner, copy_state, resolve_device
from streammeta.learn.meta import MetaModel, first_order_of
from streammeta.learn.model import FunctionalModel, Params
from streammeta.learn.optim import InnerOptimizer, State, make_optimizer
from streammeta.learn.trainer import MetaTrained, MetaTrainer, MetaTraining

__all__ = ["FastWeightLearner", "MetaLearner"]


class FastWeightLearner(Learner):
    """Predicts with fast weights and adapts them with an inner optimizer, one step a batch.

    Subclasses say where a task starts from (``_task_start``) and what else learning does
    (``_learned``).

    Segmenters watch an **anchor**: the fast weights as they were about ``anchor_lag``
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
        device: str | torch.device = "cpu",
        seed: int = 0,
        name: str = "learner",
    ) -> None:
        self.model = model
        self.inner = optimizer
        self.device = resolve_device(device)
        self.seed = seed
        self.name = name
        self.model.module.to(self.device)
        self.inner.to(self.device)
        self._gen = torch.Generator().manual_seed(seed)
        self._fast: Params = self._fresh_params()
        self._state: State = self.inner.init(self._fast)
        self._out = torch.zeros(0, model.head.n_out, device=self.device)
        self._loss = torch.zeros(0, device=self.device)
        self._anchors: list[Params] = []  # oldest first: the anchor is the first
        self._task_labelled = 0

    def _fresh_params(self) -> Params:
        return self.model.init_params(self._gen, self.device)

    def _task_start(self) -> Params:
        """Parameters a new task starts from (default: keep the current fast weights)."""
        return self._fast

    def _learned(self, x: Tensor, y: Tensor, n_labelled: int) -> None:
        """Hook after the inner step, with the labelled records of the batch."""

    def begin_task(self) -> None:
        self._fast = {k: v.detach().clone() for k, v in self._task_start().items()}
        self._state = self.inner.init(self._fast)
        self._anchors = []
        self._task_labelled = 0

    @torch.no_grad()
    def _probe(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor]:
        if len(self._anchors) < 4:
            nan = torch.full((x.shape[0],), float("nan"), device=self.device)
            return torch.zeros(x.shape[0], self.model.head.n_out, device=self.device), nan
        out = self.model(self._anchors[0], x.to(self.device, non_blocking=True))
        if y is None:
            return out, torch.full((x.shape[0],), float("nan"), device=self.device)
        return out, self.model.head.loss(out, y.to(self.device, non_blocking=True))

    @torch.no_grad()
    def _predict(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor]:
        out = self.model(self._fast, x.to(self.device, non_blocking=True))
        if y is None:
            return out, torch.full((x.shape[0],), float("nan"), device=self.device)
        return out, self.model.head.loss(out, y.to(self.device, non_blocking=True))

    def _step(self, x: Tensor, y: Tensor | None, labelled: Tensor | None) -> None:
        if y is None:
            self.predict(x)
            return
        x = x.to(self.device, non_blocking=True)
        # counted where the mask was made (the host), before it moves to the device
        n = x.shape[0] if labelled is None else int(labelled.sum())
        y = y.to(self.device, non_blocking=True)
        if labelled is not None:  # placeholders of unlabelled rows (NaN, -1) stay out of the loss
            labelled = labelled.to(self.device, non_blocking=True)
            y = torch.where(labelled, y, torch.zeros_like(y))
        params = {k: v.requires_grad_(True) for k, v in self._fast.items()}
        out = self.model(params, x)
        losses = self.model.head.loss(out, y)
        objective = losses.mean() if labelled is None else (losses * labelled).sum() / max(n, 1)
        self._out = out.detach()
        self._loss = (
            losses.detach()
            if labelled is None
            else torch.where(labelled, losses.detach(), torch.nan)
        )
        if n == 0:
            return
        names = list(params)
        grads = torch.autograd.grad(objective, [params[k] for k in names])
        with torch.no_grad():
            g = dict(zip(names, grads, strict=True))
            fast, self._state = self.inner.update(g, self._state, self._fast)
        # a coordinate the step made non-finite keeps its value: one bad step must not
        # poison the weights for the rest of a long-running stream
        self._fast = {
            k: torch.where(torch.isfinite(v), v, self._fast[k]).detach() for k, v in fast.items()
        }
        every = max(self.anchor_lag // 4, 1)
        if (self._task_labelled + n) // every > self._task_labelled // every:
            self._anchors = [*self._anchors[-3:], self._fast]
        self._task_labelled += n
        if labelled is None:
            self._learned(x, y, n)
        else:
            self._learned(x[labelled], y[labelled], n)

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
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        """Take over ``state`` (``restore`` hands over a private copy)."""
        self._fast = {k: v.to(self.device) for k, v in state["fast"].items()}
        self._state = {k: v.to(self.device) for k, v in state["state"].items()}
        self.inner.load_state_dict(state["inner"])
        self._gen.set_state(state["gen"])
        self._anchors = [{k: v.to(self.device) for k, v in a.items()} for a in state["anchors"]]
        self._task_labelled = int(state["task_labelled"])


class MetaLearner(MetaTrained, FastWeightLearner):
    """The online meta-learner: fast weights restart at each boundary from a meta-learned
    initialization and are stepped by a learned optimizer; both are meta-trained online on
    episodes drawn from the task buffer (MAML, first-order MAML, Reptile or FTML)."""

    def __init__(
        self,
        model: FunctionalModel,
        *,
        algorithm: str = "maml",
        optimizer: str = "metasgd",
        inner_lr: float = 0.01,
        n_features: int = 1,
        device: str | torch.device = "cpu",
        seed: int = 0,
        name: str | None = None,
        **training: Unpack[MetaTraining],
    ) -> None:
        self.algorithm = algorithm
        self.first_order = first_order_of(algorithm)
        gen = torch.Generator().manual_seed(seed)
        init = model.init_params(gen)
        inner = make_optimizer(optimizer, init, inner_lr, seed=seed)
        self.meta = MetaModel(model, inner, init)
        super().__init__(
            model, inner, device=device, seed=seed, name=name or f"{algorithm}+{optimizer}"
        )
        self.meta.to(self.device)
        self.trainer = MetaTrainer(
            list(self.meta.parameters()),
            n_features=n_features,
            target_dtype=model.head.target_dtype,
            device=self.device,
            seed=seed,
            # FTML follows the meta leader: every task seen so far, through the reservoir
            recent_fraction=0.0 if algorithm == "ftml" else 0.5,
            **training,
        )
        self.begin_task()

    def _task_start(self) -> Params:
        return self.meta.init_params()

    def begin_task(self) -> None:
        if hasattr(self, "trainer"):
            self.trainer.end_task()
        super().begin_task()

    def _learned(self, x: Tensor, y: Tensor, n_labelled: int) -> None:
        self.trainer.observe(x, y, n_labelled)

    def meta_update(self) -> None:
        """One meta-step of the initialization and the learned optimizer on a sampled meta-batch."""
        batch = self.trainer.sample()
        if batch is None:
            return
        loss, adapted = self.meta.meta_loss(
            *batch, first_order=self.first_order, steps=self.trainer.inner_steps
        )
        reptile = None
        if self.algorithm == "reptile":

            def reptile() -> None:
                self.meta.reptile_direction(adapted)

        self.trainer.apply(loss, reptile)

    def describe(self) -> dict[str, float]:
        return {
            **self.inner.describe(),
            "meta_loss": self.trainer.last_loss,
            "tasks_closed": float(self.trainer.buffer.tasks_closed),
        }

    def _state_dict(self) -> dict[str, Any]:
        return {
            **super()._state_dict(),
            "meta": self.meta.state_dict(),
            "trainer": self.trainer.snapshot(),
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self.meta.load_state_dict(state["meta"])
        super()._load_state(state)
        self.trainer.restore(state["trainer"])
