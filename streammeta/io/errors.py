"""What a Kafka operation raises: :class:`KafkaIOError` when retrying will not help, and its
kinds the run loop handles (passing trouble, a commit lost to a rebalance, an unconfirmed
delivery).
"""

from __future__ import annotations

from streammeta.errors import StreamMetaError

__all__ = ["CommitFailedError", "DeliveryError", "KafkaIOError", "TransientKafkaError"]


class KafkaIOError(StreamMetaError):
    """A Kafka operation failed; retrying the same call will not help."""


class TransientKafkaError(KafkaIOError):
    """A Kafka operation failed for a reason that passes (broker unreachable, timeout,
    coordinator moving): back off (:class:`~streammeta.io.backoff.Backoff`) and retry."""


class CommitFailedError(KafkaIOError):
    """The group rebalanced and gave the partitions to another member: this member can no longer
    commit them, and the records since the last commit will be processed again by the new owner."""


class DeliveryError(KafkaIOError):
    """``Sink.flush`` could not confirm every message produced since the last successful flush;
    ``undelivered`` counts those that failed or did not complete in time, ``pending`` those of
    them still waiting for the broker (they may yet be delivered: a broker away for a while)."""

    def __init__(self, undelivered: int, detail: str, *, pending: int = 0) -> None:
        self.undelivered = undelivered
        self.pending = pending
        super().__init__(f"{undelivered} message(s) not delivered: {detail}")

    @property
    def failed(self) -> int:
        """Messages the client gave up on: they will never be delivered."""
        return self.undelivered - self.pending
