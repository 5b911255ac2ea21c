"""The learner service end to end on the embedded broker: N records in, exactly N predictions
plus dead letters out, for both clients, single-record and batch messages."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from streammeta.bench.crash import read_topic
from streammeta.config import KafkaConfig, load_config
from streammeta.io import RawMessage, ensure_topics, open_source
from streammeta.io.simulate import encode
from streammeta.runtime.service import build_service
from streammeta.streams import make_stream
from tests.io.helpers import produce

Config = Callable[..., KafkaConfig]
#: Planted bad messages and the dead-letter reason each must get.
BAD = {
    b"{oops": "malformed_json",
    b'{"x": [0.1, 0.2], "y": 1.0}': "feature_count",
    b'{"x": [Infinity], "y": 1.0}': "non_finite",
    b'"just a string"': "schema",
    b'{"x": [0.5], "y": 1.0, "pad": "' + b"z" * 30_000 + b'"}': "too_large",
}


def _original(m: RawMessage) -> bytes:
    """The bad message a dead letter carries: its bytes unchanged, or, when they would not fit
    the broker (over kafka.max_message_bytes), the planted message its size and digest name."""
    headers = dict(m.headers)
    if headers.get("streammeta.truncated") != b"true":
        return m.value or b""
    digest = headers["streammeta.sha256"].decode()
    [original] = [v for v in BAD if hashlib.sha256(v).hexdigest() == digest]
    assert int(headers["streammeta.original_size"]) == len(original)
    assert original.startswith(m.value or b"")
    return original


def _messages(n: int, batch: int) -> tuple[list[bytes], int, Counter[str]]:
    """``n`` sinusoid records in messages of ``batch`` records, a bad message after every
    tenth good one; returns the values, the good record count and the expected reasons."""
    recs = list(make_stream("sinusoid", seed=4).records(n))
    values: list[bytes] = []
    reasons: Counter[str] = Counter()
    bad = list(BAD.items())
    for i in range(0, n, batch):
        values.append(encode(recs[i : i + batch])[0])
        if (i // batch) % 10 == 9:
            value, reason = bad[(i // batch // 10) % len(bad)]
            values.append(value)
            reasons[reason] += 1
    return values, n, reasons


@pytest.mark.parametrize("batch", [1, 100])
def test_n_records_in_n_predictions_plus_dead_letters_out(
    kafka_cfg: Config, client: str, batch: int, tmp_path: Path
) -> None:
    kafka = kafka_cfg(client=client, max_message_bytes=20_000)
    ensure_topics(kafka, [kafka.input_topic, kafka.output_topic, kafka.dlq_topic])
    values, good, reasons = _messages(1000, batch)
    produce(kafka, client, values)
    config = dataclasses.replace(
        load_config(env={}),
        kafka=kafka,
        service=dataclasses.replace(
            load_config(env={}).service, checkpoint_dir=str(tmp_path), checkpoint_records=200
        ),
    )
    service = build_service(config)
    stats = service.run(max_records=good + sum(reasons.values()), idle_exit=60)
    assert stats.records == good and stats.dead_letters == dict(reasons)
    preds = read_topic(kafka, kafka.output_topic)  # everything, up to the high watermark
    dead = read_topic(kafka, kafka.dlq_topic)
    assert len(preds) == good and len(dead) == sum(reasons.values())
    ids = Counter(json.loads(m.value)["id"] for m in preds)
    assert len(ids) == good and max(ids.values()) == 1  # each record answered once
    got = Counter(dict(m.headers)["streammeta.reason"].decode() for m in dead)
    assert got == reasons
    assert {_original(m) for m in dead} == {v for v in BAD if BAD[v] in reasons}
    first = json.loads(preds[0].value)
    assert first["topic"] == kafka.input_topic and first["partition"] == 0
    committed = service.source  # closed by run(); the commit is checked by a fresh member
    del committed
    with open_source(kafka, client=client) as again:
        assert again.committed([(kafka.input_topic, 0)]) == {(kafka.input_topic, 0): len(values)}


def test_string_labels_and_named_features_from_the_config(
    kafka_cfg: Config, tmp_path: Path
) -> None:
    """learner.labels and learner.feature_names reach the decoder: records send y as a label
    and x as an object in any key order (read in the configured order); predictions answer
    with labels; an unknown label is a dead letter."""
    kafka = kafka_cfg(client="kafka-python")
    ensure_topics(kafka, [kafka.input_topic, kafka.output_topic, kafka.dlq_topic])
    rng = np.random.default_rng(0)
    values = []
    for i in range(300):
        a, b = rng.normal(size=2).round(3).tolist()
        y = "yes" if a + b > 0 else "no"
        x = {"b": b, "a": a} if i % 2 else {"a": a, "b": b}
        values.append(json.dumps({"x": x, "y": "maybe" if i == 150 else y}).encode())
    produce(kafka, "kafka-python", values)
    base = load_config(
        env={},
        overrides={
            "learner.task": "classification",
            "learner.n_features": 2,
            "learner.n_classes": 2,
            "learner.labels": "no,yes",
            "learner.feature_names": "a,b",
            "service.checkpoint_dir": str(tmp_path),
        },
    )
    service = build_service(dataclasses.replace(base, kafka=kafka))
    assert service.decoder.feature_names == ("a", "b")
    stats = service.run(max_records=300, idle_exit=60)
    assert stats.records == 299 and stats.dead_letters == {"unknown_label": 1}
    preds = [json.loads(m.value) for m in read_topic(kafka, kafka.output_topic)]
    assert {p["y_hat"] for p in preds} <= {"no", "yes"} and {p["y"] for p in preds} == {"no", "yes"}
