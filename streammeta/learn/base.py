"""The one small base class every learner implements (river style: mutators return ``None``,
results are read from properties)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor

__all__ = ["Learner", "copy_state", "resolve_device"]


class Learner(ABC):
    """A prequential learner on micro-batches.

    ``update(x, y)`` first predicts the batch with the current fast weights (readable afterwards
    from ``prediction``, ``output`` and ``loss``), then learns from its labelled records.
    ``begin_task()`` is called at a task boundary, before the first batch of the new task.
    """

    name: str = "learner"

    @abstractmethod
    def update(self, x: Tensor, y: Tensor | None = None, labelled: Tensor | None = None) -> None:
        """Predict ``x``, then learn from the records where ``labelled`` (default: all when
        ``y`` is given, none otherwise)."""

    @abstractmethod
    def begin_task(self) -> None:
        """A boundary: the next record opens a new task."""

    _out: Tensor  # set by ``update``
    _loss: Tensor

    @property
    def output(self) -> Tensor:
        """Raw model output of the last batch (``[batch, n_out]``), detached."""
        return self._out

    @property
    def loss(self) -> Tensor:
        """Per-record loss of the last batch, NaN where unlabelled."""
        return self._loss

    @property
    def prediction(self) -> Tensor:
        """``y_hat`` of the last batch."""
        return self.head_predict(self.output)

    def head_predict(self, out: Tensor) -> Tensor:
        return out.squeeze(-1)

    @property
    def model_version(self) -> int:
        """Meta-updates so far (0 for learners that do not meta-learn)."""
        return 0

    @abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this learner is now."""

    @abstractmethod
    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a ``snapshot()``."""

    def describe(self) -> dict[str, float]:
        """Live figures for status and metrics (learned learning rates, meta-loss, ...)."""
        return {}


def copy_state(state: Any) -> Any:
    """A deep copy of a snapshot (nested dicts, lists and tensors): snapshots never share
    storage with a live learner, in either direction."""
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        return {k: copy_state(v) for k, v in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(copy_state(v) for v in state)
    return state


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` is CUDA when present, else CPU; ``cuda`` without a GPU is an error."""
    if isinstance(device, torch.device):
        device = device.type
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda': no CUDA device is visible; use 'auto' or 'cpu'")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r}: must be one of 'auto', 'cpu', 'cuda'")
    return torch.device(device)
