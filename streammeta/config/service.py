"""The sections of the running service: Kafka, checkpoints and shutdown, the metrics endpoint,
logging, and the demo. The Kafka client's choices come from
:data:`streammeta.registry.KAFKA_CLIENTS`.

>>> KafkaConfig(bootstrap_servers="kafka:9092").client
'auto'
>>> try:
...     KafkaConfig(bootstrap_servers="kafka")
... except ValueError as exc:  # a ConfigError
...     print(exc)  # doctest: +ELLIPSIS
kafka.bootstrap_servers = 'kafka' (argument): must be HOST:PORT[,HOST:PORT...] with each PORT ...
"""

import re
from dataclasses import dataclass
from typing import ClassVar, Literal

from streammeta.config.fields import Rule, Section, setting
from streammeta.registry import KAFKA_CLIENTS

__all__ = [
    "DemoConfig",
    "KafkaConfig",
    "LogConfig",
    "MetricsConfig",
    "ServiceConfig",
]

#: One broker address: a host name, an IPv4 address or a bracketed IPv6 address, and a port.
_BROKER = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})")


def _brokers(text: str) -> bool:
    """Whether ``text`` is empty or ``HOST:PORT[,HOST:PORT...]`` with every port in 1..65535.

    >>> [_brokers(t) for t in ("", "kafka:9092", "a:1, 10.0.0.2:65535", "[::1]:9092")]
    [True, True, True, True]
    >>> [_brokers(t) for t in ("foo:bar", "kafka", "a:0", "a:70000", "a:1,", " ")]
    [False, False, False, False, False, False]
    """
    found = (_BROKER.fullmatch(part.strip()) for part in text.split(","))
    return not text or all(m is not None and 1 <= int(m[1]) <= 65535 for m in found)


@dataclass(frozen=True, slots=True)
class KafkaConfig(Section):
    """Kafka topics, client and connection. Secrets are never fields (so never printed): the
    SASL password and the SSL key password come from ``STREAMMETA_KAFKA_SASL_PASSWORD`` /
    ``STREAMMETA_KAFKA_SSL_KEY_PASSWORD`` or from the files named here."""

    SECTION: ClassVar[str] = "kafka"
    RULES: ClassVar[tuple[Rule, ...]] = (
        (
            ("security_protocol", "sasl_username"),
            lambda v: not v["security_protocol"].startswith("SASL") or bool(v["sasl_username"]),
            "SASL needs kafka.sasl_username (and the password in "
            "STREAMMETA_KAFKA_SASL_PASSWORD or kafka.sasl_password_file)",
        ),
    )

    bootstrap_servers: str = setting(
        "",
        "HOST:PORT[,HOST:PORT...]; empty: demo starts an embedded broker on loopback",
        valid=(
            _brokers,
            "HOST:PORT[,HOST:PORT...] with each PORT from 1 to 65535 (e.g. 'localhost:9092', "
            "'[::1]:9092'), or empty for the demo's embedded broker",
        ),
    )
    client: str = setting(
        "auto",
        "Kafka client library: auto (the first of these that is installed), or "
        + KAFKA_CLIENTS.help(),
        choices=("auto", *KAFKA_CLIENTS.names),
    )
    input_topic: str = setting("streammeta.records", "topic the records are read from")
    output_topic: str = setting("streammeta.predictions", "topic predictions are written to")
    dlq_topic: str = setting("streammeta.dead-letters", "topic bad records are written to")
    meta_topic: str = setting(
        "",
        "topic on which the instances of the group share their meta-parameters (create it "
        "compacted: cleanup.policy=compact, keyed by instance); empty: each instance "
        "meta-learns alone",
    )
    label_topic: str = setting(
        "",
        'topic of labels that arrive after their records ({"id": ..., "y": ...}), read '
        "by the same group; empty: labels come on the input topic. Produce a label with the "
        "same message key as its record, so that both land on the same partition number",
    )
    group: str = setting("streammeta", "consumer group id")
    client_id: str = setting("streammeta", "client id shown to the brokers")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = setting(
        "PLAINTEXT", "how to reach the brokers"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = setting(
        "PLAIN", "SASL mechanism (SASL protocols only)"
    )
    sasl_username: str = setting("", "SASL user name")
    sasl_password_file: str = setting("", "file holding the SASL password")
    ssl_cafile: str = setting("", "CA certificate file (PEM) to verify the brokers")
    ssl_certfile: str = setting("", "client certificate file (PEM)")
    ssl_keyfile: str = setting("", "client private key file (PEM)")
    ssl_key_password_file: str = setting("", "file holding the client key's password")
    max_message_bytes: int = setting(
        1_000_000, "input messages larger than this go to the dead-letter topic", ge=1
    )
    poll_max_records: int = setting(500, "most messages taken per poll", ge=1)
    session_timeout_ms: int = setting(
        10_000, "consumer group session timeout (a group join waits about half)", ge=1000
    )


@dataclass(frozen=True, slots=True)
class ServiceConfig(Section):
    """The learner service's checkpoints (``run``, ``demo``)."""

    SECTION: ClassVar[str] = "service"
    checkpoint_dir: str = setting("checkpoints", "directory of the checkpoint file")
    checkpoint_records: int = setting(
        10_000, "input messages between checkpoints (and offset commits)", ge=1
    )
    checkpoint_seconds: float = setting(30.0, "seconds between checkpoints at most", gt=0)
    label_window: int = setting(
        100_000,
        "records without a label kept (by id) for a label that arrives later; the oldest "
        "expire first (counted); 0: a record without y is never learned from",
        ge=0,
    )
    label_window_seconds: float = setting(
        86_400.0, "seconds a record waits for its label at most", gt=0
    )
    micro_batch: int = setting(
        32,
        "records per learning step: smaller adapts in fewer records, larger runs faster",
        ge=1,
    )
    max_in_flight: int = setting(
        50_000,
        "messages produced but not yet acknowledged above which input is paused (polling "
        "goes on, so the group keeps the consumer); resumed at half",
        ge=1,
    )
    offset_reset: Literal["earliest", "latest", "fail"] = setting(
        "earliest",
        "where a partition resumes when its committed or checkpointed offset lies beyond the "
        "topic's end (topic re-created or truncated): earliest re-reads it from its first "
        "record, latest skips to its end, fail stops the service (exit code 2)",
    )
    flush_timeout: float = setting(
        30.0,
        "seconds a checkpoint waits for the broker to acknowledge the outputs it covers; "
        "past it the checkpoint is retried with backoff (nothing is lost or rewound)",
        gt=0,
    )
    shutdown_grace: float = setting(
        10.0,
        "seconds SIGTERM or Ctrl-C waits to deliver, checkpoint and commit; past it the service "
        "exits with code 3, keeping the last checkpoint (records since are answered again)",
        gt=0,
    )
    progress_seconds: float = setting(
        30.0, "seconds between progress log lines (records/s, lag, losses; 0 = none)", ge=0
    )


@dataclass(frozen=True, slots=True)
class MetricsConfig(Section):
    """The HTTP endpoint serving /metrics, /healthz and /readyz."""

    SECTION: ClassVar[str] = "metrics"
    port: int = setting(
        0, "HTTP port for /metrics, /healthz and /readyz (0 = disabled)", ge=0, le=65535
    )
    host: str = setting(
        "127.0.0.1",
        "address the metrics endpoint listens on (0.0.0.0: every interface, as in deploy/)",
    )
    stale_seconds: float = setting(
        300.0, "/readyz fails when processed records wait longer than this for a checkpoint", gt=0
    )


@dataclass(frozen=True, slots=True)
class MetaConfig(Section):
    """Sharing the meta-learner with the other instances of the consumer group, through
    ``kafka.meta_topic`` (off while it is empty)."""

    SECTION: ClassVar[str] = "meta"
    sync_seconds: float = setting(
        30.0,
        "seconds between publishing this instance's meta-parameters to kafka.meta_topic and "
        "merging the other instances' (averaged, weighted by the tasks each learned since)",
        gt=0,
    )
    instance: str = setting(
        "",
        "this instance's name on the meta topic (its message key); empty: host name and "
        "checkpoint directory, stable across restarts",
    )


@dataclass(frozen=True, slots=True)
class LogConfig(Section):
    """What the service and the demo log, and how."""

    SECTION: ClassVar[str] = "log"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = setting("INFO", "lowest level logged")
    format: Literal["text", "json"] = setting(
        "text", "text: one readable line per event; json: one JSON object per line"
    )


@dataclass(frozen=True, slots=True)
class DemoConfig(Section):
    """The ``demo`` command."""

    SECTION: ClassVar[str] = "demo"
    duration: float = setting(30.0, "seconds the demo runs", gt=0)
    records: int = setting(0, "records to process (0 = bounded by duration only)", ge=0)
    out: str = setting("demo-out", "directory the report is written to")
    bad_every: int = setting(
        1000, "plant a bad record every N records, to show the dead-letter path (0 = none)", ge=0
    )
    label_delay: int = setting(
        0,
        "publish each record without its y and its label ({id, y}) N records later, to show "
        "labels that arrive later (0 = labels inside the records)",
        ge=0,
    )
