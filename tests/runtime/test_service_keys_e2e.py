"""Keys, late labels and shared meta-state through the embedded broker: two keys whose labels
are opposite are each learned on their own state, labels published on a topic of their own join
their records, and a new instance starts from the meta-state the group published."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from streammeta.bench.crash import read_topic
from streammeta.config import KafkaConfig, load_config
from streammeta.io import ensure_topics
from streammeta.io.simulate import delay_labels, encode
from streammeta.runtime.service import build_service
from streammeta.streams import make_stream
from tests.io.helpers import produce

Config = Callable[..., KafkaConfig]
CLASSES = {"learner.task": "classification", "learner.n_classes": 2, "learner.n_features": 2}


def _opposite(n: int) -> list[dict[str, object]]:
    """Records of two keys that label the same features the opposite way."""
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        x = rng.uniform(0, 10, size=2).round(3).tolist()
        key = ("left", "right")[int(rng.integers(2))]
        side = int(x[0] > 5)
        out.append({"x": x, "y": side if key == "left" else 1 - side, "key": key, "id": f"r{i}"})
    return out


def _service(kafka: KafkaConfig, tmp_path: Path, **flags: object):  # type: ignore[no-untyped-def]
    base = load_config(env={}, overrides={**CLASSES, "service.checkpoint_dir": str(tmp_path),
                                          **flags})  # fmt: skip
    return build_service(dataclasses.replace(base, kafka=kafka))


def test_two_keys_with_opposite_labels_through_the_broker(
    kafka_cfg: Config, tmp_path: Path
) -> None:
    kafka = kafka_cfg(client="kafka-python")
    ensure_topics(kafka, [kafka.input_topic, kafka.output_topic, kafka.dlq_topic])
    records = _opposite(1200)
    produce(kafka, "kafka-python", [encode([r])[0] for r in records])
    service = _service(kafka, tmp_path)
    stats = service.run(max_records=1200, idle_exit=60)
    assert stats.records == 1200
    preds = {
        p["id"]: p for p in (json.loads(m.value) for m in read_topic(kafka, kafka.output_topic))
    }
    hits = [preds[r["id"]]["y_hat"] == r["y"] for r in records[600:]]
    assert np.mean(hits) > 0.85, np.mean(hits)
    assert {p["key"] for p in preds.values()} == {"left", "right"}
    assert service.pipeline.status()["learned"]["keys_held"] == 2


def test_labels_on_a_topic_of_their_own_join_their_records(
    kafka_cfg: Config, tmp_path: Path
) -> None:
    kafka = dataclasses.replace(kafka_cfg(client="kafka-python"), label_topic="labels-e2e")
    ensure_topics(kafka, [kafka.input_topic, kafka.output_topic, kafka.dlq_topic, "labels-e2e"])
    records, labels = [], []
    for rec in delay_labels(_opposite(400), 50):
        (records if "x" in rec else labels).append(encode([rec])[0])
    produce(kafka, "kafka-python", records)
    produce(kafka, "kafka-python", labels, topic="labels-e2e")
    service = _service(kafka, tmp_path)
    service.run(max_records=800, idle_exit=60)
    assert len(read_topic(kafka, kafka.output_topic)) == 400  # every record predicted once
    assert not read_topic(kafka, kafka.dlq_topic, timeout_s=5)
    status = service.labels.status()
    assert status["labels_joined"] == 400 and status["labels_held"] == 0
    assert service.pipeline.records == 800  # predicted, then learned when its label came


def test_a_new_instance_starts_from_the_meta_state_the_group_published(
    kafka_cfg: Config, tmp_path: Path
) -> None:
    """kafka.meta_topic: the first instance publishes its meta-parameters while it learns; a
    second one, started later, merges them at start-up (warm start)."""
    kafka = dataclasses.replace(kafka_cfg(client="kafka-python"), meta_topic="meta-e2e")
    ensure_topics(kafka, [kafka.input_topic, kafka.output_topic, kafka.dlq_topic])
    records = list(make_stream("sinusoid", seed=2).records(600))
    produce(kafka, "kafka-python", [encode([r])[0] for r in records])
    regression = {"learner.n_features": 1, "meta.sync_seconds": 0.2}
    first = _plain(kafka, tmp_path / "a", **regression, **{"meta.instance": "a"})
    first.run(max_records=600, idle_exit=30)
    assert first.meta_sync is not None and first.meta_sync.published >= 1
    assert first.pipeline.learner.model_version > 0  # it meta-learned something to share
    later = dataclasses.replace(kafka, group=kafka.group + "-later")
    second = _plain(later, tmp_path / "b", **regression, **{"meta.instance": "b"})
    assert second.meta_sync is not None
    assert second.meta_sync.merges == 1 and second.meta_sync.distance > 0
    assert list(second.meta_sync.peers) == ["a"]


def _plain(kafka: KafkaConfig, path: Path, **flags: object):  # type: ignore[no-untyped-def]
    base = load_config(env={}, overrides={"service.checkpoint_dir": str(path), **flags})
    return build_service(dataclasses.replace(base, kafka=kafka))
