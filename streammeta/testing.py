"""In-memory stand-ins for Kafka, to test a pipeline or the whole service without a broker.

:class:`MemorySource` serves partitions held as lists of message values, with Kafka's offsets,
commits, pauses and rebalance callback; a :data:`MemorySource.CRASH` marker among the values kills
the consumer there (the poll that reaches it raises :class:`Crash`, once), and subscribing again
after the source was closed starts over from the committed offsets, as a restarted process would.
:class:`MemorySink` keeps what was produced per topic and can fail flushes on purpose. Both
subclass the roles of :mod:`streammeta.io.base`, so the run loop cannot tell them from Kafka.

A service killed after 150 of 300 records, then restarted: it resumes from its last checkpoint
(128 records), answers the 22 records since once more and learns each record exactly once.

>>> import json, math, random, tempfile
>>> from streammeta.config import load_config
>>> from streammeta.io import Decoder
>>> from streammeta.runtime.checkpoint import CheckpointStore
>>> from streammeta.runtime.pipeline import Pipeline
>>> from streammeta.runtime.service import Service
>>> rng = random.Random(0)
>>> values = [
...     json.dumps({"x": [x], "y": math.sin(x)}).encode()
...     for x in (rng.uniform(-5, 5) for _ in range(300))
... ]
>>> source = MemorySource("in", [values[:150] + [MemorySource.CRASH] + values[150:]])
>>> sink, checkpoints = MemorySink(), tempfile.mkdtemp()
>>> small = {"learner.hidden": [8], "learner.bank_size": 1, "learner.baseline": "none"}
>>> def service():
...     return Service(
...         Pipeline.from_config(load_config(env={}, overrides=small)),
...         source,
...         sink,
...         Decoder(n_features=1),
...         CheckpointStore(checkpoints),
...         input_topic="in",
...         output_topic="out",
...         dlq_topic="dlq",
...         poll_max_records=64,
...         checkpoint_records=100,
...     )
>>> try:
...     service().run(idle_exit=0.01)
... except Crash as crash:
...     print(crash)
in[0] offset 150: crashed
>>> source.commits
{('in', 0): 128}
>>> restarted = service()
>>> stats = restarted.run(idle_exit=0.01)
>>> stats.records, restarted.pipeline.records, source.commits
(172, 300, {('in', 0): 300})
>>> len(sink.sent["out"])  # 300 answers, and the 22 after the checkpoint a second time
322
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar

from streammeta.io.base import Partition, RawMessage, RebalanceListener, Sink, Source

__all__ = ["Crash", "MemorySink", "MemorySource"]

#: A produced message: ``(value, key, headers)``.
Sent = tuple[bytes, bytes | None, list[tuple[str, bytes]]]


class Crash(BaseException):
    """A planted crash: the process is killed here. A ``BaseException``, like the signal it
    stands for, so that no handler of errors in the code under test catches it."""


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"MemorySource.{self.name}"


class MemorySource(Source):
    """``partitions[p]`` holds partition ``p`` of ``topic``, message values in offset order;
    :data:`CRASH` markers among them take no offset. Polls read the partitions in turn from
    their positions, which start at ``commits`` (else 0). ``polls`` counts the polls, ``up`` is
    what :meth:`reachable` answers, ``commits`` holds what was committed."""

    #: Put among the values of a partition: the poll that reaches it raises :class:`Crash`
    #: (after returning what lies before it); once fired, reading goes on past it.
    CRASH: ClassVar[object] = _Marker("CRASH")
    client = "memory"

    def __init__(
        self,
        topic: str,
        partitions: Sequence[Sequence[bytes | object]],
        *,
        commits: Mapping[Partition, int] | None = None,
    ) -> None:
        super().__init__(f"topic={topic!r}, {len(partitions)} partition(s)")
        self.topic = topic
        self.commits: dict[Partition, int] = dict(commits or {})
        self.polls = 0
        self.up = True
        self.closed = False
        self._values: list[list[bytes]] = []
        self._crashes: list[set[int]] = []  # offsets a crash comes before, per partition
        for values in partitions:
            kept: list[bytes] = []
            crashes: set[int] = set()
            for v in values:
                if v is self.CRASH:
                    crashes.add(len(kept))
                elif isinstance(v, bytes):
                    kept.append(v)
                else:
                    raise TypeError(f"{v!r} in partition {len(self._values)}: need bytes or CRASH")
            self._values.append(kept)
            self._crashes.append(crashes)
        self._position: dict[Partition, int] = {}
        self._stopped: set[Partition] = set()
        self._start(self._all())

    def _all(self) -> list[Partition]:
        return [(self.topic, p) for p in range(len(self._values))]

    def _start(self, partitions: Iterable[Partition]) -> None:
        """Read ``partitions`` from their committed offsets, as a new consumer does."""
        self.closed = False
        self._stopped.clear()
        self._position = {tp: self.commits.get(tp, 0) for tp in partitions}

    def subscribe(self, topics: Sequence[str], listener: RebalanceListener | None = None) -> None:
        """Take every partition of the topic (after a :meth:`close`: from the committed
        offsets, a restart) and tell ``listener`` at once."""
        self._listener = listener or RebalanceListener()
        if self.closed or self.topic not in topics:
            self._start(self._all() if self.topic in topics else [])
        self._listener.on_assigned(sorted(self._position))

    def assign(self, partitions: Iterable[Partition]) -> None:
        self._start(tp for tp in partitions if tp in self._all())

    def poll(self, max_records: int, timeout_s: float) -> list[RawMessage]:
        self.polls += 1
        out: list[RawMessage] = []
        for (topic, p), pos in self._position.items():
            if (topic, p) in self._stopped:
                continue
            if pos in self._crashes[p]:
                self._crashes[p].discard(pos)
                raise Crash(f"{topic}[{p}] offset {pos}: crashed")
            end = min([pos + max_records - len(out), *(c for c in self._crashes[p] if c > pos)])
            values = self._values[p][pos:end]
            out += [RawMessage(topic, p, pos + i, None, v, (), -1) for i, v in enumerate(values)]
            self._position[topic, p] = pos + len(values)
        return out

    def commit(self, offsets: Mapping[Partition, int]) -> None:
        self._check_offsets(offsets)
        self.commits.update(offsets)

    def committed(self, partitions: Iterable[Partition]) -> dict[Partition, int | None]:
        return {tp: self.commits.get(tp) for tp in partitions}

    def seek(self, partition: Partition, offset: int) -> None:
        self._check_seek(partition, offset)
        self._position[partition] = offset

    def pause(self, partitions: Iterable[Partition]) -> None:
        self._stopped |= set(partitions)

    def resume(self, partitions: Iterable[Partition]) -> None:
        self._stopped -= set(partitions)

    def paused(self) -> set[Partition]:
        return self._stopped & self.assignment()

    def assignment(self) -> set[Partition]:
        return set(self._position)

    def position(self, partition: Partition) -> int | None:
        return self._position.get(partition)

    def highwater(self, partition: Partition) -> int | None:
        return len(self._values[partition[1]]) if partition in self._position else None

    def partitions(self, topic: str) -> list[int]:
        return list(range(len(self._values))) if topic == self.topic else []

    def reachable(self) -> bool:
        return self.up

    def close(self, timeout_s: float = 30.0) -> None:
        self.closed = True


class MemorySink(Sink):
    """Keeps what is produced, per topic, in :attr:`sent`; a flush makes it durable
    (``flushed`` counts that). The next ``fail_flushes`` flushes fail: what they cover is lost,
    as when the broker gave up on it. ``waiting`` is what :meth:`pending` answers."""

    client = "memory"

    def __init__(self, *, fail_flushes: int = 0) -> None:
        super().__init__("in memory")
        self.sent: dict[str, list[Sent]] = {}
        self.flushed = 0
        self.closed = False
        self.fail_flushes = fail_flushes
        self.waiting = 0
        self._durable: dict[str, int] = {}

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        self.sent.setdefault(topic, []).append((value, key, list(headers)))

    def pending(self) -> int:
        return self.waiting

    def _wait(self, timeout_s: float) -> int:
        if self.fail_flushes:
            self.fail_flushes -= 1
            for topic, sent in self.sent.items():  # what was not flushed yet is lost
                del sent[self._durable.get(topic, 0) :]
            self._failure("planted failure")
            return 0
        self._durable = {topic: len(sent) for topic, sent in self.sent.items()}
        self.flushed = sum(self._durable.values())
        return 0

    def close(self, timeout_s: float = 10.0) -> None:
        self.closed = True
