"""The producer on confluent-kafka, and topic creation. Keys are partitioned with murmur2 like
kafka-python and the Java client, so a key lands on the same partition whichever client produced
it."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streammeta.config import KafkaConfig
from streammeta.io.base import Sink
from streammeta.io.confluent.common import LOG, TIMEOUT_S, open_client, rdkafka, to_error
from streammeta.io.connection import PRODUCE_BLOCK_S, Connection, producer_settings
from streammeta.io.errors import TransientKafkaError

__all__ = ["ConfluentSink", "create_topics"]


class ConfluentSink(Sink):
    """A :class:`~streammeta.io.base.Sink` on ``confluent_kafka.Producer``. When the local
    queue is full, ``produce`` serves delivery reports and retries for up to 10 s."""

    client = "confluent"

    def __init__(self, cfg: KafkaConfig, secrets: Mapping[str, str] | None = None) -> None:
        conn = Connection.from_config(cfg, secrets)
        super().__init__(conn.describe())
        self._unserved = 0
        self._producer = open_client(
            Producer,
            conn,
            {
                **rdkafka(conn.settings(**producer_settings(cfg))),
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
        LOG.warning("producer: %s", err.str())

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
                raise to_error(exc.args[0], f"produce to {topic!r}") from exc
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
    admin = open_client(AdminClient, conn, rdkafka(conn.settings()))
    futures = admin.create_topics(
        [NewTopic(name, partitions, -1) for name in names], request_timeout=TIMEOUT_S
    )
    created = []
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise to_error(exc.args[0], f"create topic {name!r}") from exc
    return created
