"""A bounded task buffer: the open task, a ring of recent tasks, and a reservoir of older ones.

Tasks live in one padded tensor on the learner's device, so a meta-batch is gathered in a few
tensor operations. The reservoir is a uniform sample of every task closed so far (Vitter's
algorithm R), which is what FTML's "follow the meta leader" draws from.

>>> import torch
>>> buf = TaskBuffer(n_features=1, max_records=50, recent=2, reservoir=4)
>>> buf.append(torch.randn(30, 1), torch.randn(30))
>>> buf.close_task()
>>> buf.tasks_closed, buf.stored
(1, 2)
>>> xs, ys = buf.sample(3, chunks=2, chunk_size=10, recent_fraction=0.5)
>>> tuple(xs.shape), tuple(ys.shape)
((3, 2, 10, 1), (3, 2, 10))
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["TaskBuffer"]


class TaskBuffer:
    """Fixed-size storage for meta-training episodes.

    Slot 0 is the open task; slots ``1..recent`` a ring of the latest closed tasks; the rest a
    reservoir. At most ``max_records`` labelled records are kept per task (the first ones).
    """

    def __init__(
        self,
        n_features: int,
        max_records: int,
        recent: int,
        reservoir: int,
        *,
        target_dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        if max_records < 2:
            raise ValueError(f"max_records={max_records!r}: must be at least 2")
        if recent < 1 or reservoir < 0:
            raise ValueError(
                f"recent={recent!r}, reservoir={reservoir!r}: need recent >= 1, reservoir >= 0"
            )
        self.n_features = n_features
        self.max_records = max_records
        self.recent = recent
        self.reservoir = reservoir
        self.target_dtype = target_dtype
        self.device = torch.device(device)
        self.seed = seed
        self._reset()

    def _reset(self) -> None:
        slots = 1 + self.recent + self.reservoir
        self._x = torch.zeros(slots, self.max_records, self.n_features, device=self.device)
        self._y = torch.zeros(slots, self.max_records, dtype=self.target_dtype, device=self.device)
        self._len = [0] * slots  # host-side lengths: no device sync to read them
        self._ring = 0
        self._closed = 0
        self._rng = torch.Generator().manual_seed(self.seed)

    @property
    def tasks_closed(self) -> int:
        """Tasks closed since the start."""
        return self._closed

    @property
    def stored(self) -> int:
        """Filled slots of the ring and the reservoir (a recent task may sit in both)."""
        return sum(1 for n in self._len[1:] if n > 0)

    @property
    def current_records(self) -> int:
        return self._len[0]

    def append(self, x: Tensor, y: Tensor) -> None:
        """Add labelled records to the open task (beyond ``max_records`` they are not kept)."""
        n = min(x.shape[0], self.max_records - self._len[0])
        if n > 0:
            start = self._len[0]
            self._x[0, start : start + n] = x[:n]
            self._y[0, start : start + n] = y[:n]
            self._len[0] += n

    def close_task(self) -> None:
        """Move the open task into the ring and, by reservoir sampling, the reservoir."""
        n = self._len[0]
        if n == 0:
            return
        self._file(self._x[0, :n], self._y[0, :n])
        self._len[0] = 0

    def add_task(self, x: Tensor, y: Tensor) -> None:
        """Store a whole closed task whose records were kept elsewhere while it was open (a key's
        task in keyed learning), as ``close_task`` would; the open task is left as it is."""
        n = min(x.shape[0], self.max_records)
        if n > 0:
            self._file(x[:n], y[:n])

    def _file(self, x: Tensor, y: Tensor) -> None:
        """Put a closed task into the ring and, by reservoir sampling, the reservoir."""
        self._store(1 + self._ring, x, y)
        self._ring = (self._ring + 1) % self.recent
        if self.reservoir:
            if self._closed < self.reservoir:
                self._store(1 + self.recent + self._closed, x, y)
            else:
                j = int(torch.randint(self._closed + 1, (1,), generator=self._rng))
                if j < self.reservoir:
                    self._store(1 + self.recent + j, x, y)
        self._closed += 1

    def _store(self, slot: int, x: Tensor, y: Tensor) -> None:
        n = x.shape[0]
        self._x[slot, :n] = x
        self._y[slot, :n] = y
        self._len[slot] = n

    def sample(
        self, n_tasks: int, chunks: int, chunk_size: int, recent_fraction: float
    ) -> tuple[Tensor, Tensor] | None:
        """A meta-batch: ``n_tasks`` tasks, each cut into ``chunks`` disjoint random chunks of
        ``chunk_size`` records (drawn with repetition only when a task is too short).

        A ``recent_fraction`` of the tasks comes from the open task and the recent ring, the rest
        from the reservoir. ``None`` when no task has at least two chunks' worth of records.
        """
        need = 2 * chunk_size
        recent = [s for s in range(1 + self.recent) if self._len[s] >= need]
        older = [s for s in range(1 + self.recent, len(self._len)) if self._len[s] >= need]
        if not recent and not older:
            return None
        n_recent = round(n_tasks * recent_fraction) if older else n_tasks
        if not recent:
            n_recent = 0
        slots = self._pick(recent, n_recent) + self._pick(older, n_tasks - n_recent)
        idx = torch.tensor(slots)
        lengths = torch.tensor([self._len[s] for s in slots])
        # a random order of each task's valid positions: invalid ones sort last
        keys = torch.rand(len(slots), self.max_records, generator=self._rng)
        keys[torch.arange(self.max_records) >= lengths[:, None]] = 2.0
        order = keys.argsort(dim=1)
        want = torch.arange(chunks * chunk_size)[None, :] % lengths[:, None]
        pos = order.gather(1, want).to(self.device)
        rows = idx.to(self.device)[:, None]
        xs = self._x[rows, pos].view(len(slots), chunks, chunk_size, self.n_features)
        ys = self._y[rows, pos].view(len(slots), chunks, chunk_size)
        return xs, ys

    def _pick(self, pool: list[int], n: int) -> list[int]:
        if n <= 0:
            return []
        draw = torch.randint(len(pool), (n,), generator=self._rng).tolist()
        return [pool[i] for i in draw]

    def snapshot(self) -> dict[str, Any]:
        return {
            "x": self._x.clone(),
            "y": self._y.clone(),
            "len": torch.tensor(self._len),
            "ring": self._ring,
            "closed": self._closed,
            "rng": self._rng.get_state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._x = state["x"].to(self.device)
        self._y = state["y"].to(self.device)
        self._len = [int(n) for n in state["len"].tolist()]
        self._ring = int(state["ring"])
        self._closed = int(state["closed"])
        self._rng.set_state(state["rng"])
