"""What the run loop produces: a prediction per good record, a dead letter per bad one.

Predictions are strict JSON, keyed to keep each input partition's order; dead letters carry the
original message bytes and where they came from, cut to fit the broker. An output the broker
refuses for good is logged with its source position and counted, never fatal; a prediction
refused that way, or one that cannot be encoded, becomes a dead letter.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import numpy as np

from streammeta.io.base import RawMessage, Sink
from streammeta.io.decode import Decoder
from streammeta.io.encode import encode_predictions
from streammeta.io.errors import KafkaIOError, TransientKafkaError
from streammeta.io.records import DeadLetter, Records
from streammeta.runtime.pipeline import Step
from streammeta.runtime.sensor import Sensor
from streammeta.runtime.stats import RunStats

__all__ = ["Output"]

log = logging.getLogger("streammeta.runtime.service")  # one logger for the service's lines


class Output:
    """Produces to ``output_topic`` and ``dlq_topic`` on ``sink``, counting in ``stats`` and
    telling ``sensor``. ``batch`` holds the messages being processed, whose original bytes a
    dead letter carries."""

    def __init__(
        self,
        sink: Sink,
        decoder: Decoder,
        *,
        output_topic: str,
        dlq_topic: str,
        max_message_bytes: int,
        stats: RunStats,
        sensor: Sensor,
    ) -> None:
        self.sink = sink
        self.decoder = decoder
        self.output_topic = output_topic
        self.dlq_topic = dlq_topic
        self.max_message_bytes = max_message_bytes
        self.stats = stats
        self.sensor = sensor
        self.batch: list[RawMessage] = []

    def dead_letters(self, dead: Sequence[DeadLetter]) -> None:
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
                self._failed("dead_letter", letter.position, exc)
        reasons = Counter(letter.reason for letter in dead)
        for reason, n in reasons.items():
            self.stats.dead_letters[reason] = self.stats.dead_letters.get(reason, 0) + n
        self.sensor.on_dead_letters(reasons)

    def reject(self, r: Records, reason: str, exc: Exception) -> None:
        """The one record in ``r`` becomes a dead letter: ``reason``, and ``exc`` as the why."""
        self.dead_letters([self._letter(r, reason, exc)])

    def predictions(self, r: Records, step: Step) -> None:
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
                letter = self._letter(r.select(np.array([i])), "unproducible", exc)
                self._failed("prediction", letter.position, exc)
                self.dead_letters([letter])
                continue
            self.stats.predictions += 1

    def _failed(self, kind: str, where: tuple[str, int, int], exc: Exception) -> None:
        log.error("%s of %s[%d] offset %d not produced: %s", kind, *where, exc)
        self.stats.output_failures += 1
        self.sensor.on_output_failure(kind)

    def _encode(self, r: Records, step: Step) -> Sequence[tuple[bytes, bytes] | None]:
        """The ``(key, value)`` of each record's prediction; ``None`` for a record whose
        prediction cannot be encoded, which becomes a dead letter (``processing_error``)."""
        try:
            return encode_predictions(r, step, self.decoder.labels)
        except Exception as exc:  # a bug one record's values trip: keep it to that record
            if len(r) > 1:
                alone = [np.array([i]) for i in range(len(r))]
                return [pair for i in alone for pair in self._encode(r.select(i), step.select(i))]
            log.warning("record %s: its prediction cannot be encoded: %s", r.id[0], exc)
            self.reject(r, "processing_error", exc)
            return [None]

    def _letter(self, r: Records, reason: str, exc: Exception) -> DeadLetter:
        """The dead letter of the one record in ``r``, with its original message bytes."""
        where = (str(r.topic[0]), int(r.partition[0]), int(r.offset[0]))
        m = next((m for m in self.batch if (m.topic, m.partition, m.offset) == where), None)
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
