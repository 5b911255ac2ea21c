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

Each member carries a score, the exponentially weighted mean of its own per-record loss over
about ``mix_horizon`` labelled records (in the model's units, so scale-free; a member that joins
late starts with its loss on the latest records, so no member is favoured for having less
history). A record is predicted by the members' mixture (Hedge, exponentially weighted
averaging), each weighted ``exp(-mix_horizon * score / s)``: for classifiers ``s`` is 1 and the
class probabilities are mixed, which makes the weights a discounted Bayesian posterior on the
log loss; for regression ``s`` is twice the best member's score, a Gaussian likelihood at the
noise level the best member reaches, so a member twice as far off as the best weighs
``e^-(mix_horizon / 2)`` of it whatever the units. ``mix="leader"`` predicts with the member of
lowest score alone. Scores move only with labels the prediction did not see (prequential).

**Segmentation follows from the bank.** A boundary opens where a member started at a candidate
since the current task opened (fresh or recalled) leads for ``confirm`` labelled records in a
row: the task that closes goes to meta-training (as every closed task does) and its owner's fast
weights to the concept memory. When an older member takes the lead back, no task opens. An
explicit boundary (a changed ``task`` field) is certain: the members but the long-lived one
retire, a fresh member owns the new task, and recall follows ``support_size`` records later;
the long-lived member starts ``_TOLD_PRIOR`` nats of log-weight behind the fresh one, so it
predicts only once the new task's records show it better.

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
from streammeta.learn.learner import MetaLearner
from streammeta.learn.memory import ConceptMemory
from streammeta.learn.model import Classification, FunctionalModel, Params
from streammeta.learn.optim import State

__all__ = ["MIXES", "ORIGINS", "BankLearner"]

#: how the members' predictions become one
MIXES = ("hedge", "leader")
#: where a member came from; the index is the ``leader_origin`` figure
ORIGINS = ("long_lived", "fresh", "recalled")
_LONG, _FRESH, _RECALLED = ORIGINS
_DEAD = ""
#: a floor under a loss in the model's units (a perfect fit): the noise level of regression
#: targets, and the level a rise is measured from
_MIN_LOSS = 1e-4
#: how much better than every member a concept from memory must predict the latest records
_RECALL_MARGIN = 2.0
#: the fewest records a concept from memory is judged on
_RECALL_RECORDS = 5
#: after an explicit boundary, the log-weight the members other than the new task's fresh
#: owner start behind by: the evidence (in nats) it takes to overturn a switch the records told
_TOLD_PRIOR = 3.0
#: how far the owner's score must have risen since a newcomer started for the newcomer's lead
#: to open a task (the factor of the loss-jump test's default margin)
_SWITCH_RISE = 3.0


class BankLearner(MetaLearner):
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
        if mix not in MIXES:
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
        self._bank: Params = {k: v.new_zeros(m, *v.shape) for k, v in self._fast.items()}
        self._bank_state: State = {k: v.new_zeros(m, *v.shape) for k, v in self._state.items()}
        # exponentially weighted sums of each member's losses and of the weights themselves:
        # the score is their ratio, a mean that does not favour members with less history
        self._loss_sum = torch.zeros(m, device=self.device)
        self._loss_mass = torch.zeros(m, device=self.device)
        self._origin = [_DEAD] * m
        self._born = [0] * m  # the clock when the member joined
        self._led = [False] * m  # whether it ever had the lowest score
        self._owner_then = [0.0] * m  # the owner's score when the member joined
        self._prior = torch.zeros(m, device=self.device)  # log-weights before any evidence
        self._owner = 0  # the member the current task belongs to
        self._challenger, self._challenge = -1, 0  # a member leading the owner, for how long
        self._clock = 0  # labelled records so far
        self._task_opened = -1  # the clock when the current task opened
        self._since_spawn = 0
        # the latest labelled records judge the memory's concepts: a step's, and at least
        # _RECALL_RECORDS (the best of many concepts on one or two records is luck)
        self._window = max(self.support_size, _RECALL_RECORDS)
        self._recall_due = self._window  # the clock of the next look into the memory
        self._source = [-1] * m  # the memory slot a recalled member came from
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
        self._place(0, self._fast, self._state, _LONG, score=0.0)

    def _place(self, slot: int, params: Params, state: State, origin: str, score: float) -> None:
        for k, v in params.items():
            self._bank[k][slot] = v.detach()
        for k, v in state.items():
            self._bank_state[k][slot] = v.detach()
        mass = self._loss_mass[self._owner] if self._origin[self._owner] != _DEAD else 0.0
        self._loss_mass[slot] = mass  # as if it had predicted the owner's history that well
        self._loss_sum[slot] = score * mass
        self._origin[slot], self._born[slot], self._led[slot] = origin, self._clock, False
        self._owner_then[slot] = float(self._score[self._owner]) if mass else 0.0
        self._prior[slot] = 0.0
        self._source[slot] = -1

    def _member(self, slot: int) -> tuple[Params, State]:
        return (
            {k: v[slot] for k, v in self._bank.items()},
            {k: v[slot] for k, v in self._bank_state.items()},
        )

    def _task_state(self) -> State:
        """The inner optimizer's state a member started from the initialization takes over (its
        second moments): that of the last such member whose task closed, as a single learner
        carries it from task to task; the long-lived member's until one has."""
        return self._state

    @property
    def _score(self) -> Tensor:
        """Each member's recent mean loss (0 without evidence yet; inf for empty slots)."""
        mean = torch.where(self._loss_mass > 0, self._loss_sum / self._loss_mass, 0.0)
        return torch.where(self._alive, mean.nan_to_num(math.inf), math.inf)

    @property
    def _alive(self) -> Tensor:
        return torch.tensor([o != _DEAD for o in self._origin], device=self.device)

    def _logits(self) -> Tensor:
        """The members' log-weights, up to a constant (-inf for empty slots)."""
        score = self._score
        if not isinstance(self.model.head, Classification):  # the noise level: the best's
            score = score / (2 * score.min().clamp_min(_MIN_LOSS))
        logits = self._prior - self.mix_horizon * score
        if not torch.isfinite(logits).any():  # every member diverged: trust the long-lived one
            first = torch.arange(self.capacity, device=self.device) == 0
            logits = torch.where(first, 0.0, -math.inf)
        return logits

    def _leader(self) -> int:
        return int(self._logits().argmax())

    def _weights(self) -> Tensor:
        """The members' weights in the next prediction (0 for empty slots)."""
        if self.mix == "leader":
            one = torch.nn.functional.one_hot(torch.tensor(self._leader()), self.capacity)
            return one.to(self._prior)
        return torch.softmax(self._logits(), 0)

    def _mixed(self, outs: Tensor) -> Tensor:
        """One output per record from the members' ``[members, n, n_out]``: the weighted mean
        of regression outputs, the log of the weighted mean of class probabilities."""
        w = self._weights()[:, None, None]
        if isinstance(self.model.head, Classification):
            return torch.log((w * torch.softmax(outs, -1)).sum(0).clamp_min(1e-12))
        return (w * outs).sum(0)

    # -- prediction and learning -------------------------------------------------------------

    @torch.no_grad()
    def _predict(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor]:
        out = self._mixed(self._forward_bank(self._bank, x.to(self.device, non_blocking=True)))
        if y is None:
            return out, torch.full((x.shape[0],), math.nan, device=self.device)
        return out, self.model.head.loss(out, y.to(self.device, non_blocking=True))

    def _step(self, x: Tensor, y: Tensor | None, labelled: Tensor | None) -> None:
        x = x.to(self.device, non_blocking=True)
        with torch.no_grad():
            outs = self._forward_bank(self._bank, x)
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
        self._score_members(self._member_loss(outs, y)[:, finite])
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
        self._bank, self._bank_state, _ = self._step_bank(self._bank, self._bank_state, x, y)

    def _anchor_source(self) -> Params:
        return self._member(0)[0]  # the long-lived member: it never restarts

    def _score_members(self, losses: Tensor) -> None:
        """Fold ``[members, n]`` per-record losses into the scores, in order."""
        n = losses.shape[1]
        if n == 0:
            return
        keep = 1.0 - 1.0 / self.mix_horizon
        decay = keep ** torch.arange(n - 1, -1, -1, device=self.device, dtype=losses.dtype)
        self._loss_sum = keep**n * self._loss_sum + (decay * losses).sum(1)
        self._loss_mass = keep**n * self._loss_mass + decay.sum()

    def _follow_leader(self, n: int) -> None:
        """Hand the task to a member that has led the owner for ``confirm`` records."""
        leader = self._leader()
        if self._origin[leader] == _RECALLED and not self._led[leader]:
            self.counts["recall_hits"] += 1
        self._led[leader] = True
        if leader == self._owner:
            self._challenger, self._challenge = -1, 0
            return
        if leader != self._challenger:
            self._challenger, self._challenge = leader, 0
        self._challenge += n
        if self._challenge < self.confirm:
            return
        if self._switched(leader):
            self._close_task()
            self._opened.append(self._offset)
            self.counts["boundaries_bank"] += 1
        self._owner = leader
        self._challenger, self._challenge = -1, 0

    def _switched(self, leader: int) -> bool:
        """Whether the owner's loss of the lead to ``leader`` is a switch: the leader started
        from the initialization or memory since the task opened, and the owner's score has
        risen by a factor of ``_SWITCH_RISE`` since then (else the newcomer merely learned the
        same concept better, and takes it over without a boundary)."""
        return (
            self._origin[leader] != _LONG
            and self._born[leader] > self._task_opened
            and float(self._score[self._owner])
            > _SWITCH_RISE * max(self._owner_then[leader], _MIN_LOSS)
        )

    def _close_task(self) -> None:
        """The current task ends: to meta-training, and its owner's weights to memory."""
        self.trainer.end_task()
        self._task_opened = self._clock
        started = self._state.get("t")
        if self._origin[self._owner] != _LONG or (started is not None and int(started) == 0):
            self._state = {k: v.clone() for k, v in self._member(self._owner)[1].items()}
        if self.memory is not None and self._clock > self._born[self._owner]:
            source = self._source[self._owner]  # a recalled concept, learned further
            self.memory.store(
                *self._member(self._owner),
                now=self._clock,
                into=source if source >= 0 else None,
                recalled_at=self._born[self._owner],
            )

    def _free_slot(self, keep: tuple[int, ...] = ()) -> int:
        """An empty slot, or the slot of the member retired for a new one: the one with the
        highest score among those older than ``confirm`` records (any, if none is), never the
        long-lived member, the owner, the leader or ``keep``."""
        if _DEAD in self._origin:
            return self._origin.index(_DEAD)
        spared = {0, self._owner, self._leader(), *keep}
        others = [s for s in range(self.capacity) if s not in spared]
        if not others:
            others = [s for s in range(1, self.capacity) if s not in keep]
        old = [s for s in others if self._clock - self._born[s] >= self.confirm] or others
        slot = max(old, key=lambda s: float(self._score[s]))
        self.counts["retired"] += 1
        return slot

    def _window_loss(self, params: Params) -> float:
        with torch.no_grad():
            return float(self.model.loss(params, self._recent_x, self._recent_y))

    def _spawn(self) -> int:
        """A fresh member from the meta-learned initialization; recall follows later. A fresh
        member younger than one step is started again in place (a second one would be its
        copy)."""
        self._since_spawn = 0
        young = [
            s
            for s, origin in enumerate(self._origin)
            if origin == _FRESH and self._clock - self._born[s] < self.support_size
        ]
        slot = young[0] if young else self._free_slot()
        init = self.meta.init_params()
        state = self.inner.restart(self._task_state())
        score = self._window_loss(init) if len(self._recent_y) else float(self._score[self._owner])
        self._place(slot, init, state, _FRESH, score)
        return slot

    def _switch_suspected(self) -> None:
        """Records before a suspected switch no longer judge the members or pick a concept to
        recall: every member is judged afresh on the records that follow, and the memory is
        searched once half a step of them (at least ``_RECALL_RECORDS``) has come."""
        self._loss_sum.zero_()
        self._loss_mass.zero_()
        self._recent_x, self._recent_y = self._recent_x[:0], self._recent_y[:0]
        self._recall_due = self._clock + max(_RECALL_RECORDS, self.support_size // 2)

    def records_to_step(self) -> int:
        """Labelled records until the bank's predictions next change: its next inner step, or
        its next look into the memory."""
        step = super().records_to_step()
        if self.memory is None:
            return step
        return max(1, min(step, self._recall_due - self._clock))

    def _recall(self) -> None:
        """The stored concept that best predicts the latest records joins, if its loss on them
        is ``_RECALL_MARGIN`` times below every member's (it was picked as the best of many on
        few records, which flatters it; a concept that comes back beats members that learned
        others by far more)."""
        self._recall_due = self._clock + self._window
        if self.memory is None or not len(self._recent_y):
            return
        slot, loss = self.memory.best(self._recent_x, self._recent_y)
        with torch.no_grad():
            outs = self._forward_bank(self._bank, self._recent_x)
            members = self._member_loss(outs, self._recent_y).mean(1)
        best_member = float(torch.where(self._alive, members, torch.inf).min())
        if slot < 0 or not _RECALL_MARGIN * loss < best_member:
            return
        params, state = self.memory.recall(slot)
        into = self._free_slot()
        self._place(into, params, self.inner.restart(state), _RECALLED, loss)
        self._source[into] = slot
        self.counts["recalls"] += 1

    def _candidate(self) -> None:
        """A detector suspects a switch: a fresh member joins, every member is judged afresh on
        the records that follow (the evidence before the candidate may no longer apply; after a
        false alarm the members that were good are good again at once), and meta-training's
        task ends there (a false alarm splits a task in two, which costs it little; a missed
        switch would mix two concepts in one)."""
        self.counts["candidates_detector"] += 1
        self.trainer.end_task()  # meta-training's tasks end at every suspected switch
        self._spawn()
        self._switch_suspected()

    def begin_task(self) -> None:
        """An explicit boundary: certain, so only the long-lived member stays and a fresh one
        owns the new task; the two start level."""
        if not hasattr(self, "_bank"):  # from MetaLearner.__init__: the bank is not built yet
            super().begin_task()
            return
        self._close_task()
        self.counts["boundaries_explicit"] += 1
        self._origin = [_LONG] + [_DEAD] * (self.capacity - 1)
        self._owner = self._spawn()
        self._switch_suspected()  # no evidence yet on the new task
        self._prior.fill_(-_TOLD_PRIOR)  # but the records said the concept changed
        self._prior[self._owner] = 0.0
        self._challenger, self._challenge = -1, 0
        self._pending_x, self._pending_y = self._pending_x[:0], self._pending_y[:0]

    def _leader_origin(self) -> int:
        return ORIGINS.index(self._origin[self._leader()])

    def describe(self) -> dict[str, float]:
        leader = self._leader()
        w = self._weights()
        entropy = -float((w * w.clamp_min(1e-12).log()).sum())
        return {
            **super().describe(),
            "members_alive": float(self._alive.sum()),
            "leader_age": float(self._clock - self._born[leader]),
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
                "params": self._bank,
                "state": self._bank_state,
                "loss": [self._loss_sum, self._loss_mass, self._prior],
                "origin": list(self._origin),
                "born": list(self._born),
                "led": list(self._led),
                "owner_then": list(self._owner_then),
                "source": list(self._source),
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
        self._bank = {k: v.to(self.device) for k, v in bank["params"].items()}
        self._bank_state = {k: v.to(self.device) for k, v in bank["state"].items()}
        self._loss_sum, self._loss_mass, self._prior = (v.to(self.device) for v in bank["loss"])
        self._origin, self._born, self._led = bank["origin"], bank["born"], bank["led"]
        self._owner_then, self._source = bank["owner_then"], bank["source"]
        self._owner = int(bank["owner"])
        self._challenger, self._challenge = bank["challenge"]
        self._clock, self._since_spawn, self._recall_due, self._task_opened = bank["clock"]
        self._recent_x, self._recent_y = (v.to(self.device) for v in bank["recent"])
        self.counts = bank["counts"]
        if self.memory is not None and bank["memory"] is not None:
            self.memory.load_state_dict(bank["memory"])
