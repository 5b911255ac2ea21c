"""The consumer on confluent-kafka: librdkafka reports connection trouble through an error
callback and error events among the messages; both are sorted here into passing trouble
(counted, the client reconnects by itself) and fatal errors (raised)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from confluent_kafka import OFFSET_STORED, Consumer, KafkaError, KafkaException, TopicPartition

from streammeta.config import KafkaConfig
from streammeta.io.base import Partition, RawMessage, RebalanceListener, Source
from streammeta.io.confluent.common import (
    STATS_MS,
    TIMEOUT_S,
    offset_or_none,
    open_client,
    partitions_of,
    rdkafka,
    to_error,
    tp_of,
)
from streammeta.io.connection import Connection, consumer_settings
from streammeta.io.errors import TransientKafkaError

__all__ = ["ConfluentSource"]


class ConfluentSource(Source):
    """A :class:`~streammeta.io.base.Source` on ``confluent_kafka.Consumer``; connects in the
    background (the first poll waits for it)."""

    client = "confluent"

    def __init__(self, cfg: KafkaConfig, secrets: Mapping[str, str] | None = None) -> None:
        conn = Connection.from_config(cfg, secrets)
        super().__init__(f"{conn.describe()}, group={cfg.group!r}")
        self._assigning: set[Partition] | None = None
        self._starts: dict[Partition, int] = {}
        self._paused: set[Partition] = set()
        self._fatal: KafkaError | None = None
        self._up = True  # until the first statistics say otherwise
        settings = rdkafka(conn.settings(**consumer_settings(cfg)))
        self._consumer = open_client(
            Consumer,
            conn,
            {
                **settings,
                "enable.auto.offset.store": False,
                "error_cb": self._on_error,
                "stats_cb": self._on_stats,
                "statistics.interval.ms": STATS_MS,
            },
        )

    def _on_stats(self, text: str) -> None:
        """librdkafka's statistics (served by ``poll``): is any broker connection up?"""
        brokers = json.loads(text).get("brokers", {})
        self._up = any(b.get("state") == "UP" for b in brokers.values())

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._fatal = err
        else:
            self._transient(err.str())

    def _on_assign(self, consumer: Consumer, tps: list[TopicPartition]) -> None:
        """Let the listener pick start offsets (``seek`` records them), then take the
        partitions; the others start at the committed offset."""
        parts = partitions_of(tps)
        self._assigning, self._starts = set(parts), {}
        try:
            self._notify("on_assigned", parts)
        finally:
            self._assigning = None
            consumer.assign([tp_of(p, self._starts.get(p, OFFSET_STORED)) for p in parts])

    def _on_revoke(self, _consumer: Consumer, tps: list[TopicPartition]) -> None:
        self._paused.difference_update(partitions_of(tps))
        self._notify("on_revoked", partitions_of(tps))

    def _on_lost(self, _consumer: Consumer, tps: list[TopicPartition]) -> None:
        self._paused.difference_update(partitions_of(tps))
        self._notify("on_lost", partitions_of(tps))

    def subscribe(self, topics: Sequence[str], listener: RebalanceListener | None = None) -> None:
        self._listener = listener or RebalanceListener()
        self._consumer.subscribe(
            list(topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

    def assign(self, partitions: Iterable[Partition]) -> None:
        self._paused.clear()
        self._consumer.assign([tp_of(p) for p in partitions])

    def poll(self, max_records: int, timeout_s: float) -> list[RawMessage]:
        try:
            messages: list[Any] = self._consumer.consume(max_records, timeout_s)
        except KafkaException as exc:
            self._raise_unless_passing(exc.args[0], "poll")
            messages = []
        out = []
        for m in messages:
            err = m.error()
            if err is None:
                stamp = m.timestamp()[1]
                out.append(
                    RawMessage(
                        m.topic(),
                        m.partition(),
                        m.offset(),
                        m.key(),
                        m.value(),
                        m.headers() or (),
                        stamp,
                    )
                )
            else:
                self._raise_unless_passing(err, f"poll {m.topic()}[{m.partition()}]")
        if self._fatal is not None:
            raise to_error(self._fatal, "consumer")
        return self._flowing(out)

    def _raise_unless_passing(self, err: KafkaError, doing: str) -> None:
        error = to_error(err, doing)
        if not isinstance(error, TransientKafkaError):
            raise error
        self._transient(error)

    def commit(self, offsets: Mapping[Partition, int]) -> None:
        self._check_offsets(offsets)
        if not offsets:
            return
        doing = f"commit {dict(offsets)}"
        try:
            results = self._consumer.commit(
                offsets=[tp_of(p, o) for p, o in offsets.items()], asynchronous=False
            )
        except KafkaException as exc:
            raise to_error(exc.args[0], doing) from exc
        for tp in results or ():
            if tp.error is not None:
                raise to_error(tp.error, doing)

    def committed(self, partitions: Iterable[Partition]) -> dict[Partition, int | None]:
        try:
            tps = self._consumer.committed([tp_of(p) for p in partitions], timeout=TIMEOUT_S)
        except KafkaException as exc:
            raise to_error(exc.args[0], "fetch committed offsets") from exc
        return {(tp.topic, tp.partition): offset_or_none(tp.offset) for tp in tps}

    def seek(self, partition: Partition, offset: int) -> None:
        """Within ``on_assigned`` the offset is where the partition starts; later a seek on a
        partition whose first fetch has not begun (librdkafka refuses those) re-assigns it."""
        if self._assigning is not None and partition in self._assigning:
            self._check_offsets({partition: offset})
            self._starts[partition] = offset
            return
        self._check_seek(partition, offset)
        try:
            self._consumer.seek(tp_of(partition, offset))
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._STATE:
                raise to_error(exc.args[0], f"seek {partition} to {offset}") from exc
            here = {p: self.position(p) for p in self.assignment()}
            here[partition] = offset
            self._consumer.assign(
                [tp_of(p, OFFSET_STORED if o is None else o) for p, o in here.items()]
            )

    def pause(self, partitions: Iterable[Partition]) -> None:
        parts = list(partitions)
        self._consumer.pause([tp_of(p) for p in parts])
        self._paused.update(parts)

    def resume(self, partitions: Iterable[Partition]) -> None:
        parts = list(partitions)
        self._consumer.resume([tp_of(p) for p in parts])
        self._paused.difference_update(parts)

    def paused(self) -> set[Partition]:
        return self._paused & self.assignment()

    def assignment(self) -> set[Partition]:
        return set(partitions_of(self._consumer.assignment()))

    def position(self, partition: Partition) -> int | None:
        return offset_or_none(self._consumer.position([tp_of(partition)])[0].offset)

    def highwater(self, partition: Partition) -> int | None:
        try:
            _low, high = self._consumer.get_watermark_offsets(tp_of(partition), cached=True)
        except KafkaException:
            return None
        return offset_or_none(high)

    def partitions(self, topic: str) -> list[int]:
        try:
            meta = self._consumer.list_topics(topic, timeout=TIMEOUT_S).topics.get(topic)
        except KafkaException as exc:
            raise to_error(exc.args[0], f"list partitions of {topic!r}") from exc
        return [] if meta is None or meta.error is not None else sorted(meta.partitions)

    def reachable(self) -> bool:
        return self._up

    def close(self, timeout_s: float = 30.0) -> None:
        self._consumer.close()  # librdkafka bounds it by its own timeouts
