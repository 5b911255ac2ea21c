"""One table per extension point: algorithms, inner optimizers, segmenters, baselines, peers,
Kafka clients and streams.

Each entry names an implementation by import path (``"package.module:attribute"``), loaded on
first use, so reading a table imports nothing heavy: the config takes its choices and help text
from here without importing torch or river. The config's choices, the ``--help`` text, the error
messages and the contract test suites are all built from these tables; a new implementation is
one module and one line here.

>>> SEGMENTERS.tagged("error")
('ddm', 'eddm', 'hddm_a', 'hddm_w', 'fhddm')
>>> "reptile" in ALGORITHMS, ALGORITHMS.entry("reptile").target
(True, 'streammeta.learn.meta:REPTILE')
>>> try:
...     INNER_OPTIMIZERS.entry("metasdg")
... except ValueError as exc:
...     print(exc)  # doctest: +ELLIPSIS
learner.optimizer = 'metasdg': must be one of ... (did you mean 'metasgd'?)
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ALGORITHMS",
    "BASELINES",
    "INNER_OPTIMIZERS",
    "KAFKA_CLIENTS",
    "PEERS",
    "REGISTRIES",
    "SEGMENTERS",
    "STREAMS",
    "Entry",
    "Registry",
]


@dataclass(frozen=True)
class Entry:
    """One implementation: its ``name`` (the config value), where it lives (``target``,
    ``"module:attribute"`` or a bare module), one line of ``help``, ``tags`` the code asks about
    (``"loss"``, ``"error"``, ``"classification"``...) and ``requires``: a module that must be
    importable for the entry to be usable (an optional dependency), which ``install`` installs."""

    name: str
    target: str
    help: str
    tags: frozenset[str] = field(default_factory=frozenset)
    requires: str = ""
    install: str = ""  # how to install what ``requires`` names

    def load(self) -> Any:
        """The implementation: the attribute ``target`` names (the module itself without one)."""
        module, _, attribute = self.target.partition(":")
        loaded = importlib.import_module(module)
        return getattr(loaded, attribute) if attribute else loaded

    @property
    def available(self) -> bool:
        """Whether the optional dependency it needs (if any) is installed."""
        return not self.requires or importlib.util.find_spec(self.requires) is not None


class Registry:
    """An ordered table of :class:`Entry`; ``key`` is the config key that picks from it (used in
    error messages)."""

    def __init__(self, key: str, *entries: Entry) -> None:
        self.key = key
        self._entries = {e.name: e for e in entries}
        if len(self._entries) != len(entries):
            raise ValueError(f"{key}: two entries share a name")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, name: str) -> Entry:
        """The entry ``name``; a ``ValueError`` naming the key, the value and the choices."""
        if name not in self._entries:
            raise ValueError(self.unknown(name))
        return self._entries[name]

    def load(self, name: str) -> Any:
        """The implementation ``name`` stands for (imported now)."""
        return self.entry(name).load()

    def tagged(self, tag: str) -> tuple[str, ...]:
        """The names of the entries carrying ``tag``, in table order."""
        return tuple(e.name for e in self if tag in e.tags)

    def unknown(self, name: object) -> str:
        """The one-line message for a value that is not in the table."""
        text = f"{self.key} = {name!r}: must be one of {', '.join(map(repr, self.names))}"
        close = difflib.get_close_matches(str(name), self.names, n=1)
        return text + (f" (did you mean {close[0]!r}?)" if close else "")

    def help(self) -> str:
        """``name (help), ...``: the choices explained, for ``--help`` and the config docs."""
        return "; ".join(f"{e.name}: {e.help}" for e in self)


def _e(
    name: str, target: str, help: str, *tags: str, requires: str = "", install: str = ""
) -> Entry:
    return Entry(name, target, help, frozenset(tags), requires, install)


_META = "streammeta.learn.meta"
#: How the initialization is meta-trained (``learner.algorithm``). An entry is an
#: :class:`~streammeta.learn.meta.Algorithm` rule, or (tag ``learner``) a learner class of its
#: own with a ``from_config`` constructor.
ALGORITHMS = Registry(
    "learner.algorithm",
    _e("maml", f"{_META}:MAML", "MAML, second-order meta-gradient through the inner steps"),
    _e("fomaml", f"{_META}:FOMAML", "first-order MAML: inner gradients held constant"),
    _e("reptile", f"{_META}:REPTILE", "Reptile: the initialization moves toward adapted weights"),
    _e("ftml", f"{_META}:FTML", "follow the meta leader: meta-batches from every task seen"),
    _e(
        "protonet",
        "streammeta.learn.protonet:ProtoNetLearner",
        "prototypical networks: class means of a meta-learned embedding (classification)",
        "learner",
        "classification",
    ),
)

_OPTIM = "streammeta.learn.optim"
#: The inner optimizer that takes the fast weights' steps (``learner.optimizer``): an
#: :class:`~streammeta.learn.optim.InnerOptimizer` class with a ``create(params, lr, seed)``.
INNER_OPTIMIZERS = Registry(
    "learner.optimizer",
    _e("metasgd", f"{_OPTIM}:MetaSGD", "Meta-SGD: meta-learned per-parameter step sizes", "meta"),
    _e("lopt", f"{_OPTIM}:LearnedOptimizer", "a learned optimizer network", "meta"),
    _e("adam", f"{_OPTIM}:Adam", "fixed Adam"),
    _e("sgd", f"{_OPTIM}:SGD", "plain SGD"),
)

_DET = "streammeta.segment.detectors"
_SEG = "streammeta.segment.base"
#: Where switch candidates come from (``segment.detector``): a
#: :class:`~streammeta.segment.base.Segmenter` class, or a river detector's
#: :class:`~streammeta.segment.detectors.DetectorSpec`; both have ``build(min_task_length,
#: cooldown, window)``. Tags: ``loss`` reads the per-record loss, ``error`` a classifier's 0/1
#: error.
SEGMENTERS = Registry(
    "segment.detector",
    _e("adwin", f"{_DET}:ADWIN", "river's ADWIN on the loss", "loss"),
    _e("page_hinkley", f"{_DET}:PAGE_HINKLEY", "river's Page-Hinkley test on the loss", "loss"),
    _e("kswin", f"{_DET}:KSWIN", "river's Kolmogorov-Smirnov windows on the loss", "loss"),
    _e("ddm", f"{_DET}:DDM", "river's DDM on a classifier's error", "error"),
    _e("eddm", f"{_DET}:EDDM", "river's EDDM on a classifier's error", "error"),
    _e("hddm_a", f"{_DET}:HDDM_A", "river's HDDM-A on a classifier's error", "error"),
    _e("hddm_w", f"{_DET}:HDDM_W", "river's HDDM-W on a classifier's error", "error"),
    _e("fhddm", f"{_DET}:FHDDM", "river's FHDDM on a classifier's error", "error"),
    _e("loss_jump", f"{_SEG}:LossJump", "OSAKA's test of a jump in the loss", "loss"),
    _e("task", f"{_SEG}:TaskField", "the records' explicit task field only"),
    _e("fixed", f"{_SEG}:FixedWindow", "fixed windows of segment.window records"),
    _e("none", f"{_SEG}:NoSegmenter", "never"),
)

_BASE = "streammeta.learn.baselines"
#: Plain learners run beside the meta-learner as its shadow baseline (``learner.baseline``,
#: which may also be ``none``), with the same model: a :class:`~streammeta.learn.base.Learner`
#: class with ``from_config(model, cfg)``.
BASELINES = Registry(
    "learner.baseline",
    _e("online_adam", f"{_BASE}:OnlineAdam", "Adam on one set of weights, never reset"),
    _e("online_sgd", f"{_BASE}:OnlineSGD", "SGD on one set of weights, never reset"),
    _e("reset_sgd", f"{_BASE}:ResetSGD", "SGD from a fixed random init, reset at boundaries"),
    _e("finetune", f"{_BASE}:FineTune", "pretrained on the first records, then fine-tuned"),
)

_RIVER = "streammeta.bench.river_models"
#: Outside learners the benchmarks measure streammeta against: a
#: :class:`~streammeta.bench.river_models.Peer`, ``run(x, y, n_classes=, seed=, hidden=)``
#: prequentially; tag ``classification``: a classifier only.
PEERS = Registry(
    "peer",
    _e(
        "deep_river",
        "streammeta.bench.deep_river:DEEP_RIVER",
        "deep-river's MLP, one record at a time, in its own process (make peers)",
    ),
    _e("river_logreg", f"{_RIVER}:LOGREG", "river's logistic / linear regression", "river"),
    _e("river_hat", f"{_RIVER}:HAT", "river's Hoeffding Adaptive Tree", "river"),
    _e("river_arf", f"{_RIVER}:ARF", "river's adaptive random forest", "river"),
    _e(
        "river_adwin_retrain",
        f"{_RIVER}:ADWIN_RETRAIN",
        "river's logistic regression retrained at ADWIN's drifts (classification)",
        "river",
        "classification",
    ),
)

#: Kafka clients (``kafka.client``, which may also be ``auto``: the first available here, so
#: the order is the preference): a :class:`~streammeta.io.base.KafkaClient`.
KAFKA_CLIENTS = Registry(
    "kafka.client",
    _e(
        "confluent",
        "streammeta.io.confluent:CLIENT",
        "confluent-kafka (librdkafka), several times faster",
        requires="confluent_kafka",
        install="pip install 'streammeta[fast]'",
    ),
    _e("kafka-python", "streammeta.io.kafka_python:CLIENT", "kafka-python, in every installation"),
)


def _s(name: str, target: str, help: str, task: str) -> Entry:
    return _e(name, f"streammeta.streams.{target}", help, task)


#: Drifting streams for the demo, the simulator and the benchmarks (``stream.name``): a
#: callable ``(task_length=None, seed=0) -> Stream``; tagged with the task they pose.
STREAMS = Registry(
    "stream.name",
    _s("sinusoid", "sinusoid:SinusoidStream", "MAML's sinusoids", "regression"),
    _s("sea", "river_streams:SEA", "river's SEA concepts", "classification"),
    _s("stagger", "river_streams:STAGGER", "river's STAGGER", "classification"),
    _s("hyperplane", "river_streams:HYPERPLANE", "rotating hyperplane", "classification"),
    _s("agrawal", "river_streams:AgrawalStream", "Agrawal's loan functions", "classification"),
    _s("digits_rotated", "datasets:RotatedDigits", "rotated 8x8 digits", "classification"),
    _s(
        "digits_permuted",
        "datasets:PermutedDigits",
        "8x8 digits, labels permuted each task",
        "classification",
    ),
    _s(
        "image_segments",
        "datasets:PermutedImageSegments",
        "ImageSegments, labels permuted each task",
        "classification",
    ),
    _s("sinusoid_offset", "sinusoid:OffsetSinusoidStream", "sinusoids in raw units", "regression"),
    _s("friedman", "raw:FriedmanStream", "Friedman #1, inputs reassigned each task", "regression"),
    _s(
        "hyperplane_raw",
        "raw:RawHyperplaneStream",
        "a new hyperplane each task, raw units",
        "classification",
    ),
    _s(
        "stagger_recurring",
        "regimes:StaggerRecurringStream",
        "STAGGER's concepts recurring",
        "classification",
    ),
    _s(
        "sinusoid_recurring",
        "regimes:SinusoidRecurringStream",
        "a few sinusoids recurring",
        "regression",
    ),
    _s("no_drift", "regimes:NoDriftStream", "Friedman's first task forever", "regression"),
    _s(
        "switching_sinusoid",
        "regimes:SwitchingSinusoidStream",
        "MOCA's switching sinusoid",
        "regression",
    ),
)

#: Every table, by the config key it serves.
REGISTRIES: dict[str, Registry] = {
    r.key: r
    for r in (ALGORITHMS, INNER_OPTIMIZERS, SEGMENTERS, BASELINES, PEERS, KAFKA_CLIENTS, STREAMS)
}
