"""Publish a drifting benchmark stream to a topic, in streammeta's input format.

One record per message, or JSON arrays of ``batch_size`` records (batch messages). The message
key is the record's ``key`` (for a batch message: the key all its records share, else none).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from streammeta.io.base import Sink

__all__ = ["Published", "delay_labels", "encode", "publish"]


@dataclass(frozen=True)
class Published:
    """What :func:`publish` sent."""

    records: int
    messages: int
    seconds: float


def encode(records: list[dict[str, Any]]) -> tuple[bytes, bytes | None]:
    """The value and key of the message holding ``records`` (a bare object when there is one).

    >>> encode([{"x": [1.5], "y": 2.0, "key": "a"}])
    (b'{"x":[1.5],"y":2.0,"key":"a"}', b'a')
    >>> encode([{"x": [1.0], "key": "a"}, {"x": [2.0], "key": "b"}])
    (b'[{"x":[1.0],"key":"a"},{"x":[2.0],"key":"b"}]', None)
    """
    body = records[0] if len(records) == 1 else records
    keys = {r.get("key") for r in records}
    key = keys.pop() if len(keys) == 1 else None
    value = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    return value, None if key is None else str(key).encode()


def delay_labels(
    records: Iterable[dict[str, Any]], delay: int, prefix: str = "r"
) -> Iterator[dict[str, Any]]:
    """Each record without its ``y`` (given an ``id`` if it has none), and its label record
    ``{"id", "y"}`` (with the record's ``key``, so that both take the same partition) ``delay``
    records later; the last labels follow the last record.

    >>> [r for r in delay_labels([{"x": [1], "y": 0}, {"x": [2], "y": 1, "id": "b"}], 1)]
    [{'x': [1], 'id': 'r0'}, {'x': [2], 'id': 'b'}, {'id': 'r0', 'y': 0}, {'id': 'b', 'y': 1}]
    """
    if delay < 0:
        raise ValueError(f"delay={delay!r}: must be at least 0 records")
    waiting: list[dict[str, Any]] = []
    for i, rec in enumerate(records):
        rec = {**rec, "id": rec.get("id", f"{prefix}{i}")}
        label = {"id": rec["id"], "y": rec.pop("y", None)}
        if "key" in rec:
            label["key"] = rec["key"]
        yield rec
        waiting.append(label)
        if len(waiting) > delay:
            yield waiting.pop(0)
    yield from waiting


def _chunks(records: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    it = iter(records)
    while chunk := list(islice(it, size)):
        yield chunk


def publish(
    sink: Sink,
    topic: str,
    records: Iterable[dict[str, Any]],
    *,
    batch_size: int = 1,
    rate: float = 0.0,
    progress: Callable[[int, float], None] | None = None,
    every_s: float = 1.0,
    label_topic: str = "",
) -> Published:
    """Produce ``records`` to ``topic``, ``batch_size`` per message, at most ``rate`` records/s
    (0: as fast as possible), then flush (raises :class:`~streammeta.io.errors.DeliveryError`
    if anything was not delivered). ``progress(records, seconds)`` is called every ``every_s``.
    Label records (no ``x``) go to ``label_topic`` when given, one per message."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: must be at least 1")
    if rate < 0:
        raise ValueError(f"rate={rate!r}: must be >= 0 records/s (0 = unlimited)")
    start = time.monotonic()
    report_at = start + every_s
    sent = messages = 0
    for chunk in _chunks(records, batch_size):
        labels = [r for r in chunk if "x" not in r] if label_topic else []
        for label in labels:
            sink.produce(label_topic, *encode([label]))
        chunk = [r for r in chunk if "x" in r] if labels else chunk
        if chunk:
            sink.produce(topic, *encode(chunk))
        sent += len(chunk) + len(labels)
        messages += len(labels) + bool(chunk)
        now = time.monotonic()
        if rate:
            ahead = start + sent / rate - now
            if ahead > 0:
                time.sleep(ahead)
        if progress is not None and now >= report_at:
            progress(sent, now - start)
            report_at = now + every_s
    sink.flush()
    return Published(sent, messages, time.monotonic() - start)
