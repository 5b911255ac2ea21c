"""The one small base class every learner implements (river style: mutators return ``None``,
results are read from properties)."""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from streammeta.learn.scale import Standardizer

__all__ = ["BatchResults", "Learner", "copy_state", "resolve_device"]


class BatchResults:
    """What a learner read from its last micro-batch, in record order."""

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


class Learner(BatchResults, ABC):
    """A prequential learner on micro-batches.

    ``update(x, y)`` first predicts the batch with the current fast weights (readable afterwards
    from ``prediction``, ``output`` and ``loss``), then learns from its labelled records. A
    boundary inside the batch is passed as an offset: the learner restarts there, mid-batch, so
    the records after it are predicted by the new task's weights. Subclasses implement
    ``_step`` (one segment of one task) and may hook ``_end_batch`` (once per micro-batch).

    A learner that sets ``x_scaler`` (and, for regression, ``y_scaler``) learns in standard
    units: features are standardized with statistics that include the batch (features are known
    before labels), targets with statistics of the labels before the batch, which the batch's
    labels join after it was learned. ``output``, ``prediction`` and ``loss`` are always in the
    records' own units.
    """

    name: str = "learner"
    device: torch.device = torch.device("cpu")
    x_scaler: Standardizer | None = None
    y_scaler: Standardizer | None = None  # squared-error regression only

    #: Whether the learner weighs switch candidates itself (a bank of fast learners): it then
    #: opens a task where its own evidence says so, and a candidate alone opens none.
    decides_boundaries: bool = False

    def update(
        self,
        x: Tensor,
        y: Tensor | None = None,
        labelled: Tensor | None = None,
        boundaries: Sequence[int] = (),
        candidates: Sequence[int] = (),
    ) -> None:
        """Predict ``x``, then learn from the records where ``labelled`` (default: all when
        ``y`` is given, none otherwise). ``boundaries``: offsets of the records in this batch
        that open a new task for certain (0 is a boundary before the first record);
        ``candidates``: offsets where a detector suspects a switch, which open a task unless the
        learner ``decides_boundaries``. ``opened`` then lists where tasks opened."""
        n = x.shape[0]
        cuts, marks = sorted(set(boundaries)), sorted(set(candidates) - set(boundaries))
        for name, given in (("boundaries", cuts), ("candidates", marks)):
            if given and (given[0] < 0 or given[-1] >= n):
                raise ValueError(f"{name}={given!r}: offsets must lie in 0..{n - 1}")
        user_y = y
        first = self.first_targets(user_y, labelled)
        x, y = self.model_features(x, observe=True), self.model_targets(y)
        edges = [0, *(c for c in sorted({*cuts, *marks}) if c > 0), n]
        self._opened = []
        outs, losses = [], []
        for a, b in itertools.pairwise(edges):
            self._offset = a
            if a in cuts:
                self.begin_task()
                self._opened.append(a)
            elif a in marks:
                self._candidate()
            if b - a == n:  # one segment: no slicing, no concatenation
                self._step(x, y, labelled)
                break
            self._step(
                x[a:b], None if y is None else y[a:b], None if labelled is None else labelled[a:b]
            )
            outs.append(self._out)
            losses.append(self._loss)
        if outs:
            self._out, self._loss = torch.cat(outs), torch.cat(losses)
        self._out, self._loss = self.user_units(self._out, self._loss, user_y)
        if not first:
            self.observe_targets(user_y, labelled)
        self._end_batch()

    @property
    def opened(self) -> list[int]:
        """Offsets of the records of the last ``update`` that opened a new task."""
        return list(self._opened)

    def _candidate(self) -> None:
        """A detector suspects a switch at the record ``_offset`` (default: a boundary)."""
        self.begin_task()
        self._opened.append(self._offset)

    def predict(self, x: Tensor, y: Tensor | None = None) -> None:
        """Predict ``x`` with the current fast weights and learn nothing; ``output``, ``loss``
        and ``prediction`` read as after ``update``, and ``drift_signal`` reads what a segmenter
        judges before the learner learns the batch (with the boundaries it found)."""
        xm, ym = self.model_features(x, observe=False), self.model_targets(y)
        self._out, self._loss = self.user_units(*self._predict(xm, ym), y)
        self._probe_out, self._probe_loss = self.user_units(*self._probe(xm, ym), y)

    def records_to_step(self) -> int | None:
        """Labelled records until the learner's next inner step; ``None``: it learns from
        every batch as it comes."""
        return None

    def scaler_state(self) -> list[dict[str, Any] | None]:
        """The standardization's statistics, for a snapshot (not copied)."""
        return [s.state_dict() if s is not None else None for s in (self.x_scaler, self.y_scaler)]

    def load_scaler_state(self, saved: list[dict[str, Any] | None]) -> None:
        """Continue from :meth:`scaler_state`."""
        for scaler, state in zip((self.x_scaler, self.y_scaler), saved, strict=True):
            if scaler is not None and state is not None:
                scaler.load_state_dict(state)

    def model_features(self, x: Tensor, *, observe: bool) -> Tensor:
        """``x`` as the model sees it (standardized where this learner standardizes)."""
        if self.x_scaler is None:
            return x
        x = x.to(self.x_scaler.mean.device, non_blocking=True)
        if observe:
            self.x_scaler.observe(x)
        elif self.x_scaler.count == 0:  # nothing observed yet: the batch's own statistics
            own = Standardizer(x.shape[1], clip=self.x_scaler.clip, device=x.device)
            own.observe(x)
            return own(x)
        return self.x_scaler(x)

    def model_targets(self, y: Tensor | None) -> Tensor | None:
        """``y`` in the model's units (standard units for a standardizing regressor)."""
        if y is None or self.y_scaler is None:
            return y
        return self.y_scaler(y.to(self.y_scaler.mean.device, non_blocking=True))

    def first_targets(self, y: Tensor | None, labelled: Tensor | None) -> bool:
        """Before a batch is learned: with no target statistics yet, its labels make them
        (a step on raw targets would leave their scale in the optimizer's moments). Whether
        they did: then ``observe_targets`` must not count them again."""
        first = self.y_scaler is not None and self.y_scaler.count == 0
        if first:
            self.observe_targets(y, labelled)
        return first

    def observe_targets(self, y: Tensor | None, labelled: Tensor | None) -> None:
        """The labels of a batch just learned from join the target statistics."""
        if self.y_scaler is None or y is None:
            return
        known = y if labelled is None else y[labelled.to(y.device)]
        self.y_scaler.observe(known.to(self.y_scaler.mean.device))

    def user_units(self, out: Tensor, loss: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor]:
        """Output and squared error (NaN where ``loss`` is) in the records' units, from the
        model's; ``y`` in the records' units."""
        if self.y_scaler is None or self.y_scaler.count == 0:
            return out, loss
        out = self.y_scaler.invert(out)
        if y is None:
            return out, loss
        error = (out.squeeze(-1) - y.to(out.device, non_blocking=True)) ** 2
        return out, torch.where(loss.isnan(), loss, error)

    def _probe(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor]:
        """Output and loss a segmenter watches (default: the prediction's own)."""
        return self._out, self._loss

    def drift_signal(self, reads: str, y: Tensor, *, anchored: bool = True) -> Tensor:
        """Per-record signal of the last ``predict`` for a segmenter that ``reads`` the
        ``"loss"`` or the 0/1 ``"error"`` of the probe (``anchored``) or of the prediction
        itself; NaN where there is nothing to judge."""
        out, loss = (self._probe_out, self._probe_loss) if anchored else (self._out, self._loss)
        if reads == "loss":
            return loss
        error = (self.head_predict(out).cpu() != y).double()
        return torch.where(loss.cpu().isnan(), torch.nan, error)

    @abstractmethod
    def _predict(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor]:
        """Raw output and per-record loss (NaN without labels), no learning."""

    @abstractmethod
    def _step(self, x: Tensor, y: Tensor | None, labelled: Tensor | None) -> None:
        """Predict and learn records of one task; sets ``_out`` and ``_loss``."""

    def _end_batch(self) -> None:
        """Once per micro-batch, after every segment (meta-updates run here)."""

    @abstractmethod
    def begin_task(self) -> None:
        """A boundary: the next record opens a new task."""

    _probe_out: Tensor  # set by ``predict``
    _probe_loss: Tensor
    _opened: list[int]  # set by ``update``
    _offset: int  # the first record of the segment being learned, in the batch

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

    @property
    def meta_progress(self) -> tuple[int, float]:
        """Meta-updates taken so far and the seconds they took; none for a plain learner."""
        return 0, 0.0

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
