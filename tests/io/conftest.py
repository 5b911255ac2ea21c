"""The embedded broker (one per session, on a free port) and a fresh config per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streammeta.config import KafkaConfig
from streammeta.io import EmbeddedBroker
from streammeta.registry import KAFKA_CLIENTS

#: Every client of the registry; one whose library is not installed is skipped, with the reason.
CLIENTS = [
    pytest.param(
        entry.name,
        id=entry.name,
        marks=pytest.mark.skipif(
            not entry.available, reason=f"{entry.requires} is not installed ({entry.help})"
        ),
    )
    for entry in KAFKA_CLIENTS
]
#: A group join on the embedded broker waits about half the session timeout.
SESSION_TIMEOUT_MS = 2000


def start_broker(log_dir: Path) -> EmbeddedBroker:
    """A broker on a free port, logging into ``log_dir``."""
    return EmbeddedBroker(log_path=log_dir / "tansu.log").start()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with start_broker(tmp_path_factory.mktemp("broker")) as running:
        yield running


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def make_config(bootstrap: str, **overrides: object) -> KafkaConfig:
    """A config with a topic and a group no other test uses."""
    tag = uuid.uuid4().hex[:10]
    fields: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "input_topic": f"in-{tag}",
        "output_topic": f"out-{tag}",
        "dlq_topic": f"dlq-{tag}",
        "group": f"group-{tag}",
        "client_id": f"test-{tag}",
        "session_timeout_ms": SESSION_TIMEOUT_MS,
        **overrides,
    }
    return KafkaConfig(**fields)  # type: ignore[arg-type]


@pytest.fixture
def kafka_cfg(broker: EmbeddedBroker) -> Callable[..., KafkaConfig]:
    """Builds a fresh config on the session broker; keyword arguments override fields."""
    return lambda **overrides: make_config(broker.bootstrap, **overrides)
