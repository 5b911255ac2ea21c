"""The run loop on in-memory topics: every input offset answered, checkpoints before commits,
restarts that neither lose nor relearn, rewinds on failed deliveries, clean stops."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from streammeta.config import load_config
from streammeta.io.decode import Decoder
from streammeta.runtime.checkpoint import CheckpointStore
from streammeta.runtime.pipeline import Pipeline
from streammeta.runtime.service import Service
from streammeta.streams import make_stream
from streammeta.testing import MemorySink, MemorySource

BAD = [b"{not json", b'{"x": [1.0, 2.0], "y": 1.0}', b'{"x": [NaN], "y": 1}', b'[{"x": "a"}]']


def _topic(n: int, partitions: int = 2, seed: int = 0) -> list[list[bytes]]:
    """``n`` sinusoid records as single-record messages, a bad one planted every 97th."""
    out: list[list[bytes]] = [[] for _ in range(partitions)]
    for i, rec in enumerate(make_stream("sinusoid", seed=seed).records(n)):
        value = BAD[i % len(BAD)] if i % 97 == 50 else json.dumps(rec).encode()
        out[i % partitions].append(value)
    return out


def _service(source: MemorySource, sink: MemorySink, path: Path, **kw: object) -> Service:
    config = load_config(env={})
    return Service(
        Pipeline.from_config(config),
        source,
        sink,
        Decoder(n_features=1),
        CheckpointStore(path, fingerprint="test"),
        input_topic="in",
        output_topic="out",
        dlq_topic="dlq",
        poll_max_records=64,
        **kw,  # type: ignore[arg-type]
    )


def _answered(sink: MemorySink) -> Counter[tuple[int, int]]:
    """How many times each input (partition, offset) got a prediction or a dead letter."""
    seen: Counter[tuple[int, int]] = Counter()
    for value, _, _ in sink.sent.get("out", []):
        pred = json.loads(value)
        seen[pred["partition"], pred["offset"]] += 1
    for _, _, headers in sink.sent.get("dlq", []):
        h = dict(headers)
        seen[int(h["streammeta.partition"]), int(h["streammeta.offset"])] += 1
    return seen


def test_every_record_gets_a_prediction_or_a_dead_letter(tmp_path: Path) -> None:
    topic = _topic(2000)
    source, sink = MemorySource("in", topic), MemorySink()
    stats = _service(source, sink, tmp_path, checkpoint_records=500).run(idle_exit=0.01)
    assert stats.records + stats.dead == 2000 and stats.dead == 21
    assert set(stats.dead_letters) == {"malformed_json", "feature_count", "non_finite", "schema"}
    answered = _answered(sink)
    assert len(answered) == 2000 and set(answered.values()) == {1}
    assert source.commits == {("in", 0): 1000, ("in", 1): 1000}
    pred = json.loads(sink.sent["out"][-1][0])
    assert set(pred) >= {"id", "key", "task", "y_hat", "y", "loss", "boundary", "model_version"}
    assert pred["model_version"] > 0 and source.closed and sink.closed
    boundaries = [json.loads(v)["boundary"] for v, _, _ in sink.sent["out"]]
    assert sum(boundaries) >= 15  # explicit task fields: one boundary per task switch


def test_a_crash_and_restart_loses_nothing_and_relearns_nothing(tmp_path: Path) -> None:
    topic = _topic(3000)
    source, sink = MemorySource("in", topic), MemorySink()
    first = _service(source, sink, tmp_path, checkpoint_records=400)
    source.subscribe(["in"], first)
    while first.stats.records + first.stats.dead < 2100:  # then "kill -9": no final checkpoint
        first.poll_once()  # checkpoints every 400 records
    learned_at_checkpoint = CheckpointStore(tmp_path, "test").load()[0]["records"]  # type: ignore[index]
    restarted_source = MemorySource("in", topic, commits=dict(source.commits))
    second = _service(restarted_source, sink, tmp_path, checkpoint_records=400)
    assert second.pipeline.records == learned_at_checkpoint  # carries on from its snapshot
    second.run(idle_exit=0.01)
    answered = _answered(sink)
    assert len(answered) == 3000  # every input offset answered
    repeats = [k for k, v in answered.items() if v > 1]
    assert 0 < len(repeats) <= 400 + 64  # only within the last checkpoint interval
    planted = len(range(50, 3000, 97))
    assert second.pipeline.records == 3000 - planted  # each good record learned exactly once


def test_a_failed_delivery_rewinds_to_the_last_checkpoint(tmp_path: Path) -> None:
    source, sink = MemorySource("in", _topic(1500)), MemorySink(fail_flushes=0)
    service = _service(source, sink, tmp_path, checkpoint_records=300)
    source.subscribe(["in"], service)
    for _ in range(8):
        service.process(source.poll(64, 0))
    service.checkpoint()
    sink.fail_flushes = 1
    for _ in range(6):
        service.process(source.poll(64, 0))
    assert not service.checkpoint() and service.stats.rewinds == 1
    service.run(idle_exit=0.01)
    answered = _answered(sink)
    assert len(answered) == 1500 and max(answered.values()) == 1  # lost ones produced again


def test_stop_finishes_the_batch_checkpoints_and_closes(tmp_path: Path) -> None:
    source, sink = MemorySource("in", _topic(5000)), MemorySink()

    def stop_soon(service: Service, _: object) -> None:
        if service.stats.records > 300:
            service.stop()

    stats = _service(source, sink, tmp_path, on_batch=stop_soon).run()
    assert 300 < stats.records < 5000 and stats.checkpoints == 1
    assert sum(source.commits.values()) == stats.records + stats.dead
    assert source.closed and sink.closed


def test_lost_partitions_drop_what_was_not_checkpointed(tmp_path: Path) -> None:
    source, sink = MemorySource("in", _topic(1000)), MemorySink()
    service = _service(source, sink, tmp_path)
    source.subscribe(["in"], service)
    service.process(source.poll(64, 0))
    service.checkpoint()
    records, offsets = service.pipeline.records, dict(service.offsets)
    service.process(source.poll(64, 0))
    assert service.pipeline.records > records
    service.on_lost([("in", 0), ("in", 1)])
    assert service.pipeline.records == records and service.offsets == offsets


@pytest.mark.parametrize("labels", [(), ("no", "yes")])
def test_classification_predictions_carry_probabilities_and_labels(
    tmp_path: Path, labels: tuple[str, ...]
) -> None:
    rng = np.random.default_rng(0)
    msgs = []
    for _ in range(200):
        x = rng.normal(size=2).round(3).tolist()
        y = int(x[0] > 0)
        msgs.append(json.dumps({"x": x, "y": labels[y] if labels else y}).encode())
    flags = {"learner.task": "classification", "learner.n_classes": 2, "learner.n_features": 2}
    config = load_config(env={}, overrides=flags)
    source, sink = MemorySource("in", [msgs]), MemorySink()
    Service(
        Pipeline.from_config(config),
        source,
        sink,
        Decoder(n_features=2, n_classes=2, labels=labels),
        CheckpointStore(tmp_path),
        input_topic="in", output_topic="out", dlq_topic="dlq",
    ).run(idle_exit=0.01)  # fmt: skip
    preds = [json.loads(v) for v, _, _ in sink.sent["out"]]
    assert len(preds) == 200 and all(len(p["proba"]) == 2 for p in preds)
    assert {p["y"] for p in preds} == set(labels or (0, 1))
    assert {p["y_hat"] for p in preds} <= set(labels or (0, 1))


def test_a_commit_refused_by_a_rebalance_keeps_the_checkpoint(tmp_path: Path) -> None:
    from streammeta.io.errors import CommitFailedError

    source, sink = MemorySource("in", _topic(300)), MemorySink()
    service = _service(source, sink, tmp_path)
    source.subscribe(["in"], service)
    service.process(source.poll(64, 0))

    def refuse(offsets: object) -> None:
        raise CommitFailedError("rebalance in progress")

    source.commit = refuse  # type: ignore[method-assign]
    assert service.checkpoint() and service.stats.commit_failures == 1
    assert CheckpointStore(tmp_path, "test").load() is not None


def test_backpressure_pauses_the_input_but_keeps_polling(tmp_path: Path) -> None:
    """While more outputs wait for acknowledgement than max_in_flight, the input is paused and
    the loop still polls (so the group keeps the consumer); at half it resumes."""
    source = MemorySource("in", _topic(1000))
    seen: list[tuple[int, int, bool]] = []  # at each check: polls, records learned, paused

    class Slow(MemorySink):
        def pending(self) -> int:  # the broker stops acknowledging from the 3rd poll to the 8th
            seen.append((source.polls, service.stats.records, bool(source.paused())))
            return 101 if 3 <= source.polls < 8 else 50

    service = _service(source, Slow(), tmp_path, max_in_flight=100)
    service.run(max_records=1000, idle_exit=5)
    paused = [(polls, records) for polls, records, p in seen if p]
    assert [polls for polls, _ in paused] == [4, 5, 6, 7, 8]  # paused after the 3rd poll ...
    assert len({records for _, records in paused}) == 1  # ... learning nothing meanwhile
    assert not seen[-1][2] and service.stats.records + service.stats.dead == 1000


def test_a_restart_keeps_the_order_of_named_features_it_inferred(tmp_path: Path) -> None:
    """Named features take the first record's order; a restarted service reads later records
    (whose keys may come in any order) in that same order, from its checkpoint."""
    config = load_config(env={}, overrides={"learner.n_features": "2"})
    rng = np.random.default_rng(0)
    first = [json.dumps({"x": {"b": float(v), "a": 2.0}, "y": float(v)}).encode()
             for v in rng.normal(size=60)]  # fmt: skip

    def service(source: MemorySource, sink: MemorySink) -> Service:
        return Service(
            Pipeline.from_config(config), source, sink, Decoder(n_features=2),
            CheckpointStore(tmp_path, fingerprint="test"),
            input_topic="in", output_topic="out", dlq_topic="dlq",
        )  # fmt: skip

    before = service(MemorySource("in", [first]), MemorySink())
    before.run(idle_exit=0.01)
    assert before.decoder.feature_names == ("b", "a")
    after = service(MemorySource("in", [first]), MemorySink())
    assert after.decoder.feature_names == ("b", "a")  # restored before any record arrives
    fresh = Service(
        Pipeline.from_config(config), MemorySource("in", [[]]), MemorySink(), Decoder(n_features=2),
        CheckpointStore(tmp_path / "other", fingerprint="test"),
        input_topic="in", output_topic="out", dlq_topic="dlq",
    )  # fmt: skip
    assert fresh.decoder.feature_names is None


def test_a_service_with_background_meta_training_answers_and_checkpoints(tmp_path: Path) -> None:
    """learner.meta_async: predictions carry the version in use, which grows; a restart from
    the checkpoint resumes the learner, the worker's copy included."""
    config = load_config(env={}, overrides={"learner.meta_async": "true"})
    topic = _topic(1200, partitions=1)

    def service(source: MemorySource, sink: MemorySink) -> Service:
        return Service(
            Pipeline.from_config(config), source, sink, Decoder(n_features=1),
            CheckpointStore(tmp_path, fingerprint="test"),
            input_topic="in", output_topic="out", dlq_topic="dlq", checkpoint_records=300,
        )  # fmt: skip

    source, sink = MemorySource("in", [topic[0][:600]]), MemorySink()
    first = service(source, sink)
    first.run(idle_exit=0.01)
    versions = [json.loads(v)["model_version"] for v, _, _ in sink.sent["out"]]
    assert versions == sorted(versions) and versions[-1] > 0
    again = service(MemorySource("in", [topic[0]]), sink)
    assert again.pipeline.records == first.pipeline.records  # resumed from the checkpoint
    stats = again.run(idle_exit=0.01)
    assert stats.records + stats.dead == 600
    later = [json.loads(v)["model_version"] for v, _, _ in sink.sent["out"]][len(versions) :]
    assert min(later) >= versions[-1]  # never back to a version older than it had reached
