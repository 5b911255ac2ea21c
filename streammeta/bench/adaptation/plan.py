"""What an adaptation run does (:class:`AdaptationPlan`), and each stream's records prepared for
it (:class:`PreparedStream`): the budget, the warm-up and the variants that mean something on the
stream.

>>> plan = AdaptationPlan(streams=("sinusoid",), quick=True)
>>> plan.budget("sinusoid", 100)
(120, 40)
>>> stream = prepare("sinusoid", AdaptationPlan(quick=True, records=600))
>>> len(stream.chunk), stream.warm, stream.switches[:2].tolist()
(600, 200, [100, 200])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streammeta.bench.adaptation.variants import (
    DEFAULT_LEARNERS,
    NO_SWITCH,
    ORACLE,
    VARIANTS,
)
from streammeta.registry import PEERS, STREAMS
from streammeta.streams import StreamChunk, make_stream

__all__ = ["AdaptationPlan", "PreparedStream", "learners_for", "prepare"]

#: records per stream in a full run and a quick one
_RECORDS = {"full": 60_000, "quick": 12_000}


@dataclass(frozen=True)
class AdaptationPlan:
    """What one benchmark run does. ``tasks``, ``min_task`` and ``task_length`` left ``None``
    take each stream's own budget: ``records`` records (default 60,000; 12,000 with ``quick``)
    in tasks of the stream's default length, the first sixth (a third when quick) as warm-up."""

    streams: tuple[str, ...] = STREAMS.names
    quick: bool = False
    tasks: int | None = None
    min_task: int | None = None
    task_length: int | None = None
    batch_size: int = 10
    seed: int = 0
    workers: int = 2
    learners: tuple[str, ...] = DEFAULT_LEARNERS
    records: int | None = None  # records a stream, instead of the full or quick run's

    def __post_init__(self) -> None:
        problems = [
            f"stream {name!r}: must be one of {', '.join(map(repr, STREAMS.names))}"
            for name in self.streams
            if name not in STREAMS
        ] + [
            f"learner {name!r}: must be one of {', '.join(map(repr, VARIANTS))}"
            for name in self.learners
            if name not in VARIANTS
        ]
        if self.workers < 1:
            problems.append(f"workers={self.workers!r}: must be at least 1")
        if self.records is not None and self.records < 1:
            problems.append(f"records={self.records!r}: must be at least 1")
        if self.tasks is not None and not 0 <= (self.min_task or 0) < self.tasks:
            problems.append(
                f"min_task={self.min_task!r}: must lie in 0..tasks-1 ({self.tasks - 1})"
            )
        if self.task_length is not None and self.task_length < 6 * self.batch_size:
            problems.append(
                f"task_length={self.task_length!r}: must be at least 6 x batch_size "
                f"({6 * self.batch_size}) to measure the loss after 5 steps"
            )
        if problems:
            raise ValueError("; ".join(problems))

    def budget(self, stream: str, task_length: int) -> tuple[int, int]:
        """``(tasks, min_task)`` for ``stream`` with tasks of ``task_length`` records."""
        run = "quick" if self.quick else "full"
        tasks = max((self.records or _RECORDS[run]) // task_length, 6)
        warm = tasks // (3 if self.quick else 6)
        return self.tasks or tasks, self.min_task if self.min_task is not None else warm


@dataclass(frozen=True)
class PreparedStream:
    """One stream's records and what the workers need to know about them."""

    name: str
    chunk: StreamChunk
    kind: str  # "regression" | "classification"
    n_features: int
    n_classes: int
    known_switches: bool
    task_length: int
    min_task: int
    batch_size: int  # records per micro-batch and per inner step
    concept: np.ndarray | None  # each record's concept, where concepts recur

    @property
    def warm(self) -> int:
        """First record that counts."""
        return self.min_task * self.task_length

    @property
    def switches(self) -> np.ndarray:
        """Records that open a new task (known switch points only; the first record is not)."""
        return self.chunk.switches[1:] if self.known_switches else np.zeros(0, dtype=np.int64)


def prepare(name: str, plan: AdaptationPlan) -> PreparedStream:
    """Stream ``name``'s records for ``plan`` (its budget), and each record's concept where
    concepts come back."""
    stream = make_stream(name, task_length=plan.task_length, seed=plan.seed)
    tasks, min_task = plan.budget(name, stream.task_length)
    chunk = stream.take(tasks * stream.task_length)
    concept = None
    concept_of = getattr(stream, "concept_of", None)
    if concept_of is not None:
        per_task = np.array([concept_of(t) for t in range(int(chunk.task.max()) + 1)])
        if len(np.unique(per_task)) < len(per_task):  # some concept comes back
            concept = per_task[chunk.task]
    return PreparedStream(
        name=name,
        chunk=chunk,
        kind=stream.task,
        n_features=stream.n_features,
        n_classes=stream.n_classes,
        known_switches=stream.known_switches,
        task_length=stream.task_length,
        min_task=min_task,
        batch_size=getattr(stream, "records_per_step", None) or plan.batch_size,
        concept=concept,
    )


def learners_for(stream: PreparedStream, plan: AdaptationPlan) -> list[str]:
    """The plan's learners that mean something on ``stream``: told switches where they are
    known and exist, the no-switch variant where there are none."""
    switches = stream.known_switches and len(stream.switches) > 0
    return [
        name
        for name in plan.learners
        if not (name in PEERS.tagged("classification") and stream.kind == "regression")
        and not (name.endswith(ORACLE) and not switches)
        and not (NO_SWITCH in name and (switches or not stream.known_switches))
    ]
