"""How a bank of fast learners follows the stream: members join (fresh at switch candidates and
on a schedule, recalled from the concept memory), retire, and hand the task over.

**Segmentation follows from the bank.** A boundary opens where a member started at a candidate
since the current task opened (fresh or recalled) leads for ``confirm`` labelled records in a
row: the task that closes goes to meta-training (as every closed task does) and its owner's fast
weights to the concept memory. When an older member takes the lead back, no task opens. An
explicit boundary (a changed ``task`` field) is certain: the members but the long-lived one
retire, a fresh member owns the new task, and recall follows ``support_size`` records later;
the long-lived member starts ``_TOLD_PRIOR`` nats of log-weight behind the fresh one, so it
predicts only once the new task's records show it better.

The bank itself (members stepped and mixed, its snapshot) is
:class:`streammeta.learn.bank.BankLearner`, built on :class:`BankSwitching`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from streammeta.learn.learner import MetaLearner
from streammeta.learn.members import DEAD, FRESH, LONG, RECALLED, Members
from streammeta.learn.memory import ConceptMemory
from streammeta.learn.mixture import MIN_LOSS, Mixture
from streammeta.learn.model import Params
from streammeta.learn.optim import State

__all__ = ["RECALL_RECORDS", "BankSwitching"]

#: how much better than every member a concept from memory must predict the latest records
_RECALL_MARGIN = 2.0
#: the fewest records a concept from memory is judged on
RECALL_RECORDS = 5
#: after an explicit boundary, the log-weight the members other than the new task's fresh
#: owner start behind by: the evidence (in nats) it takes to overturn a switch the records told
_TOLD_PRIOR = 3.0
#: how far the owner's score must have risen since a newcomer started for the newcomer's lead
#: to open a task (the factor of the loss-jump test's default margin)
_SWITCH_RISE = 3.0


class BankSwitching(MetaLearner):
    """The bank's decisions on its members and tasks; :class:`~streammeta.learn.bank.BankLearner`
    holds the state they read and write."""

    capacity: int
    spawn_every: int
    confirm: int
    members: Members
    mixture: Mixture
    memory: ConceptMemory | None
    counts: dict[str, int]
    _forward_bank: Callable[[Params, Tensor], Tensor]
    _member_loss: Callable[[Tensor, Tensor], Tensor]
    _owner: int
    _challenger: int
    _challenge: int
    _clock: int
    _task_opened: int
    _since_spawn: int
    _window: int
    _recall_due: int
    _recent_x: Tensor
    _recent_y: Tensor

    def _place(self, slot: int, params: Params, state: State, origin: str, score: float) -> None:
        members, owner = self.members, self._owner
        mass = self.mixture.loss_mass[owner] if members.origin[owner] != DEAD else 0.0
        members.put(slot, params, state, origin, born=self._clock)
        self.mixture.join(slot, score, mass)  # as if it had predicted the owner's history so
        members.owner_then[slot] = float(self._score[owner]) if mass else 0.0
        members.source[slot] = -1

    def _task_state(self) -> State:
        """The inner optimizer's state a member started from the initialization takes over (its
        second moments): that of the last such member whose task closed, as a single learner
        carries it from task to task; the long-lived member's until one has."""
        return self._state

    @property
    def _score(self) -> Tensor:
        return self.mixture.scores(self.members.alive(self.device))

    def _leader(self) -> int:
        return self.mixture.leader(self.members.alive(self.device))

    def _follow_leader(self, n: int) -> None:
        """Hand the task to a member that has led the owner for ``confirm`` records."""
        leader = self._leader()
        if self.members.origin[leader] == RECALLED and not self.members.led[leader]:
            self.counts["recall_hits"] += 1
        self.members.led[leader] = True
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
            self.members.origin[leader] != LONG
            and self.members.born[leader] > self._task_opened
            and float(self._score[self._owner])
            > _SWITCH_RISE * max(self.members.owner_then[leader], MIN_LOSS)
        )

    def _close_task(self) -> None:
        """The current task ends: to meta-training, and its owner's weights to memory."""
        self.trainer.end_task()
        self._task_opened = self._clock
        started = self._state.get("t")
        if self.members.origin[self._owner] != LONG or (started is not None and int(started) == 0):
            self._state = {k: v.clone() for k, v in self.members.get(self._owner)[1].items()}
        if self.memory is not None and self._clock > self.members.born[self._owner]:
            source = self.members.source[self._owner]  # a recalled concept, learned further
            self.memory.store(
                *self.members.get(self._owner),
                now=self._clock,
                into=source if source >= 0 else None,
                recalled_at=self.members.born[self._owner],
            )

    def _free_slot(self, keep: tuple[int, ...] = ()) -> int:
        """An empty slot, or the slot of the member retired for a new one: the one with the
        highest score among those older than ``confirm`` records (any, if none is), never the
        long-lived member, the owner, the leader or ``keep``."""
        if DEAD in self.members.origin:
            return self.members.origin.index(DEAD)
        spared = {0, self._owner, self._leader(), *keep}
        others = [s for s in range(self.capacity) if s not in spared]
        if not others:
            others = [s for s in range(1, self.capacity) if s not in keep]
        old = [s for s in others if self._clock - self.members.born[s] >= self.confirm] or others
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
            for s, origin in enumerate(self.members.origin)
            if origin == FRESH and self._clock - self.members.born[s] < self.support_size
        ]
        slot = young[0] if young else self._free_slot()
        init = self.meta.init_params()
        state = self.inner.restart(self._task_state())
        score = self._window_loss(init) if len(self._recent_y) else float(self._score[self._owner])
        self._place(slot, init, state, FRESH, score)
        return slot

    def _switch_suspected(self) -> None:
        """Records before a suspected switch no longer judge the members or pick a concept to
        recall: every member is judged afresh on the records that follow, and the memory is
        searched once half a step of them (at least ``RECALL_RECORDS``) has come."""
        self.mixture.forget()
        self._recent_x, self._recent_y = self._recent_x[:0], self._recent_y[:0]
        self._recall_due = self._clock + max(RECALL_RECORDS, self.support_size // 2)

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
            outs = self._forward_bank(self.members.params, self._recent_x)
            members = self._member_loss(outs, self._recent_y).mean(1)
        best_member = float(torch.where(self.members.alive(self.device), members, torch.inf).min())
        if slot < 0 or not _RECALL_MARGIN * loss < best_member:
            return
        params, state = self.memory.recall(slot)
        into = self._free_slot()
        self._place(into, params, self.inner.restart(state), RECALLED, loss)
        self.members.source[into] = slot
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
        if not hasattr(self, "members"):  # from MetaLearner.__init__: the bank is not built yet
            super().begin_task()
            return
        self._close_task()
        self.counts["boundaries_explicit"] += 1
        self.members.retire_all_but_long_lived()
        self._owner = self._spawn()
        self._switch_suspected()  # no evidence yet on the new task
        self.mixture.prior.fill_(-_TOLD_PRIOR)  # but the records said the concept changed
        self.mixture.prior[self._owner] = 0.0
        self._challenger, self._challenge = -1, 0
        self._pending_x, self._pending_y = self._pending_x[:0], self._pending_y[:0]
