"""The exporter read back from a fresh registry after a scripted stream with known boundaries:
STAGGER's concept switches every 200 records, given as explicit tasks and as the true concept,
with bad records planted; the service runs on in-memory topics."""

from __future__ import annotations

import json
import math
import socket
import time
from collections import Counter
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest
from prometheus_client import CollectorRegistry

from streammeta.cli import main
from streammeta.config import load_config
from streammeta.io.decode import Decoder
from streammeta.learn import ORIGINS
from streammeta.metrics.export.prometheus import PrometheusSensor
from streammeta.metrics.export.server import MetricsServer
from streammeta.runtime.checkpoint import CheckpointStore
from streammeta.runtime.pipeline import Pipeline
from streammeta.runtime.service import Service
from streammeta.streams import make_stream
from streammeta.testing import MemorySink, MemorySource

N = 2000
TASK = 200
BAD = {b"{oops": "malformed_json", b'{"x": [1, 2], "y": 1}': "feature_count"}


def _messages(now_ms: float) -> list[list[bytes]]:
    """One partition: STAGGER with ``task`` and ``concept`` set to the true concept, every
    200th message replaced by a bad one (alternating reasons), and an event time."""
    out = []
    bad = list(BAD)
    stream = make_stream("stagger", task_length=TASK, seed=3)
    for i, rec in enumerate(stream.records(N)):
        if i % 200 == 99:
            out.append(bad[(i // 200) % 2])
        else:
            rec["concept"] = rec["task"]
            out.append(json.dumps({**rec, "ts": now_ms}).encode())
    return [out]


def _run(tmp_path: Path) -> tuple[Service, CollectorRegistry, list[list[bytes]]]:
    config = load_config(
        env={},
        overrides={
            "learner.task": "classification",
            "learner.n_features": 9,
            "learner.n_classes": 2,
            "learner.baseline": "online_sgd",
        },
    )
    registry = CollectorRegistry()
    topic = _messages(time.time() * 1000)
    service = Service(
        Pipeline.from_config(config),
        MemorySource("in", topic),
        MemorySink(),
        Decoder(n_features=9, n_classes=2),
        CheckpointStore(tmp_path, fingerprint="test"),
        input_topic="in",
        output_topic="out",
        dlq_topic="dlq",
        poll_max_records=128,
        checkpoint_records=500,
        sensor=PrometheusSensor(registry),
        lag_every_s=0.0,
    )
    service.run(max_records=N)
    return service, registry, topic


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Service, CollectorRegistry, list]:
    return _run(tmp_path_factory.mktemp("exporter"))


def test_records_dead_letters_predictions(ran: tuple) -> None:
    service, registry, topic = ran
    value = registry.get_sample_value
    bad = Counter(BAD[m] for m in topic[0] if m in BAD)
    good = N - sum(bad.values())
    assert value("streammeta_records_total", {"outcome": "ok"}) == good  # all labelled
    assert value("streammeta_records_total", {"outcome": "unlabelled"}) == 0
    assert value("streammeta_records_total", {"outcome": "dead_letter"}) == sum(bad.values())
    for reason, n in bad.items():
        assert value("streammeta_dead_letters_total", {"reason": reason}) == n
    assert value("streammeta_dead_letters_total", {"reason": "non_finite"}) == 0
    assert value("streammeta_predictions_total") == good == service.stats.predictions
    assert value("streammeta_event_latency_seconds_count") == good
    assert 0 <= value("streammeta_event_latency_seconds_sum") / good < 60
    polls = [topic[0][i : i + 128] for i in range(0, N, 128)]  # poll_max_records=128
    batches = sum(math.ceil(sum(m not in BAD for m in p) / 32) for p in polls)  # micro_batch=32
    assert value("streammeta_batch_duration_seconds_count") == batches


def test_tasks_boundaries_and_adaptation(ran: tuple) -> None:
    service, registry, _ = ran
    value = registry.get_sample_value
    switches = N // TASK - 1  # the concept changes 9 times in 2000 records
    assert value("streammeta_boundaries_total") == switches
    assert value("streammeta_task") == switches == service.pipeline.task
    last_switch = switches * TASK
    good_after = sum(1 for i in range(last_switch, N) if i % 200 != 99)
    assert value("streammeta_task_age_records") == good_after
    closed = switches - 1  # the last task is still open
    for learner in ("meta", "baseline"):
        assert value("streammeta_recovery_samples_count", {"learner": learner}) == closed
        assert value("streammeta_post_boundary_loss_count", {"learner": learner}) == closed
    # explicit tasks equal to the concept: every switch detected at once
    assert value("streammeta_detection_delay_records_count") == closed
    assert value("streammeta_detection_delay_records_sum") == 0
    assert value("streammeta_switches_missed_total") == 0
    assert value("streammeta_false_alarms_total") == 0
    tracker = service.pipeline.tracker
    assert value("streammeta_speedup") == pytest.approx(
        tracker.speedup(service.pipeline.baseline_tracker, last=50)
    )
    meta = value("streammeta_prequential_accuracy", {"learner": "meta"})
    base = value("streammeta_prequential_accuracy", {"learner": "baseline"})
    assert 0.5 < meta <= 1 and 0 < base <= 1
    assert value("streammeta_prequential_loss", {"learner": "meta"}) > 0


def test_meta_training_and_learned_rates(ran: tuple) -> None:
    service, registry, _ = ran
    value = registry.get_sample_value
    learner = service.pipeline.learner
    assert value("streammeta_meta_updates_total") == learner.model_version > 0
    assert value("streammeta_meta_update_duration_seconds_count") == learner.model_version
    figures = learner.describe()
    assert value("streammeta_learned_lr_mean") == pytest.approx(figures["lr_mean"])
    assert value("streammeta_learned_lr_stddev") == pytest.approx(figures["lr_std"])
    assert value("streammeta_meta_loss") == pytest.approx(figures["meta_loss"])


def test_bank_of_fast_learners_and_concept_memory(ran: tuple) -> None:
    service, registry, _ = ran
    value = registry.get_sample_value
    figures = service.pipeline.learner.describe()
    assert value("streammeta_bank_members") == figures["members_alive"] >= 2
    assert value("streammeta_bank_leader_age_records") == figures["leader_age"]
    origins = {o: value("streammeta_bank_leader_origin", {"origin": o}) for o in ORIGINS}
    assert origins[ORIGINS[int(figures["leader_origin"])]] == 1 and sum(origins.values()) == 1
    assert value("streammeta_bank_mixture_entropy") == pytest.approx(figures["mixture_entropy"])
    assert value("streammeta_concept_memory_entries") == figures["memory_size"] >= 1
    assert value("streammeta_concept_memory_bytes") == figures["memory_bytes"] > 0
    # explicit tasks: every concept change opened a task; the schedule started fresh members
    switches = N // TASK - 1
    assert value("streammeta_bank_boundaries_total", {"source": "explicit"}) == switches
    assert (
        value("streammeta_bank_boundaries_total", {"source": "bank"}) == figures["boundaries_bank"]
    )
    schedule = value("streammeta_switch_candidates_total", {"source": "schedule"})
    assert schedule == figures["candidates_schedule"] > 0
    assert value("streammeta_concept_recalls_total") == figures["recalls"]
    assert value("streammeta_concept_recall_hits_total") == figures["recall_hits"]


def test_kafka_and_checkpoint_state(ran: tuple) -> None:
    service, registry, _ = ran
    value = registry.get_sample_value
    assert value("streammeta_assigned_partitions") == 1
    assert value("streammeta_rebalances_total") == 1
    assert value("streammeta_checkpoints_total") == service.stats.checkpoints >= 4
    assert value("streammeta_checkpoint_duration_seconds_count") == service.stats.checkpoints
    assert 0 <= value("streammeta_checkpoint_age_seconds") < 60
    assert value("streammeta_consumer_lag_records", {"topic": "in", "partition": "0"}) == 0
    assert value("streammeta_polls_total") > 0
    samples = {
        s.name: s.labels
        for metric in registry.collect()
        for s in metric.samples
        if s.name in ("streammeta_device_info", "streammeta_build_info")
    }
    assert samples["streammeta_device_info"]["device"] == "cpu"
    assert samples["streammeta_build_info"]["algorithm"] == "maml+metasgd"


def test_endpoints_and_readiness(tmp_path: Path) -> None:
    sensor = PrometheusSensor(CollectorRegistry())
    server = MetricsServer(sensor, port=0, host="127.0.0.1", stale_s=300)
    try:
        assert urlopen(f"{server.url}/healthz").status == 200
        with pytest.raises(HTTPError) as unready:
            urlopen(f"{server.url}/readyz")
        assert unready.value.code == 503
        assert b"no partitions assigned" in unready.value.read()
        sensor.on_assigned([("in", 0)], 1)
        sensor.on_poll(10)
        assert urlopen(f"{server.url}/readyz").read() == b"ok\n"
        # idle: nothing waits for a checkpoint, so no checkpoint is stale
        assert sensor.readiness.check(stale_s=300, later_s=301, poll_s=1e9) == (True, "ok")
        sensor.on_dead_letters({"schema": 1})  # processed, not yet checkpointed
        ready, why = sensor.readiness.check(stale_s=300, later_s=301, poll_s=1e9)
        assert not ready and "not checkpointed (stale after 300 s)" in why
        assert sensor.readiness.check(stale_s=300, later_s=31) == (False, "no poll for 31 s")
        sensor.on_checkpoint(0.01)
        assert sensor.readiness.check(stale_s=300, later_s=301, poll_s=1e9) == (True, "ok")
        body = urlopen(f"{server.url}/metrics").read().decode()
        assert "# TYPE streammeta_recovery_samples histogram" in body
        with pytest.raises(HTTPError) as missing:
            urlopen(f"{server.url}/nope")
        assert missing.value.code == 404
    finally:
        server.close()


def test_a_taken_metrics_port_stops_start_up_naming_the_setting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["run", "--bootstrap-servers", "127.0.0.1:9", "--metrics-port", str(port),
                     "--metrics.host", "127.0.0.1"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert f"metrics.port = {port}" in err and "choose a free port" in err
