"""Online standardization: the learner sees features (and regression targets) in standard units
whatever scale and offset the user's records carry.

Statistics are a running mean and variance that weigh every record alike until ``horizon``
records have been seen, then follow the stream with an exponential horizon of ``horizon``
records, so they track slow drift without forgetting within a task. Standardized values are
clipped to ``±clip``: a first record far from the rest, a heavy tail or a constant feature that
moves never makes a huge input or step.

>>> import torch
>>> s = Standardizer(2)
>>> s.observe(torch.tensor([[1000.0, 5.0], [3000.0, 5.0]]))
>>> s(torch.tensor([[2000.0, 5.0], [4000.0, 5.0]])).tolist()
[[0.0, 0.0], [2.0, 0.0]]
>>> s.invert(torch.tensor([1.0]), column=0).tolist()
[3000.0]
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["Standardizer"]


class Standardizer:
    """Running per-column mean and variance, and the transform they define."""

    def __init__(
        self,
        columns: int,
        *,
        horizon: int = 10_000,
        clip: float = 5.0,
        device: torch.device | str = "cpu",
    ) -> None:
        if horizon < 1:
            raise ValueError(f"horizon={horizon!r}: must be at least 1")
        self.horizon = horizon
        self.clip = clip
        self.count = 0
        self.mean = torch.zeros(columns, device=device)
        self.var = torch.ones(columns, device=device)

    def observe(self, values: Tensor) -> None:
        """Fold ``values`` (``[n, columns]``, or ``[n]`` for one column) into the statistics."""
        values = values.reshape(values.shape[0], *self.mean.shape).to(self.mean.dtype)
        values = values[torch.isfinite(values).all(1)]  # a non-finite record says nothing
        n = values.shape[0]
        if n == 0:
            return
        # the batch's weight: its share of the records so far, at least what n records weigh
        # under the exponential horizon
        decay = 1.0 - (1.0 - 1.0 / self.horizon) ** n
        alpha = 1.0 if self.count == 0 else max(n / (self.count + n), decay)
        batch_mean = values.mean(0)
        batch_var = values.var(0, unbiased=False) if n > 1 else torch.zeros_like(batch_mean)
        delta = batch_mean - self.mean
        self.mean = self.mean + alpha * delta
        self.var = (1 - alpha) * (self.var + alpha * delta**2) + alpha * batch_var
        if self.count == 0 and n == 1:
            self.var = torch.zeros_like(self.var)  # one record: no spread known yet
        self.count += n

    @property
    def scale(self) -> Tensor:
        """Standard deviation per column, floored relative to the mean's size (a constant column
        divides by a tiny positive number, and the clip bounds what comes out)."""
        floor = 1e-6 * (1.0 + self.mean.abs())
        return torch.maximum(self.var.clamp(min=0).sqrt(), floor)

    def __call__(self, values: Tensor) -> Tensor:
        """``values`` in standard units, clipped; unchanged before any record was observed. A
        non-finite value stays non-finite (NaN): clipped, it would pass for a real extreme."""
        if self.count == 0:
            return values
        shape = values.shape
        z = (values.reshape(shape[0], -1) - self.mean) / self.scale
        z = torch.where(torch.isfinite(z), z.clamp(-self.clip, self.clip), torch.nan)
        return z.reshape(shape)

    def invert(self, values: Tensor, column: int = 0) -> Tensor:
        """Standard units of ``column`` back to the records' units."""
        if self.count == 0:
            return values
        return values * self.scale[column] + self.mean[column]

    def to(self, device: torch.device) -> Standardizer:
        self.mean, self.var = self.mean.to(device), self.var.to(device)
        return self

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "mean": self.mean, "var": self.var}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = int(state["count"])
        self.mean = state["mean"].to(self.mean.device)
        self.var = state["var"].to(self.var.device)
