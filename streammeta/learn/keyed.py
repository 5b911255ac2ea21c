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

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.func import vmap

from streammeta.learn.base import BatchResults, copy_state
from streammeta.learn.inner import inner_step
from streammeta.learn.keystore import KeyStore
from streammeta.learn.layout import Layout
from streammeta.learn.learner import MetaLearner
from streammeta.learn.model import Params
from streammeta.learn.optim import State
from streammeta.segment.base import Segmenter

__all__ = ["KeyedLearner"]


class KeyedLearner(BatchResults):
    """Personalized fast weights on top of one shared :class:`MetaLearner`.

    ``update(x, y, keys)`` predicts every record with its key's fast weights (prequential), lets
    each key's segmenter read that key's losses (or 0/1 errors), restarts the keys that opened a
    task from the shared initialization, then steps each key on its labelled records, a step per
    full chunk of ``step_records`` (default ``support_size``, as the wrapped learner steps one
    stream), all keys at once.
    Features and targets are standardized with the wrapped learner's statistics, shared by all
    keys. The whole batch is predicted before any boundary applies (a detector finds one from
    the losses of the records it cuts); the records after a key's last boundary in the batch
    start the restarted weights' first chunk.

    A key's open task is kept in its slot and stored in the shared task buffer as one closed task
    when it ends (at a boundary or an eviction), or once it holds the buffer's
    ``task_max_records`` (the buffer keeps a task's first records only: nothing changes but the
    wait). Meta-updates run on the learner's schedule, at most one per micro-batch. Memory
    (``store``, a :class:`KeyStore`: ``store.nbytes``): ``max_keys`` x (fast weights, optimizer
    state, ``task_max_records`` records). With ``owns_learner`` (default) the wrapped learner is
    this class's alone and in its snapshots; without, it also serves keyless records, saved apart.
    """

    def __init__(
        self,
        learner: MetaLearner,
        *,
        max_keys: int = 1024,
        segmenter: Callable[[], Segmenter] | None = None,
        owns_learner: bool = True,
        step_records: int | None = None,
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
        self.owns_learner = owns_learner
        self.step_records = step_records or learner.support_size
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
        self.store = KeyStore(
            self.learner,
            max_keys=self.max_keys,
            segmenter=self.segmenter,
            step_records=self.step_records,
        )
        self._out = torch.zeros(0, self.learner.model.head.n_out, device=self.device)
        self._loss = torch.zeros(0, device=self.device)
        self._boundaries: list[tuple[int, str]] = []

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
        store = self.store
        lay = store.assign(np.asarray(keys, dtype=str))
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
        params = {k: v[slots] for k, v in store.fast.items()}
        state = {k: v[slots] for k, v in store.state.items()}
        out = self._per_key(params, lay, x)
        loss = learner.model.head.loss(out, ys)
        self._out, self._loss = out, torch.where(mask, loss, torch.nan)
        self._boundaries = []
        learn = lab
        if self.segmenter is not None:
            learn = self._segment(lay, lab, task, x, ys if y is not None else None, params, state)
        if y is not None:
            self._learn(params, state, lay, x, ys, learn)
            store.stage(learn, lay, x, ys)
            learner.trainer.count(int(lab.sum()))
        for k, v in params.items():
            store.fast[k][slots] = v
        for k, v in state.items():
            store.state[k][slots] = v
        self._out, self._loss = learner.user_units(self._out, self._loss, user_y)
        if not first:
            learner.observe_targets(user_y, None if labelled is None else mask)
        learner.end_keyed_batch()

    def _per_key(self, params: Params, lay: Layout, x: Tensor) -> Tensor:
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
        self, params: Params, state: State, lay: Layout, x: Tensor, y: Tensor, learn: np.ndarray
    ) -> None:
        """Each key's records to ``learn`` from join its pending chunk; every full chunk of
        ``step_records`` records is an inner step of its key, in order, vmapped over the keys
        that have a step to take (as :class:`FastWeightLearner` steps one stream)."""
        k, keys = self.step_records, len(lay.keys)
        store = self.store
        held = store.pend_n[lay.slots]
        slots = torch.from_numpy(lay.slots).to(self.device, non_blocking=True)
        pool_x = torch.cat([store.pend_x[slots].flatten(0, 1), x])
        pool_y = torch.cat([store.pend_y[slots].flatten(0, 1), y])
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
            store.pend_x[slot, : len(rest)] = pool_x[rest]
            store.pend_y[slot, : len(rest)] = pool_y[rest]
            store.pend_n[slot] = len(rest)

    def _segment(
        self,
        lay: Layout,
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
            segmenter = self.store.segmenters[int(lay.slots[j])]
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
            self.store.stage(lab & (part == 0) & (last[lay.inv] > 0), lay, x, y)
        for slot in lay.slots[cut].tolist():
            self.store.close(slot)
        if y is not None:
            whole = lab & (part > 0) & (part < last[lay.inv])  # tasks opened and ended here
            for j, p in np.unique(np.stack([lay.inv[whole], part[whole]], 1), axis=0).tolist():
                rec = np.flatnonzero(whole & (lay.inv == j) & (part == p))
                index = torch.from_numpy(rec).to(self.device, non_blocking=True)
                self.learner.trainer.add_task(x[index], y[index])
        self.store.restart(params, state, torch.from_numpy(cut).to(self.device), fresh=False)
        self.store.pend_n[lay.slots[cut]] = 0
        return lab & (part == last[lay.inv])

    def weights(self, key: str) -> Params | None:
        """A copy of ``key``'s fast weights; ``None`` for a key not held."""
        return self.store.weights(key)

    def holds(self, key: str) -> bool:  # seen, and not evicted since
        return key in self.store.slots

    def head_predict(self, out: Tensor) -> Tensor:
        return self.learner.head_predict(out)

    @property
    def boundaries(self) -> list[tuple[int, str]]:
        """``(offset, key)`` of the records of the last batch that opened a key's new task."""
        return list(self._boundaries)

    #: keys that hold fast weights now (at most ``max_keys``)
    keys_held = property(lambda self: len(self.store.slots))
    #: keys evicted (least recently used, to make room) since the start
    keys_evicted = property(lambda self: self.store.evicted)

    model_version = property(lambda self: self.learner.model_version)

    def describe(self) -> dict[str, float]:
        held, evicted = float(self.keys_held), float(self.keys_evicted)
        return {**self.learner.describe(), "keys_held": held, "keys_evicted": evicted}

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to continue exactly; rows of held keys only (slots ``0..held-1``);
        the wrapped learner's state only if it ``owns_learner``."""
        own = {"learner": self.learner.snapshot()} if self.owns_learner else {}
        return {**own, **copy_state(self.store.snapshot())}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a ``snapshot()``."""
        if self.owns_learner:
            self.learner.restore(state["learner"])
        self._reset()
        self.store.restore(state)
