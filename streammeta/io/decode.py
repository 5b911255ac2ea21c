"""Raw Kafka messages -> validated records in columns, plus dead letters for what is bad.

A message value is one JSON object or a JSON array of objects (a batch message); see "Records" in
the design. Each record is checked on its own: in a batch message the good records go on and
each bad one becomes a :class:`DeadLetter` that carries the whole original message (bytes
unchanged) and the record's index within it. A message that cannot be read at all (too large,
not JSON, neither object nor array) is one dead letter without an index.

Rules: ``x`` is a list of ``n_features`` numbers, or an object name -> number whose names are
the configured ``feature_names`` or else the names of the first such record seen (in its order);
JSON ``true``/``false`` count as 1/0 as everywhere in Python. ``y`` absent or null means
unlabelled; otherwise a finite number for regression, and for classification a class index
``0..n_classes-1`` or, when ``labels`` are configured, one of those strings (its position is
the index). ``key`` and ``id`` are strings, ``task`` and ``concept`` (the true concept, for
evaluation only) a string or integer, ``ts`` a finite number; other fields are ignored. The
checks run on whole columns (numpy), not record by record, except where a column already failed
as a whole.

>>> from streammeta.io.base import RawMessage
>>> msg = RawMessage("in", 0, 7, None, b'[{"x": [1, 2], "y": 0.5}, {"x": [1]}]', (), 1000)
>>> out = Decoder(n_features=2).decode([msg])
>>> out.records.x.tolist(), out.records.id.tolist()
([[1.0, 2.0]], ['in:0:7:0'])
>>> [(d.reason, d.index, d.message) for d in out.dead]
[('feature_count', 1, 'x has 1 features; expected 2')]
"""

from __future__ import annotations

import gc
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from streammeta.io.base import RawMessage
from streammeta.io.records import DeadLetter, Decoded, Records

__all__ = ["Decoder"]

_NUMBER_KINDS = "biuf"
_Problem = tuple[str, str, str]  # reason, error type, message
_NONE = type(None)
_META: tuple[tuple[str, set[type], str], ...] = (  # field, JSON types allowed, what to send
    ("key", {str, _NONE}, "a string"),
    ("task", {str, int, _NONE}, "a string or an integer"),
    ("concept", {str, int, _NONE}, "a string or an integer"),
    ("id", {str, _NONE}, "a string"),
    ("ts", {int, float, _NONE}, "a number (epoch milliseconds)"),
)


class Decoder:
    """Decodes and validates raw message values; see the module docstring for the rules.

    ``feature_names`` fixes the order of named features; when empty, the names of the first
    record whose ``x`` is an object of ``n_features`` entries fix it (then
    :attr:`feature_names` reports them). ``labels`` maps string class labels to indices.
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
        if n_features < 1:
            raise ValueError(f"n_features={n_features!r}: must be at least 1")
        if n_classes == 1 or n_classes < 0:
            raise ValueError(f"n_classes={n_classes!r}: must be 0 (regression) or at least 2")
        if labels and len(labels) != n_classes:
            raise ValueError(
                f"labels={list(labels)!r}: need one label per class, n_classes={n_classes}"
            )
        if feature_names and len(set(feature_names)) != n_features:
            raise ValueError(
                f"feature_names={list(feature_names)!r}: need {n_features} distinct names "
                "(n_features)"
            )
        if max_message_bytes < 1:
            raise ValueError(f"max_message_bytes={max_message_bytes!r}: must be at least 1")
        self.n_features = n_features
        self.n_classes = n_classes
        self.labels = tuple(labels)
        self.max_message_bytes = max_message_bytes
        self._names = tuple(feature_names) or None
        self._label_index = {label: i for i, label in enumerate(self.labels)}

    @property
    def feature_names(self) -> tuple[str, ...] | None:
        """The fixed order of named features, ``None`` until one is known."""
        return self._names

    def decode(self, messages: Sequence[RawMessage]) -> Decoded:
        """Decode ``messages`` (as polled) into good records and dead letters."""
        with _collector_paused():
            return self._decode(messages)

    def _decode(self, messages: Sequence[RawMessage]) -> Decoded:
        dead: list[tuple[int, int, DeadLetter]] = []  # message, index, dead letter
        recs: list[Any] = []
        where: list[int] = []  # message of each record
        index: list[int] = []
        for mi, m in enumerate(messages):
            problem, parsed = self._parse(m.value)
            if problem is not None:
                dead.append((mi, -1, _dead(m, problem)))
            elif type(parsed) is dict:
                recs.append(parsed)
                where.append(mi)
                index.append(-1)
            else:
                for j, rec in enumerate(parsed):
                    if type(rec) is dict:
                        recs.append(rec)
                        where.append(mi)
                        index.append(j)
                    else:
                        what = f"batch element {j} is a JSON {_kind(rec)}; send objects"
                        dead.append((mi, j, _dead(m, ("schema", "TypeError", what), j)))
        problems: dict[int, _Problem] = {}
        x = self._features(recs, problems)
        y, labelled = self._targets([r.get("y") for r in recs], problems)
        meta = self._meta(recs, problems)
        keep = np.ones(len(recs), dtype=bool)
        if problems:
            keep[list(problems)] = False
            for i, problem in problems.items():
                dead.append((where[i], index[i], _dead(messages[where[i]], problem, index[i])))
        records = self._columns(
            messages, keep, np.asarray(where, np.int64), index, x, y, labelled, meta
        )
        next_offsets = {(m.topic, m.partition): m.offset + 1 for m in messages}
        dead.sort(key=lambda item: item[:2])
        return Decoded(records, [letter for *_, letter in dead], next_offsets)

    def _parse(self, value: bytes | None) -> tuple[_Problem | None, Any]:
        """The parsed message, or the problem that makes the whole message unusable."""
        if value is None:
            return ("schema", "TypeError", "message has no value (a tombstone)"), None
        if len(value) > self.max_message_bytes:
            return (
                "too_large",
                "ValueError",
                f"message of {len(value)} bytes exceeds max_message_bytes = "
                f"{self.max_message_bytes}; split it into smaller batch messages",
            ), None
        try:
            parsed = json.loads(value)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            return ("malformed_json", type(exc).__name__, f"not valid JSON: {exc}"), None
        if type(parsed) not in (dict, list):
            what = f"message is a JSON {_kind(parsed)}; send an object or an array of objects"
            return ("schema", "TypeError", what), None
        return None, parsed

    def _features(self, recs: list[Any], problems: dict[int, _Problem]) -> np.ndarray:
        """``x`` of every record as float64 ``[n, n_features]`` (zeros where bad)."""
        d = self.n_features
        xs = [r.get("x") for r in recs]
        x = _numbers(xs)
        if x is None or x.ndim != 2 or x.shape[1] != d:
            x = np.zeros((len(recs), d))
            for i, v in enumerate(xs):
                problem = self._row(v, x, i)
                if problem is not None:
                    problems.setdefault(i, problem)
        bad = ~np.isfinite(x).all(axis=1)
        for i in np.flatnonzero(bad).tolist():
            problems.setdefault(i, ("non_finite", "ValueError", "x holds NaN or infinity"))
        return x

    def _row(self, v: Any, x: np.ndarray, i: int) -> _Problem | None:
        """Put one record's features into ``x[i]``, or say what is wrong with them."""
        if type(v) is dict:
            if self._names is None and len(v) == self.n_features:
                self._names = tuple(v)
            if self._names is None:
                return (
                    "feature_count",
                    "ValueError",
                    f"x has {len(v)} named features; expected {self.n_features}",
                )
            if v.keys() != set(self._names):
                return (
                    "feature_names",
                    "ValueError",
                    f"x names {sorted(v)}; expected {sorted(self._names)}",
                )
            v = [v[name] for name in self._names]
        if type(v) is not list:
            what = "x is missing" if v is None else f"x is a JSON {_kind(v)}"
            return (
                "schema",
                "TypeError" if v is not None else "KeyError",
                f"{what}; send a list of {self.n_features} numbers or an object name -> number",
            )
        if len(v) != self.n_features:
            return (
                "feature_count",
                "ValueError",
                f"x has {len(v)} features; expected {self.n_features}",
            )
        if not all(type(e) in (int, float, bool) for e in v):
            odd = next(e for e in v if type(e) not in (int, float, bool))
            return ("schema", "TypeError", f"x holds a JSON {_kind(odd)} ({odd!r}); send numbers")
        try:
            x[i] = v
        except OverflowError:
            return ("non_finite", "OverflowError", "x holds a number too large for a float")
        return None

    def _targets(
        self, ys: list[Any], problems: dict[int, _Problem]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``y`` as float64 (class index for classification) and the labelled mask."""
        labelled = np.fromiter((v is not None for v in ys), dtype=bool, count=len(ys))
        codes = ys
        if self.labels:
            codes = [self._label_index.get(v, -1) if type(v) is str else v for v in ys]
        y = _numbers([0 if v is None else v for v in codes])
        if y is None or y.ndim != 1:
            y = np.zeros(len(ys))
            for i, v in enumerate(codes):
                if v is None or type(v) in (int, float, bool):
                    y[i] = 0 if v is None else _float(v)
                elif type(v) is str:
                    problems.setdefault(i, self._unknown(v))
                else:
                    what = f"y is a JSON {_kind(v)}; send a number, a class label or null"
                    problems.setdefault(i, ("schema", "TypeError", what))
        for i in np.flatnonzero(labelled & ~np.isfinite(y)).tolist():
            problems.setdefault(i, ("non_finite", "ValueError", "y is NaN or infinite"))
        if self.n_classes:
            known = (y >= 0) & (y < self.n_classes) & (y == np.floor(y))
            for i in np.flatnonzero(labelled & np.isfinite(y) & ~known).tolist():
                problems.setdefault(i, self._unknown(ys[i]))
        return y, labelled

    def _unknown(self, label: object) -> _Problem:
        names = f" or one of {list(self.labels)}" if self.labels else ""
        if not self.n_classes:
            return ("schema", "TypeError", f"y is {label!r}; regression needs a number")
        return (
            "unknown_label",
            "ValueError",
            f"y = {label!r} is not a class: expected 0..{self.n_classes - 1}{names}",
        )

    def _meta(self, recs: list[Any], problems: dict[int, _Problem]) -> dict[str, Any]:
        """``key``, ``task``, ``concept``, ``id`` (lists) and ``ts`` (float64, NaN where
        absent) of every record, type-checked."""
        out: dict[str, Any] = {}
        for name, kinds, expect in _META:
            col = [r.get(name) for r in recs]
            if not set(map(type, col)) <= kinds:
                for i, v in enumerate(col):
                    if type(v) not in kinds:
                        what = f"{name} is {v!r}; send {expect} or leave it out"
                        problems.setdefault(i, ("schema", "TypeError", what))
            out[name] = col
        given = np.fromiter((type(v) in (int, float) for v in out["ts"]), bool, len(recs))
        nums = [v if ok else 0.0 for v, ok in zip(out["ts"], given.tolist(), strict=True)]
        try:
            ts = np.array(nums, dtype=np.float64)
        except OverflowError:
            ts = np.array([_float(v) for v in nums])
        for i in np.flatnonzero(given & ~np.isfinite(ts)).tolist():
            problems.setdefault(i, ("non_finite", "ValueError", "ts is NaN or infinite"))
        out["ts"] = np.where(given, ts, np.nan)
        return out

    def _columns(
        self,
        messages: Sequence[RawMessage],
        keep: np.ndarray,
        where: np.ndarray,
        index: list[int],
        x: np.ndarray,
        y: np.ndarray,
        labelled: np.ndarray,
        meta: dict[str, Any],
    ) -> Records:
        """The kept records as :class:`Records`, with each message's position per record."""
        n = len(messages)
        topic = np.array([m.topic for m in messages], dtype=object)[where[keep]]
        partition = np.fromiter((m.partition for m in messages), np.int32, n)[where[keep]]
        offset = np.fromiter((m.offset for m in messages), np.int64, n)[where[keep]]
        stamp = np.fromiter((m.timestamp for m in messages), np.float64, n)[where[keep]]
        idx = np.asarray(index, np.int32)[keep]
        given = _objects(meta["id"], keep).tolist()
        if None in given:
            places = zip(
                topic.tolist(), partition.tolist(), offset.tolist(), idx.tolist(), strict=True
            )
            given = [
                v if v is not None else f"{t}:{p}:{o}:{i}" if i >= 0 else f"{t}:{p}:{o}"
                for v, (t, p, o, i) in zip(given, places, strict=True)
            ]
        ids = _objects(given, np.ones(len(given), dtype=bool))
        ts = meta["ts"][keep]
        ts = np.where(np.isnan(ts), np.where(stamp >= 0, stamp, np.nan), ts)
        labelled = labelled[keep]
        if self.n_classes:
            yk = np.where(labelled, y[keep], -1).astype(np.int64)
        else:
            yk = np.where(labelled, y[keep], np.nan).astype(np.float32)
        return Records(
            x=x[keep].astype(np.float32),
            y=yk,
            labelled=labelled,
            key=_objects(meta["key"], keep),
            task=_objects(meta["task"], keep),
            concept=_objects(meta["concept"], keep),
            id=ids,
            ts=ts,
            topic=topic,
            partition=partition,
            offset=offset,
            index=idx,
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


def _numbers(values: list[Any]) -> np.ndarray | None:
    """``values`` as a float64 array when they are all numbers of one shape, else ``None``."""
    try:
        arr = np.asarray(values)
    except (ValueError, OverflowError):
        return None
    return arr.astype(np.float64) if arr.dtype.kind in _NUMBER_KINDS else None


def _float(v: float) -> float:
    try:
        return float(v)
    except OverflowError:
        return math.inf


def _objects(values: list[Any], keep: np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out[keep]


def _kind(value: object) -> str:
    """The JSON type name of a parsed value."""
    kinds: Iterable[tuple[type, str]] = (
        (bool, "boolean"),
        (int, "number"),
        (float, "number"),
        (str, "string"),
        (list, "array"),
        (dict, "object"),
    )
    return next((name for t, name in kinds if isinstance(value, t)), "null")


def _dead(m: RawMessage, problem: _Problem, index: int | None = None) -> DeadLetter:
    reason, error_type, message = problem
    idx = None if index is None or index < 0 else index
    return DeadLetter(
        m.value, m.key, reason, error_type, message, m.topic, m.partition, m.offset, idx
    )
