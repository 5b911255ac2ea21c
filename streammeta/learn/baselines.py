"""Baselines, run through the same ``Learner`` interface as the meta-learner, on the same model
in the same standard units: ``online_adam`` (Adam, never reset: the strongest plain learner and
the yardstick), online SGD that never resets, SGD reset to a fresh random init at every
boundary, and fine-tuning from a fixed init pre-trained on the start of the stream.

>>> import torch
>>> from streammeta.learn.model import MLP, FunctionalModel, Regression
>>> model = FunctionalModel(MLP(1, 1, hidden=(8,)), Regression())
>>> sgd = ResetSGD(model, lr=0.1, seed=0)
>>> sgd.update(torch.ones(4, 1), torch.ones(4))
>>> sgd.begin_task()  # a fresh random init
>>> sgd.loss.shape
torch.Size([4])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

import torch

from streammeta.learn.fast import FastWeightLearner
from streammeta.learn.model import FunctionalModel, Params
from streammeta.learn.optim import SGD, Adam, InnerOptimizer

if TYPE_CHECKING:
    from streammeta.config import LearnerConfig

__all__ = ["FineTune", "OnlineAdam", "OnlineSGD", "ResetSGD"]


class _Plain(FastWeightLearner):
    """A learner with a fixed inner optimizer (``optimizer(lr)``), nothing meta-learned."""

    optimizer: Callable[[float], InnerOptimizer]

    def __init__(
        self,
        model: FunctionalModel,
        *,
        lr: float,
        support_size: int = 10,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        super().__init__(
            model,
            type(self).optimizer(lr),
            support_size=support_size,
            device=device,
            seed=seed,
            name=self.name,
        )

    @classmethod
    def from_config(cls, model: FunctionalModel, cfg: LearnerConfig) -> Self:
        """The baseline on ``model`` with the meta-learner's inner rate, step size, device and
        seed (``[learner]``): the constructor every entry of
        :data:`streammeta.registry.BASELINES` shares."""
        return cls(model, lr=cfg.inner_lr, support_size=cfg.support_size, device=cfg.device,
                   seed=cfg.seed)  # fmt: skip


class OnlineAdam(_Plain):
    """The plain learner a user would write: the same MLP on standardized features (and
    targets), Adam, one step per ``support_size`` labelled records, never reset. Boundaries
    change nothing in its state, not even Adam's moments."""

    name = "online_adam"
    optimizer = Adam

    def begin_task(self) -> None:
        """Nothing: a plain learner knows no tasks."""


class OnlineSGD(_Plain):
    """Plain online SGD: one step per ``support_size`` labelled records, never reset (at a
    boundary only the anchor restarts)."""

    name = "online_sgd"
    optimizer = SGD


class ResetSGD(OnlineSGD):
    """SGD restarted from a fresh random initialization at every boundary."""

    name = "reset_sgd"

    def _task_start(self) -> Params:
        return self._fresh_params()


class FineTune(OnlineSGD):
    """Fine-tuning from a fixed init: online SGD over the first ``pretrain_records`` labelled
    records (across tasks), then that init is frozen and every new task restarts from it."""

    name = "finetune"

    def __init__(
        self,
        model: FunctionalModel,
        *,
        lr: float,
        pretrain_records: int = 1000,
        support_size: int = 10,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        super().__init__(model, lr=lr, support_size=support_size, device=device, seed=seed)
        self.pretrain_records = pretrain_records
        self._seen = 0
        self._fixed: Params | None = None

    def _learned(self, x: torch.Tensor, y: torch.Tensor, n_labelled: int) -> None:
        self._seen += n_labelled
        if self._fixed is None and self._seen >= self.pretrain_records:
            self._fixed = {k: v.detach().clone() for k, v in self._fast.items()}

    def _task_start(self) -> Params:
        return self._fast if self._fixed is None else self._fixed

    def _state_dict(self) -> dict[str, Any]:
        return {**super()._state_dict(), "seen": self._seen, "fixed": self._fixed or {}}

    def _load_state(self, state: dict[str, Any]) -> None:
        super()._load_state(state)
        self._seen = int(state["seen"])
        self._fixed = {k: v.to(self.device) for k, v in state["fixed"].items()} or None
