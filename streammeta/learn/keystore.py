"""The per-key state of a keyed learner: a slot per key in preallocated tensors (fast weights,
optimizer state, the open task's records, the records waiting for the next inner step) and a
segmenter per key; at most ``max_keys`` keys, the least recently used evicted.

>>> import numpy as np
>>> from streammeta.learn.learner import MetaLearner
>>> from streammeta.learn.model import MLP, FunctionalModel, Regression
>>> learner = MetaLearner(FunctionalModel(MLP(1, 1, hidden=(8,)), Regression()), seed=0)
>>> store = KeyStore(learner, max_keys=2)
>>> store.assign(np.array(["a", "b", "a"])).keys
['a', 'b']
>>> _ = store.assign(np.array(["c"]))  # evicts "b", the least recently used
>>> list(store.slots), store.evicted
(['a', 'c'], 1)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from streammeta.learn.base import copy_state
from streammeta.learn.layout import Layout, ranks
from streammeta.learn.learner import MetaLearner
from streammeta.learn.model import Params
from streammeta.learn.optim import State
from streammeta.segment.base import Segmenter

__all__ = ["KeyStore"]


class KeyStore:
    """Slots ``0..max_keys-1`` for keys' state; ``slots`` maps each held key to its slot, least
    recently used first. A key's open task goes to ``learner``'s task buffer when it closes
    (``close``: at a boundary or an eviction) or fills up (``stage``)."""

    def __init__(
        self,
        learner: MetaLearner,
        *,
        max_keys: int,
        segmenter: Callable[[], Segmenter] | None = None,
        step_records: int | None = None,
    ) -> None:
        self.learner = learner
        self.max_keys = max_keys
        self.segmenter = segmenter
        self.device = learner.device
        buffer, init, rows = learner.trainer.buffer, self.init(), max_keys
        self.fast: Params = {k: v.new_zeros(rows, *v.shape) for k, v in init.items()}
        self.state: State = {
            k: v.new_zeros(rows, *v.shape) for k, v in learner.inner.init(init).items()
        }
        self.task_x = torch.zeros(rows, buffer.max_records, buffer.n_features, device=self.device)
        self.task_y = torch.zeros(
            rows, buffer.max_records, dtype=buffer.target_dtype, device=self.device
        )
        self.task_len = np.zeros(rows, dtype=np.int64)  # host side: read without a device sync
        trainer = learner.trainer
        self.episode = trainer.chunks * trainer.chunk_size
        k = (
            step_records or learner.support_size
        )  # each key's records waiting for its next inner step
        self.pend_x = torch.zeros(rows, k, buffer.n_features, device=self.device)
        self.pend_y = torch.zeros(rows, k, dtype=buffer.target_dtype, device=self.device)
        self.pend_n = np.zeros(rows, dtype=np.int64)
        self.slots: OrderedDict[str, int] = OrderedDict()  # least recently used first
        self.segmenters: dict[int, Segmenter] = {}
        self.evicted = 0

    def init(self) -> Params:
        """The shared initialization, detached."""
        return {k: v.detach() for k, v in self.learner.meta.init_params().items()}

    def assign(self, keys: np.ndarray) -> Layout:
        """Slots for the batch's keys; new keys evict the least recently used keys."""
        lay = Layout.build(keys, self.device)
        if len(lay.keys) > self.max_keys:
            raise ValueError(
                f"a batch with {len(lay.keys)} distinct keys: more than max_keys={self.max_keys}"
            )
        in_order = [lay.keys[j] for j in np.argsort(lay.last)]  # least recently used first
        for key in in_order:  # first, so that no key of this batch is evicted
            if key in self.slots:
                self.slots.move_to_end(key)
        fresh = []
        for key in in_order:
            if key in self.slots:
                continue
            if len(self.slots) < self.max_keys:
                slot = len(self.slots)
            else:
                _, slot = self.slots.popitem(last=False)
                self.close(slot)
                self.evicted += 1
            self.slots[key] = slot
            fresh.append(slot)
            if self.segmenter is not None:
                self.segmenters[slot] = self.segmenter()
        if fresh:
            for key in in_order:
                self.slots.move_to_end(key)
            rows = torch.tensor(fresh, device=self.device)
            self.restart(self.fast, self.state, rows, fresh=True)
            self.pend_n[fresh] = 0
        lay.slots[:] = [self.slots[k] for k in lay.keys]
        return lay

    def restart(self, params: Params, state: State, rows: Tensor, *, fresh: bool) -> None:
        """Rows of ``params`` start over from the shared initialization, and rows of ``state``
        as a new task restarts them (``fresh``: as for new weights; a new key)."""
        init = self.init()
        for k, v in init.items():
            params[k][rows] = v
        inner = self.learner.inner
        if fresh:
            restarted = {k: v.expand(len(rows), *v.shape) for k, v in inner.init(init).items()}
        else:
            restarted = inner.restart({k: v[rows] for k, v in state.items()})
        for k, v in restarted.items():
            state[k][rows] = v

    def stage(self, records: np.ndarray, lay: Layout, x: Tensor, y: Tensor) -> None:
        """Append the labelled ``records`` to their keys' open tasks; a task that fills up goes
        to the buffer now (the rest of it would not be kept there)."""
        rec = np.flatnonzero(records)
        slots = lay.slots[lay.inv[rec]]
        pos = self.task_len[slots] + ranks(slots)
        keep = pos < self.task_x.shape[1]
        rec, slots, pos = rec[keep], slots[keep], pos[keep]
        if not len(rec):
            return
        index = torch.from_numpy(np.stack([slots, pos, rec])).to(self.device, non_blocking=True)
        self.task_x[index[0], index[1]] = x[index[2]]
        self.task_y[index[0], index[1]] = y[index[2]]
        before = self.task_len[slots]
        np.add.at(self.task_len, slots, 1)
        after = self.task_len[slots]
        for slot in np.unique(slots[(before < self.episode) & (after >= self.episode)]).tolist():
            n = int(self.task_len[slot])  # an episode's worth: meta-training may use it now
            if n < self.task_x.shape[1]:
                self.learner.trainer.add_task(self.task_x[slot, :n], self.task_y[slot, :n])
        for slot in np.unique(slots[after == self.task_x.shape[1]]).tolist():
            self.learner.trainer.add_task(self.task_x[slot], self.task_y[slot])

    def close(self, slot: int) -> None:
        """The open task of ``slot`` ended: store it, unless it went to the buffer when full."""
        n = int(self.task_len[slot])
        if 0 < n < self.task_x.shape[1]:
            self.learner.trainer.add_task(self.task_x[slot, :n], self.task_y[slot, :n])
        self.task_len[slot] = 0

    @property
    def nbytes(self) -> int:
        """Bytes of the per-key tensors, allocated for ``max_keys`` keys."""
        tensors = [*self.fast.values(), *self.state.values(), self.task_x, self.task_y]
        return sum(t.element_size() * t.numel() for t in [*tensors, self.pend_x, self.pend_y])

    def weights(self, key: str) -> Params | None:
        """A copy of ``key``'s fast weights; ``None`` for a key not held."""
        slot = self.slots.get(key)
        return None if slot is None else {k: v[slot].clone() for k, v in self.fast.items()}

    def snapshot(self) -> dict[str, Any]:
        """The rows of held keys only (slots ``0..held-1``), not copied."""
        held = len(self.slots)
        return {
            "fast": {k: v[:held] for k, v in self.fast.items()},
            "state": {k: v[:held] for k, v in self.state.items()},
            "task_x": self.task_x[:held],
            "task_y": self.task_y[:held],
            "task_len": torch.from_numpy(self.task_len[:held]),
            "pend_x": self.pend_x[:held],
            "pend_y": self.pend_y[:held],
            "pend_n": torch.from_numpy(self.pend_n[:held]),
            "keys": list(self.slots),
            "slots": list(self.slots.values()),
            "segmenters": [self.segmenters[s].snapshot() for s in range(held)]
            if self.segmenter is not None
            else [],
            "evicted": self.evicted,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take over a ``snapshot()`` into this fresh store."""
        held = len(state["keys"])
        for table, saved in ((self.fast, state["fast"]), (self.state, state["state"])):
            for k, v in saved.items():
                table[k][:held] = v
        self.task_x[:held] = state["task_x"]
        self.task_y[:held] = state["task_y"]
        self.task_len[:held] = state["task_len"].cpu().numpy()
        self.pend_x[:held] = state["pend_x"]
        self.pend_y[:held] = state["pend_y"]
        self.pend_n[:held] = state["pend_n"].cpu().numpy()
        self.slots = OrderedDict(zip(state["keys"], map(int, state["slots"]), strict=True))
        if self.segmenter is not None:
            for slot, saved in enumerate(state["segmenters"]):
                self.segmenters[slot] = self.segmenter()
                self.segmenters[slot].restore(copy_state(saved))
        self.evicted = int(state["evicted"])
