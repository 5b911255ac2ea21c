"""Sharing meta-state between instances, without a broker: snapshots round-trip, malformed ones
are ignored and counted, merging is the task-weighted average, each peer's snapshot counts once,
a new instance starts from the group's state, and a broker away never raises."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import pytest
import torch

from streammeta.io.base import Partition, RawMessage, Source
from streammeta.learn.learner import MetaLearner
from streammeta.learn.model import MLP, FunctionalModel, Regression
from streammeta.runtime.metasync import MetaSync, Snapshot, decode, encode, merge
from streammeta.testing import MemorySink

TOPIC = "meta"


class TopicReader:
    """Reads what a :class:`MemorySink` holds on one topic, from the start, as an assigned
    consumer would (the part of :class:`~streammeta.io.base.Source` that MetaSync uses)."""

    def __init__(self, sink: MemorySink) -> None:
        self.sink, self.at = sink, 0
        self.up = True

    def assign(self, partitions: Iterable[Partition]) -> None:
        """One partition, always read from where it stands: nothing to assign."""

    def partitions(self, topic: str) -> list[int]:
        return [0]

    def highwater(self, partition: Partition) -> int:
        return len(self.sink.sent.get(TOPIC, []))

    def position(self, partition: Partition) -> int:
        return self.at

    def poll(self, max_records: int, timeout_s: float) -> list[RawMessage]:
        if not self.up:
            raise ConnectionError("broker away")
        sent = self.sink.sent.get(TOPIC, [])[self.at : self.at + max_records]
        out = [RawMessage(TOPIC, 0, self.at + i, k, v, (), 0) for i, (v, k, _) in enumerate(sent)]
        self.at += len(out)
        return out

    def close(self, timeout_s: float = 30.0) -> None:
        """Nothing held open."""


def _learner(seed: int) -> MetaLearner:
    return MetaLearner(FunctionalModel(MLP(1, 1, hidden=(8,)), Regression()), seed=seed)


def _sync(learner: MetaLearner, sink: MemorySink, name: str) -> MetaSync:
    reader = cast(Source, TopicReader(sink))
    return MetaSync(learner, reader, sink, topic=TOPIC, instance=name, every_s=10)


def _init(learner: MetaLearner) -> torch.Tensor:
    return torch.cat([v.detach().flatten() for v in learner.meta.init_params().values()])


def test_a_snapshot_round_trips_and_anything_else_decodes_to_none() -> None:
    learner = _learner(0)
    snap = Snapshot("a", 3, 10, 2, 1.5, dict(learner.meta.state_dict()))
    back = decode(encode(snap))
    assert back is not None and (back.instance, back.version, back.tasks, back.recent) == (
        "a", 3, 10, 2,
    )  # fmt: skip
    assert all(torch.equal(back.meta[k], v) for k, v in snap.meta.items())
    for bad in (None, b"", b"{}", encode(snap)[:-10], b"\x80\x02}q\x00."):
        assert decode(bad) is None


def test_merge_weighs_each_instance_by_its_recent_tasks() -> None:
    a, b, c = torch.zeros(3), torch.ones(3), torch.full((3,), 4.0)
    peers = [Snapshot("b", 1, 9, 3, 0.0, {"w": b}), Snapshot("c", 1, 9, 0, 0.0, {"w": c})]
    # weights 6 (mine), 3 and 1 (no recent task still counts once)
    assert merge({"w": a}, 6, peers)["w"].tolist() == pytest.approx([0.7] * 3)


def test_instances_converge_and_a_new_one_starts_from_the_group() -> None:
    sink = MemorySink()
    a, b = _learner(0), _learner(1)
    sync_a, sync_b = _sync(a, sink, "a"), _sync(b, sink, "b")
    before = _init(b).clone()
    sync_a.tick(now=0.0)  # publishes only: nothing from peers yet
    assert sync_a.merges == 0 and sync_a.published == 1
    sync_b.tick(now=0.0)  # merges a's, then publishes the merged state
    assert sync_b.merges == 1 and sync_b.distance > 0
    assert torch.allclose(_init(b), (before + _init(a)) / 2)  # equal weights: no task yet
    assert not sync_b.tick(now=5.0)  # not due
    mine = _init(a).clone()
    sync_a.tick(now=10.0)  # merges b's newest once, and publishes
    assert torch.allclose(_init(a), (mine + _init(b)) / 2)
    gap = (_init(a) - _init(b)).norm()
    assert gap < (mine - _init(b)).norm() / 1.9  # averaging pulls the instances together
    c = _learner(2)
    own = _init(c).clone()
    _sync(c, sink, "c").warm_start(timeout_s=0.0)  # its own, a's and b's newest
    assert torch.allclose(_init(c), (own + _init(a) + _init(b)) / 3, atol=1e-6)
    assert sync_b.status()["meta_peers"] == 1


def test_malformed_and_foreign_messages_are_ignored_and_counted(caplog) -> None:  # type: ignore[no-untyped-def]
    sink = MemorySink()
    a = _learner(0)
    other = MetaLearner(FunctionalModel(MLP(1, 1, hidden=(4,)), Regression()), seed=0)
    sink.produce(TOPIC, b"not a snapshot", b"x")
    sink.produce(TOPIC, encode(Snapshot("y", 1, 1, 1, 0.0, dict(other.meta.state_dict()))), b"y")
    before = _init(a).clone()
    sync = _sync(a, sink, "a")
    sync.tick(now=0.0)
    assert sync.malformed == 2 and sync.merges == 0 and torch.equal(_init(a), before)
    assert "ignored" in caplog.text


def test_a_broker_away_never_raises_and_the_next_tick_tries_again() -> None:
    sink = MemorySink()
    sync = _sync(_learner(0), sink, "a")
    reader = cast(TopicReader, sync.reader)
    reader.up = False
    assert sync.tick(now=0.0)  # ran, failed, logged
    assert sync.failures == 1 and sync.published == 0
    reader.up = True
    sync.tick(now=10.0)
    assert sync.published == 1
