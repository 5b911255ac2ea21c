"""Online meta-training: the task buffer, the meta-optimizer, and when a meta-update runs."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, TypedDict

import torch
from torch import Tensor

from streammeta.learn.buffer import TaskBuffer

if TYPE_CHECKING:
    from streammeta.config import LearnerConfig

__all__ = ["MetaTrained", "MetaTrainer", "MetaTraining", "training_of"]


class MetaTraining(TypedDict, total=False):
    """Meta-training settings a learner passes through to ``MetaTrainer`` (defaults there)."""

    meta_lr: float
    meta_batch: int
    inner_steps: int
    support_size: int
    meta_every: int
    buffer_recent: int
    buffer_reservoir: int
    task_max_records: int


def training_of(cfg: LearnerConfig) -> MetaTraining:
    """The meta-training settings of ``[learner]``."""
    return MetaTraining(
        **{k: getattr(cfg, k) for k in MetaTraining.__annotations__}  # type: ignore[typeddict-item]
    )


class MetaTrainer:
    """Online meta-training: keeps the task buffer and decides when a meta-update runs.

    A meta-update is due after ``meta_every`` labelled records and at every task boundary; it runs
    at the end of the next micro-batch with labelled records of the new task, so never more than
    one per micro-batch (the unit of work). The learner computes its meta-objective on a sampled
    meta-batch (``sample``); the trainer owns the buffer and the meta-optimizer (``apply``).
    Episodes are ``inner_steps + 1`` chunks of ``support_size`` records.
    """

    def __init__(
        self,
        parameters: list[torch.nn.Parameter],
        *,
        n_features: int,
        target_dtype: torch.dtype,
        device: torch.device,
        seed: int,
        recent_fraction: float,
        meta_lr: float = 0.001,
        meta_batch: int = 16,
        inner_steps: int = 2,
        support_size: int = 10,
        meta_every: int = 10,
        buffer_recent: int = 32,
        buffer_reservoir: int = 1024,
        task_max_records: int = 200,
        max_grad_norm: float = 10.0,
    ) -> None:
        self.buffer = TaskBuffer(
            n_features,
            task_max_records,
            buffer_recent,
            buffer_reservoir,
            target_dtype=target_dtype,
            device=device,
            seed=seed + 1,
        )
        self.parameters = parameters
        self.meta_batch = meta_batch
        self.inner_steps = inner_steps
        self.chunks = inner_steps + 1
        self.chunk_size = support_size
        self.meta_every = meta_every
        self.recent_fraction = recent_fraction
        self.max_grad_norm = max_grad_norm
        self.optimizer = torch.optim.Adam(parameters, lr=meta_lr, foreach=True)
        self.updates = 0
        self.seconds = 0.0  # wall-clock time spent in meta-updates (not saved in snapshots)
        self._last_loss = torch.tensor(float("nan"))
        self._since = 0
        #: guards the buffer and the counters when meta-updates run on another thread
        self.lock: AbstractContextManager[Any] = nullcontext()

    def shared(self) -> None:
        """From now on the buffer and the counters are read and written by two threads."""
        self.lock = threading.RLock()

    def observe(self, x: Tensor, y: Tensor, n: int) -> None:
        """Store labelled records of the open task. A task that has filled its slot is filed
        and its next records open a new slot: a long task, or a stream whose switches the
        segmenter misses, still feeds meta-training, window by window."""
        with self.lock:
            if self.buffer.current_records >= self.buffer.max_records:
                self.buffer.close_task()
            self.buffer.append(x, y)
            self.count(n)

    def add_task(self, x: Tensor, y: Tensor) -> None:
        """Store a whole task kept elsewhere while it was open (a key's task in keyed learning);
        like a boundary, a newly stored task makes the next meta-update due."""
        with self.lock:
            self.buffer.add_task(x, y)
            self._since = self.meta_every

    def count(self, n: int) -> None:
        """Count ``n`` labelled records learned from toward the next meta-update."""
        with self.lock:
            self._since += n

    @property
    def due(self) -> bool:
        """A meta-update is due: ``meta_every`` labelled records, or a boundary, since the last."""
        return self._since >= self.meta_every

    def end_task(self) -> None:
        """Close the open task; a boundary makes the next meta-update due."""
        with self.lock:
            self.buffer.close_task()
            self._since = self.meta_every

    def taken(self) -> None:
        """A meta-update was handed to the background: the count toward the next starts now."""
        with self.lock:
            self._since = 0

    def sample(self) -> tuple[Tensor, Tensor] | None:
        with self.lock:
            return self.buffer.sample(
                self.meta_batch, self.chunks, self.chunk_size, self.recent_fraction
            )

    def apply(
        self, loss: Tensor, before_step: Callable[[], None] | None = None, *, restart: bool = True
    ) -> None:
        """Backpropagate ``loss``, optionally adjust gradients, clip, step, count; ``restart``:
        the count toward the next meta-update starts now (else it started when it was asked
        for: :meth:`taken`)."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if before_step is not None:
            before_step()
        norm = torch.nn.utils.clip_grad_norm_(self.parameters, self.max_grad_norm, foreach=True)
        finite = torch.isfinite(norm)  # a non-finite meta-gradient is dropped, on the device
        for p in self.parameters:
            if p.grad is not None:
                p.grad = torch.where(finite, p.grad, torch.zeros_like(p.grad))
        self.optimizer.step()
        self.updates += 1
        self._last_loss = loss.detach()  # read lazily: no device sync per meta-update
        if restart:
            self._since = 0

    @property
    def last_loss(self) -> float:
        return float(self._last_loss)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            buffer = self.buffer.snapshot()
        return {
            "buffer": buffer,
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


class MetaTrained(ABC):
    """Mixin for learners that meta-train online through ``self.trainer``: a due meta-update runs
    once at the end of a micro-batch, and the model version is the number of meta-updates."""

    trainer: MetaTrainer

    @abstractmethod
    def meta_update(self) -> None:
        """One meta-step on a meta-batch sampled from ``trainer``."""

    def _end_batch(self) -> None:
        if self._meta_due(open_task=True):
            self._timed_meta_update()

    def _meta_due(self, *, open_task: bool) -> bool:
        """A meta-update is due; ``open_task``: and the stream's open task holds records."""
        return self.trainer.due and (not open_task or bool(self.trainer.buffer.current_records))

    def _timed_meta_update(self) -> None:
        start = time.perf_counter()
        self.meta_update()
        self.trainer.seconds += time.perf_counter() - start

    @property
    def model_version(self) -> int:
        return self.trainer.updates

    @property
    def meta_progress(self) -> tuple[int, float]:
        return self.trainer.updates, self.trainer.seconds
