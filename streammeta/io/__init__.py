"""Sources and sinks: Kafka on kafka-python or confluent-kafka, the embedded broker, the record
decoder and the stream simulator.

The run loop polls a :class:`Source` for :class:`RawMessage` batches, turns them into records
and dead letters with :class:`Decoder`, publishes through a :class:`Sink`, and commits with
``Source.commit`` after a ``Sink.flush`` that did not raise.
"""

from streammeta.io.backoff import Backoff
from streammeta.io.base import (
    CommitFailedError,
    DeliveryError,
    KafkaIOError,
    Partition,
    RawMessage,
    RebalanceListener,
    Sink,
    Source,
    TransientKafkaError,
)
from streammeta.io.broker import BrokerError, EmbeddedBroker
from streammeta.io.connection import CLIENTS, Connection
from streammeta.io.decode import Decoder
from streammeta.io.kafka import (
    available_clients,
    ensure_topics,
    open_sink,
    open_source,
    resolve_client,
)
from streammeta.io.records import REASONS, DeadLetter, Decoded, Records

__all__ = [
    "CLIENTS",
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
    "KafkaIOError",
    "Partition",
    "RawMessage",
    "RebalanceListener",
    "Records",
    "Sink",
    "Source",
    "TransientKafkaError",
    "available_clients",
    "ensure_topics",
    "open_sink",
    "open_source",
    "resolve_client",
]
