"""Sensor hooks: what the run loop reports, and nothing about how it is recorded.

The service calls these hooks at the points where something happened (faust's sensors): a
poll, the dead letters of a poll, a learned micro-batch, a checkpoint, a rebalance. What they
carry are figures (the pipeline's :class:`~streammeta.runtime.status.PipelineStatus`, the batch's
:class:`~streammeta.runtime.pipeline.Step`), never the pipeline itself. A :class:`Sensor` ignores
them all; :class:`~streammeta.metrics.export.prometheus.PrometheusSensor` records them.

>>> class Counting(Sensor):
...     checkpoints = 0
...     def on_checkpoint(self, seconds: float) -> None:
...         self.checkpoints += 1
>>> sensor = Counting()
>>> sensor.on_checkpoint(0.01)
>>> sensor.checkpoints
1
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streammeta.io.base import Partition
    from streammeta.io.records import Records
    from streammeta.runtime.pipeline import Step
    from streammeta.runtime.status import PipelineStatus

__all__ = ["Sensor"]


class Sensor:
    """Every hook the run loop calls, each doing nothing."""

    #: Whether the hooks read ``PipelineStatus.learned`` (the learner's own figures, which
    #: cost a ``describe()``): the pipeline leaves them out for a sensor that does not.
    reads_learned: bool = False

    def on_start(self, status: PipelineStatus) -> None:
        """The service is about to subscribe (after restoring its checkpoint)."""

    def on_poll(self, messages: int) -> None:
        """A poll returned ``messages`` messages (0 when idle)."""

    def on_dead_letters(self, reasons: Mapping[str, int]) -> None:
        """Records of the last poll sent to the dead-letter topic, counted by reason."""

    def on_batch(
        self, records: Records, step: Step, status: PipelineStatus, seconds: float
    ) -> None:
        """One micro-batch learned and its predictions produced, in ``seconds``; ``status`` is
        the pipeline's after it."""

    def on_checkpoint(self, seconds: float) -> None:
        """A checkpoint was written and its offsets committed."""

    def on_commit_failure(self) -> None:
        """A commit was refused because a rebalance moved the partitions."""

    def on_rewind(self) -> None:
        """A delivery failed: back to the last checkpoint."""

    def on_assigned(self, partitions: Iterable[Partition], held: int) -> None:
        """Partitions assigned by a rebalance; ``held`` partitions are assigned now."""

    def on_revoked(self, partitions: Iterable[Partition], held: int) -> None:
        """Partitions revoked (or lost) by a rebalance."""

    def on_lag(self, lag: Mapping[Partition, int]) -> None:
        """Records behind the high watermark, per assigned partition."""

    def on_transient_errors(self, count: int) -> None:
        """The source met ``count`` more passing errors (broker unreachable, timeouts) since the
        last call; its client retries by itself."""

    def on_meta_sync(self, figures: dict[str, float]) -> None:
        """A meta-state sync with the group ran: :meth:`~streammeta.runtime.metasync.MetaSync.
        status`'s cumulative figures."""

    def on_labels(self, figures: dict[str, float]) -> None:
        """Labels that came after their records were joined (or not): the cumulative figures of
        :meth:`~streammeta.runtime.labels.LabelJoin.status`."""

    def on_health(self, reachable: bool, trouble: str | None) -> None:
        """Whether a broker connection is up, and why the service cannot make progress
        (broker unreachable, input topic missing), or ``None`` when it can again."""

    def on_output_failure(self, kind: str) -> None:
        """An output the broker refused for good (``kind``: prediction or dead_letter); it was
        logged with its source position."""

    def on_offset_reset(self, partition: Partition) -> None:
        """A partition's resume offset lay beyond the topic's end and was reset by policy."""

    def on_backpressure(self, paused: bool) -> None:
        """Input paused (``True``) because too many outputs wait for acknowledgement, or
        resumed (``False``)."""
