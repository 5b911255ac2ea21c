"""The whole configuration: one frozen section per TOML table, the checks across sections, and
the field descriptions the command line's help and the docs are built from.

>>> sorted(SECTIONS) == sorted(to_dict(Config()))
True
>>> CROSS_RULES[0][2]  # doctest: +ELLIPSIS
"error detectors read a classifier's 0/1 error; ... pick a loss detector (adwin, page_hinkley, ...)"
"""

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

from streammeta.config.fields import Rule, describe
from streammeta.config.learning import LearnerConfig, SegmentConfig, StreamConfig
from streammeta.config.service import (
    DemoConfig,
    KafkaConfig,
    LogConfig,
    MetaConfig,
    MetricsConfig,
    ServiceConfig,
)
from streammeta.registry import SEGMENTERS

__all__ = ["CROSS_RULES", "SECTIONS", "Config", "describe_fields", "to_dict"]


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration: one frozen section per TOML table."""

    learner: LearnerConfig = field(default_factory=LearnerConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    meta: MetaConfig = field(default_factory=MetaConfig)
    log: LogConfig = field(default_factory=LogConfig)


#: Each section's class by its TOML table name, in :class:`Config`'s order.
SECTIONS: dict[str, Any] = {f.name: f.type for f in fields(Config)}


#: Checks across sections, in the sections' format with dotted keys.
def _reads_error(field: str, other: str = "") -> Rule:
    """The rule that a detector in ``field`` reading 0/1 errors needs a classifier."""
    return (
        (field, "learner.task"),
        lambda v: (
            v[field] not in SEGMENTERS.tagged("error") or v["learner.task"] == "classification"
        ),
        "error detectors read a classifier's 0/1 error; set learner.task = 'classification' or "
        f"pick a loss detector ({', '.join(SEGMENTERS.tagged('loss'))}){other}",
    )


CROSS_RULES: tuple[Rule, ...] = (
    _reads_error("segment.detector"),
    _reads_error("segment.key_detector", " or 'same'"),
)


def describe_fields() -> list[tuple[str, str, object, str]]:
    """``(dotted key, type text, default, help)`` of every field, for CLI help and docs.

    >>> describe_fields()[3]
    ('learner.hidden', 'list[int] >= 1', (40, 40), 'MLP hidden layer widths')
    """
    return [
        (f"{sec}.{f.name}", describe(f), f.default, f.metadata["help"])
        for sec, cls in SECTIONS.items()
        for f in fields(cls)
    ]


def to_dict(config: Config) -> dict[str, dict[str, Any]]:
    """The config as plain TOML-like tables (tuples become lists), for reports and snapshots."""
    tables = dataclasses.asdict(config)
    return {
        s: {k: list(v) if isinstance(v, tuple) else v for k, v in t.items()}
        for s, t in tables.items()
    }
