"""When and how the run loop checkpoints, and how it goes back to the last checkpoint.

A checkpoint flushes the producer, saves the pipeline's snapshot with the next offset of every
partition it covers, then commits those offsets: if the flush fails nothing is saved or
committed. Outputs the broker gave up on rewind to the last checkpoint; outputs still waiting
for a broker that is away leave the checkpoint for later, retried with backoff.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from streammeta.io.backoff import Backoff
from streammeta.io.base import Sink, Source
from streammeta.io.decode import Decoder
from streammeta.io.errors import CommitFailedError, DeliveryError, TransientKafkaError
from streammeta.runtime.assignment import Assignment
from streammeta.runtime.checkpoint import CheckpointStore, Offsets
from streammeta.runtime.labels import LabelJoin
from streammeta.runtime.pipeline import Pipeline
from streammeta.runtime.sensor import Sensor
from streammeta.runtime.shutdown import Grace
from streammeta.runtime.stats import RunStats

__all__ = ["Checkpoints"]

log = logging.getLogger("streammeta.runtime.service")  # one logger for the service's lines


class Checkpoints:
    """Checkpoints of ``pipeline`` and ``assignment`` in ``store``, committed on ``source``
    after ``sink`` is flushed; ``pending`` counts the messages taken in since the last one."""

    def __init__(
        self,
        pipeline: Pipeline,
        source: Source,
        sink: Sink,
        store: CheckpointStore,
        assignment: Assignment,
        decoder: Decoder,
        *,
        flush_timeout: float,
        stats: RunStats,
        sensor: Sensor,
        labels: LabelJoin | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.source = source
        self.sink = sink
        self.store = store
        self.assignment = assignment
        self.decoder = decoder
        self.flush_timeout = flush_timeout
        self.stats = stats
        self.sensor = sensor
        self.labels = labels or LabelJoin(window=0)
        self.pending = 0
        self.backoff = Backoff()
        self._retry_at = 0.0  # no checkpoint attempt before (after one the broker held up)
        self._initial = self._snapshot()  # what a rewind with no checkpoint goes back to

    def _snapshot(self) -> dict[str, Any]:
        """The pipeline's state and the decoder's (the order of named features it inferred)."""
        extra = {"decoder": self.decoder.snapshot(), "labels": self.labels.snapshot()}
        return self.pipeline.snapshot() | extra

    def _apply(self, state: dict[str, Any]) -> None:
        self.pipeline.restore(state)
        self.decoder.restore(state.get("decoder", {}))  # none in older checkpoints
        self.labels.restore(state.get("labels"))

    def restore(self) -> Offsets:
        """The pipeline back to the last checkpoint (or to its start); returns its offsets."""
        self.pending = 0
        loaded = self.store.load()
        if loaded is None:
            self._apply(self._initial)
            return {}
        state, offsets = loaded
        self._apply(state)
        log.info("restored checkpoint at %d records; offsets %s", self.pipeline.records, offsets)
        return offsets

    def rewind(self) -> None:
        """Forget everything since the last checkpoint and read it again."""
        self.assignment.rewind(self.restore())
        self.stats.rewinds += 1
        self.sensor.on_rewind()

    def save(self, timeout_s: float | None = None) -> bool:
        """Flush the producer (waiting up to ``timeout_s``, default ``flush_timeout``), save
        the snapshot with its offsets, then commit them; returns whether it checkpointed."""
        start = time.perf_counter()
        try:
            self.sink.flush(self.flush_timeout if timeout_s is None else timeout_s)
        except DeliveryError as exc:
            if exc.failed:
                log.warning("delivery failed (%s): rewinding to the last checkpoint", exc)
                self.rewind()
            else:
                log.warning("%s: the checkpoint waits for the broker", exc)
            return False
        self.store.save(self._snapshot(), self.assignment.offsets)
        mine = self.assignment.owned()
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
        self.pending = 0
        self.assignment.checkpointed()
        self.sensor.on_checkpoint(seconds)
        return True

    def _commit_failed(self) -> None:
        self.stats.commit_failures += 1
        self.sensor.on_commit_failure()

    def maybe(self, *, caught_up: bool, every_records: int, every_s: float) -> None:
        """Checkpoint when records wait and: nothing more to read (a restart would answer them
        once more), ``every_records`` taken in, or ``every_s`` seconds passed; after a
        checkpoint the broker held up, not before the backoff delay."""
        now = time.monotonic()
        due = self.pending and (
            caught_up
            or self.pending >= every_records
            or now - self.stats.last_checkpoint >= every_s
        )
        if not due or now < self._retry_at:
            return
        if self.save():
            self._retry_at = 0.0
        else:
            self._retry_at = time.monotonic() + self.backoff.next_delay()

    def final(self, grace: Grace) -> bool:
        """The last checkpoint, retried while the grace lasts; ``False`` when it ran out."""
        while True:
            left = grace.remaining() or 0.0
            if left > 0 and self.save(timeout_s=min(left, self.flush_timeout)):
                return True
            left = grace.remaining() or 0.0
            if left <= 0:
                log.warning(
                    "no final checkpoint within service.shutdown_grace = %g s (broker "
                    "unreachable?): the last checkpoint stands; the %d records since are "
                    "answered again after a restart",
                    grace.seconds,
                    self.pending,
                )
                return False
            time.sleep(min(self.backoff.next_delay(), left))
