"""The I/O roles: a :class:`Source` hands out raw messages, a :class:`Sink` publishes them, and a
:class:`KafkaClient` is one client library behind both, so the run loop never sees which
(:mod:`streammeta.testing` has both in memory). Offsets follow Kafka's convention: the one to
commit or to resume from is the *next* to read (the last processed + 1).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, NamedTuple, Self

from streammeta.io.errors import DeliveryError, KafkaIOError

if TYPE_CHECKING:
    from streammeta.config import KafkaConfig
    from streammeta.io.connection import Connection

__all__ = ["KafkaClient", "Partition", "RawMessage", "RebalanceListener", "Sink", "Source"]

#: A partition as ``(topic, partition number)``.
Partition = tuple[str, int]


class RawMessage(NamedTuple):
    """One Kafka message as fetched: value and key as raw bytes (never deserialized by the
    client), ``timestamp`` in epoch milliseconds (-1 when the broker gave none)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]
    timestamp: int


class RebalanceListener:
    """Callbacks on partition changes in a consumer group; the defaults do nothing.

    They run inside :meth:`Source.poll` (and :meth:`Source.close`), never concurrently with the
    caller, and may call the source back (``commit``, ``committed``, ``seek``, ``position``).
    ``on_revoked`` comes before the partitions move to another member: checkpoint and commit
    there. ``on_assigned`` comes before the first fetch: ``seek`` there sets where a partition
    starts. ``on_lost`` replaces ``on_revoked`` when the member was evicted (session expired):
    the partitions may already belong to another member, so drop uncommitted state and do not
    commit. An exception raised by a callback is re-raised by the ``poll`` that ran it, and the
    messages that poll fetched are not returned: treat it as fatal.
    """

    def on_assigned(self, partitions: list[Partition]) -> None:
        """``partitions`` were assigned to this member."""

    def on_revoked(self, partitions: list[Partition]) -> None:
        """``partitions`` are about to be taken away; they can still be committed."""

    def on_lost(self, partitions: list[Partition]) -> None:
        """``partitions`` were lost without a clean hand-over; they cannot be committed."""


class _Role(ABC):
    """What both roles share: a description for ``repr`` (never a password), a lock for the
    client's callback threads, and use as a context manager (``close()`` on leaving)."""

    def __init__(self, description: str) -> None:
        self._description = description
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._description})"

    @abstractmethod
    def close(self) -> None:
        """Release the client's connections and threads."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Source(_Role):
    """Raw messages from Kafka, in a consumer group (:meth:`subscribe`) or on partitions chosen
    by the caller (:meth:`assign`). Not thread-safe: one thread owns a source.

    Nothing is committed automatically: :meth:`commit` is the only way offsets are stored, so
    the caller decides what at-least-once means. A new group starts at the earliest offset.
    Temporary broker trouble never raises from :meth:`poll`: it returns what it has (possibly
    nothing), the client reconnects by itself, and the trouble is counted in
    ``transient_errors`` and described in ``last_error`` until messages flow again.
    """

    client: ClassVar[str]

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self._listener = RebalanceListener()
        self._listener_error: BaseException | None = None
        self.transient_errors = 0
        self.last_error: str | None = None

    @abstractmethod
    def subscribe(self, topics: Sequence[str], listener: RebalanceListener | None = None) -> None:
        """Join the consumer group on ``topics``; ``listener`` hears about partition changes."""

    @abstractmethod
    def assign(self, partitions: Iterable[Partition]) -> None:
        """Read ``partitions`` without joining the group (for tools): each starts at the group's
        committed offset, else the earliest; :meth:`seek` moves it."""

    @abstractmethod
    def poll(self, max_records: int, timeout_s: float) -> list[RawMessage]:
        """Up to ``max_records`` messages, waiting at most ``timeout_s`` when none are ready;
        the messages of one partition come in offset order."""

    @abstractmethod
    def commit(self, offsets: Mapping[Partition, int]) -> None:
        """Store ``offsets`` (next offset to read, per partition) for the group, synchronously.

        Raises :class:`CommitFailedError` when the partitions moved to another member and
        :class:`TransientKafkaError` when the broker cannot be reached (retry later).
        """

    @abstractmethod
    def committed(self, partitions: Iterable[Partition]) -> dict[Partition, int | None]:
        """The group's committed offset of each partition (``None`` where nothing is
        committed)."""

    @abstractmethod
    def seek(self, partition: Partition, offset: int) -> None:
        """Read ``partition`` from ``offset`` on the next poll."""

    @abstractmethod
    def pause(self, partitions: Iterable[Partition]) -> None:
        """Stop fetching ``partitions`` (the group membership stays alive while polling)."""

    @abstractmethod
    def resume(self, partitions: Iterable[Partition]) -> None:
        """Fetch paused ``partitions`` again, from where they stopped."""

    @abstractmethod
    def paused(self) -> set[Partition]:
        """The partitions paused now (a rebalance unpauses)."""

    @abstractmethod
    def assignment(self) -> set[Partition]:
        """The partitions this source reads now."""

    @abstractmethod
    def position(self, partition: Partition) -> int | None:
        """The next offset :meth:`poll` returns for ``partition``; ``None`` before it is known."""

    @abstractmethod
    def highwater(self, partition: Partition) -> int | None:
        """The offset the next message written to ``partition`` will get, as of the last fetch;
        ``None`` before the first fetch."""

    @abstractmethod
    def partitions(self, topic: str) -> list[int]:
        """The partition numbers of ``topic`` (empty when it does not exist)."""

    @abstractmethod
    def reachable(self) -> bool:
        """Whether a broker connection is up now, without waiting (from the client's state)."""

    @abstractmethod
    def close(self, timeout_s: float = 30.0) -> None:
        """Leave the group and release the client, waiting at most about ``timeout_s``."""

    def lag(self) -> dict[Partition, int]:
        """Messages not yet polled, per assigned partition whose position and highwater are
        known: ``highwater - position`` (from the fetch responses, so no extra request)."""
        out = {}
        for partition in self.assignment():
            high, pos = self.highwater(partition), self.position(partition)
            if high is not None and pos is not None:
                out[partition] = max(high - pos, 0)
        return out

    def _transient(self, error: object) -> None:
        """Count and remember a passing error (the client keeps retrying by itself)."""
        self.transient_errors += 1
        self.last_error = str(error)

    def _flowing(self, messages: list[RawMessage]) -> list[RawMessage]:
        """``messages``, after re-raising a listener error; clears ``last_error`` when any came."""
        error, self._listener_error = self._listener_error, None
        if error is not None:
            raise error
        if messages:
            self.last_error = None
        return messages

    def _notify(self, event: str, partitions: Iterable[Partition]) -> None:
        """Run listener callback ``event`` on ``partitions`` (skipped when empty); an exception
        is kept for :meth:`_flowing` to re-raise, so both clients surface it the same way."""
        parts = sorted(partitions)
        if not parts:
            return
        try:
            getattr(self._listener, event)(parts)
        except BaseException as exc:
            with self._lock:
                self._listener_error = self._listener_error or exc

    def _check_seek(self, partition: Partition, offset: int) -> None:
        self._check_offsets({partition: offset})
        if partition not in self.assignment():
            raise KafkaIOError(f"seek {partition} to {offset}: {partition} is not assigned")

    @staticmethod
    def _check_offsets(offsets: Mapping[Partition, int]) -> None:
        for partition, offset in offsets.items():
            if type(offset) is not int or offset < 0:
                raise ValueError(
                    f"offset {offset!r} for {partition}: must be an int >= 0, the next offset "
                    "to read (last processed offset + 1)"
                )


class Sink(_Role):
    """Publishes messages. ``produce`` only queues; :meth:`flush` waits for the broker's
    acknowledgements and raises :class:`DeliveryError` unless every message queued since the
    last successful flush was delivered: commit input offsets only after a flush that did not
    raise. Delivery is at least once: a retried message can arrive twice."""

    client: ClassVar[str]

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self._failed = 0
        self._first_failure = ""

    @abstractmethod
    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        """Queue one message. Raises :class:`TransientKafkaError` when the local queue stays
        full (the broker is unreachable) and :class:`KafkaIOError` when the message can never
        be sent (too large)."""

    @abstractmethod
    def _wait(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for queued messages; the number still not completed."""

    @abstractmethod
    def pending(self) -> int:
        """Messages produced and not yet acknowledged (or failed), without waiting."""

    @abstractmethod
    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued (waiting up to ``timeout_s``), then release the client."""

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait up to ``timeout_s`` until every queued message is acknowledged; raise
        :class:`DeliveryError` if any failed or is still pending: the caller must then not commit
        what they covered. Each failure is reported by one flush only."""
        pending = self._wait(timeout_s)
        with self._lock:
            failed, first = self._failed, self._first_failure
            self._failed, self._first_failure = 0, ""
        if pending or failed:
            parts = [f"{failed} failed (first: {first})"] if failed else []
            parts += [f"{pending} still pending after {timeout_s:g} s"] if pending else []
            raise DeliveryError(pending + failed, "; ".join(parts), pending=pending)

    def _failure(self, error: object) -> None:
        """Record a failed delivery (called from the client's delivery callback)."""
        with self._lock:
            self._failed += 1
            self._first_failure = self._first_failure or str(error)


@dataclass(frozen=True)
class KafkaClient:
    """One Kafka client library behind the roles, the ``CLIENT`` of a module an entry of
    :data:`streammeta.registry.KAFKA_CLIENTS` names: ``source(cfg, secrets)``, ``sink(cfg,
    secrets)`` (``secrets=None``: read them), ``create_topics(conn, names, partitions)`` (returns
    those created) and ``settings``, kafka-python's setting names to the library's own."""

    source: Callable[[KafkaConfig, Mapping[str, str] | None], Source]
    sink: Callable[[KafkaConfig, Mapping[str, str] | None], Sink]
    create_topics: Callable[[Connection, Sequence[str], int], list[str]]
    settings: Callable[[dict[str, object]], dict[str, object]] = dict
