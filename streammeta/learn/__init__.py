"""Learning: functional models, learned optimizers, meta-learned initializations, baselines."""

from streammeta.learn.base import Learner
from streammeta.learn.baselines import FineTune, OnlineSGD, ResetSGD
from streammeta.learn.factory import build_baseline, build_learner
from streammeta.learn.learner import MetaLearner
from streammeta.learn.protonet import ProtoNetLearner

__all__ = [
    "FineTune",
    "Learner",
    "MetaLearner",
    "OnlineSGD",
    "ProtoNetLearner",
    "ResetSGD",
    "build_baseline",
    "build_learner",
]
