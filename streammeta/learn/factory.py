"""Build learners and segmenters from the validated config (``[learner]``, ``[segment]``).

>>> from streammeta.config import load_config
>>> cfg = load_config(env={}).learner
>>> build_learner(cfg).name, build_baseline("reset_sgd", cfg).name
('maml+metasgd', 'reset_sgd')
"""

from __future__ import annotations

import dataclasses
from typing import Any

from streammeta.config import LearnerConfig, SegmentConfig
from streammeta.learn.bank import BankLearner
from streammeta.learn.base import Learner
from streammeta.learn.learner import MetaLearner
from streammeta.learn.model import MLP, Classification, FunctionalModel, Head, Regression
from streammeta.learn.trainer import training_of
from streammeta.registry import ALGORITHMS, BASELINES
from streammeta.segment import Segmenter, make_segmenter

__all__ = ["build_baseline", "build_learner", "build_model", "build_segmenter"]


def build_model(cfg: LearnerConfig) -> FunctionalModel:
    head: Head = Regression() if cfg.task == "regression" else Classification(cfg.n_classes)
    return FunctionalModel(MLP(cfg.n_features, head.n_out, cfg.hidden, cfg.layer_norm), head)


def build_learner(cfg: LearnerConfig, **overrides: object) -> Learner:
    """The meta-learner the config describes; ``overrides`` replace config fields (variants)."""
    if overrides:
        cfg = dataclasses.replace(cfg, **overrides)  # type: ignore[arg-type]
    algorithm = ALGORITHMS.entry(cfg.algorithm)
    if "learner" in algorithm.tags:  # a learner of its own, not a rule of MetaLearner
        learner: Learner = algorithm.load().from_config(cfg)
        return learner
    common: dict[str, Any] = {
        "algorithm": cfg.algorithm,
        "optimizer": cfg.optimizer,
        "inner_lr": cfg.inner_lr,
        "n_features": cfg.n_features,
        "meta_train": cfg.meta_train,
        "meta_async": cfg.meta_async,
        "standardize": cfg.standardize,
        "scale_horizon": cfg.scale_horizon,
        "device": cfg.device,
        "seed": cfg.seed,
        **training_of(cfg),
    }
    if cfg.bank_size == 1:
        return MetaLearner(build_model(cfg), **common)
    return BankLearner(
        build_model(cfg),
        bank_size=cfg.bank_size,
        memory_size=cfg.memory_size,
        spawn_every=cfg.spawn_every,
        mix=cfg.mix,
        mix_horizon=cfg.mix_horizon,
        confirm=cfg.confirm_records,
        **common,
    )


def build_baseline(kind: str, cfg: LearnerConfig) -> Learner:
    """A baseline by name (``learner.baseline``), with the same model, learning rate, device and
    seed."""
    baseline: Learner = BASELINES.load(kind).from_config(build_model(cfg), cfg)
    return baseline


def build_segmenter(cfg: SegmentConfig) -> Segmenter:
    """The segmenter ``[segment]`` describes."""
    return make_segmenter(
        cfg.detector, min_task_length=cfg.min_task_length, cooldown=cfg.cooldown, window=cfg.window
    )
