"""The inner step: one step of an inner optimizer on a model's loss over a chunk of records.

Every place that adapts fast weights takes its steps here: the learner on the stream, the
per-key learner (vmapped over keys), a ``Clone`` and the meta-training episodes (vmapped over
tasks, differentiated through unless first-order). It is a pure function of its inputs.

>>> import torch
>>> from streammeta.learn.model import MLP, FunctionalModel, Regression
>>> from streammeta.learn.optim import SGD
>>> model = FunctionalModel(MLP(1, 1, hidden=(4,)), Regression())
>>> params = model.init_params(torch.Generator().manual_seed(0))
>>> x, y = torch.randn(8, 1), torch.randn(8)
>>> new, _, losses = inner_step(model, SGD(0.1), params, {}, x, y)
>>> losses.shape, bool(model.loss(new, x, y) < losses.mean())
(torch.Size([8]), True)
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.func import grad

from streammeta.learn.model import FunctionalModel, Params
from streammeta.learn.optim import InnerOptimizer, State

__all__ = ["finite_records", "inner_step"]


def finite_records(x: Tensor, y: Tensor) -> Tensor:
    """Which records have finite features and, for a float target, a finite target."""
    finite = torch.isfinite(x.flatten(1)).all(1)
    return finite & torch.isfinite(y) if y.is_floating_point() else finite


def inner_step(
    model: FunctionalModel,
    optimizer: InnerOptimizer,
    params: Params,
    state: State,
    x: Tensor,
    y: Tensor,
    weight: Tensor | None = None,
    *,
    first_order: bool = True,
    guard: bool = True,
) -> tuple[Params, State, Tensor]:
    """Step ``params`` on the mean loss over ``x, y`` (weighted by ``weight``: 0 leaves a
    record out, as padding and unlabelled rows are). Returns the new parameters and optimizer
    state, and the per-record losses before the step. ``first_order=False`` keeps the gradients
    differentiable (MAML's second order).

    A record whose features or target are not finite is left out; a step with no record left
    changes nothing (an optimizer's momentum alone would still move the weights); and a
    coordinate the step makes non-finite keeps its value: one bad record must not poison the
    weights of a long-running stream. ``guard=False`` skips these checks, for records known to
    be finite (meta-training's task buffer keeps only finite records)."""
    finite = torch.ones_like(y, dtype=torch.bool)
    if guard:
        finite = finite_records(x, y)
        y = torch.where(finite, y, torch.zeros_like(y))
        flat = x.flatten(1)
        x = torch.where(finite[:, None], flat, torch.zeros_like(flat)).view_as(x)
    weight = finite.to(x.dtype) if weight is None else weight * finite

    def objective(p: Params) -> tuple[Tensor, Tensor]:
        losses = model.head.loss(model(p, x), y)
        return (losses * weight).sum() / weight.sum().clamp(min=1), losses

    grads, losses = grad(objective, has_aux=True)(params)
    if first_order:
        grads = {k: g.detach() for k, g in grads.items()}
    new, new_state = optimizer.update(grads, state, params)
    if guard:
        kept = weight.sum() > 0
        new = {k: torch.where(kept & torch.isfinite(v), v, params[k]) for k, v in new.items()}
        new_state = {
            k: torch.where(kept & torch.isfinite(v), v, state[k]) for k, v in new_state.items()
        }
        losses = torch.where(finite, losses, torch.nan)
    return new, new_state, losses.detach()
