"""One meta-learner for every instance of a consumer group: each instance publishes its
meta-parameters (the initialization and the learned optimizer) to a meta-state topic, keyed by
instance, and merges the others' latest into its own.

A message is a complete, versioned snapshot (:func:`encode`): format, instance, version (its
meta-updates), the tasks it has learned from in all and since its last message, the time, and
the meta-parameters, saved with ``torch.save`` and read back with ``weights_only`` loading. One
that does not decode, or whose parameters do not match this learner's names and shapes, is
ignored with a warning and counted.

Merging (:func:`merge`) is federated averaging (McMahan et al., 2017) of the meta-parameters,
each instance weighted by the tasks it learned from since its previous message (at least one):
an instance that learns more moves the group more, and an idle one barely pulls it back. Each
instance merges its own current state with every peer's latest not merged yet, so a peer's
snapshot counts once. The meta-optimizer's moments stay local.

>>> import torch
>>> mine = {"init.w": torch.zeros(2)}
>>> peer = Snapshot("b", version=3, tasks=10, recent=3, sent=0.0, meta={"init.w": torch.ones(2)})
>>> merge(mine, 1, [peer])["init.w"].tolist()
[0.75, 0.75]
>>> decode(encode(peer)).recent, decode(b"garbage") is None
(3, True)
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from streammeta.io.base import Sink, Source
from streammeta.learn.learner import MetaLearner
from streammeta.runtime.sensor import Sensor

__all__ = ["FORMAT", "MetaSync", "Snapshot", "decode", "encode", "merge"]

log = logging.getLogger(__name__)

#: Format of a meta-state message; a message of another format is ignored.
FORMAT = 1


@dataclass(frozen=True)
class Snapshot:
    """One instance's meta-state as published."""

    instance: str
    version: int  # its meta-updates
    tasks: int  # tasks it learned from, in all
    recent: int  # tasks since its previous message: its weight in a merge
    sent: float  # wall-clock seconds
    meta: dict[str, Tensor]


def encode(s: Snapshot) -> bytes:
    buffer = io.BytesIO()
    torch.save(
        {
            "format": FORMAT, "instance": s.instance, "version": s.version, "tasks": s.tasks,
            "recent": s.recent, "sent": s.sent,
            "meta": {k: v.detach().cpu() for k, v in s.meta.items()},
        },
        buffer,
    )  # fmt: skip
    return buffer.getvalue()


def decode(value: bytes | None) -> Snapshot | None:
    """The snapshot a message holds, or ``None`` for one that is not a complete snapshot of
    this format."""
    try:
        d = torch.load(io.BytesIO(value or b""), weights_only=True)
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            return None
        meta = d["meta"]
        if not isinstance(meta, dict) or not all(isinstance(v, Tensor) for v in meta.values()):
            return None
        return Snapshot(
            str(d["instance"]), int(d["version"]), int(d["tasks"]), int(d["recent"]),
            float(d["sent"]), dict(meta),
        )  # fmt: skip
    except Exception:  # anything a malformed message can raise; it is counted and ignored
        return None


def merge(mine: Mapping[str, Tensor], recent: int, peers: Sequence[Snapshot]) -> dict[str, Tensor]:
    """The average of ``mine`` and the ``peers``' meta-parameters, each weighted by its recent
    tasks (at least 1)."""
    weights = [max(recent, 1), *(max(p.recent, 1) for p in peers)]
    total = float(sum(weights))
    out = {}
    for name, value in mine.items():
        parts = [value.detach(), *(p.meta[name].to(value.device) for p in peers)]
        out[name] = (
            torch.stack(parts)
            .mul(
                torch.tensor(weights, dtype=value.dtype, device=value.device)
                .div(total)
                .view(-1, *[1] * value.dim())
            )
            .sum(0)
        )
    return out


class MetaSync:
    """Publishes this instance's meta-state to ``topic`` every ``every_s`` seconds and merges
    the peers' newest (read by ``reader``, a source assigned to every partition of the topic,
    outside the consumer group)."""

    def __init__(
        self,
        learner: MetaLearner,
        reader: Source,
        sink: Sink,
        *,
        topic: str,
        instance: str,
        every_s: float = 30.0,
        merge_budget_s: float = 1.0,
        sensor: Sensor | None = None,
    ) -> None:
        self.learner, self.reader, self.sink = learner, reader, sink
        self.topic, self.instance, self.every_s = topic, instance, every_s
        self.merge_budget_s = merge_budget_s
        self.peers: dict[str, Snapshot] = {}  # each peer's newest, merged or not
        self._fresh: set[str] = set()  # peers whose newest is not merged yet
        self.sensor = sensor or Sensor()
        self.merges = self.malformed = self.published = self.failures = 0
        self.distance = 0.0  # between the local and the merged initialization, last merge
        self._tasks_sent = 0
        self._due = 0.0
        self._assigned: set[int] = set()

    # -- reading ---------------------------------------------------------------------------

    def _assign(self) -> None:
        numbers = set(self.reader.partitions(self.topic))
        if numbers - self._assigned:
            self._assigned |= numbers
            self.reader.assign([(self.topic, p) for p in sorted(self._assigned)])

    def read(self, timeout_s: float = 0.0) -> int:
        """Take in the peers' messages that arrived; returns how many. With ``timeout_s``
        (warm start), read on until the end of every partition of the topic, or the time is
        up (a first poll may come back empty while the client finds its offsets)."""
        self._assign()
        got = 0
        deadline = time.monotonic() + timeout_s
        while True:
            messages = self.reader.poll(500, 0.0 if not timeout_s else 0.2)
            for m in messages:
                self._take(m.key, m.value)
            got += len(messages)
            done = not timeout_s or self._at_end()
            if (not messages and done) or time.monotonic() >= deadline:
                return got

    def _at_end(self) -> bool:
        """Every partition of the topic read up to its high watermark (as far as known)."""
        for p in self._assigned:
            high, at = self.reader.highwater((self.topic, p)), self.reader.position((self.topic, p))
            if high is None or at is None or at < high:
                return False
        return True

    def _take(self, key: bytes | None, value: bytes | None) -> None:
        snap = decode(value)
        if snap is None or not self._fits(snap):
            self.malformed += 1
            log.warning(
                "meta-state message from %r ignored: not a complete snapshot of this learner",
                (key or b"?").decode(errors="replace"),
            )
            return
        if snap.instance == self.instance:
            return
        old = self.peers.get(snap.instance)
        if old is None or (snap.version, snap.sent) >= (old.version, old.sent):
            self.peers[snap.instance] = snap
            self._fresh.add(snap.instance)

    def _fits(self, snap: Snapshot) -> bool:
        mine = self.learner.meta.state_dict()
        return set(snap.meta) == set(mine) and all(
            snap.meta[k].shape == v.shape and snap.meta[k].is_floating_point()
            for k, v in mine.items()
        )

    # -- merging and publishing --------------------------------------------------------------

    def warm_start(self, timeout_s: float = 10.0) -> None:
        """Read the topic as it stands and start from the group's merged state."""
        self.read(timeout_s)
        if self._fresh:
            self._merge()
            log.info("warm start from the group's meta-state: %d peer(s)", len(self.peers))

    def tick(self, now: float | None = None) -> bool:
        """Every ``every_s`` seconds: read, merge what is new, publish; returns whether it ran.
        Never raises: a broker away or anything else is logged, and the next tick tries again."""
        now = time.monotonic() if now is None else now
        if now < self._due:
            return False
        self._due = now + self.every_s
        start = time.monotonic()
        try:
            self.read()
            if self._fresh:
                self._merge()
            self.publish()
        except Exception as exc:  # sharing is best effort: the service goes on alone
            self.failures += 1
            log.warning("meta-state sync failed (%s: %s); retrying in %g s", type(exc).__name__,
                        exc, self.every_s)  # fmt: skip
        self.sensor.on_meta_sync(self.status())
        spent = time.monotonic() - start
        if spent > self.merge_budget_s:
            log.warning("meta-state sync took %.2f s (budget %.2f s)", spent, self.merge_budget_s)
        return True

    def _tasks(self) -> int:
        return int(self.learner.trainer.buffer.tasks_closed)

    def _merge(self) -> None:
        learner = self.learner
        mine = {k: v.detach().clone() for k, v in learner.meta.state_dict().items()}
        peers = [self.peers[i] for i in sorted(self._fresh)]
        merged = merge(mine, self._tasks() - self._tasks_sent, peers)
        learner.adopt_meta(merged)
        init = [k for k in mine if k.startswith("init.")]
        self.distance = float(
            sum((merged[k] - mine[k]).pow(2).sum() for k in init) ** 0.5 if init else 0.0
        )
        self._fresh.clear()
        self.merges += 1

    def publish(self) -> None:
        tasks = self._tasks()
        snap = Snapshot(
            self.instance, self.learner.model_version, tasks, tasks - self._tasks_sent,
            time.time(), dict(self.learner.meta.state_dict()),
        )  # fmt: skip
        self.sink.produce(self.topic, encode(snap), self.instance.encode())
        self._tasks_sent = tasks
        self.published += 1

    def status(self) -> dict[str, float]:
        newest = max((p.sent for p in self.peers.values()), default=float("nan"))
        return {
            "meta_merges": float(self.merges),
            "meta_peers": float(len(self.peers)),
            "meta_peer_age_seconds": time.time() - newest,
            "meta_malformed": float(self.malformed),
            "meta_published": float(self.published),
            "meta_failures": float(self.failures),
            "meta_distance": self.distance,
        }

    def close(self) -> None:
        self.reader.close()
