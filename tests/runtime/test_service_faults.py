"""The run loop when things go wrong, on in-memory topics: a broker that stops acknowledging or
answering, resume offsets beyond a topic's end, a learner that raises on one record, an output
the broker refuses, a stop that cannot checkpoint."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from streammeta.io.errors import DeliveryError, KafkaIOError, TransientKafkaError
from streammeta.io.records import Records
from streammeta.metrics.export.prometheus import PrometheusSensor
from streammeta.runtime.checkpoint import CheckpointStore
from streammeta.runtime.pipeline import Batch, Step
from streammeta.runtime.service import OffsetResetError, Service
from streammeta.testing import MemorySink, MemorySource
from tests.runtime.test_service import _answered, _service, _topic


class _Waiting(MemorySink):
    """A sink whose flushes time out with outputs still pending (the broker is away, the
    client keeps retrying) while ``away``; nothing is lost."""

    away = True

    def flush(self, timeout_s: float = 30.0) -> None:
        if self.away:
            raise DeliveryError(3, "3 still pending", pending=3)
        super().flush(timeout_s)


def test_a_flush_that_times_out_waits_for_the_broker_instead_of_rewinding(tmp_path: Path) -> None:
    source, sink = MemorySource("in", _topic(600)), _Waiting()
    service = _service(source, sink, tmp_path)
    source.subscribe(["in"], service)
    service.process(source.poll(64, 0))
    assert not service.checkpoint()
    assert service.stats.rewinds == 0 and service.stats.checkpoints == 0
    assert service.pipeline.records > 0  # what was learned stays: the outputs may yet arrive
    sink.away = False
    stats = service.run(idle_exit=0.01)
    assert stats.clean and max(_answered(sink).values()) == 1 and len(_answered(sink)) == 600


def test_a_rewind_needs_no_broker(tmp_path: Path) -> None:
    """Deliveries failed while the broker is away: the rewind seeks from what it knows
    (checkpointed offsets, else the first offset processed since), never asks the broker."""
    source, sink = MemorySource("in", _topic(900)), MemorySink()
    service = _service(source, sink, tmp_path)
    source.subscribe(["in"], service)

    def away(*_: object) -> dict[tuple[str, int], int | None]:
        raise TransientKafkaError("fetch committed offsets: broker away")

    source.committed = away  # type: ignore[method-assign,assignment]
    for _ in range(3):
        service.process(source.poll(64, 0))
    sink.fail_flushes = 1
    assert not service.checkpoint() and service.stats.rewinds == 1
    assert service.pipeline.records == 0  # no checkpoint yet: back to the initial learner
    service.run(idle_exit=0.01)
    assert len(_answered(sink)) == 900
    assert service.pipeline.records == 900 - len(range(50, 900, 97))  # each learned once


@pytest.mark.parametrize("policy", ["earliest", "latest"])
def test_a_resume_offset_beyond_the_end_follows_the_policy(
    policy: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The checkpoint says 500 records of partition 0 were learned; the topic (re-created)
    holds 120. ``earliest`` reads all 120, ``latest`` skips to the end; both warn."""
    CheckpointStore(tmp_path, fingerprint="test").save(
        _service(MemorySource("in", [[]]), MemorySink(), tmp_path / "x").pipeline.snapshot(),
        {("in", 0): 500},
    )
    source, sink = MemorySource("in", _topic(120, partitions=1)), MemorySink()
    with caplog.at_level(logging.WARNING, "streammeta"):
        stats = _service(source, sink, tmp_path, offset_reset=policy).run(idle_exit=0.01)
    assert "in[0]: the resume offset 500 lies beyond the topic's end 120" in caplog.text
    assert stats.offset_resets == 1
    assert len(_answered(sink)) == (120 if policy == "earliest" else 0)
    assert source.commits[("in", 0)] == 120


def test_a_reset_resume_offset_survives_a_lost_partition(tmp_path: Path) -> None:
    """The reset says where the re-created topic starts; losing the partition (a group that
    forgot the member when the broker came back) goes back to the checkpoint but keeps it."""
    CheckpointStore(tmp_path, fingerprint="test").save(
        _service(MemorySource("in", [[]]), MemorySink(), tmp_path / "x").pipeline.snapshot(),
        {("in", 0): 500},
    )
    source, sink = MemorySource("in", _topic(120, partitions=1)), MemorySink()
    service = _service(source, sink, tmp_path, lag_every_s=0.0)
    source.subscribe(["in"], service)
    service.poll_once()  # sees the end (120) below the resume offset (500): reset to 0
    service.on_lost([("in", 0)])
    service.on_assigned([("in", 0)])
    assert source.position(("in", 0)) == 0
    stats = service.run(idle_exit=0.01)
    assert len(_answered(sink)) == 120 and stats.offset_resets == 1


def test_a_resume_offset_beyond_the_end_with_policy_fail_stops(tmp_path: Path) -> None:
    CheckpointStore(tmp_path, fingerprint="test").save(
        _service(MemorySource("in", [[]]), MemorySink(), tmp_path / "x").pipeline.snapshot(),
        {("in", 0): 500},
    )
    source = MemorySource("in", _topic(120, partitions=1))
    service = _service(source, MemorySink(), tmp_path, offset_reset="fail")
    with pytest.raises(OffsetResetError, match=r"service\.offset_reset = 'fail'"):
        service.run(idle_exit=0.01)
    assert source.closed


def test_readiness_fails_while_the_broker_is_unreachable(tmp_path: Path) -> None:
    sensor = PrometheusSensor(CollectorRegistry())
    source = MemorySource("in", _topic(200))
    polls = 0

    def watch(service: Service, _: Step | None) -> None:
        nonlocal polls
        polls += 1
        if polls == 3:
            source.up = False
        if polls == 6:
            assert sensor.readiness.check(stale_s=300) == (
                False,
                "broker unreachable (no connection): retrying with backoff",
            )
            source.up = True
        if polls == 9:
            service.stop()

    service = _service(source, MemorySink(), tmp_path, sensor=sensor, on_batch=watch,
                       lag_every_s=0.0)  # fmt: skip
    service.run()
    assert sensor.registry.get_sample_value("streammeta_broker_reachable") == 1.0
    assert sensor.readiness.check(stale_s=300)[0] in (True, False)  # the stop closed the source


def test_a_record_the_learner_raises_on_is_a_dead_letter(tmp_path: Path) -> None:
    """Any exception on one record's path: that record goes to the dead-letter topic with
    ``processing_error``; the rest of its micro-batch is predicted and learned."""
    values = [json.dumps({"x": [float(i)], "y": 0.0}).encode() for i in range(100)]
    source, sink = MemorySource("in", [values]), MemorySink()
    service = _service(source, sink, tmp_path, micro_batch=16)
    process = service.pipeline.process

    def fragile(batch: Batch) -> Step:
        if (batch.x == 42.0).any():
            raise RuntimeError("cannot learn 42")
        return process(batch)

    service.pipeline.process = fragile  # type: ignore[method-assign]
    stats = service.run(idle_exit=0.01)
    assert stats.records == 99 and stats.dead_letters == {"processing_error": 1}
    value, _, headers = sink.sent["dlq"][0]
    assert json.loads(value)["x"] == [42.0]
    assert dict(headers)["streammeta.offset"] == b"42"
    assert len(_answered(sink)) == 100


def test_a_prediction_that_cannot_be_encoded_is_a_dead_letter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The encoder raising on one record's values (a bug): that record alone is a dead
    letter (``processing_error``), learned once like the rest of its micro-batch."""
    from streammeta.runtime import output as output_module

    encode = output_module.encode_predictions

    def fragile(records: Records, *given: Any) -> list[tuple[bytes, bytes]]:
        if (records.x == 42.0).any():
            raise ValueError("cannot encode 42")
        return encode(records, *given)

    monkeypatch.setattr(output_module, "encode_predictions", fragile)
    values = [json.dumps({"x": [float(i)], "y": 0.0}).encode() for i in range(100)]
    source, sink = MemorySource("in", [values]), MemorySink()
    service = _service(source, sink, tmp_path, micro_batch=16)
    stats = service.run(idle_exit=0.01)
    assert stats.dead_letters == {"processing_error": 1} and stats.predictions == 99
    assert service.pipeline.records == 100  # nothing learned twice by the retry
    assert dict(sink.sent["dlq"][0][2])["streammeta.offset"] == b"42"
    assert len(_answered(sink)) == 100


def test_an_output_the_broker_refuses_becomes_a_dead_letter(tmp_path: Path) -> None:
    class Refusing(MemorySink):
        def produce(self, topic: str, value: bytes, key: bytes | None = None,
                    headers: object = ()) -> None:  # fmt: skip
            if topic == "out" and b'"offset":7,' in value:
                raise KafkaIOError("produce to 'out': message too large")
            super().produce(topic, value, key, headers)  # type: ignore[arg-type]

    source, sink = MemorySource("in", _topic(50, partitions=1)), Refusing()
    stats = _service(source, sink, tmp_path).run(idle_exit=0.01)
    assert stats.dead_letters == {"unproducible": 1} and stats.predictions == 49
    assert dict(sink.sent["dlq"][0][2])["streammeta.offset"] == b"7"


def test_predictions_are_keyed_by_the_input_partition(tmp_path: Path) -> None:
    source, sink = MemorySource("in", _topic(40)), MemorySink()
    _service(source, sink, tmp_path).run(idle_exit=0.01)
    keys = {(json.loads(v)["partition"], k) for v, k, _ in sink.sent["out"]}
    assert keys == {(0, b"in:0"), (1, b"in:1")}


def test_a_stop_that_cannot_checkpoint_ends_within_the_grace(tmp_path: Path) -> None:
    source, sink = MemorySource("in", _topic(300)), _Waiting()

    def stop_soon(service: Service, _: object) -> None:
        if service.stats.records > 100:
            service.stop()

    service = _service(source, sink, tmp_path, shutdown_grace=1.0, on_batch=stop_soon)
    start = time.monotonic()
    stats = service.run()
    assert time.monotonic() - start < 3.0
    assert not stats.clean and stats.checkpoints == 0
    assert source.closed and sink.closed
    assert not (tmp_path / "checkpoint.pt").exists()  # nothing half-done was saved


def test_the_learner_never_sees_a_non_finite_feature(tmp_path: Path) -> None:
    """1e300 is finite as a float64 and infinite as the learner's float32: a dead letter."""
    values = [b'{"x": [1e300], "y": 1.0}'] + [b'{"x": [0.5], "y": 1.0}'] * 20
    source, sink = MemorySource("in", [values]), MemorySink()
    stats = _service(source, sink, tmp_path).run(idle_exit=0.01)
    assert stats.dead_letters == {"non_finite": 1} and stats.records == 20
    assert all(np.isfinite(json.loads(v)["y_hat"]) for v, _, _ in sink.sent["out"])


def test_the_sources_passing_errors_are_counted_and_logged_once_a_minute(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Three polls meet a passing error (the client retries by itself): the counter has all
    three, the log one line, naming the last error, until a minute has passed."""
    sensor = PrometheusSensor(CollectorRegistry())
    source = MemorySource("in", _topic(300))

    def flaky(service: Service, step: Step | None) -> None:
        if step is None and source.polls <= 3:  # after each of the first three polls
            source.transient_errors += 1
            source.last_error = f"fetch timed out ({source.polls})"

    service = _service(source, MemorySink(), tmp_path, sensor=sensor, on_batch=flaky)
    with caplog.at_level(logging.WARNING, "streammeta"):
        service.run(idle_exit=0.01)
    value = sensor.registry.get_sample_value("streammeta_source_transient_errors_total")
    assert value == 3
    said = [r.getMessage() for r in caplog.records if "passing error" in r.getMessage()]
    assert len(said) == 1 and "(last: fetch timed out (1))" in said[0]
