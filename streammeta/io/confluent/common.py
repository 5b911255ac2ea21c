"""librdkafka's vocabulary: its errors as streammeta's, its setting names, its partitions.

>>> rdkafka({"bootstrap_servers": "b:9092", "max_poll_records": 500})
{'bootstrap.servers': 'b:9092'}
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from confluent_kafka import OFFSET_STORED, KafkaError, KafkaException, TopicPartition

from streammeta.io.base import Partition
from streammeta.io.connection import Connection
from streammeta.io.errors import CommitFailedError, KafkaIOError, TransientKafkaError

__all__ = [
    "LOG",
    "STATS_MS",
    "TIMEOUT_S",
    "offset_or_none",
    "open_client",
    "partitions_of",
    "rdkafka",
    "to_error",
    "tp_of",
]

LOG = logging.getLogger(__package__)
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
STATS_MS = 1000
TIMEOUT_S = 30.0
_C = TypeVar("_C")

#: kafka-python setting -> librdkafka property (None: kafka-python only).
_RDKAFKA: dict[str, str | None] = {
    "bootstrap_servers": "bootstrap.servers",
    "client_id": "client.id",
    "security_protocol": "security.protocol",
    "reconnect_backoff_max_ms": "reconnect.backoff.max.ms",
    "sasl_mechanism": "sasl.mechanism",
    "sasl_plain_username": "sasl.username",
    "sasl_plain_password": "sasl.password",
    "ssl_cafile": "ssl.ca.location",
    "ssl_certfile": "ssl.certificate.location",
    "ssl_keyfile": "ssl.key.location",
    "ssl_password": "ssl.key.password",
    "group_id": "group.id",
    "enable_auto_commit": "enable.auto.commit",
    "auto_offset_reset": "auto.offset.reset",
    "session_timeout_ms": "session.timeout.ms",
    "heartbeat_interval_ms": "heartbeat.interval.ms",
    "max_poll_records": None,
    "allow_auto_create_topics": "allow.auto.create.topics",
    "acks": "acks",
    "enable_idempotence": "enable.idempotence",
    "linger_ms": "linger.ms",
    "max_request_size": "message.max.bytes",
    "delivery_timeout_ms": "delivery.timeout.ms",
    "max_block_ms": None,
}


def rdkafka(settings: dict[str, object]) -> dict[str, object]:
    """``settings`` (kafka-python's names) under librdkafka's names, without those it lacks."""
    return {name: v for k, v in settings.items() if (name := _RDKAFKA[k]) is not None}


def to_error(err: KafkaError, doing: str) -> KafkaIOError:
    """``err`` from librdkafka as a streammeta error, transient when retrying can help."""
    code = err.code()
    if code in _COMMIT_LOST:
        return CommitFailedError(f"{doing}: {err.str()}")
    passing = not err.fatal() and (err.retriable() or code in _PASSING)
    return (TransientKafkaError if passing else KafkaIOError)(f"{doing}: {err.str()}")


def open_client(
    kind: Callable[[dict[str, Any]], _C], conn: Connection, settings: dict[str, Any]
) -> _C:
    """A librdkafka client logging through Python's logging; a setting it rejects (a missing
    certificate file, say) raises :class:`KafkaIOError`."""
    try:
        return kind({**settings, "logger": LOG})
    except KafkaException as exc:
        doing = (
            f"setting up a client for {conn.bootstrap_servers} (check kafka.ssl_*, kafka.sasl_*)"
        )
        raise to_error(exc.args[0], doing) from exc


def tp_of(partition: Partition, offset: int = OFFSET_STORED) -> TopicPartition:
    return TopicPartition(partition[0], partition[1], offset)


def partitions_of(tps: Iterable[TopicPartition]) -> list[Partition]:
    return [(tp.topic, tp.partition) for tp in tps]


def offset_or_none(offset: int) -> int | None:
    """librdkafka's offset, or ``None`` for its "not known" markers (negative)."""
    return offset if offset >= 0 else None
