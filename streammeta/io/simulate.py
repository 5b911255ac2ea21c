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

__all__ = ["Published", "encode", "publish"]


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
) -> Published:
    """Produce ``records`` to ``topic``, ``batch_size`` per message, at most ``rate`` records/s
    (0: as fast as possible), then flush (raises :class:`~streammeta.io.errors.DeliveryError`
    if anything was not delivered). ``progress(records, seconds)`` is called every ``every_s``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: must be at least 1")
    if rate < 0:
        raise ValueError(f"rate={rate!r}: must be >= 0 records/s (0 = unlimited)")
    start = time.monotonic()
    report_at = start + every_s
    sent = messages = 0
    for chunk in _chunks(records, batch_size):
        value, key = encode(chunk)
        sink.produce(topic, value, key)
        sent += len(chunk)
        messages += 1
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
