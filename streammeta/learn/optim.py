"""Inner-loop optimizers: plain SGD, Meta-SGD and a coordinate-wise learned optimizer network.

Each is a pair of pure functions over parameter dicts (as in torchopt and optax)::

    state = opt.init(params)
    new_params, state = opt.update(grads, state, params)

and an ``nn.Module`` whose own parameters (learning rates, network weights) are the optimizer's
meta-parameters: the meta-gradient reaches them through the unrolled inner loop.

>>> import torch
>>> params = {"w": torch.ones(3)}
>>> opt = MetaSGD(params, lr=0.5)
>>> new, _ = opt.update({"w": torch.ones(3)}, opt.init(params), params)
>>> new["w"].tolist()
[0.5, 0.5, 0.5]
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

from streammeta.learn.model import Params

__all__ = ["OPTIMIZERS", "SGD", "InnerOptimizer", "LearnedOptimizer", "MetaSGD", "make_optimizer"]

State = dict[str, Tensor]


class InnerOptimizer(nn.Module, ABC):
    """Base class: ``init`` makes per-task state, ``update`` takes one step. Both are pure."""

    def init(self, params: Params) -> State:
        return {}

    @abstractmethod
    def update(self, grads: Params, state: State, params: Params) -> tuple[Params, State]:
        """One step: new parameters and new state, without touching the inputs."""

    def describe(self) -> dict[str, float]:
        """Summary of the learned state, for metrics and reports."""
        return {}


class SGD(InnerOptimizer):
    """Fixed learning rate, nothing learned: the reference the learned optimizers must beat."""

    def __init__(self, lr: float) -> None:
        super().__init__()
        self.lr = lr

    def update(self, grads: Params, state: State, params: Params) -> tuple[Params, State]:
        return {k: p - self.lr * grads[k] for k, p in params.items()}, state

    def describe(self) -> dict[str, float]:
        return {"lr_mean": self.lr, "lr_std": 0.0}


class MetaSGD(InnerOptimizer):
    """Meta-SGD (Li et al., 2017): a learned learning rate for every parameter coordinate.

    The step uses ``|lr|``: Meta-SGD's signed rates, trained on a short unrolled horizon, turn
    into gradient ascent when a long task applies them again and again; magnitudes keep every
    coordinate descending while the meta-gradient moves them as freely as raw rates.
    """

    def __init__(self, params: Params, lr: float) -> None:
        super().__init__()
        self.lrs = nn.ParameterDict(
            {_key(k): nn.Parameter(torch.full_like(p, lr)) for k, p in params.items()}
        )

    def update(self, grads: Params, state: State, params: Params) -> tuple[Params, State]:
        return {k: p - self.lrs[_key(k)].abs() * grads[k] for k, p in params.items()}, state

    def describe(self) -> dict[str, float]:
        flat = torch.cat([lr.detach().abs().flatten() for lr in self.lrs.values()])
        return {"lr_mean": flat.mean().item(), "lr_std": flat.std().item()}


class LearnedOptimizer(InnerOptimizer):
    """A coordinate-wise optimizer network shared across all coordinates (Andrychowicz et al.,
    2016; Ravi & Larochelle, 2017, in MLP form), on top of Meta-SGD's per-coordinate rates.

    Per coordinate it reads the gradient, a momentum trace and the parameter (gradient and
    momentum also as log-magnitude and sign, so the network sees every scale) and rescales the
    gradient step and mixes in momentum. The output layer starts at zero, so an untrained network
    is Meta-SGD; meta-training shapes the rest. As in Andrychowicz et al., the network's inputs
    are constants to the meta-gradient (the step itself stays differentiable): second derivatives
    through ``log |g|`` explode for tiny gradients and made meta-gradients noisy.
    """

    n_features = 7

    def __init__(
        self, params: Params, lr: float, hidden: int = 16, beta: float = 0.9, seed: int = 0
    ) -> None:
        super().__init__()
        self.beta = beta
        self._shapes = {k: p.shape for k, p in params.items()}
        self.lrs = nn.Parameter(torch.full((sum(p.numel() for p in params.values()),), lr))
        with torch.random.fork_rng(devices=[]):  # the network's init depends on ``seed`` alone
            torch.manual_seed(seed)
            self.net = nn.Sequential(
                nn.Linear(self.n_features, hidden), nn.Tanh(), nn.Linear(hidden, 2)
            )
        last = self.net[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def init(self, params: Params) -> State:
        return {"m": torch.cat([p.new_zeros(p.numel()) for p in params.values()])}

    def update(self, grads: Params, state: State, params: Params) -> tuple[Params, State]:
        # every coordinate of every tensor in one flat vector: one network call per step
        g = torch.cat([grads[k].reshape(-1) for k in params])
        p = torch.cat([v.reshape(-1) for v in params.values()])
        m = self.beta * state["m"] + (1.0 - self.beta) * g
        gd, md = g.detach(), m.detach()
        feats = torch.stack(
            [gd, md, p.detach(), _log_mag(gd), gd.sign(), _log_mag(md), md.sign()], -1
        )
        out = self.net(feats)
        # direction: the gradient, rescaled per coordinate (by e^-2..e^2), plus a learned share
        # of momentum (-1..1). Bounded: trained on 2-step episodes, an unbounded network blew
        # the weights up (NaN within 40 steps) on 500-record tasks of ImageSegments
        step = g * torch.exp(2.0 * torch.tanh(out[..., 0] / 2.0)) + torch.tanh(out[..., 1]) * m
        flat = p - self.lrs.abs() * step
        new_params = dict(
            zip(params, flat.split([v.numel() for v in params.values()]), strict=True)
        )
        return {k: v.view(self._shapes[k]) for k, v in new_params.items()}, {"m": m}

    def describe(self) -> dict[str, float]:
        lrs = self.lrs.detach().abs()
        return {"lr_mean": lrs.mean().item(), "lr_std": lrs.std().item()}


def _key(name: str) -> str:
    """Parameter names contain dots, which ``nn.ParameterDict`` keys may not."""
    return name.replace(".", "__")


def _log_mag(t: Tensor) -> Tensor:
    return torch.log(t.abs() + 1e-8) / 8.0


OPTIMIZERS = ("metasgd", "lopt", "sgd")


def make_optimizer(name: str, params: Params, lr: float, seed: int = 0) -> InnerOptimizer:
    """Build an inner optimizer by config name (``learner.optimizer``)."""
    if name == "metasgd":
        return MetaSGD(params, lr)
    if name == "lopt":
        return LearnedOptimizer(params, lr, seed=seed)
    if name == "sgd":
        return SGD(lr)
    raise ValueError(f"optimizer {name!r}: must be one of {', '.join(map(repr, OPTIMIZERS))}")
