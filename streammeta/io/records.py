"""What decoding produces: good records in columns, and dead letters for what is bad.

A :class:`DeadLetter` always fits the broker: :meth:`DeadLetter.to_message` caps the key and
every header, and when the original bytes would not fit it sends them truncated, with their size
and SHA-256 digest in headers.

>>> dead = DeadLetter(b"x" * 50_000, b"k", "too_large", "ValueError", "too big", "in", 0, 7)
>>> value, key, headers = dead.to_message(max_bytes=20_000)
>>> len(value) + len(key) + sum(len(n) + len(v) for n, v in headers) <= 20_000
True
>>> names = dict(headers)
>>> names["streammeta.truncated"], names["streammeta.original_size"], names["streammeta.reason"]
(b'true', b'50000', b'too_large')
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from streammeta.io.base import Partition

__all__ = [
    "HEADER_PREFIX",
    "MAX_HEADER_BYTES",
    "MIN_MESSAGE_BYTES",
    "REASONS",
    "RECORD_OVERHEAD_BYTES",
    "DeadLetter",
    "Decoded",
    "Records",
    "default_ids",
]

#: Reason codes of dead letters.
REASONS = (
    "too_large",
    "malformed_json",
    "schema",
    "feature_count",
    "feature_names",
    "non_finite",
    "unknown_label",
    "bad_string",  # a key, id, task, concept or label that is not valid UTF-8 (lone surrogate)
    "empty",  # an empty batch message, ``[]``
    "decode_error",  # decoding the message raised: a bug, kept to this one message
    "processing_error",  # the learner raised on this record alone
    "unproducible",  # the broker refused its prediction for good (too large, say)
    "unmatched_label",  # a label whose id is unknown, or its record's wait expired
    "duplicate_label",  # a second label for an id already joined
)
#: Dead-letter headers are named ``streammeta.<field>``.
HEADER_PREFIX = "streammeta."
#: Longest header value (and message key) of a dead letter; longer ones end in ``...``.
MAX_HEADER_BYTES = 512
#: Room :meth:`DeadLetter.to_message` leaves for Kafka's own framing of a record.
RECORD_OVERHEAD_BYTES = 1024
#: Smallest size a dead letter is fitted into: capped key and headers plus the overhead fit.
MIN_MESSAGE_BYTES = 8 * 1024
_MORE = b"..."


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

    @property
    def position(self) -> tuple[str, int, int]:
        """Where the message came from: ``(topic, partition, offset)``."""
        return self.topic, self.partition, self.offset

    def headers(self) -> list[tuple[str, bytes]]:
        """The message headers for the dead-letter topic: ``streammeta.reason``, ``.error_type``,
        ``.error`` (the message), the source ``.topic``, ``.partition``, ``.offset`` and, for a
        record of a batch message, ``.index``. Values are UTF-8 (a character that cannot be
        encoded is written as a backslash escape), each at most :data:`MAX_HEADER_BYTES`."""
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
        return [(HEADER_PREFIX + name, _text(value)) for name, value in fields.items()]

    def to_message(self, max_bytes: int) -> tuple[bytes, bytes | None, list[tuple[str, bytes]]]:
        """``(value, key, headers)`` to produce to the dead-letter topic, together (value, key,
        header names and values) at most ``max_bytes`` minus :data:`RECORD_OVERHEAD_BYTES`.

        The key is capped like a header value. When the original value does not fit, the
        value is its first bytes that do, and headers ``streammeta.truncated`` (``true``),
        ``.original_size`` (bytes) and ``.sha256`` (hex digest of the original value) say so.
        A tombstone (``None`` value) is sent as an empty value. ``max_bytes`` below
        :data:`MIN_MESSAGE_BYTES` counts as that much: no broker refuses so small a record.
        """
        value = self.value or b""
        key = None if self.key is None else _cap(self.key, MAX_HEADER_BYTES)
        headers = self.headers()
        room = max(max_bytes, MIN_MESSAGE_BYTES) - RECORD_OVERHEAD_BYTES
        if len(value) + _size(key, headers) <= room:
            return value, key, headers
        headers += [
            (HEADER_PREFIX + "truncated", b"true"),
            (HEADER_PREFIX + "original_size", str(len(value)).encode()),
            (HEADER_PREFIX + "sha256", hashlib.sha256(value).hexdigest().encode()),
        ]
        return value[: room - _size(key, headers)], key, headers


def _text(value: object) -> bytes:
    """``value`` as a header value: UTF-8 whatever it holds, capped."""
    return _cap(str(value).encode("utf-8", errors="backslashreplace"), MAX_HEADER_BYTES)


def _cap(data: bytes, limit: int) -> bytes:
    """``data`` cut to at most ``limit`` bytes, ending in ``...`` when cut; the cut does not
    split a UTF-8 character (it backs off over continuation bytes)."""
    if len(data) <= limit:
        return data
    end = limit - len(_MORE)
    for _ in range(3):  # a UTF-8 character has at most 3 continuation bytes
        if data[end] & 0xC0 != 0x80:
            break
        end -= 1
    return data[:end] + _MORE


def _size(key: bytes | None, headers: Sequence[tuple[str, bytes]]) -> int:
    """Bytes a record's key and headers take (names and values)."""
    return len(key or b"") + sum(len(name) + len(value) for name, value in headers)


def default_ids(
    topic: Sequence[str], partition: Sequence[int], offset: Sequence[int], index: Sequence[int]
) -> list[str]:
    """The ids of records that carry none: ``topic:partition:offset``, and ``:index`` in a
    batch message (``index`` -1 for a message holding one object).

    >>> default_ids(["in", "in"], [0, 2], [7, 8], [-1, 3])
    ['in:0:7', 'in:2:8:3']
    """
    places = zip(topic, partition, offset, index, strict=True)
    return [f"{t}:{p}:{o}:{i}" if i >= 0 else f"{t}:{p}:{o}" for t, p, o, i in places]


@dataclass(frozen=True)
class Records:
    """Good records in columns, in poll order. ``y`` is float32 for regression and int64 class
    indices for classification; where not ``labelled`` it holds 0 (a value any loss takes, so
    nothing downstream replaces it: read ``labelled`` to tell). ``ts`` is the record's ``ts``,
    else the message timestamp, else NaN. ``id`` defaults to ``topic:partition:offset``
    (``:index`` added for batch messages). ``index`` is the position in a batch message, -1 for
    a message holding one object. ``label_only`` marks a label that arrived after its record
    (``{"id": ..., "y": ...}`` without ``x``): its ``x`` is a placeholder of zeros."""

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
    label_only: np.ndarray  # bool: a label for an earlier record ({"id", "y"}, no "x")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def select(self, which: np.ndarray) -> Records:
        """The records a boolean mask or an index array picks."""
        return Records(**{f.name: getattr(self, f.name)[which] for f in fields(self)})

    @classmethod
    def concat(cls, parts: Sequence[Records]) -> Records:
        """The records of ``parts`` one after the other (at least one part, for the shapes)."""
        if not parts:
            raise ValueError("Records.concat needs at least one part (it fixes the shapes)")
        return cls(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)}
        )


@dataclass(frozen=True)
class Decoded:
    """What one batch of messages decoded to; ``dead`` in poll order (then index).
    ``next_offsets`` is, per partition, the offset after the last message seen (good or bad):
    what covers this batch in a commit."""

    records: Records
    dead: list[DeadLetter]
    next_offsets: dict[Partition, int]
