"""Learning: functional models, learned optimizers, meta-learned initializations, baselines."""

from streammeta.learn.base import Learner
from streammeta.learn.baselines import FineTune, OnlineSGD, ResetSGD
from streammeta.learn.factory import build_baseline, build_learner, build_segmenter
from streammeta.learn.keyed import KeyedLearner
from streammeta.learn.learner import MetaLearner
from streammeta.learn.members import ORIGINS
from streammeta.learn.protonet import ProtoNetLearner

__all__ = [
    "ORIGINS",
    "FineTune",
    "KeyedLearner",
    "Learner",
    "MetaLearner",
    "OnlineSGD",
    "ProtoNetLearner",
    "ResetSGD",
    "build_baseline",
    "build_learner",
    "build_segmenter",
]
