"""Prototypical networks, online (Snell et al., 2017): the embedding network is meta-learned,
and the fast state of a task is its class prototypes (mean embedding of each class so far).

>>> import torch
>>> learner = ProtoNetLearner(n_features=2, n_classes=2, hidden=(8,), support_size=2, seed=0)
>>> x = torch.tensor([[0.0, 0.0], [5.0, 5.0]] * 4)
>>> y = torch.tensor([0, 1] * 4)
>>> learner.update(x, y)
>>> learner.update(x, y)  # prototypes from the first batch classify the second
>>> learner.prediction.tolist()
[0, 1, 0, 1, 0, 1, 0, 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self, Unpack

import torch
from torch import Tensor, nn
from torch.func import vmap

from streammeta.learn.base import Learner, copy_state, resolve_device
from streammeta.learn.model import MLP, Classification, FunctionalModel, Params
from streammeta.learn.optim import _key
from streammeta.learn.scale import Standardizer
from streammeta.learn.trainer import MetaTrained, MetaTrainer, MetaTraining, training_of

if TYPE_CHECKING:
    from streammeta.config import LearnerConfig

__all__ = ["ProtoNetLearner", "prototype_logits"]


def prototype_logits(emb: Tensor, sums: Tensor, counts: Tensor) -> Tensor:
    """Negative squared distance to each class prototype. A class with no example yet sits as
    far as the farthest prototype; with no prototypes at all every class is equally likely."""
    present = counts > 0
    protos = sums / counts.clamp(min=1)[:, None]
    logits = -((emb[:, None, :] - protos[None, :, :]) ** 2).sum(-1)
    floor = torch.where(present, logits, torch.inf).amin(-1, keepdim=True)
    floor = torch.where(torch.isinf(floor), torch.zeros_like(floor), floor)
    return torch.where(present, logits, floor)


class ProtoNetLearner(MetaTrained, Learner):
    """Online prototypical network for classification; meta-updates as in ``MetaLearner``."""

    def __init__(
        self,
        *,
        n_features: int,
        n_classes: int,
        hidden: Sequence[int] = (40, 40),
        layer_norm: bool = False,
        standardize: bool = True,
        scale_horizon: int = 10_000,
        device: str | torch.device = "cpu",
        seed: int = 0,
        **training: Unpack[MetaTraining],
    ) -> None:
        """``standardize``: features in standard units (see ``FastWeightLearner``)."""
        self.name = "protonet"
        self.n_classes = n_classes
        self.device = resolve_device(device)
        self.head = Classification(n_classes)
        embedding = MLP(n_features, 0, hidden, layer_norm)
        self.model = FunctionalModel(embedding, self.head)
        self.model.module.to(self.device)
        if standardize:
            self.x_scaler = Standardizer(n_features, horizon=scale_horizon, device=self.device)
        init = self.model.init_params(torch.Generator().manual_seed(seed))
        self.embedding = nn.ParameterDict({_key(k): nn.Parameter(v) for k, v in init.items()})
        self.embedding.to(self.device)
        self._names = list(init)
        self.trainer = MetaTrainer(
            list(self.embedding.parameters()),
            n_features=n_features,
            target_dtype=torch.long,
            device=self.device,
            seed=seed,
            recent_fraction=0.5,
            **training,
        )
        width = embedding.n_out
        self._sums = torch.zeros(n_classes, width, device=self.device)
        self._counts = torch.zeros(n_classes, device=self.device)
        self._out = torch.zeros(0, n_classes, device=self.device)
        self._loss = torch.zeros(0, device=self.device)

    @classmethod
    def from_config(cls, cfg: LearnerConfig) -> Self:
        """The learner ``[learner]`` describes (an entry of
        :data:`streammeta.registry.ALGORITHMS` with a learner of its own)."""
        return cls(
            n_features=cfg.n_features,
            n_classes=cfg.n_classes,
            hidden=cfg.hidden,
            layer_norm=cfg.layer_norm,
            standardize=cfg.standardize,
            scale_horizon=cfg.scale_horizon,
            device=cfg.device,
            seed=cfg.seed,
            **training_of(cfg),
        )

    def _params(self) -> Params:
        return {k: self.embedding[_key(k)] for k in self._names}

    def begin_task(self) -> None:
        self.trainer.end_task()
        self._sums.zero_()
        self._counts.zero_()

    @torch.no_grad()
    def _embed(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Embeddings of ``x`` (on the device) and their prototype logits."""
        emb = self.model(self._params(), x)
        return emb, prototype_logits(emb, self._sums, self._counts)

    def _predict(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor]:
        _, out = self._embed(x.to(self.device, non_blocking=True))
        if y is None:
            return out, torch.full((x.shape[0],), float("nan"), device=self.device)
        return out, self.head.loss(out, y.to(self.device, non_blocking=True))

    def _step(self, x: Tensor, y: Tensor | None, labelled: Tensor | None) -> None:
        if y is None:
            self._out, self._loss = self._predict(x, None)
            return
        x = x.to(self.device, non_blocking=True)
        emb, self._out = self._embed(x)
        y = y.to(self.device, non_blocking=True)
        if labelled is not None:  # placeholders of unlabelled rows (-1) must not reach the loss
            labelled = labelled.to(self.device, non_blocking=True)
            y = torch.where(labelled, y, torch.zeros_like(y))
        losses = self.head.loss(self._out, y)
        if labelled is not None:
            losses = torch.where(labelled, losses, torch.nan)
            x, y, emb = x[labelled], y[labelled], emb[labelled]
        self._loss = losses
        onehot = nn.functional.one_hot(y, self.n_classes).to(emb.dtype)
        self._sums += onehot.T @ emb
        self._counts += onehot.sum(0)
        self.trainer.observe(x, y, int(x.shape[0]))

    def _episode(self, xs: Tensor, ys: Tensor) -> Tensor:
        """One task: prototypes from all chunks but the last, scored on the last."""
        params = self._params()
        d = xs.shape[-1]
        support_x, support_y = xs[:-1].reshape(-1, d), ys[:-1].reshape(-1)
        onehot = nn.functional.one_hot(support_y, self.n_classes).to(xs.dtype)
        emb = self.model(params, support_x)
        logits = prototype_logits(self.model(params, xs[-1]), onehot.T @ emb, onehot.sum(0))
        return self.head.loss(logits, ys[-1]).mean()

    def meta_update(self) -> None:
        batch = self.trainer.sample()
        if batch is not None:
            self.trainer.apply(vmap(self._episode)(*batch).mean())

    def head_predict(self, out: Tensor) -> Tensor:
        return self.head.predict(out)

    def describe(self) -> dict[str, float]:
        return {"meta_loss": self.trainer.last_loss}

    def snapshot(self) -> dict[str, Any]:
        return copy_state(
            {
                "embedding": self.embedding.state_dict(),
                "trainer": self.trainer.snapshot(),
                "sums": self._sums,
                "counts": self._counts,
                "scalers": self.scaler_state(),
            }
        )

    def restore(self, state: dict[str, Any]) -> None:
        state = copy_state(state)
        self.embedding.load_state_dict(state["embedding"])
        self.trainer.restore(state["trainer"])
        self._sums = state["sums"].to(self.device)
        self._counts = state["counts"].to(self.device)
        self.load_scaler_state(state["scalers"])
