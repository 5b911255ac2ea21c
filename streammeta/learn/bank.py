"""A bank of fast learners mixed by how well each predicts now, with a memory of past concepts.

One hard decision per switch (reset the fast weights or not) makes a learner fragile: a missed
switch leaves stale weights, a false alarm throws good ones away. The bank keeps several
fast-weight learners (members) and steps them together, vmapped over the bank:

- a **long-lived** member (slot 0) that never restarts: online Adam from the meta-learned
  initialization, the safety net of a stream without drift or of a false alarm;
- **fresh** members, started from the meta-learned initialization at every switch candidate (a
  detector firing) and every ``spawn_every`` labelled records, so a missed switch costs at most
  that many records;
- **recalled** members: at every candidate, once ``support_size`` labelled records followed it,
  the stored concept with the lowest loss on them joins, if it beats every member there.

Each member carries a score, its recent mean loss, and the members' predictions are mixed by
those scores (Hedge, or the leader alone): see :mod:`streammeta.learn.mixture`.

When a task opens, which member joins or retires, and what the memory recalls: see
:mod:`streammeta.learn.switching`.

>>> import torch
>>> from streammeta.learn.model import MLP, FunctionalModel, Regression
>>> model = FunctionalModel(MLP(1, 1, hidden=(16,)), Regression())
>>> bank = BankLearner(model, bank_size=3, spawn_every=20, support_size=5, seed=0)
>>> x = torch.linspace(-1, 1, 20)[:, None]
>>> for _ in range(4):
...     bank.update(x, 2 * x[:, 0])
>>> bank.update(x, -2 * x[:, 0], candidates=[0])  # a detector suspects a switch
>>> figures = bank.describe()
>>> figures["members_alive"], figures["candidates_detector"], figures["candidates_schedule"]
(3.0, 1.0, 5.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor
from torch.func import vmap

from streammeta.learn.inner import finite_records, inner_step
from streammeta.learn.members import LONG, ORIGINS, Members
from streammeta.learn.memory import ConceptMemory
from streammeta.learn.mixture import MIXES, Mixture
from streammeta.learn.model import Classification, FunctionalModel, Params
from streammeta.learn.optim import State
from streammeta.learn.switching import RECALL_RECORDS, BankSwitching

__all__ = ["BankLearner"]


class BankLearner(BankSwitching):
    """The meta-learner with a bank of ``bank_size`` fast learners and a concept memory of
    ``memory_size`` entries (0: none); see the module's description."""

    decides_boundaries = True

    def __init__(
        self,
        model: FunctionalModel,
        *,
        bank_size: int = 4,
        memory_size: int = 32,
        spawn_every: int = 100,
        mix: Literal["hedge", "leader"] = "hedge",
        mix_horizon: int = 20,
        confirm: int = 30,
        **options: Any,
    ) -> None:
        """``spawn_every``: labelled records between scheduled fresh members (0: none);
        ``confirm``: labelled records a new member must lead in a row to open a task;
        ``options``: the meta-learner's (:class:`~streammeta.learn.learner.MetaLearner`)."""
        if bank_size < 2:
            raise ValueError(f"bank_size={bank_size!r}: a bank needs at least 2 members")
        if mix not in MIXES:  # checked before the meta-learner is built
            raise ValueError(f"mix {mix!r}: must be one of {', '.join(map(repr, MIXES))}")
        if min(mix_horizon, confirm) < 1 or min(memory_size, spawn_every) < 0:
            raise ValueError(
                f"mix_horizon={mix_horizon!r}, confirm={confirm!r}, memory_size={memory_size!r}, "
                f"spawn_every={spawn_every!r}: need mix_horizon, confirm >= 1 and the others >= 0"
            )
        self.capacity = bank_size
        self.memory_size = memory_size
        self.spawn_every = spawn_every
        self.mix = mix
        self.mix_horizon = mix_horizon
        self.confirm = confirm
        super().__init__(model, **options)
        self._forward_bank: Callable[[Params, Tensor], Tensor] = vmap(model, in_dims=(0, None))
        self._member_loss: Callable[[Tensor, Tensor], Tensor] = vmap(
            model.head.loss, in_dims=(0, None)
        )
        inner = self.inner
        self._step_bank = vmap(  # under the no_grad of FastWeightLearner._learn_chunks
            lambda p, s, x, y: inner_step(model, inner, p, s, x, y), in_dims=(0, 0, None, None)
        )
        self.memory = (
            ConceptMemory(model, self._fast, self._state, capacity=memory_size, seed=self.seed)
            if memory_size
            else None
        )
        self._reset_bank()

    # -- the bank's state --------------------------------------------------------------------

    def _reset_bank(self) -> None:
        m = self.capacity
        self.members = Members(self._fast, self._state, capacity=m)
        self.mixture = Mixture(
            m,
            mix=self.mix,
            mix_horizon=self.mix_horizon,
            classification=isinstance(self.model.head, Classification),
            device=self.device,
        )
        self._owner = 0  # the member the current task belongs to
        self._challenger, self._challenge = -1, 0  # a member leading the owner, for how long
        self._clock = 0  # labelled records so far
        self._task_opened = -1  # the clock when the current task opened
        self._since_spawn = 0
        # the latest labelled records judge the memory's concepts: a step's, and at least
        # RECALL_RECORDS (the best of many concepts on one or two records is luck)
        self._window = max(self.support_size, RECALL_RECORDS)
        self._recall_due = self._window  # the clock of the next look into the memory
        self._recent_x = self._pending_x[:0]
        self._recent_y = self._pending_y[:0]
        self.counts = dict.fromkeys(
            (
                "candidates_detector",
                "candidates_schedule",
                "boundaries_bank",
                "boundaries_explicit",
                "recalls",
                "recall_hits",
                "retired",
            ),
            0,
        )
        self._place(0, self._fast, self._state, LONG, score=0.0)

    def _mixed(self, outs: Tensor) -> Tensor:
        return self.mixture.mixed(outs, self.members.alive(self.device))

    @property
    def fast_weights(self) -> Params:
        """The members' weights, stacked over the bank's slots (read-only)."""
        return dict(self.members.params)

    @property
    def fast_moments(self) -> State:
        """The inner optimizer's state of the members, stacked likewise (read-only)."""
        return dict(self.members.state)

    @property
    def member_scores(self) -> Tensor:
        """Each slot's recent mean loss (inf for an empty slot), a copy."""
        return self._score.clone()

    @property
    def member_weights(self) -> Tensor:
        """Each slot's weight in the next prediction (0 for an empty slot)."""
        return self.mixture.weights(self.members.alive(self.device))

    # -- prediction and learning -------------------------------------------------------------

    @torch.no_grad()
    def _predict(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor]:
        out = self._mixed(
            self._forward_bank(self.members.params, x.to(self.device, non_blocking=True))
        )
        if y is None:
            return out, torch.full((x.shape[0],), math.nan, device=self.device)
        return out, self.model.head.loss(out, y.to(self.device, non_blocking=True))

    def _step(self, x: Tensor, y: Tensor | None, labelled: Tensor | None) -> None:
        x = x.to(self.device, non_blocking=True)
        with torch.no_grad():
            outs = self._forward_bank(self.members.params, x)
            self._out = self._mixed(outs)
        if y is None:
            self._loss = torch.full((x.shape[0],), math.nan, device=self.device)
            return
        y = y.to(self.device, non_blocking=True)
        self._loss = self.model.head.loss(self._out, y)
        if labelled is not None:  # placeholders of unlabelled rows stay out of learning
            labelled = labelled.to(self.device, non_blocking=True)
            self._loss = torch.where(labelled, self._loss, torch.nan)
            x, y, outs = x[labelled], y[labelled], outs[:, labelled]
        n = x.shape[0]
        if n == 0:
            return
        finite = finite_records(x, y)
        self.mixture.fold(self._member_loss(outs, y)[:, finite])
        self._recent_x = torch.cat([self._recent_x, x[finite]])[-self._window :]
        self._recent_y = torch.cat([self._recent_y, y[finite]])[-self._window :]
        self._learn_chunks(x, y, self._clock)
        self._clock += n
        self._since_spawn += n
        self._follow_leader(n)
        if self.memory is not None and self._clock >= self._recall_due:
            self._recall()
        if self.spawn_every and self._since_spawn >= self.spawn_every:
            self.counts["candidates_schedule"] += 1
            self._spawn()
        self._learned(x[finite], y[finite], n)

    def _inner_chunk(self, x: Tensor, y: Tensor) -> None:
        members = self.members
        members.params, members.state, _ = self._step_bank(members.params, members.state, x, y)

    def _anchor_source(self) -> Params:
        return self.members.get(0)[0]  # the long-lived member: it never restarts

    def _leader_origin(self) -> int:
        return ORIGINS.index(self.members.origin[self._leader()])

    def describe(self) -> dict[str, float]:
        leader = self._leader()
        w = self.member_weights
        entropy = -float((w * w.clamp_min(1e-12).log()).sum())
        return {
            **super().describe(),
            "members_alive": float(self.members.alive(self.device).sum()),
            "leader_age": float(self._clock - self.members.born[leader]),
            "leader_origin": float(self._leader_origin()),
            "mixture_entropy": entropy,
            "memory_size": float(len(self.memory)) if self.memory is not None else 0.0,
            "memory_bytes": float(self.memory.nbytes) if self.memory is not None else 0.0,
            **{k: float(v) for k, v in self.counts.items()},
        }

    def _state_dict(self) -> dict[str, Any]:
        return {
            **super()._state_dict(),
            "bank": {
                **self.members.state_dict(),
                "loss": self.mixture.state(),
                "owner": self._owner,
                "challenge": [self._challenger, self._challenge],
                "clock": [self._clock, self._since_spawn, self._recall_due, self._task_opened],
                "recent": [self._recent_x, self._recent_y],
                "counts": dict(self.counts),
                "memory": self.memory.state_dict() if self.memory is not None else None,
            },
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        super()._load_state(state)
        bank = state["bank"]
        self.members.load_state_dict(bank, self.device)
        self.mixture.load(bank["loss"])
        self._owner = int(bank["owner"])
        self._challenger, self._challenge = bank["challenge"]
        self._clock, self._since_spawn, self._recall_due, self._task_opened = bank["clock"]
        self._recent_x, self._recent_y = (v.to(self.device) for v in bank["recent"])
        self.counts = bank["counts"]
        if self.memory is not None and bank["memory"] is not None:
            self.memory.load_state_dict(bank["memory"])
