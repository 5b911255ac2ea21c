"""Per-key fast weights (personalization): each record's ``key`` (entity, tenant) has its own fast
weights, optimizer state, open task and segmenter; the meta-learned initialization, the learned
optimizer, the task buffer and the meta-updates stay shared.

The keys' fast weights live in preallocated tensors with a slot per key (at most ``max_keys``;
the least recently used key is evicted and restarts from the initialization if it comes back).
A micro-batch is laid out as padded blocks of records, one row per key, and every key takes its
inner step at once, batched over keys with :func:`torch.func.vmap`.

>>> import torch
>>> from streammeta.learn.learner import MetaLearner
>>> from streammeta.learn.model import MLP, FunctionalModel, Regression
>>> model = FunctionalModel(MLP(1, 1, hidden=(8,)), Regression())
>>> keyed = KeyedLearner(MetaLearner(model, seed=0), max_keys=2)
>>> x = torch.linspace(-1, 1, 6)[:, None]
>>> keyed.update(x, x[:, 0], ["a", "b", "a", "b", "a", "a"])
>>> keyed.update(x, x[:, 0], ["c"] * 6)  # evicts "b", the least recently used
>>> keyed.loss.shape, keyed.keys_held, keyed.keys_evicted
(torch.Size([6]), 2, 1)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.func import vmap

from streammeta.learn.base import BatchResults, copy_state
from streammeta.learn.learner import MetaLearner
from streammeta.learn.model import Params
from streammeta.learn.optim import State
from streammeta.segment.base import Segmenter

__all__ = ["KeyedLearner"]

# A vmapped call costs about as much as 1000 padded records of a small MLP (measured on CPU):
# keys start a new padded block only where that saves more padding than this.
_CALL_ROWS = 1024


def _ranks(labels: np.ndarray) -> np.ndarray:
    """Each element's position among the elements with the same label, in order."""
    order = np.argsort(labels, kind="stable")
    ordered = labels[order]
    ranks = np.empty_like(order)
    ranks[order] = np.arange(len(labels)) - np.searchsorted(ordered, ordered)
    return ranks


def _blocks(counts: np.ndarray) -> list[tuple[int, int]]:
    """Runs of keys (sorted by record count, most first), each padded to its first key's count."""
    out, a = [], 0
    while a < len(counts):
        saved = (len(counts) - np.arange(a + 1, len(counts))) * (counts[a] - counts[a + 1 :])
        worth = saved > _CALL_ROWS
        b = a + 1 + int(worth.argmax()) if worth.any() else len(counts)
        out.append((a, b))
        a = b
    return out


@dataclass
class _Layout:
    """A micro-batch's records grouped by key; keys ordered by record count, most first."""

    keys: list[str]
    last: np.ndarray  # offset of each key's last record
    counts: np.ndarray
    inv: np.ndarray  # key of each record
    blocks: list[tuple[int, int, int, int]]  # keys a..b padded to width w, from flat row o
    gather: Tensor  # padded row -> record (n: padding)
    scatter: Tensor  # record -> padded row
    slots: np.ndarray  # slot of each key, set by the learner

    @classmethod
    def build(cls, keys: np.ndarray, device: torch.device) -> _Layout:
        uniq, inv, counts = np.unique(keys, return_inverse=True, return_counts=True)
        last = len(keys) - 1 - np.unique(keys[::-1], return_index=True)[1]
        perm = np.lexsort((last, -counts))
        where = np.empty_like(perm)
        where[perm] = np.arange(len(perm))
        inv, counts = where[inv.reshape(-1)], counts[perm]
        blocks, base, rows = [], np.empty(len(counts), dtype=np.int64), 0
        for a, b in _blocks(counts):
            width = int(counts[a])
            base[a:b] = rows + np.arange(b - a) * width
            blocks.append((a, b, width, rows))
            rows += (b - a) * width
        scatter = base[inv] + _ranks(inv)
        gather = np.full(rows, len(keys), dtype=np.int64)
        gather[scatter] = np.arange(len(keys))
        index = torch.from_numpy(np.concatenate([gather, scatter])).to(device, non_blocking=True)
        return cls(
            keys=uniq[perm].tolist(),
            last=last[perm],
            counts=counts,
            inv=inv,
            blocks=blocks,
            gather=index[:rows],
            scatter=index[rows:],
            slots=np.zeros(len(perm), dtype=np.int64),
        )

    def records(self) -> list[np.ndarray]:
        """Each key's record offsets, in order."""
        return np.split(np.argsort(self.inv, kind="stable"), np.cumsum(self.counts)[:-1])


class KeyedLearner(BatchResults):
    """Personalized fast weights on top of one shared :class:`MetaLearner`.

    ``update(x, y, keys)`` predicts every record with its key's fast weights (prequential), lets
    each key's segmenter read that key's losses (or 0/1 errors), restarts the keys that opened a
    task from the shared initialization, then takes one inner step per key on its labelled
    records, all keys at once. The whole batch is predicted before any boundary applies: a
    detector finds a boundary from the losses of the records it cuts, so they cannot be predicted
    after it without reading their labels (``run_prequential`` reports the same first
    prediction). The records after a key's last boundary in the batch make the restarted weights'
    first step.

    A key's open task is kept in its slot and stored in the shared task buffer as one closed task
    when it ends (at a boundary or an eviction), or once it holds the buffer's
    ``task_max_records`` (the buffer keeps a task's first records only: nothing changes but the
    wait). Meta-updates run on the learner's schedule, at most one per micro-batch. Memory:
    ``max_keys`` x (fast weights, optimizer state, ``task_max_records`` records). The wrapped
    learner's own fast weights go unused: update it through this class only.
    """

    def __init__(
        self,
        learner: MetaLearner,
        *,
        max_keys: int = 1024,
        segmenter: Callable[[], Segmenter] | None = None,
    ) -> None:
        if not isinstance(learner, MetaLearner):
            raise TypeError(f"learner: must be a MetaLearner, got {type(learner).__name__}")
        if max_keys < 1:
            raise ValueError(f"max_keys={max_keys!r}: must be at least 1")
        probe = None if segmenter is None else segmenter()
        if segmenter is not None and not isinstance(probe, Segmenter):
            raise ValueError("segmenter: must be a callable that returns a new Segmenter")
        self._reads = "loss" if probe is None else probe.reads
        self.learner = learner
        self.max_keys = max_keys
        self.segmenter = segmenter
        self.device = learner.device
        self._forward = vmap(learner.model)
        self._reset()

    def _reset(self) -> None:
        buffer, init, rows = self.learner.trainer.buffer, self._init(), self.max_keys
        self._fast: Params = {k: v.new_zeros(rows, *v.shape) for k, v in init.items()}
        self._state: State = {
            k: v.new_zeros(rows, *v.shape) for k, v in self.learner.inner.init(init).items()
        }
        self._task_x = torch.zeros(rows, buffer.max_records, buffer.n_features, device=self.device)
        self._task_y = torch.zeros(
            rows, buffer.max_records, dtype=buffer.target_dtype, device=self.device
        )
        self._task_len = np.zeros(rows, dtype=np.int64)  # host side: read without a device sync
        self._slots: OrderedDict[str, int] = OrderedDict()  # least recently used first
        self._segmenters: dict[int, Segmenter] = {}
        self._evicted = 0
        self._out = torch.zeros(0, self.learner.model.head.n_out, device=self.device)
        self._loss = torch.zeros(0, device=self.device)
        self._boundaries: list[tuple[int, str]] = []

    def _init(self) -> Params:
        return {k: v.detach() for k, v in self.learner.meta.init_params().items()}

    def update(
        self,
        x: Tensor,
        y: Tensor | None,
        keys: Sequence[str],
        labelled: Tensor | None = None,
        *,
        task: Sequence[object] | np.ndarray | None = None,
    ) -> None:
        """Predict ``x`` with each record's key's fast weights, then learn from the records where
        ``labelled`` (default: all when ``y`` is given, none otherwise). ``task``: the records'
        explicit task values, for segmenters that read them."""
        n = x.shape[0]
        if len(keys) != n:
            raise ValueError(f"keys: {len(keys)} given for a batch of {n} records; one per record")
        if n == 0:
            self._out, self._loss, self._boundaries = self._out[:0], self._loss[:0], []
            return
        lay = self._assign(np.asarray(keys, dtype=str))
        lab = np.full(n, y is not None)
        if labelled is not None and y is not None:
            lab = labelled.cpu().numpy().astype(bool)
        x = x.to(self.device, non_blocking=True)
        mask = torch.from_numpy(lab).to(self.device, non_blocking=True)
        target = self.learner.model.head.target_dtype
        # placeholders of unlabelled rows (NaN, -1) stay out of the loss
        ys = torch.zeros(n, dtype=target, device=self.device)
        if y is not None:
            ys = torch.where(mask, y.to(self.device, non_blocking=True), ys)
        slots = torch.from_numpy(lay.slots).to(self.device, non_blocking=True)
        params = {k: v[slots] for k, v in self._fast.items()}
        state = {k: v[slots] for k, v in self._state.items()}
        grads, out, loss = self._per_key(params, lay, x, ys, lab if y is not None else None)
        self._out, self._loss = out, torch.where(mask, loss, torch.nan)
        self._boundaries = []
        learn = lab
        if self.segmenter is not None:
            learn = self._segment(lay, lab, task, x, ys if y is not None else None, params, state)
            if self._boundaries and y is not None:  # restarted keys learn from their new task
                grads = self._per_key(params, lay, x, ys, learn)[0]
        if y is not None:
            stepped = np.bincount(lay.inv[learn], minlength=len(lay.keys)) > 0
            params, state = self._step(params, state, grads, stepped)
            self._stage(learn, lay, x, ys)
            self.learner.trainer.count(int(lab.sum()))
        for k, v in params.items():
            self._fast[k][slots] = v
        for k, v in state.items():
            self._state[k][slots] = v
        if self.learner.trainer.due:  # without an episode to draw, ``meta_update`` does nothing
            self.learner.meta_update()

    def _assign(self, keys: np.ndarray) -> _Layout:
        """Slots for the batch's keys; new keys evict the least recently used keys."""
        lay = _Layout.build(keys, self.device)
        if len(lay.keys) > self.max_keys:
            raise ValueError(
                f"a batch with {len(lay.keys)} distinct keys: more than max_keys={self.max_keys}"
            )
        in_order = [lay.keys[j] for j in np.argsort(lay.last)]  # least recently used first
        for key in in_order:  # first, so that no key of this batch is evicted
            if key in self._slots:
                self._slots.move_to_end(key)
        fresh = []
        for key in in_order:
            if key in self._slots:
                continue
            if len(self._slots) < self.max_keys:
                slot = len(self._slots)
            else:
                _, slot = self._slots.popitem(last=False)
                self._close(slot)
                self._evicted += 1
            self._slots[key] = slot
            fresh.append(slot)
            if self.segmenter is not None:
                self._segmenters[slot] = self.segmenter()
        if fresh:
            for key in in_order:
                self._slots.move_to_end(key)
            self._restart(self._fast, self._state, torch.tensor(fresh, device=self.device))
        lay.slots[:] = [self._slots[k] for k in lay.keys]
        return lay

    def _restart(self, params: Params, state: State, rows: Tensor) -> None:
        """Rows of ``params`` and ``state`` start over from the shared initialization."""
        init = self._init()
        for k, v in init.items():
            params[k][rows] = v
        for k, v in self.learner.inner.init(init).items():
            state[k][rows] = v

    def _per_key(
        self, params: Params, lay: _Layout, x: Tensor, y: Tensor, learn: np.ndarray | None
    ) -> tuple[Params, Tensor, Tensor]:
        """Every record's output and loss under its key's weights and, given the records to
        ``learn`` from, each key's gradient of its mean loss on them. The forward pass is vmapped
        over keys, one call per padded block; one backward pass of the sum of the keys' mean
        losses gives every key's gradient, as no key's loss depends on another key's weights
        (measured: a third faster than ``vmap(grad(...))``, whose overhead dominates here)."""

        def pad(t: Tensor) -> Tensor:
            return torch.cat([t, t.new_zeros(1, *t.shape[1:])])[lay.gather]

        xs, ys = pad(x), pad(y)
        with torch.set_grad_enabled(learn is not None):
            if learn is not None:
                params = {k: v.detach().requires_grad_() for k, v in params.items()}
            outs = [
                self._forward(
                    {k: v[a:b] for k, v in params.items()},
                    xs[row : row + (b - a) * width].unflatten(0, (b - a, width)),
                ).flatten(0, 1)
                for a, b, width, row in lay.blocks
            ]
            out = torch.cat(outs)
            losses = self.learner.model.head.loss(out, ys)
            grads: Params = {}
            if learn is not None:
                counts = np.bincount(lay.inv[learn], minlength=len(lay.keys))
                share = np.where(learn, 1.0 / np.maximum(counts, 1)[lay.inv], 0.0)
                weight = pad(torch.from_numpy(share.astype(np.float32)).to(self.device))
                found = torch.autograd.grad((losses * weight).sum(), list(params.values()))
                grads = dict(zip(params, found, strict=True))
        return grads, out.detach()[lay.scatter], losses.detach()[lay.scatter]

    def _step(
        self, params: Params, state: State, grads: Params, stepped: np.ndarray
    ) -> tuple[Params, State]:
        """One inner step of every key that had records to learn from, vmapped over keys."""
        with torch.no_grad():
            new, new_state = vmap(self.learner.inner.update)(grads, state, params)
        keep = torch.from_numpy(stepped).to(self.device, non_blocking=True)

        def pick(a: Tensor, b: Tensor) -> Tensor:
            return torch.where(keep.view(-1, *[1] * (a.dim() - 1)), a, b)

        return (
            {k: pick(new[k], v) for k, v in params.items()},
            {k: pick(new_state[k], v) for k, v in state.items()},
        )

    def _segment(
        self,
        lay: _Layout,
        lab: np.ndarray,
        task: Sequence[object] | np.ndarray | None,
        x: Tensor,
        y: Tensor | None,
        params: Params,
        state: State,
    ) -> np.ndarray:
        """Each key's segmenter reads its records' signal; keys that opened a task restart (their
        rows of ``params`` and ``state``) and the tasks that ended go to the buffer. Returns the
        records to learn from: the labelled ones of each key's last task."""
        signal = self._loss
        if self._reads == "error" and y is not None:
            wrong = (self.learner.head_predict(self._out) != y).to(signal.dtype)
            signal = torch.where(signal.isnan(), signal, wrong)
        values = signal.double().cpu().numpy()
        tasks = None if task is None else np.asarray(task)
        part = np.zeros(len(lab), dtype=np.int64)  # a record's task, counted in the batch
        last = np.zeros(len(lay.keys), dtype=np.int64)
        for j, rec in enumerate(lay.records()):
            segmenter = self._segmenters[int(lay.slots[j])]
            segmenter.update(values[rec], None if tasks is None else tasks[rec])
            cuts = segmenter.boundaries
            if cuts:
                part[rec] = np.searchsorted(cuts, np.arange(len(rec)), side="right")
                last[j] = len(cuts)
                self._boundaries.extend((int(rec[c]), lay.keys[j]) for c in cuts)
        if not self._boundaries:
            return lab
        self._boundaries.sort()
        cut = np.flatnonzero(last)
        if y is not None:
            self._stage(lab & (part == 0) & (last[lay.inv] > 0), lay, x, y)
        for slot in lay.slots[cut].tolist():
            self._close(slot)
        if y is not None:
            whole = lab & (part > 0) & (part < last[lay.inv])  # tasks opened and ended here
            for j, p in np.unique(np.stack([lay.inv[whole], part[whole]], 1), axis=0).tolist():
                rec = np.flatnonzero(whole & (lay.inv == j) & (part == p))
                index = torch.from_numpy(rec).to(self.device, non_blocking=True)
                self.learner.trainer.add_task(x[index], y[index])
        self._restart(params, state, torch.from_numpy(cut).to(self.device))
        return lab & (part == last[lay.inv])

    def _stage(self, records: np.ndarray, lay: _Layout, x: Tensor, y: Tensor) -> None:
        """Append the labelled ``records`` to their keys' open tasks; a task that fills up goes
        to the buffer now (the rest of it would not be kept there)."""
        rec = np.flatnonzero(records)
        slots = lay.slots[lay.inv[rec]]
        pos = self._task_len[slots] + _ranks(slots)
        keep = pos < self._task_x.shape[1]
        rec, slots, pos = rec[keep], slots[keep], pos[keep]
        if not len(rec):
            return
        index = torch.from_numpy(np.stack([slots, pos, rec])).to(self.device, non_blocking=True)
        self._task_x[index[0], index[1]] = x[index[2]]
        self._task_y[index[0], index[1]] = y[index[2]]
        np.add.at(self._task_len, slots, 1)
        for slot in np.unique(slots[self._task_len[slots] == self._task_x.shape[1]]).tolist():
            self.learner.trainer.add_task(self._task_x[slot], self._task_y[slot])

    def _close(self, slot: int) -> None:
        """The open task of ``slot`` ended: store it, unless it went to the buffer when full."""
        n = int(self._task_len[slot])
        if 0 < n < self._task_x.shape[1]:
            self.learner.trainer.add_task(self._task_x[slot, :n], self._task_y[slot, :n])
        self._task_len[slot] = 0

    def weights(self, key: str) -> Params | None:
        """A copy of ``key``'s fast weights; ``None`` for a key not held."""
        slot = self._slots.get(key)
        return None if slot is None else {k: v[slot].clone() for k, v in self._fast.items()}

    def head_predict(self, out: Tensor) -> Tensor:
        return self.learner.head_predict(out)

    @property
    def boundaries(self) -> list[tuple[int, str]]:
        """``(offset, key)`` of the records of the last batch that opened a key's new task."""
        return list(self._boundaries)

    @property
    def keys_held(self) -> int:
        """Keys that hold fast weights now (at most ``max_keys``)."""
        return len(self._slots)

    @property
    def keys_evicted(self) -> int:
        """Keys evicted (least recently used, to make room) since the start."""
        return self._evicted

    @property
    def model_version(self) -> int:
        return self.learner.model_version

    def describe(self) -> dict[str, float]:
        return {
            **self.learner.describe(),
            "keys_held": float(self.keys_held),
            "keys_evicted": float(self._evicted),
        }

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to continue exactly; rows of held keys only (slots ``0..held-1``)."""
        held = len(self._slots)
        return {
            "learner": self.learner.snapshot(),
            **copy_state(
                {
                    "fast": {k: v[:held] for k, v in self._fast.items()},
                    "state": {k: v[:held] for k, v in self._state.items()},
                    "task_x": self._task_x[:held],
                    "task_y": self._task_y[:held],
                    "task_len": torch.from_numpy(self._task_len[:held]),
                    "keys": list(self._slots),
                    "slots": list(self._slots.values()),
                    "segmenters": [self._segmenters[s].snapshot() for s in range(held)]
                    if self.segmenter is not None
                    else [],
                    "evicted": self._evicted,
                }
            ),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a ``snapshot()``."""
        self.learner.restore(state["learner"])
        self._reset()
        held = len(state["keys"])
        for table, saved in ((self._fast, state["fast"]), (self._state, state["state"])):
            for k, v in saved.items():
                table[k][:held] = v
        self._task_x[:held] = state["task_x"]
        self._task_y[:held] = state["task_y"]
        self._task_len[:held] = state["task_len"].cpu().numpy()
        self._slots = OrderedDict(zip(state["keys"], map(int, state["slots"]), strict=True))
        if self.segmenter is not None:
            for slot, saved in enumerate(state["segmenters"]):
                self._segmenters[slot] = self.segmenter()
                self._segmenters[slot].restore(copy_state(saved))
        self._evicted = int(state["evicted"])
