"""The long-lived service: one run loop that owns the order of everything.

poll -> decode -> predict, segment, learn -> produce predictions and dead letters; and every
``checkpoint_records`` records or ``checkpoint_seconds`` seconds, and whenever a poll finds
nothing more to read: flush the producer, write the snapshot with the next offset of every
partition it covers (atomically), then commit those offsets. At-least-once: after a crash, a
restart (or a partition assignment) restores the snapshot and skips records below the offsets
it has already learned from, so no record is learned twice; predictions of records after the
last checkpoint are produced again (duplicates only within one checkpoint interval). A failed
delivery rewinds to the last checkpoint instead of committing past what was not delivered.

Where each partition resumes is :mod:`~streammeta.runtime.assignment`'s, how a checkpoint is
taken :mod:`~streammeta.runtime.checkpointing`'s, what is produced
:mod:`~streammeta.runtime.output`'s, what is watched between polls
:mod:`~streammeta.runtime.health`'s.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from streammeta.io.base import Partition, RawMessage, RebalanceListener, Sink, Source
from streammeta.io.decode import Decoder
from streammeta.io.errors import TransientKafkaError
from streammeta.io.records import Decoded, Records
from streammeta.runtime.assignment import Assignment, partition_names
from streammeta.runtime.checkpoint import CheckpointStore, Offsets
from streammeta.runtime.checkpointing import Checkpoints
from streammeta.runtime.health import TICK_S, Watch
from streammeta.runtime.labels import LabelJoin
from streammeta.runtime.metasync import MetaSync
from streammeta.runtime.output import Output
from streammeta.runtime.pipeline import Batch, Pipeline, Step
from streammeta.runtime.sensor import Sensor
from streammeta.runtime.shutdown import Grace, on_stop_signals
from streammeta.runtime.stats import RunStats

__all__ = ["Service"]

log = logging.getLogger("streammeta.runtime.service")  # one logger for the service's lines


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
        label_topic: str = "",
        labels: LabelJoin | None = None,
        poll_max_records: int = 500,
        checkpoint_records: int = 10_000,
        checkpoint_seconds: float = 30.0,
        micro_batch: int = 32,
        max_in_flight: int = 50_000,
        max_message_bytes: int = 1_000_000,
        flush_timeout: float = 30.0,
        offset_reset: str = "earliest",
        shutdown_grace: float = 10.0,
        progress_seconds: float = 30.0,
        on_batch: Callable[[Service, Step | None], None] | None = None,
        sensor: Sensor | None = None,
        lag_every_s: float = TICK_S,
    ) -> None:
        """``on_batch(service, step)`` is called after every micro-batch learned (with its
        step) and after every poll (with ``None``); ``sensor`` hears every event (metrics);
        the consumer lag, the broker's health and the topics' ends are read at most every
        ``lag_every_s`` seconds."""
        self.pipeline = pipeline
        self.source = source
        self.sink = sink
        self.decoder = decoder
        self.store = store
        self.input_topic = input_topic
        self.output_topic = output_topic
        self.label_topic = label_topic  # "": labels come on the input topic
        self.labels = labels or LabelJoin(window=0)
        self.poll_max_records = poll_max_records
        self.checkpoint_records = checkpoint_records
        self.checkpoint_seconds = checkpoint_seconds
        self.micro_batch = micro_batch
        self.on_batch = on_batch
        self.sensor = sensor or Sensor()
        self.stats = RunStats()
        self.grace = Grace(shutdown_grace)
        self.assignment = Assignment(
            source, offset_reset=offset_reset, stats=self.stats, sensor=self.sensor
        )
        self.output = Output(
            sink, decoder, output_topic=output_topic, dlq_topic=dlq_topic,
            max_message_bytes=max_message_bytes, stats=self.stats, sensor=self.sensor,
        )  # fmt: skip
        self.watch = Watch(
            pipeline, source, sink, self.assignment, input_topic=input_topic,
            max_in_flight=max_in_flight, lag_every_s=lag_every_s,
            progress_seconds=progress_seconds, stats=self.stats, sensor=self.sensor,
        )  # fmt: skip
        self.checkpoints = Checkpoints(
            pipeline, source, sink, store, self.assignment, decoder, flush_timeout=flush_timeout,
            stats=self.stats, sensor=self.sensor, labels=self.labels,
        )  # fmt: skip
        self._stop = False
        self.meta_sync: MetaSync | None = None  # sharing meta-state with the group (opt-in)
        self.assignment.forget(self.checkpoints.restore())

    @property
    def offsets(self) -> Offsets:
        """The next offset to learn from, per partition."""
        return self.assignment.offsets

    def checkpoint(self, timeout_s: float | None = None) -> bool:
        """Flush the producer (waiting up to ``timeout_s``, default ``flush_timeout``), save
        the snapshot with its offsets, then commit them; returns whether it checkpointed.
        Outputs the broker gave up on rewind to the last checkpoint; outputs still waiting for
        a broker that is away leave the checkpoint for later."""
        return self.checkpoints.save(timeout_s)

    # rebalance listener: called by the source inside ``poll``, between two batches
    def on_assigned(self, partitions: list[Partition]) -> None:
        self.stats.rebalances += 1
        self.assignment.assigned(partitions)
        self.sensor.on_assigned(partitions, len(self.source.assignment() | set(partitions)))

    def on_revoked(self, partitions: list[Partition]) -> None:
        log.info("revoked %s: checkpointing them", partition_names(partitions))
        self.checkpoint()
        self.sensor.on_revoked(partitions, len(self.source.assignment() - set(partitions)))

    def on_lost(self, partitions: list[Partition]) -> None:
        """Partitions gone without a hand-over: forget what was learned since the last
        checkpoint (their new owner relearns it) and commit nothing."""
        names = partition_names(partitions)
        log.warning("lost %s without a hand-over: back to the last checkpoint", names)
        self.assignment.forget(self.checkpoints.restore())
        self.sensor.on_revoked(partitions, len(self.source.assignment() - set(partitions)))

    # --- the loop ------------------------------------------------------------------------

    def stop(self, *_: object) -> None:
        """Finish the current batch, checkpoint, commit and return (SIGTERM/SIGINT); the
        grace (``service.shutdown_grace``) starts now."""
        self._stop = True
        self.grace.begin()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the loop; a watchdog ends the process when the stop takes
        longer than the grace, and a second signal ends it at once (the last checkpoint
        stands either way)."""
        on_stop_signals(self.stop, self.grace, stopping=lambda: self._stop)

    def run(self, *, max_records: int = 0, idle_exit: float = 0.0) -> RunStats:
        """Subscribe and loop; ends with a checkpoint (within the grace) and closes source and
        sink. ``stats.clean`` says whether that last checkpoint completed."""
        self.sensor.on_start(self.pipeline.live_status(learned=self.sensor.reads_learned))
        self.source.subscribe([self.input_topic, *filter(None, [self.label_topic])], self)
        log.info("subscribed to %r; predictions go to %r", self.input_topic, self.output_topic)
        idle_since = time.monotonic()
        try:
            while not self._stop:
                polled = self._poll()
                if polled:
                    idle_since = time.monotonic()
                elif idle_exit and time.monotonic() - idle_since >= idle_exit:
                    log.info("no message for %g s: stopping (--idle-exit)", idle_exit)
                    break
                self._polled(polled)
                if max_records and self.stats.records + self.stats.dead >= max_records:
                    log.info("%d records taken in: stopping (--max-records)", max_records)
                    break
            self.grace.begin()
            self.stats.clean = self.checkpoints.final(self.grace)
        finally:
            left = self.grace.remaining()
            self.source.close(timeout_s=max(left or 0.0, 1.0))
            self.sink.close(timeout_s=max(left or 0.0, 1.0))
            if self.meta_sync is not None:
                self.meta_sync.close()
            self.grace.done()
        return self.stats

    def poll_once(self) -> int:
        """One turn of the loop on a subscribed source: poll, watch, process what came, tell
        ``on_batch``, checkpoint when due. Returns the number of messages polled."""
        polled = self._poll()
        self._polled(polled)
        return polled

    def _poll(self) -> int:
        """Poll, watch, and process what came (a broker that stays away rewinds, then waits)."""
        messages = self.source.poll(self.poll_max_records, 0.5)
        self.sensor.on_poll(len(messages))
        self.watch.after_poll()
        if messages:
            try:
                self.process(messages)
                self.checkpoints.backoff.reset()
            except TransientKafkaError as exc:  # the producer's queue stayed full: broker away
                log.warning("broker unreachable (%s): rewinding, retrying after a pause", exc)
                self.checkpoints.rewind()
                self.checkpoints.backoff.wait()
        return len(messages)

    def _polled(self, polled: int) -> None:
        """The poll is done: status and stop checks, then a checkpoint when due."""
        if self.on_batch is not None:
            self.on_batch(self, None)
        if self.meta_sync is not None:
            self.meta_sync.tick()
        self.checkpoints.maybe(
            caught_up=not polled and not self.source.paused(),
            every_records=self.checkpoint_records,
            every_s=self.checkpoint_seconds,
        )

    # --- one poll's records -------------------------------------------------------------

    def process(self, messages: list[RawMessage]) -> Step | None:
        """One polled batch: skip what was learned before, decode, learn, produce."""
        self.stats.polled += len(messages)
        fresh = self.assignment.fresh(messages)
        if len(fresh) < len(messages):  # learned before, or a topic that starts again lower
            self.assignment.check_ends({(m.topic, m.partition) for m in messages})
            fresh = self.assignment.fresh(messages)
        self.stats.skipped += len(messages) - len(fresh)
        step = None
        if fresh:
            self.assignment.processing(fresh)
            self.output.batch = fresh
            decoded = self.decoder.decode(fresh)
            self.output.dead_letters(decoded.dead)
            if len(decoded.records):
                step = self._learn(decoded)
            self.assignment.advance(decoded.next_offsets)
            self.checkpoints.pending += len(fresh)
            self.output.batch = []
        return step

    def _learn(self, decoded: Decoded) -> Step | None:
        """Learn the good records micro-batch by micro-batch and produce their predictions;
        returns the last micro-batch's step."""
        records = decoded.records
        step = self._micro_batches(records.select(~records.label_only), publish=True)
        labels = records.select(records.label_only)  # for records predicted before
        if len(labels) or self.labels.waiting:
            joined, dead = self.labels.join(labels, self.output.batch)
            self.output.dead_letters(dead)
            step = self._micro_batches(joined, publish=False) or step
            self.sensor.on_labels(self.labels.status())
        return step

    def _micro_batches(self, records: Records, *, publish: bool) -> Step | None:
        step = None
        for start in range(0, len(records), self.micro_batch):
            idx = np.arange(start, min(start + self.micro_batch, len(records)))
            step = self._micro(records.select(idx), publish=publish) or step
        return step

    def _micro(self, r: Records, *, publish: bool = True) -> Step | None:
        """Predict, learn and produce one micro-batch. A batch the learner raises on is taken
        again record by record, and a record it still raises on becomes a dead letter
        (``processing_error``): one record never stops the service."""
        start = time.perf_counter()
        try:
            step = self.pipeline.process(
                Batch(x=r.x, y=r.y, labelled=r.labelled, task=r.task, concept=r.concept, key=r.key)
            )
        except Exception as exc:  # anything one record can cause in the learner
            if len(r) > 1:
                steps = [
                    self._micro(r.select(np.array([i])), publish=publish) for i in range(len(r))
                ]
                return next((s for s in reversed(steps) if s is not None), None)
            log.warning("record %s: the learner raised %s: %s", r.id[0], type(exc).__name__, exc)
            self.output.reject(r, "processing_error", exc)
            return None
        if publish:  # not again for records whose label came later: learned from now
            self.output.predictions(r, step)
            self.labels.hold(r, step.y_hat, step.proba)
        self.stats.records += len(r)
        self.watch.learned(r, step)
        seconds = time.perf_counter() - start
        status = self.pipeline.live_status(learned=self.sensor.reads_learned)
        self.sensor.on_batch(r, step, status, seconds)
        if self.on_batch is not None:
            self.on_batch(self, step)
        return step
