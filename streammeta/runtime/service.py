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

import logging
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from streammeta.config import Config
from streammeta.errors import StreamMetaError
from streammeta.io.backoff import Backoff
from streammeta.io.base import (
    CommitFailedError,
    DeliveryError,
    KafkaIOError,
    Partition,
    RawMessage,
    RebalanceListener,
    Sink,
    Source,
    TransientKafkaError,
)
from streammeta.io.decode import Decoded, Decoder, Records
from streammeta.io.encode import encode_predictions
from streammeta.io.kafka import open_sink, open_source
from streammeta.io.records import DeadLetter
from streammeta.metrics.sensor import Sensor
from streammeta.runtime.checkpoint import CheckpointStore, Offsets
from streammeta.runtime.pipeline import Batch, Pipeline, Step
from streammeta.runtime.progress import Progress, RateLimited
from streammeta.runtime.shutdown import Grace, expire

__all__ = ["OffsetResetError", "RunStats", "Service", "build_service"]

log = logging.getLogger(__name__)

#: Seconds between the loop's health checks (lag, broker, offsets beyond a topic's end).
TICK_S = 1.0
#: Seconds between repeated log lines about the same trouble or about boundaries.
REPEAT_S = 60.0


class OffsetResetError(StreamMetaError):
    """A resume offset lies beyond its topic's end and ``service.offset_reset`` is ``fail``."""


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
    commit_failures: int = 0  # commits refused (rebalance) or impossible (broker away)
    output_failures: int = 0  # outputs the broker refused for good (logged)
    offset_resets: int = 0  # resume offsets beyond a topic's end, reset by policy
    clean: bool = True  # the final checkpoint completed (else the grace ran out)
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
        if offset_reset not in ("earliest", "latest", "fail"):
            raise ValueError(f"offset_reset={offset_reset!r}: must be earliest, latest or fail")
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
        self.max_message_bytes = max_message_bytes
        self.flush_timeout = flush_timeout
        self.offset_reset = offset_reset
        self.on_batch = on_batch
        self.sensor = sensor or Sensor()
        self.lag_every_s = lag_every_s
        self.stats = RunStats()
        self.offsets: Offsets = {}  # next offset to learn from, per partition
        self.grace = Grace(shutdown_grace)
        self._since_checkpoint = 0
        self._first_seen: Offsets = {}  # first offset processed since the checkpoint
        self._resets: Offsets = {}  # resume offsets reset by policy since the checkpoint
        self._stop = False
        self._backoff = Backoff()
        self._retry_at = 0.0  # no checkpoint attempt before (after one the broker held up)
        self._lag_read = 0.0
        self._trouble: str | None = None
        self._trouble_since = 0.0
        self._trouble_said = RateLimited(REPEAT_S)
        self._topic_checked = 0.0
        self._topic_missing = False
        self._waiting_since = time.monotonic()
        self._boundaries = RateLimited(REPEAT_S)
        self._progress = Progress(progress_seconds, time.monotonic())
        self._batch: list[RawMessage] = []  # the messages being processed
        self._initial = pipeline.snapshot()  # what a rewind with no checkpoint goes back to
        self._restore()

    # --- state ---------------------------------------------------------------------------

    def _restore(self) -> None:
        loaded = self.store.load()
        if loaded is None:
            self.pipeline.restore(self._initial)
            return
        state, self.offsets = loaded
        self.pipeline.restore(state)
        log.info(
            "restored checkpoint at %d records; offsets %s", self.pipeline.records, self.offsets
        )

    def checkpoint(self, timeout_s: float | None = None) -> bool:
        """Flush the producer (waiting up to ``timeout_s``, default ``flush_timeout``), save
        the snapshot with its offsets, then commit them; returns whether it checkpointed.
        Outputs the broker gave up on rewind to the last checkpoint; outputs still waiting for
        a broker that is away leave the checkpoint for later."""
        start = time.perf_counter()
        try:
            self.sink.flush(self.flush_timeout if timeout_s is None else timeout_s)
        except DeliveryError as exc:
            if exc.failed:
                log.warning("delivery failed (%s): rewinding to the last checkpoint", exc)
                self._rewind()
            else:
                log.warning("%s: the checkpoint waits for the broker", exc)
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
                self._commit_failed()
            except TransientKafkaError as exc:  # a restart resumes from the checkpoint anyway
                log.warning("commit failed (%s); the checkpoint stands, committed later", exc)
                self._commit_failed()
        seconds = time.perf_counter() - start
        log.info(
            "checkpoint: %d records learned, offsets %s, %.2f s",
            self.pipeline.records,
            {f"{t}[{p}]": o for (t, p), o in sorted(mine.items())},
            seconds,
        )
        self.stats.checkpoints += 1
        self.stats.last_checkpoint = time.monotonic()
        self._since_checkpoint = 0
        self._first_seen, self._resets = {}, {}
        self.sensor.on_checkpoint(seconds)
        return True

    def _commit_failed(self) -> None:
        self.stats.commit_failures += 1
        self.sensor.on_commit_failure()

    def _forget(self) -> None:
        """Back to the last checkpoint: what was learned since is forgotten. Resume offsets
        reset by policy since stay reset: they say where the topic starts now, which the
        checkpoint does not know yet."""
        self.offsets = {}
        self._first_seen = {}
        self._restore()
        self.offsets.update(self._resets)
        self._since_checkpoint = 0

    def _rewind(self) -> None:
        """Forget everything since the last checkpoint and read it again: each partition from
        its checkpointed offset, else from the first offset processed since (no broker call,
        so a rewind works while the broker is away)."""
        first = self._first_seen
        self._forget()
        for tp in self.source.assignment():
            target = self.offsets.get(tp, first.get(tp))
            if target is not None:
                self.source.seek(tp, target)
        self.stats.rewinds += 1
        self.sensor.on_rewind()

    # rebalance listener: called by the source inside ``poll``, between two batches
    def on_assigned(self, partitions: list[Partition]) -> None:
        self.stats.rebalances += 1
        self._known_offsets([tp for tp in partitions if tp not in self.offsets])
        for tp in partitions:
            if tp in self.offsets:
                self.source.seek(tp, self.offsets[tp])
        log.info(
            "assigned %s; resuming at %s",
            _names(partitions),
            {f"{t}[{p}]": self.offsets.get((t, p), "committed or earliest") for t, p in partitions},
        )
        self.sensor.on_assigned(partitions, len(self.source.assignment() | set(partitions)))

    def _known_offsets(self, partitions: list[Partition]) -> None:
        """Take the group's committed offsets of ``partitions`` as where they resume, so that
        one beyond the topic's end is found (and reset by policy) like a checkpointed one."""
        if not partitions:
            return
        try:
            committed = self.source.committed(partitions)
        except KafkaIOError as exc:
            log.warning("committed offsets of %s unknown (%s)", _names(partitions), exc)
            return
        self.offsets.update({tp: off for tp, off in committed.items() if off is not None})

    def on_revoked(self, partitions: list[Partition]) -> None:
        log.info("revoked %s: checkpointing them", _names(partitions))
        self.checkpoint()
        self.sensor.on_revoked(partitions, len(self.source.assignment() - set(partitions)))

    def on_lost(self, partitions: list[Partition]) -> None:
        """Partitions gone without a hand-over: forget what was learned since the last
        checkpoint (their new owner relearns it) and commit nothing."""
        log.warning("lost %s without a hand-over: back to the last checkpoint", _names(partitions))
        self._forget()
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
        kept = "the last checkpoint stands; records since it are answered again after a restart"

        def handle(signum: int, _frame: object) -> None:
            if self._stop:
                expire(f"{signal.Signals(signum).name} again: exiting now; {kept}")
            log.info(
                "%s: stopping (finishing the batch, then checkpoint and commit; at most %g s)",
                signal.Signals(signum).name,
                self.grace.seconds,
            )
            self.stop()
            self.grace.watch(kept)

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def run(self, *, max_records: int = 0, idle_exit: float = 0.0) -> RunStats:
        """Subscribe and loop; ends with a checkpoint (within the grace) and closes source and
        sink. ``stats.clean`` says whether that last checkpoint completed."""
        self.sensor.on_start(self.pipeline)
        self.source.subscribe([self.input_topic], self)
        log.info("subscribed to %r; predictions go to %r", self.input_topic, self.output_topic)
        idle_since = time.monotonic()
        try:
            while not self._stop:
                messages = self.source.poll(self.poll_max_records, 0.5)
                self.sensor.on_poll(len(messages))
                self._backpressure()
                self._tick()
                if messages:
                    idle_since = time.monotonic()
                    self._process_or_rewind(messages)
                elif idle_exit and time.monotonic() - idle_since >= idle_exit:
                    log.info("no message for %g s: stopping (--idle-exit)", idle_exit)
                    break
                if self.on_batch is not None:
                    self.on_batch(self, None)  # the poll is done: status, stop checks
                self._maybe_checkpoint(caught_up=not messages and not self.source.paused())
                if max_records and self.stats.records + self.stats.dead >= max_records:
                    log.info("%d records taken in: stopping (--max-records)", max_records)
                    break
            self.grace.begin()
            self.stats.clean = self._final_checkpoint()
        finally:
            left = self.grace.remaining()
            self.source.close(timeout_s=max(left or 0.0, 1.0))
            self.sink.close(timeout_s=max(left or 0.0, 1.0))
            self.grace.done()
        return self.stats

    def _maybe_checkpoint(self, *, caught_up: bool) -> None:
        """Checkpoint when records wait and: nothing more to read (a restart would answer them
        once more), ``checkpoint_records`` taken in, or ``checkpoint_seconds`` passed; after a
        checkpoint the broker held up, not before the backoff delay."""
        now = time.monotonic()
        due = self._since_checkpoint and (
            caught_up
            or self._since_checkpoint >= self.checkpoint_records
            or now - self.stats.last_checkpoint >= self.checkpoint_seconds
        )
        if not due or now < self._retry_at:
            return
        if self.checkpoint():
            self._retry_at = 0.0
        else:
            self._retry_at = time.monotonic() + self._backoff.next_delay()

    def _final_checkpoint(self) -> bool:
        """The last checkpoint, retried while the grace lasts; ``False`` when it ran out."""
        while True:
            left = self.grace.remaining() or 0.0
            if left > 0 and self.checkpoint(timeout_s=min(left, self.flush_timeout)):
                return True
            left = self.grace.remaining() or 0.0
            if left <= 0:
                log.warning(
                    "no final checkpoint within service.shutdown_grace = %g s (broker "
                    "unreachable?): the last checkpoint stands; the %d records since are "
                    "answered again after a restart",
                    self.grace.seconds,
                    self._since_checkpoint,
                )
                return False
            time.sleep(min(self._backoff.next_delay(), left))

    def _tick(self) -> None:
        """Once every ``lag_every_s``: lag, the broker's health, resume offsets beyond a
        topic's end, the progress line."""
        now = time.monotonic()
        if now - self._lag_read < self.lag_every_s:
            return
        self._lag_read = now
        lags = self.source.lag()
        self.sensor.on_lag(lags)
        self._check_ends(self.source.assignment())
        self._health(now)
        if self._progress.due(now):
            lag = sum(lags.values()) if lags else None
            tasks = int(self.pipeline.tracker.closed_total)
            log.info("%s", self._progress.line(now, lag, self.stats.dead, tasks))

    def _health(self, now: float) -> None:
        """Say when the broker goes away or the input topic is missing, and when that ends
        (logs, and ``/readyz`` and ``streammeta_broker_reachable`` through the sensor). Whether
        the topic exists is asked only while nothing is assigned, at most every 10 s."""
        reachable = self.source.reachable()
        if self.source.assignment():
            self._waiting_since, self._topic_missing = now, False
        elif reachable and now - self._waiting_since > 5.0 and now - self._topic_checked > 10.0:
            self._topic_checked = now
            self._topic_missing = not self.source.partitions(self.input_topic)
        trouble = None
        if not reachable:
            why = self.source.last_error or "no connection"
            trouble = f"broker unreachable ({why}): retrying with backoff"
        elif self._topic_missing:
            trouble = f"input topic {self.input_topic!r} does not exist: waiting for it"
        if trouble != self._trouble:
            if trouble is None:
                log.info("%s: over after %.0f s", self._trouble, now - self._trouble_since)
            else:
                log.warning("%s", trouble)
                self._trouble_since = now
                self._trouble_said.ready(now)  # the next reminder comes an interval later
            self._trouble = trouble
            self.sensor.on_health(reachable, trouble)
        elif trouble is not None and self._trouble_said.ready(now):
            log.warning("%s (for %.0f s now)", trouble, now - self._trouble_since)

    def _check_ends(self, partitions: set[Partition]) -> None:
        """A resume offset beyond a partition's end (the topic was re-created or truncated):
        warn, naming both offsets, and follow ``offset_reset``."""
        for tp in sorted(partitions & self.source.assignment()):
            end, at = self.source.highwater(tp), self.offsets.get(tp)
            if end is None or at is None or at <= end:
                continue
            what = (
                f"{tp[0]}[{tp[1]}]: the resume offset {at} lies beyond the topic's end {end} "
                "(topic re-created or truncated?)"
            )
            if self.offset_reset == "fail":
                raise OffsetResetError(
                    f"{what}; service.offset_reset = 'fail': set it to 'earliest' (read the "
                    "partition from its first record) or 'latest' (skip to its end), or move "
                    "the checkpoint directory away"
                )
            target = 0 if self.offset_reset == "earliest" else end
            log.warning(
                "%s; service.offset_reset = %r: resuming at %d", what, self.offset_reset, target
            )
            self.offsets[tp] = self._resets[tp] = target
            self._first_seen.pop(tp, None)
            self.source.seek(tp, target)
            self.stats.offset_resets += 1
            self.sensor.on_offset_reset(tp)

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
        fresh = self._fresh(messages)
        if len(fresh) < len(messages):  # learned before, or a topic that starts again lower
            self._check_ends({(m.topic, m.partition) for m in messages})
            fresh = self._fresh(messages)
        self.stats.skipped += len(messages) - len(fresh)
        step = None
        if fresh:
            for m in fresh:
                self._first_seen.setdefault((m.topic, m.partition), m.offset)
            self._batch = fresh
            decoded = self.decoder.decode(fresh)
            self._dead_letters(decoded.dead)
            if len(decoded.records):
                step = self._learn(decoded)
            for tp, nxt in decoded.next_offsets.items():
                self.offsets[tp] = max(self.offsets.get(tp, 0), nxt)
            self._since_checkpoint += len(fresh)
            self._batch = []
        return step

    def _fresh(self, messages: list[RawMessage]) -> list[RawMessage]:
        """The messages at or past their partition's resume offset."""
        return [m for m in messages if m.offset >= self.offsets.get((m.topic, m.partition), 0)]

    def _dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        """Produce ``dead`` to the dead-letter topic, each cut to fit the broker; one the broker
        still refuses is logged with its source position and counted, never fatal."""
        if not dead:
            return
        for letter in dead:
            value, key, headers = letter.to_message(self.max_message_bytes)
            try:
                self.sink.produce(self.dlq_topic, value, key, headers)
            except TransientKafkaError:
                raise
            except KafkaIOError as exc:
                self._output_failed("dead_letter", letter.position, exc)
        reasons = Counter(letter.reason for letter in dead)
        for reason, n in reasons.items():
            self.stats.dead_letters[reason] = self.stats.dead_letters.get(reason, 0) + n
        self.sensor.on_dead_letters(reasons)

    def _output_failed(self, kind: str, where: tuple[str, int, int], exc: Exception) -> None:
        log.error("%s of %s[%d] offset %d not produced: %s", kind, *where, exc)
        self.stats.output_failures += 1
        self.sensor.on_output_failure(kind)

    def _learn(self, decoded: Decoded) -> Step | None:
        """Learn the good records micro-batch by micro-batch and produce their predictions;
        returns the last micro-batch's step."""
        records = decoded.records
        step = None
        for start in range(0, len(records), self.micro_batch):
            idx = np.arange(start, min(start + self.micro_batch, len(records)))
            step = self._micro(records.select(idx)) or step
        return step

    def _micro(self, r: Records) -> Step | None:
        """Predict, learn and produce one micro-batch. A batch the learner raises on is taken
        again record by record, and a record it still raises on becomes a dead letter
        (``processing_error``): one record never stops the service."""
        start = time.perf_counter()
        try:
            step = self.pipeline.process(
                Batch(x=r.x, y=r.y, labelled=r.labelled, task=r.task, concept=r.concept)
            )
        except Exception as exc:  # anything one record can cause in the learner
            if len(r) > 1:
                steps = [self._micro(r.select(np.array([i]))) for i in range(len(r))]
                return next((s for s in reversed(steps) if s is not None), None)
            log.warning("record %s: the learner raised %s: %s", r.id[0], type(exc).__name__, exc)
            self._dead_letters([self._record_dead(r, "processing_error", exc)])
            return None
        self._emit(r, step)
        self.stats.records += len(r)
        self._progress.add(len(r), step.loss, step.baseline_loss)
        self._log_boundaries(r, step)
        self.sensor.on_batch(r, step, self.pipeline, time.perf_counter() - start)
        if self.on_batch is not None:
            self.on_batch(self, step)
        return step

    def _emit(self, r: Records, step: Step) -> None:
        """Produce the micro-batch's predictions (strict JSON, keyed to keep each input
        partition's order); one the broker refuses for good becomes a dead letter."""
        for i, pair in enumerate(self._encode(r, step)):
            if pair is None:
                continue
            key, value = pair
            try:
                self.sink.produce(self.output_topic, value, key)
            except TransientKafkaError:
                raise
            except KafkaIOError as exc:
                letter = self._record_dead(r.select(np.array([i])), "unproducible", exc)
                self._output_failed("prediction", letter.position, exc)
                self._dead_letters([letter])
                continue
            self.stats.predictions += 1

    def _encode(self, r: Records, step: Step) -> Sequence[tuple[bytes, bytes] | None]:
        """The ``(key, value)`` of each record's prediction; ``None`` for a record whose
        prediction cannot be encoded, which becomes a dead letter (``processing_error``)."""
        try:
            return encode_predictions(
                r,
                y_hat=step.y_hat,
                proba=step.proba,
                loss=step.loss,
                task=step.task,
                boundary=step.boundary,
                model_version=step.model_version,
                labels=self.decoder.labels,
            )
        except Exception as exc:  # a bug one record's values trip: keep it to that record
            if len(r) > 1:
                alone = [np.array([i]) for i in range(len(r))]
                return [pair for i in alone for pair in self._encode(r.select(i), step.select(i))]
            log.warning("record %s: its prediction cannot be encoded: %s", r.id[0], exc)
            self._dead_letters([self._record_dead(r, "processing_error", exc)])
            return [None]

    def _record_dead(self, r: Records, reason: str, exc: Exception) -> DeadLetter:
        """The dead letter of the one record in ``r``, with its original message bytes."""
        where = (str(r.topic[0]), int(r.partition[0]), int(r.offset[0]))
        m = next((m for m in self._batch if (m.topic, m.partition, m.offset) == where), None)
        index = int(r.index[0])
        return DeadLetter(
            m.value if m is not None else None,
            m.key if m is not None else None,
            reason,
            type(exc).__name__,
            str(exc),
            *where,
            index=index if index >= 0 else None,
        )

    def _log_boundaries(self, r: Records, step: Step) -> None:
        cuts = np.flatnonzero(step.boundary)
        if not len(cuts) or not self._boundaries.ready(time.monotonic()):
            return
        held = self._boundaries.take_held()
        more = f" ({held} more since the last one logged)" if held else ""
        log.info(
            "boundary: task %d opened at %s[%d] offset %d%s",
            int(step.task[cuts[-1]]),
            r.topic[cuts[-1]],
            int(r.partition[cuts[-1]]),
            int(r.offset[cuts[-1]]),
            more,
        )


def _names(partitions: Sequence[Partition]) -> str:
    return ", ".join(f"{t}[{p}]" for t, p in sorted(partitions)) or "nothing"


#: Learner and segment settings a checkpoint's state depends on: a checkpoint written under
#: other values is refused at start-up rather than restored into the wrong shapes.
_FINGERPRINT = {
    "learner": ("task", "algorithm", "optimizer", "hidden", "layer_norm", "n_features",
                "n_classes", "labels", "feature_names", "baseline", "standardize", "bank_size",
                "memory_size"),
    "segment": ("detector",),
}  # fmt: skip
#: the layout of the learner's state; a checkpoint of another layout is refused the same way
_STATE_FORMAT = 3


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
    } | {"state_format": _STATE_FORMAT}
    k, learner, svc = config.kafka, config.learner, config.service
    store = CheckpointStore(svc.checkpoint_dir, fingerprint=fingerprint)  # refused before Kafka
    log.info(
        "starting: %s learner (%s, %s, %d features%s, hidden %s) on %s, detector %s; "
        "%s -> %s (dead letters %s), group %r, client %s; checkpoints in %s every %d records "
        "or %g s",
        learner.task, learner.algorithm, learner.optimizer, learner.n_features,
        f", {learner.n_classes} classes" if learner.n_classes else "", list(learner.hidden),
        learner.device, config.segment.detector, k.input_topic, k.output_topic, k.dlq_topic,
        k.group, k.client, svc.checkpoint_dir, svc.checkpoint_records, svc.checkpoint_seconds,
    )  # fmt: skip
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
        store,
        input_topic=k.input_topic,
        output_topic=k.output_topic,
        dlq_topic=k.dlq_topic,
        poll_max_records=k.poll_max_records,
        checkpoint_records=svc.checkpoint_records,
        checkpoint_seconds=svc.checkpoint_seconds,
        micro_batch=svc.micro_batch,
        max_in_flight=svc.max_in_flight,
        max_message_bytes=k.max_message_bytes,
        flush_timeout=svc.flush_timeout,
        offset_reset=svc.offset_reset,
        shutdown_grace=svc.shutdown_grace,
        progress_seconds=svc.progress_seconds,
        on_batch=on_batch,
        sensor=sensor,
    )
