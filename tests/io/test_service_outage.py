"""The broker stopped and restarted while ``streammeta run`` runs: the service backs off,
reconnects and carries on, for both clients.

The embedded broker keeps everything in memory, so a restart loses every topic, record and
committed offset; with Apache Kafka they survive. Here that means: records produced before or
during the outage are gone with the broker (allowed to be lost for this reason only), and the
re-created input topic numbers its offsets from 0 again while the service's checkpoint says it
has learned everything below the old end. So the test produces more records after the restart
than before, and checks that every offset from the checkpointed one on gets its answer.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
import torch

from streammeta.bench.crash import read_topic, start_service
from streammeta.bench.streams import make_stream
from streammeta.config import KafkaConfig
from streammeta.io import ensure_topics, open_sink, open_source
from streammeta.io.simulate import publish
from tests.io.conftest import CLIENTS, make_config, start_broker

BEFORE, AFTER = 1500, 4000


def _publish(cfg: KafkaConfig, n: int, seed: int) -> None:
    ensure_topics(cfg, [cfg.input_topic, cfg.output_topic, cfg.dlq_topic])
    with open_sink(cfg, client="kafka-python") as sink:
        publish(sink, cfg.input_topic, make_stream("sinusoid", seed=seed).records(n))


def _checkpointed(path: Path) -> int:
    """The next input offset of partition 0 the checkpoint covers (0 before the first)."""
    if not path.exists():
        return 0
    offsets = torch.load(path, weights_only=True)["offsets"]  # (topic, partition, next)
    return max((int(o) for _, p, o in offsets if p == 0), default=0)


def _partitions(cfg: KafkaConfig, topic: str) -> list[int]:
    with open_source(cfg, client="kafka-python") as src:
        return src.partitions(topic)


@pytest.mark.parametrize("client", CLIENTS)
def test_service_reconnects_after_a_broker_restart(client: str, tmp_path: Path) -> None:
    with start_broker(tmp_path) as broker:
        cfg = make_config(broker.bootstrap, session_timeout_ms=3000, client=client)
        _publish(cfg, BEFORE, seed=1)
        proc = start_service(
            cfg,
            tmp_path / "ckpt",
            "--service.checkpoint_records", "200",
            "--service.checkpoint_seconds", "1",
            "--idle-exit", "10",
        )  # fmt: skip
        checkpoint = tmp_path / "ckpt" / "checkpoint.pt"
        deadline = time.monotonic() + 90
        while _checkpointed(checkpoint) < BEFORE:  # everything before the outage learned
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the service never caught up before the outage"
            time.sleep(0.2)

        broker.stop()  # the outage: the service's polls, produces and commits now fail
        time.sleep(4.0)
        assert proc.poll() is None, "the service exited during the outage"
        broker.start()  # same port, empty
        _publish(cfg, AFTER, seed=2)
        assert _partitions(cfg, cfg.input_topic) == [0]

        _, err = proc.communicate(timeout=180)  # it drains the new records, then idles out
        assert proc.returncode == 0, err[-3000:]
        seen: dict[int, int] = {}
        for m in read_topic(dataclasses.replace(cfg, client="kafka-python"), cfg.output_topic):
            offset = json.loads(m.value or b"{}")["offset"]
            seen[offset] = seen.get(offset, 0) + 1
        # offsets below BEFORE in the new topic count as learned (the checkpoint says so);
        # every later one is answered, at most twice (at-least-once across the outage)
        assert sorted(seen) == list(range(BEFORE, AFTER))
        assert max(seen.values()) <= 2
        final = torch.load(checkpoint, weights_only=True)
        assert final["state"]["records"] == AFTER  # BEFORE, then AFTER - BEFORE new ones
