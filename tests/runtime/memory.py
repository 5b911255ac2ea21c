"""In-memory stand-ins for the Kafka source and sink: the run loop's order, offsets, commits
and rebalance callbacks without a broker (the Kafka tests use the real one)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from streammeta.io.base import DeliveryError, RawMessage, RebalanceListener
from streammeta.runtime.checkpoint import Offsets

TopicPartition = tuple[str, int]


@dataclass
class MemorySource:
    """Partitions as lists of values; polls round-robin from the committed (or sought) offset."""

    topic: str
    partitions: list[list[bytes]]
    commits: Offsets = field(default_factory=dict)
    stopped: set[TopicPartition] = field(default_factory=set)  # paused partitions
    polls: int = 0
    closed: bool = False
    up: bool = True  # what ``reachable`` answers
    last_error: str | None = None
    transient_errors: int = 0

    def __post_init__(self) -> None:
        self.position = {(self.topic, p): self.commits.get((self.topic, p), 0)
                         for p in range(len(self.partitions))}  # fmt: skip

    def subscribe(self, topics: Sequence[str], listener: RebalanceListener) -> None:
        self.listener = listener
        listener.on_assigned(sorted(self.position))

    def poll(self, max_records: int, timeout_s: float) -> list[RawMessage]:
        self.polls += 1
        out: list[RawMessage] = []
        for tp, pos in self.position.items():
            if tp in self.stopped:
                continue
            values = self.partitions[tp[1]][pos : pos + max_records - len(out)]
            out += [
                RawMessage(self.topic, tp[1], pos + i, None, v, (), -1)
                for i, v in enumerate(values)
            ]
            self.position[tp] = pos + len(values)
        return out

    def commit(self, offsets: Offsets) -> None:
        self.commits.update(offsets)

    def committed(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]:
        return {tp: self.commits.get(tp) for tp in tps}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.position[tp] = offset

    def pause(self, tps: Iterable[TopicPartition]) -> None:
        self.stopped |= set(tps)

    def resume(self, tps: Iterable[TopicPartition]) -> None:
        self.stopped -= set(tps)

    def paused(self) -> set[TopicPartition]:
        return set(self.stopped)

    def assignment(self) -> set[TopicPartition]:
        return set(self.position)

    def lag(self) -> dict[TopicPartition, int]:
        return {tp: len(self.partitions[tp[1]]) - pos for tp, pos in self.position.items()}

    def highwater(self, tp: TopicPartition) -> int | None:
        return len(self.partitions[tp[1]])

    def reachable(self) -> bool:
        return self.up

    def close(self, timeout_s: float = 10.0) -> None:
        self.closed = True


@dataclass
class MemorySink:
    """Collects produced messages per topic; ``flushed`` counts what a flush made durable."""

    sent: dict[str, list[tuple[bytes, bytes | None, list[tuple[str, bytes]]]]] = field(
        default_factory=dict
    )
    flushed: int = 0
    closed: bool = False
    fail_flushes: int = 0  # the next flushes that report lost deliveries
    waiting: int = 0  # what ``pending`` reports (outputs not yet acknowledged)
    _durable: dict[str, int] = field(default_factory=dict)

    def produce(
        self, topic: str, value: bytes, key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:  # fmt: skip
        self.sent.setdefault(topic, []).append((value, key, list(headers)))

    def pending(self) -> int:
        return self.waiting

    def flush(self, timeout_s: float = 30.0) -> None:
        if self.fail_flushes:
            self.fail_flushes -= 1
            for topic, sent in self.sent.items():  # what was not flushed yet is lost
                del sent[self._durable.get(topic, 0) :]
            raise DeliveryError(1, "planted failure")
        self._durable = {topic: len(sent) for topic, sent in self.sent.items()}
        self.flushed = sum(self._durable.values())

    def close(self, timeout_s: float = 10.0) -> None:
        self.closed = True
