"""The slots of a bank of fast learners: each member's weights and optimizer state, stacked over
the slots so that the bank steps and predicts vmapped, and where and when each member joined.

>>> import torch
>>> members = Members({"w": torch.zeros(2)}, {"t": torch.zeros(())}, capacity=3)
>>> members.put(1, {"w": torch.ones(2)}, {"t": torch.ones(())}, FRESH, born=40)
>>> members.origin, members.get(1)[0]["w"].tolist(), members.alive("cpu").tolist()
(['', 'fresh', ''], [1.0, 1.0], [False, True, False])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from streammeta.learn.model import Params
from streammeta.learn.optim import State

__all__ = ["DEAD", "FRESH", "LONG", "ORIGINS", "RECALLED", "Members"]

#: where a member came from; the index is the ``leader_origin`` figure
ORIGINS = ("long_lived", "fresh", "recalled")
LONG, FRESH, RECALLED = ORIGINS
DEAD = ""  # the origin of an empty slot


class Members:
    """``capacity`` slots shaped like ``params`` and ``state`` (one member's), empty at first.

    Per slot: ``origin`` (``DEAD`` when empty), ``born`` (the bank's clock when it joined),
    ``led`` (whether it ever had the lowest score), ``owner_then`` (the owner's score when it
    joined) and ``source`` (the memory slot a recalled member came from, else -1).
    """

    def __init__(self, params: Params, state: State, *, capacity: int) -> None:
        m = self.capacity = capacity
        self.params: Params = {k: v.new_zeros(m, *v.shape) for k, v in params.items()}
        self.state: State = {k: v.new_zeros(m, *v.shape) for k, v in state.items()}
        self.origin = [DEAD] * m
        self.born = [0] * m
        self.led = [False] * m
        self.owner_then = [0.0] * m
        self.source = [-1] * m

    def put(self, slot: int, params: Params, state: State, origin: str, *, born: int) -> None:
        """A member joins ``slot`` (its ``owner_then`` is the caller's to set)."""
        for k, v in params.items():
            self.params[k][slot] = v.detach()
        for k, v in state.items():
            self.state[k][slot] = v.detach()
        self.origin[slot], self.born[slot], self.led[slot] = origin, born, False

    def get(self, slot: int) -> tuple[Params, State]:
        """The weights and optimizer state of the member in ``slot``."""
        return (
            {k: v[slot] for k, v in self.params.items()},
            {k: v[slot] for k, v in self.state.items()},
        )

    def alive(self, device: torch.device | str) -> Tensor:
        """Which slots hold a member."""
        return torch.tensor([o != DEAD for o in self.origin], device=device)

    def retire_all_but_long_lived(self) -> None:
        self.origin = [LONG] + [DEAD] * (self.capacity - 1)

    def state_dict(self) -> dict[str, Any]:
        """The slots' part of the bank's snapshot (not copied)."""
        return {
            "params": self.params,
            "state": self.state,
            "origin": list(self.origin),
            "born": list(self.born),
            "led": list(self.led),
            "owner_then": list(self.owner_then),
            "source": list(self.source),
        }

    def load_state_dict(self, saved: dict[str, Any], device: torch.device) -> None:
        self.params = {k: v.to(device) for k, v in saved["params"].items()}
        self.state = {k: v.to(device) for k, v in saved["state"].items()}
        self.origin, self.born, self.led = saved["origin"], saved["born"], saved["led"]
        self.owner_then, self.source = saved["owner_then"], saved["source"]
