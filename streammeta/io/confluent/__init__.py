"""Kafka on confluent-kafka (librdkafka), used when the ``fast`` extra is installed: several
times faster than kafka-python and the first choice of ``kafka.client = auto``: the consumer
(:mod:`.source`), the producer and topic creation (:mod:`.sink`), librdkafka's errors and
setting names (:mod:`.common`).
"""

from streammeta.io.base import KafkaClient
from streammeta.io.confluent.common import rdkafka
from streammeta.io.confluent.sink import ConfluentSink, create_topics
from streammeta.io.confluent.source import ConfluentSource

__all__ = ["CLIENT", "ConfluentSink", "ConfluentSource"]

#: The client :data:`streammeta.registry.KAFKA_CLIENTS` names ``confluent``.
CLIENT = KafkaClient(ConfluentSource, ConfluentSink, create_topics, rdkafka)
