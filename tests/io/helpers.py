"""Producing and draining topics in the broker tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from streammeta.config import KafkaConfig
from streammeta.io import RawMessage, Source, open_sink


def produce(
    cfg: KafkaConfig,
    client: str,
    values: Sequence[bytes],
    *,
    topic: str | None = None,
    keys: Sequence[bytes | None] | None = None,
    headers: Sequence[list[tuple[str, bytes]]] | None = None,
) -> None:
    """Produce ``values`` (with ``keys`` and ``headers``) to ``topic`` and flush."""
    with open_sink(cfg, client=client) as sink:
        for i, value in enumerate(values):
            sink.produce(
                topic or cfg.input_topic,
                value,
                keys[i] if keys else None,
                headers[i] if headers else (),
            )
        sink.flush(30.0)


def drain(
    source: Source,
    n: int,
    *,
    timeout_s: float = 30.0,
    max_records: int = 500,
    until: Callable[[list[RawMessage]], bool] | None = None,
) -> list[RawMessage]:
    """Poll until ``n`` messages came (or ``until(messages)`` holds); fails after ``timeout_s``."""
    got: list[RawMessage] = []
    deadline = time.monotonic() + timeout_s
    while not (until(got) if until else len(got) >= n):
        assert time.monotonic() < deadline, f"only {len(got)} of {n} messages in {timeout_s} s"
        got += source.poll(min(max_records, max(n - len(got), 1)), 0.2)
    return got
