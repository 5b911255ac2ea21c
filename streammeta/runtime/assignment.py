"""Where each partition resumes, and what a rebalance or a re-created topic changes about it.

The run loop learns each record once: :class:`Assignment` keeps the next offset to learn from
per partition (restored with the checkpoint), skips what lies below it, and on a rewind seeks
back to what it knows without asking the broker. A resume offset beyond a partition's end (the
topic was re-created or truncated) follows ``service.offset_reset``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from streammeta.errors import StreamMetaError
from streammeta.io.base import Partition, RawMessage, Source
from streammeta.io.errors import KafkaIOError
from streammeta.runtime.checkpoint import Offsets
from streammeta.runtime.sensor import Sensor
from streammeta.runtime.stats import RunStats

__all__ = ["OFFSET_RESETS", "Assignment", "OffsetResetError", "partition_names"]

log = logging.getLogger("streammeta.runtime.service")  # one logger for the service's lines

#: The values of ``service.offset_reset``.
OFFSET_RESETS = ("earliest", "latest", "fail")


class OffsetResetError(StreamMetaError):
    """A resume offset lies beyond its topic's end and ``service.offset_reset`` is ``fail``."""


def partition_names(partitions: Sequence[Partition]) -> str:
    """``in[0], in[1]`` for a log line."""
    return ", ".join(f"{t}[{p}]" for t, p in sorted(partitions)) or "nothing"


class Assignment:
    """The resume offsets of ``source``'s partitions: ``offsets`` (the next offset to learn
    from), the first offset processed since the last checkpoint, and the resume offsets reset
    by policy since."""

    def __init__(
        self, source: Source, *, offset_reset: str, stats: RunStats, sensor: Sensor
    ) -> None:
        if offset_reset not in OFFSET_RESETS:
            raise ValueError(f"offset_reset={offset_reset!r}: must be earliest, latest or fail")
        self.source = source
        self.offset_reset = offset_reset
        self.stats = stats
        self.sensor = sensor
        self.offsets: Offsets = {}  # next offset to learn from, per partition
        self._first_seen: Offsets = {}  # first offset processed since the checkpoint
        self._resets: Offsets = {}  # resume offsets reset by policy since the checkpoint

    # --- the records of a poll ------------------------------------------------------------

    def fresh(self, messages: list[RawMessage]) -> list[RawMessage]:
        """The messages at or past their partition's resume offset."""
        return [m for m in messages if m.offset >= self.offsets.get((m.topic, m.partition), 0)]

    def processing(self, messages: list[RawMessage]) -> None:
        """``messages`` are being processed: a rewind goes back at least to them."""
        for m in messages:
            self._first_seen.setdefault((m.topic, m.partition), m.offset)

    def advance(self, next_offsets: Mapping[Partition, int]) -> None:
        """Records below ``next_offsets`` were learned (or dead-lettered)."""
        for tp, nxt in next_offsets.items():
            self.offsets[tp] = max(self.offsets.get(tp, 0), nxt)

    # --- checkpoints and rewinds ----------------------------------------------------------

    def owned(self) -> Offsets:
        """The offsets of the partitions assigned now: what a checkpoint commits."""
        owned = self.source.assignment()
        return {tp: off for tp, off in self.offsets.items() if tp in owned}

    def checkpointed(self) -> None:
        self._first_seen, self._resets = {}, {}

    def forget(self, checkpointed: Offsets) -> None:
        """Back to the last checkpoint's ``checkpointed`` offsets. Resume offsets reset by
        policy since stay reset: they say where the topic starts now, which the checkpoint
        does not know yet."""
        self.offsets = dict(checkpointed)
        self._first_seen = {}
        self.offsets.update(self._resets)

    def rewind(self, checkpointed: Offsets) -> None:
        """Forget and read again: each partition from its checkpointed offset, else from the
        first offset processed since (no broker call, so a rewind works while the broker is
        away)."""
        first = self._first_seen
        self.forget(checkpointed)
        for tp in self.source.assignment():
            target = self.offsets.get(tp, first.get(tp))
            if target is not None:
                self.source.seek(tp, target)

    # --- rebalances and topic ends ----------------------------------------------------------

    def assigned(self, partitions: list[Partition]) -> None:
        """Seek newly assigned ``partitions`` to where they resume."""
        self._known_offsets([tp for tp in partitions if tp not in self.offsets])
        for tp in partitions:
            if tp in self.offsets:
                self.source.seek(tp, self.offsets[tp])
        log.info(
            "assigned %s; resuming at %s",
            partition_names(partitions),
            {f"{t}[{p}]": self.offsets.get((t, p), "committed or earliest") for t, p in partitions},
        )

    def _known_offsets(self, partitions: list[Partition]) -> None:
        """Take the group's committed offsets of ``partitions`` as where they resume, so that
        one beyond the topic's end is found (and reset by policy) like a checkpointed one."""
        if not partitions:
            return
        try:
            committed = self.source.committed(partitions)
        except KafkaIOError as exc:
            log.warning("committed offsets of %s unknown (%s)", partition_names(partitions), exc)
            return
        self.offsets.update({tp: off for tp, off in committed.items() if off is not None})

    def check_ends(self, partitions: set[Partition]) -> None:
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
