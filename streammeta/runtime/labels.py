"""Labels that arrive after their records: a record without ``y`` is predicted and published at
once and its features wait in a bounded store, by ``id``; a later label record
``{"id": ..., "y": ...}`` (no ``x``) joins it, and the pair is learned from then.

The store holds at most ``window`` records for at most ``window_seconds`` each (the oldest
expire first, counted); a label whose id is unknown or expired is ``unmatched_label``, a second
label for an id already joined ``duplicate_label`` (ids joined or expired are remembered for
``REMEMBER`` windows). A label on a topic of its own (``early_topics``) may come before its
record (Kafka orders one partition, not two topics): it waits in the same window for its record,
and is ``unmatched_label`` if it expires (its dead letter goes out at the next poll that brings
records). The published prediction of a
joined record is scored against its label then (``hits``, ``loss_sum``: what the users saw,
not what the learner predicts now). Everything here is in the checkpoint: a kill between a
prediction and its label loses neither.

The learner learns a joined record when its label comes, with the weights of then: the
segmenter and the adaptation tracker read that step's loss, in the order labels arrive.

>>> import numpy as np
>>> from streammeta.io.decode import Decoder
>>> from streammeta.io.base import RawMessage
>>> dec = Decoder(n_features=1, n_classes=2)
>>> msgs = [b'{"x": [3], "id": "a"}', b'{"id": "a", "y": 1}', b'{"id": "a", "y": 0}',
...         b'{"id": "b", "y": 1}', b'{"x": [4], "id": "b"}']
>>> recs = dec.decode([RawMessage("in", 0, i, None, v, (), 0) for i, v in enumerate(msgs)]).records
>>> join = LabelJoin(window=10, early_topics=["in"])  # labels on "in" may precede records
>>> join.hold(recs.select(np.array([0])), y_hat=np.array([1]), proba=np.array([[0.2, 0.8]]))
>>> joined, dead = join.join(recs.select(np.array([1, 2])))
>>> joined.x.tolist(), joined.y.tolist(), [(d.offset, d.reason) for d in dead], join.hits
([[3.0]], [1], [(2, 'duplicate_label')], 1)
>>> _ = join.join(recs.select(np.array([3])))  # before its record: it waits
>>> join.hold(recs.select(np.array([4])), np.array([0]), np.array([[0.9, 0.1]]))
>>> joined, _ = join.join(recs.select(np.array([], dtype=int)))  # now its record came
>>> joined.id.tolist(), join.joined, join.hits
(['b'], 2, 1)
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streammeta.io.base import RawMessage
from streammeta.io.records import DeadLetter, Records
from streammeta.runtime.label_rows import (
    as_records,
    as_row,
    completed,
    dtypes_of,
    given_ids,
    letter,
)

__all__ = ["LabelJoin"]

log = logging.getLogger(__name__)

#: ids of records joined or expired are remembered this many windows (to tell a duplicate or a
#: late label from one that came before its record)
REMEMBER = 4


@dataclass(frozen=True, slots=True)
class _Held:
    """A record waiting for its label: its columns (one row each) and its published
    prediction."""

    row: dict[str, Any]  # plain Python values: a checkpoint loads them without pickle
    y_hat: float
    proba: list[float] | None
    since: float  # wall-clock seconds when it was held


class LabelJoin:
    """Records waiting for their labels, by id (see the module docstring)."""

    def __init__(
        self,
        window: int = 100_000,
        window_seconds: float = 86_400.0,
        *,
        early_topics: Sequence[str] = (),
    ) -> None:
        """``early_topics``: topics whose labels may come before their records (a label topic
        of its own: Kafka orders one partition, not two topics); a label with an unknown id
        from any other topic (the records' own partition, where its record came first) is
        unmatched at once."""
        if window < 0 or window_seconds <= 0:
            raise ValueError(
                f"window={window!r}, window_seconds={window_seconds!r}: need window >= 0 and "
                "window_seconds > 0"
            )
        self.window, self.window_seconds = window, window_seconds
        self.early_topics = frozenset(early_topics)
        self._held: OrderedDict[str, _Held] = OrderedDict()  # oldest first
        self._joined: OrderedDict[str, None] = OrderedDict()  # ids joined, for duplicates
        self._gone: OrderedDict[str, None] = OrderedDict()  # ids of records expired
        self._early: OrderedDict[str, dict[str, Any]] = OrderedDict()  # labels before records
        self._ready: list[str] = []  # early labels whose records came
        self._letters: list[DeadLetter] = []  # early labels expired, for the next join
        self._dtypes: dict[str, str] = {}  # of the early labels' columns
        self.joined = self.expired = self.hits = self.scored = self.elsewhere = 0
        self.failures = 0  # holds and joins that raised (bugs), logged
        self.loss_sum = 0.0

    @property
    def held(self) -> int:
        return len(self._held)

    @property
    def waiting(self) -> bool:
        """Labels that came before their records and can be joined now, or expired."""
        return bool(self._ready or self._letters)

    def hold(self, r: Records, y_hat: np.ndarray, proba: np.ndarray | None) -> None:
        """Keep the unlabelled records of ``r`` that carry an ``id`` of their own (a label can
        name no other; not labels themselves) with their published predictions: a topic of
        predictions only, without ids, fills no store and no checkpoint."""
        if not self.window:
            return
        now = time.time()
        unlabelled = np.flatnonzero(~r.labelled & ~r.label_only)
        try:
            self._hold(r, unlabelled[given_ids(r.select(unlabelled))], y_hat, proba, now)
        except Exception:  # a bug must not stop the service: those records are not held
            self.failures += 1
            log.warning("records not held for their labels (%d so far)", self.failures,
                        exc_info=True)  # fmt: skip
        self.expire(now)

    def _hold(
        self, r: Records, wait: np.ndarray, y_hat: np.ndarray, proba: np.ndarray | None, now: float
    ) -> None:
        for i in wait.tolist():
            row = {name: getattr(r, name)[i] for name in ("key", "task", "concept")}
            row |= {"x": r.x[i].tolist(), "ts": float(r.ts[i]), "partition": int(r.partition[i])}
            ident = str(r.id[i])
            self._held.pop(ident, None)  # a repeated id: the newer record is the one waited for
            self._held[ident] = _Held(
                row, float(y_hat[i]), None if proba is None else proba[i].tolist(), now
            )
            self._joined.pop(ident, None)
            if ident in self._early:
                self._ready.append(ident)

    def expire(self, now: float | None = None) -> None:
        """Drop what waited too long or does not fit in the window (counted as expired)."""
        now = time.time() if now is None else now
        while self._held and (
            len(self._held) > self.window
            or now - next(iter(self._held.values())).since > self.window_seconds
        ):
            ident, _ = self._held.popitem(last=False)
            self._gone[ident] = None
            self.expired += 1
        for ids in (self._joined, self._gone):
            while len(ids) > max(REMEMBER * self.window, 1000):
                ids.popitem(last=False)
        while self._early and (
            len(self._early) > self.window
            or now - next(iter(self._early.values()))["since"] > self.window_seconds
        ):
            _, row = self._early.popitem(last=False)
            self._letters.append(letter(row, "unmatched_label"))

    def join(
        self, labels: Records, messages: Sequence[RawMessage] = ()
    ) -> tuple[Records, list[DeadLetter]]:
        """The records ``labels`` complete (labelled, at the labels' positions), with those
        completed by earlier labels whose records came since; dead letters (with their message
        from ``messages``, the poll) for the labels that complete none and cannot wait, and for
        early labels whose wait expired. Never raises: should joining fail (a bug), the labels
        are dead letters (``processing_error``) with the error."""
        try:
            return self._join(labels, messages)
        except Exception as exc:  # one bad label must not stop the service
            self.failures += 1
            log.warning("joining %d labels failed", len(labels), exc_info=True)
            letters = [letter(as_row(labels, i, messages), "processing_error", exc)
                       for i in range(len(labels))]  # fmt: skip
            return labels.select(np.zeros(0, dtype=np.int64)), letters

    def _join(
        self, labels: Records, messages: Sequence[RawMessage]
    ) -> tuple[Records, list[DeadLetter]]:
        self.expire()
        ready = [self._early.pop(ident) for ident in self._ready if ident in self._early]
        self._ready = []
        if ready:
            labels = Records.concat([as_records(ready, self._dtypes, labels), labels])
        rows, keep, letters = [], [], []
        for i, ident in enumerate(str(v) for v in labels.id.tolist()):
            held = self._held.pop(ident, None)
            if held is not None:
                self._check_partition(held, int(labels.partition[i]), ident)
                self._joined[ident] = None
                self._score(held, labels.y[i])
                rows.append(held.row)
                keep.append(i)
            elif ident in self._joined or ident in self._early:
                letters.append(letter(as_row(labels, i, messages), "duplicate_label"))
            elif (
                ident in self._gone
                or not self.window
                or str(labels.topic[i]) not in self.early_topics
            ):
                letters.append(letter(as_row(labels, i, messages), "unmatched_label"))
            else:  # its record may come later (another partition or topic)
                self._early[ident] = as_row(labels, i, messages) | {"since": time.time()}
                self._dtypes = dtypes_of(labels)
        self.joined += len(keep)
        self.expire()
        letters += self._letters
        self._letters = []
        return completed(labels.select(np.array(keep, dtype=np.int64)), rows), letters

    def _check_partition(self, held: _Held, partition: int, ident: str) -> None:
        """A label from another partition number than its record's was produced with another
        message key: with more than one instance it may reach an instance that never saw the
        record. Counted, and logged (the first, then every 1,000th)."""
        if held.row.get("partition", partition) == partition:
            return
        self.elsewhere += 1
        if self.elsewhere == 1 or self.elsewhere % 1000 == 0:
            log.warning(
                "the label of id %r came on partition %d, its record on %d (%d so far): produce "
                "each label with its record's message key, so that both land on the same "
                "partition number and reach the same instance",
                ident, partition, held.row["partition"], self.elsewhere,
            )  # fmt: skip

    def _score(self, held: _Held, y: Any) -> None:
        """The published prediction against its label: a hit (classes) and the loss."""
        self.scored += 1
        if held.proba is None:
            self.loss_sum += (held.y_hat - float(y)) ** 2
            return
        self.hits += int(held.y_hat == int(y))
        self.loss_sum -= math.log(max(float(held.proba[int(y)]), 1e-12))

    def status(self) -> dict[str, float]:
        """Counts, and the published predictions' accuracy and mean loss over the labels
        joined (NaN before one)."""
        scored = self.scored or math.nan
        return {
            "labels_held": float(self.held),
            "labels_joined": float(self.joined),
            "labels_expired": float(self.expired),
            "labels_other_partition": float(self.elsewhere),
            "label_failures": float(self.failures),
            "delayed_accuracy": self.hits / scored,
            "delayed_loss": self.loss_sum / scored,
        }

    def snapshot(self) -> dict[str, Any]:
        counts = (self.joined, self.expired, self.hits, self.scored, self.loss_sum, self.elsewhere)
        return {
            "held": [(k, h.row, h.y_hat, h.proba, h.since) for k, h in self._held.items()],
            "joined": list(self._joined),
            "gone": list(self._gone),
            "early": list(self._early.items()),
            "ready": list(self._ready),
            "dtypes": dict(self._dtypes),
            "counts": counts,
        }

    def restore(self, state: dict[str, Any] | None) -> None:
        self._held.clear()
        self._joined.clear()
        self._gone.clear()
        self._early.clear()
        self._ready, self._letters = [], []
        if not state:  # a checkpoint from before labels could wait
            return
        for ident, row, y_hat, proba, since in state["held"]:
            self._held[ident] = _Held(row, y_hat, proba, since)
        self._joined.update(dict.fromkeys(state["joined"]))
        self._gone.update(dict.fromkeys(state.get("gone", [])))
        self._early.update(state.get("early", []))
        self._ready, self._dtypes = list(state.get("ready", [])), dict(state.get("dtypes", {}))
        counts = (*state["counts"], 0)[:6]  # older checkpoints counted five
        self.joined, self.expired, self.hits, self.scored, self.loss_sum, self.elsewhere = counts
