"""Inner-loop optimizers: Adam-preconditioned Meta-SGD, a coordinate-wise learned optimizer
network, fixed Adam and plain SGD.

Each is a pair of pure functions over parameter dicts (as in torchopt and optax)::

    state = opt.init(params)
    new_params, state = opt.update(grads, state, params)

and an ``nn.Module`` whose own parameters (learning-rate scales, network weights) are the
optimizer's meta-parameters: the meta-gradient reaches them through the unrolled inner loop.

The learned optimizers step along Adam's direction (bias-corrected first moment over the root of
the second, per coordinate): the step size then means the same on any scale of gradients, and the
inner loop keeps learning well over thousands of steps of one task, where a plain gradient step
either crawls or diverges. What is learned scales that direction, per coordinate, within a
bounded factor of the initial rate (``RATE_RANGE``): meta-training on short unrolled episodes
pulls learned rates toward small greedy steps (Wu et al., 2018, "Understanding short-horizon bias
in stochastic meta-optimization"), and the bound keeps that bias from starving a long task.

>>> import torch
>>> params = {"w": torch.ones(3)}
>>> opt = MetaSGD(params, lr=0.5)
>>> new, state = opt.update({"w": torch.tensor([2.0, -0.1, 0.0])}, opt.init(params), params)
>>> [round(v, 3) for v in new["w"].tolist()], int(state["t"])
([0.5, 1.5, 1.0], 1)
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

from streammeta.learn.model import Params
from streammeta.registry import INNER_OPTIMIZERS

__all__ = [
    "SGD",
    "Adam",
    "InnerOptimizer",
    "LearnedOptimizer",
    "MetaSGD",
    "make_optimizer",
]

State = dict[str, Tensor]

#: learned rates stay within this factor of the initial rate, either way
RATE_RANGE = 10.0
_EPS = 1e-8


class InnerOptimizer(nn.Module, ABC):
    """Base class: ``init`` makes the state of fresh weights, ``restart`` the state a new task
    starts with (what it keeps from the last), ``update`` takes one step. All are pure."""

    @classmethod
    def create(cls, params: Params, lr: float, seed: int = 0) -> InnerOptimizer:
        """The optimizer of fresh weights ``params`` at initial rate ``lr``, seeded: the one
        constructor every entry of :data:`streammeta.registry.INNER_OPTIMIZERS` shares. By
        default ``cls(lr)``, for optimizers that learn nothing."""
        return cls(lr)

    def init(self, params: Params) -> State:
        return {}

    def restart(self, state: State) -> State:
        return state

    @abstractmethod
    def update(self, grads: Params, state: State, params: Params) -> tuple[Params, State]:
        """One step: new parameters and new state, without touching the inputs."""

    def describe(self) -> dict[str, float]:
        """Summary of the learned state, for metrics and reports."""
        return {}


class SGD(InnerOptimizer):
    """Fixed learning rate on the raw gradient, nothing learned."""

    def __init__(self, lr: float) -> None:
        super().__init__()
        self.lr = lr

    def update(self, grads: Params, state: State, params: Params) -> tuple[Params, State]:
        return {k: p - self.lr * grads[k] for k, p in params.items()}, state

    def describe(self) -> dict[str, float]:
        return {"lr_mean": self.lr, "lr_std": 0.0}


class _Preconditioned(InnerOptimizer):
    """Adam's moments per coordinate (Kingma & Ba, 2015); subclasses say how far to step along
    the direction they give. A new task restarts the first moment (momentum of the old task
    points the wrong way) and keeps the second: the size of a coordinate's gradients belongs to
    the model and the data's units, not to the task, so the first step of a task is the gradient
    itself in those units (Adam's first step from scratch would be its sign). The second moment
    is a constant to the meta-gradient (as the learned optimizer's inputs are): its square
    root's derivative at 0 is infinite."""

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999) -> None:
        super().__init__()
        self.beta1, self.beta2 = beta1, beta2

    def init(self, params: Params) -> State:
        state = {f"m.{k}": torch.zeros_like(p) for k, p in params.items()}
        state |= {f"v.{k}": torch.zeros_like(p) for k, p in params.items()}
        any_param = next(iter(params.values()))
        return state | {"t": any_param.new_zeros(()), "tm": any_param.new_zeros(())}

    def restart(self, state: State) -> State:
        return {k: torch.zeros_like(v) if k == "tm" or k.startswith("m.") else v
                for k, v in state.items()}  # fmt: skip

    def moments(self, grads: Params, state: State) -> tuple[Params, Params, State]:
        """Adam's direction and the current gradient in the same units, and the new state."""
        t, tm = state["t"] + 1, state["tm"] + 1
        c1, c2 = 1 - self.beta1**tm, 1 - self.beta2**t
        new: State = {"t": t, "tm": tm}
        direction, normalized = {}, {}
        for k, g in grads.items():
            m = self.beta1 * state[f"m.{k}"] + (1 - self.beta1) * g
            v = self.beta2 * state[f"v.{k}"] + (1 - self.beta2) * g.detach() ** 2
            new[f"m.{k}"], new[f"v.{k}"] = m, v
            denom = (v / c2).sqrt() + _EPS
            direction[k], normalized[k] = (m / c1) / denom, g / denom
        return direction, normalized, new


class Adam(_Preconditioned):
    """Adam with a fixed rate: the ``online_adam`` yardstick's optimizer, nothing learned."""

    def __init__(self, lr: float) -> None:
        super().__init__()
        self.lr = lr

    def update(self, grads: Params, state: State, params: Params) -> tuple[Params, State]:
        direction, _, state = self.moments(grads, state)
        return {k: p - self.lr * direction[k] for k, p in params.items()}, state

    def describe(self) -> dict[str, float]:
        return {"lr_mean": self.lr, "lr_std": 0.0}


def _bounded(lr: float, scale: Tensor) -> Tensor:
    """``lr`` times a learned factor that stays within ``RATE_RANGE`` either way, smoothly."""
    bound = math.log(RATE_RANGE)
    return lr * torch.exp(bound * torch.tanh(scale / bound))


class MetaSGD(_Preconditioned):
    """Meta-SGD (Li et al., 2017): a learned learning rate for every parameter coordinate, here
    on Adam's direction. Each rate is ``lr`` times ``exp(s)`` for a learned ``s``, bounded."""

    def __init__(self, params: Params, lr: float) -> None:
        super().__init__()
        self.lr = lr
        self.scales = nn.ParameterDict(
            {_key(k): nn.Parameter(torch.zeros_like(p)) for k, p in params.items()}
        )

    @classmethod
    def create(cls, params: Params, lr: float, seed: int = 0) -> MetaSGD:
        return cls(params, lr)

    def rates(self) -> Params:
        """The learning rate of every coordinate, by parameter name (dots as ``__``)."""
        return {k: _bounded(self.lr, s) for k, s in self.scales.items()}

    def update(self, grads: Params, state: State, params: Params) -> tuple[Params, State]:
        direction, _, state = self.moments(grads, state)
        return {
            k: p - _bounded(self.lr, self.scales[_key(k)]) * direction[k] for k, p in params.items()
        }, state

    def describe(self) -> dict[str, float]:
        flat = torch.cat([r.detach().flatten() for r in self.rates().values()])
        return {"lr_mean": flat.mean().item(), "lr_std": flat.std().item()}


class LearnedOptimizer(_Preconditioned):
    """A coordinate-wise optimizer network shared across all coordinates (Andrychowicz et al.,
    2016; Ravi & Larochelle, 2017, in MLP form), on top of Meta-SGD's per-coordinate rates.

    Per coordinate it reads Adam's direction, the current gradient in the same units, the
    parameter, and the gradient and momentum as log-magnitude and sign (so the network sees
    every scale); it rescales Adam's step (by e^-2..e^2) and mixes in a learned share of the
    current gradient (-1..1). The output layer starts at zero, so an untrained network is
    Meta-SGD; meta-training shapes the rest. As in Andrychowicz et al., the network's inputs are
    constants to the meta-gradient (the step itself stays differentiable).
    """

    n_features = 7

    def __init__(self, params: Params, lr: float, hidden: int = 16, seed: int = 0) -> None:
        super().__init__()
        self.lr = lr
        self._shapes = {k: p.shape for k, p in params.items()}
        self.scales = nn.Parameter(torch.zeros(sum(p.numel() for p in params.values())))
        with torch.random.fork_rng(devices=[]):  # the network's init depends on ``seed`` alone
            torch.manual_seed(seed)
            self.net = nn.Sequential(
                nn.Linear(self.n_features, hidden), nn.Tanh(), nn.Linear(hidden, 2)
            )
        last = self.net[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    @classmethod
    def create(cls, params: Params, lr: float, seed: int = 0) -> LearnedOptimizer:
        return cls(params, lr, seed=seed)

    def update(self, grads: Params, state: State, params: Params) -> tuple[Params, State]:
        direction, normalized, state = self.moments(grads, state)
        # every coordinate of every tensor in one flat vector: one network call per step
        names = list(params)
        d = torch.cat([direction[k].reshape(-1) for k in names])
        gn = torch.cat([normalized[k].reshape(-1) for k in names])
        p = torch.cat([params[k].reshape(-1) for k in names])
        g = torch.cat([grads[k].detach().reshape(-1) for k in names])
        m = torch.cat([state[f"m.{k}"].detach().reshape(-1) for k in names])
        feats = torch.stack(
            [d.detach(), gn.detach(), p.detach(), _log_mag(g), g.sign(), _log_mag(m), m.sign()],
            -1,
        )
        out = self.net(feats)
        step = d * torch.exp(2.0 * torch.tanh(out[..., 0] / 2.0)) + torch.tanh(out[..., 1]) * gn
        flat = p - _bounded(self.lr, self.scales) * step
        pieces = flat.split([params[k].numel() for k in names])
        return {k: v.view(self._shapes[k]) for k, v in zip(names, pieces, strict=True)}, state

    def describe(self) -> dict[str, float]:
        rates = _bounded(self.lr, self.scales.detach())
        return {"lr_mean": rates.mean().item(), "lr_std": rates.std().item()}


def _key(name: str) -> str:
    """Parameter names contain dots, which ``nn.ParameterDict`` keys may not."""
    return name.replace(".", "__")


def _log_mag(t: Tensor) -> Tensor:
    return torch.log(t.abs() + 1e-8) / 8.0


def make_optimizer(name: str, params: Params, lr: float, seed: int = 0) -> InnerOptimizer:
    """Build an inner optimizer by config name (``learner.optimizer``), from the registry."""
    optimizer: type[InnerOptimizer] = INNER_OPTIMIZERS.load(name)
    return optimizer.create(params, lr, seed)
