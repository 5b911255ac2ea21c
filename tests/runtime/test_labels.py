"""Labels that arrive after their records, through the run loop on in-memory topics: every
record is predicted at once and learned from when its label comes, labels that match nothing
are dead letters with their reason, the window bounds the wait, and a crash between a
prediction and its label loses neither."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from streammeta.config import load_config
from streammeta.io.decode import Decoder
from streammeta.runtime.checkpoint import CheckpointStore
from streammeta.runtime.labels import LabelJoin
from streammeta.runtime.pipeline import Pipeline
from streammeta.runtime.service import Service
from streammeta.streams import make_stream
from streammeta.testing import Crash, MemorySink, MemorySource

SMALL = {"learner.hidden": [16], "learner.baseline": "none"}
CLASSES = {"learner.task": "classification", "learner.n_classes": 2, "learner.n_features": 3}


def _delayed(n: int, delay: int, seed: int = 0) -> tuple[list[bytes], np.ndarray]:
    """SEA records without ``y`` (with an ``id``), each label ``delay`` records later."""
    chunk = make_stream("sea", seed=seed).take(n)
    values: list[bytes] = []
    for i in range(n + delay):
        if i >= delay:
            j = i - delay
            values.append(json.dumps({"id": f"r{j}", "y": int(chunk.y[j])}).encode())
        if i < n:
            values.append(json.dumps({"x": chunk.x[i].tolist(), "id": f"r{i}"}).encode())
    return values, chunk.y


def _service(
    source: MemorySource, sink: MemorySink, path: Path, labels: LabelJoin | None = None
) -> Service:
    config = load_config(env={}, overrides={**SMALL, **CLASSES})
    return Service(
        Pipeline.from_config(config),
        source,
        sink,
        Decoder(n_features=3, n_classes=2),
        CheckpointStore(path, fingerprint="test"),
        input_topic="in",
        output_topic="out",
        dlq_topic="dlq",
        poll_max_records=50,
        checkpoint_records=200,
        micro_batch=10,
        labels=labels or LabelJoin(window=10_000),
    )


def _predictions(sink: MemorySink) -> dict[str, int]:
    """The last published prediction of each record id."""
    return {p["id"]: p["y_hat"] for p in (json.loads(v) for v, _, _ in sink.sent.get("out", []))}


def _reasons(sink: MemorySink) -> Counter[str]:
    return Counter(dict(h)["streammeta.reason"].decode() for _, _, h in sink.sent.get("dlq", []))


def test_records_are_predicted_at_once_and_learned_from_when_their_label_comes(
    tmp_path: Path,
) -> None:
    values, y = _delayed(1500, delay=100)
    sink = MemorySink()
    service = _service(MemorySource("in", [values]), sink, tmp_path)
    stats = service.run(idle_exit=0.05)
    predicted = _predictions(sink)
    assert len(predicted) == 1500  # every record, before its label
    assert not sink.sent.get("dlq")
    status = service.labels.status()
    assert status["labels_joined"] == 1500 and status["labels_held"] == 0
    assert service.pipeline.records == 3000  # each record predicted, then learned with its label
    accuracy = np.mean([predicted[f"r{i}"] == y[i] for i in range(500, 1500)])
    assert accuracy > 0.8, accuracy  # it learned from the labels that came late
    assert status["delayed_accuracy"] == pytest.approx(
        np.mean([predicted[f"r{i}"] == y[i] for i in range(1500)])
    )
    assert stats.records == 3000


def test_unknown_and_second_labels_are_dead_letters_with_their_reason(tmp_path: Path) -> None:
    values = [
        b'{"x": [1, 2, 3], "id": "a"}',
        b'{"id": "a", "y": 1}',
        b'{"id": "a", "y": 0}',  # a second label for "a"
        *(b'{"id": "nobody-%d", "y": 1}' % i for i in range(4)),  # no record with these ids
    ]
    sink = MemorySink()
    service = _service(MemorySource("in", [values]), sink, tmp_path, LabelJoin(window=3))
    service.run(idle_exit=0.05)
    assert _reasons(sink) == Counter({"duplicate_label": 1, "unmatched_label": 4})
    letters = [(dict(h)["streammeta.offset"], v) for v, _, h in sink.sent["dlq"]]
    assert letters == [(str(i).encode(), values[i]) for i in range(2, 7)]  # original messages
    assert list(_predictions(sink)) == ["a"]


def test_labels_of_a_topic_of_their_own_may_come_first_and_wait(tmp_path: Path) -> None:
    """On a label topic (``early_topics``), a label may come before its record: it waits within
    the window; the fourth unknown one pushes the first out."""
    values = [*(b'{"id": "nobody-%d", "y": 1}' % i for i in range(4))]
    sink = MemorySink()
    labels = LabelJoin(window=3, early_topics=["in"])
    _service(MemorySource("in", [values]), sink, tmp_path, labels).run(idle_exit=0.05)
    assert _reasons(sink) == Counter({"unmatched_label": 1})
    assert [v for v, _, _ in sink.sent["dlq"]] == [values[0]]  # the original message


def test_a_label_before_its_record_waits_for_it(tmp_path: Path) -> None:
    values = [b'{"id": "a", "y": 1}', b'{"x": [1, 2, 3], "id": "a"}', b'{"x": [1, 2, 3]}']
    sink = MemorySink()
    service = _service(MemorySource("in", [values]), sink, tmp_path, LabelJoin(early_topics=["in"]))
    service.run(idle_exit=0.05)
    assert not sink.sent.get("dlq")
    assert service.labels.status()["labels_joined"] == 1
    assert service.pipeline.records == 3  # two predicted, one learned when its label joined


def test_the_window_bounds_the_wait_and_counts_what_expired(tmp_path: Path) -> None:
    values, _ = _delayed(200, delay=30)
    sink = MemorySink()
    service = _service(MemorySource("in", [values]), sink, tmp_path, LabelJoin(window=20))
    service.run(idle_exit=0.05)
    status = service.labels.status()
    # each label came 30 records late, after its record left the window of 20, except the last
    # 20 records': no record came after them to push them out
    assert status["labels_joined"] == 20 and status["labels_held"] == 0
    assert status["labels_expired"] == 180
    assert _reasons(sink) == Counter({"unmatched_label": 180})


def test_a_crash_between_predictions_and_labels_loses_neither(tmp_path: Path) -> None:
    values, _ = _delayed(600, delay=150)
    crashed = [*values[:500], MemorySource.CRASH, *values[500:]]
    source, sink = MemorySource("in", [crashed]), MemorySink()
    with pytest.raises(Crash):
        _service(source, sink, tmp_path).run(idle_exit=0.05)
    restarted = _service(source, sink, tmp_path)
    restarted.run(idle_exit=0.05)
    assert len(_predictions(sink)) == 600  # every record predicted (some twice, after the crash)
    assert not _reasons(sink)  # every label found its record: the waiting ones were checkpointed
    assert restarted.labels.status()["labels_joined"] == 600


def test_records_without_an_id_of_their_own_do_not_wait(tmp_path: Path) -> None:
    """A topic of predictions only (no ``id``) fills no store and no checkpoint."""
    values = [b'{"x": [1, 2, 3]}'] * 20 + [b'{"x": [1, 2, 3], "id": "mine"}']
    service = _service(MemorySource("in", [values]), MemorySink(), tmp_path)
    service.run(idle_exit=0.05)
    assert service.labels.status()["labels_held"] == 1  # "mine" only


def test_a_label_from_another_partition_than_its_record_is_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Both still join (one instance reads both partitions), but with more instances the label
    could reach one that never saw the record: the message keys differ."""
    record, label = b'{"x": [1, 2, 3], "id": "a"}', b'{"id": "a", "y": 1}'
    same = b'{"x": [1, 2, 3], "id": "b"}', b'{"id": "b", "y": 0}'
    service = _service(MemorySource("in", [[record, *same], [label]]), MemorySink(), tmp_path)
    service.run(idle_exit=0.05)
    status = service.labels.status()
    assert status["labels_joined"] == 2 and status["labels_other_partition"] == 1
    assert "the label of id 'a' came on partition 1, its record on 0" in caplog.text


def test_a_join_or_hold_that_raises_stops_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in the join makes its labels dead letters (processing_error), one in holding
    leaves those records unheld; both are counted, and the service goes on."""
    values = [b'{"x": [1, 2, 3], "id": "a"}', b'{"id": "a", "y": 1}', b'{"x": [1, 2, 3], "y": 0}']

    def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    labels = LabelJoin()
    monkeypatch.setattr(labels, "_join", broken)
    monkeypatch.setattr(labels, "_hold", broken)
    sink = MemorySink()
    service = _service(MemorySource("in", [values]), sink, tmp_path, labels)
    stats = service.run(idle_exit=0.05)
    assert _reasons(sink) == Counter({"processing_error": 1})
    (letter,) = [dict(h) for _, _, h in sink.sent["dlq"]]
    assert letter["streammeta.error"] == b"a bug" and letter["streammeta.offset"] == b"1"
    assert labels.status()["label_failures"] == 2 and stats.records == 2
