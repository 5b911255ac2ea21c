"""Source and sink on kafka-python 3.x, the client every installation has.

Two kafka-python 3.0 behaviours are worked around here. It runs its network loop, and the
rebalance listener, on its own IO thread, where a blocking call such as a commit would deadlock:
the source runs the listener on a short worker thread and awaits it from the IO loop, so
``on_revoked`` can checkpoint and commit while heartbeats go on (the caller is blocked in
``poll`` all that time). And a group join that completes while no ``poll`` is waiting for it is
thrown away and started again, so a member that polls briefly between long pieces of work can
rejoin for ever: while the member is not in a stable group, ``poll`` waits up to the session
timeout for the join to finish.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence

from kafka import (
    KafkaConsumer,
    KafkaProducer,
    OffsetAndMetadata,
    TopicPartition,
)
from kafka import errors as kerr
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.consumer.subscription_state import (
    AsyncConsumerRebalanceListener,
)
from kafka.structs import MemberState

from streammeta.config import KafkaConfig
from streammeta.io.base import KafkaClient, Partition, RawMessage, RebalanceListener, Sink, Source
from streammeta.io.connection import Connection, consumer_settings, producer_settings
from streammeta.io.errors import CommitFailedError, KafkaIOError, TransientKafkaError

__all__ = ["CLIENT", "KafkaPythonSink", "KafkaPythonSource", "create_topics"]

_COMMIT_LOST = (
    kerr.CommitFailedError,
    kerr.RebalanceInProgressError,
    kerr.IllegalGenerationError,
    kerr.UnknownMemberIdError,
)
_TIMEOUT_MS = 30_000
_LISTENER_TICK_S = 0.005


class _HideConfig(logging.Filter):
    """Drops the admin client's debug dump of its configuration, which holds the passwords."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "with configuration" not in str(record.msg)


logging.getLogger("kafka.admin.client").addFilter(_HideConfig())


def _error(exc: Exception, doing: str) -> KafkaIOError:
    """``exc`` from kafka-python as a streammeta error, transient when retrying can help."""
    if isinstance(exc, _COMMIT_LOST):
        return CommitFailedError(f"{doing}: {exc}")
    passing = getattr(exc, "retriable", False) or isinstance(exc, kerr.BrokerNotAvailableError)
    return (TransientKafkaError if passing else KafkaIOError)(f"{doing}: {exc}")


def _tp(partition: Partition) -> TopicPartition:
    return TopicPartition(*partition)


def _parts(tps: Iterable[TopicPartition]) -> list[Partition]:
    return [(tp.topic, tp.partition) for tp in tps]


class _Listener(AsyncConsumerRebalanceListener):
    """Hands kafka-python's rebalance events to the source on a worker thread."""

    def __init__(self, source: KafkaPythonSource) -> None:
        self._source = source

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._source._in_worker("on_assigned", _parts(assigned))

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._source._in_worker("on_revoked", _parts(revoked))

    async def on_partitions_lost(self, lost: Iterable[TopicPartition]) -> None:
        await self._source._in_worker("on_lost", _parts(lost))


class KafkaPythonSource(Source):
    """A :class:`~streammeta.io.base.Source` on ``kafka.KafkaConsumer``. Connecting blocks
    until the brokers answer (raises :class:`TransientKafkaError` after 30 s)."""

    client = "kafka-python"

    def __init__(self, cfg: KafkaConfig, secrets: Mapping[str, str] | None = None) -> None:
        conn = Connection.from_config(cfg, secrets)
        super().__init__(f"{conn.describe()}, group={cfg.group!r}")
        self._join_wait_s = cfg.session_timeout_ms / 1000
        self._subscribed = False
        try:
            self._consumer = KafkaConsumer(**conn.settings(**consumer_settings(cfg)))
        except kerr.KafkaError as exc:
            raise _error(exc, f"connecting to {conn.bootstrap_servers}") from exc

    async def _in_worker(self, event: str, partitions: list[Partition]) -> None:
        """Run listener ``event`` on a worker thread; the IO loop keeps turning meanwhile."""
        worker = threading.Thread(
            target=self._notify, args=(event, partitions), name=f"streammeta-{event}", daemon=True
        )
        worker.start()
        while worker.is_alive():
            await self._consumer._net.sleep(_LISTENER_TICK_S)

    def subscribe(self, topics: Sequence[str], listener: RebalanceListener | None = None) -> None:
        self._listener = listener or RebalanceListener()
        self._consumer.subscribe(list(topics), listener=_Listener(self))
        self._subscribed = True

    def assign(self, partitions: Iterable[Partition]) -> None:
        self._consumer.assign([_tp(p) for p in partitions])
        self._subscribed = False

    def poll(self, max_records: int, timeout_s: float) -> list[RawMessage]:
        if self._subscribed and self._consumer.group_metadata().state != MemberState.STABLE:
            timeout_s = max(timeout_s, self._join_wait_s)
        try:
            batches = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        except kerr.KafkaError as exc:
            error = _error(exc, "poll")
            if not isinstance(error, TransientKafkaError):
                raise error from exc
            self._transient(error)
            batches = {}
        return self._flowing(
            [
                RawMessage(r.topic, r.partition, r.offset, r.key, r.value, r.headers, r.timestamp)
                for records in batches.values()
                for r in records
            ]
        )

    def commit(self, offsets: Mapping[Partition, int]) -> None:
        self._check_offsets(offsets)
        if not offsets:
            return
        request = {_tp(p): OffsetAndMetadata(offset, "", -1) for p, offset in offsets.items()}
        try:
            self._consumer.commit(request, timeout_ms=_TIMEOUT_MS)
        except kerr.KafkaError as exc:
            raise _error(exc, f"commit {dict(offsets)}") from exc

    def committed(self, partitions: Iterable[Partition]) -> dict[Partition, int | None]:
        try:
            return {p: self._consumer.committed(_tp(p), timeout_ms=_TIMEOUT_MS) for p in partitions}
        except kerr.KafkaError as exc:
            raise _error(exc, "fetch committed offsets") from exc

    def seek(self, partition: Partition, offset: int) -> None:
        self._check_seek(partition, offset)
        self._consumer.seek(_tp(partition), offset)

    def pause(self, partitions: Iterable[Partition]) -> None:
        self._consumer.pause(*map(_tp, partitions))

    def resume(self, partitions: Iterable[Partition]) -> None:
        self._consumer.resume(*map(_tp, partitions))

    def paused(self) -> set[Partition]:
        return set(_parts(self._consumer.paused()))

    def assignment(self) -> set[Partition]:
        return set(_parts(self._consumer.assignment()))

    def position(self, partition: Partition) -> int | None:
        try:
            offset = self._consumer.position(_tp(partition), timeout_ms=0)
        except kerr.KafkaError:
            return None
        return None if offset is None else int(offset)

    def highwater(self, partition: Partition) -> int | None:
        high = self._consumer.highwater(_tp(partition))
        return None if high is None else int(high)

    def partitions(self, topic: str) -> list[int]:
        return sorted(self._consumer.partitions_for_topic(topic) or ())

    def reachable(self) -> bool:
        conns = self._consumer._manager._conns  # kafka-python 3.0 keeps only live ones
        return any(conn.connected for conn in list(conns.values()))

    def close(self, timeout_s: float = 30.0) -> None:
        self._consumer.close(autocommit=False, timeout_ms=int(timeout_s * 1000))


class KafkaPythonSink(Sink):
    """A :class:`~streammeta.io.base.Sink` on ``kafka.KafkaProducer`` (thread-safe)."""

    client = "kafka-python"

    def __init__(self, cfg: KafkaConfig, secrets: Mapping[str, str] | None = None) -> None:
        conn = Connection.from_config(cfg, secrets)
        super().__init__(conn.describe())
        self._pending = 0
        try:
            self._producer = KafkaProducer(**conn.settings(**producer_settings(cfg)))
        except kerr.KafkaError as exc:
            raise _error(exc, f"connecting to {conn.bootstrap_servers}") from exc

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        try:
            future = self._producer.send(topic, value=value, key=key, headers=list(headers))
        except kerr.KafkaError as exc:
            raise _error(exc, f"produce to {topic!r}") from exc
        with self._lock:
            self._pending += 1
        future.add_callback(self._delivered).add_errback(self._undelivered)

    def _delivered(self, _metadata: object) -> None:
        with self._lock:
            self._pending -= 1

    def _undelivered(self, error: BaseException) -> None:
        self._delivered(None)
        self._failure(error)

    def pending(self) -> int:
        with self._lock:
            return self._pending

    def _wait(self, timeout_s: float) -> int:
        with contextlib.suppress(kerr.KafkaTimeoutError):
            self._producer.flush(timeout=timeout_s)
        with self._lock:
            return self._pending

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.close(timeout=timeout_s)


def create_topics(conn: Connection, names: Sequence[str], partitions: int) -> list[str]:
    """Create the topics of ``names`` that do not exist yet; the names created."""
    try:
        admin = KafkaAdminClient(**conn.settings())
    except kerr.KafkaError as exc:
        raise _error(exc, f"connecting to {conn.bootstrap_servers}") from exc
    created = []
    try:
        existing = set(admin.list_topics())
        for name in (name for name in names if name not in existing):
            try:
                admin.create_topics([NewTopic(name, partitions, -1)])
                created.append(name)
            except kerr.TopicAlreadyExistsError:
                continue
    except kerr.KafkaError as exc:
        raise _error(exc, f"create topics {list(names)}") from exc
    finally:
        admin.close()
    return created


#: The client :data:`streammeta.registry.KAFKA_CLIENTS` names ``kafka-python``.
CLIENT = KafkaClient(KafkaPythonSource, KafkaPythonSink, create_topics)
