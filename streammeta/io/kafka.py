"""Open a source or a sink on the client ``kafka.client`` names, and create topics.

``auto`` prefers confluent-kafka (librdkafka, several times faster) when it is importable and
falls back to kafka-python, which every installation has. Both behave the same behind
:class:`~streammeta.io.base.Source` and :class:`~streammeta.io.base.Sink`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping, Sequence
from types import ModuleType

from streammeta.config import KafkaConfig
from streammeta.io.base import KafkaIOError, Sink, Source
from streammeta.io.connection import CLIENTS, Client, Connection

__all__ = ["available_clients", "ensure_topics", "open_sink", "open_source", "resolve_client"]

_MODULES: dict[Client, str] = {
    "kafka-python": "streammeta.io.kafka_python",
    "confluent": "streammeta.io.confluent",
}


def available_clients() -> tuple[Client, ...]:
    """The clients importable here, fastest first."""
    return tuple(c for c in reversed(CLIENTS) if c != "confluent" or _has_confluent())


def _has_confluent() -> bool:
    return importlib.util.find_spec("confluent_kafka") is not None


def resolve_client(name: str) -> Client:
    """The client ``name`` (``auto``, ``kafka-python`` or ``confluent``) stands for here."""
    if name == "auto":
        return available_clients()[0]
    if name == "confluent" and not _has_confluent():
        raise KafkaIOError(
            "kafka.client = 'confluent' but confluent-kafka is not installed: install it "
            "(pip install 'streammeta[fast]') or set kafka.client = 'kafka-python' or 'auto'"
        )
    if name not in CLIENTS:
        raise ValueError(
            f"kafka client {name!r}: must be one of 'auto', 'kafka-python', 'confluent'"
        )
    return name


def _impl(cfg: KafkaConfig, client: str | None) -> ModuleType:
    return importlib.import_module(_MODULES[resolve_client(client or cfg.client)])


def open_source(
    cfg: KafkaConfig, secrets: Mapping[str, str] | None = None, *, client: str | None = None
) -> Source:
    """A source for ``cfg`` (group, session timeout, connection) on ``client`` (default
    ``cfg.client``); ``secrets`` defaults to :func:`~streammeta.config.kafka_secrets`. Call
    ``subscribe`` or ``assign`` on it next."""
    source: Source = _impl(cfg, client).SOURCE(cfg, secrets)
    return source


def open_sink(
    cfg: KafkaConfig, secrets: Mapping[str, str] | None = None, *, client: str | None = None
) -> Sink:
    """A sink (producer) for ``cfg`` on ``client`` (default ``cfg.client``)."""
    sink: Sink = _impl(cfg, client).SINK(cfg, secrets)
    return sink


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
    created: list[str] = _impl(cfg, client).create_topics(conn, list(names), partitions)
    return created
