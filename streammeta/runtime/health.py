"""What the run loop watches between polls, and what it says about it.

After each poll: backpressure (pause the input while too many outputs wait for the broker's
acknowledgement), the source's passing errors (counted, logged at most once a minute with the
last one) and, at most every ``lag_every_s`` seconds, the consumer lag, resume offsets beyond a
topic's end, the broker's health and the progress line. Boundaries are logged at most once a
minute too: a stream that switches every 100 records would otherwise fill the log.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from streammeta.io.base import Sink, Source
from streammeta.io.records import Records
from streammeta.runtime.assignment import Assignment
from streammeta.runtime.pipeline import Pipeline, Step
from streammeta.runtime.progress import Progress, RateLimited
from streammeta.runtime.sensor import Sensor
from streammeta.runtime.stats import RunStats

__all__ = ["REPEAT_S", "TICK_S", "Watch"]

log = logging.getLogger("streammeta.runtime.service")  # one logger for the service's lines

#: Seconds between the loop's health checks (lag, broker, offsets beyond a topic's end).
TICK_S = 1.0
#: Seconds between repeated log lines about the same trouble or about boundaries.
REPEAT_S = 60.0


class Watch:
    """The health checks and the log lines of the run loop over ``source`` and ``sink``."""

    def __init__(
        self,
        pipeline: Pipeline,
        source: Source,
        sink: Sink,
        assignment: Assignment,
        *,
        input_topic: str,
        max_in_flight: int,
        lag_every_s: float,
        progress_seconds: float,
        stats: RunStats,
        sensor: Sensor,
    ) -> None:
        self.pipeline = pipeline
        self.source = source
        self.sink = sink
        self.assignment = assignment
        self.input_topic = input_topic
        self.max_in_flight = max_in_flight
        self.lag_every_s = lag_every_s
        self.stats = stats
        self.sensor = sensor
        self._lag_read = 0.0
        self._trouble: str | None = None
        self._trouble_since = 0.0
        self._trouble_said = RateLimited(REPEAT_S)
        self._topic_checked = 0.0
        self._topic_missing = False
        self._waiting_since = time.monotonic()
        self._errors = source.transient_errors  # the source's passing errors already counted
        self._errors_unsaid = 0
        self._errors_said = RateLimited(REPEAT_S)
        self._last_error: str | None = None
        self._boundaries = RateLimited(REPEAT_S)
        self.progress = Progress(progress_seconds, time.monotonic())

    def after_poll(self) -> None:
        """Backpressure and the source's passing errors; the rest every ``lag_every_s``."""
        self._backpressure()
        self._transient_errors(time.monotonic())
        self._tick()

    def learned(self, r: Records, step: Step) -> None:
        """A micro-batch learned: count it for the progress line, log a boundary it opened."""
        self.progress.add(len(r), step.loss, step.baseline_loss)
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

    def _tick(self) -> None:
        """Once every ``lag_every_s``: lag, the broker's health, resume offsets beyond a
        topic's end, the progress line."""
        now = time.monotonic()
        if now - self._lag_read < self.lag_every_s:
            return
        self._lag_read = now
        lags = self.source.lag()
        self.sensor.on_lag(lags)
        self.assignment.check_ends(self.source.assignment())
        self._health(now)
        if self.progress.due(now):
            lag = sum(lags.values()) if lags else None
            tasks = int(self.pipeline.tracker.closed_total)
            log.info("%s", self.progress.line(now, lag, self.stats.dead, tasks))

    def _transient_errors(self, now: float) -> None:
        """Count the source's passing errors since the last poll; log them at most once every
        ``REPEAT_S`` seconds, with the last one (its client retries by itself)."""
        total = self.source.transient_errors
        new, self._errors = total - self._errors, total
        self._last_error = self.source.last_error or self._last_error
        if new <= 0:
            return
        self.sensor.on_transient_errors(new)
        self._errors_unsaid += new
        if self._errors_said.ready(now):
            self._errors_said.take_held()
            log.warning(
                "the input's client met %d passing error(s) since the last report (last: %s); "
                "it retries by itself",
                self._errors_unsaid,
                self._last_error or "unknown",
            )
            self._errors_unsaid = 0

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
