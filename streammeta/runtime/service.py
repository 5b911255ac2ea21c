"""The long-lived service: one run loop that owns the order of everything.

poll -> decode -> predict, segment, learn -> produce predictions and dead letters; and every
``checkpoint_records`` records or ``checkpoint_seconds`` seconds, and whenever a poll finds
nothing more to read: flush the producer, write the snapshot with the next offset of every
partition it covers (atomically), then commit those offsets. At-least-once: after a crash, a
restart (or a partition assignment) restores the snapshot and skips records below the offsets
it has already learned from, so no record is learned twice; predictions of records after the
last checkpoint are produced again (duplicates only within one checkpoint interval). A failed
delivery rewinds to the last checkpoint instead of committing past what was not delivered.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streammeta.config import Config
from streammeta.io.backoff import Backoff
from streammeta.io.base import (
    CommitFailedError,
    DeliveryError,
    Partition,
    RawMessage,
    RebalanceListener,
    Sink,
    Source,
    TransientKafkaError,
)
from streammeta.io.decode import Decoded, Decoder, Records
from streammeta.io.kafka import open_sink, open_source
from streammeta.metrics.sensor import Sensor
from streammeta.runtime.checkpoint import CheckpointStore, Offsets
from streammeta.runtime.pipeline import Batch, Pipeline, Step

__all__ = ["RunStats", "Service", "build_service"]

log = logging.getLogger(__name__)
#: One compact encoder for every prediction (``json.dumps`` with ``separators`` builds a new
#: encoder per call: 5 us a record against 3).
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


@dataclass
class RunStats:
    """Counters of one run, for status lines, tests and metrics."""

    polled: int = 0  # messages
    skipped: int = 0  # messages already learned from before a restart or rewind
    records: int = 0  # good records learned from
    dead_letters: dict[str, int] = field(default_factory=dict)  # by reason
    predictions: int = 0
    checkpoints: int = 0
    rewinds: int = 0  # deliveries that failed: back to the last checkpoint
    rebalances: int = 0
    commit_failures: int = 0  # commits refused because a rebalance moved the partitions
    last_checkpoint: float = field(default_factory=time.monotonic)
    started: float = field(default_factory=time.monotonic)

    @property
    def dead(self) -> int:
        return sum(self.dead_letters.values())


class Service(RebalanceListener):
    """Runs the loop until stopped, ``max_records`` taken in, or ``idle_exit`` seconds idle."""

    def __init__(
        self,
        pipeline: Pipeline,
        source: Source,
        sink: Sink,
        decoder: Decoder,
        store: CheckpointStore,
        *,
        input_topic: str,
        output_topic: str,
        dlq_topic: str,
        poll_max_records: int = 500,
        checkpoint_records: int = 10_000,
        checkpoint_seconds: float = 30.0,
        micro_batch: int = 32,
        max_in_flight: int = 50_000,
        on_batch: Callable[[Service, Step | None], None] | None = None,
        sensor: Sensor | None = None,
        lag_every_s: float = 1.0,
    ) -> None:
        """``on_batch(service, step)`` is called after every micro-batch learned (with its
        step) and after every poll (with ``None``); ``sensor`` hears every event (metrics);
        the consumer lag is read at most every ``lag_every_s`` seconds."""
        self.pipeline = pipeline
        self.source = source
        self.sink = sink
        self.decoder = decoder
        self.store = store
        self.input_topic = input_topic
        self.output_topic = output_topic
        self.dlq_topic = dlq_topic
        self.poll_max_records = poll_max_records
        self.checkpoint_records = checkpoint_records
        self.checkpoint_seconds = checkpoint_seconds
        self.micro_batch = micro_batch
        self.max_in_flight = max_in_flight
        self.on_batch = on_batch
        self.sensor = sensor or Sensor()
        self.lag_every_s = lag_every_s
        self.stats = RunStats()
        self.offsets: Offsets = {}  # next offset to learn from, per partition
        self._since_checkpoint = 0
        self._stop = False
        self._backoff = Backoff()
        self._lag_read = 0.0
        self._restore()

    # --- state ---------------------------------------------------------------------------

    def _restore(self) -> None:
        loaded = self.store.load()
        if loaded is None:
            return
        state, self.offsets = loaded
        self.pipeline.restore(state)
        log.info(
            "restored checkpoint at %d records; offsets %s", self.pipeline.records, self.offsets
        )

    def checkpoint(self) -> bool:
        """Flush the producer, save the snapshot with its offsets, then commit them. A failed
        delivery rewinds to the last checkpoint instead; returns whether it checkpointed."""
        start = time.perf_counter()
        try:
            self.sink.flush(30.0)
        except DeliveryError as exc:
            log.warning("delivery failed (%s): rewinding to the last checkpoint", exc)
            self._rewind()
            return False
        self.store.save(self.pipeline.snapshot(), self.offsets)
        owned = self.source.assignment()
        mine = {tp: off for tp, off in self.offsets.items() if tp in owned}
        if mine:
            try:
                self.source.commit(mine)
            except CommitFailedError as exc:  # a rebalance moved them: their new owner resumes
                # from the last commit and answers the records since once more (at-least-once)
                log.warning("commit failed (%s); the checkpoint stands", exc)
                self.stats.commit_failures += 1
                self.sensor.on_commit_failure()
        self.stats.checkpoints += 1
        self.stats.last_checkpoint = time.monotonic()
        self._since_checkpoint = 0
        self.sensor.on_checkpoint(time.perf_counter() - start)
        return True

    def _forget(self) -> None:
        """Back to the last checkpoint: what was learned since is forgotten."""
        self.offsets = {}
        self._restore()
        self._since_checkpoint = 0

    def _rewind(self) -> None:
        """Forget everything since the last checkpoint and read it again."""
        self._forget()
        for tp in self.source.assignment():
            committed = self.source.committed([tp]).get(tp)
            self.source.seek(tp, self.offsets.get(tp, committed or 0))
        self.stats.rewinds += 1
        self.sensor.on_rewind()

    # rebalance listener: called by the source inside ``poll``, between two batches
    def on_assigned(self, partitions: list[Partition]) -> None:
        self.stats.rebalances += 1
        for tp in partitions:
            if tp in self.offsets:
                self.source.seek(tp, self.offsets[tp])
        self.sensor.on_assigned(partitions, len(self.source.assignment() | set(partitions)))

    def on_revoked(self, partitions: list[Partition]) -> None:
        self.checkpoint()
        self.sensor.on_revoked(partitions, len(self.source.assignment() - set(partitions)))

    def on_lost(self, partitions: list[Partition]) -> None:
        """Partitions gone without a hand-over: forget what was learned since the last
        checkpoint (their new owner relearns it) and commit nothing."""
        self._forget()
        self.sensor.on_revoked(partitions, len(self.source.assignment() - set(partitions)))

    # --- the loop ------------------------------------------------------------------------

    def stop(self, *_: object) -> None:
        """Finish the current batch, checkpoint, commit and return (SIGTERM/SIGINT)."""
        self._stop = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def run(self, *, max_records: int = 0, idle_exit: float = 0.0) -> RunStats:
        """Subscribe and loop; always ends with a checkpoint and closes source and sink."""
        self.sensor.on_start(self.pipeline)
        self.source.subscribe([self.input_topic], self)
        idle_since = time.monotonic()
        try:
            while not self._stop:
                messages = self.source.poll(self.poll_max_records, 0.5)
                self.sensor.on_poll(len(messages))
                self._backpressure()
                if time.monotonic() - self._lag_read >= self.lag_every_s:
                    self._lag_read = time.monotonic()
                    self.sensor.on_lag(self.source.lag())
                if messages:
                    idle_since = time.monotonic()
                    self._process_or_rewind(messages)
                elif idle_exit and time.monotonic() - idle_since >= idle_exit:
                    break
                caught_up = not messages and not self.source.paused()
                if self._since_checkpoint and (
                    caught_up  # nothing to read: a restart would answer these once more
                    or self._since_checkpoint >= self.checkpoint_records
                    or time.monotonic() - self.stats.last_checkpoint >= self.checkpoint_seconds
                ):
                    self.checkpoint()
                if max_records and self.stats.records + self.stats.dead >= max_records:
                    break
            for _ in range(8):  # the final checkpoint: retried while deliveries fail
                if self.checkpoint():
                    break
                self._backoff.wait()
        finally:
            self.source.close()
            self.sink.close()
        return self.stats

    def _backpressure(self) -> None:
        """Pause the input while more than ``max_in_flight`` outputs wait for the broker's
        acknowledgement, resume at half; the loop keeps polling meanwhile (a paused partition
        returns nothing), so the consumer stays in its group."""
        pending = self.sink.pending()
        paused = self.source.paused()
        if pending > self.max_in_flight:
            held = self.source.assignment() - paused  # a rebalance unpauses: pause those too
            if held:
                if not paused:
                    log.warning("%d outputs wait for acknowledgement: input paused", pending)
                    self.sensor.on_backpressure(True)
                self.source.pause(held)
        elif paused and pending <= self.max_in_flight // 2:
            self.source.resume(paused)
            log.info("%d outputs wait for acknowledgement: input resumed", pending)
            self.sensor.on_backpressure(False)

    def _process_or_rewind(self, messages: list[RawMessage]) -> None:
        try:
            self.process(messages)
            self._backoff.reset()
        except TransientKafkaError as exc:  # the producer's queue stayed full: broker away
            log.warning("broker unreachable (%s): rewinding, retrying after a pause", exc)
            self._rewind()
            self._backoff.wait()

    def process(self, messages: list[RawMessage]) -> Step | None:
        """One polled batch: skip what was learned before, decode, learn, produce."""
        self.stats.polled += len(messages)
        fresh = [m for m in messages if m.offset >= self.offsets.get((m.topic, m.partition), 0)]
        self.stats.skipped += len(messages) - len(fresh)
        step = None
        if fresh:
            decoded = self.decoder.decode(fresh)
            for dead in decoded.dead:
                self.sink.produce(self.dlq_topic, dead.value or b"", dead.key, dead.headers())
            if decoded.dead:
                reasons = Counter(dead.reason for dead in decoded.dead)
                for reason, n in reasons.items():
                    self.stats.dead_letters[reason] = self.stats.dead_letters.get(reason, 0) + n
                self.sensor.on_dead_letters(reasons)
            if len(decoded.records):
                step = self._learn(decoded)
            for tp, nxt in decoded.next_offsets.items():
                self.offsets[tp] = max(self.offsets.get(tp, 0), nxt)
            self._since_checkpoint += len(fresh)
        if self.on_batch is not None:
            self.on_batch(self, None)  # the poll is done: status, stop checks
        return step

    def _learn(self, decoded: Decoded) -> Step:
        """Learn the good records micro-batch by micro-batch and produce their predictions;
        returns the last micro-batch's step."""
        records = decoded.records
        for start in range(0, len(records), self.micro_batch):
            step = self._micro(
                records.select(np.arange(start, min(start + self.micro_batch, len(records))))
            )
        return step

    def _micro(self, r: Records) -> Step:
        start = time.perf_counter()
        step = self.pipeline.process(
            Batch(x=r.x, y=r.y, labelled=r.labelled, task=r.task, concept=r.concept)
        )
        labels = self.decoder.labels
        y_hat = step.y_hat.tolist()
        if labels:
            y_hat = [labels[int(i)] for i in y_hat]
        ys = r.y.tolist()
        labelled = r.labelled.tolist()
        loss = step.loss.tolist()
        task = step.task.tolist()
        boundary = step.boundary.tolist()
        proba = step.proba.round(6).tolist() if step.proba is not None else None
        keys, ids = r.key.tolist(), r.id.tolist()
        topics, parts, offs = r.topic.tolist(), r.partition.tolist(), r.offset.tolist()
        for i in range(len(r)):
            out: dict[str, Any] = {
                "id": ids[i],
                "key": keys[i],
                "task": task[i],
                "y_hat": y_hat[i],
                "boundary": boundary[i],
                "model_version": step.model_version,
                "topic": topics[i],
                "partition": parts[i],
                "offset": offs[i],
            }
            if proba is not None:
                out["proba"] = proba[i]
            if labelled[i]:
                out["y"] = labels[int(ys[i])] if labels else ys[i]
                out["loss"] = loss[i] if np.isfinite(loss[i]) else None
            key = keys[i]
            self.sink.produce(
                self.output_topic,
                _ENCODE(out).encode(),
                key.encode() if key is not None else None,
            )
        self.stats.records += len(r)
        self.stats.predictions += len(r)
        self.sensor.on_batch(r, step, self.pipeline, time.perf_counter() - start)
        if self.on_batch is not None:
            self.on_batch(self, step)
        return step


#: Learner and segment settings a checkpoint's state depends on: a checkpoint written under
#: other values is refused at start-up rather than restored into the wrong shapes.
_FINGERPRINT = {
    "learner": ("task", "algorithm", "optimizer", "hidden", "layer_norm", "n_features",
                "n_classes", "labels", "feature_names", "baseline"),
    "segment": ("detector",),
}  # fmt: skip


def build_service(
    config: Config,
    *,
    on_batch: Callable[[Service, Step | None], None] | None = None,
    sensor: Sensor | None = None,
) -> Service:
    """The service ``config`` describes, on a Kafka source and sink."""
    fingerprint = {
        f"{section}.{name}": getattr(getattr(config, section), name)
        for section, names in _FINGERPRINT.items()
        for name in names
    }
    k, learner, svc = config.kafka, config.learner, config.service
    return Service(
        Pipeline.from_config(config),
        open_source(k),
        open_sink(k),
        Decoder(
            n_features=learner.n_features,
            n_classes=learner.n_classes,
            labels=learner.labels,
            feature_names=learner.feature_names,
            max_message_bytes=k.max_message_bytes,
        ),
        CheckpointStore(svc.checkpoint_dir, fingerprint=fingerprint),
        input_topic=k.input_topic,
        output_topic=k.output_topic,
        dlq_topic=k.dlq_topic,
        poll_max_records=k.poll_max_records,
        checkpoint_records=svc.checkpoint_records,
        checkpoint_seconds=svc.checkpoint_seconds,
        micro_batch=svc.micro_batch,
        max_in_flight=svc.max_in_flight,
        on_batch=on_batch,
        sensor=sensor,
    )
