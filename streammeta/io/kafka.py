"""Open a source or a sink on the client ``kafka.client`` names, and create topics.

The clients are the entries of :data:`streammeta.registry.KAFKA_CLIENTS`, each a
:class:`~streammeta.io.base.KafkaClient`; ``auto`` takes the first whose library is installed
(confluent-kafka, several times faster, else kafka-python, which every installation has). All
behave the same behind :class:`~streammeta.io.base.Source` and :class:`~streammeta.io.base.Sink`.

>>> available_clients()[-1], resolve_client("kafka-python")
('kafka-python', 'kafka-python')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from streammeta.config import KafkaConfig
from streammeta.io.base import KafkaClient, Sink, Source
from streammeta.io.connection import Connection
from streammeta.io.errors import KafkaIOError
from streammeta.registry import KAFKA_CLIENTS

__all__ = [
    "available_clients",
    "ensure_topics",
    "kafka_client",
    "open_sink",
    "open_source",
    "resolve_client",
]


def available_clients() -> tuple[str, ...]:
    """The clients whose library is installed here, in order of preference."""
    return tuple(e.name for e in KAFKA_CLIENTS if e.available)


def resolve_client(name: str) -> str:
    """The client ``name`` (``auto`` or a name in the registry) stands for here."""
    if name == "auto":
        return available_clients()[0]
    if name not in KAFKA_CLIENTS:
        raise ValueError(KAFKA_CLIENTS.unknown(name) + " or 'auto'")
    entry = KAFKA_CLIENTS.entry(name)
    if not entry.available:
        raise KafkaIOError(
            f"{KAFKA_CLIENTS.key} = {name!r} ({entry.help}) but its module {entry.requires} is "
            f"not installed: {entry.install or 'install it'}, or set {KAFKA_CLIENTS.key} = "
            f"'auto' or one of {', '.join(map(repr, available_clients()))}"
        )
    return name


def kafka_client(name: str) -> KafkaClient:
    """The client ``name`` (``auto`` or a name in the registry) stands for, loaded."""
    client: KafkaClient = KAFKA_CLIENTS.load(resolve_client(name))
    return client


def open_source(
    cfg: KafkaConfig, secrets: Mapping[str, str] | None = None, *, client: str | None = None
) -> Source:
    """A source for ``cfg`` (group, session timeout, connection) on ``client`` (default
    ``cfg.client``); ``secrets`` defaults to :func:`~streammeta.config.kafka_secrets`. Call
    ``subscribe`` or ``assign`` on it next."""
    return kafka_client(client or cfg.client).source(cfg, secrets)


def open_sink(
    cfg: KafkaConfig, secrets: Mapping[str, str] | None = None, *, client: str | None = None
) -> Sink:
    """A sink (producer) for ``cfg`` on ``client`` (default ``cfg.client``)."""
    return kafka_client(client or cfg.client).sink(cfg, secrets)


def ensure_topics(
    cfg: KafkaConfig,
    names: Sequence[str],
    partitions: int = 1,
    *,
    secrets: Mapping[str, str] | None = None,
    client: str | None = None,
) -> list[str]:
    """Create the topics of ``names`` that do not exist, with ``partitions`` partitions and
    the cluster's default replication; existing topics are left as they are. Returns the names
    created."""
    if partitions < 1:
        raise ValueError(f"partitions={partitions!r}: must be at least 1")
    conn = Connection.from_config(cfg, secrets)
    return kafka_client(client or cfg.client).create_topics(conn, list(names), partitions)
