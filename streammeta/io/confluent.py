"""Source and sink on confluent-kafka (librdkafka), used when the ``fast`` extra is installed.

librdkafka reports connection trouble through an error callback and error events among the
messages; both are sorted here into passing trouble (counted, the client reconnects by itself) and
fatal errors (raised). Keys are partitioned with murmur2 like kafka-python and the Java client, so
a key lands on the same partition whichever client produced it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from confluent_kafka import (
    OFFSET_STORED,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from streammeta.config import KafkaConfig
from streammeta.io.base import (
    CommitFailedError,
    KafkaIOError,
    Partition,
    RawMessage,
    RebalanceListener,
    Sink,
    Source,
    TransientKafkaError,
)
from streammeta.io.connection import (
    PRODUCE_BLOCK_S,
    Connection,
    consumer_settings,
    producer_settings,
)

__all__ = ["SINK", "SOURCE", "ConfluentSink", "ConfluentSource", "create_topics"]

_LOG = logging.getLogger(__name__)
_COMMIT_LOST = {
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError._ASSIGNMENT_LOST,
}
_PASSING = {
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._TIMED_OUT,
    KafkaError._MSG_TIMED_OUT,
    KafkaError._WAIT_COORD,
    KafkaError._RESOLVE,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NETWORK_EXCEPTION,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.BROKER_NOT_AVAILABLE,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,  # a topic not created yet: wait for it, as kafka-python
}
#: How often librdkafka reports its brokers' states (``reachable``), in milliseconds.
_STATS_MS = 1000
_TIMEOUT_S = 30.0
_C = TypeVar("_C")


def _error(err: KafkaError, doing: str) -> KafkaIOError:
    """``err`` from librdkafka as a streammeta error, transient when retrying can help."""
    code = err.code()
    if code in _COMMIT_LOST:
        return CommitFailedError(f"{doing}: {err.str()}")
    passing = not err.fatal() and (err.retriable() or code in _PASSING)
    return (TransientKafkaError if passing else KafkaIOError)(f"{doing}: {err.str()}")


def _open(kind: Callable[[dict[str, Any]], _C], conn: Connection, settings: dict[str, Any]) -> _C:
    """A librdkafka client logging through Python's logging; a setting it rejects (a missing
    certificate file, say) raises :class:`KafkaIOError`."""
    try:
        return kind({**settings, "logger": _LOG})
    except KafkaException as exc:
        doing = (
            f"setting up a client for {conn.bootstrap_servers} (check kafka.ssl_*, kafka.sasl_*)"
        )
        raise _error(exc.args[0], doing) from exc


def _tp(partition: Partition, offset: int = OFFSET_STORED) -> TopicPartition:
    return TopicPartition(partition[0], partition[1], offset)


def _parts(tps: Iterable[TopicPartition]) -> list[Partition]:
    return [(tp.topic, tp.partition) for tp in tps]


def _offset(offset: int) -> int | None:
    """librdkafka's offset, or ``None`` for its "not known" markers (negative)."""
    return offset if offset >= 0 else None


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
        settings = conn.settings("confluent", **consumer_settings(cfg))
        self._consumer = _open(
            Consumer,
            conn,
            {
                **settings,
                "enable.auto.offset.store": False,
                "error_cb": self._on_error,
                "stats_cb": self._on_stats,
                "statistics.interval.ms": _STATS_MS,
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
        parts = _parts(tps)
        self._assigning, self._starts = set(parts), {}
        try:
            self._notify("on_assigned", parts)
        finally:
            self._assigning = None
            consumer.assign([_tp(p, self._starts.get(p, OFFSET_STORED)) for p in parts])

    def _on_revoke(self, _consumer: Consumer, tps: list[TopicPartition]) -> None:
        self._paused.difference_update(_parts(tps))
        self._notify("on_revoked", _parts(tps))

    def _on_lost(self, _consumer: Consumer, tps: list[TopicPartition]) -> None:
        self._paused.difference_update(_parts(tps))
        self._notify("on_lost", _parts(tps))

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
        self._consumer.assign([_tp(p) for p in partitions])

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
            raise _error(self._fatal, "consumer")
        return self._flowing(out)

    def _raise_unless_passing(self, err: KafkaError, doing: str) -> None:
        error = _error(err, doing)
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
                offsets=[_tp(p, o) for p, o in offsets.items()], asynchronous=False
            )
        except KafkaException as exc:
            raise _error(exc.args[0], doing) from exc
        for tp in results or ():
            if tp.error is not None:
                raise _error(tp.error, doing)

    def committed(self, partitions: Iterable[Partition]) -> dict[Partition, int | None]:
        try:
            tps = self._consumer.committed([_tp(p) for p in partitions], timeout=_TIMEOUT_S)
        except KafkaException as exc:
            raise _error(exc.args[0], "fetch committed offsets") from exc
        return {(tp.topic, tp.partition): _offset(tp.offset) for tp in tps}

    def seek(self, partition: Partition, offset: int) -> None:
        """Within ``on_assigned`` the offset is where the partition starts; later a seek on a
        partition whose first fetch has not begun (librdkafka refuses those) re-assigns it."""
        if self._assigning is not None and partition in self._assigning:
            self._check_offsets({partition: offset})
            self._starts[partition] = offset
            return
        self._check_seek(partition, offset)
        try:
            self._consumer.seek(_tp(partition, offset))
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._STATE:
                raise _error(exc.args[0], f"seek {partition} to {offset}") from exc
            here = {p: self.position(p) for p in self.assignment()}
            here[partition] = offset
            self._consumer.assign(
                [_tp(p, OFFSET_STORED if o is None else o) for p, o in here.items()]
            )

    def pause(self, partitions: Iterable[Partition]) -> None:
        parts = list(partitions)
        self._consumer.pause([_tp(p) for p in parts])
        self._paused.update(parts)

    def resume(self, partitions: Iterable[Partition]) -> None:
        parts = list(partitions)
        self._consumer.resume([_tp(p) for p in parts])
        self._paused.difference_update(parts)

    def paused(self) -> set[Partition]:
        return self._paused & self.assignment()

    def assignment(self) -> set[Partition]:
        return set(_parts(self._consumer.assignment()))

    def position(self, partition: Partition) -> int | None:
        return _offset(self._consumer.position([_tp(partition)])[0].offset)

    def highwater(self, partition: Partition) -> int | None:
        try:
            _low, high = self._consumer.get_watermark_offsets(_tp(partition), cached=True)
        except KafkaException:
            return None
        return _offset(high)

    def partitions(self, topic: str) -> list[int]:
        try:
            meta = self._consumer.list_topics(topic, timeout=_TIMEOUT_S).topics.get(topic)
        except KafkaException as exc:
            raise _error(exc.args[0], f"list partitions of {topic!r}") from exc
        return [] if meta is None or meta.error is not None else sorted(meta.partitions)

    def reachable(self) -> bool:
        return self._up

    def close(self, timeout_s: float = 30.0) -> None:
        self._consumer.close()  # librdkafka bounds it by its own timeouts


class ConfluentSink(Sink):
    """A :class:`~streammeta.io.base.Sink` on ``confluent_kafka.Producer``. When the local
    queue is full, ``produce`` serves delivery reports and retries for up to 10 s."""

    client = "confluent"

    def __init__(self, cfg: KafkaConfig, secrets: Mapping[str, str] | None = None) -> None:
        conn = Connection.from_config(cfg, secrets)
        super().__init__(conn.describe())
        self._unserved = 0
        self._producer = _open(
            Producer,
            conn,
            {
                **conn.settings("confluent", **producer_settings(cfg)),
                "partitioner": "murmur2_random",
                "delivery.report.only.error": True,
                "on_delivery": self._on_delivery,
                "error_cb": self._on_error,
            },
        )

    def _on_delivery(self, err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            self._failure(err.str())

    def _on_error(self, err: KafkaError) -> None:
        _LOG.warning("producer: %s", err.str())

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        deadline = time.monotonic() + PRODUCE_BLOCK_S
        while True:
            try:
                self._producer.produce(topic, value, key, headers=list(headers))
                break
            except BufferError:
                if time.monotonic() > deadline:
                    raise TransientKafkaError(
                        f"produce to {topic!r}: the local queue stayed full for "
                        f"{PRODUCE_BLOCK_S:g} s; is the broker reachable?"
                    ) from None
                self._producer.poll(0.05)
            except KafkaException as exc:
                raise _error(exc.args[0], f"produce to {topic!r}") from exc
        self._unserved += 1
        if self._unserved >= 1000:
            self._producer.poll(0)
            self._unserved = 0

    def pending(self) -> int:
        self._producer.poll(0)  # serve the delivery reports that have arrived
        self._unserved = 0
        return len(self._producer)

    def _wait(self, timeout_s: float) -> int:
        return int(self._producer.flush(timeout_s))

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.flush(timeout_s)


def create_topics(conn: Connection, names: Sequence[str], partitions: int) -> list[str]:
    """Create the topics of ``names`` that do not exist yet; the names created."""
    admin = _open(AdminClient, conn, conn.settings("confluent"))
    futures = admin.create_topics(
        [NewTopic(name, partitions, -1) for name in names], request_timeout=_TIMEOUT_S
    )
    created = []
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise _error(exc.args[0], f"create topic {name!r}") from exc
    return created


SOURCE = ConfluentSource
SINK = ConfluentSink
