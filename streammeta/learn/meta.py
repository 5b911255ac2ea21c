"""The meta-learned initialization and the inner optimizer, and how both are meta-trained.

The API reads like learn2learn's: wrap a functional model, ``clone()`` a differentiable copy,
``adapt(x, y)`` it (one inner step, :func:`streammeta.learn.inner.inner_step`, as everywhere).
Meta-training runs pure episodes (one task each) batched with ``torch.func.vmap``: an episode
takes ``steps`` inner steps, step ``s`` on chunk ``s`` of the task, and is scored on chunk
``s + 1`` after each step, exactly as the prequential stream scores the next micro-batch after
an adaptation step.

>>> import torch
>>> from streammeta.learn.model import MLP, FunctionalModel, Regression
>>> from streammeta.learn.optim import MetaSGD
>>> model = FunctionalModel(MLP(1, 1, hidden=(8,)), Regression())
>>> init = model.init_params(torch.Generator().manual_seed(0))
>>> meta = MetaModel(model, MetaSGD(init, lr=0.1), init)
>>> learner = meta.clone()
>>> x, y = torch.randn(10, 1), torch.randn(10)
>>> learner.adapt(x, y)
>>> loss = model.loss(learner.params, x, y)
>>> loss.backward()  # reaches the initialization and the learned learning rates
>>> scales = meta.optimizer.scales
>>> meta.init["net__0__weight"].grad is not None, scales["net__0__weight"].grad is not None
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn
from torch.func import vmap

from streammeta.learn.inner import inner_step
from streammeta.learn.model import FunctionalModel, Params
from streammeta.learn.optim import InnerOptimizer, State, _key

__all__ = ["FOMAML", "FTML", "MAML", "REPTILE", "Algorithm", "Clone", "MetaModel"]


class Clone:
    """A differentiable copy of the meta-model: fast weights still attached to the graph."""

    def __init__(self, meta: MetaModel, first_order: bool) -> None:
        self.meta = meta
        self.first_order = first_order
        self.params: Params = meta.init_params()
        self.state: State = meta.optimizer.init(self.params)

    def __call__(self, x: Tensor) -> Tensor:
        return self.meta.model(self.params, x)

    def adapt(self, x: Tensor, y: Tensor) -> None:
        """One inner step on the records ``x, y``; differentiable unless first-order."""
        self.params, self.state, _ = inner_step(
            self.meta.model,
            self.meta.optimizer,
            self.params,
            self.state,
            x,
            y,
            first_order=self.first_order,
        )


class MetaModel(nn.Module):
    """Meta-parameters: the initialization (``init``) and the inner optimizer's own parameters."""

    def __init__(self, model: FunctionalModel, optimizer: InnerOptimizer, init: Params) -> None:
        super().__init__()
        self.model = model
        self.optimizer = optimizer
        self.init = nn.ParameterDict({_key(k): nn.Parameter(v.clone()) for k, v in init.items()})
        self._names = list(init)

    def init_params(self) -> Params:
        """The initialization as a parameter dict (connected to the graph)."""
        return {k: self.init[_key(k)] for k in self._names}

    def clone(self, first_order: bool = False) -> Clone:
        return Clone(self, first_order)

    def episode(
        self, xs: Tensor, ys: Tensor, *, first_order: bool, steps: int, state: State | None = None
    ) -> tuple[Tensor, Params]:
        """One task: ``steps`` inner steps from the initialization, each scored on the next chunk.

        ``xs``: ``[steps + 1, K, features]``, ``ys``: ``[steps + 1, K]``; ``state``: the inner
        optimizer's state to start from (default: fresh). Returns the mean query loss and the
        adapted parameters. Pure: vmap batches it over tasks.
        """
        params = self.init_params()
        state = self.optimizer.init(params) if state is None else state
        total = xs.new_zeros(())
        for s in range(steps):
            params, state, _ = inner_step(
                self.model, self.optimizer, params, state, xs[s], ys[s],
                first_order=first_order, guard=False,
            )  # fmt: skip
            total = total + self.model.loss(params, xs[s + 1], ys[s + 1])
        return total / steps, params

    def meta_loss(
        self,
        xs: Tensor,
        ys: Tensor,
        *,
        first_order: bool,
        steps: int,
        vectorize: bool = True,
        state: State | None = None,
    ) -> tuple[Tensor, Params]:
        """Mean episode loss over a meta-batch ``xs: [tasks, steps + 1, K, features]``, and the
        adapted parameters stacked over tasks; every episode starts from ``state``.
        ``vectorize=False`` runs a per-task loop (the reference that vmap must match)."""
        run = partial(self.episode, first_order=first_order, steps=steps, state=state)
        if vectorize:
            losses, adapted = vmap(run)(xs, ys)
            return losses.mean(), adapted
        results = [run(xs[i], ys[i]) for i in range(xs.shape[0])]
        losses = torch.stack([r[0] for r in results])
        stacked = {k: torch.stack([r[1][k] for r in results]) for k in self._names}
        return losses.mean(), stacked

    def reptile_direction(self, adapted: Params) -> None:
        """Set the initialization's gradient to Reptile's pseudo-gradient, init - mean(adapted)."""
        for k in self._names:
            p = self.init[_key(k)]
            p.grad = p.detach() - adapted[k].detach().mean(0)


@dataclass(frozen=True)
class Algorithm:
    """How a meta-learning algorithm trains the initialization: everything that tells MAML,
    first-order MAML, Reptile and FTML apart. The rules below are the entries of
    :data:`streammeta.registry.ALGORITHMS`; a new rule is one line here and one there."""

    first_order: bool  # the inner gradients are constants to the meta-gradient
    reptile: bool  # the initialization moves toward the adapted weights (Nichol et al., 2018)
    recent_fraction: float  # share of a meta-batch drawn from the recent tasks, the rest older


MAML = Algorithm(first_order=False, reptile=False, recent_fraction=0.5)
FOMAML = Algorithm(first_order=True, reptile=False, recent_fraction=0.5)
REPTILE = Algorithm(first_order=True, reptile=True, recent_fraction=0.5)
#: follow the meta leader (Finn et al., 2019): every task seen so far, through the reservoir
FTML = Algorithm(first_order=False, reptile=False, recent_fraction=0.0)
