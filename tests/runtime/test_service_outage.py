"""The broker stops and restarts while ``streammeta run`` runs, for both clients: the service
rides out an outage longer than its flush timeout, resumes by policy on a topic that came back
empty, and stops within its grace when SIGTERM arrives while the broker is away.

The embedded broker keeps everything in memory, so a restart loses every topic, record and
committed offset (Apache Kafka keeps them). Records produced before the outage are gone with the
broker, and the re-created input topic numbers its offsets from 0 again while the service's
checkpoint says it has learned far more: the resume offset lies beyond the topic's end, and with
``service.offset_reset = earliest`` (the default) the service warns and reads the new topic from
its first record.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import Popen

import pytest

from streammeta.bench.crash import read_topic, start_service
from streammeta.config import KafkaConfig
from streammeta.io import EmbeddedBroker, ensure_topics, open_sink
from streammeta.io.simulate import publish
from streammeta.runtime.checkpoint import read_checkpoint
from streammeta.streams import make_stream
from tests.io.conftest import CLIENTS, make_config, start_broker

BEFORE, AFTER = 1500, 3000


def _publish(cfg: KafkaConfig, n: int, seed: int) -> None:
    ensure_topics(cfg, [cfg.input_topic, cfg.output_topic, cfg.dlq_topic])
    with open_sink(cfg, client="kafka-python") as sink:
        publish(sink, cfg.input_topic, make_stream("sinusoid", seed=seed).records(n))


def _checkpointed(path: Path) -> int:
    """The next input offset of partition 0 the checkpoint covers (0 before the first)."""
    if not path.exists():
        return 0
    _, offsets, _ = read_checkpoint(path)
    return max((o for (_, p), o in offsets.items() if p == 0), default=0)


@contextmanager
def _running(
    client: str, tmp_path: Path, records: int, seed: int, *flags: str
) -> Iterator[tuple[EmbeddedBroker, KafkaConfig, Popen[str], Path]]:
    """A broker holding ``records`` records and ``streammeta run`` on them (checkpoints under
    ``tmp_path``, its log in the path yielded); the service is killed if still running."""
    with start_broker(tmp_path) as broker:
        cfg = make_config(broker.bootstrap, session_timeout_ms=3000, client=client)
        _publish(cfg, records, seed=seed)
        log = tmp_path / "service.log"
        with log.open("w") as out:
            proc = start_service(cfg, tmp_path / "ckpt", *flags, log=out)
            try:
                yield broker, cfg, proc, log
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


def _wait_for(what: str, ok: object, proc: Popen[str], log: Path, s: float) -> None:
    deadline = time.monotonic() + s
    while not ok():  # type: ignore[operator]
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"{what}:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


@pytest.mark.parametrize("client", CLIENTS)
def test_service_rides_out_an_outage_longer_than_its_flush_timeout(
    client: str, tmp_path: Path
) -> None:
    flags = ("--service.checkpoint_records", "200", "--service.checkpoint_seconds", "1",
             "--service.flush_timeout", "1")  # fmt: skip
    checkpoint = tmp_path / "ckpt" / "checkpoint.pt"
    with _running(client, tmp_path, BEFORE, 1, *flags) as (broker, cfg, proc, log):
        _wait_for("caught up before the outage",
                  lambda: _checkpointed(checkpoint) >= BEFORE, proc, log, 90)  # fmt: skip
        broker.stop()  # the outage: polls, produces and commits fail, flushes time out
        time.sleep(6.0)  # longer than the flush timeout (1 s) and several backoffs
        assert proc.poll() is None, log.read_text()[-3000:]
        broker.start()  # same port, empty
        ensure_topics(cfg, [cfg.input_topic, cfg.output_topic, cfg.dlq_topic])
        _wait_for(
            "the resume offset beyond the new topic's end was never noticed",
            lambda: "lies beyond the topic's end" in log.read_text(),
            proc, log, 60,
        )  # fmt: skip
        _publish(cfg, AFTER, seed=2)
        _wait_for("the new records were never all checkpointed",
                  lambda: _checkpointed(checkpoint) >= AFTER, proc, log, 180)  # fmt: skip
        proc.send_signal(signal.SIGTERM)  # (an --idle-exit would count the outage as idle)
        proc.wait(timeout=30)
        text = log.read_text()
        assert proc.returncode == 0, text[-3000:]
        assert "Traceback" not in text
        assert f"{cfg.input_topic}[0]: the resume offset {BEFORE} lies beyond" in text
        seen: dict[int, int] = {}
        for m in read_topic(dataclasses.replace(cfg, client="kafka-python"), cfg.output_topic):
            offset = json.loads(m.value or b"{}")["offset"]
            seen[offset] = seen.get(offset, 0) + 1
        assert sorted(seen) == list(range(AFTER)), text[-3000:]  # read from its first record
        assert max(seen.values()) <= 2  # at-least-once
        state, _, _ = read_checkpoint(checkpoint)
        assert state["records"] == BEFORE + AFTER


@pytest.mark.parametrize("client", CLIENTS)
def test_sigterm_while_the_broker_is_away_exits_within_the_grace(
    client: str, tmp_path: Path
) -> None:
    flags = ("--service.checkpoint_records", "500", "--service.shutdown_grace", "4")
    checkpoint = tmp_path / "ckpt" / "checkpoint.pt"
    with _running(client, tmp_path, 20_000, 3, *flags) as (broker, _, proc, log):
        _wait_for("no checkpoint", lambda: _checkpointed(checkpoint) > 0, proc, log, 90)
        broker.stop()  # mid-stream: outputs are in flight
        time.sleep(1.0)
        kept = _checkpointed(checkpoint)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        took = time.monotonic() - start
    text = log.read_text()
    assert took < 4 + 2.0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert proc.returncode in (0, 3), text[-3000:]
    if proc.returncode == 3:  # outputs were waiting: the last checkpoint stands
        assert "the last checkpoint stands" in text
        assert _checkpointed(checkpoint) == kept
