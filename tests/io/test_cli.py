"""``streammeta broker`` and ``streammeta simulate`` end to end, as subprocesses."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest

from streammeta.bench.streams import make_stream
from streammeta.cli import main
from streammeta.config import KafkaConfig
from streammeta.io import Decoder, ensure_topics, open_source
from streammeta.io.broker import free_port
from tests.io.helpers import drain

pytestmark = pytest.mark.broker

STREAMMETA = [sys.executable, "-m", "streammeta.cli"]


@pytest.mark.parametrize("command", ["broker", "simulate"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: streammeta" in capsys.readouterr().out


def test_broker_command_serves_until_sigterm() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*STREAMMETA, "broker", "--port", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.strip() == f"broker listening on 127.0.0.1:{port}"
        cfg = KafkaConfig(bootstrap_servers=f"127.0.0.1:{port}")
        assert ensure_topics(cfg, ["cli-check"], client="kafka-python") == ["cli-check"]
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "broker stopped" in out
    finally:
        proc.kill()


@pytest.mark.parametrize("batch_size", [1, 10])
def test_simulate_publishes_the_stream(
    kafka_cfg: Callable[..., KafkaConfig], batch_size: int
) -> None:
    cfg = kafka_cfg()
    n = 120
    done = subprocess.run(
        [*STREAMMETA, "simulate", "--bootstrap-servers", cfg.bootstrap_servers,
         "--topic", cfg.input_topic, "--stream", "sinusoid", "--records", str(n), "--seed", "3",
         "--batch-size", str(batch_size), "--rate", "2000", "--client", "kafka-python"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    messages = n // batch_size
    assert re.search(
        rf"sent {n} records in {messages} messages to '{cfg.input_topic}'", done.stdout
    )
    with open_source(cfg) as source:
        source.assign([(cfg.input_topic, 0)])
        got = drain(source, messages)
    decoded = Decoder(n_features=1).decode(got)
    assert decoded.dead == [] and len(decoded.records) == n
    expected = make_stream("sinusoid", task_length=100, seed=3).take(n)
    np.testing.assert_array_equal(decoded.records.x, expected.x)
    np.testing.assert_array_equal(decoded.records.y, expected.y)
    assert decoded.records.task.tolist() == expected.task.tolist()


def test_simulate_without_brokers_names_the_fix() -> None:
    done = subprocess.run(
        [*STREAMMETA, "simulate", "--records", "5"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("STREAMMETA_")},
    )
    assert done.returncode == 2 and "--bootstrap-servers" in done.stderr
