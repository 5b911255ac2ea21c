"""Online meta-training: the task buffer, the meta-optimizer, and when a meta-update runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from streammeta.learn.buffer import TaskBuffer

__all__ = ["MetaTrainer"]


class MetaTrainer:
    """Online meta-training: keeps the task buffer and decides when a meta-update runs.

    A meta-update is due after ``meta_every`` labelled records and at every task boundary; it runs
    at the end of the next micro-batch with labelled records of the new task, so never more than
    one per micro-batch (the unit of work). ``step(xs, ys) -> loss`` is the
    learner's meta-objective on a sampled meta-batch; the trainer owns the meta-optimizer.
    """

    def __init__(
        self,
        parameters: list[torch.nn.Parameter],
        buffer: TaskBuffer,
        *,
        meta_lr: float,
        meta_batch: int,
        chunks: int,
        chunk_size: int,
        meta_every: int,
        recent_fraction: float,
        max_grad_norm: float = 10.0,
    ) -> None:
        self.buffer = buffer
        self.parameters = parameters
        self.meta_batch = meta_batch
        self.chunks = chunks
        self.chunk_size = chunk_size
        self.meta_every = meta_every
        self.recent_fraction = recent_fraction
        self.max_grad_norm = max_grad_norm
        self.optimizer = torch.optim.Adam(parameters, lr=meta_lr, foreach=True)
        self.updates = 0
        self._last_loss = torch.tensor(float("nan"))
        self._since = 0

    def observe(self, x: Tensor, y: Tensor, n: int) -> None:
        """Store labelled records of the open task."""
        self.buffer.append(x, y)
        self._since += n

    @property
    def due(self) -> bool:
        """A meta-update is due: ``meta_every`` labelled records, or a boundary, since the last."""
        return self._since >= self.meta_every

    def end_task(self) -> None:
        """Close the open task; a boundary makes the next meta-update due."""
        self.buffer.close_task()
        self._since = self.meta_every

    def sample(self) -> tuple[Tensor, Tensor] | None:
        return self.buffer.sample(
            self.meta_batch, self.chunks, self.chunk_size, self.recent_fraction
        )

    def apply(self, loss: Tensor, before_step: Callable[[], None] | None = None) -> None:
        """Backpropagate ``loss``, optionally adjust gradients, clip, step, count."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if before_step is not None:
            before_step()
        torch.nn.utils.clip_grad_norm_(self.parameters, self.max_grad_norm, foreach=True)
        self.optimizer.step()
        self.updates += 1
        self._last_loss = loss.detach()  # read lazily: no device sync per meta-update
        self._since = 0

    @property
    def last_loss(self) -> float:
        return float(self._last_loss)

    def snapshot(self) -> dict[str, Any]:
        return {
            "buffer": self.buffer.snapshot(),
            "optimizer": self.optimizer.state_dict(),
            "updates": self.updates,
            "last_loss": self.last_loss,
            "since": self._since,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.buffer.restore(state["buffer"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
        self._last_loss = torch.tensor(float(state["last_loss"]))
        self._since = int(state["since"])
