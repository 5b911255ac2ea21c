"""The meta-learned initialization and the inner optimizer, and how both are meta-trained.

The API reads like learn2learn's: wrap a functional model, ``clone()`` a differentiable copy,
``adapt(loss)`` it. Meta-training runs pure episodes (one task each) batched with
``torch.func.vmap``: an episode takes ``steps`` inner steps, step ``s`` on chunk ``s`` of the
task, and is scored on chunk ``s + 1`` after each step, exactly as the prequential stream
scores the next micro-batch after an adaptation step.

>>> import torch
>>> from streammeta.learn.model import MLP, FunctionalModel, Regression
>>> from streammeta.learn.optim import MetaSGD
>>> model = FunctionalModel(MLP(1, 1, hidden=(8,)), Regression())
>>> init = model.init_params(torch.Generator().manual_seed(0))
>>> meta = MetaModel(model, MetaSGD(init, lr=0.1), init)
>>> learner = meta.clone()
>>> x, y = torch.randn(10, 1), torch.randn(10)
>>> learner.adapt(model.loss(learner.params, x, y))
>>> loss = model.loss(learner.params, x, y)
>>> loss.backward()  # reaches the initialization and the learned learning rates
>>> lrs = meta.optimizer.lrs
>>> meta.init["net__0__weight"].grad is not None, lrs["net__0__weight"].grad is not None
(True, True)
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn
from torch.func import grad, vmap

from streammeta.learn.model import FunctionalModel, Params
from streammeta.learn.optim import InnerOptimizer, State, _key

__all__ = ["ALGORITHMS", "Clone", "MetaModel"]

ALGORITHMS = ("maml", "fomaml", "reptile", "ftml")


class Clone:
    """A differentiable copy of the meta-model: fast weights still attached to the graph."""

    def __init__(self, meta: MetaModel, first_order: bool) -> None:
        self.meta = meta
        self.first_order = first_order
        self.params: Params = meta.init_params()
        self.state: State = meta.optimizer.init(self.params)

    def __call__(self, x: Tensor) -> Tensor:
        return self.meta.model(self.params, x)

    def adapt(self, loss: Tensor) -> None:
        """One step of the inner optimizer on ``loss``; differentiable unless first-order."""
        names = list(self.params)
        grads = torch.autograd.grad(
            loss, [self.params[k] for k in names], create_graph=not self.first_order
        )
        g = {
            k: (gi.detach() if self.first_order else gi) for k, gi in zip(names, grads, strict=True)
        }
        self.params, self.state = self.meta.optimizer.update(g, self.state, self.params)


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
        self, xs: Tensor, ys: Tensor, *, first_order: bool, steps: int
    ) -> tuple[Tensor, Params]:
        """One task: ``steps`` inner steps from the initialization, each scored on the next chunk.

        ``xs``: ``[steps + 1, K, features]``, ``ys``: ``[steps + 1, K]``. Returns the mean query
        loss and the adapted parameters. Pure: vmap batches it over tasks.
        """
        params = self.init_params()
        state = self.optimizer.init(params)
        total = xs.new_zeros(())
        for s in range(steps):
            g = grad(self.model.loss)(params, xs[s], ys[s])
            if first_order:
                g = {k: v.detach() for k, v in g.items()}
            params, state = self.optimizer.update(g, state, params)
            total = total + self.model.loss(params, xs[s + 1], ys[s + 1])
        return total / steps, params

    def meta_loss(
        self, xs: Tensor, ys: Tensor, *, first_order: bool, steps: int, vectorize: bool = True
    ) -> tuple[Tensor, Params]:
        """Mean episode loss over a meta-batch ``xs: [tasks, steps + 1, K, features]``, and the
        adapted parameters stacked over tasks. ``vectorize=False`` runs a per-task loop (the
        reference that vmap must match)."""
        run = partial(self.episode, first_order=first_order, steps=steps)
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


def first_order_of(algorithm: str) -> bool:
    """Whether ``algorithm`` differentiates through the inner gradients."""
    if algorithm not in ALGORITHMS:
        raise ValueError(
            f"algorithm {algorithm!r}: must be one of {', '.join(map(repr, ALGORITHMS))}"
        )
    return algorithm in ("fomaml", "reptile")
