"""The broker tests of the service share the embedded broker and the configs of the Kafka tests."""

from tests.io.conftest import broker, client, kafka_cfg

__all__ = ["broker", "client", "kafka_cfg"]
