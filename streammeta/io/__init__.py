"""Sources and sinks: Kafka on the clients of :data:`streammeta.registry.KAFKA_CLIENTS`
(kafka-python; confluent-kafka when installed), the embedded broker, the record decoder and
encoder and the stream simulator.

The run loop polls a :class:`Source` for :class:`RawMessage` batches, turns them into records
and dead letters with :class:`Decoder`, publishes predictions (:func:`encode_predictions`, class
names through the decoder's :class:`Labels`) through a :class:`Sink`, and commits with
``Source.commit`` after a ``Sink.flush`` that did not raise.
"""

from streammeta.io.backoff import Backoff
from streammeta.io.base import KafkaClient, Partition, RawMessage, RebalanceListener, Sink, Source
from streammeta.io.broker import BrokerError, EmbeddedBroker
from streammeta.io.connection import Connection
from streammeta.io.decode import Decoder
from streammeta.io.encode import Prediction, encode_predictions
from streammeta.io.errors import (
    CommitFailedError,
    DeliveryError,
    KafkaIOError,
    TransientKafkaError,
)
from streammeta.io.kafka import (
    available_clients,
    ensure_topics,
    kafka_client,
    open_sink,
    open_source,
    resolve_client,
)
from streammeta.io.labels import Labels
from streammeta.io.records import REASONS, DeadLetter, Decoded, Records

__all__ = [
    "REASONS",
    "Backoff",
    "BrokerError",
    "CommitFailedError",
    "Connection",
    "DeadLetter",
    "Decoded",
    "Decoder",
    "DeliveryError",
    "EmbeddedBroker",
    "KafkaClient",
    "KafkaIOError",
    "Labels",
    "Partition",
    "Prediction",
    "RawMessage",
    "RebalanceListener",
    "Records",
    "Sink",
    "Source",
    "TransientKafkaError",
    "available_clients",
    "encode_predictions",
    "ensure_topics",
    "kafka_client",
    "open_sink",
    "open_source",
    "resolve_client",
]
