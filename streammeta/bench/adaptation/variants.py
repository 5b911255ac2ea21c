"""The learner variants an adaptation run can compare (``--learners``): streammeta's meta-learners
(config overrides), marked variants of the default learner, the registry's baselines and its
peers.

A mark after the name changes how the default runs: ``@oracle`` is told the true switches
instead of finding them, ``@meta_off`` has meta-learning switched off (initialization and
optimizer frozen at their starting values), ``@single`` is one fast learner that the detector's
boundaries reset (the bank off), ``@leader`` the bank predicting with its leader instead of the
mixture, ``@no_switch`` the bank with no switch candidate at all, ``@async`` the default with
its meta-updates on a background thread (``learner.meta_async``).

>>> VARIANTS["maml+metasgd@single"]
{'algorithm': 'maml', 'optimizer': 'metasgd', 'bank_size': 1}
>>> [name for name in VARIANTS if name in PEERS][:2]
['deep_river', 'river_logreg']
"""

from __future__ import annotations

from streammeta.config import LearnerConfig
from streammeta.learn.base import Learner
from streammeta.learn.factory import build_baseline, build_learner
from streammeta.registry import BASELINES, PEERS

__all__ = [
    "ASYNC",
    "DEFAULT_LEARNERS",
    "LEADER",
    "META_OFF",
    "NO_SWITCH",
    "ORACLE",
    "SINGLE",
    "VARIANTS",
    "YARDSTICK",
    "build_variant",
    "submit_order",
]

ORACLE = "@oracle"
META_OFF = "@meta_off"
SINGLE = "@single"
ASYNC = "@async"
LEADER = "@leader"
NO_SWITCH = "@no_switch"
_MAML: dict[str, object] = {"algorithm": "maml", "optimizer": "metasgd"}
#: name -> learner config overrides (meta-learners), or the name of a baseline or a peer
VARIANTS: dict[str, dict[str, object] | str] = {
    "maml+metasgd": _MAML,
    f"maml+metasgd{ORACLE}": _MAML,
    f"maml+metasgd{META_OFF}": {**_MAML, "meta_train": False},
    f"maml+metasgd{META_OFF}{ORACLE}": {**_MAML, "meta_train": False},
    f"maml+metasgd{SINGLE}": {**_MAML, "bank_size": 1},
    f"maml+metasgd{SINGLE}{ORACLE}": {**_MAML, "bank_size": 1},
    f"maml+metasgd{LEADER}": {**_MAML, "mix": "leader"},
    f"maml+metasgd{NO_SWITCH}": {**_MAML, "spawn_every": 0},
    f"maml+metasgd{ASYNC}": {**_MAML, "meta_async": True},
    "fomaml+metasgd": {"algorithm": "fomaml", "optimizer": "metasgd"},
    "reptile+metasgd": {"algorithm": "reptile", "optimizer": "metasgd"},
    "ftml+metasgd": {"algorithm": "ftml", "optimizer": "metasgd"},
    "maml+lopt": {"algorithm": "maml", "optimizer": "lopt"},
    "maml+sgd": {"algorithm": "maml", "optimizer": "sgd"},
    **{name: name for name in BASELINES.names},
    **{name: name for name in PEERS.names},
}
#: what a run compares unless ``--learners`` says otherwise: the default learner, told the
#: switches and with meta-learning off, against the strongest plain learners
DEFAULT_LEARNERS = (
    "maml+metasgd",
    f"maml+metasgd{ORACLE}",
    f"maml+metasgd{META_OFF}",
    f"maml+metasgd{SINGLE}",
    f"maml+metasgd{NO_SWITCH}",  # on streams without a switch only
    "online_adam",
    "deep_river",
    "river_logreg",
    "river_hat",
    "river_arf",
)
#: the peers the default learner must match or beat on every stream (ARF's figures are shown)
YARDSTICK = ("online_adam", "deep_river", "river_logreg", "river_hat")


def build_variant(name: str, cfg: LearnerConfig) -> Learner:
    """The learner of variant ``name`` (a meta-learner or a baseline, not a peer)."""
    spec = VARIANTS[name]
    if isinstance(spec, str):
        return build_baseline(spec, cfg)
    return build_learner(cfg, **spec)


def submit_order(name: str) -> int:
    """Slowest first, so the pool ends together: ARF, deep-river, meta-learners, the rest."""
    if name in ("river_arf", "deep_river"):
        return 0
    return 1 if isinstance(VARIANTS[name], dict) else 2
