"""Baselines, run through the same ``Learner`` interface as the meta-learner: online SGD that
never resets, SGD reset to a fresh random init at every boundary, and fine-tuning from a fixed
init pre-trained on the start of the stream.

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

from typing import Any

import torch

from streammeta.learn.learner import FastWeightLearner
from streammeta.learn.model import FunctionalModel, Params
from streammeta.learn.optim import SGD

__all__ = ["BASELINES", "FineTune", "OnlineSGD", "ResetSGD"]


class OnlineSGD(FastWeightLearner):
    """Plain online SGD: one step a batch, never reset at boundaries."""

    name = "online_sgd"

    def __init__(
        self,
        model: FunctionalModel,
        *,
        lr: float,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        super().__init__(model, SGD(lr), device=device, seed=seed, name=self.name)


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
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        super().__init__(model, lr=lr, device=device, seed=seed)
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


BASELINES = ("online_sgd", "reset_sgd", "finetune")
