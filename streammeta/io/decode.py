r"""Raw Kafka messages -> validated records in columns, plus dead letters for what is bad.

The steps, one module each: :mod:`~streammeta.io.messages` parses and splits the messages,
:mod:`~streammeta.io.features` reads ``x``, :mod:`~streammeta.io.targets` reads ``y`` and the
labelled mask (class names through :class:`~streammeta.io.labels.Labels`),
:mod:`~streammeta.io.columns` the other fields, :mod:`~streammeta.io.problems` reports what is
wrong; the :class:`Decoder` here runs them over a poll and assembles :class:`Records`.

A message value is one JSON object or a JSON array of objects (a batch message); see "Records" in
the design. Each record is checked on its own: in a batch message the good records go on and
each bad one becomes a :class:`DeadLetter` that carries the whole original message (bytes
unchanged) and the record's index within it. A message that cannot be read at all (too large,
not JSON, neither object nor array) is one dead letter without an index.

Rules: ``x`` is a list of ``n_features`` numbers, or an object name -> number whose names are
the configured ``feature_names`` or else the names of the first such record seen (in its order);
JSON ``true``/``false`` count as 1/0 as everywhere in Python. A record with ``id`` and ``y``
but no ``x`` is a label for an earlier record with that ``id`` (``label_only``). ``y`` absent or
null means unlabelled; otherwise a finite number for regression, and for classification a class
index ``0..n_classes-1`` or, when ``labels`` are configured, one of those strings (its position is
the index); an unlabelled record's ``y`` holds 0 and ``labelled`` says which are. ``key`` and
``id`` are strings, ``task`` and ``concept`` (the true concept, for evaluation only) a string or
integer, ``ts`` a finite number; other fields are ignored. The checks run on whole columns
(numpy), not record by record, except where a column already failed as a whole.

Robust by construction: no message stops the others of its poll. A message nested too deeply
for the parser is ``malformed_json``; ``[]`` is one dead letter (``empty``); a string field
(``key``, ``id``, ``task``, ``concept``, a string ``y``) that cannot be encoded as UTF-8 (a lone
surrogate such as ``"\ud800"``) is ``bad_string``; ``x`` and a regression ``y`` must be finite
*after* the cast to the learner's float32 (``1e300`` is ``non_finite``), ``ts`` as a float64. If
the columnar checks raise anything unexpected, the batch is decoded again record by record, and a
record whose own decoding raises becomes a ``decode_error`` dead letter (a bug to report).

>>> from streammeta.io.base import RawMessage
>>> msg = RawMessage("in", 0, 7, None, b'[{"x": [1, 2], "y": 0.5}, {"x": [1]}]', (), 1000)
>>> out = Decoder(n_features=2).decode([msg])
>>> out.records.x.tolist(), out.records.id.tolist()
([[1.0, 2.0]], ['in:0:7:0'])
>>> [(d.reason, d.index, d.message) for d in out.dead]
[('feature_count', 1, 'x has 1 features; expected 2')]
>>> deep, surrogate = b"[" * 5000 + b"]" * 5000, b'{"x": [1, 2], "key": "\\ud800"}'
>>> odd = [deep, b"[]", b'{"x": [1e300, 2]}', surrogate]
>>> out = Decoder(n_features=2).decode(
...     [RawMessage("in", 0, i, None, v, (), 0) for i, v in enumerate(odd)]
... )
>>> [(d.offset, d.reason) for d in out.dead], len(out.records)
([(0, 'malformed_json'), (1, 'empty'), (2, 'non_finite'), (3, 'bad_string')], 0)
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from streammeta.io.base import RawMessage
from streammeta.io.columns import FIELDS, meta, objects, strings
from streammeta.io.features import Features
from streammeta.io.labels import Labels
from streammeta.io.messages import Split, split_messages
from streammeta.io.problems import Dead, Problem, dead_letter, failure
from streammeta.io.records import Decoded, Records, default_ids
from streammeta.io.targets import targets

__all__ = ["Decoder"]

log = logging.getLogger(__name__)


class Decoder:
    """Decodes and validates raw message values; see the module docstring for the rules.

    ``feature_names`` fixes the order of named features; when empty, the names of the first
    record whose ``x`` is an object of ``n_features`` entries fix it (then
    :attr:`feature_names` reports them, and :meth:`snapshot` keeps them for a checkpoint).
    ``labels`` names the ``n_classes`` classes; :attr:`labels` maps them both ways.
    """

    def __init__(
        self,
        n_features: int,
        *,
        n_classes: int = 0,
        labels: Sequence[str] = (),
        feature_names: Sequence[str] = (),
        max_message_bytes: int = 1_000_000,
    ) -> None:
        self._features = Features(n_features, feature_names)
        self.labels = Labels(n_classes, labels)
        if max_message_bytes < 1:
            raise ValueError(f"max_message_bytes={max_message_bytes!r}: must be at least 1")
        self.n_features = n_features
        self.max_message_bytes = max_message_bytes

    @property
    def feature_names(self) -> tuple[str, ...] | None:
        """The fixed order of named features, ``None`` until one is known."""
        return self._features.names

    def snapshot(self) -> dict[str, Any]:
        """What decoding learned from the records (the order of named features), for a
        checkpoint beside the pipeline's state."""
        return {"features": self._features.snapshot()}

    def restore(self, state: dict[str, Any]) -> None:
        """Back to a :meth:`snapshot`; an empty state (a checkpoint written before the decoder
        had one) leaves the configured settings."""
        self._features.restore(state.get("features", {}))

    def decode(self, messages: Sequence[RawMessage]) -> Decoded:
        """Decode ``messages`` (as polled) into good records and dead letters; never raises
        for what a message holds."""
        with _collector_paused():
            split = split_messages(messages, self.max_message_bytes)
            try:
                records, bad = self._build(messages, split.recs, split.where, split.index)
            except Exception:
                log.warning(
                    "decoding %d records as columns failed; decoding them one by one",
                    len(split.recs),
                    exc_info=True,
                )
                records, bad = self._build_each(messages, split)
        dead = split.dead + bad
        dead.sort(key=lambda item: item[:2])
        next_offsets = {(m.topic, m.partition): m.offset + 1 for m in messages}
        return Decoded(records, [letter for *_, letter in dead], next_offsets)

    def _build(
        self, messages: Sequence[RawMessage], recs: list[Any], where: list[int], index: list[int]
    ) -> tuple[Records, list[Dead]]:
        """Check records as whole columns: the good ones as :class:`Records`, dead letters for
        the others. ``where`` is each record's message, ``index`` its place in a batch."""
        cols = {name: [r.get(name) for r in recs] for name in FIELDS}
        label_only = np.array(
            [isinstance(r, dict) and "x" not in r and "id" in r and "y" in r for r in recs], bool
        )
        for i in np.flatnonzero(label_only).tolist():  # a placeholder the checks pass
            cols["x"][i] = [0] * self.n_features
        problems: dict[int, Problem] = {}
        strings(cols, problems)
        x = self._features.column(cols["x"], problems)
        y, labelled = targets(cols["y"], self.labels, problems)
        unlabelled = label_only & ~labelled
        for i in np.flatnonzero(unlabelled).tolist():
            problems.setdefault(
                i,
                ("schema", "ValueError", "y is null in a label record (id without x): give its y"),
            )
        fields = meta(cols, problems)
        keep = np.ones(len(recs), dtype=bool)
        keep[list(problems)] = False
        dead = [
            (where[i], index[i], dead_letter(messages[where[i]], problem, index[i]))
            for i, problem in problems.items()
        ]
        columns = {"x": x, "y": y, "labelled": labelled, "label_only": label_only, **fields}
        return self._records(messages, keep, np.asarray(where, np.int64), index, columns), dead

    def _build_each(
        self, messages: Sequence[RawMessage], split: Split
    ) -> tuple[Records, list[Dead]]:
        """:meth:`_build` record by record: a record whose checks raise is a dead letter."""
        parts = [self._build((), [], [], [])[0]]  # the empty columns fix the shapes
        dead: list[Dead] = []
        for rec, mi, j in zip(split.recs, split.where, split.index, strict=True):
            m = messages[mi]
            try:
                part, bad = self._build((m,), [rec], [0], [j])
            except Exception as exc:
                dead.append((mi, j, dead_letter(m, failure(exc), j)))
            else:
                parts.append(part)
                dead += [(mi, j, letter) for _, _, letter in bad]
        return Records.concat(parts), dead

    def _records(
        self,
        messages: Sequence[RawMessage],
        keep: np.ndarray,
        where: np.ndarray,
        index: list[int],
        columns: dict[str, Any],
    ) -> Records:
        """The kept records as :class:`Records`, with each message's position per record."""
        n = len(messages)
        topic = np.array([m.topic for m in messages], dtype=object)[where[keep]]
        partition = np.fromiter((m.partition for m in messages), np.int32, n)[where[keep]]
        offset = np.fromiter((m.offset for m in messages), np.int64, n)[where[keep]]
        stamp = np.fromiter((m.timestamp for m in messages), np.float64, n)[where[keep]]
        idx = np.asarray(index, np.int32)[keep]
        given = objects(columns["id"], keep).tolist()
        if None in given:
            defaults = default_ids(
                topic.tolist(), partition.tolist(), offset.tolist(), idx.tolist()
            )
            given = [d if v is None else v for v, d in zip(given, defaults, strict=True)]
        ts = columns["ts"][keep]
        y = columns["y"][keep]
        return Records(
            x=columns["x"][keep],
            y=y.astype(np.int64) if self.labels.n_classes else y.astype(np.float32),
            labelled=columns["labelled"][keep],
            key=objects(columns["key"], keep),
            task=objects(columns["task"], keep),
            concept=objects(columns["concept"], keep),
            id=objects(given, np.ones(len(given), dtype=bool)),
            ts=np.where(np.isnan(ts), np.where(stamp >= 0, stamp, np.nan), ts),
            topic=topic,
            partition=partition,
            offset=offset,
            index=idx,
            label_only=columns["label_only"][keep],
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector: parsed records hold no reference cycles, and
    collecting while tens of thousands of fresh dicts are alive costs as much as parsing them
    (process-wide, for the few milliseconds of one decode)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
