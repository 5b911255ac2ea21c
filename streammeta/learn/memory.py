"""Concept memory: the fast weights of closed tasks, to recall when a concept comes back.

Each entry holds a task's fast weights and its inner optimizer's state, and a signature: the
model's outputs on a fixed set of probe inputs (in the standard units the model sees), which
tells two entries apart by what they predict rather than by their weights. Storing a concept
whose signature lies within ``merge_tolerance`` of an entry's replaces that entry (the newer
weights learned the same concept for longer) and adds up their uses; otherwise it takes a free
slot or evicts the least used entry (the oldest among equals). Entries live in tensors
preallocated for ``capacity`` concepts, so the memory's size in bytes is fixed from the start.

>>> import torch
>>> from streammeta.learn.model import MLP, FunctionalModel, Regression
>>> model = FunctionalModel(MLP(1, 1, hidden=(8,)), Regression())
>>> gen = torch.Generator().manual_seed(0)
>>> memory = ConceptMemory(model, model.init_params(gen), {}, capacity=2)
>>> a, b = model.init_params(gen), model.init_params(gen)
>>> memory.store(a, {}, now=1)
>>> memory.store(a, {}, now=2)  # the same concept again: merged
>>> memory.store(b, {}, now=3)
>>> len(memory), memory.uses.tolist()
(2, [2, 1])
>>> x = torch.linspace(-1, 1, 8)[:, None]
>>> slot, _ = memory.best(x, model(b, x).squeeze(-1))
>>> slot
1
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.func import vmap

from streammeta.learn.model import FunctionalModel, Params
from streammeta.learn.optim import State

__all__ = ["ConceptMemory"]

#: probe inputs of a signature: standard normal features, drawn once
_PROBES = 32


class ConceptMemory:
    """At most ``capacity`` concepts, each a task's fast weights and inner optimizer state.

    ``merge_tolerance`` is the root mean square difference of two signatures (outputs in the
    model's units: standardized targets, or class probabilities) under which they are one
    concept.
    """

    def __init__(
        self,
        model: FunctionalModel,
        params: Params,
        state: State,
        *,
        capacity: int,
        merge_tolerance: float = 0.05,
        seed: int = 0,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity={capacity!r}: must be at least 1")
        self.model = model
        self.capacity = capacity
        self.merge_tolerance = merge_tolerance
        device = next(iter(params.values())).device
        gen = torch.Generator().manual_seed(seed)
        self._probes = torch.randn(_PROBES, model.n_in, generator=gen).to(device)
        self._forward = vmap(model, in_dims=(0, None))
        self.params: Params = {k: v.new_zeros(capacity, *v.shape) for k, v in params.items()}
        self.state: State = {k: v.new_zeros(capacity, *v.shape) for k, v in state.items()}
        self.signature = torch.zeros(capacity, _PROBES * model.head.n_out, device=device)
        self.uses = torch.zeros(capacity, dtype=torch.long)
        self.stored_at = torch.zeros(capacity, dtype=torch.long)
        self.valid = torch.zeros(capacity, dtype=torch.bool)
        self.merges = 0

    def __len__(self) -> int:
        return int(self.valid.sum())

    @property
    def nbytes(self) -> int:
        """Bytes the entries take (fixed: allocated for ``capacity``)."""
        tensors = [*self.params.values(), *self.state.values(), self.signature]
        return sum(t.numel() * t.element_size() for t in tensors)

    def _sign(self, params: Params) -> Tensor:
        with torch.no_grad():
            out = self.model(params, self._probes)
            if out.shape[-1] > 1:  # classification: what it predicts, as probabilities
                out = torch.softmax(out, -1)
        return out.flatten()

    def store(
        self,
        params: Params,
        state: State,
        *,
        now: int,
        into: int | None = None,
        recalled_at: int = 0,
    ) -> None:
        """Keep a closed task's concept (``now``: a clock, e.g. labelled records so far).
        ``into``: the slot it was recalled from at ``recalled_at``, which it replaces (the same
        concept, learned further) unless another concept took that slot since."""
        signature = self._sign(params)
        if into is not None and bool(self.valid[into]) and self.stored_at[into] <= recalled_at:
            slot, merged = into, True
        else:
            slot, merged = self._slot_for(signature)
        self.merges += merged
        uses = int(self.uses[slot]) if merged else 0
        for k, v in params.items():
            self.params[k][slot] = v.detach()
        for k, v in state.items():
            self.state[k][slot] = v.detach()
        self.signature[slot] = signature
        self.uses[slot] = uses + 1
        self.stored_at[slot] = now
        self.valid[slot] = True

    def _slot_for(self, signature: Tensor) -> tuple[int, bool]:
        """The slot a new concept goes to, and whether it merges with the concept there."""
        if self.valid.any():
            distance = (self.signature - signature).pow(2).mean(1).sqrt()
            distance = torch.where(self.valid.to(distance.device), distance, torch.inf)
            nearest = int(distance.argmin())
            if float(distance[nearest]) < self.merge_tolerance:
                return nearest, True
        free = torch.nonzero(~self.valid).flatten()
        if len(free):
            return int(free[0]), False
        # least used, then oldest: uses first, the store time breaks ties
        rank = self.uses * (int(self.stored_at.max()) + 1) + self.stored_at
        return int(rank.argmin()), False

    def best(self, x: Tensor, y: Tensor) -> tuple[int, float]:
        """The stored concept with the lowest mean loss on ``x, y`` (model units) and that loss;
        ``(-1, inf)`` when the memory is empty."""
        if not self.valid.any():
            return -1, float("inf")
        with torch.no_grad():
            out = self._forward(self.params, x)  # [capacity, n, n_out]
            losses = vmap(self.model.head.loss, in_dims=(0, None))(out, y).mean(1)
        losses = torch.where(self.valid.to(losses.device), losses, torch.inf)
        slot = int(losses.argmin())
        return slot, float(losses[slot])

    def recall(self, slot: int) -> tuple[Params, State]:
        """The concept in ``slot`` (copies), counted as used."""
        self.uses[slot] += 1
        return (
            {k: v[slot].clone() for k, v in self.params.items()},
            {k: v[slot].clone() for k, v in self.state.items()},
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "state": self.state,
            "signature": self.signature,
            "uses": self.uses,
            "stored_at": self.stored_at,
            "valid": self.valid,
            "merges": self.merges,
        }

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        device = self.signature.device
        self.params = {k: v.to(device) for k, v in saved["params"].items()}
        self.state = {k: v.to(device) for k, v in saved["state"].items()}
        self.signature = saved["signature"].to(device)
        self.uses, self.stored_at = saved["uses"].cpu(), saved["stored_at"].cpu()
        self.valid = saved["valid"].cpu()
        self.merges = int(saved["merges"])
