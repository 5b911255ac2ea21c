"""Client settings from :class:`~streammeta.config.KafkaConfig`, the same for both clients.

Every setting is written once, under kafka-python's name; a client whose library names them
otherwise renames them (:attr:`~streammeta.io.base.KafkaClient.settings`), so every client
connects, authenticates, commits and acknowledges the same way.
Passwords go only into the dict handed to the client library; :class:`Connection` never shows
them.

>>> from streammeta.config import KafkaConfig
>>> cfg = KafkaConfig(bootstrap_servers="b:9092", security_protocol="SASL_SSL", sasl_username="u")
>>> conn = Connection.from_config(cfg, {"sasl_password": "s3cret"})
>>> "s3cret" in repr(conn)
False
>>> conn.settings()["sasl_plain_password"]
's3cret'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from streammeta.config import KafkaConfig, kafka_secrets

__all__ = [
    "PRODUCE_BLOCK_S",
    "Connection",
    "consumer_settings",
    "producer_settings",
]

#: Longest pause between reconnection attempts of either client, so that service resumes within
#: about this long after a broker comes back.
RECONNECT_BACKOFF_MAX_MS = 2000
#: How long ``produce`` waits for room in a full local queue before giving up.
PRODUCE_BLOCK_S = 10.0
#: Producer requests may carry a dead letter: the largest accepted input plus its headers.
_HEADER_ROOM = 64 * 1024


@dataclass(frozen=True)
class Connection:
    """Where the brokers are and how to authenticate; the passwords are kept out of ``repr``."""

    bootstrap_servers: str
    client_id: str = "streammeta"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_key_password: str = field(default="", repr=False)

    @classmethod
    def from_config(cls, cfg: KafkaConfig, secrets: Mapping[str, str] | None = None) -> Connection:
        """The connection ``cfg`` describes; ``secrets`` defaults to
        :func:`~streammeta.config.kafka_secrets` (environment or password files)."""
        if not cfg.bootstrap_servers:
            raise ValueError(
                "kafka.bootstrap_servers is empty: set it to HOST:PORT[,HOST:PORT...] "
                "(flag, STREAMMETA_KAFKA__BOOTSTRAP_SERVERS or the [kafka] table), or start a "
                "local broker with `streammeta broker`"
            )
        secrets = kafka_secrets(cfg) if secrets is None else secrets
        return cls(
            bootstrap_servers=cfg.bootstrap_servers,
            client_id=cfg.client_id,
            security_protocol=cfg.security_protocol,
            sasl_mechanism=cfg.sasl_mechanism,
            sasl_username=cfg.sasl_username,
            ssl_cafile=cfg.ssl_cafile,
            ssl_certfile=cfg.ssl_certfile,
            ssl_keyfile=cfg.ssl_keyfile,
            sasl_password=secrets.get("sasl_password", ""),
            ssl_key_password=secrets.get("ssl_key_password", ""),
        )

    def describe(self) -> str:
        """A one-line summary for ``repr`` and logs, without passwords."""
        user = f", sasl_username={self.sasl_username!r}" if self.sasl_username else ""
        return (
            f"bootstrap_servers={self.bootstrap_servers!r}, "
            f"security_protocol={self.security_protocol!r}{user}"
        )

    def settings(self, **extra: object) -> dict[str, object]:
        """The connection settings (plus ``extra``) under kafka-python's names; unset values
        are left out so each library keeps its default."""
        sasl = self.security_protocol.startswith("SASL")
        tls = self.security_protocol.endswith("SSL")
        values: dict[str, object] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
            "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
            "sasl_mechanism": self.sasl_mechanism if sasl else "",
            "sasl_plain_username": self.sasl_username if sasl else "",
            "sasl_plain_password": self.sasl_password if sasl else "",
            "ssl_cafile": self.ssl_cafile if tls else "",
            "ssl_certfile": self.ssl_certfile if tls else "",
            "ssl_keyfile": self.ssl_keyfile if tls else "",
            "ssl_password": self.ssl_key_password if tls else "",
            **extra,
        }
        return {k: v for k, v in values.items() if v != ""}


def consumer_settings(cfg: KafkaConfig) -> dict[str, object]:
    """Consumer behaviour both clients share (kafka-python's names): commits only when asked,
    a new group starts from the earliest offset, heartbeats at a third of the session, reading
    never creates a topic."""
    return {
        "group_id": cfg.group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": cfg.session_timeout_ms,
        "heartbeat_interval_ms": min(3000, cfg.session_timeout_ms // 3),
        "max_poll_records": cfg.poll_max_records,
        "allow_auto_create_topics": False,
    }


def producer_settings(cfg: KafkaConfig) -> dict[str, object]:
    """Producer behaviour both clients share (kafka-python's names): acknowledged by all in-sync
    replicas, batched for 5 ms, large enough for any accepted input message. Not idempotent: a
    broker that lost its producer state (the embedded one after a restart) makes an idempotent
    producer fail for good, and retries that duplicate are within at-least-once anyway."""
    return {
        "acks": "all",
        "enable_idempotence": False,
        "linger_ms": 5,
        "max_request_size": max(cfg.max_message_bytes, 1_000_000) + _HEADER_ROOM,
        "delivery_timeout_ms": 120_000,
        "max_block_ms": int(PRODUCE_BLOCK_S * 1000),
    }
