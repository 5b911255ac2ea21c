"""Functional models: an ``nn.Module`` template called on dicts of tensors.

Inner loops never touch module attributes: parameters travel as ``Params`` dicts and the module
is only a template for :func:`torch.func.functional_call`, so adaptation is a pure function that
``torch.func.grad`` differentiates and ``torch.func.vmap`` batches over tasks.

>>> import torch
>>> model = FunctionalModel(MLP(1, 1, hidden=(8,)), Regression())
>>> params = model.init_params(torch.Generator().manual_seed(0))
>>> model(params, torch.zeros(4, 1)).shape
torch.Size([4, 1])
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn import functional as F

__all__ = ["MLP", "Classification", "FunctionalModel", "Head", "Params", "Regression"]

Params = dict[str, Tensor]


class MLP(nn.Module):
    """Fully connected ReLU network; optional LayerNorm after each hidden layer (no BatchNorm:
    batch statistics would leak across records and tasks)."""

    def __init__(
        self, n_in: int, n_out: int, hidden: Sequence[int] = (40, 40), layer_norm: bool = False
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if layer_norm:
                layers.append(nn.LayerNorm(h))
            layers.append(nn.ReLU())
            width = h
        if n_out > 0:
            layers.append(nn.Linear(width, n_out))
        self.net = nn.Sequential(*layers)
        self.n_out = n_out if n_out > 0 else width

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Head(ABC):
    """Turns raw outputs into per-record losses and user-facing predictions."""

    n_out: int = 1
    target_dtype: torch.dtype = torch.float32

    @abstractmethod
    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        """Per-record loss, shape ``[batch]``."""

    @abstractmethod
    def predict(self, out: Tensor) -> Tensor:
        """``y_hat``: a value per record (regression) or a class index (classification)."""


@dataclass(frozen=True)
class Regression(Head):
    """Squared error on one target."""

    n_out: int = 1

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        return (out.squeeze(-1) - y) ** 2

    def predict(self, out: Tensor) -> Tensor:
        return out.squeeze(-1)


@dataclass(frozen=True)
class Classification(Head):
    """Cross-entropy over ``n_classes`` logits; targets are class indices."""

    n_classes: int = 2
    target_dtype: torch.dtype = torch.long

    @property
    def n_out(self) -> int:  # type: ignore[override]
        return self.n_classes

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        return nn.functional.cross_entropy(out, y, reduction="none")

    def predict(self, out: Tensor) -> Tensor:
        return out.argmax(-1)


class FunctionalModel:
    """A module template plus a head, called functionally on parameter dicts."""

    def __init__(self, module: nn.Module, head: Head) -> None:
        self.module = module
        self.head = head
        first = next((m for m in module.modules() if isinstance(m, nn.Linear)), None)
        if first is None:
            raise ValueError("module: a FunctionalModel needs at least one nn.Linear layer")
        self.n_in = first.in_features
        self._layers = _plain_layers(module)

    def init_params(self, generator: torch.Generator, device: torch.device | None = None) -> Params:
        """Fresh parameters with PyTorch's default initialization, drawn from ``generator``."""
        out: Params = {}
        for prefix, layer in self.module.named_modules():
            if isinstance(layer, nn.Linear):
                bound = 1.0 / layer.in_features**0.5
                for name in ("weight", "bias"):
                    t = torch.empty(getattr(layer, name).shape)
                    out[f"{prefix}.{name}"] = t.uniform_(-bound, bound, generator=generator)
            elif isinstance(layer, nn.LayerNorm):
                out[f"{prefix}.weight"] = torch.ones(layer.normalized_shape)
                out[f"{prefix}.bias"] = torch.zeros(layer.normalized_shape)
        return {k: v.to(device) for k, v in out.items()} if device is not None else out

    def __call__(self, params: Params, x: Tensor) -> Tensor:
        if self._layers is None:
            return functional_call(self.module, params, (x,))
        for prefix, layer in self._layers:  # the same calls as the modules' forward
            if isinstance(layer, nn.Linear):
                x = F.linear(x, params[f"{prefix}.weight"], params[f"{prefix}.bias"])
            elif isinstance(layer, nn.LayerNorm):
                w, b = params[f"{prefix}.weight"], params[f"{prefix}.bias"]
                x = F.layer_norm(x, layer.normalized_shape, w, b, layer.eps)
            else:
                x = F.relu(x)
        return x

    def loss(self, params: Params, x: Tensor, y: Tensor) -> Tensor:
        """Mean loss over a batch: the scalar that inner loops differentiate."""
        return self.head.loss(self(params, x), y).mean()


def _plain_layers(module: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The layers of an :class:`MLP`, to call directly: ``functional_call`` swaps parameters
    into the module on every call, which costs more than a small MLP's arithmetic. ``None``
    for any other module, which is called through ``functional_call``."""
    if type(module) is not MLP:
        return None
    layers = [(f"net.{i}", layer) for i, layer in enumerate(module.net)]
    plain = all(type(layer) in (nn.Linear, nn.LayerNorm, nn.ReLU) for _, layer in layers)
    return layers if plain else None
