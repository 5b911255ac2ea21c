"""How a micro-batch of keyed records is laid out for per-key vmapped calls: records grouped by
key, keys ordered by record count, runs of keys padded to a common width.

>>> import numpy as np
>>> lay = Layout.build(np.array(["b", "a", "b", "c", "b"]), torch.device("cpu"))
>>> lay.keys, lay.counts.tolist(), [r.tolist() for r in lay.records()]
(['b', 'a', 'c'], [3, 1, 1], [[0, 2, 4], [1], [3]])
>>> ranks(np.array([2, 0, 2, 2])).tolist()  # each record's position among its key's
[0, 0, 1, 2]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["Layout", "ranks"]

# A vmapped call costs about as much as 1000 padded records of a small MLP (measured on CPU):
# keys start a new padded block only where that saves more padding than this.
_CALL_ROWS = 1024


def ranks(labels: np.ndarray) -> np.ndarray:
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
class Layout:
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
    def build(cls, keys: np.ndarray, device: torch.device) -> Layout:
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
        scatter = base[inv] + ranks(inv)
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
