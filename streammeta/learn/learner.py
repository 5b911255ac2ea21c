"""The online meta-learner: fast weights that restart at each boundary from a meta-learned
initialization, stepped by a (learned) inner optimizer, both meta-trained online.

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

import copy
import weakref
from contextlib import nullcontext
from functools import partial
from typing import Any, Unpack

import torch
from torch import Tensor

from streammeta.learn.background import MetaWorker
from streammeta.learn.fast import FastWeightLearner
from streammeta.learn.meta import Algorithm, MetaModel
from streammeta.learn.model import FunctionalModel, Params
from streammeta.learn.optim import State, make_optimizer
from streammeta.learn.trainer import MetaTrained, MetaTrainer, MetaTraining
from streammeta.registry import ALGORITHMS

__all__ = ["MetaLearner"]


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
        meta_train: bool = True,
        standardize: bool = True,
        scale_horizon: int = 10_000,
        device: str | torch.device = "cpu",
        seed: int = 0,
        name: str | None = None,
        meta_async: bool = False,
        **training: Unpack[MetaTraining],
    ) -> None:
        """``meta_train=False`` freezes the initialization and the optimizer at their starting
        values (meta-learning off: the figure meta-learning must beat). ``meta_async`` runs
        meta-updates on a background thread (:mod:`streammeta.learn.background`) instead of
        inline at the end of a micro-batch."""
        self.algorithm = algorithm
        rule = ALGORITHMS.load(algorithm)
        if not isinstance(rule, Algorithm):
            raise ValueError(
                f"algorithm {algorithm!r} is a learner of its own, not a rule of MetaLearner: "
                "build it with streammeta.learn.factory.build_learner"
            )
        self.rule = rule
        self.meta_train = meta_train
        gen = torch.Generator().manual_seed(seed)
        init = model.init_params(gen)
        inner = make_optimizer(optimizer, init, inner_lr, seed=seed)
        self.meta = MetaModel(model, inner, init)
        super().__init__(
            model,
            inner,
            support_size=training.get("support_size", 10),
            standardize=standardize,
            scale_horizon=scale_horizon,
            device=device,
            seed=seed,
            name=name or f"{algorithm}+{optimizer}",
        )
        self.meta.to(self.device)
        trained = copy.deepcopy(self.meta) if meta_async else self.meta
        self.trainer = MetaTrainer(
            list(trained.parameters()),
            n_features=n_features,
            target_dtype=model.head.target_dtype,
            device=self.device,
            seed=seed,
            recent_fraction=self.rule.recent_fraction,
            **training,
        )
        self._worker: MetaWorker | None = None
        self._version = 0  # the published version in use (background meta-training)
        if meta_async:
            self.trainer.shared()
            self._worker = MetaWorker(trained, self.trainer, partial(_meta_step, self.rule))
            weakref.finalize(self, self._worker.close)
        self.begin_task()

    def _task_start(self) -> Params:
        return self.meta.init_params()

    def _task_state(self) -> State:
        """The inner optimizer's state of the current task's fast weights."""
        return self._state

    def begin_task(self) -> None:
        if hasattr(self, "trainer"):
            self.trainer.end_task()
        super().begin_task()

    def _learned(self, x: Tensor, y: Tensor, n_labelled: int) -> None:
        self.trainer.observe(x, y, n_labelled)

    def meta_update(self) -> None:
        """One meta-step of the initialization and the learned optimizer on a sampled meta-batch
        (with ``meta_async``: asked of the background worker, if it is idle)."""
        if self._worker is not None:
            if self.meta_train:
                self._worker.request(self._episode_start())
            return
        batch = None if not self.meta_train else self.trainer.sample()
        if batch is None:
            return
        _meta_step(self.rule, self.meta, self.trainer, batch, self._episode_start(), restart=True)

    def _episode_start(self) -> State:
        """Episodes start as a new task on the stream does: with the second moments it keeps
        (copied for the background worker, which reads them while serving steps on)."""
        own = self._worker is not None
        return self.inner.restart(
            {k: v.detach().clone() if own else v.detach() for k, v in self._task_state().items()}
        )

    def _end_batch(self) -> None:
        self._after_batch(open_task=True)

    def end_keyed_batch(self) -> None:
        """A micro-batch of keyed records (:class:`~streammeta.learn.keyed.KeyedLearner`) is
        done; the keys' tasks reach the buffer closed, so the stream's open task may be empty
        (without an episode to draw, ``meta_update`` does nothing)."""
        self._after_batch(open_task=False)

    def _after_batch(self, *, open_task: bool) -> None:
        """Take the newest background version, and meta-update when one is due (inline, timed
        here; in the background, the worker times its own)."""
        self._adopt()
        if not self._meta_due(open_task=open_task):
            return
        if self._worker is None:
            self._timed_meta_update()
        else:
            self.meta_update()

    def _adopt(self) -> None:
        """Predict and step with the newest meta-parameters the worker published."""
        taken = None if self._worker is None else self._worker.take()
        if taken is not None:
            self._version, published = taken
            self.meta.load_state_dict(published)

    def adopt_meta(self, state: dict[str, Tensor]) -> None:
        """Serve and meta-train from ``state`` (meta-parameters merged with other instances');
        the meta-optimizer's moments stay."""
        worker = self._worker
        with nullcontext() if worker is None else worker.busy:
            self.meta.load_state_dict(state)
            if worker is not None:
                worker.load(state)

    def finish_meta_updates(self) -> None:
        """Wait for the background meta-update in flight, if any, and take what it published."""
        if self._worker is not None:
            self._worker.wait()
            self._adopt()

    @property
    def model_version(self) -> int:
        return self.trainer.updates if self._worker is None else self._version

    @property
    def meta_worker(self) -> MetaWorker | None:
        """The background meta-training worker (``meta_async``), or ``None`` when inline."""
        return self._worker

    def describe(self) -> dict[str, float]:
        return {
            **self.inner.describe(),
            "meta_loss": self.trainer.last_loss,
            "tasks_closed": float(self.trainer.buffer.tasks_closed),
        }

    def _state_dict(self) -> dict[str, Any]:
        worker = self._worker
        with nullcontext() if worker is None else worker.busy:  # not halfway through an update
            state = {
                **super()._state_dict(),
                "meta": self.meta.state_dict(),
                "trainer": self.trainer.snapshot(),
            }
            if worker is not None:
                state["meta_training"] = worker.state()
                state["version"] = self._version
        return state

    def _load_state(self, state: dict[str, Any]) -> None:
        worker = self._worker
        with nullcontext() if worker is None else worker.busy:
            self.meta.load_state_dict(state["meta"])
            super()._load_state(state)
            self.trainer.restore(state["trainer"])
            if worker is not None:  # a snapshot of inline meta-training restores here too
                worker.load(state.get("meta_training", state["meta"]))
                self._version = int(state.get("version", self.trainer.updates))


def _meta_step(
    rule: Algorithm,
    meta: MetaModel,
    trainer: MetaTrainer,
    batch: tuple[Tensor, Tensor],
    start: State,
    *,
    restart: bool = False,
) -> None:
    """One meta-update of ``meta`` on ``batch``, episodes starting from ``start``: the same
    whether it runs inline (``restart``: the count toward the next starts now) or on the
    background worker (the count started when the update was asked for)."""
    loss, adapted = meta.meta_loss(
        *batch, first_order=rule.first_order, steps=trainer.inner_steps, state=start
    )
    reptile = None
    if rule.reptile:

        def reptile() -> None:
            meta.reptile_direction(adapted)

    trainer.apply(loss, reptile, restart=restart)
