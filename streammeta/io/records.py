"""What decoding produces: good records in columns, and dead letters for what is bad."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from streammeta.io.base import Partition

__all__ = ["HEADER_PREFIX", "REASONS", "DeadLetter", "Decoded", "Records"]

#: Reason codes of dead letters.
REASONS = (
    "too_large",
    "malformed_json",
    "schema",
    "feature_count",
    "feature_names",
    "non_finite",
    "unknown_label",
)
#: Dead-letter headers are named ``streammeta.<field>``.
HEADER_PREFIX = "streammeta."


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record (or a whole message) that cannot be used: the original ``key`` and ``value``
    bytes, why, and where it came from. ``index`` is the record's position in a batch message,
    ``None`` when the problem concerns the whole message or the message holds one object."""

    value: bytes | None
    key: bytes | None
    reason: str
    error_type: str
    message: str
    topic: str
    partition: int
    offset: int
    index: int | None = None

    def headers(self) -> list[tuple[str, bytes]]:
        """The message headers for the dead-letter topic: ``streammeta.reason``, ``.error_type``,
        ``.error`` (the message), the source ``.topic``, ``.partition``, ``.offset`` and, for a
        record of a batch message, ``.index``."""
        fields = {
            "reason": self.reason,
            "error_type": self.error_type,
            "error": self.message,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
        }
        if self.index is not None:
            fields["index"] = self.index
        return [(HEADER_PREFIX + name, str(value).encode()) for name, value in fields.items()]


@dataclass(frozen=True)
class Records:
    """Good records in columns, in poll order. ``y`` is float32 (NaN where unlabelled) for
    regression and int64 class indices (-1 where unlabelled) for classification. ``ts`` is the
    record's ``ts``, else the message timestamp, else NaN. ``id`` defaults to
    ``topic:partition:offset`` (``:index`` added for batch messages). ``index`` is the position
    in a batch message, -1 for a message holding one object."""

    x: np.ndarray
    y: np.ndarray
    labelled: np.ndarray
    key: np.ndarray
    task: np.ndarray
    concept: np.ndarray
    id: np.ndarray
    ts: np.ndarray
    topic: np.ndarray
    partition: np.ndarray
    offset: np.ndarray
    index: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def select(self, which: np.ndarray) -> Records:
        """The records a boolean mask or an index array picks."""
        return Records(**{f.name: getattr(self, f.name)[which] for f in fields(self)})


@dataclass(frozen=True)
class Decoded:
    """What one batch of messages decoded to; ``dead`` in poll order (then index).
    ``next_offsets`` is, per partition, the offset after the last message seen (good or bad):
    what covers this batch in a commit."""

    records: Records
    dead: list[DeadLetter]
    next_offsets: dict[Partition, int]
