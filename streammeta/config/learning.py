"""The sections of what is learned and from what: the meta-learner, the simulated stream and how
the stream is cut into tasks. Each choice among implementations (algorithm, inner optimizer,
baseline, detector, stream) and its help come from the tables in :mod:`streammeta.registry`.

>>> LearnerConfig(task="classification", n_classes=3).labels
()
>>> try:
...     SegmentConfig(detector="adwn")
... except ValueError as exc:  # a ConfigError
...     print(exc)  # doctest: +ELLIPSIS
segment.detector = 'adwn' (argument): must be one of 'adwin', 'page_hinkley', 'kswin', ...
"""

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Literal

from streammeta.config.fields import Rule, Section, setting
from streammeta.registry import ALGORITHMS, BASELINES, INNER_OPTIMIZERS, SEGMENTERS, STREAMS

__all__ = ["LearnerConfig", "SegmentConfig", "StreamConfig"]


@dataclass(frozen=True, slots=True)
class LearnerConfig(Section):
    """The meta-learner: model, meta-learning algorithm, learned optimizer, task buffer."""

    SECTION: ClassVar[str] = "learner"
    RULES: ClassVar[tuple[Rule, ...]] = (
        (
            ("algorithm", "task"),
            lambda v: (
                "classification" not in ALGORITHMS.entry(v["algorithm"]).tags
                or v["task"] == "classification"
            ),
            "algorithm "
            + " or ".join(map(repr, ALGORITHMS.tagged("classification")))
            + " needs task 'classification'",
        ),
        (
            ("meta_async", "algorithm"),
            lambda v: not v["meta_async"] or "learner" not in ALGORITHMS.entry(v["algorithm"]).tags,
            "meta_async runs the meta-updates of a fast-weight meta-learner; algorithm "
            + " or ".join(map(repr, ALGORITHMS.tagged("learner")))
            + " meta-trains inline: set meta_async = false or pick another algorithm",
        ),
        (
            ("task", "n_classes"),
            lambda v: v["n_classes"] >= 2 if v["task"] == "classification" else v["n_classes"] == 0,
            "n_classes must be >= 2 for task 'classification' and 0 for task 'regression'",
        ),
        (
            ("labels", "n_classes"),
            lambda v: not v["labels"] or len(v["labels"]) == v["n_classes"],
            "give one label per class (len(labels) == n_classes), or none",
        ),
        (
            ("feature_names", "n_features"),
            lambda v: not v["feature_names"] or len(v["feature_names"]) == v["n_features"],
            "give one name per feature (len(feature_names) == n_features), or none",
        ),
    )

    task: Literal["regression", "classification"] = setting("regression", "what the model predicts")
    algorithm: str = setting(
        "maml",
        "meta-learning algorithm for the initialization: " + ALGORITHMS.help(),
        choices=ALGORITHMS.names,
    )
    optimizer: str = setting(
        "metasgd",
        "inner optimizer taking the fast weights' steps (the meta-learned ones along Adam's "
        "direction): " + INNER_OPTIMIZERS.help(),
        choices=INNER_OPTIMIZERS.names,
    )
    hidden: tuple[int, ...] = setting((40, 40), "MLP hidden layer widths", ge=1)
    layer_norm: bool = setting(False, "layer norm after each hidden layer")
    n_features: int = setting(1, "input features per record", ge=1)
    n_classes: int = setting(0, "number of classes (0 for regression)", ge=0)
    labels: tuple[str, ...] = setting(
        (), "class labels records may send as y instead of 0..n_classes-1 (one per class)"
    )
    feature_names: tuple[str, ...] = setting(
        (), "order of named features when x is an object (default: the first record's order)"
    )
    inner_lr: float = setting(
        0.01, "initial inner-loop step size (Adam's, per support_size records)", gt=0
    )
    meta_lr: float = setting(0.001, "learning rate of the meta-update", gt=0)
    meta_batch: int = setting(16, "tasks per meta-update", ge=1)
    inner_steps: int = setting(2, "inner steps unrolled in meta-training", ge=1)
    support_size: int = setting(
        10, "records per inner step in meta-training episodes (match the micro-batch)", ge=1
    )
    meta_every: int = setting(
        10, "labelled records between meta-updates (at most one per micro-batch)", ge=1
    )
    buffer_recent: int = setting(32, "most recent tasks kept in the task buffer", ge=1)
    buffer_reservoir: int = setting(1024, "older tasks kept for replay (reservoir sample)", ge=0)
    task_max_records: int = setting(200, "records kept per task in the buffer", ge=2)
    device: Literal["auto", "cpu", "cuda"] = setting(
        "auto", "torch device; auto picks CUDA when present"
    )
    seed: int = setting(0, "random seed of the learner")
    meta_train: bool = setting(
        True, "meta-train the initialization and the optimizer online (false freezes them)"
    )
    meta_async: bool = setting(
        False,
        "run meta-updates on a background thread: serving never waits for one and takes the "
        "newest version at the end of a micro-batch (not reproducible run to run); false: "
        "inline, after meta_every labelled records (deterministic)",
    )
    standardize: bool = setting(
        True, "standardize features (and regression targets) online inside the learner"
    )
    scale_horizon: int = setting(
        10_000, "records the standardization's running mean and variance follow", ge=1
    )
    bank_size: int = setting(
        4,
        "fast learners kept and mixed (a long-lived one, fresh ones started at switch candidates "
        "and on a schedule, recalled concepts); 1: one fast learner that a boundary resets",
        ge=1,
    )
    mix: Literal["hedge", "leader"] = setting(
        "hedge",
        "how the bank predicts: its members weighted by recent loss (hedge), or the member with "
        "the lowest recent loss (leader)",
    )
    mix_horizon: int = setting(20, "labelled records the members' recent loss follows", ge=1)
    spawn_every: int = setting(
        100,
        "labelled records between fresh members started on schedule (0 = at switch candidates "
        "only): a missed switch costs at most this many records",
        ge=0,
    )
    confirm_records: int = setting(
        30, "labelled records a new member must lead in a row to open a task", ge=1
    )
    memory_size: int = setting(
        32, "past concepts (fast weights of closed tasks) kept for recall; 0 = no memory", ge=0
    )
    max_keys: int = setting(
        1024,
        "keys (the records' key field) holding their own fast weights, optimizer state and "
        "segmenter; the least recently used is evicted and starts again from the meta-learned "
        "initialization when it returns; records without a key share one state; 0: keys are only "
        "echoed, every record shares one state",
        ge=0,
    )
    baseline: str = setting(
        "online_adam",
        "shadow baseline run beside the meta-learner on the same records: none, or "
        + BASELINES.help(),
        choices=("none", *BASELINES.names),
    )


@dataclass(frozen=True, slots=True)
class StreamConfig(Section):
    """The simulated drifting stream used by ``demo``, ``simulate`` and ``bench``."""

    SECTION: ClassVar[str] = "stream"
    name: str = setting("sinusoid", "stream generator: " + STREAMS.help(), choices=STREAMS.names)
    task_length: int = setting(100, "records between task switches", ge=1)
    batch_size: int = setting(10, "records per micro-batch", ge=1)
    records: int = setting(200_000, "records to generate", ge=1)
    seed: int = setting(0, "random seed of the stream")


@dataclass(frozen=True, slots=True)
class SegmentConfig(Section):
    """How the stream is cut into tasks. A change of a record's explicit ``task`` field is a
    boundary whatever the detector says. With a bank of fast learners (``learner.bank_size``
    above 1) what the detector finds is a switch candidate: a fresh member starts there, and a
    task opens only where a member started at a candidate takes the lead."""

    SECTION: ClassVar[str] = "segment"
    detector: str = setting(
        "loss_jump",
        "source of switch candidates (of boundaries, with learner.bank_size 1): "
        + SEGMENTERS.help(),
        choices=SEGMENTERS.names,
    )
    min_task_length: int = setting(
        20, "records a task holds before a detected boundary (or switch candidate)", ge=1
    )
    key_detector: str = setting(
        "adwin",
        "detector of each key's own records (records with a key, learner.max_keys > 0), or "
        "'same' for segment.detector: a key has about one record a micro-batch, which a "
        "batch-level jump test (loss_jump) reads as noise",
        choices=("same", *SEGMENTERS.names),
    )
    cooldown: int = setting(0, "records after a boundary before the next can be detected", ge=0)
    window: int = setting(100, "records per task for detector 'fixed'", ge=1)

    def for_keys(self) -> "SegmentConfig":
        """The segmentation of each key's own records."""
        if self.key_detector == "same":
            return self
        return dataclasses.replace(self, detector=self.key_detector)
