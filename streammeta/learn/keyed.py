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
from streammeta.learn.inner import inner_step
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
    task from the shared initialization, then steps each key on its labelled records, a step per
    full chunk of ``support_size`` as the wrapped learner steps one stream, all keys at once.
    Features and targets are standardized with the wrapped learner's statistics, shared by all
    keys. The whole batch is predicted before any boundary applies: a detector finds a boundary
    from the losses of the records it cuts, so they cannot be predicted after it without reading
    their labels. The records after a key's last boundary in the batch start the restarted
    weights' first chunk.

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
        model, inner = learner.model, learner.inner
        # the stream's steps need no meta-gradient: without no_grad, the weights would carry the
        # graph of every step back to the task's start
        self._inner_step = torch.no_grad()(
            vmap(lambda p, s, x, y: inner_step(model, inner, p, s, x, y))
        )
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
        k = self.learner.support_size  # each key's records waiting for its next inner step
        self._pend_x = torch.zeros(rows, k, buffer.n_features, device=self.device)
        self._pend_y = torch.zeros(rows, k, dtype=buffer.target_dtype, device=self.device)
        self._pend_n = np.zeros(rows, dtype=np.int64)
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
        learner = self.learner
        user_y = y
        first = learner.first_targets(user_y, None if labelled is None else labelled.bool())
        x = learner.model_features(x.to(self.device, non_blocking=True), observe=True)
        mask = torch.from_numpy(lab).to(self.device, non_blocking=True)
        target = learner.model.head.target_dtype
        # placeholders of unlabelled rows (NaN, -1) stay out of the loss
        ys = torch.zeros(n, dtype=target, device=self.device)
        if y is not None:
            ys = torch.where(mask, learner.model_targets(y.to(self.device)), ys)  # type: ignore[arg-type]
        slots = torch.from_numpy(lay.slots).to(self.device, non_blocking=True)
        params = {k: v[slots] for k, v in self._fast.items()}
        state = {k: v[slots] for k, v in self._state.items()}
        out = self._per_key(params, lay, x)
        loss = learner.model.head.loss(out, ys)
        self._out, self._loss = out, torch.where(mask, loss, torch.nan)
        self._boundaries = []
        learn = lab
        if self.segmenter is not None:
            learn = self._segment(lay, lab, task, x, ys if y is not None else None, params, state)
        if y is not None:
            self._learn(params, state, lay, x, ys, learn)
            self._stage(learn, lay, x, ys)
            learner.trainer.count(int(lab.sum()))
        for k, v in params.items():
            self._fast[k][slots] = v
        for k, v in state.items():
            self._state[k][slots] = v
        self._out, self._loss = learner.user_units(self._out, self._loss, user_y)
        if not first:
            learner.observe_targets(user_y, None if labelled is None else mask)
        if learner.trainer.due:  # without an episode to draw, ``meta_update`` does nothing
            learner.meta_update()

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
            rows = torch.tensor(fresh, device=self.device)
            self._restart(self._fast, self._state, rows, fresh=True)
            self._pend_n[fresh] = 0
        lay.slots[:] = [self._slots[k] for k in lay.keys]
        return lay

    def _restart(self, params: Params, state: State, rows: Tensor, *, fresh: bool) -> None:
        """Rows of ``params`` start over from the shared initialization, and rows of ``state``
        as a new task restarts them (``fresh``: as for new weights; a new key)."""
        init = self._init()
        for k, v in init.items():
            params[k][rows] = v
        inner = self.learner.inner
        if fresh:
            restarted = {k: v.expand(len(rows), *v.shape) for k, v in inner.init(init).items()}
        else:
            restarted = inner.restart({k: v[rows] for k, v in state.items()})
        for k, v in restarted.items():
            state[k][rows] = v

    def _per_key(self, params: Params, lay: _Layout, x: Tensor) -> Tensor:
        """Every record's output under its key's weights: vmapped over keys, one call per padded
        block."""
        xs = torch.cat([x, x.new_zeros(1, *x.shape[1:])])[lay.gather]
        with torch.no_grad():
            outs = [
                self._forward(
                    {k: v[a:b] for k, v in params.items()},
                    xs[row : row + (b - a) * width].unflatten(0, (b - a, width)),
                ).flatten(0, 1)
                for a, b, width, row in lay.blocks
            ]
        return torch.cat(outs)[lay.scatter]

    def _learn(
        self, params: Params, state: State, lay: _Layout, x: Tensor, y: Tensor, learn: np.ndarray
    ) -> None:
        """Each key's records to ``learn`` from join its pending chunk; every full chunk of
        ``support_size`` records is an inner step of its key, in order, vmapped over the keys
        that have a step to take (as :class:`FastWeightLearner` steps one stream)."""
        k, keys = self.learner.support_size, len(lay.keys)
        held = self._pend_n[lay.slots]
        slots = torch.from_numpy(lay.slots).to(self.device, non_blocking=True)
        pool_x = torch.cat([self._pend_x[slots].flatten(0, 1), x])
        pool_y = torch.cat([self._pend_y[slots].flatten(0, 1), y])
        order = [
            np.concatenate([j * k + np.arange(held[j]), keys * k + rec[learn[rec]]])
            for j, rec in enumerate(lay.records())
        ]
        steps = np.array([len(o) // k for o in order])
        for r in range(int(steps.max(initial=0))):
            rows = np.flatnonzero(steps > r)
            chunk = torch.from_numpy(np.stack([order[j][r * k : (r + 1) * k] for j in rows]))
            chunk, at = chunk.to(self.device), torch.from_numpy(rows).to(self.device)
            new, new_state, _ = self._inner_step(
                {n: v[at] for n, v in params.items()},
                {n: v[at] for n, v in state.items()},
                pool_x[chunk],
                pool_y[chunk],
            )
            for n, v in new.items():
                params[n][at] = v
            for n, v in new_state.items():
                state[n][at] = v
        for j, slot in enumerate(lay.slots.tolist()):
            rest = torch.from_numpy(order[j][steps[j] * k :]).to(self.device)
            self._pend_x[slot, : len(rest)] = pool_x[rest]
            self._pend_y[slot, : len(rest)] = pool_y[rest]
            self._pend_n[slot] = len(rest)

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
        self._restart(params, state, torch.from_numpy(cut).to(self.device), fresh=False)
        self._pend_n[lay.slots[cut]] = 0
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
                    "pend_x": self._pend_x[:held],
                    "pend_y": self._pend_y[:held],
                    "pend_n": torch.from_numpy(self._pend_n[:held]),
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
        self._pend_x[:held] = state["pend_x"]
        self._pend_y[:held] = state["pend_y"]
        self._pend_n[:held] = state["pend_n"].cpu().numpy()
        self._slots = OrderedDict(zip(state["keys"], map(int, state["slots"]), strict=True))
        if self.segmenter is not None:
            for slot, saved in enumerate(state["segmenters"]):
                self._segmenters[slot] = self.segmenter()
                self._segmenters[slot].restore(copy_state(saved))
        self._evicted = int(state["evicted"])
