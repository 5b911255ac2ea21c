"""How a bank's members become one prediction: each member's score and weight (Hedge).

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

>>> import torch
>>> mixture = Mixture(3, mix="hedge", mix_horizon=20, classification=False)
>>> alive = torch.tensor([True, True, False])
>>> mixture.fold(torch.tensor([[1.0, 1.0], [2.0, 2.0], [0.0, 0.0]]))
>>> mixture.scores(alive).tolist(), mixture.leader(alive)
([1.0, 2.0, inf], 0)
>>> [round(w, 4) for w in mixture.weights(alive).tolist()]  # e^-(20 / 2) of the best's weight
[1.0, 0.0, 0.0]
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

__all__ = ["MIN_LOSS", "MIXES", "Mixture"]

#: how the members' predictions become one
MIXES = ("hedge", "leader")
#: a floor under a loss in the model's units (a perfect fit): the noise level of regression
#: targets, and the level a rise is measured from
MIN_LOSS = 1e-4


class Mixture:
    """The scores and log-weights of ``capacity`` member slots; ``alive`` (a mask over the
    slots) says which hold a member."""

    def __init__(
        self,
        capacity: int,
        *,
        mix: Literal["hedge", "leader"],
        mix_horizon: int,
        classification: bool,
        device: torch.device | str = "cpu",
    ) -> None:
        if mix not in MIXES:
            raise ValueError(f"mix {mix!r}: must be one of {', '.join(map(repr, MIXES))}")
        self.capacity = capacity
        self.mix = mix
        self.mix_horizon = mix_horizon
        self.classification = classification
        self.device = torch.device(device)
        # exponentially weighted sums of each member's losses and of the weights themselves:
        # the score is their ratio, a mean that does not favour members with less history
        self.loss_sum = torch.zeros(capacity, device=self.device)
        self.loss_mass = torch.zeros(capacity, device=self.device)
        self.prior = torch.zeros(capacity, device=self.device)  # log-weights before evidence

    def scores(self, alive: Tensor) -> Tensor:
        """Each member's recent mean loss (0 without evidence yet; inf for empty slots)."""
        mean = torch.where(self.loss_mass > 0, self.loss_sum / self.loss_mass, 0.0)
        return torch.where(alive, mean.nan_to_num(math.inf), math.inf)

    def logits(self, alive: Tensor) -> Tensor:
        """The members' log-weights, up to a constant (-inf for empty slots)."""
        score = self.scores(alive)
        if not self.classification:  # the noise level: the best's
            score = score / (2 * score.min().clamp_min(MIN_LOSS))
        logits = self.prior - self.mix_horizon * score
        if not torch.isfinite(logits).any():  # every member diverged: trust the long-lived one
            first = torch.arange(self.capacity, device=self.device) == 0
            logits = torch.where(first, 0.0, -math.inf)
        return logits

    def leader(self, alive: Tensor) -> int:
        return int(self.logits(alive).argmax())

    def weights(self, alive: Tensor) -> Tensor:
        """The members' weights in the next prediction (0 for empty slots)."""
        if self.mix == "leader":
            one = torch.nn.functional.one_hot(torch.tensor(self.leader(alive)), self.capacity)
            return one.to(self.prior)
        return torch.softmax(self.logits(alive), 0)

    def mixed(self, outs: Tensor, alive: Tensor) -> Tensor:
        """One output per record from the members' ``[members, n, n_out]``: the weighted mean
        of regression outputs, the log of the weighted mean of class probabilities."""
        w = self.weights(alive)[:, None, None]
        if self.classification:
            return torch.log((w * torch.softmax(outs, -1)).sum(0).clamp_min(1e-12))
        return (w * outs).sum(0)

    def fold(self, losses: Tensor) -> None:
        """Fold ``[members, n]`` per-record losses into the scores, in order."""
        n = losses.shape[1]
        if n == 0:
            return
        keep = 1.0 - 1.0 / self.mix_horizon
        decay = keep ** torch.arange(n - 1, -1, -1, device=self.device, dtype=losses.dtype)
        self.loss_sum = keep**n * self.loss_sum + (decay * losses).sum(1)
        self.loss_mass = keep**n * self.loss_mass + decay.sum()

    def join(self, slot: int, score: float, mass: float | Tensor) -> None:
        """A member joins ``slot`` with ``score``, as if it had predicted ``mass`` of history,
        and no prior."""
        self.loss_mass[slot] = mass
        self.loss_sum[slot] = score * mass
        self.prior[slot] = 0.0

    def forget(self) -> None:
        """Every member is judged afresh on the records that follow."""
        self.loss_sum.zero_()
        self.loss_mass.zero_()

    def state(self) -> list[Tensor]:
        return [self.loss_sum, self.loss_mass, self.prior]

    def load(self, state: list[Tensor]) -> None:
        self.loss_sum, self.loss_mass, self.prior = (v.to(self.device) for v in state)
